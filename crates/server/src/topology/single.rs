//! One node on its own store: the call registry in memory behind one lock, writes queued in
//! transition order and committed before the transition returns; pushes straight to this
//! node's sessions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calls::{Call, CallRegistry, Effects, PushTarget, SessionRef, Timeouts};
use store::{CallScope, Store};
use tokio::sync::{Mutex, Notify, watch};

use super::{
    BoxFuture, CallBackend, Committed, Delivery, Operation, Outbox, Renderer, decode, row,
};
use crate::errors::RpcError;
use crate::hub::Hub;

/// The longest the timer sleeps without a deadline in sight.
const IDLE_WAKE_SECS: i32 = 60;

/// Calls in memory, stored as they change.
pub struct LocalCalls {
    registry: Mutex<CallRegistry>,
    store: Arc<dyn Store>,
    /// Woken when a call changes, so the timer recomputes its deadline.
    changed: Notify,
}

impl LocalCalls {
    /// The registry with every stored call loaded; also returns those calls.
    pub async fn restore(
        store: Arc<dyn Store>,
        timeouts: Timeouts,
    ) -> Result<(LocalCalls, Vec<Call>), String> {
        let rows = store.load_calls().await.map_err(|e| e.to_string())?;
        let calls = decode(&rows);
        let mut registry = CallRegistry::new(timeouts);
        registry.load(calls.clone());
        let local = LocalCalls {
            registry: Mutex::new(registry),
            store,
            changed: Notify::new(),
        };
        Ok((local, calls))
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
        let mut writes: Vec<store::StoreFuture<'_, ()>> = effects
            .persist
            .iter()
            .map(|call| self.store.save_call(row(registry, call, now)))
            .collect();
        writes.extend(effects.forget.iter().map(|id| self.store.delete_call(*id)));
        async move {
            for write in writes {
                write.await?;
            }
            Ok(())
        }
    }
}

impl CallBackend for LocalCalls {
    /// Publishing is left to the caller: history goes through the store's writer, which
    /// numbers it, and pushes straight to this node's sessions.
    fn run<'a>(
        &'a self,
        _scope: CallScope,
        op: Operation,
        _renderer: &'a dyn Renderer,
        _requester: Option<SessionRef>,
        now: i64,
    ) -> BoxFuture<'a, Result<Committed, RpcError>> {
        Box::pin(async move {
            let (effects, writes) = {
                let mut registry = self.registry.lock().await;
                let effects = op(&mut registry);
                let writes = self.queue_writes(&registry, &effects, now);
                (effects, writes)
            };
            let started = Instant::now();
            writes.await?;
            let commit_time = (!effects.persist.is_empty()).then(|| started.elapsed());
            if !effects.is_empty() {
                self.changed.notify_one();
            }
            Ok(Committed {
                effects,
                commit_time,
                published: None,
            })
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

    fn stored_calls(&self) -> BoxFuture<'_, Option<Vec<Call>>> {
        Box::pin(async { None })
    }

    fn expire<'a>(&'a self, now: i32, renderer: &'a dyn Renderer) -> BoxFuture<'a, Vec<Committed>> {
        Box::pin(async move {
            let op: Operation = Box::new(move |r| r.tick(now));
            match self
                .run(CallScope::Call(0), op, renderer, None, i64::from(now))
                .await
            {
                Ok(c) if !c.effects.is_empty() => vec![c],
                Ok(_) => Vec::new(),
                Err(e) => {
                    tracing::warn!(error = ?e, "could not persist expired calls");
                    Vec::new()
                }
            }
        })
    }

    fn tidy(&self, _now: i32) -> BoxFuture<'_, ()> {
        // Tombstones leave the registry in `tick`, and their rows with them.
        Box::pin(async {})
    }

    fn wait_for_work(&self, now: i32) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let next = self.registry.lock().await.next_deadline();
            let wait = next.map_or(IDLE_WAKE_SECS, |d| (d - now).clamp(0, IDLE_WAKE_SECS)) as u64;
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
