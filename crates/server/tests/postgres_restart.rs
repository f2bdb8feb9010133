//! PostgreSQL stopped and started again under load (the private server of the test command,
//! through its `MTCALL_TEST_POSTGRES_STOP` and `_START` commands; skipped without them unless
//! `MTCALL_REQUIRE_POSTGRES=1`). A caller places and hangs up call after call while the
//! database goes away: meanwhile every failed request is answered `500 RPC_CALL_FAIL`, which
//! a client may retry; once the database is back the node serves again by itself; and every
//! transition the client saw acknowledged — a call created, a call ended — is in the database
//! afterwards; `/readyz` is 503 while it is down and 200 again after. Its own test binary: it
//! stops the server every other PostgreSQL test uses.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mtproto::transport::Kind;
use server::Config;
use store::Store;
use support::*;
use tl::{enums, functions, types};

fn shell(command: &str) {
    let status = std::process::Command::new("sh")
        .args(["-c", command])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("sh runs");
    assert!(status.success(), "`{command}` failed: {status}");
}

/// What the caller saw.
#[derive(Default)]
struct Seen {
    /// Calls whose `requestCall` was answered.
    created: Vec<i64>,
    /// Calls whose `discardCall` was answered.
    ended: Vec<i64>,
    /// `RPC_CALL_FAIL` answers.
    retryable: u64,
    /// Any other failure.
    other: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_nothing_acknowledged() {
    let Some(url) = postgres_database().await else {
        return;
    };
    let (Ok(stop), Ok(start)) = (
        std::env::var("MTCALL_TEST_POSTGRES_STOP"),
        std::env::var("MTCALL_TEST_POSTGRES_START"),
    ) else {
        assert!(
            std::env::var("MTCALL_REQUIRE_POSTGRES").is_err(),
            "MTCALL_TEST_POSTGRES_STOP and _START are needed (source scripts/postgres)"
        );
        return;
    };
    let server = TestServer::start_with(Config {
        database: Some(url.clone()),
        ..Config::default()
    })
    .await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996691001", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Full, false).await;
    bob.login("9996691002", "Bob").await.unwrap();
    let bob_user = user_of(&mut alice, "9996691002").await;

    let stopped = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let load = {
        let (stopped, served) = (stopped.clone(), served.clone());
        tokio::spawn(async move {
            let mut seen = Seen::default();
            let note = |seen: &mut Seen, e: ClientError| match e {
                ClientError::Rpc { code: 500, message } if message == "RPC_CALL_FAIL" => {
                    seen.retryable += 1
                }
                other => seen.other.push(format!("{other:?}")),
            };
            let mut n = 0;
            while !stopped.load(Ordering::Relaxed) {
                n += 1;
                let g_a_hash = mtproto::crypto::sha256(&[&[7u8; 256]]).to_vec();
                let request = functions::phone::RequestCall {
                    video: false,
                    user_id: bob_user.clone(),
                    random_id: n,
                    g_a_hash,
                    protocol: client::calls::default_protocol(),
                };
                let call = match alice.call(&request).await {
                    Ok(enums::phone::PhoneCall::PhoneCall(r)) => match r.phone_call {
                        enums::PhoneCall::Waiting(w) => w,
                        other => {
                            seen.other.push(format!("requestCall answered {other:?}"));
                            continue;
                        }
                    },
                    Err(e) => {
                        note(&mut seen, e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                seen.created.push(call.id);
                // Hang up until it is answered: a call left live would keep Bob busy.
                loop {
                    let discard = functions::phone::DiscardCall {
                        video: false,
                        peer: types::InputPhoneCall {
                            id: call.id,
                            access_hash: call.access_hash,
                        }
                        .into(),
                        duration: 0,
                        reason: types::PhoneCallDiscardReasonHangup {}.into(),
                        connection_id: 0,
                    };
                    match alice.call(&discard).await {
                        Ok(_) => {
                            seen.ended.push(call.id);
                            served.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(e) => {
                            note(&mut seen, e);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
            seen
        })
    };

    let wait_for = |target: u64, what: &'static str| {
        let served = served.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while served.load(Ordering::Relaxed) < target {
                assert!(
                    Instant::now() < deadline,
                    "{what}: {} calls",
                    served.load(Ordering::Relaxed)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let admin = server.admin_addr();
    assert_eq!(
        http_get(admin, "/readyz", "").await,
        (200, "ready\n".into())
    );
    wait_for(20, "calls before the stop").await;
    shell(&stop);
    // Down for two seconds while the caller keeps trying; a readiness check meanwhile says so
    // (the process itself stays healthy).
    let during = served.load(Ordering::Relaxed);
    let down_since = Instant::now();
    let (status, text) = http_get(admin, "/readyz", "").await;
    assert_eq!(status, 503, "/readyz with the database down: {text}");
    assert!(text.contains("the store did not answer"), "{text}");
    assert_eq!(http_get(admin, "/healthz", "").await.0, 200);
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(down_since.elapsed())).await;
    let while_down = served.load(Ordering::Relaxed) - during;
    shell(&start);
    let back = served.load(Ordering::Relaxed);
    wait_for(back + 20, "calls after the start").await;
    assert_eq!(http_get(admin, "/readyz", "").await.0, 200, "ready again");
    stopped.store(true, Ordering::Relaxed);
    let seen = load.await.unwrap();

    assert!(
        seen.other.is_empty(),
        "failures other than RPC_CALL_FAIL: {:?}",
        seen.other
    );
    assert!(
        seen.retryable > 0,
        "the database's absence was answered RPC_CALL_FAIL"
    );
    assert!(
        while_down <= 1,
        "{while_down} calls completed while the database was down"
    );
    // Everything acknowledged is there.
    let store = store::PgStore::connect(&url).await.unwrap();
    let stored: std::collections::HashMap<i64, String> = store
        .load_calls(u32::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.state))
        .collect();
    for id in &seen.created {
        assert!(
            stored.contains_key(id),
            "call {id} was created, and is gone"
        );
    }
    for id in &seen.ended {
        assert_eq!(
            stored.get(id).map(String::as_str),
            Some("discarded"),
            "call {id}"
        );
    }
    eprintln!(
        "{} calls created, {} ended, {} RPC_CALL_FAIL answers",
        seen.created.len(),
        seen.ended.len(),
        seen.retryable
    );
}
