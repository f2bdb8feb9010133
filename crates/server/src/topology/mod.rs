//! One node or several: where calls live and run, and how pushes reach sessions. The choice is
//! made once, when the server starts ([`Topology::single`] for one node on its own store,
//! [`Topology::several`] for nodes sharing PostgreSQL); everything above sees only the two
//! traits, [`CallBackend`] and [`Delivery`].
//!
//! - One node ([`single`]): the sans-IO registry in memory behind one lock, which serialises
//!   every transition (the busy check and a new call's creation are one step); changed calls
//!   are queued for storage under the lock, in transition order, and committed before anyone
//!   hears of them. Pushes go straight to this node's sessions.
//! - Several nodes ([`several`]): the database is the registry. Each transition loads the
//!   calls in its scope under both users' row locks, runs the same sans-IO code on them and
//!   writes the result in that transaction, so busy is exact across nodes. What the change
//!   tells its users — history with pts, pushes — is rendered ([`Renderer`]) while the locks
//!   are held and written in the same transaction: pushes become rows of a shared log
//!   ([`push_log`]) that wakes only the nodes holding their users.

mod push_log;
mod several;
mod single;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use calls::{Call, CallRegistry, Effects, PushTarget, SessionRef, Timeouts};
use store::{CallRow, CallScope, NewUpdate, PushRow};
use tl::{Encode, Layer};
use tokio::sync::watch;

use crate::cache::Cache;
use crate::errors::RpcError;
use crate::hub::Hub;
use crate::observe::metrics::CallMemory;

/// The future the topology's methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A call operation whose result the caller has already taken out
/// ([`crate::services::Calls::run`]).
pub type Operation = Box<dyn FnOnce(&mut CallRegistry) -> Effects<()> + Send>;

/// What a committed operation changed.
pub struct Committed {
    /// Its effects, to publish.
    pub effects: Effects<()>,
    /// How long writing them took, if anything was written.
    pub commit_time: Option<Duration>,
    /// Set when the backend wrote the history and pushes in the commit (several nodes): the
    /// requester's own history updates. `None`: the caller publishes them (one node).
    pub published: Option<Vec<tl::enums::Update>>,
}

/// Renders what a transition tells its users, for a backend that writes it in the
/// transition's own commit.
pub trait Renderer: Send + Sync {
    /// The history entries of `effects` as updates numbered after each user's `pts`, and
    /// its pushes rendered per viewer; `requester`'s own history is returned apart (it gets
    /// it in its answer). Runs while the users' rows are locked.
    fn render<'a>(
        &'a self,
        effects: &'a Effects<()>,
        requester: Option<SessionRef>,
        pts: &'a [(i64, i32)],
    ) -> BoxFuture<'a, Result<Rendered, RpcError>>;
}

/// A transition's history and pushes, ready to store.
pub struct Rendered {
    /// Updates for the users' logs.
    pub updates: Vec<NewUpdate>,
    /// Pushes, history ones first.
    pub pushes: Outbox,
    /// The requester's own history updates.
    pub own: Vec<tl::enums::Update>,
}

/// Where calls are kept and their transitions run.
pub trait CallBackend: Send + Sync {
    /// Runs `op` on the calls of `scope` and commits what it changed before returning; a
    /// backend that publishes in the commit renders with `renderer` for `requester`.
    fn run<'a>(
        &'a self,
        scope: CallScope,
        op: Operation,
        renderer: &'a dyn Renderer,
        requester: Option<SessionRef>,
        now: i64,
    ) -> BoxFuture<'a, Result<Committed, RpcError>>;
    /// The calls `user_id` takes part in that have not ended.
    fn live_calls_of(&self, user_id: i64) -> BoxFuture<'_, Result<Vec<Call>, RpcError>>;
    /// Every call that has not ended.
    fn live_calls(&self) -> BoxFuture<'_, Result<Vec<Call>, RpcError>>;
    /// Every live stored call and the `recent` latest ended ones in their current state, when
    /// other nodes may have changed them (several nodes); `None` on one node, whose own record
    /// is complete.
    fn stored_calls(&self, recent: u32) -> BoxFuture<'_, Option<Vec<Call>>>;
    /// Ends the calls past their deadline at `now`; what each ending changed, to publish.
    fn expire<'a>(&'a self, now: i32, renderer: &'a dyn Renderer) -> BoxFuture<'a, Vec<Committed>>;
    /// Housekeeping due at `now`: deleting ended calls past the tombstone time (and, with
    /// several nodes, old pushes).
    fn tidy(&self, now: i32) -> BoxFuture<'_, ()>;
    /// Waits until the timer may have work: the next deadline or a change (one node), the
    /// next poll (several).
    fn wait_for_work(&self, now: i32) -> BoxFuture<'_, ()>;
    /// What this node holds in memory (one node); `None` where the database holds the calls.
    fn memory(&self) -> BoxFuture<'_, Option<CallMemory>>;
    /// How this node's transitions have shared database transactions (several nodes);
    /// `None` where transitions run in memory.
    fn transition_groups(&self) -> Option<store::TransitionGroups> {
        None
    }
}

/// How pushes reach the sessions they are for.
pub trait Delivery: Send + Sync {
    /// Sends what `outbox` holds.
    fn send(&self, outbox: Outbox, now: i64) -> BoxFuture<'_, Result<(), RpcError>>;
    /// Tells every node that a user's profile or contacts changed (they drop cached copies).
    fn user_changed(&self, user_id: i64) -> BoxFuture<'_, Result<(), RpcError>>;
    /// Delivers what other nodes publish to this node's sessions, until `stopped`.
    fn follow(&self, stopped: watch::Receiver<bool>) -> BoxFuture<'_, ()>;
}

/// The two halves of the choice.
pub struct Topology {
    /// Where calls live.
    pub calls: Box<dyn CallBackend>,
    /// Where pushes go.
    pub delivery: Arc<dyn Delivery>,
}

impl Topology {
    /// One node: live calls and the `recent` latest ended ones in memory, restored from
    /// `store` at `now` (returned, for the inspector).
    pub async fn single(
        store: Arc<dyn store::Store>,
        timeouts: Timeouts,
        recent: usize,
        hub: Arc<Hub>,
        now: i32,
    ) -> Result<(Topology, Vec<Call>), String> {
        let (calls, restored) = single::LocalCalls::restore(store, timeouts, recent, now).await?;
        let topology = Topology {
            calls: Box::new(calls),
            delivery: Arc::new(single::LocalDelivery::new(hub)),
        };
        Ok((topology, restored))
    }

    /// Several nodes on one PostgreSQL database.
    pub fn several(
        store: Arc<dyn store::Store>,
        cluster: Arc<dyn store::Cluster>,
        timeouts: Timeouts,
        hub: Arc<Hub>,
        cache: Arc<Cache>,
        clock: crate::clock::Clock,
    ) -> Topology {
        Topology {
            calls: Box::new(several::SharedCalls::new(store, cluster.clone(), timeouts)),
            delivery: Arc::new(push_log::PushLog::new(cluster, hub, cache, clock)),
        }
    }
}

/// Pushes collected while an operation is published, sent together.
#[derive(Default)]
pub struct Outbox(Vec<(PushTarget, tl::enums::Updates)>);

impl Outbox {
    /// Adds a push.
    pub fn push(&mut self, target: PushTarget, updates: tl::enums::Updates) {
        self.0.push((target, updates));
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pushes as rows of the shared log.
    pub fn into_rows(self) -> Vec<PushRow> {
        self.0
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
            .collect()
    }
}

/// A call as stored, with its deadline under `registry`'s timeouts.
fn row(registry: &CallRegistry, call: &Call, now: i64) -> CallRow {
    CallRow {
        id: call.id,
        admin_id: call.admin_id,
        participant_id: call.participant_id,
        state: call.state().name().into(),
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
