//! Byte buffers lent to connections while they work: each worker thread keeps a few emptied
//! ones, a connection takes one when bytes arrive or answers are written and gives it back
//! when they are done with. An idle connection holds no buffer, and a busy one allocates none.

use std::cell::RefCell;

/// Buffers kept per thread.
const KEPT: usize = 8;
/// Larger buffers are freed rather than kept (a rare large frame does not pin its memory).
const KEPT_CAPACITY: usize = 64 * 1024;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer: a kept one if this thread has one, else a new one (allocated on first use).
pub fn take() -> Vec<u8> {
    SPARE
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_default()
}

/// `buf` itself, first taking a kept buffer if it has no allocation.
pub fn ready(buf: &mut Vec<u8>) -> &mut Vec<u8> {
    if buf.capacity() == 0 {
        *buf = take();
    }
    buf
}

/// Gives a buffer back for the next taker on this thread (emptied; freed if the thread keeps
/// enough or it grew large).
pub fn give(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > KEPT_CAPACITY {
        return;
    }
    buf.clear();
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < KEPT {
            spare.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{KEPT, KEPT_CAPACITY, give, take};

    #[test]
    fn a_given_buffer_is_taken_again_empty_and_large_ones_are_freed() {
        let mut buf = take();
        buf.extend_from_slice(b"answer");
        let at = buf.as_ptr();
        give(buf);
        let again = take();
        assert!(again.is_empty() && again.capacity() >= 6);
        assert_eq!(again.as_ptr(), at, "the same allocation");
        give(Vec::with_capacity(KEPT_CAPACITY + 1));
        assert_eq!(take().capacity(), 0, "a large buffer is not kept");
        for _ in 0..KEPT + 2 {
            give(Vec::with_capacity(16));
        }
        let kept = std::iter::from_fn(|| Some(take()))
            .take_while(|b| b.capacity() > 0)
            .count();
        assert_eq!(kept, KEPT);
    }
}
