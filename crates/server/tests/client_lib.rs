//! The client library (`mtcall-client`) against the real server: login over every transport,
//! login as a user with the code the server sent and as a bot with its token, a session that
//! survives a server restart and completes a call, and updates missed while offline fetched
//! with `updates.getDifference` exactly once and in order.

mod support;

use std::time::Duration;

use mtproto::transport::Kind;
use store::{Durability, NewUser, SqliteStore, Store};
use support::*;
use tl::{enums, types};

const TRANSPORTS: [Kind; 4] = [
    Kind::Abridged,
    Kind::Intermediate,
    Kind::PaddedIntermediate,
    Kind::Full,
];

fn database(server: &TestServer) -> SqliteStore {
    SqliteStore::open(&server.dir.join("mtcall.db"), Durability::Normal).unwrap()
}

#[tokio::test]
async fn every_transport_logs_in_and_calls() {
    let server = TestServer::start().await;
    let mut n = 0;
    for kind in TRANSPORTS {
        for obfuscated in [false, true] {
            n += 1;
            let phone = format!("99966500{n:02}");
            let mut c = connect(&server, kind, obfuscated).await;
            let user = c.login(&phone, "Transport").await.unwrap();
            assert_eq!(
                me(&mut c).await,
                user_id(&user),
                "{kind:?} obfuscated={obfuscated}"
            );
        }
    }
}

#[tokio::test]
async fn a_user_logs_in_with_the_code_sent_and_a_bot_with_its_token() {
    let server = TestServer::start().await;
    let db = database(&server);

    // A number outside the test range gets a random code, which the server stores.
    let mut c = connect(&server, Kind::Intermediate, false).await;
    let hash = c.send_code("+1 555 000 1234").await.unwrap();
    let code = db
        .latest_login_code("15550001234")
        .await
        .unwrap()
        .unwrap()
        .code;
    let wrong = if code == "00000" { "11111" } else { "00000" };
    let (_, error) = c
        .sign_in("15550001234", &hash, wrong, "Erin")
        .await
        .rpc_err();
    assert_eq!(error, "PHONE_CODE_INVALID");
    let erin = c
        .sign_in("15550001234", &hash, &code, "Erin")
        .await
        .unwrap();
    let enums::User::User(erin) = erin else {
        panic!("an empty user")
    };
    assert_eq!(erin.first_name.as_deref(), Some("Erin"));
    assert_eq!(me(&mut c).await, erin.id);

    // A bot made by the operator logs in with ID:SECRET; a wrong secret is refused.
    let bot = db
        .create_user(
            NewUser {
                phone: None,
                first_name: "Echo".into(),
                last_name: String::new(),
                username: Some("echo_bot".into()),
                bot_secret: Some("s3cr3t".into()),
            },
            0,
        )
        .await
        .unwrap();
    let mut b = connect(&server, Kind::Abridged, true).await;
    let (_, error) = b.login_bot(&format!("{}:wrong", bot.id)).await.rpc_err();
    assert_eq!(error, "ACCESS_TOKEN_INVALID");
    let user = b.login_bot(&format!("{}:s3cr3t", bot.id)).await.unwrap();
    let enums::User::User(user) = user else {
        panic!("an empty user")
    };
    assert!(user.bot, "logged in as a bot");
    assert_eq!(me(&mut b).await, bot.id);
}

#[tokio::test]
async fn sessions_resume_after_a_server_restart_and_complete_a_call() {
    let mut server = TestServer::start().await;
    let mut alice = connect(&server, Kind::Full, false).await;
    let alice_id = user_id(&alice.login("9996651111", "Alice").await.unwrap());
    let mut bob = connect(&server, Kind::PaddedIntermediate, true).await;
    bob.login("9996652222", "Bob").await.unwrap();
    bob.sync_update_state().await.unwrap();
    let bob_user = user_of(&mut alice, "9996652222").await;

    server.restart().await;

    // Alice's next request reconnects with the same key: still logged in, no new key.
    assert_eq!(me(&mut alice).await, alice_id);
    let mut outgoing = alice.place_call(bob_user, false).await.unwrap();
    // Bob was waiting when the server went away: his client reconnects, fetches the difference
    // (which lists the call ringing now) and acknowledges it.
    let incoming = bob.next_incoming_call(true).await.unwrap();
    assert_eq!(incoming.id, outgoing.id);
    assert_eq!(incoming.admin_id, alice_id);
    assert!(outgoing.ringing(&mut alice).await.unwrap() > 0);
    let (a, b) = tokio::join!(outgoing.established(&mut alice), incoming.accept(&mut bob));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.emojis, b.emojis, "both sides show the same four emojis");
    a.hang_up(&mut alice, 1).await.unwrap();
}

/// The history messages (`messageService` with `messageActionPhoneCall`) among `updates`.
fn call_messages(updates: &[enums::Update]) -> Vec<(i32, i64)> {
    updates
        .iter()
        .filter_map(|u| match u {
            enums::Update::NewMessage(m) => match &m.message {
                enums::Message::Service(s) => match &s.action {
                    enums::MessageAction::PhoneCall(a) => Some((s.id, a.call_id)),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Every update until none comes for a while.
async fn drain(c: &mut Client) -> Vec<enums::Update> {
    c.update_wait_limit = Some(Duration::from_millis(700));
    let mut out = Vec::new();
    loop {
        match c.next_update().await {
            Ok(u) => out.push(u),
            Err(ClientError::Timeout) => break,
            Err(e) => panic!("{e}"),
        }
    }
    c.update_wait_limit = Some(TIMEOUT);
    out
}

#[tokio::test]
async fn updates_missed_offline_come_from_get_difference_once_and_in_order() {
    let server = TestServer::start().await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996653333", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Full, false).await;
    bob.login("9996654444", "Bob").await.unwrap();
    let saved = bob.sync_update_state().await.unwrap();
    let key = *bob.session.auth_key().bytes();
    drop(bob);

    // Three calls Bob misses while offline, each cancelled: three history messages for him.
    let bob_user = user_of(&mut alice, "9996654444").await;
    let mut placed = Vec::new();
    for _ in 0..3 {
        let call = alice.place_call(bob_user.clone(), false).await.unwrap();
        placed.push(call.id);
        call.cancel(&mut alice).await.unwrap();
    }

    // Bob comes back with his saved key and state: the difference brings exactly those three.
    let mut bob = Client::resume(server.addr, key).await.unwrap();
    bob.set_update_state(saved);
    let missed = call_messages(&drain(&mut bob).await);
    assert_eq!(
        missed.iter().map(|m| m.1).collect::<Vec<_>>(),
        placed,
        "each missed call once, in order"
    );
    assert!(missed.windows(2).all(|w| w[0].0 < w[1].0), "{missed:?}");
    let state = bob.update_state().unwrap();
    assert_eq!(state.pts, saved.pts + 3);

    // A live update after that is the next pts: applied, not dropped, not refetched.
    let call = alice.place_call(bob_user.clone(), false).await.unwrap();
    call.cancel(&mut alice).await.unwrap();
    let live = drain(&mut bob).await;
    assert_eq!(call_messages(&live).len(), 1, "{live:?}");
    assert_eq!(bob.update_state().unwrap().pts, saved.pts + 4);

    // A hole in the pts sequence (an update skipped ahead) makes the client fetch the
    // difference; what it already has is not delivered again.
    bob.absorb_updates(
        types::UpdateShort {
            update: types::UpdateNewMessage {
                message: types::MessageEmpty {
                    id: 0,
                    peer_id: None,
                }
                .into(),
                pts: saved.pts + 6,
                pts_count: 1,
            }
            .into(),
            date: 0,
        }
        .into(),
    );
    let call = alice.place_call(bob_user, false).await.unwrap();
    call.cancel(&mut alice).await.unwrap();
    let after_gap = drain(&mut bob).await;
    assert_eq!(call_messages(&after_gap).len(), 1, "{after_gap:?}");
    assert_eq!(bob.update_state().unwrap().pts, saved.pts + 5);
}
