//! Several nodes on one PostgreSQL database: each call transition runs in a database
//! transaction under both users' row locks; timers any node may run (running one twice changes
//! nothing: the second finds the call ended); pushes become rows of a shared log, published
//! with a NOTIFY wake-up, that each node follows from where it started and hands to its own
//! sessions of that user — so a session gets its updates whichever node it is on, and a node
//! whose listening connection dropped reads on from its cursor when it is back, losing nothing.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calls::{Call, CallRegistry, PushTarget, Timeouts};
use store::{CallChanges, CallScope, Cluster, PushRow, Store, Wake};
use tl::{Decode, Encode, Layer, enums};
use tokio::sync::watch;

use super::{BoxFuture, CallBackend, Committed, Delivery, Operation, Outbox, decode, row};
use crate::cache::Cache;
use crate::errors::RpcError;
use crate::hub::Hub;

/// How often a node looks for due calls.
const POLL: Duration = Duration::from_millis(500);
/// Calls ended per look.
const DUE_PER_POLL: u32 = 100;
/// Seconds between housekeeping rounds.
const TIDY_EVERY_SECS: i32 = 60;
/// Seconds pushes stay in the log (a node that was away longer resumes from the newest).
const PUSH_LOG_SECS: i64 = 600;
/// Rows read from the push log per query.
const PAGE: u32 = 500;

/// Calls in the shared database.
pub struct SharedCalls {
    store: Arc<dyn Store>,
    cluster: Arc<dyn Cluster>,
    timeouts: Timeouts,
    last_tidy: AtomicI32,
}

impl SharedCalls {
    /// Calls in the database behind `store` and `cluster` (the same PostgreSQL).
    pub fn new(store: Arc<dyn Store>, cluster: Arc<dyn Cluster>, timeouts: Timeouts) -> Self {
        SharedCalls {
            store,
            cluster,
            timeouts,
            last_tidy: AtomicI32::new(0),
        }
    }
}

impl CallBackend for SharedCalls {
    fn run(
        &self,
        scope: CallScope,
        op: Operation,
        now: i64,
    ) -> BoxFuture<'_, Result<Committed, RpcError>> {
        let timeouts = self.timeouts;
        Box::pin(async move {
            let slot = Arc::new(Mutex::new(None));
            let filled = slot.clone();
            let started = Instant::now();
            self.cluster
                .transact_calls(
                    scope,
                    Box::new(move |rows| {
                        let mut registry = CallRegistry::new(timeouts);
                        registry.load(decode(&rows));
                        let effects = op(&mut registry);
                        let changes = CallChanges {
                            save: effects
                                .persist
                                .iter()
                                .map(|c| row(&registry, c, now))
                                .collect(),
                            delete: effects.forget.clone(),
                        };
                        *filled.lock().unwrap_or_else(|e| e.into_inner()) = Some(effects);
                        changes
                    }),
                )
                .await?;
            let effects = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            let effects = effects.ok_or(RpcError::RpcCallFail)?;
            let commit_time = (!effects.persist.is_empty()).then(|| started.elapsed());
            Ok(Committed {
                effects,
                commit_time,
            })
        })
    }

    fn live_calls_of(&self, user_id: i64) -> BoxFuture<'_, Result<Vec<Call>, RpcError>> {
        Box::pin(async move { Ok(decode(&self.cluster.live_calls(user_id).await?)) })
    }

    fn live_calls(&self) -> BoxFuture<'_, Result<Vec<Call>, RpcError>> {
        Box::pin(async move {
            let rows = self.store.load_calls().await?;
            Ok(decode(&rows)
                .into_iter()
                .filter(|c| c.state().is_live())
                .collect())
        })
    }

    fn stored_calls(&self) -> BoxFuture<'_, Option<Vec<Call>>> {
        Box::pin(async move {
            match self.store.load_calls().await {
                Ok(rows) => Some(decode(&rows)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the stored calls");
                    None
                }
            }
        })
    }

    fn expire(&self, now: i32) -> BoxFuture<'_, Vec<Committed>> {
        Box::pin(async move {
            let due = match self.cluster.due_calls(now, DUE_PER_POLL).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for due calls");
                    return Vec::new();
                }
            };
            let mut ended = Vec::new();
            for id in due {
                let op: Operation = Box::new(move |r| r.tick(now));
                match self.run(CallScope::Call(id), op, i64::from(now)).await {
                    Ok(c) if !c.effects.is_empty() => ended.push(c),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(call_id = id, error = ?e, "could not end a due call"),
                }
            }
            ended
        })
    }

    fn tidy(&self, now: i32) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if now - self.last_tidy.load(Ordering::Relaxed) < TIDY_EVERY_SECS {
                return;
            }
            self.last_tidy.store(now, Ordering::Relaxed);
            let tombstone = i64::from(self.timeouts.tombstone);
            if let Err(e) = self
                .cluster
                .forget_calls_before(i64::from(now) - tombstone)
                .await
            {
                tracing::warn!(error = %e, "cannot forget ended calls");
            }
            if let Err(e) = self
                .cluster
                .forget_pushes_before(i64::from(now) - PUSH_LOG_SECS)
                .await
            {
                tracing::warn!(error = %e, "cannot trim the push log");
            }
        })
    }

    fn wait_for_work(&self, _now: i32) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(POLL))
    }
}

/// Pushes through the shared log.
pub struct PushLog {
    cluster: Arc<dyn Cluster>,
    hub: Arc<Hub>,
    cache: Arc<Cache>,
}

impl PushLog {
    /// The log of `cluster`, delivered to `hub`'s sessions; `cache` forgets users other
    /// nodes changed.
    pub fn new(cluster: Arc<dyn Cluster>, hub: Arc<Hub>, cache: Arc<Cache>) -> Self {
        PushLog {
            cluster,
            hub,
            cache,
        }
    }

    /// Delivers every row after `cursor` to this node's sessions; returns the new cursor.
    async fn read_on(&self, mut cursor: i64) -> i64 {
        loop {
            let rows = match self.cluster.pushes_after(cursor, PAGE).await {
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
                self.deliver(row);
            }
            if !full {
                return cursor;
            }
        }
    }
}

impl Delivery for PushLog {
    fn send(&self, outbox: Outbox, now: i64) -> BoxFuture<'_, Result<(), RpcError>> {
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
        Box::pin(async move { Ok(self.cluster.publish(rows, now).await?) })
    }

    fn user_changed(&self, user_id: i64) -> BoxFuture<'_, Result<(), RpcError>> {
        Box::pin(async move { Ok(self.cluster.user_changed(user_id).await?) })
    }

    /// From the newest row at start, woken by the database's notifications. Each wake-up takes
    /// every notification waiting at that moment and reads only the rows for the users among
    /// them whose sessions this node holds — none at all when it holds none of them — so the
    /// work per push does not grow with the number of nodes. After a lost listener reconnects
    /// (or a read failed), it reads on through every row from its cursor.
    fn follow(&self, mut stopped: watch::Receiver<bool>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut wakes = self.cluster.listen();
            let mut cursor = loop {
                match self.cluster.push_cursor().await {
                    Ok(c) => break c,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the push log; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = stopped.changed() => return,
                        }
                    }
                }
            };
            loop {
                let first = tokio::select! {
                    wake = wakes.recv() => match wake {
                        Some(w) => w,
                        None => return,
                    },
                    _ = stopped.changed() => return,
                };
                let mut batch = Batch::default();
                batch.add(first, &self.cache);
                while let Ok(w) = wakes.try_recv() {
                    batch.add(w, &self.cache);
                }
                cursor = if batch.everything {
                    self.read_on(cursor).await
                } else {
                    self.read_for(cursor, batch).await
                };
            }
        })
    }
}

/// The notifications of one wake-up.
#[derive(Default)]
struct Batch {
    /// Users with new pushes.
    users: Vec<i64>,
    /// The newest push among them.
    upto: i64,
    /// Read every row from the cursor (the listener reconnected).
    everything: bool,
}

impl Batch {
    fn add(&mut self, wake: Wake, cache: &Cache) {
        match wake {
            Wake::UserChanged(user) => cache.forget(user),
            Wake::Pushes { user_id, seq } => {
                self.users.push(user_id);
                self.upto = self.upto.max(seq);
            }
            Wake::Reconnected => self.everything = true,
        }
    }
}

impl PushLog {
    /// Delivers the rows up to `batch.upto` for the batch's users held here; returns the new
    /// cursor. Every row up to `upto` has been notified by now (rows commit, and their
    /// notifications arrive, in sequence order), so those for other users can be passed over.
    async fn read_for(&self, cursor: i64, batch: Batch) -> i64 {
        if batch.upto <= cursor {
            return cursor;
        }
        let mut held: Vec<i64> = batch
            .users
            .into_iter()
            .filter(|u| self.hub.is_online(*u))
            .collect();
        held.sort_unstable();
        held.dedup();
        if held.is_empty() {
            return batch.upto;
        }
        match self.cluster.pushes_for(cursor, batch.upto, held).await {
            Ok(rows) => {
                for row in rows {
                    self.deliver(row);
                }
                batch.upto
            }
            Err(e) => {
                // Read every row from here on the next wake-up.
                tracing::warn!(error = %e, "cannot read the push log");
                self.read_on(cursor).await
            }
        }
    }

    /// Hands one row to this node's sessions of its user.
    fn deliver(&self, row: store::StoredPush) {
        let p = row.push;
        let Ok(updates) = enums::Updates::from_bytes(&p.body) else {
            tracing::warn!(seq = row.seq, "a push in the log does not decode; skipped");
            return;
        };
        self.hub.push_where(p.user_id, Arc::new(updates), |_, key| {
            p.only_key.is_none_or(|k| k == key) && p.except_key != Some(key)
        });
    }
}
