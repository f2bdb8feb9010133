//! The hostile-input suite: named cases of bad input over real TCP, each with the
//! answer mtcall documents for it (SECURITY.md), and after every case a bystander — a client
//! connected and logged in before it — must still be served. Transport garbage closes the
//! connection; an unknown key gets -404; session violations get their `bad_msg_notification`
//! code; undecodable requests get typed `rpc_error`s; access violations get Telegram's error
//! names; floods get -429.

mod support;

use std::time::Duration;

use mtproto::crypto::{Entropy, OsEntropy};
use mtproto::handshake::{ClientHandshake, RsaScheme, plain};
use mtproto::session::ServerMessage;
use mtproto::transport::{ClientFrame, Kind};
use server::Config;
use server::limits::LimitSettings;
use support::*;
use tl::{Decode, Encode, Layer, enums, functions, types};
use tokio::io::AsyncWriteExt;

/// What the server did with a case's input.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Closed the connection.
    Closed,
    /// Sent a transport error code.
    Transport(i32),
    /// `bad_msg_notification` with this code (48: `bad_server_salt`).
    BadMsg(i32),
    /// `rpc_error` with this name.
    Rpc(String),
    /// A result.
    Result,
    /// Nothing within a second (e.g. a repeated message is only acknowledged).
    Nothing,
}

/// Reads what comes back on a raw connection: a close, a transport error, or a packet.
async fn raw_answer(raw: &mut Raw) -> Answer {
    match tokio::time::timeout(Duration::from_secs(5), raw.recv()).await {
        Ok(Ok(None)) | Ok(Err(_)) => Answer::Closed,
        Ok(Ok(Some(ClientFrame::Error(code)))) => Answer::Transport(code),
        Ok(Ok(Some(_))) => Answer::Result,
        Err(_) => Answer::Nothing,
    }
}

/// Bytes on a fresh connection of `kind` (the transport's header is sent first).
async fn bytes_answer(server: &TestServer, kind: Kind, bytes: &[u8], eof: bool) -> Answer {
    let mut raw = Raw::connect(server.addr, kind, false).await.unwrap();
    // The client transport writes its header with the first frame: send an empty-looking
    // prefix by encoding nothing, then the hostile bytes as they are.
    let mut header = Vec::new();
    raw.transport.encode(&[], false, &mut header);
    let prefix = header.len().saturating_sub(match kind {
        Kind::Abridged => 1,
        Kind::Intermediate | Kind::PaddedIntermediate => 4,
        Kind::Full => 12,
    });
    raw.stream.write_all(&header[..prefix]).await.unwrap();
    raw.stream.write_all(bytes).await.unwrap();
    if eof {
        raw.stream.shutdown().await.unwrap();
    }
    raw_answer(&mut raw).await
}

/// Sends one encrypted message with exactly these fields; returns the server's answer to it.
async fn message_answer(c: &mut Client, msg_id: i64, seqno: i32, body: &[u8]) -> Answer {
    let packet = c
        .session
        .encrypt_message(msg_id, seqno, body, &mut OsEntropy);
    packet_answer(c, &packet, msg_id).await
}

async fn packet_answer(c: &mut Client, packet: &[u8], msg_id: i64) -> Answer {
    if c.raw.send(packet).await.is_err() {
        return Answer::Closed;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let packet = match c.raw.recv_packet_within(left).await {
            Ok(p) => p,
            Err(ClientError::Timeout) => return Answer::Nothing,
            Err(ClientError::TransportCode(code)) => return Answer::Transport(code),
            Err(_) => return Answer::Closed,
        };
        let Ok(messages) = c.session.decrypt(&packet[..]) else {
            return Answer::Closed;
        };
        for m in messages {
            match m {
                ServerMessage::BadMsg { bad_msg_id, code } if bad_msg_id == msg_id => {
                    return Answer::BadMsg(code);
                }
                ServerMessage::BadServerSalt { bad_msg_id, .. } if bad_msg_id == msg_id => {
                    return Answer::BadMsg(48);
                }
                ServerMessage::RpcResult { req_msg_id, result } if req_msg_id == msg_id => {
                    return match result {
                        Ok(_) => Answer::Result,
                        Err((_, name)) => Answer::Rpc(name),
                    };
                }
                _ => {}
            }
        }
    }
}

/// A valid message id for now, and the seqno of a content message.
fn next(c: &mut Client) -> (i64, i32) {
    c.session.next_id(now_ms(), true)
}

async fn request_answer(c: &mut Client, body: &[u8]) -> Answer {
    let (id, seqno) = next(c);
    message_answer(c, id, seqno, body).await
}

fn get_nearest_dc() -> Vec<u8> {
    functions::help::GetNearestDc {}.to_bytes(Layer::LATEST)
}

/// `users.getUsers` with a hand-written vector length.
fn get_users_with_length(len: i32) -> Vec<u8> {
    let mut b = functions::users::GetUsers { id: vec![] }.to_bytes(Layer::LATEST);
    b.truncate(b.len() - 4);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

fn deep_json(depth: usize) -> Vec<u8> {
    let mut value = enums::JSONValue::from(types::JsonNull {});
    for _ in 0..depth {
        value = types::JsonArray { value: vec![value] }.into();
    }
    functions::InitConnection {
        api_id: 1,
        device_model: "x".into(),
        system_version: "x".into(),
        app_version: "x".into(),
        system_lang_code: "en".into(),
        lang_pack: String::new(),
        lang_code: "en".into(),
        proxy: None,
        params: Some(value),
        query: tl::Raw(get_nearest_dc()),
    }
    .to_bytes(Layer::LATEST)
}

fn gzip_bomb() -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 4 << 20]).unwrap();
    let packed = z.finish().unwrap();
    let mut body = tl::service::GZIP_PACKED_ID.to_le_bytes().to_vec();
    tl::Writer::new(&mut body, Layer::LATEST).put_bytes(&packed);
    body
}

/// The answer to a handshake whose `req_DH_params` is tampered with by `tamper`.
async fn handshake_answer(
    server: &TestServer,
    tamper: impl FnOnce(&mut functions::ReqDHParams),
) -> Answer {
    let mut raw = Raw::connect(server.addr, Kind::Intermediate, false)
        .await
        .unwrap();
    let (mut hs, req_pq) = ClientHandshake::start(RsaScheme::Pad, 2, None, &mut OsEntropy);
    let res_pq = raw.plain_call(&req_pq).await.unwrap();
    let req = hs
        .on_res_pq(&res_pq, &[server.public_key()], &mut OsEntropy)
        .unwrap();
    let functions::Request::ReqDHParams(mut params) = functions::Request::from_bytes(&req).unwrap()
    else {
        panic!("not req_DH_params")
    };
    tamper(&mut params);
    let msg_id = (now_ms() / 1000) << 32;
    raw.send(&plain::encode(msg_id, &params.to_bytes(Layer::LATEST)))
        .await
        .unwrap();
    raw_answer(&mut raw).await
}

struct Case {
    name: &'static str,
    expected: Answer,
    got: Answer,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_get_their_documented_answers_and_others_are_served() {
    let server = TestServer::start_with(Config {
        handshake_timeout_secs: 2,
        limits: LimitSettings {
            exempt_loopback: false,
            connections_per_ip: 60,
            handshakes_per_second: 0.0,
            requests_per_second: 0.0,
            user_requests_per_second: 0.0,
            ..LimitSettings::default()
        },
        ..Config::default()
    })
    .await;
    let mut bystander = connect(&server, Kind::Full, false).await;
    bystander.login("9996696001", "Bystander").await.unwrap();
    let mut cases: Vec<Case> = Vec::new();
    macro_rules! case {
        ($name:expr, $expected:expr, $got:expr) => {{
            let got = $got;
            cases.push(Case {
                name: $name,
                expected: $expected,
                got,
            });
            // Another client is still served after every case.
            bystander
                .call(&functions::help::GetNearestDc {})
                .await
                .unwrap_or_else(|e| panic!("the bystander after {}: {e}", $name));
        }};
    }

    // ---------------------------------------------------------------- transport
    case!(
        "an HTTP request",
        Answer::Closed,
        bytes_answer(
            &server,
            Kind::Full,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            false
        )
        .await
    );
    case!(
        "an intermediate length bomb (2 GiB)",
        Answer::Closed,
        bytes_answer(
            &server,
            Kind::Intermediate,
            &0x7fff_fff0u32.to_le_bytes(),
            false
        )
        .await
    );
    case!(
        "an abridged length bomb (64 MiB)",
        Answer::Closed,
        bytes_answer(&server, Kind::Abridged, &[0x7f, 0xff, 0xff, 0xff], false).await
    );
    case!(
        "a zero-length frame",
        Answer::Closed,
        bytes_answer(&server, Kind::Intermediate, &0u32.to_le_bytes(), false).await
    );
    case!(
        "a frame over the size limit (2 MiB)",
        Answer::Closed,
        bytes_answer(
            &server,
            Kind::Intermediate,
            &(2u32 << 20).to_le_bytes(),
            false
        )
        .await
    );
    case!(
        "a truncated frame, then end of stream",
        Answer::Closed,
        bytes_answer(
            &server,
            Kind::Intermediate,
            &[100, 0, 0, 0, 1, 2, 3, 4],
            true
        )
        .await
    );
    {
        // full transport: length, seq 0, payload, then a wrong CRC32
        let mut f = 16u32.to_le_bytes().to_vec();
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend_from_slice(&0xdead_beefu32.to_le_bytes());
        case!(
            "a full-transport frame with a bad CRC",
            Answer::Closed,
            bytes_answer(&server, Kind::Full, &f, false).await
        );
    }
    {
        // an obfuscation header whose protocol tag decrypts to nothing known
        let mut raw = Raw::connect(server.addr, Kind::Intermediate, false)
            .await
            .unwrap();
        let mut header: [u8; 64] = OsEntropy.array();
        header[0] = 0x12;
        raw.stream.write_all(&header).await.unwrap();
        raw.stream.write_all(&[0u8; 64]).await.unwrap();
        case!(
            "an obfuscation header with an unknown protocol tag",
            Answer::Closed,
            raw_answer(&mut raw).await
        );
    }
    {
        let mut raw = Raw::connect(server.addr, Kind::Intermediate, false)
            .await
            .unwrap();
        let mut packet = 0x1234_5678_9abc_def0u64.to_le_bytes().to_vec();
        packet.extend_from_slice(&[0u8; 72]);
        raw.send(&packet).await.unwrap();
        case!(
            "an unknown auth_key_id",
            Answer::Transport(-404),
            raw_answer(&mut raw).await
        );
    }
    {
        let mut raw = Raw::connect(server.addr, Kind::Intermediate, false)
            .await
            .unwrap();
        raw.send(&[0u8; 8]).await.unwrap();
        case!(
            "a plain message too short for its header",
            Answer::Closed,
            raw_answer(&mut raw).await
        );
    }

    // ---------------------------------------------------------------- handshake
    case!(
        "req_DH_params with the wrong nonce",
        Answer::Closed,
        handshake_answer(&server, |p| p.nonce = [7; 16]).await
    );
    case!(
        "req_DH_params with the wrong server nonce",
        Answer::Closed,
        handshake_answer(&server, |p| p.server_nonce = [7; 16]).await
    );
    case!(
        "req_DH_params with wrong p and q",
        Answer::Closed,
        handshake_answer(&server, |p| {
            p.p = vec![0, 0, 0, 7];
            p.q = vec![0, 0, 0, 11];
        })
        .await
    );
    case!(
        "req_DH_params with RSA garbage",
        Answer::Closed,
        handshake_answer(&server, |p| p.encrypted_data =
            OsEntropy.array::<256>().to_vec())
        .await
    );
    case!(
        "req_DH_params for a key the server does not have",
        Answer::Closed,
        handshake_answer(&server, |p| p.public_key_fingerprint ^= 1).await
    );
    {
        // Slow loris: a byte at a time, never a whole handshake.
        let mut raw = Raw::connect(server.addr, Kind::Intermediate, false)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let mut closed = false;
        for b in [0xeeu8, 0xee, 0xee, 0xee, 40, 0, 0] {
            if raw.stream.write_all(&[b]).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let answer = if closed {
            Answer::Closed
        } else {
            raw_answer(&mut raw).await
        };
        assert!(started.elapsed() < Duration::from_secs(6));
        case!("a slow-loris handshake", Answer::Closed, answer);
    }

    // ---------------------------------------------------------------- session
    let mut c = connect(&server, Kind::Full, false).await;
    c.call(&functions::help::GetNearestDc {}).await.unwrap();
    {
        let (id, seqno) = next(&mut c);
        let old = id - (400i64 << 32);
        case!(
            "a msg_id from 400 s ago",
            Answer::BadMsg(16),
            message_answer(&mut c, old & !3, seqno, &get_nearest_dc()).await
        );
    }
    {
        let (id, seqno) = next(&mut c);
        case!(
            "a msg_id 60 s ahead",
            Answer::BadMsg(17),
            message_answer(&mut c, (id + (60i64 << 32)) & !3, seqno, &get_nearest_dc()).await
        );
    }
    {
        let (id, seqno) = next(&mut c);
        case!(
            "a server-style msg_id (odd)",
            Answer::BadMsg(18),
            message_answer(&mut c, id | 1, seqno, &get_nearest_dc()).await
        );
    }
    {
        let (id, seqno) = next(&mut c);
        case!(
            "a content message with an even seqno",
            Answer::BadMsg(35),
            message_answer(&mut c, id, seqno & !1, &get_nearest_dc()).await
        );
    }
    {
        let (id, _) = c.session.next_id(now_ms(), false);
        let container = tl::service::MsgContainer {
            messages: vec![tl::service::Message {
                msg_id: next(&mut c).0,
                seqno: 1,
                body: get_nearest_dc(),
            }],
        }
        .to_bytes(Layer::LATEST);
        case!(
            "a container with an odd seqno",
            Answer::BadMsg(34),
            message_answer(&mut c, id, 1, &container).await
        );
    }
    {
        let (id, seqno) = next(&mut c);
        let packet = c
            .session
            .encrypt_message(id, seqno, &get_nearest_dc(), &mut OsEntropy);
        assert_eq!(packet_answer(&mut c, &packet, id).await, Answer::Result);
        case!(
            "a replayed message",
            Answer::Nothing,
            packet_answer(&mut c, &packet, id).await
        );
    }
    {
        let inner = tl::service::MsgContainer {
            messages: vec![tl::service::Message {
                msg_id: next(&mut c).0,
                seqno: 1,
                body: get_nearest_dc(),
            }],
        }
        .to_bytes(Layer::LATEST);
        let (id, _) = c.session.next_id(now_ms(), false);
        let outer = tl::service::MsgContainer {
            messages: vec![tl::service::Message {
                msg_id: id,
                seqno: 2,
                body: inner,
            }],
        }
        .to_bytes(Layer::LATEST);
        let (cid, _) = c.session.next_id(now_ms(), false);
        let packet = c.session.encrypt_message(cid, 4, &outer, &mut OsEntropy);
        // The refusal names the message whose body is the nested container.
        case!(
            "a container inside a container",
            Answer::BadMsg(64),
            packet_answer(&mut c, &packet, id).await
        );
    }
    case!(
        "a gzip bomb (4 MiB of zeros)",
        Answer::Rpc("INPUT_GZIP_INVALID".into()),
        request_answer(&mut c, &gzip_bomb()).await
    );
    {
        let salt = c.session.salt();
        c.session.set_salt(salt ^ 0x5555);
        case!(
            "a wrong server salt",
            Answer::BadMsg(48),
            request_answer(&mut c, &get_nearest_dc()).await
        );
        c.session.set_salt(salt);
    }
    {
        let (id, seqno) = next(&mut c);
        let mut packet = c
            .session
            .encrypt_message(id, seqno, &get_nearest_dc(), &mut OsEntropy);
        packet[8] ^= 0x01; // msg_key
        case!(
            "a wrong msg_key",
            Answer::Closed,
            packet_answer(&mut c, &packet, id).await
        );
    }

    // ---------------------------------------------------------------- TL
    // Each on a fresh connection of the same user, so one case's close cannot hide another's.
    let mut c = connect(&server, Kind::Intermediate, false).await;
    c.login("9996696002", "Mallory").await.unwrap();
    let mallory = *c.session.auth_key().bytes();
    macro_rules! fresh {
        () => {{
            let mut m = Client::resume(server.addr, mallory).await.unwrap();
            m.call(&functions::help::GetNearestDc {}).await.unwrap();
            m
        }};
    }
    case!(
        "an unknown constructor",
        Answer::Rpc("INPUT_METHOD_INVALID_3735928559".into()),
        request_answer(&mut c, &0xdead_beefu32.to_le_bytes()).await
    );
    case!(
        "a request cut short",
        Answer::Rpc("INPUT_FETCH_ERROR".into()),
        request_answer(&mut fresh!(), &get_users_with_length(1)).await
    );
    case!(
        "a negative vector length",
        Answer::Rpc("INPUT_FETCH_ERROR".into()),
        request_answer(&mut fresh!(), &get_users_with_length(-1)).await
    );
    case!(
        "a huge vector length",
        Answer::Rpc("INPUT_FETCH_ERROR".into()),
        request_answer(&mut fresh!(), &get_users_with_length(i32::MAX)).await
    );
    case!(
        "a JSONValue nested 1,000 deep",
        Answer::Rpc("INPUT_FETCH_ERROR".into()),
        request_answer(&mut fresh!(), &deep_json(1000)).await
    );
    {
        let mut body = functions::contacts::ResolveUsername {
            username: "abcdefg".into(),
            referer: None,
        }
        .to_bytes(Layer::LATEST);
        let at = body.len() - 4;
        body[at] = 0xff; // inside the string: no longer UTF-8
        case!(
            "a string that is not UTF-8",
            Answer::Rpc("INPUT_FETCH_ERROR".into()),
            request_answer(&mut fresh!(), &body).await
        );
    }
    {
        // flags announce a referer that is not there
        let mut body = functions::contacts::ResolveUsername {
            username: "abcdefg".into(),
            referer: None,
        }
        .to_bytes(Layer::LATEST);
        body[4] |= 1;
        case!(
            "flags naming a field that is missing",
            Answer::Rpc("INPUT_FETCH_ERROR".into()),
            request_answer(&mut fresh!(), &body).await
        );
    }

    // ---------------------------------------------------------------- access
    {
        let mut anonymous = connect(&server, Kind::Abridged, false).await;
        anonymous
            .call(&functions::help::GetNearestDc {})
            .await
            .unwrap();
        let body = functions::phone::ReceivedCall {
            peer: types::InputPhoneCall {
                id: 1,
                access_hash: 1,
            }
            .into(),
        }
        .to_bytes(Layer::LATEST);
        case!(
            "phone.receivedCall without logging in",
            Answer::Rpc("AUTH_KEY_UNREGISTERED".into()),
            request_answer(&mut anonymous, &body).await
        );
    }
    let mut c = fresh!();
    {
        let real = user_of(&mut c, "9996696001").await;
        let enums::InputUser::InputUser(mut forged) = real else {
            panic!("an input user")
        };
        forged.access_hash ^= 1;
        let body = functions::phone::RequestCall {
            video: false,
            user_id: forged.into(),
            random_id: 1,
            g_a_hash: vec![0; 32],
            protocol: client::calls::default_protocol(),
        }
        .to_bytes(Layer::LATEST);
        case!(
            "a forged access hash",
            Answer::Rpc("USER_ID_INVALID".into()),
            request_answer(&mut c, &body).await
        );
    }
    {
        // Someone else's call: Alice calls the bystander; Mallory tries to take it.
        let mut alice = connect(&server, Kind::Full, false).await;
        alice.login("9996696003", "Alice").await.unwrap();
        let target = user_of(&mut alice, "9996696001").await;
        let call = alice.place_call(target, false).await.unwrap();
        let body = functions::phone::AcceptCall {
            peer: types::InputPhoneCall {
                id: call.id,
                access_hash: call.access_hash,
            }
            .into(),
            g_b: vec![9; 256],
            protocol: client::calls::default_protocol(),
        }
        .to_bytes(Layer::LATEST);
        case!(
            "accepting someone else's call",
            Answer::Rpc("CALL_PEER_INVALID".into()),
            request_answer(&mut c, &body).await
        );
        call.cancel(&mut alice).await.unwrap();
    }

    // ---------------------------------------------------------------- floods
    {
        // Connections from one address beyond its limit (60, bystander and others included).
        let mut conns = Vec::new();
        for _ in 0..80 {
            conns.push(
                Raw::connect(server.addr, Kind::Intermediate, false)
                    .await
                    .unwrap(),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut open = Vec::new();
        let mut refused = 0;
        for mut raw in conns {
            match tokio::time::timeout(Duration::from_millis(50), raw.recv()).await {
                Ok(Ok(Some(ClientFrame::Error(-429)))) | Ok(Ok(None)) | Ok(Err(_)) => refused += 1,
                _ => open.push(raw),
            }
        }
        eprintln!("80 connections: {} open, {refused} refused", open.len());
        let answer = if refused > 0 && open.len() < 60 {
            Answer::Transport(-429)
        } else {
            Answer::Result
        };
        case!(
            "80 connections from one address",
            Answer::Transport(-429),
            answer
        );
    }

    let failed: Vec<String> = cases
        .iter()
        .filter(|c| c.got != c.expected)
        .map(|c| format!("{}: expected {:?}, got {:?}", c.name, c.expected, c.got))
        .collect();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
