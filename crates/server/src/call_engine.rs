//! Where call transitions run (`../shared/spec/calls.md`; issue 6). On one node (SQLite) the
//! sans-IO registry lives in memory behind one lock, which serialises every transition (the
//! busy check and a new call's creation are one step); the changed calls are queued for
//! storage under the lock, in transition order, and committed before anyone hears of them.
//! With several nodes (PostgreSQL) the database is the registry: each transition loads the
//! calls in its scope under both users' row locks, runs the same sans-IO code on them and
//! writes the result in that transaction, so busy is exact across nodes. Timers follow the same
//! split: the in-memory registry's next deadline, or any node polling for due calls (running
//! one twice changes nothing: the second finds the call ended).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use calls::{Call, CallRegistry, Effects};
use store::{CallChanges, CallRow, CallScope};

use crate::call_service::publish;
use crate::errors::RpcError;
use crate::shared::{Shared, now_ms, now_secs};

/// A call as stored, with its deadline under `registry`'s timeouts.
fn row(registry: &CallRegistry, call: &Call, now: i64) -> CallRow {
    CallRow {
        id: call.id,
        admin_id: call.admin_id,
        participant_id: call.participant_id,
        state: call.state.name().into(),
        body: call.to_bytes(),
        updated_at: now,
        random_id: call.random_id,
        deadline: registry.deadline_of(call),
    }
}

/// Calls from their stored rows (a row that does not decode is logged and skipped).
pub fn decode(rows: &[CallRow]) -> Vec<Call> {
    rows.iter()
        .filter_map(|r| match Call::from_bytes(&r.body) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(call_id = r.id, error = %e, "stored call does not decode; skipped");
                None
            }
        })
        .collect()
}

/// Runs `op` on the calls of `scope` and commits what it changed; returns its effects for
/// publishing. Nothing is answered or pushed before the commit.
pub async fn transition<R, F>(
    shared: &Shared,
    scope: CallScope,
    op: F,
) -> Result<Effects<R>, RpcError>
where
    R: Send + 'static,
    F: FnOnce(&mut CallRegistry) -> Effects<R> + Send + 'static,
{
    let Some(cluster) = &shared.cluster else {
        let (effects, committed) = {
            let mut registry = shared.calls.lock().await;
            let effects = op(&mut registry);
            let committed = queue_persist(shared, &registry, &effects);
            (effects, committed)
        };
        let started = std::time::Instant::now();
        committed.await?;
        if !effects.persist.is_empty() {
            let metrics = &shared.observe.metrics;
            metrics.store_commit("call", started.elapsed());
        }
        shared.observe.calls_committed(&effects.persist, now_ms());
        if !effects.is_empty() {
            shared.calls_changed.notify_one();
        }
        return Ok(effects);
    };
    let slot = Arc::new(Mutex::new(None));
    let filled = slot.clone();
    let timeouts = shared.config.calls.timeouts();
    let now = now_secs();
    let started = std::time::Instant::now();
    cluster
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
    if !effects.persist.is_empty() {
        let metrics = &shared.observe.metrics;
        metrics.store_commit("call", started.elapsed());
    }
    shared.observe.calls_committed(&effects.persist, now_ms());
    Ok(effects)
}

/// Queues the writes of what an operation changed and returns the wait for their commit. Called
/// under the registry lock and awaited after it: the store applies writes in the order they were
/// queued (the [`store::Store`] contract), so calls are stored in the order the registry changed
/// them, while the next transition need not wait for this one's commit — and concurrent
/// transitions share one commit.
fn queue_persist<'a, R>(
    shared: &'a Shared,
    registry: &CallRegistry,
    effects: &Effects<R>,
) -> impl std::future::Future<Output = Result<(), RpcError>> + 'a {
    let now = now_secs();
    let mut writes: Vec<store::StoreFuture<'a, ()>> = effects
        .persist
        .iter()
        .map(|call| shared.store.save_call(row(registry, call, now)))
        .collect();
    writes.extend(
        effects
            .forget
            .iter()
            .map(|id| shared.store.delete_call(*id)),
    );
    async move {
        for write in writes {
            write.await?;
        }
        Ok(())
    }
}

/// The calls `user_id` takes part in that have not ended.
pub async fn live_calls_of(shared: &Shared, user_id: i64) -> Result<Vec<Call>, RpcError> {
    match &shared.cluster {
        None => Ok(shared
            .calls
            .lock()
            .await
            .live_calls_of(user_id)
            .into_iter()
            .cloned()
            .collect()),
        Some(cluster) => Ok(decode(&cluster.live_calls(user_id).await?)),
    }
}

/// Restores stored calls into the in-memory registry at start-up (one node).
pub async fn load(shared: &Shared, registry: &mut CallRegistry) -> Result<usize, String> {
    let rows = shared.store.load_calls().await.map_err(|e| e.to_string())?;
    let calls = decode(&rows);
    let n = calls.len();
    shared.observe.inspector.restore(&calls, now_ms());
    registry.load(calls);
    Ok(n)
}

fn log_ended<R>(effects: &Effects<R>) {
    for p in &effects.persist {
        tracing::info!(call_id = p.id, reason = ?p.discard.as_ref().and_then(|d| d.reason.clone()), "call ended by the server's timer");
    }
}

/// The server's call timer: ends calls past their deadline (spec §6.3), until stopped.
pub async fn run_timers(shared: Arc<Shared>, stopped: tokio::sync::watch::Receiver<bool>) {
    if shared.cluster.is_some() {
        run_shared_timers(shared, stopped).await
    } else {
        run_local_timers(shared, stopped).await
    }
}

async fn run_local_timers(shared: Arc<Shared>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    loop {
        let now = now_secs() as i32;
        let effects = transition(&shared, CallScope::Call(0), move |r| r.tick(now)).await;
        match effects {
            Ok(effects) if !effects.is_empty() => {
                if let Err(e) = publish(&shared, &effects, None).await {
                    tracing::warn!(error = ?e, "could not publish expired calls");
                }
                log_ended(&effects);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, "could not persist expired calls"),
        }
        let next = shared.calls.lock().await.next_deadline();
        let wait = next.map_or(60, |d| (d - now).clamp(0, 60)) as u64;
        let notified = shared.calls_changed.notified();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait * 1000 + 50)) => {}
            _ = notified => {}
            _ = stopped.changed() => return,
        }
    }
}

/// How often a node looks for due calls when several share the database.
const POLL: Duration = Duration::from_millis(500);

async fn run_shared_timers(shared: Arc<Shared>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let Some(cluster) = shared.cluster.clone() else {
        return;
    };
    let mut last_cleanup = 0;
    loop {
        let now = now_secs() as i32;
        match cluster.due_calls(now, 100).await {
            Ok(due) => {
                for id in due {
                    match transition(&shared, CallScope::Call(id), move |r| r.tick(now)).await {
                        Ok(effects) if !effects.is_empty() => {
                            if let Err(e) = publish(&shared, &effects, None).await {
                                tracing::warn!(error = ?e, "could not publish expired calls");
                            }
                            log_ended(&effects);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(call_id = id, error = ?e, "could not end a due call")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for due calls"),
        }
        if now - last_cleanup >= 60 {
            last_cleanup = now;
            let tombstone = i64::from(shared.config.calls.timeouts().tombstone);
            if let Err(e) = cluster
                .forget_calls_before(i64::from(now) - tombstone)
                .await
            {
                tracing::warn!(error = %e, "cannot forget ended calls");
            }
            if let Err(e) = cluster.forget_pushes_before(i64::from(now) - 600).await {
                tracing::warn!(error = %e, "cannot trim the push log");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stopped.changed() => return,
        }
    }
}
