//! Draining shutdown over TCP: a request in flight when the server is told to stop is answered
//! before its connection closes, and one that outlasts `shutdown_grace_secs` is cut. The request
//! is held in flight deterministically by a row lock the test takes in the PostgreSQL database
//! (the private server the test command starts; skipped without `MTCALL_TEST_POSTGRES` unless
//! `MTCALL_REQUIRE_POSTGRES=1`).

mod support;

use std::time::{Duration, Instant};

use mtproto::transport::Kind;
use server::Config;
use support::*;

/// A server on a fresh database, two users, and a test connection to the same database.
async fn setup(
    grace_secs: u64,
) -> Option<(
    TestServer,
    Client,
    tl::enums::InputUser,
    i64,
    tokio_postgres::Client,
)> {
    let url = postgres_database().await?;
    let server = TestServer::start_with(Config {
        database: Some(url.clone()),
        shutdown_grace_secs: grace_secs,
        ..Config::default()
    })
    .await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996691001", "Alice").await.unwrap();
    let alice_id = me(&mut alice).await;
    let mut bob = connect(&server, Kind::Full, false).await;
    bob.login("9996691002", "Bob").await.unwrap();
    let bob_user = user_of(&mut alice, "9996691002").await;
    let (pg, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    Some((server, alice, bob_user, alice_id, pg))
}

/// Takes `user`'s row lock in an open transaction on `pg`: a call transition of that user
/// waits for it.
async fn lock_user(pg: &tokio_postgres::Client, user: i64) {
    pg.batch_execute("BEGIN").await.unwrap();
    pg.execute("SELECT id FROM users WHERE id = $1 FOR UPDATE", &[&user])
        .await
        .unwrap();
}

/// Waits until a server backend waits for a lock: the server has read the request and is
/// inside its transition.
async fn wait_for_a_blocked_backend(pg: &tokio_postgres::Client) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        // `pg` is inside the transaction holding the lock, and a transaction sees the
        // activity view as it was when it first looked unless the snapshot is cleared.
        pg.execute("SELECT pg_stat_clear_snapshot()", &[])
            .await
            .unwrap();
        let row = pg
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the request never reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_is_answered_before_its_connection_closes() {
    let Some((mut server, mut alice, bob_user, alice_id, pg)) = setup(10).await else {
        return;
    };
    lock_user(&pg, alice_id).await;
    let call = tokio::spawn(async move {
        let result = alice.place_call(bob_user, false).await.map(|c| c.id);
        (alice, result)
    });
    wait_for_a_blocked_backend(&pg).await;

    let stop = tokio::spawn(server.server.take().unwrap().shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stop.is_finished(),
        "shutdown returned while a request was in flight"
    );
    pg.batch_execute("COMMIT").await.unwrap();

    let (_alice, placed) = call.await.unwrap();
    assert!(placed.is_ok(), "the request in flight got {placed:?}");
    tokio::time::timeout(TIMEOUT, stop)
        .await
        .expect("shutdown finishes once the request is answered")
        .unwrap();
    // The port no longer accepts.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_outlasting_the_grace_period_is_cut() {
    let Some((mut server, mut alice, bob_user, alice_id, pg)) = setup(1).await else {
        return;
    };
    lock_user(&pg, alice_id).await;
    let call = tokio::spawn(async move { alice.place_call(bob_user, false).await.map(|c| c.id) });
    wait_for_a_blocked_backend(&pg).await;

    let started = Instant::now();
    tokio::time::timeout(TIMEOUT, server.server.take().unwrap().shutdown())
        .await
        .expect("shutdown gives up on the stuck request after the grace period");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "stopped after {took:?}");
    // The client library retries a cut request on a new connection for a while; nothing can
    // answer it now.
    if let Ok(result) = tokio::time::timeout(Duration::from_secs(2), call).await {
        assert!(result.unwrap().is_err(), "the cut request got an answer");
    }
    pg.batch_execute("ROLLBACK").await.unwrap();
}
