//! What every client connection shares below the API: admission (how many connections, from
//! which addresses), flood control, the RSA keys and salts of the handshake, the auth keys
//! (created, stored, loaded back with their login) and the hub registration that lets pushes
//! reach a logged-in session. Only [`crate::connection`] and the accept loop use it.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::hub::Hub;
use crate::key_ring::KeyRing;
use crate::limits::Limits;
use crate::push_queue::PushSender;
use crate::rpc::KeyInfo;
use mtproto::crypto::AuthKey;
use mtproto::crypto::rsa_key::ServerKey;
use mtproto::session::{SaltSource, SessionConfig};
use store::{AuthKeyRow, Store, StoreError};
use tl::Layer;

/// Sessions and what they are admitted and keyed with.
pub struct Sessions {
    keys: Arc<KeyRing>,
    salts: SaltSource,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    limits: Limits,
    max_connections: usize,
    open: AtomicUsize,
    next_conn_id: AtomicU64,
    accepting: AtomicBool,
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` are open.
    Full,
    /// Its address has as many open as `[limits]` allows.
    AddressFull,
}

/// A stored auth key, ready to run a session on.
pub struct LoadedKey {
    /// Who the key is and what it announced.
    pub info: KeyInfo,
    /// The key itself.
    pub key: AuthKey,
    /// Its salts.
    pub config: SessionConfig,
}

/// What [`Sessions`] is built from.
pub struct SessionsParts {
    /// The handshake's RSA keys.
    pub keys: Arc<KeyRing>,
    /// The server secret (salts).
    pub secret: [u8; 32],
    /// Auth keys.
    pub store: Arc<dyn Store>,
    /// Where logged-in sessions register.
    pub hub: Arc<Hub>,
    /// Flood control.
    pub limits: Limits,
    /// Open connections allowed.
    pub max_connections: usize,
}

impl Sessions {
    /// Sessions over `parts`.
    pub fn new(parts: SessionsParts) -> Sessions {
        Sessions {
            keys: parts.keys,
            salts: SaltSource::new(parts.secret),
            store: parts.store,
            hub: parts.hub,
            limits: parts.limits,
            max_connections: parts.max_connections,
            open: AtomicUsize::new(0),
            next_conn_id: AtomicU64::new(0),
            accepting: AtomicBool::new(false),
        }
    }

    /// The accept loop says whether it is taking connections.
    pub fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::Relaxed);
    }

    /// Whether new connections are taken: the accept loop runs and the connection limit is not
    /// reached (readiness).
    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
            && self.open.load(Ordering::Relaxed) < self.max_connections
    }

    /// Admits a connection from `ip`; every `Ok` must be matched by a [`Sessions::closed`].
    pub fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        if open >= self.max_connections {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::Full);
        }
        if !self.limits.opened(ip) {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::AddressFull);
        }
        Ok(())
    }

    /// A connection admitted from `ip` closed.
    pub fn closed(&self, ip: IpAddr) {
        self.limits.closed(ip);
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A new connection id.
    pub fn conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The start of a key creation from `ip` at `now_ms`: `Err(seconds)` to wait.
    pub fn handshake_allowed(&self, ip: IpAddr, now_ms: i64) -> Result<(), u32> {
        self.limits.handshake(ip, now_ms)
    }

    /// A request on `key` from `ip` at `now_ms`: `Err(seconds)` to wait.
    pub fn request_allowed(&self, ip: IpAddr, key: &KeyInfo, now_ms: i64) -> Result<(), u32> {
        self.limits
            .request(ip, key.perm_key_id, key.user_id, now_ms)
    }

    /// The RSA keys a handshake starting now offers.
    pub fn rsa_keys(&self) -> Arc<Vec<ServerKey>> {
        self.keys.current()
    }

    /// Each RSA key on offer: fingerprint and public file.
    pub fn rsa_key_list(&self) -> Vec<crate::key_ring::KeyInfo> {
        self.keys.list()
    }

    /// Stores a key the handshake created (before the client hears it exists).
    pub async fn store_key(&self, row: AuthKeyRow) -> Result<(), StoreError> {
        self.store.insert_auth_key(row).await
    }

    /// The stored key `key_id` with its login, if it exists and has not expired at `now`.
    pub async fn load_key(&self, key_id: i64, now: i64) -> Result<Option<LoadedKey>, StoreError> {
        let Some(row) = self.store.auth_key(key_id).await? else {
            return Ok(None);
        };
        if row.expires_at.is_some_and(|e| e < now) {
            return Ok(None);
        }
        let Ok(bytes) = <[u8; 256]>::try_from(row.key.as_slice()) else {
            return Err(StoreError::Corrupt(format!(
                "auth key {key_id:016x} is not 256 bytes"
            )));
        };
        let perm_key_id = row.perm_key_id.unwrap_or(row.id);
        let user_id = match row.perm_key_id {
            Some(perm) => self.store.auth_key(perm).await?.and_then(|p| p.user_id),
            None => row.user_id,
        };
        Ok(Some(LoadedKey {
            info: KeyInfo {
                key_id,
                perm_key_id,
                expires_at: row.expires_at,
                user_id,
                layer: row.layer.and_then(Layer::serving).unwrap_or(Layer::LATEST),
                announced_layer: row.layer,
                client: row.client.map(Arc::new),
                session_id: 0,
                revision: 0,
            },
            key: AuthKey::from_bytes(bytes),
            config: SessionConfig {
                salts: self.salts.clone(),
                first_salt: Some((row.first_salt, row.created_at + 1800)),
            },
        }))
    }

    /// Registers a logged-in session for pushes to `user_id`.
    pub fn register(&self, user_id: i64, conn_id: u64, key_id: i64, tx: PushSender) {
        self.hub.register(user_id, conn_id, key_id, tx);
    }

    /// Drops a session's registration.
    pub fn unregister(&self, user_id: i64, conn_id: u64) {
        self.hub.unregister(user_id, conn_id);
    }
}
