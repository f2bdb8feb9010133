//! The calls service (`docs/calls.md`): every call operation goes through [`Calls::run`],
//! which runs the sans-IO registry's transition where calls live
//! ([`crate::topology::CallBackend`]: this node's memory or the shared database), commits it,
//! tells the inspector and metrics what happened, writes the history and sends the pushes —
//! and only then hands the handler its result. Commit, then publish, then answer: the order
//! lives here and nowhere else. The server's call timer ([`Calls::run_timers`]) publishes
//! the calls it ends the same way.
//!
//! - [`publish`]: the history messages (durable, with pts) and the pushes of a commit.
//! - [`views`]: a call as each viewer sees it, with its relays.

mod publish;
mod views;

use std::sync::{Arc, Mutex};

use calls::{Call, CallEvent, CallRegistry, Effects, SessionRef};
use mtproto::crypto::Entropy;
use store::CallScope;
use tl::enums;

use crate::clock::Clock;
use crate::config::CallSettings;
use crate::entropy::Randomness;
use crate::errors::RpcError;
use crate::observe::Observer;
use crate::services::{Updates, Users};
use crate::topology::{CallBackend, Committed};

/// Calls, wherever they live.
pub struct Calls {
    backend: Box<dyn CallBackend>,
    users: Arc<Users>,
    updates: Arc<Updates>,
    observe: Arc<Observer>,
    media: views::Media,
    clock: Clock,
    entropy: Randomness,
}

/// What a call operation answered, once committed and published.
pub struct Published<R> {
    /// The operation's answer.
    pub result: R,
    /// What the state machine says happened.
    pub events: Vec<CallEvent>,
    /// The history updates the requesting session gets in its answer rather than as pushes.
    pub own_history: Vec<enums::Update>,
}

/// New call ids and access hashes, from the service's entropy.
pub struct CallIds(Randomness);

impl calls::Ids for CallIds {
    fn call_id(&mut self) -> i64 {
        self.0.i64() & i64::MAX
    }
    fn access_hash(&mut self) -> i64 {
        self.0.i64()
    }
}

/// What the calls service is built from.
pub struct CallsParts {
    /// Where calls live (one node or several).
    pub backend: Box<dyn CallBackend>,
    /// Users, to render the parties.
    pub users: Arc<Users>,
    /// Update logs and pushes.
    pub updates: Arc<Updates>,
    /// The inspector and metrics, told of every commit.
    pub observe: Arc<Observer>,
    /// The relays each call is offered (listed ones) and the p2p policy.
    pub settings: CallSettings,
    /// This node's reflector, if it runs one.
    pub reflector: Option<Arc<crate::relay::Reflector>>,
    /// TURN servers with shared-secret credentials.
    pub turn: Option<crate::relay::TurnSettings>,
    /// The server secret (peer tags).
    pub secret: [u8; 32],
    /// The time of day.
    pub clock: Clock,
    /// New ids.
    pub entropy: Randomness,
}

impl Calls {
    /// The service over `parts`.
    pub fn new(parts: CallsParts) -> Calls {
        Calls {
            backend: parts.backend,
            users: parts.users,
            updates: parts.updates,
            observe: parts.observe,
            media: views::Media::new(&parts.settings, parts.reflector, parts.turn, parts.secret),
            clock: parts.clock,
            entropy: parts.entropy,
        }
    }

    /// Ids for a new call.
    pub fn ids(&self) -> CallIds {
        CallIds(self.entropy.clone())
    }

    /// Runs `op` on the calls of `scope`, commits what it changed, publishes it (history, then
    /// pushes) and returns its answer. With `requester`, that session's own history updates
    /// come back in [`Published::own_history`] instead of being pushed to it.
    pub async fn run<R, F>(
        &self,
        scope: CallScope,
        requester: Option<SessionRef>,
        op: F,
    ) -> Result<Published<R>, RpcError>
    where
        R: Send + 'static,
        F: FnOnce(&mut CallRegistry) -> Effects<R> + Send + 'static,
    {
        // The backend runs an operation without a result; the result waits here.
        let slot = Arc::new(Mutex::new(None));
        let filled = slot.clone();
        let committed = self
            .backend
            .run(
                scope,
                Box::new(move |registry| {
                    op(registry).map(|result| {
                        *filled.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                    })
                }),
                self,
                requester,
                self.clock.now_secs(),
            )
            .await?;
        self.observe_commit(&committed);
        let own_history = match committed.published {
            Some(own) => own,
            None => self.publish(&committed.effects, requester).await?,
        };
        let result = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(Published {
            result: result.ok_or(RpcError::RpcCallFail)?,
            events: committed.effects.events,
            own_history,
        })
    }

    /// Tells the reflector (unless rendering inside the commit did), the metrics and the
    /// inspector what a commit changed (the reflector first: a confirmed call's parties may
    /// send to it as soon as they hear).
    fn observe_commit(&self, committed: &Committed) {
        if committed.published.is_none() {
            self.media.follow(&committed.effects.events);
        }
        if let Some(elapsed) = committed.commit_time {
            self.observe.metrics.store_commit("call", elapsed);
        }
        let effects = &committed.effects;
        if !effects.persist.is_empty() || !effects.events.is_empty() {
            let now_ms = self.clock.now_ms();
            self.observe
                .calls_committed(&effects.persist, &effects.events, now_ms);
        }
    }

    /// The calls `user_id` takes part in that have not ended.
    pub async fn live_calls_of(&self, user_id: i64) -> Result<Vec<Call>, RpcError> {
        self.backend.live_calls_of(user_id).await
    }

    /// Every call that has not ended.
    pub async fn live_calls(&self) -> Result<Vec<Call>, RpcError> {
        self.backend.live_calls().await
    }

    /// Every live stored call and the `recent` latest ended ones as the database holds them
    /// now, when other nodes may have changed them; `None` on one node, whose own record is
    /// complete.
    pub async fn stored_calls(&self, recent: u32) -> Option<Vec<Call>> {
        self.backend.stored_calls(recent).await
    }

    /// What this node holds in memory (one node); `None` where the database holds the calls.
    pub async fn memory(&self) -> Option<crate::observe::metrics::CallMemory> {
        self.backend.memory().await
    }

    /// How this node's transitions have shared database transactions (several nodes).
    pub fn transition_groups(&self) -> Option<store::TransitionGroups> {
        self.backend.transition_groups()
    }

    /// This node's reflector, if it runs one.
    pub fn reflector(&self) -> Option<&Arc<crate::relay::Reflector>> {
        self.media.reflector()
    }

    /// Revokes reflector grants of calls that ended where this node did not see it (another
    /// node ended them), every few seconds until `stopped`.
    pub async fn run_relay_sweep(&self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let Some(reflector) = self.media.reflector().cloned() else {
            return;
        };
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stopped.changed() => return,
            }
            let granted = reflector.granted();
            if granted.is_empty() {
                continue;
            }
            let Ok(live) = self.backend.live_calls().await else {
                continue;
            };
            let live: std::collections::HashSet<i64> = live.iter().map(|c| c.id).collect();
            for id in granted.into_iter().filter(|id| !live.contains(id)) {
                tracing::debug!(call_id = id, "reflector grant of an ended call revoked");
                reflector.revoke(id);
            }
        }
    }

    /// The server's call timer: ends calls past their deadline and publishes their ends,
    /// until `stopped`.
    pub async fn run_timers(&self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        loop {
            let now = self.clock.now_secs() as i32;
            for committed in self.backend.expire(now, self).await {
                self.observe_commit(&committed);
                if committed.published.is_none()
                    && let Err(e) = self.publish(&committed.effects, None).await
                {
                    tracing::warn!(error = ?e, "could not publish expired calls");
                }
                for p in &committed.effects.persist {
                    let reason = p.discard().and_then(|d| d.reason.clone());
                    tracing::info!(call_id = p.id, ?reason, "call ended by the server's timer");
                }
            }
            self.backend.tidy(now).await;
            tokio::select! {
                _ = self.backend.wait_for_work(now) => {}
                _ = stopped.changed() => return,
            }
        }
    }
}
