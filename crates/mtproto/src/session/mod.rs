//! Encrypted sessions (`docs/clients.md §1.3`,
//! `docs/clients.md §1.3`): message ids, sequence numbers, server
//! salts, containers, `gzip_packed`, acknowledgements and the service messages, for the server
//! ([`ServerSession`]) and the client ([`ClientSession`]).
//!
//! Time is an input: every call that needs it takes the current Unix time in milliseconds.

mod client;
mod msg_id;
mod salt;
mod seen_ids;
mod server;

pub use client::{ClientSession, ServerMessage};
pub use msg_id::MsgIdGen;
pub use salt::SaltSource;
pub use server::{BadMsgCode, Received, Request, ServerSession, SessionConfig};

use std::fmt;
use std::io::Read as _;

use tl::Identifiable;

use crate::crypto::{AuthKey, Entropy, Plaintext};

/// Largest body a `gzip_packed` may inflate to.
pub const MAX_INFLATED: usize = 1 << 20;

/// Constructor id of `msgs_ack`.
pub(crate) const MSGS_ACK_ID: u32 = 0x62d6b459;
const PING_ID: u32 = <tl::functions::Ping as Identifiable>::CONSTRUCTOR_ID;
const PING_DELAY_DISCONNECT_ID: u32 =
    <tl::functions::PingDelayDisconnect as Identifiable>::CONSTRUCTOR_ID;
const GET_FUTURE_SALTS_ID: u32 = <tl::functions::GetFutureSalts as Identifiable>::CONSTRUCTOR_ID;
const DESTROY_SESSION_ID: u32 = <tl::functions::DestroySession as Identifiable>::CONSTRUCTOR_ID;
const MSGS_STATE_REQ_ID: u32 = <tl::types::MsgsStateReq as Identifiable>::CONSTRUCTOR_ID;
const MSG_RESEND_REQ_ID: u32 = <tl::types::MsgResendReq as Identifiable>::CONSTRUCTOR_ID;
const RPC_DROP_ANSWER_ID: u32 = <tl::functions::RpcDropAnswer as Identifiable>::CONSTRUCTOR_ID;
const HTTP_WAIT_ID: u32 = <tl::types::HttpWait as Identifiable>::CONSTRUCTOR_ID;

/// Why a packet was refused as a whole. The connection should be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// The packet is not for this auth key.
    WrongAuthKey,
    /// `msg_key` does not match the decrypted data, or the length is not whole blocks.
    BadMsgKey,
    /// The inner length or padding is out of bounds.
    BadPlaintext,
    /// Undecodable TL where a service message was expected.
    Decode(tl::DecodeError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongAuthKey => f.write_str("packet for another auth key"),
            Self::BadMsgKey => f.write_str("msg_key mismatch"),
            Self::BadPlaintext => f.write_str("invalid length or padding in the decrypted packet"),
            Self::Decode(e) => write!(f, "undecodable service message: {e}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<tl::DecodeError> for SessionError {
    fn from(e: tl::DecodeError) -> Self {
        SessionError::Decode(e)
    }
}

/// One decrypted message: the fields between the session id and the padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DecryptedMessage {
    pub salt: i64,
    pub session_id: i64,
    pub msg_id: i64,
    pub seqno: i32,
    pub body: Vec<u8>,
}

/// Splits a decrypted packet, checking the MTProto 2.0 bounds (12–1024 bytes of padding).
/// The body keeps the packet's allocation (the header and padding are cut off it).
pub(crate) fn parse_plaintext(plain: Plaintext) -> Result<DecryptedMessage, SessionError> {
    let mut r = tl::Reader::new(plain.bytes());
    let salt = r.read_i64()?;
    let session_id = r.read_i64()?;
    let msg_id = r.read_i64()?;
    let seqno = r.read_i32()?;
    let len = r.read_i32()?;
    let len = usize::try_from(len).map_err(|_| SessionError::BadPlaintext)?;
    if len % 4 != 0 || len > r.remaining() {
        return Err(SessionError::BadPlaintext);
    }
    let padding = r.remaining() - len;
    if !(12..=1024).contains(&padding) {
        return Err(SessionError::BadPlaintext);
    }
    Ok(DecryptedMessage {
        salt,
        session_id,
        msg_id,
        seqno,
        body: plain.into_part(32, len),
    })
}

/// Builds a padded plaintext (12–1024 bytes of padding, total a multiple of 16).
pub(crate) fn build_plaintext(
    salt: i64,
    session_id: i64,
    msg_id: i64,
    seqno: i32,
    body: &[u8],
    entropy: &mut impl Entropy,
) -> Plaintext {
    Plaintext::build(32 + body.len() + 32, |out| {
        out.extend_from_slice(&salt.to_le_bytes());
        out.extend_from_slice(&session_id.to_le_bytes());
        out.extend_from_slice(&msg_id.to_le_bytes());
        out.extend_from_slice(&seqno.to_le_bytes());
        out.extend_from_slice(&(body.len() as i32).to_le_bytes());
        out.extend_from_slice(body);
        let mut pad = 12 + (16 - (out.len() + 12) % 16) % 16;
        // A little random extra padding hides exact lengths.
        let extra: [u8; 1] = entropy.array();
        pad += 16 * (extra[0] as usize % 4);
        entropy.fill(out.append(pad));
    })
}

/// Inflates `gzip_packed.packed_data`, refusing more than [`MAX_INFLATED`] bytes.
///
/// The data is a gzip stream (RFC 1952) as the protocol says, or a zlib stream (RFC 1950,
/// first bytes `78 xx`) as mtcute writes it; Telegram inflates both.
pub fn gunzip(packed: &[u8]) -> Option<Vec<u8>> {
    let limit = MAX_INFLATED as u64 + 1;
    let mut out = Vec::new();
    if is_zlib_header(packed) {
        flate2::read::ZlibDecoder::new(packed)
            .take(limit)
            .read_to_end(&mut out)
            .ok()?;
    } else {
        flate2::read::GzDecoder::new(packed)
            .take(limit)
            .read_to_end(&mut out)
            .ok()?;
    }
    (out.len() <= MAX_INFLATED).then_some(out)
}

/// A zlib stream header: deflate with a window of at most 32 KiB, header checksum valid.
fn is_zlib_header(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Compresses `body` as gzip (clients send large bodies this way; tests use it).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(body);
    e.finish().unwrap_or_default()
}

/// Whether a message body is a service message (ping, acknowledgements, salts, session and
/// state requests): these are answered by the session itself, never by the RPC layer.
pub(crate) fn is_service_message(body: &[u8]) -> bool {
    let id = body
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    matches!(
        id,
        Some(
            MSGS_ACK_ID
                | PING_ID
                | PING_DELAY_DISCONNECT_ID
                | GET_FUTURE_SALTS_ID
                | DESTROY_SESSION_ID
                | MSGS_STATE_REQ_ID
                | MSG_RESEND_REQ_ID
                | RPC_DROP_ANSWER_ID
                | HTTP_WAIT_ID
        )
    )
}

/// Whether a message body is content-related (needs an odd seqno and an ack): everything but
/// `msgs_ack` and containers.
pub(crate) fn is_content_related(body: &[u8]) -> bool {
    let id = body
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    !matches!(id, Some(MSGS_ACK_ID) | Some(tl::service::MSG_CONTAINER_ID))
}

/// Takes a packet off its transport, trimming the padding a padded-intermediate transport
/// may leave after it, and checks it is encrypted with `key`.
fn encrypted_packet(packet: impl Into<Vec<u8>>, key: &AuthKey) -> Result<Vec<u8>, SessionError> {
    let mut packet = packet.into();
    if packet.len() >= 24 {
        packet.truncate(24 + (packet.len() - 24) / 16 * 16);
    }
    if packet.len() < 8 || packet[..8] != key.id().to_le_bytes() {
        return Err(SessionError::WrongAuthKey);
    }
    Ok(packet)
}

#[cfg(test)]
mod tests;
