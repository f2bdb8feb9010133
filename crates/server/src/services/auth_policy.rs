//! Who may ask for a login code and who may sign up: the `[auth]` settings (test numbers,
//! sign-up open, closed or by allowlist, `auth.sendCode` limits per number and per address)
//! and the decisions [`crate::services::Accounts`] takes from them before it issues a code or
//! creates an account. What each setting protects: SECURITY.md.

use std::net::IpAddr;

use serde::Deserialize;

use super::code_delivery::CodeDelivery;
use crate::errors::RpcError;
use crate::limits::Limiter;

/// The `[auth]` table of the configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Numbers of Telegram's test form `99966XYYYY` log in with the code `XXXXX`. Unset: on
    /// when the listen address is a loopback address, off otherwise.
    pub test_numbers: Option<bool>,
    /// Who may create an account.
    pub signup: Signup,
    /// A shell command that delivers each login code (`MTCALL_PHONE`, `MTCALL_CODE` in its
    /// environment); unset: codes are written to the server's log.
    pub code_command: Option<String>,
    /// How long the code command may take before it is killed and the request fails.
    pub code_command_timeout_secs: u64,
    /// Codes one phone number may be sent per hour (0: no limit); over it: `PHONE_NUMBER_FLOOD`.
    pub codes_per_phone_per_hour: u32,
    /// Codes one IP address may ask for per hour (0: no limit); over it: `FLOOD_WAIT_X`.
    pub codes_per_address_per_hour: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            test_numbers: None,
            signup: Signup::Open,
            code_command: None,
            code_command_timeout_secs: 10,
            codes_per_phone_per_hour: 5,
            codes_per_address_per_hour: 20,
        }
    }
}

impl AuthSettings {
    /// Whether test numbers log in, for a server listening on `listen`.
    pub fn test_numbers_on(&self, listen: IpAddr) -> bool {
        self.test_numbers.unwrap_or(listen.is_loopback())
    }

    /// The startup line's account of these settings for a server on `listen`.
    pub fn summary(&self, listen: IpAddr) -> String {
        let test = match (self.test_numbers_on(listen), self.test_numbers) {
            (true, None) => "test numbers on (loopback listener)",
            (false, None) => "test numbers off (not a loopback listener)",
            (true, Some(_)) => "test numbers on",
            (false, Some(_)) => "test numbers off",
        };
        let codes = if self.code_command.is_some() {
            "codes to the code command"
        } else {
            "codes written to the log"
        };
        format!("{test}, sign-up {}, {codes}", self.signup.name())
    }

    /// Where codes go.
    pub fn code_delivery(&self) -> CodeDelivery {
        match &self.code_command {
            Some(command) => CodeDelivery::Command {
                command: command.clone(),
                timeout: std::time::Duration::from_secs(self.code_command_timeout_secs.max(1)),
            },
            None => CodeDelivery::Log,
        }
    }
}

/// Who may create an account (`[auth] signup`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signup {
    /// Every number that receives its code.
    #[default]
    Open,
    /// Nobody: only numbers that have an account log in.
    Closed,
    /// Numbers added with `mtcall users add`.
    Allowlist,
}

impl Signup {
    /// Its name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Signup::Open => "open",
            Signup::Closed => "closed",
            Signup::Allowlist => "allowlist",
        }
    }
}

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
    fn test_numbers_follow_the_listen_address_unless_set() {
        let unset = AuthSettings::default();
        assert!(unset.test_numbers_on(IpAddr::from([127, 0, 0, 1])));
        assert!(!unset.test_numbers_on(IpAddr::from([0, 0, 0, 0])));
        let on = AuthSettings {
            test_numbers: Some(true),
            ..Default::default()
        };
        assert!(on.test_numbers_on(IpAddr::from([0, 0, 0, 0])));
    }

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
