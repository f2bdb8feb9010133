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
    /// On shutdown, how long requests in flight may take to finish before their connections
    /// are cut.
    pub shutdown_grace_secs: u64,
    /// Commit durability of the SQLite store: "normal" or "full".
    pub durability: String,
    /// The database: none for SQLite in the data directory, or a PostgreSQL URL
    /// (`postgres://user@host:port/db`) shared by several nodes.
    pub database: Option<String>,
    /// Call timeouts (published in `help.getConfig`, used by the server's own call timers) and
    /// the relays offered to calls.
    pub calls: CallSettings,
    /// Who may log in and sign up, and how login codes are delivered (`[auth]`).
    pub auth: crate::auth_settings::AuthSettings,
    /// Flood control (`[limits]`).
    pub limits: crate::limits::LimitSettings,
    /// The admin address: inspector page, its API, `/metrics` (`[admin]`).
    pub admin: AdminSettings,
    /// This node's reflector and the TURN servers calls are offered (`[relay]`).
    pub relay: crate::relay::RelaySettings,
}

/// The admin address (README "Call inspector").
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Serve it at all.
    pub enabled: bool,
    /// Where. Unset: `127.0.0.1:4431`, given up with a warning if that port is taken (a
    /// second local server still starts); an address given here must bind. With `listen` on
    /// port 0 (tests) unset means a free loopback port too.
    pub listen: Option<SocketAddr>,
    /// A token every request must carry; required when `listen` is not a loopback address.
    pub token: Option<String>,
    /// Ended calls kept inspectable.
    pub recent_calls: usize,
    /// Messages kept per call (the latest).
    pub events_per_call: usize,
    /// Messages kept in the feed of all calls.
    pub feed_events: usize,
    /// Record each call's messages (off: the inspector lists sessions and calls only).
    pub record_messages: bool,
    /// Messages recorded per call per second at most; past it a call's messages are counted,
    /// not kept, so a flood costs the server no more than this.
    pub messages_per_call_per_sec: u32,
}

impl Default for AdminSettings {
    fn default() -> Self {
        let inspector = crate::observe::inspector::InspectorSettings::default();
        AdminSettings {
            enabled: true,
            listen: None,
            token: None,
            recent_calls: inspector.recent_calls,
            events_per_call: inspector.events_per_call,
            feed_events: inspector.feed,
            record_messages: inspector.enabled,
            messages_per_call_per_sec: inspector.per_call_per_sec,
        }
    }
}

/// The admin address when none is configured.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4431);

impl AdminSettings {
    /// What the inspector keeps.
    pub fn inspector(&self) -> crate::observe::inspector::InspectorSettings {
        crate::observe::inspector::InspectorSettings {
            recent_calls: self.recent_calls,
            events_per_call: self.events_per_call,
            feed: self.feed_events,
            enabled: self.record_messages,
            per_call_per_sec: self.messages_per_call_per_sec,
        }
    }

    /// Refuses an admin address other hosts can reach without a token.
    pub fn check(&self) -> Result<(), String> {
        match (self.listen, &self.token) {
            (Some(addr), None) if self.enabled && !addr.ip().is_loopback() => Err(format!(
                "the admin address {addr} can be reached from other hosts: set a token \
                 (admin.token, --admin-token or MTCALL_ADMIN_TOKEN)"
            )),
            (_, Some(t)) if t.len() < 16 => {
                Err("the admin token must be at least 16 characters".into())
            }
            _ => Ok(()),
        }
    }
}

/// Call settings: the four timeouts of `help.getConfig` (`docs/calls.md` §6.1, in
/// milliseconds) and the relays offered in `phoneCall.connections` (§5.4).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallSettings {
    /// `call_receive_timeout_ms`.
    pub receive_timeout_ms: i32,
    /// `call_ring_timeout_ms`.
    pub ring_timeout_ms: i32,
    /// `call_connect_timeout_ms`.
    pub connect_timeout_ms: i32,
    /// `call_packet_timeout_ms`.
    pub packet_timeout_ms: i32,
    /// Extra seconds the server waits past a client timer before ending a call itself.
    pub grace_secs: i32,
    /// Longest confirmed call, seconds; longer ones are ended (dead clients cannot leave their
    /// users busy forever).
    pub max_duration_secs: i32,
    /// UDP reflectors (`phoneConnection`, with a per-call 16-byte peer tag).
    pub reflectors: Vec<Reflector>,
    /// TURN/STUN servers (`phoneConnectionWebrtc`).
    pub webrtc: Vec<WebrtcServer>,
    /// When the two clients may send media to each other directly (`phoneCall.p2p_allowed`).
    pub p2p: P2pPolicy,
    /// Ended calls one node keeps in memory for late requests; older ones (up to an hour) are
    /// read back from the database when a request names them.
    pub recent_ended_calls: usize,
}

/// When a call's clients may talk directly rather than through a relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum P2pPolicy {
    /// Whenever both clients offer it.
    #[default]
    Always,
    /// When both offer it and each party has the other as a contact (their addresses stay
    /// hidden from strangers).
    Contacts,
    /// Never: media always takes a relay.
    Never,
}

impl P2pPolicy {
    /// Its name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            P2pPolicy::Always => "always",
            P2pPolicy::Contacts => "contacts",
            P2pPolicy::Never => "never",
        }
    }
}

/// A UDP reflector.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reflector {
    /// Its id.
    pub id: i64,
    /// IPv4 address.
    pub ip: String,
    /// IPv6 address ("" if none).
    #[serde(default)]
    pub ipv6: String,
    /// UDP port.
    pub port: i32,
    /// Reached over TCP.
    #[serde(default)]
    pub tcp: bool,
}

/// A TURN or STUN server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebrtcServer {
    /// Its id.
    pub id: i64,
    /// IPv4 address.
    pub ip: String,
    /// IPv6 address ("" if none).
    #[serde(default)]
    pub ipv6: String,
    /// Port.
    pub port: i32,
    /// Credentials.
    #[serde(default)]
    pub username: String,
    /// Credentials.
    #[serde(default)]
    pub password: String,
    /// A TURN server.
    #[serde(default)]
    pub turn: bool,
    /// A STUN server.
    #[serde(default)]
    pub stun: bool,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            receive_timeout_ms: 20_000,
            ring_timeout_ms: 90_000,
            connect_timeout_ms: 30_000,
            packet_timeout_ms: 10_000,
            grace_secs: 5,
            max_duration_secs: 6 * 3600,
            reflectors: Vec::new(),
            webrtc: Vec::new(),
            p2p: P2pPolicy::Always,
            recent_ended_calls: calls::DEFAULT_RECENT_CAPACITY,
        }
    }
}

impl CallSettings {
    /// The server-side timers (spec §6.3).
    pub fn timeouts(&self) -> calls::Timeouts {
        calls::Timeouts {
            receive: self.receive_timeout_ms / 1000,
            ring: self.ring_timeout_ms / 1000,
            grace: self.grace_secs,
            max_duration: self.max_duration_secs,
            tombstone: 3600,
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
            shutdown_grace_secs: 10,
            durability: "normal".into(),
            database: None,
            calls: CallSettings::default(),
            auth: Default::default(),
            limits: Default::default(),
            admin: AdminSettings::default(),
            relay: Default::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("invalid configuration: {e}"))
    }

    /// Refuses a reflector id that a listed reflector also has (clients pair relay ports by
    /// the rank of the id).
    pub fn check_relays(&self) -> Result<(), String> {
        let own = [self.relay.id, self.relay.id + 1];
        if self.relay.enabled && self.calls.reflectors.iter().any(|r| own.contains(&r.id)) {
            return Err(format!(
                "relay.id {} (and {} over TCP) is also the id of a [[calls.reflectors]] entry: give this node's reflector another id",
                self.relay.id,
                self.relay.id + 1
            ));
        }
        Ok(())
    }

    /// The address clients should dial.
    pub fn public_address(&self) -> SocketAddr {
        self.public_address.unwrap_or(self.listen)
    }

    /// Opens the configured store: PostgreSQL if `database` is a `postgres://` URL (then also
    /// the cluster side of it), else the SQLite file `sqlite_path`.
    pub async fn open_store(&self, sqlite_path: &std::path::Path) -> Result<OpenedStore, String> {
        match self.database.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let store = std::sync::Arc::new(
                    store::PgStore::connect(url)
                        .await
                        .map_err(|e| format!("database {}: {e}", redact(url)))?,
                );
                Ok((store.clone(), Some(store)))
            }
            Some(other) => Err(format!(
                "database must be a postgres:// URL (or absent for SQLite), not {:?}",
                redact(other)
            )),
            None => Ok((
                std::sync::Arc::new(
                    store::SqliteStore::open(sqlite_path, self.store_durability()?)
                        .map_err(|e| e.to_string())?,
                ),
                None,
            )),
        }
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

/// A store, and the same database's cluster side when several nodes can share it.
pub type OpenedStore = (
    std::sync::Arc<dyn store::Store>,
    Option<std::sync::Arc<dyn store::Cluster>>,
);

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
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
        let relayed = Config::from_toml(
            "[calls]\np2p = \"never\"\n[relay]\nlisten = \"127.0.0.1:5000\"\n[relay.turn]\nsecret = \"s\"\nservers = [\"127.0.0.1:3478\"]\n",
        )
        .unwrap();
        assert_eq!(relayed.calls.p2p, P2pPolicy::Never);
        assert!(relayed.relay.enabled);
        assert_eq!(relayed.relay.turn.unwrap().credential_ttl_secs, 86_400);
        assert!(Config::from_toml("[calls]\np2p = \"sometimes\"\n").is_err());
        let clash =
            Config::from_toml("[[calls.reflectors]]\nid = 1\nip = \"10.0.0.1\"\nport = 1\n");
        assert!(clash.unwrap().check_relays().is_err());
        assert_eq!(Config::default().public_address().port(), 4430);
    }

    #[test]
    fn admin_addresses_other_hosts_reach_need_a_token() {
        let open = Config::from_toml("[admin]\nlisten = \"0.0.0.0:4431\"\n").unwrap();
        assert!(open.admin.check().is_err());
        let short =
            Config::from_toml("[admin]\nlisten = \"0.0.0.0:4431\"\ntoken = \"x\"\n").unwrap();
        assert!(short.admin.check().is_err());
        let guarded = Config::from_toml(
            "[admin]\nlisten = \"0.0.0.0:4431\"\ntoken = \"0123456789abcdef\"\nrecent_calls = 5\n",
        )
        .unwrap();
        assert!(guarded.admin.check().is_ok());
        assert_eq!(guarded.admin.inspector().recent_calls, 5);
        assert!(Config::default().admin.check().is_ok());
    }

    #[test]
    fn database_urls_lose_their_password_in_messages() {
        assert_eq!(
            redact("postgres://mt:secret@db:5432/mtcall"),
            "postgres://mt:***@db:5432/mtcall"
        );
        assert_eq!(redact("postgres://mt@db/x"), "postgres://mt@db/x");
    }
}
