//! What a transaction adds to the users' logs on PostgreSQL: history updates numbered by pts
//! and pushes numbered per user, both counted in `user_state` and taken under the users' row
//! locks (a call transition holds them anyway; a publish takes them), so each user's rows
//! commit in the order of their numbers. The pushes' insert also notifies every node present
//! for their users, on that node's own channel, at commit: one notification per push, which
//! carries the push itself when it fits (`user:seq:except:only:hex body`, see [`push_wake`]),
//! so a node woken reads the log only when it sees a gap.

use std::collections::HashMap;

use crate::postgres_pipeline::Param;
use crate::postgres_rows::db_error;
use crate::{NewUpdate, PushRow, StoreError, StoredPush, Wake};

/// The channel node `node` listens on for new pushes to users it is present for.
pub(crate) fn push_channel(node: i64) -> String {
    format!("{PUSH_CHANNEL_PREFIX}{node}")
}
const PUSH_CHANNEL_PREFIX: &str = "mtcall_push_";

/// The users `$1` (a transition's or a publish's), as an SQL array expression.
pub(crate) const REQUEST_USERS: &str = "$1::bigint[]";

/// Locks the users' rows (`users`, an SQL array expression), in id order: no deadlock between
/// transactions that lock users.
pub(crate) fn lock_users(users: &str) -> String {
    format!("SELECT id FROM users WHERE id = ANY({users}) ORDER BY id FOR UPDATE")
}

/// The counters of the users in `users` (an SQL array expression). Read in a statement of its
/// own after the row locks are taken: a statement that waited for a lock sees the locked rows
/// as committed, but other tables as they were when it began.
pub(crate) fn read_counters(users: &str) -> String {
    format!("SELECT user_id, pts, push_seq FROM user_state WHERE user_id = ANY({users})")
}

/// Appends updates to the users' logs.
const INSERT_UPDATES: &str = "INSERT INTO updates (user_id, pts, pts_count, date, body)
     SELECT * FROM UNNEST($1::bigint[], $2::integer[], $3::integer[], $4::integer[], $5::bytea[])";
/// Sets the users' counters.
const SET_COUNTERS: &str = "INSERT INTO user_state (user_id, pts, push_seq)
     SELECT * FROM UNNEST($1::bigint[], $2::integer[], $3::bigint[])
     ON CONFLICT (user_id) DO UPDATE SET pts = excluded.pts, push_seq = excluded.push_seq";
/// Pushes up to this size ride in their notification (hex-encoded, well inside the 8,000
/// bytes a notification's payload may have); larger ones are read from the log.
const CARRIED_MAX: i32 = 3_500;
/// Appends pushes and notifies each, in order, to every node present for its user.
const INSERT_PUSHES: &str = "WITH inserted AS (
        INSERT INTO pushes (user_id, seq, except_key, only_key, body, created_at)
        SELECT t.*, $6::bigint FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bytea[]) AS t
        RETURNING user_id, seq, except_key, only_key, body)
     SELECT pg_notify($7 || p.node_id, i.user_id || ':' || i.seq || CASE WHEN length(i.body) <= $8
         THEN ':' || coalesce(i.except_key::text, '') || ':' || coalesce(i.only_key::text, '') || ':' || encode(i.body, 'hex')
         ELSE '' END)
     FROM inserted i CROSS JOIN LATERAL (SELECT node_id FROM presence WHERE user_id = i.user_id) AS p";

/// A notification on a node's push channel: `user:seq` (read push `seq` from the log) or
/// `user:seq:except:only:body` (the push itself; keys empty for none, body in hex).
pub(crate) fn push_wake(payload: &str) -> Option<Wake> {
    let mut parts = payload.split(':');
    let user_id: i64 = parts.next()?.parse().ok()?;
    let seq: i64 = parts.next()?.parse().ok()?;
    let Some(except) = parts.next() else {
        return Some(Wake::Pushes { user_id, seq });
    };
    let key = |k: &str| -> Option<Option<i64>> {
        if k.is_empty() {
            Some(None)
        } else {
            k.parse().ok().map(Some)
        }
    };
    let except_key = key(except)?;
    let only_key = key(parts.next()?)?;
    let body = from_hex(parts.next()?)?;
    Some(Wake::Push(StoredPush {
        seq,
        push: PushRow {
            user_id,
            except_key,
            only_key,
            body,
        },
    }))
}

/// Bytes from lowercase or uppercase hex.
fn from_hex(hex: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16);
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

/// Each locked user's pts and newest push number, as the transaction found them.
#[derive(Clone, Default)]
pub(crate) struct Counters(HashMap<i64, (i32, i64)>);

impl Counters {
    /// The counters of the `locked` users from `rows` of [`read_counters`] (a user without a
    /// row has both at 0).
    pub(crate) fn new(locked: &[i64], rows: &[tokio_postgres::Row]) -> Counters {
        let mut counters: HashMap<i64, (i32, i64)> = locked.iter().map(|u| (*u, (0, 0))).collect();
        for r in rows {
            let user: i64 = r.get("user_id");
            if let Some(c) = counters.get_mut(&user) {
                *c = (r.get("pts"), r.get("push_seq"));
            }
        }
        Counters(counters)
    }

    /// The pts of those of `users` that are locked, in id order.
    pub(crate) fn pts_of(&self, users: &[i64]) -> Vec<(i64, i32)> {
        let mut pts: Vec<(i64, i32)> = users
            .iter()
            .filter_map(|u| self.0.get(u).map(|(p, _)| (*u, *p)))
            .collect();
        pts.sort_unstable();
        pts.dedup();
        pts
    }
}

/// The log rows of one transaction, numbered, as statement parameters.
#[derive(Default)]
pub(crate) struct LogWrites {
    updates: Vec<NewUpdate>,
    pushes: Vec<(PushRow, i64)>,
    counters: Vec<(i64, i32, i64)>,
}

impl LogWrites {
    /// Numbers `pushes` after each user's newest and checks `updates` continue each user's
    /// pts; every row must be for a locked user.
    pub(crate) fn new(
        counters: Counters,
        updates: Vec<NewUpdate>,
        pushes: Vec<PushRow>,
    ) -> Result<LogWrites, StoreError> {
        let mut counters = counters.0;
        let unlocked = |user: i64| {
            StoreError::Corrupt(format!(
                "a log row for user {user}, whose row is not locked"
            ))
        };
        for u in &updates {
            let (pts, _) = counters
                .get_mut(&u.user_id)
                .ok_or_else(|| unlocked(u.user_id))?;
            if u.update.pts != *pts + u.update.pts_count {
                return Err(StoreError::Corrupt(format!(
                    "update pts {} does not follow {} for user {}",
                    u.update.pts, pts, u.user_id
                )));
            }
            *pts = u.update.pts;
        }
        let mut numbered = Vec::with_capacity(pushes.len());
        for p in pushes {
            let (_, seq) = counters
                .get_mut(&p.user_id)
                .ok_or_else(|| unlocked(p.user_id))?;
            *seq += 1;
            let seq = *seq;
            numbered.push((p, seq));
        }
        let mut changed: Vec<i64> = updates
            .iter()
            .map(|u| u.user_id)
            .chain(numbered.iter().map(|(p, _)| p.user_id))
            .collect();
        changed.sort_unstable();
        changed.dedup();
        let counters = changed
            .into_iter()
            .map(|u| {
                let (pts, seq) = counters[&u];
                (u, pts, seq)
            })
            .collect();
        Ok(LogWrites {
            updates,
            pushes: numbered,
            counters,
        })
    }

    /// Whether there is nothing to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }
}

/// The statements [`write`] sends, prepared before a pipeline is sent.
pub(crate) struct LogStatements {
    updates: tokio_postgres::Statement,
    counters: tokio_postgres::Statement,
    pushes: tokio_postgres::Statement,
}

impl LogStatements {
    /// Prepares them on `client` (or finds them in its cache).
    pub(crate) async fn prepare(
        client: &deadpool_postgres::ClientWrapper,
    ) -> Result<LogStatements, StoreError> {
        Ok(LogStatements {
            updates: client
                .prepare_cached(INSERT_UPDATES)
                .await
                .map_err(db_error)?,
            counters: client
                .prepare_cached(SET_COUNTERS)
                .await
                .map_err(db_error)?,
            pushes: client
                .prepare_cached(INSERT_PUSHES)
                .await
                .map_err(db_error)?,
        })
    }
}

/// Sends `writes` (pushes made at `now`): updates, counters, then pushes with their
/// notifications — together, as part of a pipeline.
pub(crate) async fn write(
    client: &tokio_postgres::Client,
    statements: &LogStatements,
    writes: &LogWrites,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    if writes.is_empty() {
        return Ok(());
    }
    let u = &writes.updates;
    let (users, pts, counts, dates): (Vec<i64>, Vec<i32>, Vec<i32>, Vec<i32>) = (
        u.iter().map(|u| u.user_id).collect(),
        u.iter().map(|u| u.update.pts).collect(),
        u.iter().map(|u| u.update.pts_count).collect(),
        u.iter().map(|u| u.update.date).collect(),
    );
    let bodies: Vec<&[u8]> = u.iter().map(|u| u.update.body.as_slice()).collect();
    let c = &writes.counters;
    let (counted, counted_pts, counted_seq): (Vec<i64>, Vec<i32>, Vec<i64>) = (
        c.iter().map(|c| c.0).collect(),
        c.iter().map(|c| c.1).collect(),
        c.iter().map(|c| c.2).collect(),
    );
    let p = &writes.pushes;
    let (pushed, seqs): (Vec<i64>, Vec<i64>) = p.iter().map(|(r, s)| (r.user_id, *s)).unzip();
    let except: Vec<Option<i64>> = p.iter().map(|(r, _)| r.except_key).collect();
    let only: Vec<Option<i64>> = p.iter().map(|(r, _)| r.only_key).collect();
    let push_bodies: Vec<&[u8]> = p.iter().map(|(r, _)| r.body.as_slice()).collect();
    let update_params: [Param; 5] = [&users, &pts, &counts, &dates, &bodies];
    let counter_params: [Param; 3] = [&counted, &counted_pts, &counted_seq];
    let push_params: [Param; 8] = [
        &pushed,
        &seqs,
        &except,
        &only,
        &push_bodies,
        &now,
        &PUSH_CHANNEL_PREFIX,
        &CARRIED_MAX,
    ];
    let (updated, counted, pushed) = tokio::join!(
        async {
            if u.is_empty() {
                return Ok(());
            }
            client
                .execute(&statements.updates, &update_params)
                .await
                .map(drop)
        },
        client.execute(&statements.counters, &counter_params),
        async {
            if p.is_empty() {
                return Ok(());
            }
            client
                .query(&statements.pushes, &push_params)
                .await
                .map(drop)
        },
    );
    crate::postgres_pipeline::first_error([updated, counted.map(drop), pushed])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_carries_its_push_or_its_number() {
        assert_eq!(push_wake("7:3"), Some(Wake::Pushes { user_id: 7, seq: 3 }));
        let carried = Wake::Push(StoredPush {
            seq: 4,
            push: PushRow {
                user_id: 7,
                except_key: Some(-9),
                only_key: None,
                body: vec![0x00, 0xab, 0xFF],
            },
        });
        assert_eq!(push_wake("7:4:-9::00abFF"), Some(carried));
        for bad in ["", "x:1", "7", "7:4:-9::0a1", "7:4:-9::zz", "7:4:1"] {
            assert_eq!(push_wake(bad), None, "{bad}");
        }
    }
}
