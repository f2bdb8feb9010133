//! Flood control over TCP: requests over a key's rate get `420 FLOOD_WAIT_X` while
//! another client goes on unaffected; auth-key creations and connections over an address's
//! limit get transport error -429. Loopback is not exempted here, so the limits apply.

mod support;

use std::time::Duration;

use mtproto::transport::Kind;
use server::Config;
use server::limits::LimitSettings;
use support::*;
use tl::functions;

fn limited(limits: LimitSettings) -> Config {
    Config {
        limits: LimitSettings {
            exempt_loopback: false,
            ..limits
        },
        ..Config::default()
    }
}

#[tokio::test]
async fn requests_over_a_keys_rate_wait_and_other_clients_go_on() {
    let server = TestServer::start_with(limited(LimitSettings {
        requests_per_second: 2.0,
        request_burst: 5.0,
        ..LimitSettings::default()
    }))
    .await;
    let mut greedy = connect(&server, Kind::Full, false).await;
    let mut other = connect(&server, Kind::Intermediate, false).await;
    for _ in 0..5 {
        greedy
            .call(&functions::help::GetNearestDc {})
            .await
            .unwrap();
    }
    let (code, message) = greedy
        .call(&functions::help::GetNearestDc {})
        .await
        .rpc_err();
    assert_eq!((code, message.as_str()), (420, "FLOOD_WAIT_1"));
    other.call(&functions::help::GetNearestDc {}).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    greedy
        .call(&functions::help::GetNearestDc {})
        .await
        .unwrap();
}

#[tokio::test]
async fn key_creations_and_connections_per_address_are_limited() {
    let server = TestServer::start_with(limited(LimitSettings {
        handshakes_per_second: 0.5,
        handshake_burst: 2.0,
        connections_per_ip: 3,
        ..LimitSettings::default()
    }))
    .await;
    let first = connect(&server, Kind::Full, false).await;
    let _second = connect(&server, Kind::Full, false).await;
    let third = Client::connect(server.addr, &server.public_key(), Kind::Full, false).await;
    assert!(
        matches!(third, Err(ClientError::TransportCode(-429))),
        "a third key within a second: {:?}",
        third.err()
    );
    // Two connections are open; one more fits, the next is refused.
    let _third_connection = Raw::connect(server.addr, Kind::Intermediate, false)
        .await
        .unwrap();
    let mut refused = Raw::connect(server.addr, Kind::Intermediate, false)
        .await
        .unwrap();
    assert!(
        matches!(
            refused.recv_packet().await,
            Err(ClientError::TransportCode(-429)) | Err(ClientError::Closed)
        ),
        "a fourth connection from the address"
    );
    drop(first);
}
