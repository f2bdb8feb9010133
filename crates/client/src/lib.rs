//! mtcall's Rust client, first part: a connection that creates an auth key and runs an
//! encrypted session over the sans-IO client role of the [`mtproto`] crate, with typed calls
//! ([`Client::call`]), pushed updates ([`Client::next_push`]) and login by Telegram's test
//! numbers. One request is in flight at a time; updates that arrive meanwhile are kept.
//! (`../shared/DESIGN.md`: the `client` layer; issue 5 adds reconnects, gap recovery and the
//! high-level call API.)

pub mod calls;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use mtproto::crypto::OsEntropy;
use mtproto::crypto::rsa_key::PublicKey;
use mtproto::handshake::{ClientHandshake, ClientKey, HandshakeError, RsaScheme, plain};
use mtproto::session::{ClientSession, ServerMessage, SessionError};
use mtproto::transport::{ClientFrame, ClientTransport, Kind, TransportError};
use tl::{Decode, DecodeError, Encode, Layer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long to wait for the server before giving up.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What can go wrong talking to a server.
#[derive(Debug)]
pub enum ClientError {
    /// The socket failed.
    Io(std::io::Error),
    /// The server did not answer within [`TIMEOUT`].
    Timeout,
    /// The server closed the connection.
    Closed,
    /// The server's bytes are not a valid transport stream.
    Transport(TransportError),
    /// The server sent a transport error code (e.g. -404: unknown auth key).
    TransportCode(i32),
    /// Auth-key creation failed.
    Handshake(HandshakeError),
    /// A packet from the server did not decrypt.
    Session(SessionError),
    /// A result did not decode.
    Decode(DecodeError),
    /// The server answered with an `rpc_error`.
    Rpc {
        /// `error_code`.
        code: i32,
        /// `error_message`.
        message: String,
    },
    /// The server kept refusing the salt.
    NoAnswer,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "socket error: {e}"),
            Self::Timeout => f.write_str("the server did not answer in time"),
            Self::Closed => f.write_str("the server closed the connection"),
            Self::Transport(e) => write!(f, "transport error: {e}"),
            Self::TransportCode(c) => write!(f, "transport error code {c}"),
            Self::Handshake(e) => write!(f, "auth key creation failed: {e}"),
            Self::Session(e) => write!(f, "session error: {e}"),
            Self::Decode(e) => write!(f, "undecodable answer: {e}"),
            Self::Rpc { code, message } => write!(f, "{code} {message}"),
            Self::NoAnswer => f.write_str("no answer after three salt corrections"),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// `(code, message)` of an `rpc_error`, if that is what this is.
    pub fn rpc(&self) -> Option<(i32, &str)> {
        match self {
            Self::Rpc { code, message } => Some((*code, message)),
            _ => None,
        }
    }
}

macro_rules! from {
    ($($t:ty => $v:ident),*) => {$(impl From<$t> for ClientError { fn from(e: $t) -> Self { ClientError::$v(e) } })*};
}
from!(std::io::Error => Io, TransportError => Transport, HandshakeError => Handshake, SessionError => Session, DecodeError => Decode);

/// One TCP connection speaking a transport, below the session.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    /// The transport framing.
    pub transport: ClientTransport,
    buf: Vec<u8>,
}

impl Raw {
    /// Opens a connection speaking `kind` (obfuscated if asked).
    pub async fn connect(
        addr: SocketAddr,
        kind: Kind,
        obfuscated: bool,
    ) -> Result<Raw, ClientError> {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout)??;
        let _ = stream.set_nodelay(true);
        Ok(Raw {
            stream,
            transport: ClientTransport::new(kind, obfuscated, 2, &mut OsEntropy),
            buf: vec![0; 65536],
        })
    }

    /// Sends one transport frame.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        let mut out = Vec::new();
        self.transport.encode(payload, false, &mut out);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// The next frame; `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Result<Option<ClientFrame>, ClientError> {
        loop {
            if let Some(f) = self.transport.next_frame()? {
                return Ok(Some(f));
            }
            let n = tokio::time::timeout(TIMEOUT, self.stream.read(&mut self.buf))
                .await
                .map_err(|_| ClientError::Timeout)??;
            if n == 0 {
                return Ok(None);
            }
            let data = self.buf[..n].to_vec();
            self.transport.feed(&data);
        }
    }

    /// The next MTProto packet (transport error codes and a close are errors).
    pub async fn recv_packet(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            match self.recv().await? {
                Some(ClientFrame::Packet(p)) => return Ok(p),
                Some(ClientFrame::Error(code)) => return Err(ClientError::TransportCode(code)),
                Some(ClientFrame::QuickAck(_)) => continue,
                None => return Err(ClientError::Closed),
            }
        }
    }

    /// Sends a plain message and returns the plain body of the answer.
    pub async fn plain_call(&mut self, body: &[u8]) -> Result<Vec<u8>, ClientError> {
        let msg_id = (now_ms() / 1000) << 32;
        self.send(&plain::encode(msg_id, body)).await?;
        let packet = self.recv_packet().await?;
        Ok(plain::decode(&packet)?.1.to_vec())
    }

    /// Creates an auth key with the server's public `key` (a temporary one if `temp` is set).
    pub async fn handshake(
        &mut self,
        key: &PublicKey,
        scheme: RsaScheme,
        temp: Option<i32>,
    ) -> Result<ClientKey, ClientError> {
        let e = &mut OsEntropy;
        let (mut hs, req_pq) = ClientHandshake::start(scheme, 2, temp, e);
        let res_pq = self.plain_call(&req_pq).await?;
        let req_dh = hs.on_res_pq(&res_pq, std::slice::from_ref(key), e)?;
        let dh = self.plain_call(&req_dh).await?;
        let set = hs.on_dh_params(&dh, (now_ms() / 1000) as i32, e)?;
        let answer = self.plain_call(&set).await?;
        Ok(hs.on_dh_answer(&answer)?)
    }
}

/// An encrypted client connection.
pub struct Client {
    /// The connection.
    pub raw: Raw,
    /// The session.
    pub session: ClientSession,
    /// Pushes and other unsolicited messages received while waiting for results.
    pub pushes: Vec<Vec<u8>>,
    /// The API layer requests are encoded for.
    pub layer: Layer,
    /// Updates received but not yet taken by [`Client::next_update`].
    updates: VecDeque<tl::enums::Update>,
    /// Cached `messages.getDhConfig`.
    dh: Option<calls::DhConfig>,
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
        Ok(Client {
            raw,
            session,
            pushes: Vec::new(),
            layer: Layer::LATEST,
            updates: VecDeque::new(),
            dh: None,
        })
    }

    /// Resumes a saved auth key on a new connection (a new session; salt from the server).
    pub async fn resume(addr: SocketAddr, auth_key: [u8; 256]) -> Result<Client, ClientError> {
        let raw = Raw::connect(addr, Kind::Full, false).await?;
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
            pushes: Vec::new(),
            layer: Layer::LATEST,
            updates: VecDeque::new(),
            dh: None,
        }
    }

    /// Reconnects with the same key on a new connection and a new session.
    pub async fn reconnect(self, addr: SocketAddr) -> Result<Client, ClientError> {
        let raw = Raw::connect(addr, Kind::Full, false).await?;
        let session = ClientSession::new(self.session.auth_key().clone(), 0, 0, &mut OsEntropy);
        Ok(Client {
            raw,
            session,
            pushes: Vec::new(),
            layer: self.layer,
            updates: VecDeque::new(),
            dh: self.dh,
        })
    }

    /// Invokes a request body, resending after `bad_server_salt`; returns the result body.
    pub async fn call_raw(&mut self, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        for _ in 0..3 {
            let (ids, packet) =
                self.session
                    .encrypt(std::slice::from_ref(&body), now_ms(), &mut OsEntropy);
            self.raw.send(&packet).await?;
            loop {
                let packet = self.raw.recv_packet().await?;
                let mut resend = false;
                for m in self.session.decrypt(&packet)? {
                    match m {
                        ServerMessage::RpcResult { req_msg_id, result } if req_msg_id == ids[0] => {
                            return result
                                .map_err(|(code, message)| ClientError::Rpc { code, message });
                        }
                        ServerMessage::BadServerSalt { bad_msg_id, .. } if bad_msg_id == ids[0] => {
                            resend = true
                        }
                        ServerMessage::Other(b) => self.pushes.push(b),
                        _ => {}
                    }
                }
                if resend {
                    break;
                }
            }
        }
        Err(ClientError::NoAnswer)
    }

    /// Invokes a typed request.
    pub async fn call<R: tl::RemoteCall>(&mut self, request: &R) -> Result<R::Return, ClientError> {
        let body = request.to_bytes(self.layer);
        let bytes = self.call_raw(body).await?;
        Ok(R::Return::from_bytes(&bytes)?)
    }

    /// The next pushed message (e.g. an `updates`), waiting up to [`TIMEOUT`].
    pub async fn next_push(&mut self) -> Result<Vec<u8>, ClientError> {
        if !self.pushes.is_empty() {
            return Ok(self.pushes.remove(0));
        }
        loop {
            let packet = self.raw.recv_packet().await?;
            for m in self.session.decrypt(&packet)? {
                if let ServerMessage::Other(b) = m {
                    self.pushes.push(b);
                }
            }
            if !self.pushes.is_empty() {
                return Ok(self.pushes.remove(0));
            }
        }
    }

    /// Signs in (or up, as `first_name`) with a number of Telegram's test form `99966XYYYY`,
    /// whose code is `XXXXX`.
    pub async fn login(
        &mut self,
        phone: &str,
        first_name: &str,
    ) -> Result<tl::enums::User, ClientError> {
        use tl::{enums, functions, types};
        let digit = phone.as_bytes().get(5).copied().unwrap_or(b'0') as char;
        let code: String = std::iter::repeat_n(digit, 5).collect();
        let sent = self
            .call(&functions::auth::SendCode {
                phone_number: phone.into(),
                api_id: 1,
                api_hash: "mtcall".into(),
                settings: types::CodeSettings::default().into(),
            })
            .await?;
        let hash = match sent {
            enums::auth::SentCode::SentCode(s) => s.phone_code_hash,
            _ => {
                return Err(ClientError::Rpc {
                    code: 0,
                    message: "unexpected auth.SentCode".into(),
                });
            }
        };
        let signed = self
            .call(&functions::auth::SignIn {
                phone_number: phone.into(),
                phone_code_hash: hash.clone(),
                phone_code: Some(code),
                email_verification: None,
            })
            .await?;
        let signed = match signed {
            enums::auth::Authorization::SignUpRequired(_) => {
                self.call(&functions::auth::SignUp {
                    no_joined_notifications: false,
                    phone_number: phone.into(),
                    phone_code_hash: hash,
                    first_name: first_name.into(),
                    last_name: String::new(),
                })
                .await?
            }
            a => a,
        };
        match signed {
            enums::auth::Authorization::Authorization(a) => Ok(a.user),
            enums::auth::Authorization::SignUpRequired(_) => Err(ClientError::Rpc {
                code: 0,
                message: "sign-up did not authorize".into(),
            }),
        }
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
