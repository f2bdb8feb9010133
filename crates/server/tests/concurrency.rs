//! Races over real TCP against one server, with the invariants checked after each:
//! 1,000 concurrent callers to a callee who has acknowledged another call, two devices accepting
//! at once, both sides hanging up at once, and an acknowledgement racing the caller's hang-up.
//! After every race the callee is free again (busy is released) and each ended call left one
//! history message per user.

mod support;

use std::time::Duration;

use client::calls::CallFailure;
use mtproto::transport::Kind;
use support::*;
use tl::{enums, functions, types};

fn protocol() -> enums::PhoneCallProtocol {
    client::calls::default_protocol()
}

/// The phone-call ids among a client's next updates, and how many history messages, until
/// nothing comes for a moment.
async fn drain(c: &mut Client) -> (Vec<enums::PhoneCall>, usize) {
    c.update_wait_limit = Some(Duration::from_millis(600));
    let (mut calls, mut history) = (Vec::new(), 0);
    while let Ok(u) = c.next_update().await {
        match u {
            enums::Update::PhoneCall(p) => calls.push(p.phone_call),
            enums::Update::NewMessage(_) => history += 1,
            _ => {}
        }
    }
    c.update_wait_limit = Some(TIMEOUT);
    (calls, history)
}

/// The callee can be called again: not busy (the call is cancelled right away).
async fn is_free(caller: &mut Client, callee: &mut Client, callee_user: &enums::InputUser) {
    let probe = caller.place_call(callee_user.clone(), false).await.unwrap();
    let incoming = callee.next_incoming_call(false).await.unwrap();
    assert_eq!(incoming.id, probe.id, "the callee is free again");
    probe.cancel(caller).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_to_a_callee_who_acknowledged_another_call() {
    let server = TestServer::start().await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996690001", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Full, false).await;
    bob.login("9996690002", "Bob").await.unwrap();
    let bob_user = user_of(&mut alice, "9996690002").await;
    let first = alice.place_call(bob_user.clone(), false).await.unwrap();
    let incoming = bob.next_incoming_call(true).await.unwrap();

    // Log the 1,000 callers in 50 at a time (each key creation costs the server ~10 ms of CPU),
    // then let them all call at once.
    let key = server.public_key();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(50));
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(1001));
    let mut callers = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let (addr, key, gate, start) = (server.addr, key.clone(), gate.clone(), start.clone());
        callers.spawn(async move {
            let (mut c, bob) = {
                let _permit = gate.acquire().await.unwrap();
                let mut c = Client::connect(addr, &key, Kind::Abridged, false)
                    .await
                    .unwrap();
                c.update_wait_limit = Some(Duration::from_secs(30));
                c.login(&format!("99966{:05}", 91000 + i), "Caller")
                    .await
                    .unwrap();
                let bob = user_of(&mut c, "9996690002").await;
                (c, bob)
            };
            start.wait().await;
            let call = c.place_call(bob, false).await.unwrap();
            call.established(&mut c).await.unwrap_err()
        });
    }
    start.wait().await;
    let mut busy = 0;
    while let Some(refused) = callers.join_next().await {
        let refused = refused.unwrap();
        assert!(
            matches!(
                refused,
                CallFailure::Ended(Some(enums::PhoneCallDiscardReason::Busy(_)))
            ),
            "{refused:?}"
        );
        busy += 1;
    }
    assert_eq!(busy, 1000);
    let (calls, history) = drain(&mut bob).await;
    assert!(calls.is_empty(), "Bob heard {calls:?}");
    assert_eq!(history, 1000, "one history message per refused call");

    let (a, b) = tokio::join!(first.established(&mut alice), incoming.accept(&mut bob));
    a.unwrap().hang_up(&mut alice, 1).await.unwrap();
    b.unwrap();
    drain(&mut bob).await;
    is_free(&mut alice, &mut bob, &bob_user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_accept_at_once_and_both_sides_hang_up_at_once() {
    let server = TestServer::start().await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996692001", "Alice").await.unwrap();
    let mut phone = connect(&server, Kind::Full, false).await;
    phone.login("9996692002", "Bob").await.unwrap();
    let mut tablet = connect(&server, Kind::Intermediate, false).await;
    tablet.login("9996692002", "Bob").await.unwrap();
    let bob_user = user_of(&mut alice, "9996692002").await;

    let mut outgoing = alice.place_call(bob_user.clone(), false).await.unwrap();
    let on_phone = phone.next_incoming_call(true).await.unwrap();
    let on_tablet = tablet.next_incoming_call(true).await.unwrap();
    outgoing.ringing(&mut alice).await.unwrap();
    let accept = |c: &client::calls::IncomingCall| functions::phone::AcceptCall {
        peer: c.peer(),
        g_b: vec![9; 256],
        protocol: protocol(),
    };
    let (from_phone, from_tablet) = (accept(&on_phone), accept(&on_tablet));
    let (p, t) = tokio::join!(phone.call(&from_phone), tablet.call(&from_tablet));
    let won = [p.is_ok(), t.is_ok()];
    assert_eq!(
        won.iter().filter(|w| **w).count(),
        1,
        "exactly one device wins"
    );
    let lost = if won[0] { t } else { p };
    assert_eq!(lost.rpc_err().1, "CALL_ALREADY_ACCEPTED");
    let (loser, winner) = if won[0] {
        (&mut tablet, &mut phone)
    } else {
        (&mut phone, &mut tablet)
    };
    let (heard, _) = drain(loser).await;
    assert!(
        matches!(heard.as_slice(), [enums::PhoneCall::Discarded(d)] if d.id == outgoing.id),
        "the other device is told the call was answered elsewhere: {heard:?}"
    );

    // The caller sees one accept; both sides then hang up at the same moment.
    let accepted = loop {
        match alice.next_update().await.unwrap() {
            enums::Update::PhoneCall(p) => match p.phone_call {
                enums::PhoneCall::Accepted(a) => break a,
                enums::PhoneCall::Waiting(_) => continue,
                other => panic!("{other:?}"),
            },
            _ => continue,
        }
    };
    assert_eq!(accepted.id, outgoing.id);
    let hang_up = |id: i64, access_hash: i64| functions::phone::DiscardCall {
        video: false,
        peer: types::InputPhoneCall { id, access_hash }.into(),
        duration: 0,
        reason: types::PhoneCallDiscardReasonHangup {}.into(),
        connection_id: 0,
    };
    let (mine, theirs) = (
        hang_up(outgoing.id, outgoing.access_hash),
        hang_up(on_phone.id, on_phone.access_hash),
    );
    let (a, b) = tokio::join!(alice.call(&mine), winner.call(&theirs));
    a.unwrap();
    b.unwrap();
    let (_, alice_history) = drain(&mut alice).await;
    let (_, bob_history) = drain(winner).await;
    // Each side's own history message comes in its discardCall result; the other's as a push.
    assert!(alice_history <= 1 && bob_history <= 1, "ended once");
    is_free(&mut alice, winner, &bob_user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_racing_the_callers_hang_up() {
    let server = TestServer::start().await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996693001", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Full, false).await;
    bob.login("9996693002", "Bob").await.unwrap();
    let bob_user = user_of(&mut alice, "9996693002").await;
    for _ in 0..20 {
        let outgoing = alice.place_call(bob_user.clone(), false).await.unwrap();
        let incoming = bob.next_incoming_call(false).await.unwrap();
        let ack = functions::phone::ReceivedCall {
            peer: incoming.peer(),
        };
        let (acked, cancelled) = tokio::join!(bob.call(&ack), outgoing.cancel(&mut alice));
        cancelled.unwrap();
        match acked {
            Ok(true) => {}
            other => assert_eq!(other.rpc_err().1, "CALL_ALREADY_DECLINED"),
        }
        // Whatever won, the call ended and Bob is not left busy.
        let (calls, _) = drain(&mut bob).await;
        assert!(
            calls
                .iter()
                .all(|c| matches!(c, enums::PhoneCall::Discarded(d) if d.id == incoming.id)),
            "{calls:?}"
        );
        drain(&mut alice).await;
    }
    is_free(&mut alice, &mut bob, &bob_user).await;
}
