//! Three mtcall nodes on one PostgreSQL database (the private server the test command starts;
//! skipped without `MTCALL_TEST_POSTGRES` unless `MTCALL_REQUIRE_POSTGRES=1`), with real
//! clients: a call across nodes; 200 concurrent callers spread over the nodes to one busy
//! callee; a node stopped mid-ring whose clients resume elsewhere and finish the call; the
//! database's listening connections cut while updates flow; a ringing call on a stopped node
//! ended by the timer of a node still alive, once; a call relayed by the reflector of the node
//! that confirmed it, released there when another node ends it.

mod support;

use std::time::Duration;

use client::calls::CallFailure;
use mtproto::transport::Kind;
use server::Config;
use support::*;
use tl::enums;

/// Three nodes on a fresh database.
async fn three_nodes(config: Config) -> Option<(TestServer, TestServer, TestServer)> {
    let url = postgres_database().await?;
    let first = TestServer::start_with(Config {
        database: Some(url),
        ..config
    })
    .await;
    let second = first.another_node().await;
    let third = first.another_node().await;
    Some((first, second, third))
}

async fn user(node: &TestServer, phone: &str, name: &str) -> Client {
    let mut c = connect(node, Kind::Full, false).await;
    c.login(phone, name).await.unwrap();
    c
}

/// Whether any `updatePhoneCall` reaches `c` within `wait`.
async fn hears_a_call(c: &mut Client, wait: Duration) -> Option<enums::PhoneCall> {
    c.update_wait_limit = Some(wait);
    let heard = loop {
        match c.next_update().await {
            Ok(enums::Update::PhoneCall(p)) => break Some(p.phone_call),
            Ok(_) => {}
            Err(_) => break None,
        }
    };
    c.update_wait_limit = Some(TIMEOUT);
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_across_nodes_and_200_callers_to_a_busy_callee() {
    let Some((n1, n2, n3)) = three_nodes(Config::default()).await else {
        return;
    };
    let mut alice = user(&n1, "9996681001", "Alice").await;
    let mut bob = user(&n2, "9996681002", "Bob").await;
    let mut bob_tablet = user(&n3, "9996681002", "Bob").await;
    bob_tablet.sync_update_state().await.unwrap();

    // Alice on node 1 calls Bob, whose phone is on node 2 and tablet on node 3.
    let bob_user = user_of(&mut alice, "9996681002").await;
    let mut outgoing = alice.place_call(bob_user, false).await.unwrap();
    let incoming = bob.next_incoming_call(true).await.unwrap();
    assert_eq!(incoming.id, outgoing.id);
    let on_tablet = hears_a_call(&mut bob_tablet, TIMEOUT).await;
    assert!(
        matches!(on_tablet, Some(enums::PhoneCall::Requested(_))),
        "{on_tablet:?}"
    );
    assert!(
        outgoing.ringing(&mut alice).await.unwrap() > 0,
        "the acknowledgement on node 2 rings the caller on node 1"
    );
    // Every node shows the call as it is now, acknowledged on node 2: node 1, which created it
    // and recorded it as requested, and node 3, which handled no request of it (from the
    // database, without messages); each counts both parties busy.
    let id = outgoing.id.to_string();
    for (name, node) in [("node 1", &n1), ("node 2", &n2), ("node 3", &n3)] {
        let (status, body) = http_get(node.admin_addr(), "/api/calls", "").await;
        assert_eq!(status, 200);
        let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
        let live = listed["live"].as_array().unwrap();
        assert!(
            live.iter()
                .any(|c| c["id"].as_str() == Some(id.as_str()) && c["state"] == "received"),
            "{name}: {body}"
        );
        let (_, metrics) = http_get(node.admin_addr(), "/metrics", "").await;
        assert!(
            metrics.contains("\nmtcall_busy_users 2\n"),
            "{name}: {metrics}"
        );
        assert!(
            metrics.contains("\nmtcall_calls_live 1\n"),
            "{name}: {metrics}"
        );
        // Nodes 1 and 2 each ran a transition (the request, the acknowledgement) in a
        // database transaction of their own.
        if name != "node 3" {
            let figure = |metric: &str| -> u64 {
                let line = metrics.lines().find(|l| l.starts_with(metric));
                line.and_then(|l| l.split(' ').nth(1)?.parse().ok())
                    .unwrap_or_else(|| panic!("{name}: no {metric}: {metrics}"))
            };
            assert!(figure("mtcall_postgres_transitions_total ") >= 1, "{name}");
            assert!(
                figure("mtcall_postgres_transition_groups_total ") >= 1,
                "{name}"
            );
        }
    }

    // 200 callers, spread over the three nodes, all at once: every one is refused as busy.
    let nodes = [&n1, &n2, &n3];
    let mut callers = Vec::new();
    for i in 0..200 {
        let node = nodes[i % 3];
        let key = node.public_key();
        let addr = node.addr;
        callers.push(tokio::spawn(async move {
            let mut c = Client::connect(addr, &key, Kind::Abridged, false)
                .await
                .unwrap();
            c.update_wait_limit = Some(TIMEOUT);
            c.login(&format!("99966{:05}", 82000 + i), "Caller")
                .await
                .unwrap();
            c
        }));
    }
    let mut ready = Vec::new();
    for c in callers {
        ready.push(c.await.unwrap());
    }
    let attempts: Vec<_> = ready
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let bob = user_of(&mut c, "9996681002").await;
                let call = c.place_call(bob, false).await.unwrap();
                call.established(&mut c).await.unwrap_err()
            })
        })
        .collect();
    for a in attempts {
        let refused = a.await.unwrap();
        assert!(
            matches!(
                refused,
                CallFailure::Ended(Some(enums::PhoneCallDiscardReason::Busy(_)))
            ),
            "{refused:?}"
        );
    }
    // Bob's devices heard nothing of them: no call but Alice's (they do get the history
    // messages of the refused calls, spec §4.3; the tablet may see Alice's call again as its
    // current state when a history push arrives out of pts order and it fetches the difference).
    bob_tablet.update_wait_limit = Some(Duration::from_millis(800));
    while let Ok(u) = bob_tablet.next_update().await {
        if let enums::Update::PhoneCall(p) = u {
            assert!(
                matches!(&p.phone_call, enums::PhoneCall::Requested(r) if r.id == incoming.id),
                "the tablet heard {:?}",
                p.phone_call
            );
        }
    }
    // The first call completes across nodes.
    let (a, b) = tokio::join!(outgoing.established(&mut alice), incoming.accept(&mut bob));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.fingerprint, b.fingerprint);
    a.hang_up(&mut alice, 2).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stops_mid_ring_and_its_clients_finish_the_call_on_another() {
    let Some((n1, n2, _n3)) = three_nodes(Config::default()).await else {
        return;
    };
    let mut n1 = n1;
    let mut alice = user(&n1, "9996683001", "Alice").await;
    let mut bob = user(&n1, "9996683002", "Bob").await;
    let bob_user = user_of(&mut alice, "9996683002").await;
    let mut outgoing = alice.place_call(bob_user, false).await.unwrap();
    let incoming = bob.next_incoming_call(true).await.unwrap();
    assert!(outgoing.ringing(&mut alice).await.unwrap() > 0);

    // Node 1 goes away; both clients reconnect to node 2 with their keys.
    alice.raw.endpoint.addr = n2.addr;
    bob.raw.endpoint.addr = n2.addr;
    n1.server.take().unwrap().shutdown().await;
    let (a, b) = tokio::join!(outgoing.established(&mut alice), incoming.accept(&mut bob));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.fingerprint, b.fingerprint);
    a.hang_up(&mut alice, 1).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_survive_the_listening_connections_being_cut() {
    let Some((n1, n2, n3)) = three_nodes(Config::default()).await else {
        return;
    };
    let mut alice = user(&n1, "9996684001", "Alice").await;
    let mut bob = user(&n2, "9996684002", "Bob").await;
    let mut bob_tablet = user(&n3, "9996684002", "Bob").await;
    bob_tablet.sync_update_state().await.unwrap();
    let bob_user = user_of(&mut alice, "9996684002").await;

    // Cut every node's LISTEN connection, then place a call at once: the wake-ups are lost,
    // the pushes are not.
    let url = std::env::var("MTCALL_TEST_POSTGRES").unwrap();
    let (pg, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let cut = pg
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&store::LISTENER_NAME],
        )
        .await
        .unwrap();
    assert!(cut.len() >= 3, "cut {} listeners", cut.len());
    let outgoing = alice.place_call(bob_user, false).await.unwrap();
    let incoming = bob.next_incoming_call(true).await.unwrap();
    assert_eq!(incoming.id, outgoing.id);
    let on_tablet = hears_a_call(&mut bob_tablet, TIMEOUT).await;
    assert!(
        matches!(&on_tablet, Some(enums::PhoneCall::Requested(r)) if r.id == outgoing.id),
        "{on_tablet:?}"
    );
    outgoing.cancel(&mut alice).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringing_call_on_a_stopped_node_is_ended_once_by_another() {
    let mut config = Config::default();
    config.calls.receive_timeout_ms = 1000;
    let Some((n1, n2, _n3)) = three_nodes(config).await else {
        return;
    };
    let mut n1 = n1;
    let mut alice = user(&n1, "9996685001", "Alice").await;
    let mut bob = user(&n2, "9996685002", "Bob").await;
    bob.sync_update_state().await.unwrap();
    let bob_user = user_of(&mut alice, "9996685002").await;
    alice.raw.endpoint.addr = n2.addr;
    let outgoing = alice.place_call(bob_user, false).await.unwrap();
    // Nobody acknowledges, and the node that placed the call stops.
    n1.server.take().unwrap().shutdown().await;
    let ended = outgoing.established(&mut alice).await.unwrap_err();
    assert!(
        matches!(
            ended,
            CallFailure::Ended(Some(enums::PhoneCallDiscardReason::Missed(_)))
        ),
        "{ended:?}"
    );
    // Bob's history has exactly one message for it.
    let mut messages = 0;
    bob.update_wait_limit = Some(Duration::from_millis(1500));
    while let Ok(u) = bob.next_update().await {
        if let enums::Update::NewMessage(_) = u {
            messages += 1;
        }
    }
    assert_eq!(messages, 1, "the call ended once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_gets_the_reflector_of_the_node_that_confirmed_it_until_any_node_ends_it() {
    let Some((n1, n2, _n3)) = three_nodes(Config::default()).await else {
        return;
    };
    let mut alice = user(&n1, "9996681201", "Alice").await;
    let mut bob = user(&n2, "9996681202", "Bob").await;
    bob.sync_update_state().await.unwrap();
    let bob_user = user_of(&mut alice, "9996681202").await;
    let outgoing = alice.place_call(bob_user, false).await.unwrap();
    let incoming = bob.next_incoming_call(true).await.unwrap();
    let (a, b) = tokio::join!(outgoing.established(&mut alice), incoming.accept(&mut bob));
    let (a, b) = (a.unwrap(), b.unwrap());
    // Alice confirmed on node 1: both parties are sent to node 1's reflector.
    let port = |c: &client::calls::EstablishedCall| {
        c.connections.iter().find_map(|c| match c {
            enums::PhoneConnection::PhoneConnection(r) => Some(r.port),
            _ => None,
        })
    };
    let n1_relay = i32::from(n1.relay_addr().port());
    assert_eq!((port(&a), port(&b)), (Some(n1_relay), Some(n1_relay)));
    let granted = |metrics: &str| metrics.contains("\nmtcall_relay_calls 1\n");
    assert!(granted(&http_get(n1.admin_addr(), "/metrics", "").await.1));
    assert!(!granted(&http_get(n2.admin_addr(), "/metrics", "").await.1));

    // Bob hangs up on node 2; node 1's reflector lets the call go within its sweep.
    b.hang_up(&mut bob, 5).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    loop {
        let (_, metrics) = http_get(n1.admin_addr(), "/metrics", "").await;
        if metrics.contains("\nmtcall_relay_calls 0\n") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node 1 still relays a call node 2 ended: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
