//! What has left the registry's memory, so that whoever keeps the registry reads storage only
//! when it must, and never uses a read that an eviction overtook:
//!
//! - a filter of the `(caller, random_id)` keys of evicted calls, kept in two generations that
//!   each collect keys for one tombstone period: a new `phone.requestCall` reads storage only
//!   when the filter says an evicted call may hold its key (false positives cost a read, never
//!   an answer; a key stays at least a tombstone period, as long as its row may be stored);
//! - the latest evictions in order, so a storage read begun before them can be checked.

use std::collections::VecDeque;

/// Evictions remembered in order; a read overtaken by more than this many is made again.
const LATEST: usize = 4096;
/// Bits per filter generation (a power of two): 512 KiB, allocated on the first eviction.
const FILTER_BITS: usize = 1 << 22;

/// A call's `(caller, random_id)`.
pub type RandomKey = (i64, i32);

/// What a storage read looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A call by id.
    Id(i64),
    /// A caller's call by `random_id`.
    Random(RandomKey),
}

/// One generation of the key filter: a Bloom filter with two probes.
#[derive(Debug, Default)]
struct KeyFilter {
    bits: Vec<u64>,
}

impl KeyFilter {
    fn probes(key: RandomKey) -> [usize; 2] {
        // splitmix64 of both fields: two independent-enough 32-bit halves.
        let mut x = (key.0 as u64) ^ (u64::from(key.1 as u32)).rotate_left(32);
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        let mask = FILTER_BITS as u64 - 1;
        [(x & mask) as usize, ((x >> 32) & mask) as usize]
    }

    fn insert(&mut self, key: RandomKey) {
        if self.bits.is_empty() {
            self.bits = vec![0; FILTER_BITS / 64];
        }
        for p in Self::probes(key) {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    fn may_hold(&self, key: RandomKey) -> bool {
        !self.bits.is_empty()
            && Self::probes(key)
                .iter()
                .all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// The record of evictions.
#[derive(Debug, Default)]
pub struct Evicted {
    count: u64,
    latest: VecDeque<(i64, RandomKey)>,
    current: KeyFilter,
    previous: KeyFilter,
    /// When the current generation began (Unix seconds).
    current_since: Option<i32>,
    /// Until when any key may belong to a call that ended before this record began (a
    /// restart: calls ended before it are stored, not held, and were never recorded here).
    unknown_until: Option<i32>,
}

impl Evicted {
    /// How many calls have been evicted so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Records the eviction of call `id` made with `key`, at `now`; generations last `period`.
    pub fn record(&mut self, id: i64, key: RandomKey, now: i32, period: i32) {
        self.rotate(now, period);
        self.current.insert(key);
        self.count += 1;
        if self.latest.len() == LATEST {
            self.latest.pop_front();
        }
        self.latest.push_back((id, key));
    }

    /// From now until `until`, every key may belong to a stored call this record never saw.
    pub fn assume_unknown_until(&mut self, until: i32) {
        self.unknown_until = Some(until);
    }

    /// Whether an evicted call may have been made with `key` at `now` (false: certainly not,
    /// within the last tombstone period).
    pub fn may_hold(&self, key: RandomKey, now: i32) -> bool {
        self.unknown_until.is_some_and(|until| now < until)
            || self.current.may_hold(key)
            || self.previous.may_hold(key)
    }

    /// Whether a storage read for `lookup` begun when [`Evicted::count`] was `seen` may have
    /// missed a call: `true` if a call it looks for was evicted since, or if too many were
    /// evicted since to tell.
    pub fn overtook(&self, seen: u64, lookup: Lookup) -> bool {
        let since = self.count.saturating_sub(seen);
        if since == 0 {
            return false;
        }
        let Ok(since) = usize::try_from(since) else {
            return true;
        };
        if since > self.latest.len() {
            return true;
        }
        self.latest
            .iter()
            .rev()
            .take(since)
            .any(|&(id, key)| match lookup {
                Lookup::Id(wanted) => id == wanted,
                Lookup::Random(wanted) => key == wanted,
            })
    }

    /// Starts a new generation when the current one is a period old, dropping the one
    /// before it (its keys were recorded at least a period ago).
    fn rotate(&mut self, now: i32, period: i32) {
        match self.current_since {
            None => self.current_since = Some(now),
            Some(since) if now >= since.saturating_add(period) => {
                self.previous = std::mem::take(&mut self.current);
                self.current_since = Some(now);
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_holds_evicted_keys_for_at_least_a_period() {
        let mut e = Evicted::default();
        for i in 0..1000 {
            e.record(i, (i, i as i32), 100, 3600);
        }
        assert!((0..1000).all(|i| e.may_hold((i, i as i32), 100)));
        let strangers = (5000..105_000).filter(|i| e.may_hold((*i, 7), 100)).count();
        assert!(strangers < 10, "few false positives: {strangers}");
        // A period later the keys move to the previous generation and are still held...
        e.record(2000, (2000, 0), 100 + 3600, 3600);
        assert!(e.may_hold((5, 5), 100 + 3600));
        // ...and a period after that they are dropped.
        e.record(2001, (2001, 0), 100 + 7200, 3600);
        assert!(!e.may_hold((5, 5), 100 + 7200));
        assert!(e.may_hold((2000, 0), 100 + 7200) && e.may_hold((2001, 0), 100 + 7200));
    }

    #[test]
    fn after_a_restart_every_key_may_be_stored_for_a_period() {
        let mut e = Evicted::default();
        e.assume_unknown_until(500);
        assert!(
            e.may_hold((1, 1), 499),
            "a call ended before the restart may hold it"
        );
        assert!(
            !e.may_hold((1, 1), 500),
            "past the period only recorded keys"
        );
    }

    #[test]
    fn a_read_is_overtaken_only_by_the_evictions_it_looks_for() {
        let mut e = Evicted::default();
        e.record(1, (10, 1), 0, 60);
        let seen = e.count();
        assert!(
            !e.overtook(seen, Lookup::Id(1)),
            "evicted before the read began"
        );
        e.record(2, (20, 2), 0, 60);
        assert!(e.overtook(seen, Lookup::Id(2)));
        assert!(e.overtook(seen, Lookup::Random((20, 2))));
        assert!(!e.overtook(seen, Lookup::Id(3)));
        assert!(!e.overtook(seen, Lookup::Random((20, 3))));
        for i in 0..LATEST as i64 {
            e.record(100 + i, (0, 0), 0, 60);
        }
        assert!(e.overtook(seen, Lookup::Id(3)), "too many since to tell");
    }
}
