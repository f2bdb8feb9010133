//! mtcall's Rust client: a connection that creates an auth key and keeps an encrypted session
//! over the sans-IO client role of the [`mtproto`] crate — typed calls ([`Client::call`]),
//! pushed updates in pts order with gap recovery ([`Client::next_update`], `updates.rs`),
//! keep-alive pings, reconnects that resume the same key and catch up on what was missed,
//! login as a user or a bot (`login.rs`) and the high-level call API (`calls.rs`).
//! One request is in flight at a time; updates that arrive meanwhile are kept.
//! (`docs/design.md`: the `client` layer; `docs/clients.md`.)

pub mod calls;
mod error;
mod login;
mod raw;
pub mod updates;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use mtproto::crypto::rsa_key::PublicKey;
use mtproto::crypto::{Entropy, OsEntropy};
use mtproto::handshake::RsaScheme;
use mtproto::session::{ClientSession, ServerMessage};
use mtproto::transport::Kind;
use tl::{Decode, Encode, Layer};

pub use error::ClientError;
pub use raw::{Endpoint, Raw};
pub use updates::UpdateState;

/// How long to wait for the server's answer to a request before giving up.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Silence after which a waiting client pings the server (and after which a missing pong
/// counts as a lost connection).
pub const KEEPALIVE: Duration = Duration::from_secs(45);

/// How long [`Client`] keeps trying to reconnect after the connection is lost.
pub const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// The current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An encrypted client connection.
pub struct Client {
    /// The connection.
    pub raw: Raw,
    /// The session.
    pub session: ClientSession,
    /// Pushes and other unsolicited messages received while waiting for results.
    pub pushes: VecDeque<Vec<u8>>,
    /// The API layer requests are encoded for.
    pub layer: Layer,
    /// Reconnect (same key, new session) and resend when the connection is lost; default on.
    pub auto_reconnect: bool,
    /// The longest [`Client::next_update`] waits; `None` (the default) waits for ever,
    /// pinging the server every [`KEEPALIVE`] of silence.
    pub update_wait_limit: Option<Duration>,
    /// Updates received but not yet taken by [`Client::next_update`].
    updates: VecDeque<tl::enums::Update>,
    /// The update state (pts) this client has applied, once known.
    state: Option<UpdateState>,
    /// Set after a reconnect: the next [`Client::next_update`] fetches the difference first.
    behind: bool,
    /// A ping is out and its pong has not come back.
    awaiting_pong: bool,
    /// Cached `messages.getDhConfig`.
    dh: Option<calls::DhConfig>,
    /// How this client introduces itself in `initConnection` (shown by the server's
    /// inspector); sent with the first request of every connection, as official clients do.
    pub app: AppInfo,
    /// Whether this connection's `initConnection` has been answered.
    introduced: bool,
}

/// What a client says about itself in `initConnection`.
#[derive(Clone, Debug)]
pub struct AppInfo {
    /// `api_id`.
    pub api_id: i32,
    /// `device_model`.
    pub device_model: String,
    /// `system_version`.
    pub system_version: String,
    /// `app_version`.
    pub app_version: String,
    /// `lang_code` and `system_lang_code`.
    pub lang_code: String,
}

impl Default for AppInfo {
    fn default() -> Self {
        AppInfo {
            api_id: 0,
            device_model: "mtcall client".into(),
            system_version: std::env::consts::OS.into(),
            app_version: concat!("mtcall ", env!("CARGO_PKG_VERSION")).into(),
            lang_code: "en".into(),
        }
    }
}

impl Client {
    /// Connects to `addr` and creates a new auth key with the server's public `key`.
    pub async fn connect(
        addr: SocketAddr,
        key: &PublicKey,
        kind: Kind,
        obfuscated: bool,
    ) -> Result<Client, ClientError> {
        let mut raw = Raw::connect(addr, kind, obfuscated).await?;
        let key = raw.handshake(key, RsaScheme::Pad, None).await?;
        // Start with salt 0 like GramJS and Telethon; the first call corrects it.
        let session = ClientSession::new(key.auth_key, 0, key.time_offset, &mut OsEntropy);
        Ok(Client::from_parts(raw, session))
    }

    /// Resumes a saved auth key on a new connection (a new session; salt from the server).
    pub async fn resume(addr: SocketAddr, auth_key: [u8; 256]) -> Result<Client, ClientError> {
        Client::resume_at(
            Endpoint {
                addr,
                kind: Kind::Full,
                obfuscated: false,
            },
            auth_key,
        )
        .await
    }

    /// Resumes a saved auth key over the given transport.
    pub async fn resume_at(endpoint: Endpoint, auth_key: [u8; 256]) -> Result<Client, ClientError> {
        let raw = Raw::open(endpoint).await?;
        let key = mtproto::crypto::AuthKey::from_bytes(auth_key);
        Ok(Client::from_parts(
            raw,
            ClientSession::new(key, 0, 0, &mut OsEntropy),
        ))
    }

    /// A client over an existing connection and session (e.g. after a handshake done by hand).
    pub fn from_parts(raw: Raw, session: ClientSession) -> Client {
        Client {
            raw,
            session,
            pushes: VecDeque::new(),
            layer: Layer::LATEST,
            auto_reconnect: true,
            update_wait_limit: None,
            updates: VecDeque::new(),
            state: None,
            behind: false,
            awaiting_pong: false,
            dh: None,
            app: AppInfo::default(),
            introduced: false,
        }
    }

    /// Opens a new connection to the same server with the same key and a new session. Updates
    /// pushed while the connection was down are fetched by the next [`Client::next_update`]
    /// (or at once with [`Client::catch_up`]).
    pub async fn reconnect(&mut self) -> Result<(), ClientError> {
        let raw = Raw::open(self.raw.endpoint).await?;
        let key = self.session.auth_key().clone();
        self.raw = raw;
        self.session = ClientSession::new(key, self.session.salt(), 0, &mut OsEntropy);
        self.awaiting_pong = false;
        self.introduced = false;
        // Whatever was pushed meanwhile is lost with the old connection: fetch the difference
        // (from the server's current state if none was known; it lists the live calls).
        self.behind = true;
        Ok(())
    }

    /// Reconnects with backoff (50 ms doubling to 2 s) for up to [`RECONNECT_FOR`].
    async fn reconnect_patiently(&mut self) -> Result<(), ClientError> {
        let give_up = tokio::time::Instant::now() + RECONNECT_FOR;
        let mut pause = Duration::from_millis(50);
        loop {
            match self.reconnect().await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() + pause >= give_up => return Err(e),
                Err(_) => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Invokes a request body, resending after `bad_server_salt`, and once more on a new
    /// connection if this one is lost first (with [`Client::auto_reconnect`]); returns the
    /// result body.
    pub async fn call_raw(&mut self, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        match self.call_once(&body).await {
            Err(e) if self.auto_reconnect && e.is_connection_lost() => {
                self.reconnect_patiently().await?;
                self.call_once(&body).await
            }
            other => other,
        }
    }

    /// `body` wrapped in `invokeWithLayer(initConnection(...))` on a connection's first request.
    fn introduce(&self, body: &[u8]) -> Vec<u8> {
        if self.introduced {
            return body.to_vec();
        }
        let init = tl::functions::InitConnection {
            api_id: self.app.api_id,
            device_model: self.app.device_model.clone(),
            system_version: self.app.system_version.clone(),
            app_version: self.app.app_version.clone(),
            system_lang_code: self.app.lang_code.clone(),
            lang_pack: String::new(),
            lang_code: self.app.lang_code.clone(),
            proxy: None,
            params: None,
            query: tl::Raw(body.to_vec()),
        };
        wrap_layer(self.layer.number(), init.to_bytes(self.layer))
    }

    async fn call_once(&mut self, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        let result = self.call_introduced(body).await;
        if matches!(&result, Ok(_) | Err(ClientError::Rpc { .. })) {
            self.introduced = true;
        }
        result
    }

    async fn call_introduced(&mut self, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        let body = self.introduce(body);
        for _ in 0..3 {
            let (ids, packet) =
                self.session
                    .encrypt(std::slice::from_ref(&body), now_ms(), &mut OsEntropy);
            self.raw.send(&packet).await?;
            loop {
                let packet = self.raw.recv_packet().await?;
                let mut resend = false;
                let mut answer = None;
                // Every message of the packet is taken, the answer or not: a container may
                // carry updates after the result, and they are kept for `next_push`.
                for m in self.session.decrypt(packet)? {
                    match m {
                        ServerMessage::RpcResult { req_msg_id, result } if req_msg_id == ids[0] => {
                            answer = Some(result);
                        }
                        ServerMessage::BadServerSalt { bad_msg_id, .. } if bad_msg_id == ids[0] => {
                            resend = true
                        }
                        other => self.keep(other),
                    }
                }
                if let Some(result) = answer {
                    return result.map_err(|(code, message)| ClientError::Rpc { code, message });
                }
                if resend {
                    break;
                }
            }
        }
        Err(ClientError::NoAnswer)
    }

    /// Keeps what arrived besides the awaited result.
    fn keep(&mut self, m: ServerMessage) {
        match m {
            ServerMessage::Other(b) => self.pushes.push_back(b),
            ServerMessage::Pong { .. } => self.awaiting_pong = false,
            _ => {}
        }
    }

    /// Invokes a typed request.
    pub async fn call<R: tl::RemoteCall>(&mut self, request: &R) -> Result<R::Return, ClientError> {
        let body = request.to_bytes(self.layer);
        let bytes = self.call_raw(body).await?;
        Ok(R::Return::from_bytes(&bytes)?)
    }

    /// The next pushed message (e.g. an `updates`), waiting up to [`TIMEOUT`].
    pub async fn next_push(&mut self) -> Result<Vec<u8>, ClientError> {
        self.wait_push(Some(TIMEOUT)).await
    }

    /// The next pushed message if one arrives within `limit`.
    pub async fn next_push_within(
        &mut self,
        limit: Duration,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        match self.wait_push(Some(limit)).await {
            Ok(p) => Ok(Some(p)),
            Err(ClientError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next pushed message, waiting up to `limit` (for ever when `None`), pinging the
    /// server after [`KEEPALIVE`] of silence; a ping left unanswered for as long again means
    /// the connection is lost ([`ClientError::NoPong`]).
    async fn wait_push(&mut self, limit: Option<Duration>) -> Result<Vec<u8>, ClientError> {
        let deadline = limit.map(|l| tokio::time::Instant::now() + l);
        loop {
            if let Some(p) = self.pushes.pop_front() {
                return Ok(p);
            }
            let mut wait = KEEPALIVE;
            if let Some(d) = deadline {
                wait = wait.min(d.saturating_duration_since(tokio::time::Instant::now()));
            }
            match self.raw.recv_packet_within(wait).await {
                Ok(packet) => {
                    for m in self.session.decrypt(packet)? {
                        self.keep(m);
                    }
                }
                Err(ClientError::Timeout) => {
                    if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        return Err(ClientError::Timeout);
                    }
                    if self.awaiting_pong {
                        return Err(ClientError::NoPong);
                    }
                    self.ping().await?
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `ping_delay_disconnect`: the server closes the connection if nothing follows it
    /// within two keep-alive periods (so a half-open connection does not linger).
    async fn ping(&mut self) -> Result<(), ClientError> {
        let ping = tl::functions::PingDelayDisconnect {
            ping_id: OsEntropy.i64(),
            disconnect_delay: (KEEPALIVE.as_secs() * 2) as i32,
        }
        .to_bytes(Layer::LATEST);
        let (_, packet) = self.session.encrypt(&[ping], now_ms(), &mut OsEntropy);
        self.raw.send(&packet).await?;
        self.awaiting_pong = true;
        Ok(())
    }
}

/// The id of a `User`.
pub fn user_id(u: &tl::enums::User) -> i64 {
    match u {
        tl::enums::User::User(u) => u.id,
        tl::enums::User::Empty(u) => u.id,
    }
}

/// `invokeWithLayer(layer, query)`.
pub fn wrap_layer(layer: i32, query: Vec<u8>) -> Vec<u8> {
    tl::functions::InvokeWithLayer {
        layer,
        query: tl::Raw(query),
    }
    .to_bytes(Layer::LATEST)
}
