//! Several nodes on one PostgreSQL database: each call transition runs in a database
//! transaction under both users' row locks, and writes in it what it tells its users — history
//! numbered from the pts the transaction read, pushes into the shared log (`push_log.rs`); timers
//! any node may run (running one twice changes nothing: the second finds the call ended).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calls::{Call, CallRegistry, Effects, SessionRef, Timeouts};
use store::{CallChanges, CallScope, Cluster, InScope, Store};

use super::{BoxFuture, CallBackend, Committed, Operation, Renderer, decode, row};
use crate::errors::RpcError;

/// How often a node looks for due calls.
const POLL: Duration = Duration::from_millis(500);
/// Calls ended per look.
const DUE_PER_POLL: u32 = 100;
/// Seconds between housekeeping rounds.
const TIDY_EVERY_SECS: i32 = 60;
/// Seconds pushes stay in the log (a node that was away longer resumes from the newest).
const PUSH_LOG_SECS: i64 = 600;

/// What a transition's step made: its effects and the requester's own history.
struct Stepped {
    effects: Effects<()>,
    own: Vec<tl::enums::Update>,
}

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
    fn memory(&self) -> BoxFuture<'_, Option<crate::observe::metrics::CallMemory>> {
        Box::pin(async { None })
    }

    fn transition_groups(&self) -> Option<store::TransitionGroups> {
        Some(self.cluster.transition_groups())
    }

    fn run<'a>(
        &'a self,
        scope: CallScope,
        op: Operation,
        renderer: &'a dyn Renderer,
        requester: Option<SessionRef>,
        now: i64,
    ) -> BoxFuture<'a, Result<Committed, RpcError>> {
        let timeouts = self.timeouts;
        Box::pin(async move {
            // What the step made, or why it wrote nothing.
            let slot: Arc<Mutex<Option<Result<Stepped, RpcError>>>> = Arc::new(Mutex::new(None));
            let filled = slot.clone();
            let started = Instant::now();
            self.cluster
                .transact_calls(
                    scope,
                    now,
                    Box::new(move |given: InScope| {
                        Box::pin(async move {
                            let mut registry = CallRegistry::new(timeouts);
                            registry.load(decode(&given.calls), now as i32);
                            let effects = op(&mut registry);
                            let rendered = renderer.render(&effects, requester, &given.pts).await;
                            let (changes, stepped) = match rendered {
                                Ok(r) => {
                                    let changes = CallChanges {
                                        save: effects
                                            .persist
                                            .iter()
                                            .map(|c| row(&registry, c, now))
                                            .collect(),
                                        updates: r.updates,
                                        pushes: r.pushes.into_rows(),
                                    };
                                    (
                                        Some(changes),
                                        Ok(Stepped {
                                            effects,
                                            own: r.own,
                                        }),
                                    )
                                }
                                Err(e) => (None, Err(e)),
                            };
                            *filled.lock().unwrap_or_else(|e| e.into_inner()) = Some(stepped);
                            changes
                        })
                    }),
                )
                .await?;
            let stepped = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            let stepped = stepped.ok_or(RpcError::RpcCallFail)??;
            let commit_time = (!stepped.effects.persist.is_empty()).then(|| started.elapsed());
            Ok(Committed {
                effects: stepped.effects,
                commit_time,
                published: Some(stepped.own),
            })
        })
    }

    fn live_calls_of(&self, user_id: i64) -> BoxFuture<'_, Result<Vec<Call>, RpcError>> {
        Box::pin(async move { Ok(decode(&self.cluster.live_calls(user_id).await?)) })
    }

    fn live_calls(&self) -> BoxFuture<'_, Result<Vec<Call>, RpcError>> {
        Box::pin(async move {
            let rows = self.store.load_calls(0).await?;
            Ok(decode(&rows)
                .into_iter()
                .filter(|c| c.state().is_live())
                .collect())
        })
    }

    fn stored_calls(&self, recent: u32) -> BoxFuture<'_, Option<Vec<Call>>> {
        Box::pin(async move {
            match self.store.load_calls(recent).await {
                Ok(rows) => Some(decode(&rows)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the stored calls");
                    None
                }
            }
        })
    }

    fn expire<'a>(&'a self, now: i32, renderer: &'a dyn Renderer) -> BoxFuture<'a, Vec<Committed>> {
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
                match self
                    .run(CallScope::Call(id), op, renderer, None, i64::from(now))
                    .await
                {
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
                .store
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
