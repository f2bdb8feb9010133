//! Call transitions as the handlers see them (`docs/calls.md`): an operation of the
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

/// A committed transition the world has not heard of yet. Its result comes out only through
/// [`Unpublished::publish`], which first writes the history and sends the pushes: commit, then
/// publish, then answer, in that order, whatever the handler does.
#[must_use = "a transition's result is read by publishing it"]
pub struct Unpublished<R> {
    effects: Effects<R>,
}

/// A transition's result once published.
pub struct Published<R> {
    /// The operation's answer.
    pub result: R,
    /// The history updates the requesting session gets in its answer rather than as pushes
    /// (see [`call_service::write_history`]).
    pub own_history: Vec<tl::enums::Update>,
}

impl<R> Unpublished<R> {
    /// What the state machine says happened.
    pub fn events(&self) -> &[calls::CallEvent] {
        &self.effects.events
    }

    /// Writes the history and sends the pushes, then hands out the result. With `requester`,
    /// that session's own history updates are returned instead of pushed to it.
    pub async fn publish(
        self,
        shared: &Shared,
        requester: Option<calls::SessionRef>,
    ) -> Result<Published<R>, RpcError> {
        let own_history = publish(shared, &self.effects, requester).await?;
        Ok(Published {
            result: self.effects.result,
            own_history,
        })
    }
}

/// Runs `op` on the calls of `scope` and commits what it changed. Nothing is pushed or
/// answered before the commit; see [`Unpublished`] for what follows.
pub async fn transition<R, F>(
    shared: &Shared,
    scope: CallScope,
    op: F,
) -> Result<Unpublished<R>, RpcError>
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
    Ok(Unpublished {
        effects: committed.effects.map(|()| result),
    })
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
                let reason = p.discard().and_then(|d| d.reason.clone());
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
