//! The client's error type: every way a request or a connection can fail, with the server's
//! `rpc_error` kept as its code and name.

use std::fmt;

use mtproto::handshake::HandshakeError;
use mtproto::session::SessionError;
use mtproto::transport::TransportError;
use tl::DecodeError;

/// What can go wrong talking to a server.
#[derive(Debug)]
pub enum ClientError {
    /// The socket failed.
    Io(std::io::Error),
    /// The server did not answer in time ([`crate::TIMEOUT`]).
    Timeout,
    /// The server closed the connection.
    Closed,
    /// The server did not answer a keep-alive ping.
    NoPong,
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
            Self::NoPong => f.write_str("the server did not answer a keep-alive ping"),
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

impl ClientError {
    /// Whether a new connection may succeed where this one failed (the socket broke, the server
    /// went away or stopped answering). An `rpc_error`, a refused key (-404) or an undecodable
    /// answer would fail again.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Self::Io(_) | Self::Timeout | Self::Closed | Self::NoPong | Self::Transport(_)
        ) || matches!(self, Self::TransportCode(code) if *code != -404)
    }
}
