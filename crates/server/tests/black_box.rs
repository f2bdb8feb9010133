//! Black-box tests over real TCP against the real server: the handshake and service messages
//! byte by byte, login, users, pushes, restarts. Clients here are the sans-IO client role of
//! the `mtproto` crate driven by a small test harness (`support`).

mod support;

use mtproto::handshake::RsaScheme;
use mtproto::transport::{ClientFrame, Kind};
use support::*;
use tl::{Decode, Encode, Layer, enums, functions, types};

#[tokio::test]
async fn first_bytes_get_res_pq_with_the_server_fingerprint() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(server.addr, Kind::Full, false).await.unwrap();
    let nonce = [0x11u8; 16];
    let answer = raw
        .plain_call(&functions::ReqPqMulti { nonce }.to_bytes(Layer::LATEST))
        .await
        .unwrap();
    assert_eq!(
        &answer[..4],
        &0x05162463u32.to_le_bytes(),
        "resPQ constructor"
    );
    assert_eq!(&answer[4..20], &nonce, "nonce echoed");
    let enums::ResPQ::ResPQ(res) = enums::ResPQ::from_bytes(&answer).unwrap();
    assert_eq!(res.pq.len(), 8);
    assert_eq!(
        res.server_public_key_fingerprints,
        vec![server.public_key().fingerprint()]
    );
    let pq = u64::from_be_bytes(res.pq.try_into().unwrap());
    let (p, q) = mtproto::crypto::pq::factorize(pq).unwrap();
    assert!(
        p > 1 << 30 && q < 1 << 31 && pq < 1 << 62,
        "pq reads as a positive int64"
    );
}

#[tokio::test]
async fn every_transport_and_both_rsa_schemes_create_keys() {
    let server = TestServer::start().await;
    let key = server.public_key();
    let transports = [
        (Kind::Full, false),
        (Kind::Intermediate, false),
        (Kind::PaddedIntermediate, false),
        (Kind::Abridged, false),
        (Kind::Abridged, true),
        (Kind::Intermediate, true),
        (Kind::PaddedIntermediate, true),
    ];
    for (kind, obfuscated) in transports {
        for scheme in [RsaScheme::Pad, RsaScheme::Legacy] {
            let mut raw = Raw::connect(server.addr, kind, obfuscated).await.unwrap();
            let k = raw.handshake(&key, scheme, None).await.unwrap();
            let mut client = Client::from_parts(
                raw,
                mtproto::session::ClientSession::new(
                    k.auth_key,
                    k.first_salt,
                    k.time_offset,
                    &mut mtproto::crypto::OsEntropy,
                ),
            );
            let enums::Config::Config(config) =
                client.call(&functions::help::GetConfig {}).await.unwrap();
            assert_eq!(config.dc_options.iter().filter(|o| matches!(o, enums::DcOption::DcOption(d) if d.port == i32::from(server.addr.port()))).count(), 2);
            assert_eq!(
                config.call_receive_timeout_ms, 20_000,
                "{kind:?} {obfuscated} {scheme:?}"
            );
        }
    }
}

#[tokio::test]
async fn several_handshakes_on_one_connection() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(server.addr, Kind::Full, false).await.unwrap();
    let a = raw
        .handshake(&server.public_key(), RsaScheme::Legacy, None)
        .await
        .unwrap();
    let b = raw
        .handshake(&server.public_key(), RsaScheme::Pad, None)
        .await
        .unwrap();
    assert_ne!(a.auth_key.id(), b.auth_key.id());
}

#[tokio::test]
async fn unknown_auth_key_gets_transport_error_404() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(server.addr, Kind::Intermediate, false)
        .await
        .unwrap();
    let mut packet = 0x0102030405060708i64.to_le_bytes().to_vec();
    packet.extend_from_slice(&[0u8; 48]);
    raw.send(&packet).await.unwrap();
    assert_eq!(raw.recv().await.unwrap(), Some(ClientFrame::Error(-404)));
}

#[tokio::test]
async fn garbage_and_http_close_the_connection() {
    let server = TestServer::start().await;
    for bytes in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0xee, 0xee, 0xee, 0xee, 0xff, 0xff, 0xff, 0x7f][..],
    ] {
        let mut raw = Raw::connect(server.addr, Kind::Full, false).await.unwrap();
        use tokio::io::AsyncWriteExt;
        raw.stream.write_all(bytes).await.unwrap();
        assert_eq!(raw.recv().await.unwrap(), None, "closed");
    }
    // The server still serves others.
    let mut c = connect(&server, Kind::Full, false).await;
    assert!(c.call(&functions::help::GetNearestDc {}).await.is_ok());
}

#[tokio::test]
async fn service_messages_over_tcp() {
    let server = TestServer::start().await;
    let mut c = connect(&server, Kind::Abridged, false).await;
    c.call(&functions::help::GetConfig {}).await.unwrap();
    // ping → bare pong (not an rpc_result)
    let (ids, packet) = c.session.encrypt(
        &[functions::Ping { ping_id: 99 }.to_bytes(Layer::LATEST)],
        now_ms(),
        &mut mtproto::crypto::OsEntropy,
    );
    c.raw.send(&packet).await.unwrap();
    let mut got_pong = false;
    while !got_pong {
        let p = c.raw.recv_packet().await.unwrap();
        for m in c.session.decrypt(&p[..]).unwrap() {
            if m == (mtproto::session::ServerMessage::Pong {
                msg_id: ids[0],
                ping_id: 99,
            }) {
                got_pong = true;
            }
        }
    }
    // get_future_salts → 64 salts, each accepted.
    let (_, packet) = c.session.encrypt(
        &[functions::GetFutureSalts { num: 64 }.to_bytes(Layer::LATEST)],
        now_ms(),
        &mut mtproto::crypto::OsEntropy,
    );
    c.raw.send(&packet).await.unwrap();
    let salts = loop {
        let p = c.raw.recv_packet().await.unwrap();
        if let Some(s) = c
            .session
            .decrypt(&p[..])
            .unwrap()
            .into_iter()
            .find_map(|m| match m {
                mtproto::session::ServerMessage::FutureSalts(f) => Some(f.salts),
                _ => None,
            })
        {
            break s;
        }
    };
    assert_eq!(salts.len(), 64);
    c.session.set_salt(salts[63].salt);
    assert!(c.call(&functions::help::GetNearestDc {}).await.is_ok());
}

#[tokio::test]
async fn unauthorised_calls_and_unknown_methods_are_typed_errors() {
    let server = TestServer::start().await;
    let mut c = connect(&server, Kind::Full, false).await;
    let peer: enums::InputPhoneCall = types::InputPhoneCall {
        id: 42,
        access_hash: 4242,
    }
    .into();
    assert_eq!(
        c.call(&functions::phone::ReceivedCall { peer })
            .await
            .rpc_err(),
        (401, "AUTH_KEY_UNREGISTERED".into())
    );
    assert_eq!(
        c.call(&functions::users::GetUsers {
            id: vec![types::InputUserSelf {}.into()]
        })
        .await
        .rpc_err()
        .0,
        401
    );
    assert_eq!(
        c.call_raw(0xdeadbeefu32.to_le_bytes().to_vec())
            .await
            .rpc_err(),
        (400, format!("INPUT_METHOD_INVALID_{}", 0xdeadbeefu32))
    );
    // The session goes on.
    assert!(c.call(&functions::help::GetConfig {}).await.is_ok());
}

#[tokio::test]
async fn login_resolve_and_access_hashes() {
    let server = TestServer::start().await;
    let mut alice = connect(&server, Kind::Full, false).await;
    let a = alice.login("9996611111", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Intermediate, false).await;
    let b = bob.login("9996612222", "Bob").await.unwrap();
    assert!(user_id(&b) > user_id(&a));

    // Signing in again finds the same account.
    let mut alice2 = connect(&server, Kind::Full, false).await;
    assert_eq!(
        user_id(&alice2.login("9996611111", "ignored").await.unwrap()),
        user_id(&a)
    );

    // A wrong code.
    let enums::auth::SentCode::SentCode(sent) = bob
        .call(&functions::auth::SendCode {
            phone_number: "+1 555 0003".into(),
            api_id: 1,
            api_hash: "h".into(),
            settings: types::CodeSettings::default().into(),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    let wrong = functions::auth::SignIn {
        phone_number: "15550003".into(),
        phone_code_hash: sent.phone_code_hash,
        phone_code: Some("00000".into()),
        email_verification: None,
    };
    let e = bob.call(&wrong).await.rpc_err();
    assert!(
        e == (400, "PHONE_CODE_INVALID".into()) || e == (400, "PHONE_CODE_EXPIRED".into()),
        "{e:?}"
    );

    // Username and resolving.
    assert!(
        alice
            .call(&functions::account::UpdateUsername {
                username: "alice_t".into()
            })
            .await
            .is_ok()
    );
    assert_eq!(
        alice
            .call(&functions::account::UpdateUsername {
                username: "alice_t".into()
            })
            .await
            .rpc_err()
            .1,
        "USERNAME_NOT_MODIFIED"
    );
    assert_eq!(
        bob.call(&functions::account::UpdateUsername {
            username: "ALICE_T".into()
        })
        .await
        .rpc_err()
        .1,
        "USERNAME_OCCUPIED"
    );
    assert!(
        !bob.call(&functions::account::CheckUsername {
            username: "alice_t".into()
        })
        .await
        .unwrap()
    );
    let enums::contacts::ResolvedPeer::ResolvedPeer(r) = bob
        .call(&functions::contacts::ResolveUsername {
            username: "@alice_t".into(),
            referer: None,
        })
        .await
        .unwrap();
    let enums::User::User(seen) = &r.users[0] else {
        panic!()
    };
    assert_eq!(seen.id, user_id(&a));
    assert_eq!(seen.phone, None, "not a contact: no phone");
    let hash = seen.access_hash.unwrap();
    let enums::contacts::ResolvedPeer::ResolvedPeer(r2) = bob
        .call(&functions::contacts::ResolvePhone {
            phone: "9996611111".into(),
        })
        .await
        .unwrap();
    assert_eq!(user_id(&r2.users[0]), user_id(&a));
    assert_eq!(
        bob.call(&functions::contacts::ResolvePhone {
            phone: "15559999".into()
        })
        .await
        .rpc_err()
        .1,
        "PHONE_NOT_OCCUPIED"
    );
    assert_eq!(
        bob.call(&functions::contacts::ResolveUsername {
            username: "nobody_here".into(),
            referer: None
        })
        .await
        .rpc_err()
        .1,
        "USERNAME_NOT_OCCUPIED"
    );

    // The access hash works; a forged one is refused.
    let ok = bob
        .call(&functions::users::GetUsers {
            id: vec![
                types::InputUser {
                    user_id: user_id(&a),
                    access_hash: hash,
                }
                .into(),
            ],
        })
        .await
        .unwrap();
    assert_eq!(ok.len(), 1);
    let forged = bob
        .call(&functions::users::GetUsers {
            id: vec![
                types::InputUser {
                    user_id: user_id(&a),
                    access_hash: hash ^ 1,
                }
                .into(),
            ],
        })
        .await;
    assert_eq!(forged.rpc_err(), (400, "USER_ID_INVALID".into()));
    // Alice's own hash for herself is not Bob's hash for her.
    let enums::User::User(me) = &alice
        .call(&functions::users::GetUsers {
            id: vec![types::InputUserSelf {}.into()],
        })
        .await
        .unwrap()[0]
    else {
        panic!()
    };
    assert!(me.is_self && me.phone.is_some());
    assert_ne!(me.access_hash, Some(hash));

    // Contacts: after importing, Bob sees Alice's phone.
    let enums::contacts::ImportedContacts::ImportedContacts(imp) = bob
        .call(&functions::contacts::ImportContacts {
            contacts: vec![
                types::InputPhoneContact {
                    client_id: 7,
                    phone: "+9996611111".into(),
                    first_name: "A".into(),
                    last_name: String::new(),
                    note: None,
                }
                .into(),
            ],
        })
        .await
        .unwrap();
    assert_eq!(imp.imported.len(), 1);
    let enums::User::User(as_contact) = &imp.users[0] else {
        panic!()
    };
    assert!(as_contact.contact && as_contact.phone.is_some());

    // Full user.
    let enums::users::UserFull::UserFull(full) = bob
        .call(&functions::users::GetFullUser {
            id: types::InputUser {
                user_id: user_id(&a),
                access_hash: hash,
            }
            .into(),
        })
        .await
        .unwrap();
    let enums::UserFull::UserFull(f) = full.full_user;
    assert!(f.phone_calls_available);
}

#[tokio::test]
async fn username_change_is_pushed_to_the_users_other_sessions() {
    let server = TestServer::start().await;
    let mut first = connect(&server, Kind::Full, false).await;
    let me = first.login("9996613333", "Carol").await.unwrap();
    let mut second = connect(&server, Kind::Abridged, true).await;
    second.login("9996613333", "Carol").await.unwrap();
    second
        .call(&functions::account::UpdateUsername {
            username: "carol_c".into(),
        })
        .await
        .unwrap();
    let push = first.next_push().await.unwrap();
    let enums::Updates::Updates(u) = enums::Updates::from_bytes(&push).unwrap() else {
        panic!("expected updates")
    };
    assert_eq!(u.seq, 0);
    let enums::Update::UserName(n) = &u.updates[0] else {
        panic!("expected updateUserName")
    };
    assert_eq!(n.user_id, user_id(&me));
    let enums::Username::Username(name) = &n.usernames[0];
    assert_eq!(name.username, "carol_c");
}

#[tokio::test]
async fn keys_logins_and_layers_survive_a_restart() {
    let mut server = TestServer::start().await;
    let mut c = connect(&server, Kind::Full, false).await;
    // A layer-198 client (GramJS): the server records the layer with the key.
    let init = functions::InitConnection {
        api_id: 1,
        device_model: "test".into(),
        system_version: "1".into(),
        app_version: "1".into(),
        system_lang_code: "en".into(),
        lang_pack: String::new(),
        lang_code: "en".into(),
        proxy: None,
        params: None,
        query: tl::Raw(functions::help::GetConfig {}.to_bytes(Layer::LATEST)),
    };
    c.call_raw(wrap_layer(198, init.to_bytes(Layer::LATEST)))
        .await
        .unwrap();
    c.layer = Layer::exact(198).unwrap();
    let me = c.login("9996614444", "Dave").await.unwrap();
    server.restart().await;
    // Same key, new connection, no initConnection: still layer 198, still logged in.
    c.reconnect().await.unwrap();
    let mut again = c;
    let raw = again
        .call_raw(
            functions::users::GetUsers {
                id: vec![types::InputUserSelf {}.into()],
            }
            .to_bytes(Layer::LATEST),
        )
        .await
        .unwrap();
    assert_eq!(
        &raw[8..12],
        &0x4b46c37eu32.to_le_bytes(),
        "user#4b46c37e is layer 198's form"
    );
    let users: Vec<enums::User> = Decode::from_bytes(&raw).unwrap();
    assert_eq!(user_id(&users[0]), user_id(&me));
}

#[tokio::test]
async fn a_layer_older_than_every_supported_one_is_refused_by_name() {
    let server = TestServer::start().await;
    let mut c = connect(&server, Kind::Full, false).await;
    let query = functions::help::GetConfig {}.to_bytes(Layer::LATEST);
    let err = c
        .call_raw(wrap_layer(Layer::OLDEST.number() - 1, query.clone()))
        .await
        .unwrap_err();
    let want = format!(
        "CONNECTION_LAYER_INVALID_SUPPORTED_{}_TO_{}",
        Layer::OLDEST,
        Layer::LATEST
    );
    assert!(
        matches!(&err, client::ClientError::Rpc { code: 400, message } if *message == want),
        "{err:?}"
    );
    // The oldest one itself is served.
    c.call_raw(wrap_layer(Layer::OLDEST.number(), query))
        .await
        .unwrap();
}

#[tokio::test]
async fn temporary_key_bound_to_a_permanent_one() {
    let server = TestServer::start().await;
    let mut perm = connect(&server, Kind::Full, false).await;
    let me = perm.login("9996615555", "Erin").await.unwrap();
    let perm_key = perm.session.auth_key().clone();

    let mut raw = Raw::connect(server.addr, Kind::Full, false).await.unwrap();
    let temp = raw
        .handshake(&server.public_key(), RsaScheme::Pad, Some(3600))
        .await
        .unwrap();
    let mut t = Client::from_parts(
        raw,
        mtproto::session::ClientSession::new(
            temp.auth_key.clone(),
            temp.first_salt,
            temp.time_offset,
            &mut mtproto::crypto::OsEntropy,
        ),
    );
    assert_eq!(
        t.call(&functions::users::GetUsers {
            id: vec![types::InputUserSelf {}.into()]
        })
        .await
        .rpc_err()
        .0,
        401
    );

    // bind_auth_key_inner, encrypted with the permanent key in MTProto 1.0 form; its msg_id must
    // be the bindTempAuthKey request's own.
    let expires_at = (now_ms() / 1000 + 3600) as i32;
    let nonce = 0x1234_5678;
    let inner = types::BindAuthKeyInner {
        nonce,
        temp_auth_key_id: temp.auth_key.id(),
        perm_auth_key_id: perm_key.id(),
        temp_session_id: t.session.session_id(),
        expires_at,
    };
    // After the salt dance with a harmless call:
    t.call(&functions::help::GetConfig {}).await.unwrap();
    let (claimed, _) = t.session.next_id(now_ms(), true);
    let bind = bind_request(&perm_key, &inner, claimed);
    let result = send_with_id(&mut t, claimed + (1 << 20), &bind).await;
    assert_eq!(
        result.unwrap_err().1,
        "ENCRYPTED_MESSAGE_INVALID",
        "a different msg_id is refused"
    );
    let (claimed, _) = t.session.next_id(now_ms(), true);
    let bind = bind_request(&perm_key, &inner, claimed);
    assert_eq!(
        send_with_id(&mut t, claimed, &bind).await.unwrap(),
        true.to_bytes(Layer::LATEST)
    );
    // The temporary key now acts for the permanent key's user.
    let users = t
        .call(&functions::users::GetUsers {
            id: vec![types::InputUserSelf {}.into()],
        })
        .await
        .unwrap();
    assert_eq!(user_id(&users[0]), user_id(&me));
}

/// `auth.bindTempAuthKey` carrying `inner` encrypted with `perm_key` as MTProto 1.0, claiming
/// message id `msg_id`.
fn bind_request(
    perm_key: &mtproto::crypto::AuthKey,
    inner: &types::BindAuthKeyInner,
    msg_id: i64,
) -> Vec<u8> {
    let body = enums::BindAuthKeyInner::from(inner.clone()).to_bytes(Layer::LATEST);
    let mut plain = Vec::new();
    plain.extend_from_slice(&7i64.to_le_bytes());
    plain.extend_from_slice(&8i64.to_le_bytes());
    plain.extend_from_slice(&msg_id.to_le_bytes());
    plain.extend_from_slice(&0i32.to_le_bytes());
    plain.extend_from_slice(&(body.len() as i32).to_le_bytes());
    plain.extend_from_slice(&body);
    let data_len = plain.len();
    plain.resize(data_len.div_ceil(16) * 16, 0);
    let mut encrypted_message = perm_key.id().to_le_bytes().to_vec();
    encrypted_message.extend_from_slice(&perm_key.encrypt_v1(plain, data_len));
    functions::auth::BindTempAuthKey {
        perm_auth_key_id: perm_key.id(),
        nonce: inner.nonce,
        expires_at: inner.expires_at,
        encrypted_message,
    }
    .to_bytes(Layer::LATEST)
}

/// Sends `body` as a message with exactly `msg_id` and waits for its result.
async fn send_with_id(t: &mut Client, msg_id: i64, body: &[u8]) -> Result<Vec<u8>, (i32, String)> {
    let packet = t
        .session
        .encrypt_message(msg_id, 1001, body, &mut mtproto::crypto::OsEntropy);
    t.raw.send(&packet).await.unwrap();
    loop {
        let p = t.raw.recv_packet().await.unwrap();
        for m in t.session.decrypt(&p[..]).unwrap() {
            if let mtproto::session::ServerMessage::RpcResult { req_msg_id, result } = m
                && req_msg_id == msg_id
            {
                return result;
            }
        }
    }
}
