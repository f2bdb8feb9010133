//! Flood control (`SECURITY.md`): token buckets for requests per auth key and per
//! user (over `420 FLOOD_WAIT_X`), auth-key creations per IP address (each costs the server an
//! RSA decryption and two 2048-bit modpows, about 10 ms of CPU; over: transport error -429 and
//! the connection closed), and a count of open connections per IP address (over: refused like
//! the global limit). Loopback clients are exempt by default, so local test suites are never
//! throttled. Times are passed in.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::Deserialize;

/// The limits, from the `[limits]` table of the configuration. A rate of 0 turns a limit off.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Requests per second per auth key.
    pub requests_per_second: f64,
    /// Requests an auth key may send at once before the rate applies.
    pub request_burst: f64,
    /// Requests per second per user, over all their keys.
    pub user_requests_per_second: f64,
    /// Requests a user may send at once.
    pub user_request_burst: f64,
    /// Auth-key creations per second per IP address.
    pub handshakes_per_second: f64,
    /// Auth-key creations an IP address may start at once.
    pub handshake_burst: f64,
    /// Open connections per IP address (0: no limit).
    pub connections_per_ip: usize,
    /// Clients on 127.0.0.0/8 and ::1 are not limited.
    pub exempt_loopback: bool,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            requests_per_second: 100.0,
            request_burst: 300.0,
            user_requests_per_second: 200.0,
            user_request_burst: 600.0,
            handshakes_per_second: 10.0,
            handshake_burst: 30.0,
            connections_per_ip: 500,
            exempt_loopback: true,
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

impl Bucket {
    /// Takes a token at `now_ms`, or says how many whole seconds until one is there.
    fn take(&mut self, now_ms: i64, rate: f64, burst: f64) -> Result<(), u32> {
        let elapsed = (now_ms - self.at_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at_ms = now_ms;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / rate).ceil().max(1.0) as u32)
        }
    }

    fn full_at(&self, now_ms: i64, rate: f64, burst: f64) -> bool {
        self.tokens + (now_ms - self.at_ms).max(0) as f64 / 1000.0 * rate >= burst
    }
}

/// Buckets by key, all with one rate.
pub struct Limiter<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
    rate: f64,
    burst: f64,
}

/// Buckets kept before the full ones are dropped.
const PRUNE_AT: usize = 4096;

impl<K: Hash + Eq + Copy> Limiter<K> {
    /// A limiter of `rate` per second with `burst` at once (`rate` 0: unlimited).
    pub fn new(rate: f64, burst: f64) -> Self {
        Limiter {
            buckets: Mutex::new(HashMap::new()),
            rate,
            burst: burst.max(1.0),
        }
    }

    /// Counts one event for `key` at `now_ms`: `Err(seconds)` when over the limit.
    pub fn check(&self, key: K, now_ms: i64) -> Result<(), u32> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| !b.full_at(now_ms, rate, burst));
        }
        let burst = self.burst;
        buckets
            .entry(key)
            .or_insert(Bucket {
                tokens: burst,
                at_ms: now_ms,
            })
            .take(now_ms, self.rate, self.burst)
    }
}

/// Every limit of a server.
pub struct Limits {
    settings: LimitSettings,
    per_key: Limiter<i64>,
    per_user: Limiter<i64>,
    handshakes: Limiter<IpAddr>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Limits {
    /// The limits of `settings`.
    pub fn new(settings: LimitSettings) -> Self {
        Limits {
            per_key: Limiter::new(settings.requests_per_second, settings.request_burst),
            per_user: Limiter::new(
                settings.user_requests_per_second,
                settings.user_request_burst,
            ),
            handshakes: Limiter::new(settings.handshakes_per_second, settings.handshake_burst),
            open: Mutex::new(HashMap::new()),
            settings,
        }
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        self.settings.exempt_loopback && ip.is_loopback()
    }

    /// A request on `key_id` (by `user_id`, if logged in) from `ip`: `Err(seconds)` to wait.
    pub fn request(
        &self,
        ip: IpAddr,
        key_id: i64,
        user_id: Option<i64>,
        now_ms: i64,
    ) -> Result<(), u32> {
        if self.exempt(ip) {
            return Ok(());
        }
        self.per_key.check(key_id, now_ms)?;
        match user_id {
            Some(u) => self.per_user.check(u, now_ms),
            None => Ok(()),
        }
    }

    /// The start of an auth-key creation from `ip`.
    pub fn handshake(&self, ip: IpAddr, now_ms: i64) -> Result<(), u32> {
        if self.exempt(ip) {
            return Ok(());
        }
        self.handshakes.check(ip, now_ms)
    }

    /// A new connection from `ip`: false if that address has too many open already. Every
    /// `true` must be matched by a [`Limits::closed`].
    pub fn opened(&self, ip: IpAddr) -> bool {
        if self.exempt(ip) || self.settings.connections_per_ip == 0 {
            return true;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.settings.connections_per_ip {
            return false;
        }
        *n += 1;
        true
    }

    /// A connection from `ip` that [`Limits::opened`] let in has closed.
    pub fn closed(&self, ip: IpAddr) {
        if self.exempt(ip) || self.settings.connections_per_ip == 0 {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let l = Limiter::new(2.0, 3.0);
        for _ in 0..3 {
            assert!(l.check(1, 0).is_ok());
        }
        assert_eq!(l.check(1, 0), Err(1));
        assert!(l.check(2, 0).is_ok(), "another key has its own bucket");
        assert!(l.check(1, 500).is_ok(), "half a second refills one token");
        assert_eq!(l.check(1, 500), Err(1));
        assert!(Limiter::new(0.0, 1.0).check(1, 0).is_ok(), "rate 0: off");
    }

    #[test]
    fn connections_per_address_and_loopback() {
        let limits = Limits::new(LimitSettings {
            connections_per_ip: 2,
            ..LimitSettings::default()
        });
        let far: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(limits.opened(far) && limits.opened(far));
        assert!(!limits.opened(far));
        limits.closed(far);
        assert!(limits.opened(far));
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!((0..10).all(|_| limits.opened(local)), "loopback is exempt");
    }
}
