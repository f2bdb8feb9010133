//! Pushes between nodes on one PostgreSQL database: a push becomes a row of a shared log, and
//! each node hands the rows for the users it holds to its own sessions — so a session gets its
//! updates whichever node it is on.
//!
//! Who is woken: each node has an id and a notification channel of its own, and keeps a
//! presence row for every user it holds sessions of (written when a user's first session
//! arrives, removed with the last). A published row notifies only the nodes present for its
//! user, so the work per push does not grow with the number of nodes.
//!
//! Nothing is lost on the way: a notification carries only `user_id:seq`, the row is the push,
//! and a user's pushes are numbered 1, 2, 3, … in commit order (each is written under the
//! user's row lock). The node remembers the newest number it handed out per held user and, when
//! woken, reads that user's rows after it; a row read twice is handed out once. Writing a
//! user's presence waits for transitions holding the user's row and returns the user's newest
//! number, so every later push notifies this node; the rows made since shortly before the
//! user's first session arrived ([`ARRIVAL_SLACK_SECS`]) are read then, so nothing made in
//! between is missed. A node whose listening connection dropped writes its presence again
//! and reads every held user's rows after the newest it handed out; one that was thought gone
//! (no heartbeat for [`FORGET_NODE_SECS`]) writes all of it again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use store::{Cluster, PushCursor, StoredPush, Wake};
use tl::{Decode, enums};
use tokio::sync::watch;

use super::{BoxFuture, Delivery, Outbox};
use crate::cache::Cache;
use crate::clock::Clock;
use crate::errors::RpcError;
use crate::hub::Hub;

/// How long before a user's first session arrived their pushes are still handed to it (the
/// nodes' clocks differ a little, and rows carry whole seconds).
const ARRIVAL_SLACK_SECS: i64 = 2;
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
        let rows = outbox.into_rows();
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
            let now = self.clock.now_secs();
            let mut f = Follower {
                node,
                delivered: HashMap::new(),
                pending: self
                    .hub
                    .online_users()
                    .into_iter()
                    .map(|u| (u, now))
                    .collect(),
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
                        Some(u) => f.heard_of(u, self.clock.now_secs()),
                        None => return,
                    },
                    _ = heartbeat.tick() => beat = true,
                    _ = tokio::time::sleep(RETRY), if f.retry => {}
                    _ = stopped.changed() => return,
                }
                while let Ok(w) = wakes.try_recv() {
                    batch.add(w, &self.cache);
                }
                let now = self.clock.now_secs();
                while let Ok(u) = changes.try_recv() {
                    f.heard_of(u, now);
                }
                if batch.everything {
                    // Notifications may have been missed: every held user's rows are read
                    // again after the newest handed out, once their presence is rewritten.
                    for u in self.hub.online_users() {
                        f.heard_of(u, now);
                    }
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
                self.read_for(&mut f, batch).await;
            }
        })
    }
}

/// A user whose presence may have changed, and when this node heard of it (Unix seconds).
type Heard = (i64, i64);

/// What one node's follower of the log keeps.
struct Follower {
    /// This node's id.
    node: i64,
    /// Per held user, the newest push handed out (or made before their presence here was
    /// written): a row read twice is handed out once.
    delivered: HashMap<i64, i64>,
    /// Users whose presence here may have changed and is not written yet, with when this node
    /// first heard of it (Unix seconds).
    pending: HashMap<i64, i64>,
    /// A presence write or a read failed: try again soon.
    retry: bool,
}

impl Follower {
    /// The presence of `user` may have changed at `now`.
    fn heard_of(&mut self, user: i64, now: i64) {
        self.pending.entry(user).or_insert(now);
    }
}

/// The notifications of one wake-up.
#[derive(Default)]
struct Batch {
    /// Pushes that came whole, in the order they came.
    carried: Vec<StoredPush>,
    /// Users with new pushes to read from the log, with the newest one's number.
    users: HashMap<i64, i64>,
    /// Notifications may have been missed (the listener reconnected).
    everything: bool,
}

impl Batch {
    fn add(&mut self, wake: Wake, cache: &Cache) {
        match wake {
            Wake::UserChanged(user) => cache.forget(user),
            Wake::Pushes { user_id, seq } => self.read(user_id, seq),
            Wake::Push(row) => self.carried.push(row),
            Wake::Reconnected => self.everything = true,
        }
    }

    /// `user`'s pushes up to `seq` are to be read from the log.
    fn read(&mut self, user: i64, seq: i64) {
        let newest = self.users.entry(user).or_insert(seq);
        *newest = (*newest).max(seq);
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

    /// Writes the pending presence changes (and the heartbeat), then reads the rows of the
    /// users now present: after the newest handed out, or for a user new here, those made
    /// since shortly before they arrived. Kept pending on failure, to be tried again.
    async fn write_presence(&self, f: &mut Follower) {
        let users: Vec<Heard> = f.pending.drain().collect();
        let (online, offline): (Vec<Heard>, Vec<Heard>) =
            users.iter().partition(|(u, _)| self.hub.is_online(*u));
        let ids = |list: &[Heard]| list.iter().map(|(u, _)| *u).collect::<Vec<i64>>();
        let now = self.clock.now_secs();
        let presence = match self
            .cluster
            .set_presence(f.node, now, ids(&online), ids(&offline))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot write this node's presence; retrying");
                f.pending.extend(users);
                f.retry = true;
                return;
            }
        };
        f.retry = false;
        for (u, _) in &offline {
            f.delivered.remove(u);
        }
        if presence.forgotten {
            tracing::warn!(
                node = f.node,
                "this node had been forgotten; presence written again"
            );
            for u in self.hub.online_users() {
                f.heard_of(u, now);
            }
            f.retry = true;
        }
        if online.is_empty() {
            return;
        }
        let cursors = online
            .iter()
            .map(|(u, arrived)| match f.delivered.get(u) {
                Some(after) => PushCursor {
                    user_id: *u,
                    after: *after,
                    since: 0,
                },
                None => PushCursor {
                    user_id: *u,
                    after: 0,
                    since: arrived - ARRIVAL_SLACK_SECS,
                },
            })
            .collect();
        match self.cluster.pushes_for(cursors).await {
            Ok(rows) => rows.into_iter().for_each(|r| self.deliver(f, r)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the push log; retrying");
                f.pending.extend(online);
                f.retry = true;
                return;
            }
        }
        // Every push up to the newest at the presence write has been read or was made before
        // the user arrived; every later one notifies this node.
        for (u, newest) in presence.newest {
            let seen = f.delivered.entry(u).or_insert(newest);
            *seen = (*seen).max(newest);
        }
    }

    /// Delivers the pushes the batch was woken for, for users held here, after the newest
    /// handed out: those that came whole and follow the newest directly, then the rest read
    /// from the log (a user with a gap is read from the gap on). A user held here whose
    /// presence is not written yet is read when it is.
    async fn read_for(&self, f: &mut Follower, mut batch: Batch) {
        let mut gaps = std::collections::HashSet::new();
        // One transaction's notifications come in the order its statement made them, not
        // always per user in number order: sorted, a wake-up's pushes leave no gap between
        // them.
        let mut carried = std::mem::take(&mut batch.carried);
        carried.sort_by_key(|row| (row.push.user_id, row.seq));
        for row in carried {
            let user = row.push.user_id;
            let Some(after) = f.delivered.get(&user).copied() else {
                continue;
            };
            if gaps.contains(&user) || row.seq > after + 1 {
                gaps.insert(user);
                batch.read(user, row.seq);
            } else if row.seq == after + 1 {
                self.deliver(f, row);
            }
        }
        let cursors: Vec<PushCursor> = batch
            .users
            .into_iter()
            .filter(|(u, _)| self.hub.is_online(*u))
            .filter_map(|(u, newest)| {
                let after = *f.delivered.get(&u)?;
                (after < newest).then_some(PushCursor {
                    user_id: u,
                    after,
                    since: 0,
                })
            })
            .collect();
        if cursors.is_empty() {
            return;
        }
        match self.cluster.pushes_for(cursors.clone()).await {
            Ok(rows) => rows.into_iter().for_each(|r| self.deliver(f, r)),
            Err(e) => {
                // Read again, after the presence is rewritten.
                tracing::warn!(error = %e, "cannot read the push log; retrying");
                let now = self.clock.now_secs();
                for c in cursors {
                    f.heard_of(c.user_id, now);
                }
                f.retry = true;
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
