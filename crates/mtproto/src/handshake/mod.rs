//! Creating an auth key (`docs/clients.md §1.2`): `req_pq_multi` →
//! `resPQ` → `req_DH_params` → `server_DH_params_ok` → `set_client_DH_params` → `dh_gen_ok`,
//! for the server ([`ServerHandshake`]) and the client ([`ClientHandshake`]), plus the plain
//! (unencrypted) packets that carry it ([`plain`]).
//!
//! The server accepts both ways clients encrypt `p_q_inner_data`: RSA_PAD (GramJS, grammers) and
//! the legacy `SHA1(data) + data + padding` (Telethon), and keys 256 bytes long as the spec says
//! (clients that drop leading zero bytes retry on the same connection; a fresh `req_pq_multi`
//! always restarts).

mod client;
pub mod plain;
mod server;

pub use client::{ClientHandshake, ClientKey, RsaScheme};
pub use server::{CreatedKey, ServerHandshake};

use std::fmt;

use crate::crypto::{aes_ige, sha1};

/// Why a handshake step failed. The server closes the connection on any of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// Undecodable TL.
    Decode(tl::DecodeError),
    /// A message that is not the next step (constructor id).
    UnexpectedMessage(u32),
    /// `nonce` or `server_nonce` differs from the one of this handshake.
    NonceMismatch,
    /// `p`/`q` are not the factors sent.
    BadFactors,
    /// No key with the fingerprint(s) offered.
    UnknownFingerprint,
    /// The RSA block does not decrypt to valid inner data under either scheme.
    BadInnerData,
    /// The inner data names other values than this handshake's.
    InnerDataMismatch,
    /// An encrypted answer whose SHA-1 does not match.
    BadAnswerHash,
    /// A DH public value outside the safe range.
    UnsafeDhValue,
    /// The peer reported failure or the DH parameters are not the expected ones.
    Rejected(&'static str),
    /// pq could not be factored.
    Factorization,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "undecodable handshake message: {e}"),
            Self::UnexpectedMessage(id) => write!(f, "unexpected handshake message {id:08x}"),
            Self::NonceMismatch => f.write_str("nonce mismatch"),
            Self::BadFactors => f.write_str("p and q are not the factors of pq"),
            Self::UnknownFingerprint => f.write_str("unknown RSA key fingerprint"),
            Self::BadInnerData => f.write_str("encrypted_data is not valid p_q_inner_data"),
            Self::InnerDataMismatch => f.write_str("p_q_inner_data does not match the handshake"),
            Self::BadAnswerHash => f.write_str("encrypted answer hash mismatch"),
            Self::UnsafeDhValue => f.write_str("DH value outside the safe range"),
            Self::Rejected(why) => write!(f, "handshake rejected: {why}"),
            Self::Factorization => f.write_str("pq could not be factored"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<tl::DecodeError> for HandshakeError {
    fn from(e: tl::DecodeError) -> Self {
        HandshakeError::Decode(e)
    }
}

/// The temporary AES key and IV that protect `server_DH_inner_data` and `client_DH_inner_data`
/// (public for the handshake fuzzer, which forges messages under it).
pub fn tmp_aes(new_nonce: &[u8; 32], server_nonce: &[u8; 16]) -> ([u8; 32], [u8; 32]) {
    let a = sha1(&[new_nonce, server_nonce]);
    let b = sha1(&[server_nonce, new_nonce]);
    let c = sha1(&[new_nonce, new_nonce]);
    let mut key = [0u8; 32];
    key[..20].copy_from_slice(&a);
    key[20..].copy_from_slice(&b[..12]);
    let mut iv = [0u8; 32];
    iv[..8].copy_from_slice(&b[12..]);
    iv[8..28].copy_from_slice(&c);
    iv[28..].copy_from_slice(&new_nonce[..4]);
    (key, iv)
}

/// `SHA1(data) + data + padding to 16`, encrypted with the temporary key.
fn encrypt_with_hash(
    data: &[u8],
    key: &[u8; 32],
    iv: &[u8; 32],
    entropy: &mut impl crate::crypto::Entropy,
) -> Vec<u8> {
    let mut buf = sha1(&[data]).to_vec();
    buf.extend_from_slice(data);
    let pad = (16 - buf.len() % 16) % 16;
    let mut padding = vec![0u8; pad];
    entropy.fill(&mut padding);
    buf.extend_from_slice(&padding);
    aes_ige::encrypt(&mut buf, key, iv);
    buf
}

/// The inverse of [`encrypt_with_hash`]: decrypts, decodes a `T` after the hash and checks the
/// hash of exactly the bytes `T` used.
fn decrypt_with_hash<T: tl::Decode>(
    encrypted: &[u8],
    key: &[u8; 32],
    iv: &[u8; 32],
) -> Result<T, HandshakeError> {
    if encrypted.len() < 32 || !encrypted.len().is_multiple_of(16) {
        return Err(HandshakeError::BadAnswerHash);
    }
    let mut buf = encrypted.to_vec();
    aes_ige::decrypt(&mut buf, key, iv);
    let mut r = tl::Reader::new(&buf[20..]);
    let value = T::decode(&mut r)?;
    let used = r.position();
    if buf.len() - 20 - used >= 16 || sha1(&[&buf[20..20 + used]])[..] != buf[..20] {
        return Err(HandshakeError::BadAnswerHash);
    }
    Ok(value)
}

/// The first server salt of a new key: `new_nonce[0..8] XOR server_nonce[0..8]`.
fn first_salt(new_nonce: &[u8; 32], server_nonce: &[u8; 16]) -> i64 {
    let mut s = [0u8; 8];
    for (i, b) in s.iter_mut().enumerate() {
        *b = new_nonce[i] ^ server_nonce[i];
    }
    i64::from_le_bytes(s)
}

#[cfg(test)]
mod tests;
