//! Call signalling over real TCP against the real server (`docs/calls.md`): the whole
//! lifecycle with real Diffie–Hellman, `phone.receivedCall` as documented (ring, busy,
//! auto-refuse, errors), multi-device, history, layers, and a restart mid-ring.

mod support;

use mtproto::crypto::{dh, sha1, sha256};
use mtproto::transport::Kind;
use support::*;
use tl::{Decode, Layer, enums, functions, types};

fn protocol() -> enums::PhoneCallProtocol {
    client::calls::default_protocol()
}

/// The next `updatePhoneCall` pushed to a client.
async fn next_call_update(c: &mut Client) -> enums::PhoneCall {
    loop {
        let push = c.next_push().await.unwrap();
        if let Ok(enums::Updates::Updates(u)) = enums::Updates::from_bytes(&push) {
            for update in u.updates {
                if let enums::Update::PhoneCall(p) = update {
                    return p.phone_call;
                }
            }
        }
    }
}

/// `phone.discardCall` with reason Hangup.
fn hang_up(peer: enums::InputPhoneCall, duration: i32) -> functions::phone::DiscardCall {
    functions::phone::DiscardCall {
        video: false,
        peer,
        duration,
        reason: types::PhoneCallDiscardReasonHangup {}.into(),
        connection_id: 0,
    }
}

fn input_call(id: i64, access_hash: i64) -> enums::InputPhoneCall {
    types::InputPhoneCall { id, access_hash }.into()
}

struct Dh {
    secret: [u8; 256],
    public: [u8; 256],
}

fn keypair() -> Dh {
    let (secret, public) = dh::keypair(&mut mtproto::crypto::OsEntropy);
    Dh { secret, public }
}

fn fingerprint(key: &[u8; 256]) -> i64 {
    i64::from_le_bytes(sha1(&[key])[12..20].try_into().unwrap())
}

async fn request(
    caller: &mut Client,
    callee: enums::InputUser,
    a: &Dh,
    random_id: i32,
) -> types::PhoneCallWaiting {
    let enums::phone::PhoneCall::PhoneCall(r) = caller
        .call(&functions::phone::RequestCall {
            video: false,
            user_id: callee,
            random_id,
            g_a_hash: sha256(&[&a.public]).to_vec(),
            protocol: protocol(),
        })
        .await
        .unwrap();
    assert_eq!(r.users.len(), 2, "the users vector is required");
    let enums::PhoneCall::Waiting(w) = r.phone_call else {
        panic!(
            "requestCall must answer phoneCallWaiting, got {:?}",
            r.phone_call
        )
    };
    assert_eq!(w.receive_date, None);
    w
}

#[tokio::test]
async fn a_complete_call_with_received_call_busy_and_two_callee_devices() {
    let server = TestServer::start().await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996620001", "Alice").await.unwrap();
    let mut bob1 = connect(&server, Kind::Intermediate, false).await;
    bob1.login("9996620002", "Bob").await.unwrap();
    let mut bob2 = connect(&server, Kind::Abridged, true).await;
    bob2.login("9996620002", "Bob").await.unwrap();
    let mut carol = connect(&server, Kind::Full, false).await;
    carol.login("9996620003", "Carol").await.unwrap();

    let bob = user_of(&mut alice, "9996620002").await;
    let a = keypair();
    let waiting = request(&mut alice, bob.clone(), &a, 1).await;

    // Both of Bob's devices ring with phoneCallRequested.
    let mut bob_hash = 0;
    for device in [&mut bob1, &mut bob2] {
        let enums::PhoneCall::Requested(r) = next_call_update(device).await else {
            panic!("expected phoneCallRequested")
        };
        assert_eq!((r.id, r.admin_id), (waiting.id, waiting.admin_id));
        assert_eq!(r.g_a_hash, sha256(&[&a.public]).to_vec());
        bob_hash = r.access_hash;
    }
    assert_ne!(
        bob_hash, waiting.access_hash,
        "access hashes are per viewer"
    );

    // Before Bob acknowledges he is not busy: Carol's call would ring. After: refused as busy.
    let bob_peer = input_call(waiting.id, bob_hash);
    assert!(
        bob1.call(&functions::phone::ReceivedCall {
            peer: bob_peer.clone()
        })
        .await
        .unwrap(),
        "boolTrue"
    );
    // The caller rings: phoneCallWaiting with receive_date, exactly once.
    let enums::PhoneCall::Waiting(ringing) = next_call_update(&mut alice).await else {
        panic!()
    };
    assert!(ringing.receive_date.is_some());
    assert!(
        bob2.call(&functions::phone::ReceivedCall {
            peer: bob_peer.clone()
        })
        .await
        .unwrap(),
        "second device: true too"
    );

    // Carol calls Bob: phoneCallWaiting, then phoneCallDiscarded(Busy); Bob hears nothing.
    let bob_for_carol = user_of(&mut carol, "9996620002").await;
    let c_dh = keypair();
    let carol_call = request(&mut carol, bob_for_carol, &c_dh, 7).await;
    let enums::PhoneCall::Discarded(d) = next_call_update(&mut carol).await else {
        panic!("expected phoneCallDiscarded")
    };
    assert_eq!(d.id, carol_call.id);
    assert!(matches!(
        d.reason,
        Some(enums::PhoneCallDiscardReason::Busy(_))
    ));

    // Errors as documented.
    assert_eq!(
        bob1.call(&functions::phone::ReceivedCall {
            peer: input_call(waiting.id, bob_hash ^ 1)
        })
        .await
        .rpc_err()
        .1,
        "CALL_PEER_INVALID"
    );
    assert_eq!(
        alice
            .call(&functions::phone::ReceivedCall {
                peer: input_call(waiting.id, waiting.access_hash)
            })
            .await
            .rpc_err()
            .1,
        "CALL_PEER_INVALID"
    );
    assert_eq!(
        bob1.call(&functions::phone::ReceivedCall {
            peer: input_call(123, 456)
        })
        .await
        .rpc_err()
        .1,
        "CALL_PEER_INVALID"
    );

    // Bob accepts on device 1; device 2 is told the call was answered elsewhere (no reason).
    let b = keypair();
    let enums::phone::PhoneCall::PhoneCall(acc) = bob1
        .call(&functions::phone::AcceptCall {
            peer: bob_peer.clone(),
            g_b: b.public.to_vec(),
            protocol: protocol(),
        })
        .await
        .unwrap();
    assert!(
        matches!(acc.phone_call, enums::PhoneCall::Waiting(_)),
        "acceptCall answers phoneCallWaiting"
    );
    let enums::PhoneCall::Discarded(elsewhere) = next_call_update(&mut bob2).await else {
        panic!()
    };
    assert!(elsewhere.reason.is_none());
    assert_eq!(
        bob2.call(&functions::phone::AcceptCall {
            peer: bob_peer.clone(),
            g_b: b.public.to_vec(),
            protocol: protocol()
        })
        .await
        .rpc_err()
        .1,
        "CALL_ALREADY_ACCEPTED"
    );

    // Alice gets g_b, computes the key and confirms with g_a.
    let enums::PhoneCall::Accepted(accepted) = next_call_update(&mut alice).await else {
        panic!("expected phoneCallAccepted")
    };
    let alice_key = dh::mod_pow(&accepted.g_b, &a.secret);
    let alice_peer = input_call(waiting.id, waiting.access_hash);
    let enums::phone::PhoneCall::PhoneCall(conf) = alice
        .call(&functions::phone::ConfirmCall {
            peer: alice_peer.clone(),
            g_a: a.public.to_vec(),
            key_fingerprint: fingerprint(&alice_key),
            protocol: protocol(),
        })
        .await
        .unwrap();
    assert!(
        matches!(conf.phone_call, enums::PhoneCall::PhoneCall(_)),
        "confirmCall answers phoneCall"
    );

    // Bob's accepting device gets phoneCall with g_a; the fingerprints match on both sides.
    let enums::PhoneCall::PhoneCall(full) = next_call_update(&mut bob1).await else {
        panic!("expected phoneCall")
    };
    assert_eq!(
        sha256(&[&full.g_a_or_b]).to_vec(),
        sha256(&[&a.public]).to_vec(),
        "g_a matches the committed hash"
    );
    let bob_key = dh::mod_pow(&full.g_a_or_b, &b.secret);
    assert_eq!(bob_key, alice_key);
    assert_eq!(full.key_fingerprint, fingerprint(&bob_key));

    // Signalling both ways.
    assert!(
        alice
            .call(&functions::phone::SendSignalingData {
                peer: alice_peer.clone(),
                data: vec![1, 2, 3]
            })
            .await
            .unwrap()
    );
    let push = bob1.next_push().await.unwrap();
    let enums::Updates::Updates(u) = enums::Updates::from_bytes(&push).unwrap() else {
        panic!()
    };
    assert!(
        matches!(&u.updates[0], enums::Update::PhoneCallSignalingData(s) if s.data == vec![1, 2, 3])
    );

    // Bob hangs up; Alice is told; both get one history message with pts.
    let enums::Updates::Updates(result) = bob1.call(&hang_up(bob_peer.clone(), 42)).await.unwrap()
    else {
        panic!()
    };
    assert!(result.updates.iter().any(|u| matches!(u, enums::Update::PhoneCall(p) if matches!(&p.phone_call, enums::PhoneCall::Discarded(d) if d.duration == Some(42)))));
    assert!(
        result
            .updates
            .iter()
            .any(|u| matches!(u, enums::Update::NewMessage(_))),
        "the history message comes in the result"
    );
    let enums::PhoneCall::Discarded(ended) = next_call_update(&mut alice).await else {
        panic!()
    };
    assert!(
        matches!(ended.reason, Some(enums::PhoneCallDiscardReason::Hangup(_))),
        "the reason is echoed"
    );
    // The call is over: a late acknowledgement is CALL_ALREADY_DECLINED; Bob is free again.
    assert_eq!(
        bob2.call(&functions::phone::ReceivedCall { peer: bob_peer })
            .await
            .rpc_err()
            .1,
        "CALL_ALREADY_DECLINED"
    );
    let enums::updates::State::State(st) =
        alice.call(&functions::updates::GetState {}).await.unwrap();
    assert_eq!(st.pts, 1, "one history message for the completed call");
    let bob_again = user_of(&mut carol, "9996620002").await;
    let d2 = keypair();
    request(&mut carol, bob_again, &d2, 8).await;
    let enums::PhoneCall::Requested(_) = next_call_update(&mut bob1).await else {
        panic!("Bob's devices ring again")
    };
}

#[tokio::test]
async fn calls_are_rendered_for_each_receivers_layer_and_survive_a_restart() {
    let mut server = TestServer::start().await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996620011", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Full, false).await;
    // Bob speaks layer 198 (GramJS): his phoneCallRequested has that layer's id.
    bob.call_raw(wrap_layer(
        198,
        tl::Encode::to_bytes(&functions::help::GetConfig {}, Layer::LATEST),
    ))
    .await
    .unwrap();
    bob.layer = Layer::exact(198).unwrap();
    bob.login("9996620012", "Bob").await.unwrap();
    // A second device of Bob's on the latest layer: one push, encoded once for each layer.
    let mut bob_latest = connect(&server, Kind::Full, false).await;
    bob_latest.login("9996620012", "Bob").await.unwrap();
    let callee = user_of(&mut alice, "9996620012").await;
    let a = keypair();
    let waiting = request(&mut alice, callee, &a, 3).await;
    let push = bob.next_push().await.unwrap();
    let mut r = tl::Reader::new(&push);
    assert_eq!(r.read_u32().unwrap(), 0x74ae4240, "updates");
    assert_eq!(r.read_u32().unwrap(), 0x1cb5c415);
    assert_eq!(r.read_i32().unwrap(), 1);
    assert_eq!(r.read_u32().unwrap(), 0xab0f6b1e, "updatePhoneCall");
    assert_eq!(
        r.read_u32().unwrap(),
        0x45361c63,
        "phoneCallRequested in layer 198's form"
    );
    let push = bob_latest.next_push().await.unwrap();
    let mut r = tl::Reader::new(&push);
    for _ in 0..4 {
        r.read_u32().unwrap();
    }
    assert_eq!(
        r.read_u32().unwrap(),
        <tl::types::PhoneCallRequested as tl::Identifiable>::CONSTRUCTOR_ID,
        "phoneCallRequested in the latest layer's form on the other device"
    );
    drop(bob_latest);

    // Restart while ringing: the call goes on.
    server.restart().await;
    alice.reconnect().await.unwrap();
    bob.reconnect().await.unwrap();
    // Bob learns of the ringing call from getDifference (he missed nothing else).
    let enums::updates::Difference::Difference(diff) = bob
        .call(&functions::updates::GetDifference {
            pts: 0,
            pts_limit: None,
            pts_total_limit: None,
            date: 0,
            qts: 0,
            qts_limit: None,
        })
        .await
        .unwrap()
    else {
        panic!("expected a difference with the ringing call")
    };
    let enums::Update::PhoneCall(p) = &diff.other_updates[0] else {
        panic!()
    };
    let enums::PhoneCall::Requested(req) = &p.phone_call else {
        panic!()
    };
    let peer = input_call(req.id, req.access_hash);
    assert!(
        bob.call(&functions::phone::ReceivedCall { peer: peer.clone() })
            .await
            .unwrap()
    );
    let b = keypair();
    bob.call(&functions::phone::AcceptCall {
        peer,
        g_b: b.public.to_vec(),
        protocol: protocol(),
    })
    .await
    .unwrap();
    let key = dh::mod_pow(&b.public, &a.secret);
    alice
        .call(&functions::phone::ConfirmCall {
            peer: input_call(waiting.id, waiting.access_hash),
            g_a: a.public.to_vec(),
            key_fingerprint: fingerprint(&key),
            protocol: protocol(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn unacknowledged_calls_end_as_missed_by_the_server() {
    let mut config = server::Config::default();
    config.calls.receive_timeout_ms = 1000;
    config.calls.grace_secs = 0;
    let server = TestServer::start_with(config).await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996620021", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Full, false).await;
    bob.login("9996620022", "Bob").await.unwrap();
    let callee = user_of(&mut alice, "9996620022").await;
    request(&mut alice, callee, &keypair(), 4).await;
    let _ = next_call_update(&mut bob).await;
    // Nobody acknowledges: after call_receive_timeout the server ends it as Missed, for both.
    for c in [&mut alice, &mut bob] {
        let enums::PhoneCall::Discarded(d) = next_call_update(c).await else {
            panic!()
        };
        assert!(matches!(
            d.reason,
            Some(enums::PhoneCallDiscardReason::Missed(_))
        ));
    }
}

#[tokio::test]
async fn small_methods() {
    let server = TestServer::start().await;
    let mut c = connect(&server, Kind::Full, false).await;
    assert_eq!(
        c.call(&functions::phone::GetCallConfig {})
            .await
            .rpc_err()
            .0,
        401,
        "phone.* needs a login"
    );
    c.login("9996620031", "Dan").await.unwrap();
    let enums::DataJSON::DataJSON(cfg) = c.call(&functions::phone::GetCallConfig {}).await.unwrap();
    assert_eq!(cfg.data, "{}");
    let enums::messages::DhConfig::DhConfig(dhc) = c
        .call(&functions::messages::GetDhConfig {
            version: 0,
            random_length: 256,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((dhc.g, dhc.p.len(), dhc.random.len()), (3, 256, 256));
    let same = c
        .call(&functions::messages::GetDhConfig {
            version: dhc.version,
            random_length: 0,
        })
        .await
        .unwrap();
    assert!(matches!(same, enums::messages::DhConfig::NotModified(_)));
    assert_eq!(
        c.call(&functions::messages::GetDhConfig {
            version: 0,
            random_length: 5000
        })
        .await
        .rpc_err()
        .1,
        "RANDOM_LENGTH_INVALID"
    );
}

#[tokio::test]
async fn a_confirmed_call_lists_the_configured_relays() {
    // The listed relays alone: this node's own reflector is off.
    let toml = "[relay]\nenabled = false\n[[calls.reflectors]]\nid = 1\nip = \"127.0.0.2\"\nport = 1400\n[[calls.webrtc]]\nid = 2\nip = \"127.0.0.3\"\nport = 3478\nstun = true\n";
    let server = TestServer::start_with(server::Config::from_toml(toml).unwrap()).await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996620041", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Full, false).await;
    bob.login("9996620042", "Bob").await.unwrap();
    let callee = user_of(&mut alice, "9996620042").await;
    let a = keypair();
    let waiting = request(&mut alice, callee, &a, 9).await;
    let enums::PhoneCall::Requested(r) = next_call_update(&mut bob).await else {
        panic!()
    };
    let peer = input_call(r.id, r.access_hash);
    let b = keypair();
    bob.call(&functions::phone::AcceptCall {
        peer,
        g_b: b.public.to_vec(),
        protocol: protocol(),
    })
    .await
    .unwrap();
    let key = dh::mod_pow(&b.public, &a.secret);
    let enums::phone::PhoneCall::PhoneCall(conf) = alice
        .call(&functions::phone::ConfirmCall {
            peer: input_call(waiting.id, waiting.access_hash),
            g_a: a.public.to_vec(),
            key_fingerprint: fingerprint(&key),
            protocol: protocol(),
        })
        .await
        .unwrap();
    let enums::PhoneCall::PhoneCall(call) = conf.phone_call else {
        panic!()
    };
    assert!(call.p2p_allowed, "both sides allow p2p");
    let enums::PhoneConnection::PhoneConnection(reflector) = &call.connections[0] else {
        panic!()
    };
    assert_eq!(
        (
            reflector.ip.as_str(),
            reflector.port,
            reflector.peer_tag.len()
        ),
        ("127.0.0.2", 1400, 16)
    );
    let enums::PhoneConnection::Webrtc(stun) = &call.connections[1] else {
        panic!()
    };
    assert!(stun.stun && !stun.turn);
    // The callee's view carries the same relays and peer tag.
    let enums::PhoneCall::PhoneCall(theirs) = next_call_update(&mut bob).await else {
        panic!()
    };
    assert_eq!(theirs.connections, call.connections);
}

/// The answers to late requests about the first of four ended calls, on a server that holds
/// `held` ended calls in memory, before and after a restart; and how many calls the restarted
/// server read back from the store for those answers and one new call.
async fn late_answers(held: usize) -> (Vec<String>, Vec<String>, u64) {
    let mut config = server::Config::default();
    config.calls.recent_ended_calls = held;
    let mut server = TestServer::start_with(config).await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996620051", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Full, false).await;
    bob.login("9996620052", "Bob").await.unwrap();
    let callee = user_of(&mut alice, "9996620052").await;
    let mut first = None;
    for random_id in 1..=4 {
        let w = request(&mut alice, callee.clone(), &keypair(), random_id).await;
        // Bob hears of each earlier call's end before the next one rings.
        let r = loop {
            match next_call_update(&mut bob).await {
                enums::PhoneCall::Requested(r) => break r,
                enums::PhoneCall::Discarded(_) => continue,
                other => panic!("Bob's device rings, not {other:?}"),
            }
        };
        let peer = input_call(r.id, r.access_hash);
        assert!(
            bob.call(&functions::phone::ReceivedCall { peer })
                .await
                .unwrap()
        );
        alice
            .call(&hang_up(input_call(w.id, w.access_hash), 0))
            .await
            .unwrap();
        first.get_or_insert((w, r));
    }
    let (w, r) = first.unwrap();
    let (alice_peer, bob_peer) = (
        input_call(w.id, w.access_hash),
        input_call(r.id, r.access_hash),
    );
    let mut answers = Vec::new();
    answers.push(
        bob.call(&functions::phone::ReceivedCall {
            peer: bob_peer.clone(),
        })
        .await
        .rpc_err()
        .1,
    );
    let again = alice.call(&hang_up(alice_peer.clone(), 0)).await.unwrap();
    let enums::Updates::Updates(u) = again else {
        panic!("discardCall answers updates")
    };
    answers.push(format!("{:?}", u.updates));
    let rated = bob
        .call(&functions::phone::SetCallRating {
            user_initiative: false,
            peer: bob_peer.clone(),
            rating: 5,
            comment: String::new(),
        })
        .await;
    answers.push(format!("rating accepted: {}", rated.is_ok()));
    let debug = bob
        .call(&functions::phone::SaveCallDebug {
            peer: bob_peer.clone(),
            debug: types::DataJSON { data: "{}".into() }.into(),
        })
        .await
        .unwrap();
    answers.push(format!("debug saved: {debug}"));
    let repeat_first = functions::phone::RequestCall {
        video: false,
        user_id: callee.clone(),
        random_id: 1,
        g_a_hash: sha256(&[&keypair().public]).to_vec(),
        protocol: protocol(),
    };
    answers.push(alice.call(&repeat_first).await.rpc_err().1);
    let (_, metrics) = http_get(server.admin_addr(), "/metrics", "").await;
    let figure = |name: &str| metric(&metrics, name);
    if held == 1 {
        // The latest, and the first read back until the timer's next tick restores the bound.
        let ended_held = figure("mtcall_calls_ended_in_memory ");
        assert!(
            (1..=2).contains(&ended_held),
            "{ended_held} ended calls held"
        );
        // Three left as later ones ended; the one read back may have left again since.
        assert!(figure("mtcall_calls_evicted_total ") >= 3);
        assert!(
            figure("mtcall_calls_read_back_total ") >= 1,
            "the first call was read back from the store: {answers:?}\n{metrics}"
        );
    } else {
        assert_eq!(figure("mtcall_calls_evicted_total "), 0);
    }

    server.restart().await;
    bob.reconnect().await.unwrap();
    alice.reconnect().await.unwrap();
    let after_restart = vec![
        bob.call(&functions::phone::ReceivedCall { peer: bob_peer })
            .await
            .rpc_err()
            .1,
        alice.call(&repeat_first).await.rpc_err().1,
    ];
    request(&mut alice, callee, &keypair(), 5).await;
    let (_, metrics) = http_get(server.admin_addr(), "/metrics", "").await;
    let read_back = metric(&metrics, "mtcall_calls_read_back_total ");
    (answers, after_restart, read_back)
}

/// A figure of a `/metrics` text.
fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

#[tokio::test]
async fn late_requests_about_calls_no_longer_held_get_the_same_answers() {
    // Holding one ended call, the first of four has left memory; holding the default, it has
    // not. A late request about it is answered the same either way, and after a restart.
    let (held, held_restart, held_read_back) =
        late_answers(server::Config::default().calls.recent_ended_calls).await;
    let (evicted, evicted_restart, evicted_read_back) = late_answers(1).await;
    assert_eq!(held[0], "CALL_ALREADY_DECLINED");
    assert!(held[1].contains("Discarded"), "{}", held[1]);
    assert!(!held[1].contains("NewMessage"), "no second history message");
    assert_eq!(
        held[2..],
        [
            "rating accepted: true",
            "debug saved: true",
            "RANDOM_ID_DUPLICATE"
        ]
    );
    assert_eq!(
        held_restart,
        ["CALL_ALREADY_DECLINED", "RANDOM_ID_DUPLICATE"]
    );
    // Restarted with every ended call in memory, the server reads none back, not even for a
    // new call's random_id; with older ones left in the store, it checks the store for the
    // new call's random_id (and for whatever else it lacks).
    assert_eq!(held_read_back, 0);
    assert!(evicted_read_back >= 1, "{evicted_read_back} read back");
    // The ids differ between the two servers; the answers' shapes must not.
    let shape = |a: &[String]| -> Vec<String> {
        a.iter()
            .map(|s| s.split(|c: char| c.is_ascii_digit()).collect::<String>())
            .collect()
    };
    assert_eq!(shape(&evicted), shape(&held));
    assert_eq!(evicted_restart, held_restart);
}
