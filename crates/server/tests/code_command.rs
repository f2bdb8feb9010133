//! The login-code command (`[auth] code_command`) over TCP with mtcall's client: a command that
//! records what it got lets the client log in with that code; one that fails or outlives its
//! timeout answers `auth.sendCode` with `500 RPC_CALL_FAIL` (retryable) and leaves no code
//! behind, and the server goes on serving.

mod support;

use std::time::{Duration, Instant};

use mtproto::transport::Kind;
use server::Config;
use support::*;

fn with_command(command: String, timeout_secs: u64) -> Config {
    let mut config = Config::default();
    config.auth.code_command = Some(command);
    config.auth.code_command_timeout_secs = timeout_secs;
    config
}

fn retryable(e: ClientError) -> bool {
    matches!(e, ClientError::Rpc { code: 500, ref message } if message == "RPC_CALL_FAIL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_command_delivers_codes_and_its_failures_are_retryable() {
    let dir = std::env::temp_dir().join(format!("mtcall-codes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let got = dir.join("got");
    // Fails for one number, records the others.
    let command = format!(
        "[ \"$MTCALL_PHONE\" = 15550000009 ] && {{ echo no route >&2; exit 1; }}; \
         printf '%s %s' \"$MTCALL_PHONE\" \"$MTCALL_CODE\" > {}",
        got.display()
    );
    let server = TestServer::start_with(with_command(command, 5)).await;
    let mut c = connect(&server, Kind::Full, false).await;

    let hash = c.send_code("15550000001").await.unwrap();
    let text = std::fs::read_to_string(&got).unwrap();
    let code = text
        .strip_prefix("15550000001 ")
        .expect("the command got the phone");
    assert_eq!(code.len(), 5);
    c.sign_in("15550000001", &hash, code, "Hooked")
        .await
        .unwrap();

    let mut other = connect(&server, Kind::Full, false).await;
    let failed = other.send_code("15550000009").await.unwrap_err();
    assert!(retryable(failed), "a failing command");
    // The server still serves the next number.
    other.send_code("15550000002").await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_command_that_hangs_is_killed_at_its_timeout() {
    let server = TestServer::start_with(with_command("sleep 30".into(), 1)).await;
    let mut c = connect(&server, Kind::Full, false).await;
    let started = Instant::now();
    let failed = c.send_code("15550000003").await.unwrap_err();
    assert!(retryable(failed));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered at the timeout"
    );
}
