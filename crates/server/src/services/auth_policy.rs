//! How many login codes a number or an address may ask for: the `auth.sendCode` limits of the
//! `[auth]` settings ([`AuthSettings`]), checked by [`crate::services::Accounts`] before it
//! issues a code.

use std::net::IpAddr;

use crate::auth_settings::AuthSettings;
use crate::errors::RpcError;
use crate::limits::Limiter;

/// The `auth.sendCode` limits: per phone number and per address, each a token bucket holding
/// an hour's worth of codes. Clients the flood control exempts (`[limits] exempt_loopback`)
/// are not counted.
pub struct CodeLimits {
    per_phone: Limiter<u64>,
    per_address: Limiter<IpAddr>,
    exempt_loopback: bool,
}

impl CodeLimits {
    /// The limits of `settings`.
    pub fn new(settings: &AuthSettings, exempt_loopback: bool) -> Self {
        CodeLimits {
            per_phone: hourly(settings.codes_per_phone_per_hour),
            per_address: hourly(settings.codes_per_address_per_hour),
            exempt_loopback,
        }
    }

    /// Counts a code for `phone` (digits) asked for from `peer` at `now` (seconds).
    pub fn check(&self, phone: &str, peer: IpAddr, now: i64) -> Result<(), RpcError> {
        if self.exempt_loopback && peer.is_loopback() {
            return Ok(());
        }
        let now_ms = now.saturating_mul(1000);
        self.per_address
            .check(peer, now_ms)
            .map_err(RpcError::FloodWait)?;
        // A normalised number is at most 15 digits, so it fits; anything else shares one bucket.
        let number = phone.parse().unwrap_or(u64::MAX);
        self.per_phone
            .check(number, now_ms)
            .map_err(|_| RpcError::PhoneNumberFlood)
    }
}

/// A limiter holding `n` events and refilling them over an hour.
fn hourly<K: std::hash::Hash + Eq + Copy>(n: u32) -> Limiter<K> {
    Limiter::new(f64::from(n) / 3600.0, f64::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_limited_per_number_and_per_address() {
        let settings = AuthSettings {
            codes_per_phone_per_hour: 2,
            codes_per_address_per_hour: 3,
            ..Default::default()
        };
        let limits = CodeLimits::new(&settings, true);
        let far = IpAddr::from([198, 18, 0, 1]);
        let other = IpAddr::from([198, 18, 0, 2]);
        assert!(limits.check("15550001", far, 0).is_ok());
        assert!(limits.check("15550001", other, 0).is_ok());
        assert_eq!(
            limits.check("15550001", far, 0),
            Err(RpcError::PhoneNumberFlood)
        );
        assert!(limits.check("15550002", far, 0).is_ok());
        assert!(matches!(
            limits.check("15550003", far, 0),
            Err(RpcError::FloodWait(s)) if s > 0
        ));
        assert!(
            limits.check("15550001", far, 1800).is_ok(),
            "half an hour: one more"
        );
        let local = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..10 {
            assert!(
                limits.check("15550001", local, 0).is_ok(),
                "loopback exempt"
            );
        }
    }
}
