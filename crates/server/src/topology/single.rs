//! One node on its own store: the call registry in memory behind one lock, writes queued in
//! transition order and committed before the transition returns; pushes straight to this
//! node's sessions.
//!
//! Memory holds every live call and a bounded number of recently ended ones. A request that
//! names an ended call no longer held (by id, or a `random_id` an evicted call may have used)
//! reads it from the store first, outside the lock, and loads it back; the read queues behind
//! every write queued before it, so it finds whatever left memory before it began, and
//! [`CallRegistry::overtook`] says when one left during it. Ended calls are deleted from the
//! store a tombstone period after they ended ([`CallBackend::tidy`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use calls::{Call, CallRegistry, Effects, Lookup, PushTarget, SessionRef, State, Timeouts};
use store::{CallScope, Store};
use tokio::sync::{Mutex, MutexGuard, Notify, watch};

use super::{
    BoxFuture, CallBackend, Committed, Delivery, Operation, Outbox, Renderer, decode, row,
};
use crate::errors::RpcError;
use crate::hub::Hub;
use crate::observe::metrics::CallMemory;

/// The longest the timer sleeps without a deadline in sight.
const IDLE_WAKE_SECS: i32 = 60;
/// Seconds between deletions of old ended calls from the store.
const TIDY_EVERY_SECS: i32 = 60;

/// Calls in memory, stored as they change.
pub struct LocalCalls {
    registry: Mutex<CallRegistry>,
    store: Arc<dyn Store>,
    /// Woken when a call gets a deadline before the timer's wake-up, so the timer recomputes
    /// it.
    changed: Notify,
    /// When the timer next wakes (Unix seconds), set under the registry's lock as it computes
    /// it: a transition whose deadlines all come later leaves the timer asleep.
    timer_wakes_at: AtomicI32,
    /// When old ended calls were last deleted from the store.
    last_tidy: AtomicI32,
    /// Store reads for calls a request named that memory no longer held.
    read_back: AtomicU64,
}

impl LocalCalls {
    /// The registry with every live stored call and the `recent` latest ended ones loaded;
    /// also returns those calls.
    pub async fn restore(
        store: Arc<dyn Store>,
        timeouts: Timeouts,
        recent: usize,
        now: i32,
    ) -> Result<(LocalCalls, Vec<Call>), String> {
        let rows = store
            .load_calls(u32::try_from(recent).unwrap_or(u32::MAX))
            .await
            .map_err(|e| e.to_string())?;
        let calls = decode(&rows);
        let mut registry = CallRegistry::new(timeouts).with_recent_capacity(recent);
        // All `recent` slots filled: older ended calls may stay in the store, each ended by
        // the oldest loaded one; their random_ids are checked there until a tombstone period
        // after it. Fewer loaded: the store holds no other, and nothing is read back.
        let ended_at = rows
            .iter()
            .filter(|r| r.state == State::Discarded.name())
            .map(|r| r.updated_at);
        if ended_at.clone().count() >= recent {
            let ended_by = ended_at
                .min()
                .map_or(now, |at| at.clamp(0, now.into()) as i32);
            registry = registry.with_unheld_ended_calls(ended_by);
        }
        registry.load(calls.clone(), now);
        let local = LocalCalls {
            registry: Mutex::new(registry),
            store,
            changed: Notify::new(),
            timer_wakes_at: AtomicI32::new(0),
            last_tidy: AtomicI32::new(0),
            read_back: AtomicU64::new(0),
        };
        Ok((local, calls))
    }

    /// The registry's lock, taken once every call `scope` names that may be stored but is not
    /// held has been read back from the store.
    async fn lock_with(
        &self,
        scope: &CallScope,
        now: i32,
    ) -> Result<MutexGuard<'_, CallRegistry>, RpcError> {
        let (call, random) = match *scope {
            CallScope::Call(id) => (Some(id), None),
            CallScope::Request {
                caller, random_id, ..
            } => (None, Some((caller, random_id))),
        };
        let mut registry = self.registry.lock().await;
        while let Some(lookup) = registry.missing(call, random, now) {
            let seen = registry.evictions();
            drop(registry);
            self.read_back.fetch_add(1, Ordering::Relaxed);
            let row = match lookup {
                Lookup::Id(id) => self.store.call(id).await?,
                Lookup::Random((caller, random_id)) => {
                    self.store.call_by_random(caller, random_id).await?
                }
            };
            registry = self.registry.lock().await;
            if registry.overtook(seen, lookup) {
                continue;
            }
            // Only ended calls leave memory, so only an ended row is news; memory keeps the
            // newer copy of anything it holds.
            let ended = decode(row.as_slice())
                .into_iter()
                .filter(|c| c.state() == State::Discarded);
            registry.load(ended, now);
            // Its tombstone may leave memory before the timer's wake-up.
            self.changed.notify_one();
            break;
        }
        Ok(registry)
    }

    /// Runs `op` under the lock `registry` and commits what it changed.
    async fn apply(
        &self,
        mut registry: MutexGuard<'_, CallRegistry>,
        op: Operation,
        now: i64,
    ) -> Result<Committed, RpcError> {
        let effects = op(&mut registry);
        let writes = self.queue_writes(&registry, &effects, now);
        let wakes_at = self.timer_wakes_at.load(Ordering::Relaxed);
        let sooner = effects
            .persist
            .iter()
            .filter_map(|c| registry.deadline_of(c))
            .any(|d| d < wakes_at);
        drop(registry);
        // Timed only when something is written (the clock is not free on every request).
        let started = (!effects.persist.is_empty()).then(Instant::now);
        writes.await?;
        let commit_time = started.map(|s| s.elapsed());
        if sooner {
            self.changed.notify_one();
        }
        Ok(Committed {
            effects,
            commit_time,
            published: None,
        })
    }

    /// Queues the writes of what an operation changed and returns the wait for their commit.
    /// Called under the registry lock and awaited after it: the store applies writes in the
    /// order they were queued (the [`Store`] contract), so calls are stored in the order the
    /// registry changed them, while the next transition need not wait for this one's commit —
    /// and concurrent transitions share one commit.
    fn queue_writes(
        &self,
        registry: &CallRegistry,
        effects: &Effects<()>,
        now: i64,
    ) -> impl std::future::Future<Output = Result<(), RpcError>> + Send + '_ {
        let writes: Vec<store::StoreFuture<'_, ()>> = effects
            .persist
            .iter()
            .map(|call| self.store.save_call(row(registry, call, now)))
            .collect();
        async move {
            for write in writes {
                write.await?;
            }
            Ok(())
        }
    }
}

impl CallBackend for LocalCalls {
    fn memory(&self) -> BoxFuture<'_, Option<CallMemory>> {
        Box::pin(async move {
            let registry = self.registry.lock().await;
            Some(CallMemory {
                ended_held: registry.recent_len() as u64,
                evicted: registry.evictions(),
                read_back: self.read_back.load(Ordering::Relaxed),
            })
        })
    }

    /// Publishing is left to the caller: history goes through the store's writer, which
    /// numbers it, and pushes straight to this node's sessions.
    fn run<'a>(
        &'a self,
        scope: CallScope,
        op: Operation,
        _renderer: &'a dyn Renderer,
        _requester: Option<SessionRef>,
        now: i64,
    ) -> BoxFuture<'a, Result<Committed, RpcError>> {
        Box::pin(async move {
            let registry = self.lock_with(&scope, now as i32).await?;
            self.apply(registry, op, now).await
        })
    }

    fn live_calls_of(&self, user_id: i64) -> BoxFuture<'_, Result<Vec<Call>, RpcError>> {
        Box::pin(async move {
            let registry = self.registry.lock().await;
            Ok(registry
                .live_calls_of(user_id)
                .into_iter()
                .cloned()
                .collect())
        })
    }

    fn live_calls(&self) -> BoxFuture<'_, Result<Vec<Call>, RpcError>> {
        Box::pin(async move { Ok(self.registry.lock().await.live_calls().cloned().collect()) })
    }

    fn stored_calls(&self, _recent: u32) -> BoxFuture<'_, Option<Vec<Call>>> {
        Box::pin(async { None })
    }

    fn expire<'a>(
        &'a self,
        now: i32,
        _renderer: &'a dyn Renderer,
    ) -> BoxFuture<'a, Vec<Committed>> {
        Box::pin(async move {
            let op: Operation = Box::new(move |r| r.tick(now));
            let registry = self.registry.lock().await;
            match self.apply(registry, op, i64::from(now)).await {
                Ok(c) if !c.effects.is_empty() => vec![c],
                Ok(_) => Vec::new(),
                Err(e) => {
                    tracing::warn!(error = ?e, "could not persist expired calls");
                    Vec::new()
                }
            }
        })
    }

    fn tidy(&self, now: i32) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let last = self.last_tidy.load(Ordering::Relaxed);
            if now - last < TIDY_EVERY_SECS {
                return;
            }
            self.last_tidy.store(now, Ordering::Relaxed);
            let tombstone = self.registry.lock().await.timeouts().tombstone;
            match self
                .store
                .forget_calls_before(i64::from(now) - i64::from(tombstone))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::debug!(calls = n, "ended calls deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot delete old ended calls"),
            }
        })
    }

    fn wait_for_work(&self, now: i32) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let wait = {
                let registry = self.registry.lock().await;
                let next = registry.next_deadline();
                let wait = next.map_or(IDLE_WAKE_SECS, |d| (d - now).clamp(0, IDLE_WAKE_SECS));
                self.timer_wakes_at.store(now + wait, Ordering::Relaxed);
                wait as u64
            };
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait * 1000 + 50)) => {}
                _ = self.changed.notified() => {}
            }
        })
    }
}

/// Pushes to this node's own sessions.
pub struct LocalDelivery {
    hub: Arc<Hub>,
}

impl LocalDelivery {
    /// Delivery through `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        LocalDelivery { hub }
    }
}

impl Delivery for LocalDelivery {
    fn send(&self, outbox: Outbox, _now: i64) -> BoxFuture<'_, Result<(), RpcError>> {
        for (target, updates) in outbox.0 {
            let value = Arc::new(updates);
            match target {
                PushTarget::User(u) => self.hub.push_where(u, value, |_, _| true),
                PushTarget::UserExcept(u, key) => self.hub.push_where(u, value, |_, k| k != key),
                PushTarget::Session(s) => {
                    self.hub.push_where(s.user_id, value, |_, k| k == s.key_id)
                }
            };
        }
        Box::pin(async { Ok(()) })
    }

    fn user_changed(&self, _user_id: i64) -> BoxFuture<'_, Result<(), RpcError>> {
        // The only node updated its cache itself.
        Box::pin(async { Ok(()) })
    }

    fn follow(&self, _stopped: watch::Receiver<bool>) -> BoxFuture<'_, ()> {
        // No other node publishes.
        Box::pin(async {})
    }
}
