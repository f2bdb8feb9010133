//! The server's side of auth-key creation.

use subtle::ConstantTimeEq;
use tl::functions::Request;
use tl::{Decode, Encode, Layer, enums, types};

use super::{HandshakeError, decrypt_with_hash, encrypt_with_hash, first_salt, tmp_aes};
use crate::crypto::rsa_key::ServerKey;
use crate::crypto::{AuthKey, Entropy, aes_ige, dh, pq, sha1, sha256};

/// A key the handshake produced.
#[derive(Clone, Debug)]
pub struct CreatedKey {
    /// The new key.
    pub auth_key: AuthKey,
    /// The first server salt the client will use.
    pub first_salt: i64,
    /// For a temporary key (`p_q_inner_data_temp*`), its lifetime in seconds.
    pub expires_in: Option<i32>,
    /// The DC the client asked for, if its inner data named one.
    pub dc: Option<i32>,
}

#[derive(Default)]
enum State {
    #[default]
    Idle,
    SentResPq {
        nonce: [u8; 16],
        server_nonce: [u8; 16],
        pq: u64,
        p: u32,
        q: u32,
    },
    SentDhParams {
        nonce: [u8; 16],
        server_nonce: [u8; 16],
        new_nonce: [u8; 32],
        a: Box<[u8; 256]>,
        expires_in: Option<i32>,
        dc: Option<i32>,
    },
}

/// The handshake on one connection. A fresh `req_pq`/`req_pq_multi` always restarts it, so a
/// client may create several keys on one connection.
#[derive(Default)]
pub struct ServerHandshake {
    state: State,
}

/// What a step returns: the plain body to send, and the key once created.
pub type Step = (Vec<u8>, Option<CreatedKey>);

fn be_u32(x: u32) -> Vec<u8> {
    let b = x.to_be_bytes();
    let start = b.iter().position(|&x| x != 0).unwrap_or(3);
    b[start..].to_vec()
}

impl ServerHandshake {
    /// A handshake waiting for `req_pq_multi`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the handshake is between steps (so unencrypted messages are expected).
    pub fn in_progress(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// Handles one plain message body with the server's RSA `keys` (every one is offered in
    /// `resPQ`; `req_DH_params` names the one it used, `UnknownFingerprint` if none has that
    /// fingerprint). The RSA decryption and the two modular exponentiations happen here
    /// (about 10 ms of CPU): call it off any async reactor.
    pub fn handle(
        &mut self,
        body: &[u8],
        keys: &[ServerKey],
        now: i32,
        entropy: &mut impl Entropy,
    ) -> Result<Step, HandshakeError> {
        let request = Request::from_bytes(body)?;
        match request {
            Request::ReqPqMulti(tl::functions::ReqPqMulti { nonce })
            | Request::ReqPq(tl::functions::ReqPq { nonce }) => {
                Ok((self.res_pq(nonce, keys, entropy), None))
            }
            Request::ReqDHParams(req) => self.dh_params(req, keys, now, entropy).map(|b| (b, None)),
            Request::SetClientDHParams(req) => self.set_client_dh(req).map(|(b, k)| (b, Some(k))),
            other => Err(HandshakeError::UnexpectedMessage(constructor_of(&other))),
        }
    }

    fn res_pq(
        &mut self,
        nonce: [u8; 16],
        keys: &[ServerKey],
        entropy: &mut impl Entropy,
    ) -> Vec<u8> {
        let server_nonce: [u8; 16] = entropy.array();
        let (pq, p, q) = pq::generate(entropy);
        self.state = State::SentResPq {
            nonce,
            server_nonce,
            pq,
            p,
            q,
        };
        enums::ResPQ::from(types::ResPQ {
            nonce,
            server_nonce,
            pq: pq.to_be_bytes().to_vec(),
            server_public_key_fingerprints: keys.iter().map(ServerKey::fingerprint).collect(),
        })
        .to_bytes(Layer::LATEST)
    }

    fn dh_params(
        &mut self,
        req: tl::functions::ReqDHParams,
        keys: &[ServerKey],
        now: i32,
        entropy: &mut impl Entropy,
    ) -> Result<Vec<u8>, HandshakeError> {
        let State::SentResPq {
            nonce,
            server_nonce,
            pq,
            p,
            q,
        } = std::mem::take(&mut self.state)
        else {
            return Err(HandshakeError::UnexpectedMessage(
                tl::functions::ReqDHParams::constructor_id_at(Layer::LATEST),
            ));
        };
        if !bool::from(req.nonce.ct_eq(&nonce))
            || !bool::from(req.server_nonce.ct_eq(&server_nonce))
        {
            return Err(HandshakeError::NonceMismatch);
        }
        if req.p != be_u32(p) || req.q != be_u32(q) {
            return Err(HandshakeError::BadFactors);
        }
        let key = keys
            .iter()
            .find(|k| k.fingerprint() == req.public_key_fingerprint)
            .ok_or(HandshakeError::UnknownFingerprint)?;
        let inner = decrypt_inner_data(key, &req.encrypted_data)?;
        let (i_pq, i_p, i_q, i_nonce, i_server_nonce, new_nonce, dc, expires_in) = match inner {
            enums::PQInnerData::PQInnerData(d) => (
                d.pq,
                d.p,
                d.q,
                d.nonce,
                d.server_nonce,
                d.new_nonce,
                None,
                None,
            ),
            enums::PQInnerData::PQInnerDataDc(d) => (
                d.pq,
                d.p,
                d.q,
                d.nonce,
                d.server_nonce,
                d.new_nonce,
                Some(d.dc),
                None,
            ),
            enums::PQInnerData::PQInnerDataTemp(d) => (
                d.pq,
                d.p,
                d.q,
                d.nonce,
                d.server_nonce,
                d.new_nonce,
                None,
                Some(d.expires_in),
            ),
            enums::PQInnerData::PQInnerDataTempDc(d) => (
                d.pq,
                d.p,
                d.q,
                d.nonce,
                d.server_nonce,
                d.new_nonce,
                Some(d.dc),
                Some(d.expires_in),
            ),
        };
        if i_pq != pq.to_be_bytes()
            || i_p != be_u32(p)
            || i_q != be_u32(q)
            || i_nonce != nonce
            || i_server_nonce != server_nonce
        {
            return Err(HandshakeError::InnerDataMismatch);
        }
        if expires_in.is_some_and(|e| e <= 0) {
            return Err(HandshakeError::InnerDataMismatch);
        }
        let (a, g_a) = dh::keypair(entropy);
        let answer = enums::ServerDHInnerData::from(types::ServerDHInnerData {
            nonce,
            server_nonce,
            g: dh::G,
            dh_prime: dh::DH_PRIME.to_vec(),
            g_a: g_a.to_vec(),
            server_time: now,
        })
        .to_bytes(Layer::LATEST);
        let (tmp_key, tmp_iv) = tmp_aes(&new_nonce, &server_nonce);
        let encrypted_answer = encrypt_with_hash(&answer, &tmp_key, &tmp_iv, entropy);
        self.state = State::SentDhParams {
            nonce,
            server_nonce,
            new_nonce,
            a: Box::new(a),
            expires_in,
            dc,
        };
        Ok(enums::ServerDHParams::from(types::ServerDHParamsOk {
            nonce,
            server_nonce,
            encrypted_answer,
        })
        .to_bytes(Layer::LATEST))
    }

    fn set_client_dh(
        &mut self,
        req: tl::functions::SetClientDHParams,
    ) -> Result<(Vec<u8>, CreatedKey), HandshakeError> {
        let State::SentDhParams {
            nonce,
            server_nonce,
            new_nonce,
            a,
            expires_in,
            dc,
        } = std::mem::take(&mut self.state)
        else {
            return Err(HandshakeError::UnexpectedMessage(
                tl::functions::SetClientDHParams::constructor_id_at(Layer::LATEST),
            ));
        };
        if req.nonce != nonce || req.server_nonce != server_nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        let (tmp_key, tmp_iv) = tmp_aes(&new_nonce, &server_nonce);
        let enums::ClientDHInnerData::ClientDHInnerData(inner) =
            decrypt_with_hash(&req.encrypted_data, &tmp_key, &tmp_iv)?;
        if inner.nonce != nonce || inner.server_nonce != server_nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        if !dh::is_safe_public_value(&inner.g_b) {
            return Err(HandshakeError::UnsafeDhValue);
        }
        let auth_key = AuthKey::from_bytes(dh::mod_pow(&inner.g_b, &a));
        let answer = enums::SetClientDHParamsAnswer::from(types::DhGenOk {
            nonce,
            server_nonce,
            new_nonce_hash1: auth_key.new_nonce_hash(&new_nonce, 1),
        })
        .to_bytes(Layer::LATEST);
        let created = CreatedKey {
            first_salt: first_salt(&new_nonce, &server_nonce),
            auth_key,
            expires_in,
            dc,
        };
        Ok((answer, created))
    }
}

fn constructor_of(r: &Request) -> u32 {
    let name = r.name();
    tl::CONSTRUCTORS
        .iter()
        .find(|c| c.name == name)
        .map_or(0, |c| c.id)
}

/// Decrypts `encrypted_data` of `req_DH_params`: RSA_PAD first, then the legacy scheme.
fn decrypt_inner_data(
    key: &ServerKey,
    encrypted: &[u8],
) -> Result<enums::PQInnerData, HandshakeError> {
    let m = key
        .decrypt_raw(encrypted)
        .ok_or(HandshakeError::BadInnerData)?;
    if let Some(inner) = rsa_pad_inner(&m) {
        return Ok(inner);
    }
    legacy_inner(&m).ok_or(HandshakeError::BadInnerData)
}

/// RSA_PAD: `temp_key_xor(32) | aes_encrypted(224)`.
fn rsa_pad_inner(m: &[u8; 256]) -> Option<enums::PQInnerData> {
    let mut temp_key = [0u8; 32];
    let h = sha256(&[&m[32..]]);
    for i in 0..32 {
        temp_key[i] = m[i] ^ h[i];
    }
    let mut dwh = m[32..].to_vec();
    aes_ige::decrypt(&mut dwh, &temp_key, &[0u8; 32]);
    let mut data_with_padding = dwh[..192].to_vec();
    data_with_padding.reverse();
    let expected = sha256(&[&temp_key, &data_with_padding]);
    if !bool::from(expected.ct_eq(&dwh[192..224])) {
        return None;
    }
    enums::PQInnerData::decode(&mut tl::Reader::new(&data_with_padding)).ok()
}

/// Legacy: `00 | SHA1(data) | data | random`.
fn legacy_inner(m: &[u8; 256]) -> Option<enums::PQInnerData> {
    let mut r = tl::Reader::new(&m[21..]);
    let inner = enums::PQInnerData::decode(&mut r).ok()?;
    let used = r.position();
    let hash = sha1(&[&m[21..21 + used]]);
    bool::from(hash.ct_eq(&m[1..21])).then_some(inner)
}
