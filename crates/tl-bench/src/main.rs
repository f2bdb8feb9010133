//! Encodes and decodes a representative mix of messages with mtcall's codec and with
//! `grammers-tl-types` 0.11 (the grammers client's generated codec, layer 230) in one run, and
//! prints the time per operation and the ratio mtcall / grammers (below 1 = mtcall faster).
//!
//! The grammers values are obtained by decoding mtcall's bytes, and must re-encode to the same
//! bytes: the two codecs are compared on identical messages.
//!
//! `cargo run --release -p mtcall-tl-bench` (full), `-- --quick` (a smoke run for the tests).

use std::hint::black_box;
use std::time::Instant;

use grammers_tl_types as gt;
use gt::{Deserializable, Serializable};
use tl::service::{Message, MsgContainer};
use tl::{Decode, Encode, Layer, enums, functions, types};

fn protocol() -> enums::PhoneCallProtocol {
    types::PhoneCallProtocol {
        udp_p2p: true,
        udp_reflector: true,
        min_layer: 65,
        max_layer: 92,
        library_versions: vec!["2.4.4".into(), "2.7.7".into()],
    }
    .into()
}

fn user(id: i64, name: &str) -> enums::User {
    types::User {
        id,
        access_hash: Some(id.wrapping_mul(0x9e3779b97f4a7c15u64 as i64)),
        first_name: Some(name.into()),
        last_name: Some("Tester".into()),
        username: Some(format!("{}_{id}", name.to_lowercase())),
        phone: Some(format!("9996621{id:03}")),
        status: Some(
            types::UserStatusOnline {
                expires: 1_764_000_000,
            }
            .into(),
        ),
        ..Default::default()
    }
    .into()
}

fn phone_call_result() -> enums::phone::PhoneCall {
    let connection = |id: i64| -> enums::PhoneConnection {
        types::PhoneConnection {
            tcp: false,
            id,
            ip: "127.0.0.1".into(),
            ipv6: "::1".into(),
            port: 50000 + id as i32,
            peer_tag: vec![7; 16],
        }
        .into()
    };
    types::phone::PhoneCall {
        phone_call: types::PhoneCall {
            p2p_allowed: true,
            video: false,
            conference_supported: false,
            id: 0x1234_5678_9abc,
            access_hash: -42,
            date: 1_764_000_000,
            admin_id: 1001,
            participant_id: 1002,
            g_a_or_b: vec![0xab; 256],
            key_fingerprint: 0x0fed_cba9_8765_4321,
            protocol: protocol(),
            connections: vec![connection(1), connection(2)],
            start_date: 1_764_000_005,
            custom_parameters: None,
        }
        .into(),
        users: vec![user(1001, "Alice"), user(1002, "Bob")],
    }
    .into()
}

fn updates_push() -> enums::Updates {
    types::Updates {
        updates: vec![
            types::UpdatePhoneCall {
                phone_call: types::PhoneCallRequested {
                    video: false,
                    id: 0x1234_5678_9abc,
                    access_hash: 77,
                    date: 1_764_000_000,
                    admin_id: 1001,
                    participant_id: 1002,
                    g_a_hash: vec![0x5a; 32],
                    protocol: protocol(),
                }
                .into(),
            }
            .into(),
        ],
        users: vec![user(1001, "Alice"), user(1002, "Bob")],
        chats: vec![],
        date: 1_764_000_000,
        seq: 0,
    }
    .into()
}

fn container() -> MsgContainer {
    let peer: enums::InputPhoneCall = types::InputPhoneCall {
        id: 0x1234_5678_9abc,
        access_hash: 77,
    }
    .into();
    let bodies = [
        functions::phone::ReceivedCall { peer: peer.clone() }.to_bytes(Layer::LATEST),
        functions::phone::RequestCall {
            video: false,
            user_id: types::InputUser {
                user_id: 1002,
                access_hash: 5,
            }
            .into(),
            random_id: 99,
            g_a_hash: vec![0x5a; 32],
            protocol: protocol(),
        }
        .to_bytes(Layer::LATEST),
        functions::phone::SendSignalingData {
            peer,
            data: vec![3; 120],
        }
        .to_bytes(Layer::LATEST),
        functions::Ping { ping_id: 123 }.to_bytes(Layer::LATEST),
    ];
    MsgContainer {
        messages: bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Message {
                msg_id: (1_764_000_000i64 << 32) + 4 * i as i64,
                seqno: 2 * i as i32 + 1,
                body,
            })
            .collect(),
    }
}

/// grammers has no public container codec: read the frame the same way and decode each body by
/// its id with grammers' function types.
fn grammers_container(bytes: &[u8]) -> usize {
    let mut pos = 8;
    let count = i32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let mut decoded = 0;
    for _ in 0..count {
        let len = i32::from_le_bytes(bytes[pos + 12..pos + 16].try_into().unwrap()) as usize;
        let body = &bytes[pos + 16..pos + 16 + len];
        let id = u32::from_le_bytes(body[..4].try_into().unwrap());
        let ok = match id {
            0x17d54f61 => gt::functions::phone::ReceivedCall::from_bytes(&body[4..]).is_ok(),
            0x42ff96ed => gt::functions::phone::RequestCall::from_bytes(&body[4..]).is_ok(),
            0xff7a9383 => gt::functions::phone::SendSignalingData::from_bytes(&body[4..]).is_ok(),
            0x7abe77ec => <i64 as Deserializable>::from_bytes(&body[4..]).is_ok(),
            _ => false,
        };
        decoded += usize::from(ok);
        pos += 16 + len;
    }
    decoded
}

fn ours_container(bytes: &[u8]) -> usize {
    tl::service::read_container(bytes)
        .expect("container")
        .iter()
        .filter(|m| functions::Request::from_bytes(m.body).is_ok())
        .count()
}

/// Best (lowest) nanoseconds per call of `f` over `rounds` rounds of `iters` calls.
fn time(rounds: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(start.elapsed().as_nanos() as f64 / iters as f64);
    }
    best
}

struct Row {
    name: &'static str,
    bytes: usize,
    ours_enc: f64,
    theirs_enc: f64,
    ours_dec: f64,
    theirs_dec: f64,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, iters) = if quick { (1, 200) } else { (7, 200_000) };
    let mut rows = Vec::new();

    let call = phone_call_result();
    let bytes = call.to_bytes(Layer::LATEST);
    let theirs =
        gt::enums::phone::PhoneCall::from_bytes(&bytes).expect("grammers decodes mtcall's bytes");
    assert_eq!(
        theirs.to_bytes(),
        bytes,
        "both codecs agree on phone.phoneCall"
    );
    rows.push(Row {
        name: "phone.phoneCall{phoneCall, 2 users}",
        bytes: bytes.len(),
        ours_enc: time(rounds, iters, || {
            black_box(black_box(&call).to_bytes(Layer::LATEST));
        }),
        theirs_enc: time(rounds, iters, || {
            black_box(black_box(&theirs).to_bytes());
        }),
        ours_dec: time(rounds, iters, || {
            let _ = black_box(enums::phone::PhoneCall::from_bytes(black_box(&bytes)));
        }),
        theirs_dec: time(rounds, iters, || {
            let _ = black_box(gt::enums::phone::PhoneCall::from_bytes(black_box(&bytes)));
        }),
    });

    let push = updates_push();
    let bytes = push.to_bytes(Layer::LATEST);
    let theirs = gt::enums::Updates::from_bytes(&bytes).expect("grammers decodes mtcall's bytes");
    assert_eq!(theirs.to_bytes(), bytes, "both codecs agree on updates");
    rows.push(Row {
        name: "updates{updatePhoneCall(requested), 2 users}",
        bytes: bytes.len(),
        ours_enc: time(rounds, iters, || {
            black_box(black_box(&push).to_bytes(Layer::LATEST));
        }),
        theirs_enc: time(rounds, iters, || {
            black_box(black_box(&theirs).to_bytes());
        }),
        ours_dec: time(rounds, iters, || {
            let _ = black_box(enums::Updates::from_bytes(black_box(&bytes)));
        }),
        theirs_dec: time(rounds, iters, || {
            let _ = black_box(gt::enums::Updates::from_bytes(black_box(&bytes)));
        }),
    });

    let c = container();
    let bytes = c.to_bytes(Layer::LATEST);
    assert_eq!(ours_container(&bytes), 4);
    assert_eq!(
        grammers_container(&bytes),
        4,
        "grammers decodes every request"
    );
    // Encoding: both sides serialise the same four requests into a container frame.
    let theirs_requests: (
        gt::functions::phone::ReceivedCall,
        gt::functions::phone::RequestCall,
        gt::functions::phone::SendSignalingData,
    ) = {
        let body = |i: usize| c.messages[i].body[4..].to_vec();
        (
            gt::functions::phone::ReceivedCall::from_bytes(&body(0)).unwrap(),
            gt::functions::phone::RequestCall::from_bytes(&body(1)).unwrap(),
            gt::functions::phone::SendSignalingData::from_bytes(&body(2)).unwrap(),
        )
    };
    let theirs_encode = |out: &mut Vec<u8>| {
        out.extend_from_slice(&0x73f1f8dcu32.to_le_bytes());
        out.extend_from_slice(&4i32.to_le_bytes());
        let bodies: [Vec<u8>; 4] = [
            theirs_requests.0.to_bytes(),
            theirs_requests.1.to_bytes(),
            theirs_requests.2.to_bytes(),
            [
                0x7abe77ecu32.to_le_bytes().as_slice(),
                123i64.to_le_bytes().as_slice(),
            ]
            .concat(),
        ];
        for (i, b) in bodies.iter().enumerate() {
            out.extend_from_slice(&((1_764_000_000i64 << 32) + 4 * i as i64).to_le_bytes());
            out.extend_from_slice(&(2 * i as i32 + 1).to_le_bytes());
            out.extend_from_slice(&(b.len() as i32).to_le_bytes());
            out.extend_from_slice(b);
        }
    };
    let mut check = Vec::new();
    theirs_encode(&mut check);
    assert_eq!(check, bytes, "both codecs agree on the container");
    let requests: Vec<functions::Request> = c
        .messages
        .iter()
        .map(|m| functions::Request::from_bytes(&m.body).unwrap())
        .collect();
    rows.push(Row {
        name: "msg_container of 4 requests",
        bytes: bytes.len(),
        ours_enc: time(rounds, iters, || {
            let frame = MsgContainer {
                messages: requests
                    .iter()
                    .enumerate()
                    .map(|(i, r)| Message {
                        msg_id: (1_764_000_000i64 << 32) + 4 * i as i64,
                        seqno: 2 * i as i32 + 1,
                        body: r.to_bytes(Layer::LATEST),
                    })
                    .collect(),
            };
            black_box(frame.to_bytes(Layer::LATEST));
        }),
        theirs_enc: time(rounds, iters, || {
            let mut out = Vec::new();
            theirs_encode(&mut out);
            black_box(out);
        }),
        ours_dec: time(rounds, iters, || {
            black_box(ours_container(black_box(&bytes)));
        }),
        theirs_dec: time(rounds, iters, || {
            black_box(grammers_container(black_box(&bytes)));
        }),
    });

    println!(
        "mtcall TL codec vs grammers-tl-types 0.11 (ns per operation, best of {rounds} x {iters}; ratio = mtcall / grammers)"
    );
    println!(
        "| message | bytes | encode mtcall | encode grammers | ratio | decode mtcall | decode grammers | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {:.2} |",
            r.name,
            r.bytes,
            r.ours_enc,
            r.theirs_enc,
            r.ours_enc / r.theirs_enc,
            r.ours_dec,
            r.theirs_dec,
            r.ours_dec / r.theirs_dec
        );
    }
}
