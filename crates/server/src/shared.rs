//! State shared by every connection: configuration, store, keys, the update hub, and the
//! per-key information a request runs with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use mtproto::crypto::rsa_key::ServerKey;
use mtproto::session::SaltSource;
use store::{ClientInfo, Store};
use tl::Layer;

use crate::config::Config;
use crate::hub::Hub;

/// Everything a connection needs from the server.
pub struct Shared {
    /// Configuration.
    pub config: Config,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Where calls live: this node's memory, or the database several nodes share.
    pub calls: Box<dyn crate::topology::CallBackend>,
    /// Where pushes go: this node's sessions, or the log every node follows.
    pub delivery: Box<dyn crate::topology::Delivery>,
    /// The RSA key.
    pub rsa: Arc<ServerKey>,
    /// The server secret (salts, access hashes).
    pub secret: [u8; 32],
    /// Salt derivation.
    pub salts: SaltSource,
    /// Live sessions by user, for pushes.
    pub hub: Arc<Hub>,
    /// Flood control.
    pub limits: crate::limits::Limits,
    /// Per-user order of pts-carrying pushes.
    pub user_locks: crate::user_locks::UserLocks,
    /// Connection id counter.
    pub next_conn_id: AtomicU64,
    /// Open connections.
    pub connections: AtomicUsize,
    /// Users and contact links rendered on every push.
    pub cache: Arc<crate::cache::Cache>,
    /// Metrics and the call inspector.
    pub observe: crate::observe::Observer,
    /// The time of day.
    pub clock: crate::clock::Clock,
}

/// What a request runs with: the key it came on and who that key is.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    /// The key the request came on.
    pub key_id: i64,
    /// The key whose login counts (the permanent key of a bound temporary key; else `key_id`).
    pub perm_key_id: i64,
    /// For a temporary key, when it expires.
    pub expires_at: Option<i64>,
    /// The logged-in user.
    pub user_id: Option<i64>,
    /// The API layer to encode for.
    pub layer: Layer,
    /// The layer number as the client announced it (stored), if it did.
    pub announced_layer: Option<i32>,
    /// `initConnection` details, if sent.
    pub client: Option<ClientInfo>,
    /// The MTProto session id of the connection.
    pub session_id: i64,
    /// Bumped when `initConnection` or `invokeWithLayer` changes `client` or `layer`, so the
    /// connection tells the inspector without comparing strings per packet.
    pub revision: u32,
}

/// One request in flight.
pub struct RpcCtx<'a> {
    /// The server.
    pub shared: &'a Shared,
    /// The key and its login.
    pub key: &'a mut KeyInfo,
    /// The request's msg_id.
    pub msg_id: i64,
    /// The connection it came on.
    pub conn_id: u64,
    /// Unix time, seconds.
    pub now: i64,
    /// Set by `invokeWithoutUpdates`.
    pub without_updates: bool,
    /// What the router and the handler tell the metrics and the inspector.
    pub trace: RpcTrace,
}

/// What is known about a request once it is handled.
#[derive(Debug, Default)]
pub struct RpcTrace {
    /// The method ("unknown" if it did not decode).
    pub method: &'static str,
    /// The request's body without its wrappers, kept for the inspector (`phone.*` only).
    pub request: Option<Vec<u8>>,
    /// The call it concerns.
    pub call_id: Option<i64>,
}

impl RpcCtx<'_> {
    /// The logged-in user, or 401.
    pub fn user_id(&self) -> Result<i64, crate::errors::RpcError> {
        self.key
            .user_id
            .ok_or(crate::errors::RpcError::AuthKeyUnregistered)
    }

    /// Encodes a result for this key's layer.
    pub fn encode(&self, value: &impl tl::Encode) -> Vec<u8> {
        value.to_bytes(self.key.layer)
    }
}

pub(crate) fn new_conn_id(shared: &Shared) -> u64 {
    shared
        .next_conn_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
