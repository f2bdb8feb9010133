//! The server on PostgreSQL (`database = "postgres://…"`), against the private server the test
//! command starts (`MTCALL_TEST_POSTGRES`; without it these tests only say they were skipped,
//! unless `MTCALL_REQUIRE_POSTGRES=1`): a complete call, history with pts, a restart that
//! keeps keys, users and calls, and a second node on the same database where a session
//! resumes.

mod support;

use mtproto::transport::Kind;
use server::Config;
use support::*;
use tl::{enums, functions};

#[tokio::test]
async fn a_call_and_a_restart_on_postgres_and_a_second_node_resumes_a_session() {
    let Some(url) = postgres_database().await else {
        return;
    };
    let mut server = TestServer::start_with(Config {
        database: Some(url.clone()),
        ..Config::default()
    })
    .await;
    let mut alice = connect(&server, Kind::Full, false).await;
    let alice_id = user_id(&alice.login("9996671111", "Alice").await.unwrap());
    let mut bob = connect(&server, Kind::Intermediate, true).await;
    bob.login("9996672222", "Bob").await.unwrap();
    let saved = bob.sync_update_state().await.unwrap();
    let bob_user = user_of(&mut alice, "9996672222").await;

    let mut outgoing = alice.place_call(bob_user.clone(), false).await.unwrap();
    let incoming = bob.next_incoming_call(true).await.unwrap();
    assert!(outgoing.ringing(&mut alice).await.unwrap() > 0);

    // A restart mid-ring: keys, users and the call come back from PostgreSQL.
    server.restart().await;
    let (a, b) = tokio::join!(outgoing.established(&mut alice), incoming.accept(&mut bob));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.fingerprint, b.fingerprint);
    a.hang_up(&mut alice, 3).await.unwrap();
    // Bob's history message has the next pts.
    loop {
        if let enums::Update::NewMessage(m) = bob.next_update().await.unwrap() {
            assert_eq!(m.pts, saved.pts + 1);
            break;
        }
    }

    // A second node on the same database and key files: Alice's key works there, logged in.
    let node2 = server.another_node().await;
    let key = *alice.session.auth_key().bytes();
    let mut elsewhere = Client::resume(node2.addr, key).await.unwrap();
    assert_eq!(me(&mut elsewhere).await, alice_id);
}

#[tokio::test]
async fn an_unreachable_database_gives_a_retryable_error_not_a_hang() {
    let Some(url) = postgres_database().await else {
        return;
    };
    let name = url.rsplit('/').next().unwrap().to_owned();
    let server = TestServer::start_with(Config {
        database: Some(url.clone()),
        ..Config::default()
    })
    .await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996673333", "Alice").await.unwrap();
    let resolve = functions::contacts::ResolvePhone {
        phone: "9996673333".into(),
    };
    alice.call(&resolve).await.unwrap();

    // The database refuses this node: new connections fail, open ones are ended.
    let admin = std::env::var("MTCALL_TEST_POSTGRES").unwrap();
    let (pg, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    pg.batch_execute(&format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let (code, message) = alice.call(&resolve).await.rpc_err();
    assert_eq!((code, message.as_str()), (500, "RPC_CALL_FAIL"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "answered after {:?}",
        started.elapsed()
    );

    // Back again: the same request works on the same connection.
    pg.batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let enums::contacts::ResolvedPeer::ResolvedPeer(found) = alice.call(&resolve).await.unwrap();
    assert_eq!(found.users.len(), 1);
}
