//! Several nodes on one PostgreSQL database: each call transition runs in a database
//! transaction under both users' row locks; timers any node may run (running one twice changes
//! nothing: the second finds the call ended). Pushes go through the shared log
//! (`push_log.rs`).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calls::{Call, CallRegistry, Timeouts};
use store::{CallChanges, CallScope, Cluster, Store};

use super::{BoxFuture, CallBackend, Committed, Operation, decode, row};
use crate::errors::RpcError;

/// How often a node looks for due calls.
const POLL: Duration = Duration::from_millis(500);
/// Calls ended per look.
const DUE_PER_POLL: u32 = 100;
/// Seconds between housekeeping rounds.
const TIDY_EVERY_SECS: i32 = 60;
/// Seconds pushes stay in the log (a node that was away longer resumes from the newest).
const PUSH_LOG_SECS: i64 = 600;

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
