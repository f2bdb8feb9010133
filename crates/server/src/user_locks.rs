//! Per-user ordering of updates that carry pts: while one operation appends a user's update
//! and pushes it, another waits, so that user's sessions receive pts in order (a client that
//! sees pts out of order must stop and fetch the difference — correct, but a storm of
//! `updates.getDifference` under load). Locks are taken in id order, so two users' locks never
//! deadlock, and an idle user's lock is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// The locks, by user id.
#[derive(Default)]
pub struct UserLocks {
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held locks; released when dropped.
pub struct Held {
    _guards: Vec<OwnedMutexGuard<()>>,
}

impl UserLocks {
    /// Locks every user of `ids` (in id order; repeats once).
    pub async fn lock(&self, ids: &[i64]) -> Held {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut guards = Vec::with_capacity(ids.len());
        for id in ids {
            let lock = {
                let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
                if locks.len() > 1024 {
                    // Only this map holds the lock of an idle user.
                    locks.retain(|_, l| Arc::strong_count(l) > 1);
                }
                locks.entry(id).or_default().clone()
            };
            guards.push(lock.lock_owned().await);
        }
        Held { _guards: guards }
    }
}
