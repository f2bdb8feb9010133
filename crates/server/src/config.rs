//! Server configuration: defaults that work with no file, a TOML file, and overrides the binary
//! applies from flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Everything `mtcall serve` can be told.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the RSA key, the server secret and the database live.
    pub data_dir: PathBuf,
    /// The MTProto listen address.
    pub listen: SocketAddr,
    /// The address clients are told to use in `help.getConfig` (defaults to `listen`).
    pub public_address: Option<SocketAddr>,
    /// The DC id this server presents as.
    pub dc_id: i32,
    /// A login code accepted for every non-test number (development only; none by default).
    pub fixed_login_code: Option<String>,
    /// How long a login code is valid, seconds.
    pub login_code_ttl_secs: i64,
    /// Largest transport frame accepted, bytes.
    pub max_frame_bytes: usize,
    /// Simultaneous connections accepted; more are refused with transport error -429.
    pub max_connections: usize,
    /// A connection that has not finished creating or presenting a key after this long is closed.
    pub handshake_timeout_secs: u64,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout_secs: u64,
    /// Commit durability of the SQLite store: "normal" or "full".
    pub durability: String,
    /// Call timeouts published in `help.getConfig` and used by the server's own call timers.
    pub calls: CallTimeouts,
}

/// The four call timeouts of `help.getConfig` (`../shared/spec/calls.md` §6.1), milliseconds.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallTimeouts {
    /// `call_receive_timeout_ms`.
    pub receive_timeout_ms: i32,
    /// `call_ring_timeout_ms`.
    pub ring_timeout_ms: i32,
    /// `call_connect_timeout_ms`.
    pub connect_timeout_ms: i32,
    /// `call_packet_timeout_ms`.
    pub packet_timeout_ms: i32,
}

impl Default for CallTimeouts {
    fn default() -> Self {
        CallTimeouts {
            receive_timeout_ms: 20_000,
            ring_timeout_ms: 90_000,
            connect_timeout_ms: 30_000,
            packet_timeout_ms: 10_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("mtcall-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 4430)),
            public_address: None,
            dc_id: 2,
            fixed_login_code: None,
            login_code_ttl_secs: 300,
            max_frame_bytes: 1 << 20,
            max_connections: 100_000,
            handshake_timeout_secs: 30,
            idle_timeout_secs: 600,
            durability: "normal".into(),
            calls: CallTimeouts::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("invalid configuration: {e}"))
    }

    /// The address clients should dial.
    pub fn public_address(&self) -> SocketAddr {
        self.public_address.unwrap_or(self.listen)
    }

    /// The store durability named by `durability`.
    pub fn store_durability(&self) -> Result<store::Durability, String> {
        match self.durability.as_str() {
            "normal" => Ok(store::Durability::Normal),
            "full" => Ok(store::Durability::Full),
            other => Err(format!(
                "durability must be \"normal\" or \"full\", not {other:?}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults() {
        let c = Config::from_toml("listen = \"127.0.0.1:9000\"\n[calls]\nring_timeout_ms = 5000\n")
            .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.calls.ring_timeout_ms, 5000);
        assert_eq!(c.calls.receive_timeout_ms, 20_000);
        assert!(Config::from_toml("nonsense = 1").is_err());
        assert_eq!(Config::default().public_address().port(), 4430);
    }
}
