//! A `ServerHandshake` driven by a sequence of plain messages: raw bodies, `req_pq(_multi)`,
//! `req_DH_params` and `set_client_DH_params` forged from the input around the server's real
//! nonces (so the RSA, inner-data, temporary-AES and DH checks are all reached), and steps of an
//! honest `ClientHandshake` (optionally with one byte flipped). Never panics; errors are typed;
//! every answer decodes as its TL type; a key the server creates is the one the other side
//! computes (for the forged flow with an honest `g_b`, and for the honest client).
//!
//! Input: up to 12 operations, each an opcode byte (`% 6`) and its own bytes:
//! - 0 raw body: `blob` (length byte + bytes).
//! - 1 req_pq: flags (bit 0 `req_pq` instead of `req_pq_multi`, bit 1 a fresh 16-byte nonce
//!   from the input follows).
//! - 2 req_DH_params: mutation flags `m` (bit 0 nonce, 1 server_nonce, 2 p/q swapped, 3
//!   fingerprint, each replaced by input bytes), then `e`: bits 0-1 how `encrypted_data` is made
//!   (0 raw `blob`, 1 legacy `SHA1 + data` RSA of built inner data, 2 legacy RSA of a raw TL
//!   `blob`, 3 RSA_PAD of built inner data), bits 2-3 the inner-data constructor
//!   (p_q_inner_data, _dc, _temp, _temp_dc); then corruption flags `c` (bit 0 pq, 1 p, 2 nonce,
//!   3 server_nonce, 4 the hash), new_nonce (32), dc (i32), expires_in (i32).
//! - 3 set_client_DH_params: flags `m` (bit 0 nonce, 1 server_nonce, 2 inner nonce, 3 inner
//!   server_nonce, 4 retry_id from input, 5 bad hash, 6 16 extra padding bytes, 7 raw `blob`
//!   instead of encrypting), then `g`: `g_b` = 0 honest `g^b` (one of 4 fixed pairs, by the
//!   next byte), 1 `1`, 2
//!   `p - 1`, 3 `p`, 4 raw `blob`, 5 the lowest safe value `2^1984`.
//! - 4 honest client: one step of a `ClientHandshake` on the server's last answer to it; flags
//!   bit 0 flips the byte at the next u16 (mod length) with the next byte | 1, bit 1 RSA_PAD
//!   (else legacy) and bit 2 a temporary key, when starting.
//! - 5 a known constructor id (`% 8` of a table) followed by a raw `blob`.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use common::{Input, Rng};
use libfuzzer_sys::fuzz_target;
use mtproto::crypto::rsa_key::ServerKey;
use mtproto::crypto::{AuthKey, Entropy, aes_ige, dh, pq, sha1, sha256};
use mtproto::handshake::{ClientHandshake, CreatedKey, HandshakeError, RsaScheme, ServerHandshake};
use tl::{Decode, Encode, Layer, enums, functions, types};

const NOW: i32 = 1_764_000_000;

/// One RSA key for every run: parsed once, fixed so that every input replays exactly. It is a
/// throwaway key made for fuzzing (`openssl genrsa -traditional 2048`), used nowhere else.
fn server_key() -> &'static ServerKey {
    static KEY: OnceLock<ServerKey> = OnceLock::new();
    KEY.get_or_init(|| {
        ServerKey::from_pkcs1_pem(include_str!("handshake_server_key.pem"))
            .expect("the fuzzing RSA key parses")
    })
}

/// The forged client's DH pairs `(b, g^b)`: four fixed ones, made once (each new pair costs a
/// modular exponentiation, tens of milliseconds under the sanitizer).
fn client_dh(i: u8) -> &'static ([u8; 256], [u8; 256]) {
    static PAIRS: OnceLock<Vec<([u8; 256], [u8; 256])>> = OnceLock::new();
    let pairs = PAIRS.get_or_init(|| (0..4).map(|i| dh::keypair(&mut Rng::new(i))).collect());
    &pairs[(i % 4) as usize]
}

/// `g_a^b mod p`, remembered: the server's `g_a` repeats whenever an input's random seed and
/// steps do, which is most of the time.
fn shared_secret(g_a: &[u8], b: &[u8; 256]) -> [u8; 256] {
    /// `(g_a, the first bytes of b)` to the secret.
    type Memo = HashMap<(Vec<u8>, [u8; 8]), [u8; 256]>;
    thread_local! {
        static MEMO: std::cell::RefCell<Memo> =
            std::cell::RefCell::new(HashMap::new());
    }
    let key = (g_a.to_vec(), b[..8].try_into().expect("8"));
    MEMO.with_borrow_mut(|memo| {
        if memo.len() > 4096 {
            memo.clear();
        }
        *memo.entry(key).or_insert_with(|| dh::mod_pow(g_a, b))
    })
}

fn be_trimmed(x: u64) -> Vec<u8> {
    let b = x.to_be_bytes();
    let start = b.iter().position(|&x| x != 0).unwrap_or(7);
    b[start..].to_vec()
}

use mtproto::handshake::tmp_aes;

fn first_salt(new_nonce: &[u8; 32], server_nonce: &[u8; 16]) -> i64 {
    let mut s = [0u8; 8];
    for (i, b) in s.iter_mut().enumerate() {
        *b = new_nonce[i] ^ server_nonce[i];
    }
    i64::from_le_bytes(s)
}

/// The server's resPQ as the forged messages use it.
#[derive(Clone)]
struct Pq {
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    pq: Vec<u8>,
    p: Vec<u8>,
    q: Vec<u8>,
}

/// What the server accepted in a forged `req_DH_params`, and what it answered.
#[derive(Clone)]
struct Flow {
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    new_nonce: [u8; 32],
    g_a: Vec<u8>,
    dc: Option<i32>,
    expires_in: Option<i32>,
}

/// Who the server's current DH step belongs to.
enum Dh {
    None,
    Forged(Flow),
    Honest,
}

enum Honest {
    Idle,
    /// Sent req_pq; `answer` is the server's resPQ.
    ResPq(ClientHandshake, Vec<u8>),
    /// Sent req_DH_params.
    DhParams(ClientHandshake, Vec<u8>),
}

struct State {
    server: ServerHandshake,
    rng: Rng,
    nonce: [u8; 16],
    res_pq: Option<Pq>,
    dh: Dh,
    honest: Honest,
}

impl State {
    fn handle(&mut self, body: &[u8]) -> Result<(Vec<u8>, Option<CreatedKey>), HandshakeError> {
        let r = self
            .server
            .handle(body, std::slice::from_ref(server_key()), NOW, &mut self.rng);
        match &r {
            Err(e) => {
                let _ = e.to_string();
            }
            Ok((_, Some(_))) => assert!(!self.server.in_progress(), "key created mid-handshake"),
            Ok((_, None)) => assert!(self.server.in_progress(), "a step left the handshake idle"),
        }
        r
    }

    /// A body from the input as it is. One that decodes as a handshake step moves the server
    /// (a req_pq restarts it, the others end the step in progress): the flows follow.
    fn raw(&mut self, body: &[u8]) {
        let result = self.handle(body);
        match functions::Request::from_bytes(body) {
            Ok(functions::Request::ReqPqMulti(functions::ReqPqMulti { nonce }))
            | Ok(functions::Request::ReqPq(functions::ReqPq { nonce })) => {
                let (answer, _) = result.expect("req_pq is always answered");
                self.on_res_pq(nonce, &answer);
            }
            Ok(functions::Request::ReqDHParams(_) | functions::Request::SetClientDHParams(_)) => {
                self.dh = Dh::None;
            }
            _ => {}
        }
    }

    /// Checks a resPQ answer and remembers it.
    fn on_res_pq(&mut self, nonce: [u8; 16], answer: &[u8]) {
        let enums::ResPQ::ResPQ(res) = enums::ResPQ::from_bytes(answer).expect("resPQ decodes");
        assert_eq!(res.nonce, nonce, "resPQ for another nonce");
        assert_eq!(
            res.server_public_key_fingerprints,
            vec![server_key().fingerprint()]
        );
        assert!(res.pq.len() <= 8, "pq of {} bytes", res.pq.len());
        let mut b = [0u8; 8];
        b[8 - res.pq.len()..].copy_from_slice(&res.pq);
        let (p, q) = pq::factorize(u64::from_be_bytes(b)).expect("the server's pq factors");
        assert!(pq::is_prime(p) && pq::is_prime(q) && p < q && p >> 32 == 0 && q >> 32 == 0);
        self.res_pq = Some(Pq {
            nonce,
            server_nonce: res.server_nonce,
            pq: res.pq,
            p: be_trimmed(p),
            q: be_trimmed(q),
        });
        self.dh = Dh::None;
    }

    fn req_pq(&mut self, input: &mut Input<'_>) {
        let flags = input.u8();
        if flags & 2 != 0 {
            self.nonce = input.array();
        }
        let nonce = self.nonce;
        let body = if flags & 1 != 0 {
            functions::ReqPq { nonce }.to_bytes(Layer::LATEST)
        } else {
            functions::ReqPqMulti { nonce }.to_bytes(Layer::LATEST)
        };
        let (answer, key) = self.handle(&body).expect("req_pq is always answered");
        assert!(key.is_none());
        self.on_res_pq(nonce, &answer);
    }

    fn req_dh(&mut self, input: &mut Input<'_>) {
        let key = server_key();
        let base = self.res_pq.clone().unwrap_or(Pq {
            nonce: self.nonce,
            server_nonce: [0; 16],
            pq: vec![0x17, 0xed, 0x48, 0x94, 0x1a, 0x08, 0xf9, 0x81],
            p: vec![0x49, 0x4c, 0x55, 0x3b],
            q: vec![0x53, 0x91, 0x10, 0x73],
        });
        let m = input.u8();
        let e = input.u8();
        let c = input.u8();
        let mut nonce = base.nonce;
        let mut server_nonce = base.server_nonce;
        let (mut p, mut q) = (base.p.clone(), base.q.clone());
        let mut fingerprint = key.fingerprint();
        if m & 1 != 0 {
            nonce = input.array();
        }
        if m & 2 != 0 {
            server_nonce = input.array();
        }
        if m & 4 != 0 {
            std::mem::swap(&mut p, &mut q);
        }
        if m & 8 != 0 {
            fingerprint = input.i64();
        }
        let new_nonce: [u8; 32] = input.array();
        let dc = input.i32() % 1000;
        let expires_in = input.i32();
        // The inner data, with the fields named by `c` wrong.
        let mut inner_pq = base.pq.clone();
        let (mut inner_p, mut inner_q) = (base.p.clone(), base.q.clone());
        let (mut inner_nonce, mut inner_server_nonce) = (base.nonce, base.server_nonce);
        if c & 1 != 0 {
            inner_pq.push(1);
        }
        if c & 2 != 0 {
            std::mem::swap(&mut inner_p, &mut inner_q);
        }
        if c & 4 != 0 {
            inner_nonce[0] ^= 1;
        }
        if c & 8 != 0 {
            inner_server_nonce[15] ^= 0x80;
        }
        let (inner_dc, inner_expires) = match (e >> 2) & 3 {
            0 => (None, None),
            1 => (Some(dc), None),
            2 => (None, Some(expires_in)),
            _ => (Some(dc), Some(expires_in)),
        };
        let inner = match (inner_dc, inner_expires) {
            (None, None) => enums::PQInnerData::from(types::PQInnerData {
                pq: inner_pq,
                p: inner_p,
                q: inner_q,
                nonce: inner_nonce,
                server_nonce: inner_server_nonce,
                new_nonce,
            }),
            (Some(dc), None) => enums::PQInnerData::from(types::PQInnerDataDc {
                pq: inner_pq,
                p: inner_p,
                q: inner_q,
                nonce: inner_nonce,
                server_nonce: inner_server_nonce,
                new_nonce,
                dc,
            }),
            (None, Some(expires_in)) => enums::PQInnerData::from(types::PQInnerDataTemp {
                pq: inner_pq,
                p: inner_p,
                q: inner_q,
                nonce: inner_nonce,
                server_nonce: inner_server_nonce,
                new_nonce,
                expires_in,
            }),
            (Some(dc), Some(expires_in)) => enums::PQInnerData::from(types::PQInnerDataTempDc {
                pq: inner_pq,
                p: inner_p,
                q: inner_q,
                nonce: inner_nonce,
                server_nonce: inner_server_nonce,
                new_nonce,
                dc,
                expires_in,
            }),
        };
        let bad_hash = c & 16 != 0;
        // What the server will have decrypted, if it accepts: the inner data and its new_nonce.
        let mut sent_inner: Option<enums::PQInnerData> = Some(inner.clone());
        let encrypted_data = match e & 3 {
            0 => {
                sent_inner = None;
                input.blob().to_vec()
            }
            1 => legacy(&inner.to_bytes(Layer::LATEST), bad_hash, &mut self.rng),
            2 => {
                let raw = input.blob();
                let raw = &raw[..raw.len().min(235)];
                sent_inner = enums::PQInnerData::decode(&mut tl::Reader::new(raw)).ok();
                legacy(raw, bad_hash, &mut self.rng)
            }
            _ => rsa_pad(&inner.to_bytes(Layer::LATEST), bad_hash, &mut self.rng),
        };
        let body = functions::ReqDHParams {
            nonce,
            server_nonce,
            p,
            q,
            public_key_fingerprint: fingerprint,
            encrypted_data,
        }
        .to_bytes(Layer::LATEST);
        let Ok((answer, created)) = self.handle(&body) else {
            self.dh = Dh::None;
            return;
        };
        assert!(created.is_none());
        let pq = self
            .res_pq
            .clone()
            .expect("req_DH_params accepted without a resPQ");
        let inner = sent_inner.expect("the server accepted inner data nobody encrypted");
        let (new_nonce, dc, expires_in) = match inner {
            enums::PQInnerData::PQInnerData(d) => (d.new_nonce, None, None),
            enums::PQInnerData::PQInnerDataDc(d) => (d.new_nonce, Some(d.dc), None),
            enums::PQInnerData::PQInnerDataTemp(d) => (d.new_nonce, None, Some(d.expires_in)),
            enums::PQInnerData::PQInnerDataTempDc(d) => {
                (d.new_nonce, Some(d.dc), Some(d.expires_in))
            }
        };
        assert!(
            expires_in.is_none_or(|e| e > 0),
            "a temporary key of {expires_in:?} s"
        );
        let ok = match enums::ServerDHParams::from_bytes(&answer).expect("server_DH_params") {
            enums::ServerDHParams::ServerDHParamsOk(ok) => ok,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!((ok.nonce, ok.server_nonce), (pq.nonce, pq.server_nonce));
        let (tmp_key, tmp_iv) = tmp_aes(&new_nonce, &pq.server_nonce);
        let mut plain = ok.encrypted_answer.clone();
        assert_eq!(plain.len() % 16, 0);
        aes_ige::decrypt(&mut plain, &tmp_key, &tmp_iv);
        let mut r = tl::Reader::new(&plain[20..]);
        let enums::ServerDHInnerData::ServerDHInnerData(dh_inner) =
            enums::ServerDHInnerData::decode(&mut r).expect("server_DH_inner_data");
        let used = r.position();
        assert_eq!(sha1(&[&plain[20..20 + used]]), plain[..20], "answer hash");
        assert!(plain.len() - 20 - used < 16, "more than a block of padding");
        assert_eq!(
            (dh_inner.nonce, dh_inner.server_nonce),
            (pq.nonce, pq.server_nonce)
        );
        assert_eq!(dh_inner.g, dh::G);
        assert_eq!(dh_inner.dh_prime, dh::DH_PRIME);
        assert_eq!(dh_inner.server_time, NOW);
        assert!(dh::is_safe_public_value(&dh_inner.g_a), "unsafe g_a");
        self.dh = Dh::Forged(Flow {
            nonce: pq.nonce,
            server_nonce: pq.server_nonce,
            new_nonce,
            g_a: dh_inner.g_a,
            dc,
            expires_in,
        });
    }

    fn set_dh(&mut self, input: &mut Input<'_>) {
        let m = input.u8();
        let g = input.u8() % 6;
        let flow = match &self.dh {
            Dh::Forged(f) => f.clone(),
            _ => Flow {
                nonce: self.nonce,
                server_nonce: self.res_pq.as_ref().map_or([0; 16], |p| p.server_nonce),
                new_nonce: [0; 32],
                g_a: vec![2],
                dc: None,
                expires_in: None,
            },
        };
        let forged_flow = matches!(self.dh, Dh::Forged(_));
        let (mut nonce, mut server_nonce) = (flow.nonce, flow.server_nonce);
        let (mut inner_nonce, mut inner_server_nonce) = (flow.nonce, flow.server_nonce);
        if m & 1 != 0 {
            nonce[3] ^= 4;
        }
        if m & 2 != 0 {
            server_nonce[7] ^= 2;
        }
        if m & 4 != 0 {
            inner_nonce[11] ^= 8;
        }
        if m & 8 != 0 {
            inner_server_nonce[0] ^= 1;
        }
        let retry_id = if m & 16 != 0 { input.i64() } else { 0 };
        let mut b = None;
        let g_b = match g {
            0 => {
                let (secret, g_b) = client_dh(input.u8());
                b = Some(secret);
                g_b.to_vec()
            }
            1 => vec![1],
            2 => {
                let mut v = dh::DH_PRIME;
                v[255] -= 1;
                v.to_vec()
            }
            3 => dh::DH_PRIME.to_vec(),
            4 => input.blob().to_vec(),
            _ => {
                let mut v = [0u8; 256];
                v[7] = 1;
                v.to_vec()
            }
        };
        let data = enums::ClientDHInnerData::from(types::ClientDHInnerData {
            nonce: inner_nonce,
            server_nonce: inner_server_nonce,
            retry_id,
            g_b: g_b.clone(),
        })
        .to_bytes(Layer::LATEST);
        let encrypted_data = if m & 128 != 0 {
            input.blob().to_vec()
        } else {
            let (key, iv) = tmp_aes(&flow.new_nonce, &flow.server_nonce);
            let mut buf = sha1(&[&data]).to_vec();
            if m & 32 != 0 {
                buf[0] ^= 1;
            }
            buf.extend_from_slice(&data);
            let mut pad = (16 - buf.len() % 16) % 16;
            if m & 64 != 0 {
                pad += 16;
            }
            let start = buf.len();
            buf.resize(start + pad, 0);
            self.rng.fill(&mut buf[start..]);
            aes_ige::encrypt(&mut buf, &key, &iv);
            buf
        };
        let body = functions::SetClientDHParams {
            nonce,
            server_nonce,
            encrypted_data,
        }
        .to_bytes(Layer::LATEST);
        let result = self.handle(&body);
        let honest_flow = matches!(self.dh, Dh::Honest);
        self.dh = Dh::None;
        let Ok((answer, created)) = result else {
            return;
        };
        let created = created.expect("set_client_DH_params accepted without a key");
        assert!(
            !honest_flow,
            "a forged set_client_DH_params completed the honest client's flow"
        );
        assert!(forged_flow, "a key created without req_DH_params");
        assert!(dh::is_safe_public_value(&g_b), "an unsafe g_b was accepted");
        let enums::SetClientDHParamsAnswer::DhGenOk(ok) =
            enums::SetClientDHParamsAnswer::from_bytes(&answer).expect("dh_gen answer")
        else {
            panic!("a created key answered with something else than dh_gen_ok");
        };
        assert_eq!((ok.nonce, ok.server_nonce), (flow.nonce, flow.server_nonce));
        assert_eq!(
            created.first_salt,
            first_salt(&flow.new_nonce, &flow.server_nonce)
        );
        assert_eq!(created.dc, flow.dc);
        assert_eq!(created.expires_in, flow.expires_in);
        assert_eq!(
            ok.new_nonce_hash1,
            created.auth_key.new_nonce_hash(&flow.new_nonce, 1)
        );
        if let Some(b) = b {
            let expected = AuthKey::from_bytes(shared_secret(&flow.g_a, b));
            assert_eq!(
                created.auth_key, expected,
                "the two sides computed different keys"
            );
        }
    }

    fn honest(&mut self, input: &mut Input<'_>) {
        let flags = input.u8();
        let flip = if flags & 1 != 0 {
            Some((input.u16() as usize, input.u8() | 1))
        } else {
            None
        };
        let corrupt = |mut body: Vec<u8>| {
            if let Some((at, mask)) = flip {
                let n = body.len();
                body[at % n] ^= mask;
            }
            body
        };
        let keys = [server_key().public()];
        match std::mem::replace(&mut self.honest, Honest::Idle) {
            Honest::Idle => {
                let scheme = if flags & 2 != 0 {
                    RsaScheme::Pad
                } else {
                    RsaScheme::Legacy
                };
                let temp = (flags & 4 != 0).then_some(3600);
                let (client, req_pq) = ClientHandshake::start(scheme, 2, temp, &mut self.rng);
                let body = corrupt(req_pq);
                if let Ok((answer, _)) = self.handle(&body) {
                    match functions::Request::from_bytes(&body) {
                        Ok(functions::Request::ReqPqMulti(functions::ReqPqMulti { nonce }))
                        | Ok(functions::Request::ReqPq(functions::ReqPq { nonce })) => {
                            self.on_res_pq(nonce, &answer)
                        }
                        _ => panic!("a corrupted req_pq was answered"),
                    }
                    self.honest = Honest::ResPq(client, answer);
                }
            }
            Honest::ResPq(mut client, res_pq) => {
                let Ok(req_dh) = client.on_res_pq(&res_pq, &keys, &mut self.rng) else {
                    return;
                };
                match self.handle(&corrupt(req_dh)) {
                    Ok((answer, _)) => {
                        self.dh = Dh::Honest;
                        self.honest = Honest::DhParams(client, answer);
                    }
                    Err(_) => self.dh = Dh::None,
                }
            }
            Honest::DhParams(mut client, dh_params) => {
                let Ok(set_dh) = client.on_dh_params(&dh_params, NOW + 2, &mut self.rng) else {
                    return;
                };
                let result = self.handle(&corrupt(set_dh));
                let honest_flow = matches!(self.dh, Dh::Honest);
                self.dh = Dh::None;
                let Ok((answer, created)) = result else {
                    return;
                };
                let created = created.expect("set_client_DH_params accepted without a key");
                assert!(honest_flow, "the honest client completed another flow");
                match client.on_dh_answer(&answer) {
                    Ok(k) => {
                        assert_eq!(
                            k.auth_key, created.auth_key,
                            "client and server keys differ"
                        );
                        assert_eq!(k.first_salt, created.first_salt);
                        assert_eq!(k.time_offset, -2);
                    }
                    Err(e) => assert!(flip.is_some(), "the honest client refused: {e}"),
                }
            }
        }
    }
}

/// Legacy `00 | SHA1(data) | data | random`, RSA-encrypted (the raw block if it is not below n).
fn legacy(data: &[u8], bad_hash: bool, rng: &mut Rng) -> Vec<u8> {
    let data = &data[..data.len().min(235)];
    let mut block = [0u8; 256];
    block[1..21].copy_from_slice(&sha1(&[data]));
    if bad_hash {
        block[1] ^= 1;
    }
    block[21..21 + data.len()].copy_from_slice(data);
    rng.fill(&mut block[21 + data.len()..]);
    let public = server_key().public();
    match public.encrypt_raw(&block) {
        Some(c) => c.to_vec(),
        None => block.to_vec(),
    }
}

/// RSA_PAD (`docs/clients.md §1.2`).
fn rsa_pad(data: &[u8], bad_hash: bool, rng: &mut Rng) -> Vec<u8> {
    let data = &data[..data.len().min(144)];
    let mut data_with_padding = data.to_vec();
    let mut pad = vec![0u8; 192 - data.len()];
    rng.fill(&mut pad);
    data_with_padding.extend_from_slice(&pad);
    let mut reversed = data_with_padding.clone();
    reversed.reverse();
    let public = server_key().public();
    loop {
        let temp_key: [u8; 32] = rng.array();
        let mut data_with_hash = reversed.clone();
        let mut hash = sha256(&[&temp_key, &data_with_padding]);
        if bad_hash {
            hash[31] ^= 1;
        }
        data_with_hash.extend_from_slice(&hash);
        aes_ige::encrypt(&mut data_with_hash, &temp_key, &[0u8; 32]);
        let h = sha256(&[&data_with_hash]);
        let mut block = [0u8; 256];
        for i in 0..32 {
            block[i] = temp_key[i] ^ h[i];
        }
        block[32..].copy_from_slice(&data_with_hash);
        if let Some(c) = public.encrypt_raw(&block) {
            return c.to_vec();
        }
    }
}

/// Constructor ids for op 5: the handshake's own, a few it must refuse, and garbage.
const IDS: [u32; 8] = [
    0xbe7e8ef1, // req_pq_multi
    0x60469778, // req_pq
    0xd712e4be, // req_DH_params
    0xf5045f1f, // set_client_DH_params
    0x7abe77ec, // ping
    0xda9b0d0d, // invokeWithLayer
    0x62d6b459, // msgs_ack
    0x3072cfa1, // gzip_packed
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mut state = State {
        server: ServerHandshake::new(),
        rng: Rng::new(u64::from(input.u8())),
        nonce: [0x5a; 16],
        res_pq: None,
        dh: Dh::None,
        honest: Honest::Idle,
    };
    for _ in 0..12 {
        if input.is_empty() {
            break;
        }
        match input.u8() % 6 {
            0 => {
                let body = input.blob().to_vec();
                state.raw(&body);
            }
            1 => state.req_pq(&mut input),
            2 => state.req_dh(&mut input),
            3 => state.set_dh(&mut input),
            4 => state.honest(&mut input),
            _ => {
                let mut body = IDS[(input.u8() % 8) as usize].to_le_bytes().to_vec();
                body.extend_from_slice(input.blob());
                state.raw(&body);
            }
        }
    }
});
