//! MTProto TCP transports (`docs/clients.md §1.1`): abridged,
//! intermediate, padded intermediate and full, each optionally inside obfuscation
//! (`docs/clients.md §1.1`).
//!
//! [`ServerTransport`] detects the transport from a connection's first bytes; [`ClientTransport`]
//! speaks a chosen one. Both are sans-IO: feed received bytes in, take frames out, and encode
//! payloads into bytes to send.

mod codec;
mod obfuscation;

pub use codec::{ClientFrame, ClientTransport, ServerTransport};
pub use obfuscation::Obfuscation;

use std::fmt;

/// A transport framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One length byte (in 4-byte words) or `0x7f` + three.
    Abridged,
    /// A 4-byte length.
    Intermediate,
    /// A 4-byte length with 0–15 random bytes of padding after the payload.
    PaddedIntermediate,
    /// Length, sequence number, payload, CRC32.
    Full,
}

impl Kind {
    /// The transport's name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Abridged => "abridged",
            Kind::Intermediate => "intermediate",
            Kind::PaddedIntermediate => "padded",
            Kind::Full => "full",
        }
    }
}

/// One received frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The payload (an MTProto packet, or a 4-byte transport error from a server).
    pub payload: Vec<u8>,
    /// The sender asked for a quick acknowledgement (abridged/intermediate length flag).
    pub quick_ack: bool,
    /// The payload may end in up to 15 bytes of padding (padded intermediate).
    pub padded: bool,
}

/// Transport error codes (`docs/clients.md §1.1`).
pub mod codes {
    /// The auth key is not known.
    pub const AUTH_KEY_NOT_FOUND: i32 = -404;
    /// Too many connections or requests from this address.
    pub const FLOOD: i32 = -429;
    /// Wrong DC id in the obfuscation header.
    pub const INVALID_DC: i32 = -444;
}

/// Why received bytes cannot be a valid transport stream. The connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// A frame longer than the configured cap.
    FrameTooLarge {
        /// Its declared length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A zero or misaligned length.
    BadLength(usize),
    /// The full transport's CRC32 does not match.
    BadCrc,
    /// The full transport's sequence number is not the next one.
    BadSeq {
        /// The number expected.
        expected: u32,
        /// The number received.
        got: u32,
    },
    /// The obfuscation header names no known transport.
    BadObfuscationTag([u8; 4]),
    /// The first bytes fit no transport (e.g. an HTTP request).
    Unrecognised,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FrameTooLarge { len, max } => write!(f, "frame of {len} bytes exceeds {max}"),
            Self::BadLength(n) => write!(f, "invalid frame length {n}"),
            Self::BadCrc => f.write_str("CRC32 mismatch"),
            Self::BadSeq { expected, got } => {
                write!(f, "sequence number {got}, expected {expected}")
            }
            Self::BadObfuscationTag(t) => write!(f, "unknown obfuscation tag {t:02x?}"),
            Self::Unrecognised => f.write_str("not an MTProto transport"),
        }
    }
}

impl std::error::Error for TransportError {}
