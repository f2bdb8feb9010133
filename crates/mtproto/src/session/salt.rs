//! Server salts (`docs/clients.md §1.3`): derived from a
//! server secret, the auth key id and a 30-minute window, so every node and every restart agrees
//! on them without storing any. A salt is accepted from one window before the current one to 64
//! windows ahead (what `get_future_salts` hands out).

use crate::crypto::sha256;

/// Length of one salt window, seconds.
pub const WINDOW_SECS: i64 = 1800;
/// How many future salts `get_future_salts` may return.
pub const MAX_FUTURE: usize = 64;

/// Derives salts from a server secret.
#[derive(Clone)]
pub struct SaltSource {
    secret: [u8; 32],
}

impl std::fmt::Debug for SaltSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SaltSource")
    }
}

impl SaltSource {
    /// A source from the server's secret.
    pub fn new(secret: [u8; 32]) -> Self {
        SaltSource { secret }
    }

    /// The salt of `window` for `auth_key_id`.
    pub fn salt(&self, auth_key_id: i64, window: i64) -> i64 {
        let h = sha256(&[
            &self.secret,
            &auth_key_id.to_le_bytes(),
            &window.to_le_bytes(),
        ]);
        i64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
    }

    /// The window of a Unix time.
    pub fn window(now_secs: i64) -> i64 {
        now_secs.div_euclid(WINDOW_SECS)
    }

    /// The current salt.
    pub fn current(&self, auth_key_id: i64, now_secs: i64) -> i64 {
        self.salt(auth_key_id, Self::window(now_secs))
    }

    /// Whether `salt` is valid now.
    pub fn is_valid(&self, auth_key_id: i64, salt: i64, now_secs: i64) -> bool {
        let w = Self::window(now_secs);
        (w - 1..=w + MAX_FUTURE as i64).any(|x| self.salt(auth_key_id, x) == salt)
    }

    /// `count` salts from the current window on: `(valid_since, valid_until, salt)`.
    pub fn future(&self, auth_key_id: i64, now_secs: i64, count: usize) -> Vec<(i32, i32, i64)> {
        let w = Self::window(now_secs);
        (0..count.min(MAX_FUTURE) as i64)
            .map(|i| {
                let since = (w + i) * WINDOW_SECS;
                (
                    since as i32,
                    (since + WINDOW_SECS) as i32,
                    self.salt(auth_key_id, w + i),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let s = SaltSource::new([1; 32]);
        let now = 1_700_000_000;
        let cur = s.current(7, now);
        assert!(s.is_valid(7, cur, now));
        assert!(!s.is_valid(8, cur, now), "salts are per key");
        let future = s.future(7, now, 100);
        assert_eq!(future.len(), MAX_FUTURE);
        assert!(future.iter().all(|(_, _, salt)| s.is_valid(7, *salt, now)));
        assert!(
            s.is_valid(7, cur, now + WINDOW_SECS),
            "the previous window still counts"
        );
        assert!(!s.is_valid(7, cur, now + 2 * WINDOW_SECS));
        assert!(!s.is_valid(7, 0, now));
    }
}
