//! Pushes between nodes on one PostgreSQL database: a push becomes a row of a shared log, and
//! each node hands the rows for the users it holds to its own sessions — so a session gets its
//! updates whichever node it is on.
//!
//! Who is woken: each node has an id and a notification channel of its own, and keeps a
//! presence row for every user it holds sessions of (written when a user's first session
//! arrives, removed with the last). A published row notifies only the nodes present for its
//! user, so the work per push does not grow with the number of nodes.
//!
//! Nothing is lost on the way: a notification carries only `user_id:seq`, the row is the push.
//! A user's presence is written after their first session arrived, so right after it is
//! written the node reads that user's rows from its cursor, and a row read twice (by that read
//! and a later wake-up) is handed out once. A node whose listening connection dropped reads on
//! through every row from its cursor when it is back and writes its presence again; one that
//! was thought gone (no heartbeat for [`FORGET_NODE_SECS`]) writes all of it again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use calls::PushTarget;
use store::{Cluster, PushRow, StoredPush, Wake};
use tl::{Decode, Encode, Layer, enums};
use tokio::sync::watch;

use super::{BoxFuture, Delivery, Outbox};
use crate::cache::Cache;
use crate::clock::Clock;
use crate::errors::RpcError;
use crate::hub::Hub;

/// Rows read from the push log per query.
const PAGE: u32 = 500;
/// How often a node says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// Seconds without a heartbeat after which a node is forgotten, with its presence.
const FORGET_NODE_SECS: i64 = 300;
/// How soon a presence write that failed is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Pushes through the shared log.
pub struct PushLog {
    cluster: Arc<dyn Cluster>,
    hub: Arc<Hub>,
    cache: Arc<Cache>,
    clock: Clock,
}

impl PushLog {
    /// The log of `cluster`, delivered to `hub`'s sessions; `cache` forgets users other
    /// nodes changed.
    pub fn new(cluster: Arc<dyn Cluster>, hub: Arc<Hub>, cache: Arc<Cache>, clock: Clock) -> Self {
        PushLog {
            cluster,
            hub,
            cache,
            clock,
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

    /// Joins as a node, then follows the log from its newest row, woken by the database's
    /// notifications for the users it holds; each wake-up takes every notification waiting at
    /// that moment and reads only those users' rows.
    fn follow(&self, mut stopped: watch::Receiver<bool>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Before joining: every user whose presence changes from here on is heard of.
            let mut changes = self.hub.watch();
            let Some(node) = self
                .until_done(&mut stopped, || self.cluster.join(self.clock.now_secs()))
                .await
            else {
                return;
            };
            let mut wakes = self.cluster.listen(node);
            let Some(cursor) = self
                .until_done(&mut stopped, || self.cluster.push_cursor())
                .await
            else {
                return;
            };
            let mut f = Follower {
                node,
                cursor,
                delivered: HashMap::new(),
                pending: self.hub.online_users().into_iter().collect(),
                retry: false,
            };
            let mut heartbeat = tokio::time::interval(HEARTBEAT);
            heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let mut batch = Batch::default();
                let mut beat = false;
                tokio::select! {
                    wake = wakes.recv() => match wake {
                        Some(w) => batch.add(w, &self.cache),
                        None => return,
                    },
                    user = changes.recv() => match user {
                        Some(u) => {
                            f.pending.insert(u);
                        }
                        None => return,
                    },
                    _ = heartbeat.tick() => beat = true,
                    _ = tokio::time::sleep(RETRY), if f.retry => {}
                    _ = stopped.changed() => return,
                }
                // The wake-ups first, then the presence changes: a user whose first session
                // arrived after these wake-ups were taken has no row at or below the cursor
                // they lead to that it needs.
                while let Ok(w) = wakes.try_recv() {
                    batch.add(w, &self.cache);
                }
                while let Ok(u) = changes.try_recv() {
                    f.pending.insert(u);
                }
                if batch.everything {
                    f.pending.extend(self.hub.online_users());
                }
                if beat || !f.pending.is_empty() {
                    self.write_presence(&mut f).await;
                }
                if beat {
                    let before = self.clock.now_secs() - FORGET_NODE_SECS;
                    if let Err(e) = self.cluster.forget_nodes_before(before).await {
                        tracing::warn!(error = %e, "cannot forget nodes gone quiet");
                    }
                }
                if batch.everything {
                    self.read_on(&mut f).await;
                } else {
                    self.read_for(&mut f, batch).await;
                }
            }
        })
    }
}

/// What one node's follower of the log keeps.
struct Follower {
    /// This node's id.
    node: i64,
    /// Every row up to here has been handled.
    cursor: i64,
    /// The newest row handed out per held user: a row read twice is handed out once.
    delivered: HashMap<i64, i64>,
    /// Users whose presence here may have changed and is not written yet.
    pending: HashSet<i64>,
    /// A presence write failed: try again soon.
    retry: bool,
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
    /// Runs `attempt` until it succeeds (logging each failure) or `stopped` changes.
    async fn until_done<T, F>(
        &self,
        stopped: &mut watch::Receiver<bool>,
        attempt: impl Fn() -> F,
    ) -> Option<T>
    where
        F: std::future::Future<Output = Result<T, store::StoreError>>,
    {
        loop {
            match attempt().await {
                Ok(v) => return Some(v),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot join the push log; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        _ = stopped.changed() => return None,
                    }
                }
            }
        }
    }

    /// Writes the pending presence changes (and the heartbeat), then reads the rows of users
    /// who came online from the cursor. Kept pending on failure, to be tried again.
    async fn write_presence(&self, f: &mut Follower) {
        let users: Vec<i64> = f.pending.drain().collect();
        let (online, offline): (Vec<i64>, Vec<i64>) =
            users.iter().partition(|u| self.hub.is_online(**u));
        let now = self.clock.now_secs();
        match self
            .cluster
            .set_presence(f.node, now, online.clone(), offline.clone())
            .await
        {
            Ok(forgotten) => {
                f.retry = false;
                for u in &offline {
                    f.delivered.remove(u);
                }
                if forgotten {
                    tracing::warn!(
                        node = f.node,
                        "this node had been forgotten; presence written again"
                    );
                    f.pending.extend(self.hub.online_users());
                    f.retry = true;
                }
                if !online.is_empty() {
                    match self.cluster.pushes_for(f.cursor, i64::MAX, online).await {
                        Ok(rows) => rows.into_iter().for_each(|r| self.deliver(f, r)),
                        Err(e) => tracing::warn!(error = %e, "cannot read the push log"),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot write this node's presence; retrying");
                f.pending.extend(users);
                f.retry = true;
            }
        }
    }

    /// Delivers every row after the cursor to this node's sessions.
    async fn read_on(&self, f: &mut Follower) {
        loop {
            let rows = match self.cluster.pushes_after(f.cursor, PAGE).await {
                Ok(rows) => rows,
                Err(e) => {
                    // The next wake-up (or the listener's reconnect) reads on from here.
                    tracing::warn!(error = %e, "cannot read the push log");
                    return;
                }
            };
            let full = rows.len() == PAGE as usize;
            for row in rows {
                f.cursor = row.seq;
                self.deliver(f, row);
            }
            if !full {
                return;
            }
        }
    }

    /// Delivers the rows up to `batch.upto` for the batch's users held here. Every row up to
    /// `upto` for a user this node is present for has been notified by now (rows commit, and
    /// their notifications arrive, in sequence order), so the cursor moves to `upto`.
    async fn read_for(&self, f: &mut Follower, batch: Batch) {
        if batch.upto <= f.cursor {
            return;
        }
        let mut held: Vec<i64> = batch
            .users
            .into_iter()
            .filter(|u| self.hub.is_online(*u))
            .collect();
        held.sort_unstable();
        held.dedup();
        if held.is_empty() {
            f.cursor = batch.upto;
            return;
        }
        match self.cluster.pushes_for(f.cursor, batch.upto, held).await {
            Ok(rows) => {
                for row in rows {
                    self.deliver(f, row);
                }
                f.cursor = batch.upto;
            }
            Err(e) => {
                // Read every row from here on.
                tracing::warn!(error = %e, "cannot read the push log");
                self.read_on(f).await;
            }
        }
    }

    /// Hands one row to this node's sessions of its user, unless it was handed out already.
    fn deliver(&self, f: &mut Follower, row: StoredPush) {
        let p = row.push;
        if f.delivered
            .get(&p.user_id)
            .is_some_and(|seq| *seq >= row.seq)
        {
            return;
        }
        let Ok(updates) = enums::Updates::from_bytes(&p.body) else {
            tracing::warn!(seq = row.seq, "a push in the log does not decode; skipped");
            return;
        };
        let reached = self.hub.push_where(p.user_id, Arc::new(updates), |_, key| {
            p.only_key.is_none_or(|k| k == key) && p.except_key != Some(key)
        });
        if reached > 0 || self.hub.is_online(p.user_id) {
            f.delivered.insert(p.user_id, row.seq);
        }
    }
}
