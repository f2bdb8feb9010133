//! The updates service: each user's durable update log (pts) and the pushes to sessions, on
//! this node or — through [`crate::topology::Delivery`] — on every node. Updates that carry
//! pts are appended and pushed under their users' locks ([`crate::user_locks`]), so each
//! session sees pts in order.

use std::sync::Arc;

use store::{Store, StoreError, StoreFuture, UpdateBody, UpdateRow};

use crate::clock::Clock;
use crate::errors::RpcError;
use crate::topology::{Delivery, Outbox};
use crate::user_locks::{Held, UserLocks};

/// Update logs and pushes.
pub struct Updates {
    store: Arc<dyn Store>,
    delivery: Arc<dyn Delivery>,
    locks: UserLocks,
    clock: Clock,
}

impl Updates {
    /// Logs in `store`, pushes through `delivery`.
    pub fn new(store: Arc<dyn Store>, delivery: Arc<dyn Delivery>, clock: Clock) -> Updates {
        Updates {
            store,
            delivery,
            locks: UserLocks::default(),
            clock,
        }
    }

    /// Delivers what other nodes publish to this node's sessions, until `stopped` (nothing to
    /// do on one node).
    pub async fn follow(self: Arc<Self>, stopped: tokio::sync::watch::Receiver<bool>) {
        self.delivery.follow(stopped).await
    }

    /// Sends what `outbox` holds to the sessions it names, wherever they are.
    pub async fn send(&self, outbox: Outbox) -> Result<(), RpcError> {
        if outbox.is_empty() {
            return Ok(());
        }
        self.delivery.send(outbox, self.clock.now_secs()).await
    }

    /// Holds the update order of `users` until the returned guard is dropped.
    pub async fn lock(&self, users: &[i64]) -> Held {
        self.locks.lock(users).await
    }

    /// Appends one update to `user_id`'s log; `body` renders it for the pts it gets. Queued
    /// when called (appends queued together share one commit), done when awaited.
    pub fn append(
        &self,
        user_id: i64,
        date: i32,
        body: UpdateBody,
    ) -> StoreFuture<'_, (i32, Vec<u8>)> {
        self.store.append_update(user_id, 1, date, body)
    }

    /// The user's current pts.
    pub async fn pts(&self, user_id: i64) -> Result<i32, StoreError> {
        self.store.pts(user_id).await
    }

    /// Logged updates after `pts`, oldest first, at most `limit`.
    pub async fn after(
        &self,
        user_id: i64,
        pts: i32,
        limit: u32,
    ) -> Result<Vec<UpdateRow>, StoreError> {
        self.store.updates_after(user_id, pts, limit).await
    }
}
