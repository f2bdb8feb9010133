//! A `ServerSession` with a fixed auth key receiving a sequence of packets: raw bytes, packets
//! a client-role `ClientSession` encrypts from fuzzed bodies (so decryption passes `msg_key`
//! and the service layer runs: containers, nested containers, `gzip_packed`, acks, pings,
//! future salts, state and resend requests, msg_id and seqno checks, salts, session changes),
//! hand-built plaintexts with bad lengths and padding, and replays. Never panics; every request
//! it dispatches has a valid, fresh msg_id (once per session) and is no service message; every
//! packet it sends back decrypts at the client.
//!
//! Input: a config byte (bit 0: the handshake's first salt is configured; bits 1-3: the client's
//! first salt), then up to 24 operations, an opcode byte (`% 8`) and its bytes:
//! - 0 time: a unit byte (bits 0-1: ms, 100 ms, s, min; bit 2: backwards) and a u16 count.
//! - 1 send: `n % 3 + 1` bodies through `ClientSession::encrypt` (a container with its acks when
//!   more than one message).
//! - 2 send one message with a chosen msg_id and seqno (see `msg_id`) and body.
//! - 3 the client's salt (see `salt`).
//! - 4 replay one of the last 8 packets, bit-flipped when the flag byte is odd.
//! - 5 raw packet: flag byte (bit 0: prefixed with the key id), `blob`.
//! - 6 hand-built plaintext: salt, session id, msg_id, seqno, declared length, body, padding
//!   length and trailing bytes all from the input.
//! - 7 flag byte: bit 0 a new client session id; else the server pushes an update.
//!
//! Bodies (`body`, selector byte `% 11`): raw `blob`, ping, ping_delay_disconnect,
//! get_future_salts, msgs_ack, msgs_state_req, msg_resend_req, destroy_session /
//! rpc_drop_answer / http_wait, gzip_packed (of a body, or of garbage), an RPC request, and a
//! msg_container of up to 4 messages (nested up to depth 2).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::collections::HashSet;

use common::{Input, Rng};
use libfuzzer_sys::fuzz_target;
use mtproto::crypto::auth_key::Direction;
use mtproto::crypto::{AuthKey, Entropy, Plaintext};
use mtproto::session::{ClientSession, SaltSource, ServerSession, SessionConfig};
use tl::{Encode, Layer, enums, functions, types};

const T0_MS: i64 = 1_764_000_000_000;
const FIRST_SALT: i64 = 0x0123_4567_89ab_cdef;
const MSGS_ACK: u32 = 0x62d6b459;
const CONTAINER: u32 = tl::service::MSG_CONTAINER_ID;

/// Service messages the session answers itself: never dispatched as requests.
const SERVICE_IDS: [u32; 9] = [
    0x7abe77ec, // ping
    0xf3427b8c, // ping_delay_disconnect
    0xb921bd04, // get_future_salts
    0xe7512126, // destroy_session
    0xda69fb52, // msgs_state_req
    0x7d861a08, // msg_resend_req
    0x58e4a740, // rpc_drop_answer
    0x9299359f, // http_wait
    MSGS_ACK,
];

fn auth_key() -> AuthKey {
    let mut b = [0u8; 256];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (i * 7 + 3) as u8;
    }
    AuthKey::from_bytes(b)
}

fn ctor(body: &[u8]) -> u32 {
    body.get(..4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn content_related(body: &[u8]) -> bool {
    !matches!(ctor(body), MSGS_ACK | CONTAINER)
}

struct World {
    key: AuthKey,
    salts: SaltSource,
    server: ServerSession,
    client: ClientSession,
    rng: Rng,
    now_ms: i64,
    /// msg_ids the client used, for acks, replays and state requests.
    ids: Vec<i64>,
    /// The last packets sent.
    packets: Vec<Vec<u8>>,
    /// Requests dispatched in the server's current session.
    dispatched: HashSet<i64>,
    session: Option<i64>,
}

impl World {
    fn now_s(&self) -> i64 {
        self.now_ms.div_euclid(1000)
    }

    fn remember_id(&mut self, id: i64) {
        if self.ids.len() >= 32 {
            self.ids.remove(0);
        }
        self.ids.push(id);
    }

    fn salt(&mut self, input: &mut Input<'_>) -> i64 {
        let key_id = self.key.id();
        let window = SaltSource::window(self.now_s());
        match input.u8() % 6 {
            0 => 0,
            1 => self.salts.current(key_id, self.now_s()),
            2 => self
                .salts
                .salt(key_id, window + i64::from(input.u8() % 72) - 4),
            3 => FIRST_SALT,
            4 => input.i64(),
            _ => self.client.salt(),
        }
    }

    /// A msg_id and seqno for `body`: fresh from the client (0), an old one (1), from a time
    /// offset with chosen low bits (2), raw (3), fresh with low bits set (4), fresh shifted by
    /// -400..+60 s (5); then the seqno: the client's (0), the other parity (1) or raw.
    fn msg_id(&mut self, input: &mut Input<'_>, body: &[u8]) -> (i64, i32) {
        let content = content_related(body);
        let (fresh, fresh_seqno) = self.client.next_id(self.now_ms, content);
        let id = match input.u8() % 6 {
            0 => fresh,
            1 if !self.ids.is_empty() => self.ids[input.u8() as usize % self.ids.len()],
            1 => fresh,
            2 => {
                let offset = i64::from(input.u8() as i8);
                ((self.now_s() + offset) << 32) | i64::from(input.u32())
            }
            3 => input.i64(),
            4 => fresh | i64::from(input.u8() & 3),
            _ => fresh.wrapping_add(((i64::from(input.u8() % 116) - 100) * 4) << 32),
        };
        let seqno = match input.u8() % 3 {
            0 => fresh_seqno,
            1 => fresh_seqno ^ 1,
            _ => input.i32(),
        };
        self.remember_id(id);
        (id, seqno)
    }

    fn id_list(&mut self, input: &mut Input<'_>) -> Vec<i64> {
        let n = input.u8() % 5;
        (0..n)
            .map(|_| {
                let pick = input.u8();
                if pick & 1 == 0 && !self.ids.is_empty() {
                    self.ids[pick as usize / 2 % self.ids.len()]
                } else {
                    input.i64()
                }
            })
            .collect()
    }

    fn body(&mut self, input: &mut Input<'_>, depth: u8) -> Vec<u8> {
        let l = Layer::LATEST;
        match input.u8() % 11 {
            0 => input.blob().to_vec(),
            1 => functions::Ping {
                ping_id: input.i64(),
            }
            .to_bytes(l),
            2 => functions::PingDelayDisconnect {
                ping_id: input.i64(),
                disconnect_delay: i32::from(input.u8() as i8),
            }
            .to_bytes(l),
            3 => functions::GetFutureSalts {
                num: match input.u8() {
                    255 => input.i32(),
                    n => i32::from(n % 80),
                },
            }
            .to_bytes(l),
            4 => enums::MsgsAck::from(types::MsgsAck {
                msg_ids: self.id_list(input),
            })
            .to_bytes(l),
            5 => enums::MsgsStateReq::from(types::MsgsStateReq {
                msg_ids: self.id_list(input),
            })
            .to_bytes(l),
            6 => enums::MsgResendReq::from(types::MsgResendReq {
                msg_ids: self.id_list(input),
            })
            .to_bytes(l),
            7 => match input.u8() % 3 {
                0 => functions::DestroySession {
                    session_id: match input.bool() {
                        true => self.client.session_id(),
                        false => input.i64(),
                    },
                }
                .to_bytes(l),
                1 => functions::RpcDropAnswer {
                    req_msg_id: input.i64(),
                }
                .to_bytes(l),
                _ => enums::HttpWait::from(types::HttpWait {
                    max_delay: input.i32(),
                    wait_after: input.i32(),
                    max_wait: input.i32(),
                })
                .to_bytes(l),
            },
            8 => {
                let packed_data = if depth < 2 && input.bool() {
                    mtproto::session::gzip(&self.body(input, depth + 1))
                } else {
                    input.blob().to_vec()
                };
                enums::Object::from(types::GzipPacked { packed_data }).to_bytes(l)
            }
            9 => match input.u8() % 4 {
                0 => functions::help::GetConfig {}.to_bytes(l),
                1 => functions::help::GetNearestDc {}.to_bytes(l),
                2 => functions::InvokeWithLayer {
                    layer: 200,
                    query: tl::Raw(functions::help::GetConfig {}.to_bytes(l)),
                }
                .to_bytes(l),
                _ => {
                    let mut b = input.u32().to_le_bytes().to_vec();
                    b.extend_from_slice(&[0; 4]);
                    b
                }
            },
            _ if depth < 2 => {
                let n = input.u8() % 5;
                let mut messages = Vec::new();
                for _ in 0..n {
                    let body = self.body(input, depth + 1);
                    let (msg_id, seqno) = self.msg_id(input, &body);
                    messages.push(tl::service::Message {
                        msg_id,
                        seqno,
                        body,
                    });
                }
                tl::service::MsgContainer { messages }.to_bytes(l)
            }
            _ => functions::Ping { ping_id: 7 }.to_bytes(l),
        }
    }

    /// A plaintext built by hand: every field and the padding from the input.
    fn plaintext(&mut self, input: &mut Input<'_>) -> Vec<u8> {
        let salt = self.salt(input);
        let session_id = match input.bool() {
            true => self.client.session_id(),
            false => input.i64(),
        };
        let body = self.body(input, 0);
        let (msg_id, seqno) = self.msg_id(input, &body);
        let declared = match input.u8() % 4 {
            0 | 1 => body.len() as i32,
            2 => body.len() as i32 + i32::from(input.u8() as i8) * 4,
            _ => input.i32(),
        };
        let mut plain = Vec::new();
        plain.extend_from_slice(&salt.to_le_bytes());
        plain.extend_from_slice(&session_id.to_le_bytes());
        plain.extend_from_slice(&msg_id.to_le_bytes());
        plain.extend_from_slice(&seqno.to_le_bytes());
        plain.extend_from_slice(&declared.to_le_bytes());
        plain.extend_from_slice(&body);
        let padding = input.u8() as usize * 5;
        let total = (plain.len() + padding).div_ceil(16).max(2) * 16;
        let start = plain.len();
        plain.resize(total, 0);
        self.rng.fill(&mut plain[start..]);
        let mut packet = self
            .key
            .encrypt(Plaintext::new(&plain), Direction::ClientToServer);
        // Bytes a padded-intermediate transport leaves after the packet.
        let trailing = input.u8() % 16;
        packet.extend((0..trailing).map(|i| i * 3));
        packet
    }

    fn receive(&mut self, packet: Vec<u8>) {
        if self.packets.len() >= 8 {
            self.packets.remove(0);
        }
        self.packets.push(packet.clone());
        let result = self
            .server
            .receive(&packet[..], true, self.now_ms, &mut self.rng);
        if self.server.session_id() != self.session {
            self.session = self.server.session_id();
            self.dispatched.clear();
        }
        match result {
            Ok(received) => {
                assert!(
                    received
                        .quick_ack_token
                        .is_some_and(|t| t & 0x8000_0000 != 0)
                );
                let now_s = self.now_s();
                for r in &received.requests {
                    assert_eq!(r.msg_id % 4, 0, "a request with a server-side msg_id");
                    let t = r.msg_id >> 32;
                    assert!(
                        t >= now_s - 300 && t <= now_s + 30,
                        "a request from {t} dispatched at {now_s}"
                    );
                    assert!(
                        self.dispatched.insert(r.msg_id),
                        "msg_id {:#x} dispatched twice in one session",
                        r.msg_id
                    );
                    assert!(
                        !SERVICE_IDS.contains(&ctor(&r.body)),
                        "service message {:#x} dispatched as a request",
                        ctor(&r.body)
                    );
                    self.server
                        .push_result(r.msg_id, &tl::BOOL_TRUE_ID.to_le_bytes());
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        if !self.server.has_outgoing() {
            return;
        }
        for p in self.server.flush(self.now_ms, &mut self.rng) {
            assert_eq!((p.len() - 24) % 16, 0);
            if let Err(e) = self.client.decrypt(&p[..]) {
                panic!("the client cannot read the server's packet: {e}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let config = input.u8();
    let key = auth_key();
    let salts = SaltSource::new([3; 32]);
    let first_salt = (config & 1 == 1).then_some((FIRST_SALT, T0_MS / 1000 + 60));
    let mut rng = Rng::new(u64::from(config));
    let server = ServerSession::new(
        key.clone(),
        SessionConfig {
            salts: salts.clone(),
            first_salt,
        },
    );
    let client_salt = match (config >> 1) & 7 {
        0 | 1 => 0,
        2 => FIRST_SALT,
        _ => salts.current(key.id(), T0_MS / 1000),
    };
    let client = ClientSession::new(key.clone(), client_salt, 0, &mut rng);
    let mut w = World {
        key,
        salts,
        server,
        client,
        rng,
        now_ms: T0_MS,
        ids: Vec::new(),
        packets: Vec::new(),
        dispatched: HashSet::new(),
        session: None,
    };
    for _ in 0..24 {
        if input.is_empty() {
            break;
        }
        match input.u8() % 8 {
            0 => {
                let unit = input.u8();
                let n = i64::from(input.u16()) * [1, 100, 1000, 60_000][(unit & 3) as usize];
                w.now_ms += if unit & 4 != 0 { -n } else { n };
            }
            1 => {
                let n = input.u8() % 3 + 1;
                let bodies: Vec<Vec<u8>> = (0..n).map(|_| w.body(&mut input, 0)).collect();
                let (ids, packet) = w.client.encrypt(&bodies, w.now_ms, &mut w.rng);
                for id in ids {
                    w.remember_id(id);
                }
                w.receive(packet);
            }
            2 => {
                let body = w.body(&mut input, 0);
                let (msg_id, seqno) = w.msg_id(&mut input, &body);
                let packet = w.client.encrypt_message(msg_id, seqno, &body, &mut w.rng);
                w.receive(packet);
            }
            3 => {
                let salt = w.salt(&mut input);
                w.client.set_salt(salt);
            }
            4 => {
                if w.packets.is_empty() {
                    continue;
                }
                let mut packet = w.packets[input.u8() as usize % w.packets.len()].clone();
                let flag = input.u8();
                if flag & 1 != 0 && !packet.is_empty() {
                    let at = input.u16() as usize % packet.len();
                    packet[at] ^= flag | 1;
                }
                w.receive(packet);
            }
            5 => {
                let flag = input.u8();
                let mut packet = Vec::new();
                if flag & 1 != 0 {
                    packet.extend_from_slice(&w.key.id().to_le_bytes());
                }
                packet.extend_from_slice(input.blob());
                w.receive(packet);
            }
            6 => {
                let packet = w.plaintext(&mut input);
                w.receive(packet);
            }
            _ => {
                if input.bool() {
                    let salt = w.client.salt();
                    w.client = ClientSession::new(w.key.clone(), salt, 0, &mut w.rng);
                } else {
                    // updatesTooLong: a server-initiated content message.
                    w.server.push_update(0xe317af7eu32.to_le_bytes().to_vec());
                    w.flush();
                }
            }
        }
    }
});
