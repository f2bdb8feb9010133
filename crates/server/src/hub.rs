//! Update fan-out: every live, logged-in session registers here under its user (and auth key);
//! a push reaches each chosen session of that user on every connection, encoded later once for
//! each layer among them ([`Pushed`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

pub use crate::push_queue::Push;
use crate::push_queue::PushSender;
use crate::pushed::Pushed;

struct Registration {
    conn_id: u64,
    key_id: i64,
    tx: PushSender,
}

/// Live sessions by user.
#[derive(Default)]
pub struct Hub {
    users: Mutex<HashMap<i64, Vec<Registration>>>,
    /// Told the user whenever a user's first session arrives or last one leaves (several
    /// nodes: the node's presence in the database follows it).
    watcher: Mutex<Option<mpsc::UnboundedSender<i64>>>,
}

/// Pushes queued per connection before it is considered stuck.
pub const QUEUE: usize = 1024;

impl Hub {
    /// Registers connection `conn_id`, on auth key `key_id`, as a live session of `user_id`.
    pub fn register(&self, user_id: i64, conn_id: u64, key_id: i64, tx: PushSender) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if !users.contains_key(&user_id) {
            self.changed(user_id);
        }
        let list = users.entry(user_id).or_default();
        list.retain(|r| r.conn_id != conn_id);
        list.push(Registration {
            conn_id,
            key_id,
            tx,
        });
    }

    /// Removes a connection.
    pub fn unregister(&self, user_id: i64, conn_id: u64) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = users.get_mut(&user_id) {
            list.retain(|r| r.conn_id != conn_id);
            if list.is_empty() {
                users.remove(&user_id);
                self.changed(user_id);
            }
        }
    }

    /// From now on, every user whose first session arrives or last one leaves is sent to the
    /// returned receiver (while the user-table lock is held, so in the order it happened).
    pub fn watch(&self) -> mpsc::UnboundedReceiver<i64> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        rx
    }

    fn changed(&self, user_id: i64) {
        if let Some(w) = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = w.send(user_id);
        }
    }

    /// Every user with a live session.
    pub fn online_users(&self) -> Vec<i64> {
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Delivers `updates` to every session of `user_id` except connection `except`.
    pub fn push(
        &self,
        user_id: i64,
        updates: Arc<tl::enums::Updates>,
        except: Option<u64>,
    ) -> usize {
        self.push_where(user_id, updates, |conn_id, _| Some(conn_id) != except)
    }

    /// Delivers `updates` to the sessions of `user_id` whose `(conn_id, key_id)` pass `wanted`;
    /// returns how many got it. A session whose queue is full is skipped (it catches up with
    /// `updates.getDifference` when it reconnects).
    pub fn push_where(
        &self,
        user_id: i64,
        updates: Arc<tl::enums::Updates>,
        wanted: impl Fn(u64, i64) -> bool,
    ) -> usize {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = users.get(&user_id) else {
            return 0;
        };
        let sessions = list.iter().filter(|r| wanted(r.conn_id, r.key_id)).count();
        let pushed = Pushed::new(updates, sessions);
        let mut delivered = 0;
        for r in list.iter().filter(|r| wanted(r.conn_id, r.key_id)) {
            match r.tx.try_send(Push::Updates(pushed.clone())) {
                Ok(()) => delivered += 1,
                Err(e) => tracing::warn!(user_id, conn_id = r.conn_id, error = %e, "push dropped"),
            }
        }
        delivered
    }

    /// Whether a user has any live session.
    pub fn is_online(&self, user_id: i64) -> bool {
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&user_id)
    }

    /// How many users have a live session.
    pub fn users_online(&self) -> usize {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
