//! The client's side of auth-key creation (mtcall's own client, and the server's tests).

use tl::{Decode, Encode, Layer, enums, functions, types};

use super::{HandshakeError, decrypt_with_hash, encrypt_with_hash, first_salt, tmp_aes};
use crate::crypto::rsa_key::PublicKey;
use crate::crypto::{AuthKey, Entropy, aes_ige, dh, pq, sha1, sha256};

/// How the client encrypts `p_q_inner_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaScheme {
    /// RSA_PAD (current clients).
    Pad,
    /// `SHA1(data) + data + padding` (Telethon).
    Legacy,
}

/// A key the client created.
#[derive(Clone, Debug)]
pub struct ClientKey {
    /// The key.
    pub auth_key: AuthKey,
    /// The first server salt.
    pub first_salt: i64,
    /// `server_time - now` at creation, to correct the client's message ids.
    pub time_offset: i32,
}

/// What the client waits for next.
enum Awaiting {
    ResPq,
    DhParams {
        server_nonce: [u8; 16],
        new_nonce: [u8; 32],
    },
    Answer {
        server_nonce: [u8; 16],
        new_nonce: [u8; 32],
        auth_key: Box<AuthKey>,
        time_offset: i32,
    },
}

/// One auth-key creation, step by step.
pub struct ClientHandshake {
    nonce: [u8; 16],
    state: Awaiting,
    scheme: RsaScheme,
    temp_expires_in: Option<i32>,
    dc: i32,
}

fn be_trimmed(x: u64) -> Vec<u8> {
    let b = x.to_be_bytes();
    let start = b.iter().position(|&x| x != 0).unwrap_or(7);
    b[start..].to_vec()
}

impl ClientHandshake {
    /// Starts a handshake; returns it and the `req_pq_multi` body to send. `temp_expires_in`
    /// asks for a temporary key.
    pub fn start(
        scheme: RsaScheme,
        dc: i32,
        temp_expires_in: Option<i32>,
        entropy: &mut impl Entropy,
    ) -> (Self, Vec<u8>) {
        let nonce: [u8; 16] = entropy.array();
        let body = functions::ReqPqMulti { nonce }.to_bytes(Layer::LATEST);
        (
            ClientHandshake {
                nonce,
                state: Awaiting::ResPq,
                scheme,
                temp_expires_in,
                dc,
            },
            body,
        )
    }

    /// Handles `resPQ`; returns the `req_DH_params` body.
    pub fn on_res_pq(
        &mut self,
        body: &[u8],
        keys: &[PublicKey],
        entropy: &mut impl Entropy,
    ) -> Result<Vec<u8>, HandshakeError> {
        let enums::ResPQ::ResPQ(res) = enums::ResPQ::from_bytes(body)?;
        if res.nonce != self.nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        let key = keys
            .iter()
            .find(|k| {
                res.server_public_key_fingerprints
                    .contains(&k.fingerprint())
            })
            .ok_or(HandshakeError::UnknownFingerprint)?;
        if res.pq.len() > 8 {
            return Err(HandshakeError::Factorization);
        }
        let mut pq_bytes = [0u8; 8];
        pq_bytes[8 - res.pq.len()..].copy_from_slice(&res.pq);
        let pq_value = u64::from_be_bytes(pq_bytes);
        let (p, q) = pq::factorize(pq_value).ok_or(HandshakeError::Factorization)?;
        let new_nonce: [u8; 32] = entropy.array();
        let (p, q) = (be_trimmed(p), be_trimmed(q));
        let inner = match self.temp_expires_in {
            Some(expires_in) => enums::PQInnerData::from(types::PQInnerDataTempDc {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce: self.nonce,
                server_nonce: res.server_nonce,
                new_nonce,
                dc: self.dc,
                expires_in,
            }),
            None => enums::PQInnerData::from(types::PQInnerData {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce: self.nonce,
                server_nonce: res.server_nonce,
                new_nonce,
            }),
        }
        .to_bytes(Layer::LATEST);
        let encrypted_data = match self.scheme {
            RsaScheme::Pad => rsa_pad(&inner, key, entropy)?,
            RsaScheme::Legacy => rsa_legacy(&inner, key, entropy)?,
        };
        self.state = Awaiting::DhParams {
            server_nonce: res.server_nonce,
            new_nonce,
        };
        Ok(functions::ReqDHParams {
            nonce: self.nonce,
            server_nonce: res.server_nonce,
            p,
            q,
            public_key_fingerprint: key.fingerprint(),
            encrypted_data,
        }
        .to_bytes(Layer::LATEST))
    }

    /// Handles `server_DH_params_ok`; returns the `set_client_DH_params` body.
    pub fn on_dh_params(
        &mut self,
        body: &[u8],
        now: i32,
        entropy: &mut impl Entropy,
    ) -> Result<Vec<u8>, HandshakeError> {
        let Awaiting::DhParams {
            server_nonce,
            new_nonce,
        } = self.state
        else {
            return Err(HandshakeError::Rejected("server_DH_params out of order"));
        };
        let ok = match enums::ServerDHParams::from_bytes(body)? {
            enums::ServerDHParams::ServerDHParamsOk(ok) => ok,
            enums::ServerDHParams::ServerDHParamsFail(_) => {
                return Err(HandshakeError::Rejected("server_DH_params_fail"));
            }
        };
        if ok.nonce != self.nonce || ok.server_nonce != server_nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        let (tmp_key, tmp_iv) = tmp_aes(&new_nonce, &server_nonce);
        let enums::ServerDHInnerData::ServerDHInnerData(inner) =
            decrypt_with_hash(&ok.encrypted_answer, &tmp_key, &tmp_iv)?;
        if inner.nonce != self.nonce || inner.server_nonce != server_nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        if inner.g != dh::G || inner.dh_prime != dh::DH_PRIME {
            return Err(HandshakeError::Rejected("unexpected DH parameters"));
        }
        if !dh::is_safe_public_value(&inner.g_a) {
            return Err(HandshakeError::UnsafeDhValue);
        }
        let (b, g_b) = dh::keypair(entropy);
        let auth_key = AuthKey::from_bytes(dh::mod_pow(&inner.g_a, &b));
        let data = enums::ClientDHInnerData::from(types::ClientDHInnerData {
            nonce: self.nonce,
            server_nonce,
            retry_id: 0,
            g_b: g_b.to_vec(),
        })
        .to_bytes(Layer::LATEST);
        let encrypted_data = encrypt_with_hash(&data, &tmp_key, &tmp_iv, entropy);
        self.state = Awaiting::Answer {
            server_nonce,
            new_nonce,
            auth_key: Box::new(auth_key),
            time_offset: inner.server_time - now,
        };
        Ok(functions::SetClientDHParams {
            nonce: self.nonce,
            server_nonce,
            encrypted_data,
        }
        .to_bytes(Layer::LATEST))
    }

    /// Handles the answer to `set_client_DH_params`; returns the key.
    pub fn on_dh_answer(&mut self, body: &[u8]) -> Result<ClientKey, HandshakeError> {
        let Awaiting::Answer {
            server_nonce,
            new_nonce,
            auth_key,
            time_offset,
        } = &self.state
        else {
            return Err(HandshakeError::Rejected("DH answer out of order"));
        };
        match enums::SetClientDHParamsAnswer::from_bytes(body)? {
            enums::SetClientDHParamsAnswer::DhGenOk(ok) => {
                if ok.nonce != self.nonce || ok.server_nonce != *server_nonce {
                    return Err(HandshakeError::NonceMismatch);
                }
                if ok.new_nonce_hash1 != auth_key.new_nonce_hash(new_nonce, 1) {
                    return Err(HandshakeError::Rejected("new_nonce_hash1 mismatch"));
                }
                Ok(ClientKey {
                    auth_key: (**auth_key).clone(),
                    first_salt: first_salt(new_nonce, server_nonce),
                    time_offset: *time_offset,
                })
            }
            enums::SetClientDHParamsAnswer::DhGenRetry(_) => {
                Err(HandshakeError::Rejected("dh_gen_retry"))
            }
            enums::SetClientDHParamsAnswer::DhGenFail(_) => {
                Err(HandshakeError::Rejected("dh_gen_fail"))
            }
        }
    }
}

fn rsa_pad(
    data: &[u8],
    key: &PublicKey,
    entropy: &mut impl Entropy,
) -> Result<Vec<u8>, HandshakeError> {
    if data.len() > 144 {
        return Err(HandshakeError::Rejected("inner data too long for RSA_PAD"));
    }
    let mut data_with_padding = data.to_vec();
    let mut pad = vec![0u8; 192 - data.len()];
    entropy.fill(&mut pad);
    data_with_padding.extend_from_slice(&pad);
    let mut reversed = data_with_padding.clone();
    reversed.reverse();
    loop {
        let temp_key: [u8; 32] = entropy.array();
        let mut data_with_hash = reversed.clone();
        data_with_hash.extend_from_slice(&sha256(&[&temp_key, &data_with_padding]));
        aes_ige::encrypt(&mut data_with_hash, &temp_key, &[0u8; 32]);
        let h = sha256(&[&data_with_hash]);
        let mut block = [0u8; 256];
        for i in 0..32 {
            block[i] = temp_key[i] ^ h[i];
        }
        block[32..].copy_from_slice(&data_with_hash);
        if let Some(c) = key.encrypt_raw(&block) {
            return Ok(c.to_vec());
        }
    }
}

fn rsa_legacy(
    data: &[u8],
    key: &PublicKey,
    entropy: &mut impl Entropy,
) -> Result<Vec<u8>, HandshakeError> {
    if data.len() > 255 - 20 {
        return Err(HandshakeError::Rejected("inner data too long"));
    }
    let mut block = [0u8; 256];
    block[1..21].copy_from_slice(&sha1(&[data]));
    block[21..21 + data.len()].copy_from_slice(data);
    entropy.fill(&mut block[21 + data.len()..]);
    key.encrypt_raw(&block)
        .map(|c| c.to_vec())
        .ok_or(HandshakeError::Rejected("RSA block too large"))
}
