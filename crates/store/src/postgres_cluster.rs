//! PostgreSQL as the meeting point of several mtcall nodes (`docs/design.md`, "Storage
//! and scale"): call transitions under the row locks of both users, so the busy check
//! of `phone.requestCall` is exact whichever node runs it; timers any node may run, made
//! idempotent by the same locks; and a push log read by every node, woken by LISTEN/NOTIFY —
//! the notification carries only `user_id:seq`, the push itself is a row, so a node that lost
//! its listening connection catches up from the log and nothing is lost with a notification.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::postgres_publish::{PUSH_CHANNEL, Publish};
use crate::postgres_rows::{call_row, db_error, exec, save_call, unavailable};
use crate::{
    CallRow, CallScope, CallStep, Cluster, PgStore, PushRow, StoreFuture, StoredPush, Wake, sql,
};

/// A push-log row.
fn stored_push(r: &tokio_postgres::Row) -> StoredPush {
    StoredPush {
        seq: r.get("seq"),
        push: PushRow {
            user_id: r.get("user_id"),
            except_key: r.get("except_key"),
            only_key: r.get("only_key"),
            body: r.get("body"),
        },
    }
}

/// The channel nodes listen on for changed users.
const USER_CHANNEL: &str = "mtcall_user";
/// The listening connection's name (tests end it to show nothing is lost).
pub const LISTENER_NAME: &str = "mtcall-listener";

impl PgStore {
    async fn run_transition(
        &self,
        scope: CallScope,
        step: CallStep,
    ) -> Result<(), crate::StoreError> {
        let mut client = self.pool.get().await.map_err(unavailable)?;
        let tx = client.transaction().await.map_err(db_error)?;
        let (users, call_id, random) = match scope {
            CallScope::Request {
                caller,
                callee,
                random_id,
            } => (vec![caller, callee], None, Some((caller, random_id))),
            CallScope::Call(id) => {
                // A call's parties never change, so they can be read before locking.
                let parties = tx
                    .prepare_cached("SELECT admin_id, participant_id FROM calls WHERE id = $1")
                    .await
                    .map_err(db_error)?;
                let parties = tx.query_opt(&parties, &[&id]).await.map_err(db_error)?;
                let users = parties.map_or(Vec::new(), |r| {
                    vec![r.get::<_, i64>("admin_id"), r.get("participant_id")]
                });
                (users, Some(id), None)
            }
        };
        // Both users' rows, in id order (no deadlock between transitions).
        let lock = tx
            .prepare_cached("SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .await
            .map_err(db_error)?;
        tx.query(&lock, &[&users]).await.map_err(db_error)?;
        let (random_caller, random_id) = random.unwrap_or((0, 0));
        let in_scope = tx
            .prepare_cached(&format!(
                "SELECT {} FROM calls WHERE ((admin_id = ANY($1) OR participant_id = ANY($1)) AND state <> 'discarded') OR id = $2 OR (admin_id = $3 AND random_id = $4 AND $3 <> 0)",
                sql::CALL_COLUMNS
            ))
            .await
            .map_err(db_error)?;
        let rows = tx
            .query(
                &in_scope,
                &[&users, &call_id.unwrap_or(0), &random_caller, &random_id],
            )
            .await
            .map_err(db_error)?;
        let changes = step(rows.iter().map(call_row).collect());
        for c in &changes.save {
            save_call(&tx, c).await?;
        }
        for id in &changes.delete {
            exec(&tx, sql::DELETE_CALL, &[id]).await?;
        }
        tx.commit().await.map_err(db_error)
    }
}

impl Cluster for PgStore {
    fn transact_calls(&self, scope: CallScope, step: CallStep) -> StoreFuture<'_, ()> {
        Box::pin(self.run_transition(scope, step))
    }

    fn live_calls(&self, user_id: i64) -> StoreFuture<'_, Vec<CallRow>> {
        Box::pin(async move {
            self.query_all(
                &format!(
                    "SELECT {} FROM calls WHERE (admin_id = $1 OR participant_id = $1) AND state <> 'discarded' ORDER BY id",
                    sql::CALL_COLUMNS
                ),
                &[&user_id],
                call_row,
            )
            .await
        })
    }

    fn due_calls(&self, now: i32, limit: u32) -> StoreFuture<'_, Vec<i64>> {
        let limit = i64::from(limit);
        Box::pin(async move {
            self.query_all(
                "SELECT id FROM calls WHERE deadline <= $1 AND state <> 'discarded' ORDER BY deadline LIMIT $2",
                &[&now, &limit],
                |r| r.get(0),
            )
            .await
        })
    }

    fn forget_calls_before(&self, before: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            client
                .execute(
                    "DELETE FROM calls WHERE state = 'discarded' AND updated_at < $1",
                    &[&before],
                )
                .await
                .map_err(db_error)
        })
    }

    fn publish(&self, pushes: Vec<PushRow>, now: i64) -> StoreFuture<'_, ()> {
        let (done, finished) = tokio::sync::oneshot::channel();
        let sent = self.publishes.send(Publish {
            rows: pushes,
            now,
            done,
        });
        Box::pin(async move {
            sent.map_err(|_| unavailable("the push publisher has stopped"))?;
            finished
                .await
                .map_err(|_| unavailable("the push publisher has stopped"))?
        })
    }

    fn push_cursor(&self) -> StoreFuture<'_, i64> {
        Box::pin(async move {
            Ok(self
                .query_opt("SELECT coalesce(max(seq), 0) FROM pushes", &[], |r| {
                    r.get::<_, i64>(0)
                })
                .await?
                .unwrap_or(0))
        })
    }

    fn pushes_after(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<StoredPush>> {
        let limit = i64::from(limit);
        Box::pin(async move {
            self.query_all(
                "SELECT seq, user_id, except_key, only_key, body FROM pushes WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &limit],
                stored_push,
            )
            .await
        })
    }

    fn pushes_for(
        &self,
        after: i64,
        upto: i64,
        users: Vec<i64>,
    ) -> StoreFuture<'_, Vec<StoredPush>> {
        Box::pin(async move {
            self.query_all(
                "SELECT seq, user_id, except_key, only_key, body FROM pushes WHERE seq > $1 AND seq <= $2 AND user_id = ANY($3) ORDER BY seq",
                &[&after, &upto, &users],
                stored_push,
            )
            .await
        })
    }

    fn forget_pushes_before(&self, before: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            client
                .execute("DELETE FROM pushes WHERE created_at < $1", &[&before])
                .await
                .map_err(db_error)
        })
    }

    fn user_changed(&self, user_id: i64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            client
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&USER_CHANNEL, &user_id.to_string()],
                )
                .await
                .map_err(db_error)?;
            Ok(())
        })
    }

    fn listen(&self) -> mpsc::UnboundedReceiver<Wake> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(listen_loop(self.url.clone(), tx));
        rx
    }
}

/// Keeps a LISTEN connection open for as long as someone holds the receiver.
async fn listen_loop(url: String, wakes: mpsc::UnboundedSender<Wake>) {
    let mut pause = Duration::from_millis(100);
    let mut first = true;
    while !wakes.is_closed() {
        match listen_once(&url, &wakes, &mut first).await {
            Ok(()) => pause = Duration::from_millis(100),
            Err(e) => tracing::warn!(error = %e, "database listener lost; reconnecting"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// One listening connection, until it breaks; reports `Reconnected` once it listens again.
async fn listen_once(
    url: &str,
    wakes: &mpsc::UnboundedSender<Wake>,
    first: &mut bool,
) -> Result<(), crate::StoreError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(unavailable)?;
    config.application_name(LISTENER_NAME);
    config.connect_timeout(Duration::from_secs(5));
    let (client, mut connection) = config.connect(NoTls).await.map_err(db_error)?;
    let (messages_tx, mut messages) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(m)) => {
                    if messages_tx.send(m).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {PUSH_CHANNEL}; LISTEN {USER_CHANNEL}"))
        .await
        .map_err(db_error)?;
    if !std::mem::take(first) {
        let _ = wakes.send(Wake::Reconnected);
    }
    while let Some(message) = messages.recv().await {
        let AsyncMessage::Notification(n) = message else {
            continue;
        };
        let wake = match n.channel() {
            PUSH_CHANNEL => n.payload().split_once(':').and_then(|(u, seq)| {
                Some(Wake::Pushes {
                    user_id: u.parse().ok()?,
                    seq: seq.parse().ok()?,
                })
            }),
            USER_CHANNEL => n.payload().parse().ok().map(Wake::UserChanged),
            _ => None,
        };
        if let Some(w) = wake
            && wakes.send(w).is_err()
        {
            break;
        }
    }
    driver.abort();
    Err(unavailable("the listening connection closed"))
}
