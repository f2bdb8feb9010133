//! The `[auth]` table of the configuration: whether test numbers log in, who may sign up,
//! where login codes go and how many a number or an address may ask for. The decisions taken
//! from it live in [`crate::services`]; what each setting protects: SECURITY.md.

use std::net::IpAddr;

use serde::Deserialize;

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
}
