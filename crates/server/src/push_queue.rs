//! A connection's queue of pushes from the hub (and the server's order to stop): bounded by
//! [`crate::hub::QUEUE`], and free while empty — a deque that allocates on its first push and a
//! `Notify`, where tokio's bounded channel allocates a block of slots for every connection up
//! front, idle or not.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

/// What a connection receives besides its client's bytes: pushes from the hub, and the
/// server's order to stop.
#[derive(Clone, Debug)]
pub enum Push {
    /// Updates to deliver (the connection takes their form for its layer).
    Updates(crate::pushed::Pushed),
    /// The server shuts down: answer what was read, then close.
    Stop,
}

struct Shared {
    items: Mutex<VecDeque<Push>>,
    /// How many items are queued, kept under the lock and read without it, so a connection
    /// looks for queued pushes after every read without taking the lock when there are none.
    queued: AtomicUsize,
    ready: Notify,
    bound: usize,
}

/// The sending side; clones share the queue.
#[derive(Clone)]
pub struct PushSender(Arc<Shared>);

/// The connection's side.
pub struct PushReceiver(Arc<Shared>);

/// A sending side that does not keep the queue alive (the accept loop's list, for shutdown).
pub struct WeakPushSender(Weak<Shared>);

/// Why a push was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull;

impl std::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the connection's push queue is full")
    }
}

/// A queue holding at most `bound` pushes.
pub fn push_queue(bound: usize) -> (PushSender, PushReceiver) {
    let shared = Arc::new(Shared {
        items: Mutex::new(VecDeque::new()),
        queued: AtomicUsize::new(0),
        ready: Notify::new(),
        bound,
    });
    (PushSender(shared.clone()), PushReceiver(shared))
}

impl PushSender {
    /// Queues `push` unless the queue is full.
    pub fn try_send(&self, push: Push) -> Result<(), QueueFull> {
        {
            let mut items = self.0.items.lock().unwrap_or_else(|e| e.into_inner());
            if items.len() >= self.0.bound {
                return Err(QueueFull);
            }
            items.push_back(push);
            self.0.queued.store(items.len(), Ordering::Release);
        }
        // Stored as a permit when the connection is not waiting: it finds the push next time.
        self.0.ready.notify_one();
        Ok(())
    }

    /// A sending side that does not keep the queue alive.
    pub fn downgrade(&self) -> WeakPushSender {
        WeakPushSender(Arc::downgrade(&self.0))
    }
}

impl WeakPushSender {
    /// The sending side, while the connection holds its queue.
    pub fn upgrade(&self) -> Option<PushSender> {
        self.0.upgrade().map(PushSender)
    }

    /// Whether the queue still exists.
    pub fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

impl PushReceiver {
    /// The next push, waiting for one. Cancel-safe: a push is taken only when this returns.
    pub async fn recv(&mut self) -> Push {
        loop {
            if let Some(push) = self.try_recv() {
                return push;
            }
            self.0.ready.notified().await;
        }
    }

    /// The next push if one is queued. A push being queued at this very moment may be missed;
    /// it is not lost: [`PushReceiver::recv`] finds it.
    pub fn try_recv(&mut self) -> Option<Push> {
        if self.0.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut items = self.0.items.lock().unwrap_or_else(|e| e.into_inner());
        let push = items.pop_front();
        self.0.queued.store(items.len(), Ordering::Release);
        push
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pushes_arrive_in_order_up_to_the_bound() {
        let (tx, mut rx) = push_queue(2);
        assert_eq!(tx.try_send(Push::Stop), Ok(()));
        assert_eq!(tx.try_send(Push::Stop), Ok(()));
        assert_eq!(tx.try_send(Push::Stop), Err(QueueFull));
        assert!(matches!(rx.recv().await, Push::Stop));
        assert!(matches!(rx.recv().await, Push::Stop));
        // A push sent while the receiver waits wakes it.
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        let weak = tx.downgrade();
        weak.upgrade().unwrap().try_send(Push::Stop).unwrap();
        assert!(matches!(waiting.await.unwrap(), Push::Stop));
        drop(tx);
        assert!(!weak.is_alive(), "gone with its last holder");
    }

    #[tokio::test]
    async fn a_recv_dropped_in_a_select_loses_nothing() {
        let (tx, mut rx) = push_queue(8);
        for _ in 0..3 {
            tokio::select! {
                _ = rx.recv() => panic!("nothing queued yet"),
                _ = tokio::task::yield_now() => {}
            }
        }
        tx.try_send(Push::Stop).unwrap();
        assert!(matches!(rx.recv().await, Push::Stop));
    }
}
