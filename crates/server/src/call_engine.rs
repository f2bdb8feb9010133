//! Call transitions as the handlers see them (`../shared/spec/calls.md`): an operation of the
//! sans-IO registry run where calls live ([`crate::topology::CallBackend`]) and committed
//! before [`transition`] returns; and the server's call timer, which ends calls past their
//! deadline (spec §6.3).

use std::sync::{Arc, Mutex};

use calls::{Call, CallRegistry, Effects};
use store::CallScope;

use crate::call_service::publish;
use crate::errors::RpcError;
use crate::shared::Shared;
use crate::topology::Committed;

pub use crate::topology::decode;

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
    // The backend runs an operation without a result; the result waits here.
    let slot = Arc::new(Mutex::new(None));
    let filled = slot.clone();
    let committed = shared
        .calls
        .run(
            scope,
            Box::new(move |registry| {
                op(registry).map(|result| {
                    *filled.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                })
            }),
            shared.clock.now_secs(),
        )
        .await?;
    observe_commit(shared, &committed);
    let result = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    let result = result.ok_or(RpcError::RpcCallFail)?;
    Ok(committed.effects.map(|()| result))
}

/// Tells the metrics and the inspector what a commit changed.
fn observe_commit(shared: &Shared, committed: &Committed) {
    if let Some(elapsed) = committed.commit_time {
        shared.observe.metrics.store_commit("call", elapsed);
    }
    shared.observe.calls_committed(
        &committed.effects.persist,
        &committed.effects.events,
        shared.clock.now_ms(),
    );
}

/// The calls `user_id` takes part in that have not ended.
pub async fn live_calls_of(shared: &Shared, user_id: i64) -> Result<Vec<Call>, RpcError> {
    shared.calls.live_calls_of(user_id).await
}

/// The server's call timer: ends calls past their deadline, until stopped.
pub async fn run_timers(shared: Arc<Shared>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    loop {
        let now = shared.clock.now_secs() as i32;
        for committed in shared.calls.expire(now).await {
            observe_commit(&shared, &committed);
            if let Err(e) = publish(&shared, &committed.effects, None).await {
                tracing::warn!(error = ?e, "could not publish expired calls");
            }
            for p in &committed.effects.persist {
                let reason = p.discard.as_ref().and_then(|d| d.reason.clone());
                tracing::info!(call_id = p.id, ?reason, "call ended by the server's timer");
            }
        }
        shared.calls.tidy(now).await;
        tokio::select! {
            _ = shared.calls.wait_for_work(now) => {}
            _ = stopped.changed() => return,
        }
    }
}
