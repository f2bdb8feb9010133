//! Connection timeouts in paused time: tokio's clock stands still and, whenever every task
//! waits, jumps to the next timer. A 30-second handshake timeout so passes in milliseconds of
//! wall time, and whether it fires early or late is exact rather than a race.

mod support;

use std::time::Duration;

use server::Config;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_connection_that_makes_no_key_is_closed_at_the_handshake_timeout_and_not_before() {
    let server = TestServer::start_with(Config {
        handshake_timeout_secs: 30,
        ..Config::default()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // The intermediate transport's tag, then nothing.
    stream.write_all(&[0xee, 0xee, 0xee, 0xee]).await.unwrap();
    tokio::time::pause();
    let (paused_at, wall) = (tokio::time::Instant::now(), std::time::Instant::now());
    let mut buf = [0u8; 8];
    let early = tokio::time::timeout(Duration::from_secs(29), stream.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "answered or closed before the timeout: {early:?}"
    );
    let read = stream.read(&mut buf).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected the server to close, got {read:?}"
    );
    let waited = paused_at.elapsed();
    assert!(
        (Duration::from_secs(30)..Duration::from_secs(31)).contains(&waited),
        "closed after {waited:?} of server time"
    );
    assert!(
        wall.elapsed() < Duration::from_secs(10),
        "paused time ran in real time"
    );
    tokio::time::resume();
}
