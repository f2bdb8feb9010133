//! `[relay]` and `[relay.turn]`: this node's reflector and the TURN servers calls are offered.

use std::net::SocketAddr;

use serde::Deserialize;

/// `[relay]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySettings {
    /// Run the reflector (`--no-relay`: no).
    pub enabled: bool,
    /// Its UDP address. Unset: the MTProto listen address with port + 2, given up with a
    /// warning if that port is taken (port 0 there: any free port); an address given here must
    /// bind.
    pub listen: Option<SocketAddr>,
    /// The address clients are told. Unset: the host of `public_address` (or of `listen`)
    /// with the reflector's port.
    pub public_address: Option<SocketAddr>,
    /// Its `phoneConnection.id` over UDP; over TCP it is `id + 1` (both distinct from the ids of
    /// `[[calls.reflectors]]`).
    pub id: i64,
    /// Also listen on TCP at the same address, and offer it (`phoneConnection.tcp`). Off by
    /// default: ntgcalls 3.0.5 relays over it, then crashes (SIGSEGV) when such a call hangs up.
    pub tcp: bool,
    /// TCP connections at once; more are closed as they come.
    pub max_tcp_connections: usize,
    /// Calls relayed at once; calls past it get no reflector.
    pub max_calls: usize,
    /// Relay ports each party may bind (one per network a client uses).
    pub max_ends_per_party: usize,
    /// Packets a second one call may have relayed, both ways together.
    pub call_packets_per_sec: u64,
    /// Bytes a second one call may have relayed, both ways together.
    pub call_bytes_per_sec: u64,
    /// Packets a second one relay port may send.
    pub end_packets_per_sec: u64,
    /// Bytes a second one relay port may send.
    pub end_bytes_per_sec: u64,
    /// Seconds of silence after which a relay port's address is forgotten.
    pub end_idle_secs: u64,
    /// TURN servers (`[relay.turn]`).
    pub turn: Option<TurnSettings>,
}

impl Default for RelaySettings {
    fn default() -> Self {
        let limits = relay::Settings::default();
        RelaySettings {
            enabled: true,
            listen: None,
            public_address: None,
            id: 1,
            tcp: false,
            max_tcp_connections: 4_096,
            max_calls: limits.max_calls,
            max_ends_per_party: limits.max_ends_per_party,
            call_packets_per_sec: limits.call_packets_per_sec,
            call_bytes_per_sec: limits.call_bytes_per_sec,
            end_packets_per_sec: limits.end_packets_per_sec,
            end_bytes_per_sec: limits.end_bytes_per_sec,
            end_idle_secs: limits.end_idle_ms / 1000,
            turn: None,
        }
    }
}

impl RelaySettings {
    /// The sans-IO relay's limits.
    pub fn limits(&self) -> relay::Settings {
        relay::Settings {
            max_calls: self.max_calls,
            max_ends_per_party: self.max_ends_per_party,
            call_packets_per_sec: self.call_packets_per_sec,
            call_bytes_per_sec: self.call_bytes_per_sec,
            end_packets_per_sec: self.end_packets_per_sec,
            end_bytes_per_sec: self.end_bytes_per_sec,
            end_idle_ms: self.end_idle_secs * 1000,
        }
    }
}

/// `[relay.turn]`: TURN servers that check credentials with a shared secret (coturn's
/// `use-auth-secret` with `static-auth-secret`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnSettings {
    /// coturn's `static-auth-secret`.
    pub secret: String,
    /// The servers, `IP:port` each.
    pub servers: Vec<SocketAddr>,
    /// Offer each as a STUN server too.
    #[serde(default = "yes")]
    pub stun: bool,
    /// How long a call's credentials stay valid, seconds.
    #[serde(default = "day")]
    pub credential_ttl_secs: i64,
    /// The `phoneConnectionWebrtc.id` of the first server; the next get the ids after it.
    #[serde(default = "first_turn_id")]
    pub first_id: i64,
}

fn yes() -> bool {
    true
}

fn day() -> i64 {
    86_400
}

fn first_turn_id() -> i64 {
    100
}
