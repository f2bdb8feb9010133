//! Deterministic tests of the two session roles against each other; time is passed in.

use tl::{Encode, Layer, functions};

use super::*;
use crate::crypto::{AuthKey, OsEntropy};

const NOW: i64 = 1_764_000_000_000;

fn pair() -> (ClientSession, ServerSession) {
    let mut bytes = [0u8; 256];
    OsEntropy.fill(&mut bytes);
    pair_on(AuthKey::from_bytes(bytes))
}

fn pair_on(key: AuthKey) -> (ClientSession, ServerSession) {
    let salts = SaltSource::new([3; 32]);
    let server = ServerSession::new(
        key.clone(),
        SessionConfig {
            salts,
            first_salt: None,
        },
    );
    // Salt 0, as GramJS and Telethon start every connection.
    let client = ClientSession::new(key, 0, 0, &mut OsEntropy);
    (client, server)
}

fn body(f: &impl Encode) -> Vec<u8> {
    f.to_bytes(Layer::LATEST)
}

/// Sends `bodies` and returns what the server dispatched plus what the client got back.
fn round(
    client: &mut ClientSession,
    server: &mut ServerSession,
    bodies: &[Vec<u8>],
    now: i64,
) -> (Vec<Request>, Vec<ServerMessage>, Vec<i64>) {
    let (ids, packet) = client.encrypt(bodies, now, &mut OsEntropy);
    let received = server
        .receive(&packet[..], false, now, &mut OsEntropy)
        .expect("packet accepted");
    let mut replies = Vec::new();
    for p in server.flush(now, &mut OsEntropy) {
        replies.extend(client.decrypt(&p[..]).unwrap());
    }
    (received.requests, replies, ids)
}

/// The usual start: salt 0 refused with bad_server_salt, then accepted.
fn established() -> (ClientSession, ServerSession) {
    let (mut c, mut s) = pair();
    let (reqs, replies, ids) = round(&mut c, &mut s, &[body(&functions::help::GetConfig {})], NOW);
    assert!(reqs.is_empty());
    assert!(
        matches!(replies[..], [ServerMessage::BadServerSalt { bad_msg_id, .. }] if bad_msg_id == ids[0])
    );
    let (reqs, replies, _) = round(
        &mut c,
        &mut s,
        &[body(&functions::help::GetConfig {})],
        NOW + 10,
    );
    assert_eq!(reqs.len(), 1);
    assert!(
        replies
            .iter()
            .any(|m| matches!(m, ServerMessage::NewSession { .. }))
    );
    assert!(
        replies
            .iter()
            .any(|m| matches!(m, ServerMessage::Ack(a) if a.contains(&reqs[0].msg_id)))
    );
    (c, s)
}

#[test]
fn a_quick_ack_token_is_the_start_of_the_packets_hash() {
    let key = AuthKey::from_bytes([7; 256]);
    let (mut c, mut s) = pair_on(key.clone());
    let (_, packet) = c.encrypt(&[body(&functions::help::GetConfig {})], NOW, &mut OsEntropy);
    let got = s.receive(&packet[..], true, NOW, &mut OsEntropy).unwrap();
    // The plaintext read back with the AES key and IV the protocol derives, by hand.
    let msg_key: [u8; 16] = packet[8..24].try_into().unwrap();
    let a = crate::crypto::sha256(&[&msg_key, &key.bytes()[..36]]);
    let b = crate::crypto::sha256(&[&key.bytes()[40..76], &msg_key]);
    let aes_key = [&a[..8], &b[8..24], &a[24..]].concat();
    let iv = [&b[..8], &a[8..24], &b[24..]].concat();
    let mut plain = packet[24..].to_vec();
    crate::crypto::aes_ige::decrypt(
        &mut plain,
        &aes_key.try_into().unwrap(),
        &iv.try_into().unwrap(),
    );
    let hash = crate::crypto::sha256(&[&key.bytes()[88..120], &plain]);
    assert_eq!(&hash[8..24], &msg_key, "the plaintext is the one sent");
    let token = u32::from_le_bytes(hash[..4].try_into().unwrap()) | 0x8000_0000;
    assert_eq!(got.quick_ack_token, Some(token));
}

#[test]
fn salt_dance_then_rpc_result() {
    let (mut c, mut s) = established();
    let (ids, packet) = c.encrypt(
        &[body(&functions::updates::GetState {})],
        NOW + 20,
        &mut OsEntropy,
    );
    let got = s
        .receive(&packet[..], true, NOW + 20, &mut OsEntropy)
        .unwrap();
    assert_eq!(got.requests[0].msg_id, ids[0]);
    assert!(got.quick_ack_token.is_some_and(|t| t & 0x8000_0000 != 0));
    s.push_result(ids[0], &true.to_bytes(Layer::LATEST));
    s.rpc_error(ids[0] + 4, 401, "AUTH_KEY_UNREGISTERED");
    let mut replies = Vec::new();
    for p in s.flush(NOW + 21, &mut OsEntropy) {
        replies.extend(c.decrypt(&p[..]).unwrap());
    }
    assert!(replies.contains(&ServerMessage::RpcResult {
        req_msg_id: ids[0],
        result: Ok(true.to_bytes(Layer::LATEST))
    }));
    assert!(replies.contains(&ServerMessage::RpcResult {
        req_msg_id: ids[0] + 4,
        result: Err((401, "AUTH_KEY_UNREGISTERED".into()))
    }));
}

#[test]
fn pings_salts_and_state_requests() {
    let (mut c, mut s) = established();
    let (_, replies, ids) = round(
        &mut c,
        &mut s,
        &[body(&functions::Ping { ping_id: 77 })],
        NOW + 30,
    );
    assert!(replies.contains(&ServerMessage::Pong {
        msg_id: ids[0],
        ping_id: 77
    }));

    let (_, replies, _) = round(
        &mut c,
        &mut s,
        &[body(&functions::PingDelayDisconnect {
            ping_id: 78,
            disconnect_delay: 60,
        })],
        NOW + 40,
    );
    assert!(
        replies
            .iter()
            .any(|m| matches!(m, ServerMessage::Pong { ping_id: 78, .. }))
    );
    assert_eq!(s.disconnect_at_ms(), Some(NOW + 40 + 60_000));

    let (_, replies, _) = round(
        &mut c,
        &mut s,
        &[body(&functions::GetFutureSalts { num: 100 })],
        NOW + 50,
    );
    let salts = replies
        .iter()
        .find_map(|m| match m {
            ServerMessage::FutureSalts(f) => Some(f.salts.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(salts.len(), 64);
    // A future salt is accepted.
    c.set_salt(salts[10].salt);
    let (reqs, _, _) = round(
        &mut c,
        &mut s,
        &[body(&functions::help::GetConfig {})],
        NOW + 60,
    );
    assert_eq!(reqs.len(), 1);

    let known = reqs[0].msg_id;
    let state_req = tl::enums::MsgsStateReq::from(tl::types::MsgsStateReq {
        msg_ids: vec![known, known + (1 << 40)],
    })
    .to_bytes(Layer::LATEST);
    let (_, replies, _) = round(&mut c, &mut s, &[state_req], NOW + 70);
    let info = replies
        .iter()
        .find_map(|m| match m {
            ServerMessage::Other(b) => tl::Decode::from_bytes(b)
                .ok()
                .map(|tl::enums::MsgsStateInfo::MsgsStateInfo(i)| i.info),
            _ => None,
        })
        .unwrap();
    assert_eq!(info, vec![4, 3]);
}

#[test]
fn containers_and_gzip_are_unwrapped() {
    let (mut c, mut s) = established();
    let a = body(&functions::help::GetConfig {});
    let b = body(&functions::updates::GetState {});
    let packed = tl::enums::Object::from(tl::types::GzipPacked {
        packed_data: gzip(&b),
    })
    .to_bytes(Layer::LATEST);
    let (reqs, _, ids) = round(&mut c, &mut s, &[a.clone(), packed], NOW + 30);
    assert_eq!(
        reqs,
        vec![
            Request {
                msg_id: ids[0],
                body: a
            },
            Request {
                msg_id: ids[1],
                body: b
            }
        ]
    );

    // A gzip bomb: 64 MiB of zeros.
    assert_refused_as_bomb(&mut c, &mut s, gzip(&vec![0u8; 64 << 20]));
}

/// `packed` in `gzip_packed` inflates past the cap: refused with `INPUT_GZIP_INVALID`, and
/// nothing reaches the server's requests.
fn assert_refused_as_bomb(c: &mut ClientSession, s: &mut ServerSession, packed: Vec<u8>) {
    let bomb = tl::enums::Object::from(tl::types::GzipPacked {
        packed_data: packed,
    })
    .to_bytes(Layer::LATEST);
    let (reqs, replies, ids) = round(c, s, &[bomb], NOW + 40);
    assert!(reqs.is_empty());
    assert!(replies.contains(&ServerMessage::RpcResult {
        req_msg_id: ids[0],
        result: Err((400, "INPUT_GZIP_INVALID".into()))
    }));
}

#[test]
fn bad_message_ids_and_seqnos_are_notified() {
    let (mut c, mut s) = established();
    let req = body(&functions::help::GetConfig {});
    let now = NOW + 100;
    let (good_id, _) = c.next_id(now, true);
    let cases: Vec<(i64, i32, Vec<u8>, BadMsgCode)> = vec![
        (good_id + 1, 9, req.clone(), BadMsgCode::MsgIdBadLowBits),
        (
            ((now / 1000 - 400) << 32) & !3,
            11,
            req.clone(),
            BadMsgCode::MsgIdTooLow,
        ),
        (
            ((now / 1000 + 60) << 32) & !3,
            13,
            req.clone(),
            BadMsgCode::MsgIdTooHigh,
        ),
        (good_id + 8, 14, req.clone(), BadMsgCode::OddSeqnoExpected),
        (
            good_id + 12,
            15,
            tl::service::MsgContainer {
                messages: vec![tl::service::Message {
                    msg_id: good_id + 16,
                    seqno: 17,
                    body: req.clone(),
                }],
            }
            .to_bytes(Layer::LATEST),
            BadMsgCode::EvenSeqnoExpected,
        ),
    ];
    for (msg_id, seqno, body, code) in cases {
        let packet = c.encrypt_message(msg_id, seqno, &body, &mut OsEntropy);
        let got = s.receive(&packet[..], false, now, &mut OsEntropy).unwrap();
        assert!(got.requests.is_empty(), "{code:?}");
        assert_eq!(got.quick_ack_token, None, "not asked for, not computed");
        let replies: Vec<_> = s
            .flush(now, &mut OsEntropy)
            .iter()
            .flat_map(|p| c.decrypt(&p[..]).unwrap())
            .collect();
        assert!(
            replies.contains(&ServerMessage::BadMsg {
                bad_msg_id: msg_id,
                code: code as i32
            }),
            "{code:?}: {replies:?}"
        );
    }
    // A replayed message is ignored (acknowledged again, not dispatched twice).
    let (ids, packet) = c.encrypt(std::slice::from_ref(&req), now, &mut OsEntropy);
    assert_eq!(
        s.receive(&packet[..], false, now, &mut OsEntropy)
            .unwrap()
            .requests
            .len(),
        1
    );
    assert!(
        s.receive(&packet[..], false, now, &mut OsEntropy)
            .unwrap()
            .requests
            .is_empty()
    );
    let _ = ids;
    // A container inside a container.
    let inner = tl::service::MsgContainer {
        messages: vec![tl::service::Message {
            msg_id: good_id + 40,
            seqno: 21,
            body: req.clone(),
        }],
    };
    let outer = tl::service::MsgContainer {
        messages: vec![tl::service::Message {
            msg_id: good_id + 44,
            seqno: 22,
            body: inner.to_bytes(Layer::LATEST),
        }],
    };
    let packet = c.encrypt_message(
        good_id + 48,
        22,
        &outer.to_bytes(Layer::LATEST),
        &mut OsEntropy,
    );
    assert!(
        s.receive(&packet[..], false, now, &mut OsEntropy)
            .unwrap()
            .requests
            .is_empty()
    );
    let replies: Vec<_> = s
        .flush(now, &mut OsEntropy)
        .iter()
        .flat_map(|p| c.decrypt(&p[..]).unwrap())
        .collect();
    assert!(replies.contains(&ServerMessage::BadMsg {
        bad_msg_id: good_id + 44,
        code: 64
    }));
}

#[test]
fn forged_packets_are_refused() {
    let (mut c, mut s) = established();
    let (_, mut packet) = c.encrypt(
        &[body(&functions::help::GetConfig {})],
        NOW + 30,
        &mut OsEntropy,
    );
    let n = packet.len();
    packet[n - 1] ^= 1;
    assert_eq!(
        s.receive(&packet[..], false, NOW + 30, &mut OsEntropy),
        Err(SessionError::BadMsgKey)
    );
    packet[0] ^= 1;
    assert_eq!(
        s.receive(&packet[..], false, NOW + 30, &mut OsEntropy),
        Err(SessionError::WrongAuthKey)
    );
    assert_eq!(
        s.receive(&packet[..20], false, NOW + 30, &mut OsEntropy),
        Err(SessionError::WrongAuthKey)
    );
}

#[test]
fn handshake_first_salt_is_accepted_until_it_expires() {
    let mut bytes = [0u8; 256];
    OsEntropy.fill(&mut bytes);
    let key = AuthKey::from_bytes(bytes);
    let config = SessionConfig {
        salts: SaltSource::new([3; 32]),
        first_salt: Some((12345, NOW / 1000 + 60)),
    };
    let mut s = ServerSession::new(key.clone(), config);
    let mut c = ClientSession::new(key, 12345, 0, &mut OsEntropy);
    let (reqs, _, _) = round(&mut c, &mut s, &[body(&functions::help::GetConfig {})], NOW);
    assert_eq!(reqs.len(), 1);
    c.set_salt(12345);
    let (reqs, replies, _) = round(
        &mut c,
        &mut s,
        &[body(&functions::help::GetConfig {})],
        NOW + 120_000,
    );
    assert!(reqs.is_empty());
    assert!(matches!(replies[..], [ServerMessage::BadServerSalt { .. }]));
}

#[test]
fn service_messages_are_served_at_either_seqno_parity() {
    let (mut c, mut s) = established();
    let now = NOW + 100;
    // Pyrogram's opening ping: not content-related, so an even seqno.
    let (ping_id, seqno) = c.next_id(now, false);
    let packet = c.encrypt_message(
        ping_id,
        seqno,
        &body(&functions::Ping { ping_id: 5 }),
        &mut OsEntropy,
    );
    s.receive(&packet[..], false, now, &mut OsEntropy).unwrap();
    // mtcute's acknowledgement: written as content, so an odd seqno.
    let (ack_id, seqno) = c.next_id(now, true);
    let ack =
        tl::enums::MsgsAck::from(tl::types::MsgsAck { msg_ids: vec![1] }).to_bytes(Layer::LATEST);
    let packet = c.encrypt_message(ack_id, seqno, &ack, &mut OsEntropy);
    s.receive(&packet[..], false, now, &mut OsEntropy).unwrap();
    let replies: Vec<_> = s
        .flush(now, &mut OsEntropy)
        .iter()
        .flat_map(|p| c.decrypt(&p[..]).unwrap())
        .collect();
    assert!(replies.contains(&ServerMessage::Pong {
        msg_id: ping_id,
        ping_id: 5
    }));
    assert!(
        !replies
            .iter()
            .any(|m| matches!(m, ServerMessage::BadMsg { .. })),
        "{replies:?}"
    );
}

#[test]
fn zlib_streams_in_gzip_packed_are_inflated() {
    use std::io::Write as _;
    let (mut c, mut s) = established();
    let b = body(&functions::updates::GetState {});
    // mtcute's form: zlib (RFC 1950, `78 9c`) rather than gzip.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&b).unwrap();
    let zlib = z.finish().unwrap();
    assert_eq!(zlib[..2], [0x78, 0x9c]);
    let packed = tl::enums::Object::from(tl::types::GzipPacked { packed_data: zlib })
        .to_bytes(Layer::LATEST);
    let (reqs, _, ids) = round(&mut c, &mut s, &[packed], NOW + 30);
    assert_eq!(
        reqs,
        vec![Request {
            msg_id: ids[0],
            body: b
        }]
    );
    // A zlib bomb is refused like a gzip one.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&vec![0u8; 16 << 20]).unwrap();
    assert_refused_as_bomb(&mut c, &mut s, z.finish().unwrap());
}

#[test]
fn an_error_result_is_the_last_message_of_its_container() {
    let (mut c, mut s) = established();
    let now = NOW + 100;
    s.push_result(11 << 2, &[1, 2, 3, 4]);
    s.rpc_error(12 << 2, 401, "AUTH_KEY_UNREGISTERED");
    s.rpc_error(13 << 2, 401, "AUTH_KEY_UNREGISTERED");
    s.push_result(14 << 2, &[5, 6, 7, 8]);
    let packets: Vec<Vec<ServerMessage>> = s
        .flush(now, &mut OsEntropy)
        .iter()
        .map(|p| c.decrypt(&p[..]).unwrap())
        .collect();
    let errors = |p: &[ServerMessage]| {
        p.iter()
            .filter(|m| matches!(m, ServerMessage::RpcResult { result: Err(_), .. }))
            .count()
    };
    // Every packet holds at most one error, and it comes last.
    assert_eq!(packets.len(), 3, "{packets:?}");
    for p in &packets {
        assert!(errors(p) <= 1, "{p:?}");
        if errors(p) == 1 {
            assert!(
                matches!(
                    p.last(),
                    Some(ServerMessage::RpcResult { result: Err(_), .. })
                ),
                "{p:?}"
            );
        }
    }
    let order: Vec<i64> = packets
        .iter()
        .flatten()
        .filter_map(|m| match m {
            ServerMessage::RpcResult { req_msg_id, .. } => Some(*req_msg_id >> 2),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![11, 12, 13, 14]);
}
