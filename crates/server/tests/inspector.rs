//! The admin address over TCP: after a call that the callee acknowledges, a busy
//! refusal, an error, an accept, a confirm and a hang-up, `/metrics` moved by exactly those
//! amounts; the call's timeline holds each RPC and push in order (the busy refusal in it too),
//! with the decoded TL of each message; the live stream announces it; tokens, `Host` and bad
//! HTTP get their documented answers; the health checks answer without a token.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use mtproto::transport::Kind;
use serde_json::Value;
use support::*;
use tl::{functions, types};

/// The samples of a Prometheus text exposition, by `name{labels}`.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

async fn metrics(server: &TestServer) -> HashMap<String, f64> {
    let (status, body) = http_get(server.admin_addr(), "/metrics", "").await;
    assert_eq!(status, 200);
    samples(&body)
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

async fn json(server: &TestServer, path: &str) -> Value {
    let (status, body) = http_get(server.admin_addr(), path, "").await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn rpc(method: &str, result: &str) -> String {
    format!("mtcall_rpc_total{{method=\"{method}\",result=\"{result}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_timeline_of_a_call_with_a_busy_refusal() {
    let server = TestServer::start().await;
    let mut alice = connect(&server, Kind::Full, false).await;
    alice.login("9996680001", "Alice").await.unwrap();
    let mut bob = connect(&server, Kind::Intermediate, true).await;
    bob.login("9996680002", "Bob").await.unwrap();
    let mut carol = connect(&server, Kind::Abridged, false).await;
    carol.login("9996680003", "Carol").await.unwrap();
    let bob_for_alice = user_of(&mut alice, "9996680002").await;
    let bob_for_carol = user_of(&mut carol, "9996680002").await;

    // The live stream, opened before anything happens.
    let mut stream = tokio::net::TcpStream::connect(server.admin_addr())
        .await
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let req = format!(
            "GET /api/stream HTTP/1.1\r\nHost: {}\r\n\r\n",
            server.admin_addr()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
    }

    let before = metrics(&server).await;
    let mut outgoing = alice.place_call(bob_for_alice, false).await.unwrap();
    let incoming = bob.next_incoming_call(true).await.unwrap();
    let receive_date = outgoing.ringing(&mut alice).await.unwrap();
    assert!(receive_date > 0);

    // Carol is refused as busy; a wrong access hash gets CALL_PEER_INVALID.
    let refused = carol.place_call(bob_for_carol, false).await.unwrap();
    let refused_id = refused.id;
    assert!(refused.established(&mut carol).await.is_err());
    let wrong = carol
        .call(&functions::phone::ReceivedCall {
            peer: types::InputPhoneCall {
                id: incoming.id,
                access_hash: incoming.access_hash ^ 1,
            }
            .into(),
        })
        .await
        .rpc_err();
    assert_eq!(wrong, (400, "CALL_PEER_INVALID".into()));

    let (a, b) = tokio::join!(outgoing.established(&mut alice), incoming.accept(&mut bob));
    let (a, _b) = (a.unwrap(), b.unwrap());
    let call_id = a.id;
    a.hang_up(&mut alice, 3).await.unwrap();
    // Bob hears the hang-up, so everything above has been pushed.
    let _ = bob.next_update().await.unwrap();
    let after = metrics(&server).await;

    let d = |k: &str| delta(&before, &after, k);
    assert_eq!(d("mtcall_call_setups_total"), 2.0);
    assert_eq!(d("mtcall_call_outcomes_total{outcome=\"answered\"}"), 1.0);
    assert_eq!(
        d("mtcall_call_outcomes_total{outcome=\"busy_refused\"}"),
        1.0
    );
    assert_eq!(d("mtcall_call_outcomes_total{outcome=\"missed\"}"), 0.0);
    assert_eq!(d(&rpc("phone.requestCall", "ok")), 2.0);
    assert_eq!(d(&rpc("phone.receivedCall", "ok")), 1.0);
    assert_eq!(d(&rpc("phone.receivedCall", "CALL_PEER_INVALID")), 1.0);
    assert_eq!(d(&rpc("phone.acceptCall", "ok")), 1.0);
    assert_eq!(d(&rpc("phone.confirmCall", "ok")), 1.0);
    assert_eq!(d(&rpc("phone.discardCall", "ok")), 1.0);
    assert_eq!(
        d("mtcall_rpc_duration_seconds_count{method=\"phone.receivedCall\"}"),
        2.0
    );
    assert_eq!(
        d("mtcall_rpc_duration_seconds_bucket{le=\"+Inf\",method=\"phone.receivedCall\"}"),
        2.0
    );
    assert_eq!(after["mtcall_busy_users"], 0.0);
    assert_eq!(after["mtcall_calls_live"], 0.0);
    assert_eq!(after["mtcall_users_online"], 3.0);
    assert_eq!(
        after["mtcall_auth_keys_created_total{kind=\"permanent\"}"],
        3.0
    );
    assert_eq!(
        after["mtcall_connections{transport=\"intermediate\",obfuscated=\"true\"}"],
        1.0
    );
    assert!(after["mtcall_store_commit_seconds_count{op=\"call\"}"] >= 6.0);
    assert!(d("mtcall_updates_pushed_total{update=\"updatePhoneCall\"}") >= 5.0);

    // The call's timeline, in order: Alice's request, Bob ringing, Bob's acknowledgement, the
    // receive_date push to Alice, Carol's busy refusal, then accept, confirm and hang-up.
    let call = json(&server, &format!("/api/calls/{call_id}")).await;
    assert_eq!(call["outcome"], "answered");
    assert_eq!(call["reason"], "hangup");
    assert_eq!(call["live"], false);
    let events = call["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let position = |pred: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("missing in {events:#?}"))
    };
    let requested = position(&|e| e["name"] == "phone.requestCall");
    let ringing = position(&|e| e["kind"] == "push" && e["detail"] == "phoneCallRequested");
    let acknowledged = position(&|e| e["name"] == "phone.receivedCall" && e["error"].is_null());
    let receive_date_push = position(&|e| {
        e["kind"] == "push"
            && e["user"]["name"] == "Alice"
            && e["detail"] == format!("phoneCallWaiting receive_date={receive_date}")
    });
    let busy = position(&|e| e["kind"] == "note" && e["name"] == "busy refusal");
    let accepted = position(&|e| e["name"] == "phone.acceptCall");
    let hung_up = position(&|e| e["name"] == "phone.discardCall");
    assert!(requested < ringing && ringing < acknowledged);
    assert!(acknowledged < receive_date_push && receive_date_push < busy);
    assert!(busy < accepted && accepted < hung_up);
    assert!(
        events[busy]["detail"]
            .as_str()
            .unwrap()
            .starts_with("Carol → Bob refused as busy"),
        "{}",
        events[busy]["detail"]
    );
    assert_eq!(events[acknowledged]["detail"], "boolTrue");
    assert_eq!(events[acknowledged]["user"]["name"], "Bob");

    // The refused call has its own timeline; the bad acknowledgement is in the feed.
    let refused = json(&server, &format!("/api/calls/{refused_id}")).await;
    assert_eq!(refused["outcome"], "busy_refused");
    assert_eq!(refused["reason"], "busy");
    let overview = json(&server, "/api/overview").await;
    let feed = overview["feed"].as_array().unwrap();
    assert!(
        feed.iter()
            .any(|e| e["error"]["message"] == "CALL_PEER_INVALID")
    );
    let sessions = overview["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    let bob_session = sessions
        .iter()
        .find(|s| s["user"]["name"] == "Bob")
        .expect("Bob's session");
    assert_eq!(bob_session["transport"], "intermediate");
    assert_eq!(bob_session["obfuscated"], true);
    assert_eq!(bob_session["layer"], tl::Layer::LATEST.number());
    assert_eq!(
        bob_session["client"]["app_version"],
        concat!("mtcall ", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(bob_session["client"]["device_model"], "mtcall client");
    assert_eq!(overview["calls"]["recent"].as_array().unwrap().len(), 2);

    // Each message decoded on request.
    let seq = events[acknowledged]["seq"].as_u64().unwrap();
    let decoded = json(&server, &format!("/api/events/{seq}")).await;
    assert_eq!(decoded["request"]["_"], "phone.receivedCall");
    assert_eq!(decoded["request"]["peer"]["id"].as_i64(), Some(call_id));
    assert_eq!(decoded["result"], true);
    let seq = events[receive_date_push]["seq"].as_u64().unwrap();
    let decoded = json(&server, &format!("/api/events/{seq}")).await;
    assert_eq!(
        decoded["update"]["updates"][0]["phone_call"]["receive_date"].as_i64(),
        Some(i64::from(receive_date))
    );

    // The same timeline as text.
    let (status, text) = http_get(
        server.admin_addr(),
        &format!("/api/calls/{call_id}/text"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(text.contains("Bob [") && text.contains("→ server: phone.receivedCall ⇒ boolTrue"));

    // The live stream announced the call as it happened.
    let mut seen = String::new();
    let read = async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 8192];
        while !seen.contains("\"name\":\"phone.discardCall\"") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stream closed");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the stream carries the call");
    let head = seen.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(seen.contains("event: event\ndata: {"));
    assert!(seen.contains("event: call\ndata: {"));
    assert!(seen.contains("\"name\":\"phone.receivedCall\""));
    // Alice and Bob were told busy while the call lasted (and free again after).
    assert!(seen.contains("event: session\ndata: {"));
    assert!(seen.contains("\"busy\":true"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_address_refuses_what_it_should() {
    let mut config = server::Config::default();
    config.admin.token = Some("a-long-enough-admin-token".into());
    let server = TestServer::start_with(config).await;
    let admin = server.admin_addr();
    assert_eq!(http_get(admin, "/api/overview", "").await.0, 401);
    assert_eq!(
        http_get(admin, "/metrics", "Authorization: Bearer wrong\r\n")
            .await
            .0,
        401
    );
    let ok = http_get(
        admin,
        "/metrics",
        "Authorization: Bearer a-long-enough-admin-token\r\n",
    )
    .await;
    assert_eq!(ok.0, 200);
    assert!(ok.1.contains("mtcall_call_setups_total 0"));
    assert_eq!(
        http_get(admin, "/api/overview?token=a-long-enough-admin-token", "")
            .await
            .0,
        200
    );
    assert_eq!(
        http_get(admin, "/?token=a-long-enough-admin-token", "")
            .await
            .0,
        200
    );
    // The page's files hold no data: served without the token.
    assert_eq!(http_get(admin, "/app.js", "").await.0, 200);
    assert_eq!(http_get(admin, "/api/stream", "").await.0, 401);
    // Health checks hold no data either: no token, any `Host`.
    assert_eq!(http_get(admin, "/healthz", "").await, (200, "ok\n".into()));
    assert_eq!(
        http_get(admin, "/readyz", "").await,
        (200, "ready\n".into())
    );
    let probe = tokio::net::TcpStream::connect(admin).await.unwrap();
    let status = raw(probe, b"GET /readyz HTTP/1.1\r\nHost: lb.internal\r\n\r\n").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    // Without a token, only requests that name the server by address (no DNS rebinding).
    let open = TestServer::start().await;
    let admin = open.admin_addr();
    assert_eq!(http_get(admin, "/api/calls", "").await.0, 200);
    let rebound = tokio::net::TcpStream::connect(admin).await.unwrap();
    let status = raw(
        rebound,
        b"GET /api/calls HTTP/1.1\r\nHost: evil.example:4431\r\n\r\n",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 421"), "{status}");
    assert_eq!(http_get(admin, "/api/calls/123", "").await.0, 404);
    assert_eq!(http_get(admin, "/api/calls/nonsense", "").await.0, 404);
    assert_eq!(http_get(admin, "/api/events/999999", "").await.0, 404);
    assert_eq!(http_get(admin, "/nothing", "").await.0, 404);
    for bad in [
        &b"POST /api/calls HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"[..],
        b"BREW /coffee HTCPCP/1.0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ] {
        let s = tokio::net::TcpStream::connect(admin).await.unwrap();
        let status = raw(s, bad).await;
        assert!(
            status.starts_with("HTTP/1.1 405") || status.starts_with("HTTP/1.1 400"),
            "{status}"
        );
    }
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 40_000));
    huge.extend_from_slice(b"\r\n\r\n");
    let s = tokio::net::TcpStream::connect(admin).await.unwrap();
    assert!(raw(s, &huge).await.starts_with("HTTP/1.1 431"));
    // The server still serves after all that.
    assert_eq!(http_get(admin, "/api/overview", "").await.0, 200);
}

async fn raw(mut s: tokio::net::TcpStream, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_admin_connection_serves_request_after_request() {
    let server = TestServer::start().await;
    let admin = server.admin_addr();
    let s = tokio::net::TcpStream::connect(admin).await.unwrap();
    let keep = format!("GET /api/overview HTTP/1.1\r\nHost: {admin}\r\n\r\n");
    let head = format!("HEAD /metrics HTTP/1.1\r\nHost: {admin}\r\n\r\n");
    let last = format!("GET /app.css HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    let answers = raw(s, format!("{keep}{head}{last}").as_bytes()).await;
    assert_eq!(
        answers.matches("HTTP/1.1 200 OK\r\n").count(),
        3,
        "{answers}"
    );
    // HEAD has its length but no body: the style sheet's rules follow the overview's JSON.
    assert!(answers.contains("\"node\""), "{answers}");
    assert!(
        !answers.contains("mtcall_call_setups_total"),
        "HEAD sent a body"
    );
}
