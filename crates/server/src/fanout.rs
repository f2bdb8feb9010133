//! Where pushes go. On one node (SQLite) straight to the hub's local sessions. With several
//! nodes (PostgreSQL) every push becomes a row of the shared push log, published with a NOTIFY
//! wake-up; each node follows the log from where it started and hands each row to its own
//! sessions of that user — so a session gets its updates whichever node it is on, and a node
//! whose listening connection dropped reads on from its cursor when it is back, losing nothing.

use std::sync::Arc;

use calls::PushTarget;
use store::{PushRow, Wake};
use tl::{Decode, Encode, Layer, enums};

use crate::errors::RpcError;
use crate::shared::{Shared, now_secs};

/// Pushes collected while an operation is published, sent together.
#[derive(Default)]
pub struct Outbox(Vec<(PushTarget, enums::Updates)>);

impl Outbox {
    /// Adds a push.
    pub fn push(&mut self, target: PushTarget, updates: enums::Updates) {
        self.0.push((target, updates));
    }
}

/// Sends what the outbox holds: to local sessions, or into the shared push log.
pub async fn send(shared: &Shared, outbox: Outbox) -> Result<(), RpcError> {
    let Some(cluster) = &shared.cluster else {
        for (target, updates) in outbox.0 {
            deliver_local(shared, target, Arc::new(updates));
        }
        return Ok(());
    };
    let rows = outbox
        .0
        .into_iter()
        .map(|(target, updates)| {
            let (user_id, except_key, only_key) = match target {
                PushTarget::User(u) => (u, None, None),
                PushTarget::UserExcept(u, key) => (u, Some(key), None),
                PushTarget::Session(s) => (s.user_id, None, Some(s.key_id)),
            };
            PushRow {
                user_id,
                except_key,
                only_key,
                body: updates.to_bytes(Layer::LATEST),
            }
        })
        .collect();
    cluster.publish(rows, now_secs()).await?;
    Ok(())
}

fn deliver_local(shared: &Shared, target: PushTarget, value: Arc<enums::Updates>) {
    match target {
        PushTarget::User(u) => shared.hub.push_where(u, value, |_, _| true),
        PushTarget::UserExcept(u, key) => shared.hub.push_where(u, value, |_, k| k != key),
        PushTarget::Session(s) => shared
            .hub
            .push_where(s.user_id, value, |_, k| k == s.key_id),
    };
}

/// Rows read from the log per query.
const PAGE: u32 = 500;

/// Follows the push log for this node (several nodes only): from the newest row at start,
/// woken by the database's notifications, reading on after a lost listener reconnects.
pub async fn follow_log(shared: Arc<Shared>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let Some(cluster) = shared.cluster.clone() else {
        return;
    };
    let mut wakes = cluster.listen();
    let mut cursor = loop {
        match cluster.push_cursor().await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the push log; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    };
    loop {
        tokio::select! {
            wake = wakes.recv() => match wake {
                Some(Wake::UserChanged(user)) => shared.cache.forget(user),
                Some(Wake::Pushes(_)) | Some(Wake::Reconnected) => {
                    cursor = read_on(&shared, cursor).await;
                }
                None => return,
            },
            _ = stopped.changed() => return,
        }
    }
}

/// Delivers every row after `cursor` to this node's sessions; returns the new cursor.
async fn read_on(shared: &Shared, mut cursor: i64) -> i64 {
    let Some(cluster) = &shared.cluster else {
        return cursor;
    };
    loop {
        let rows = match cluster.pushes_after(cursor, PAGE).await {
            Ok(rows) => rows,
            Err(e) => {
                // The next wake-up (or the listener's reconnect) reads on from here.
                tracing::warn!(error = %e, "cannot read the push log");
                return cursor;
            }
        };
        let full = rows.len() == PAGE as usize;
        for row in rows {
            cursor = row.seq;
            let p = row.push;
            let Ok(updates) = enums::Updates::from_bytes(&p.body) else {
                tracing::warn!(seq = row.seq, "a push in the log does not decode; skipped");
                continue;
            };
            let value = Arc::new(updates);
            shared.hub.push_where(p.user_id, value, |_, key| {
                p.only_key.is_none_or(|k| k == key) && p.except_key != Some(key)
            });
        }
        if !full {
            return cursor;
        }
    }
}
