//! What one request runs with: the key it came on and who that key is ([`KeyInfo`]), its
//! message id and time, and what the router and the handler note for the metrics and the
//! inspector ([`RpcTrace`]). The services a handler uses are passed to it beside this.

use store::ClientInfo;
use tl::Layer;

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
    /// `initConnection` details, if sent (shared with the inspector's view of the session).
    pub client: Option<std::sync::Arc<ClientInfo>>,
    /// The MTProto session id of the connection.
    pub session_id: i64,
    /// Bumped when `initConnection` or `invokeWithLayer` changes `client` or `layer`, so the
    /// connection tells the inspector without comparing strings per packet.
    pub revision: u32,
}

/// One request in flight.
pub struct RpcCtx<'a> {
    /// The key and its login.
    pub key: &'a mut KeyInfo,
    /// The connection's random bytes.
    pub entropy: &'a mut crate::entropy::Randomness,
    /// The address the connection came from.
    pub peer: std::net::IpAddr,
    /// The request's msg_id.
    pub msg_id: i64,
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
