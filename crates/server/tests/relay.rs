//! The reflector over real UDP sockets, with calls set up by the client library: each
//! confirmed call is offered this node's reflector with a peer tag per party; packets laid out
//! as the clients' reflector ports write them are relayed between the two parties with the
//! recipient's tag; random datagrams, unknown tags, a third address presenting a live tag and
//! a flood on one tag get nothing, while the live call keeps flowing; the tag dies with the
//! call. Also: TURN credentials in `phoneCall.connections`, the p2p policy, `--no-relay`.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use client::calls::EstablishedCall;
use mtproto::transport::Kind;
use relay::packet::{data, hello};
use server::Config;
use server::config::P2pPolicy;
use support::*;
use tl::{enums, types};
use tokio::net::UdpSocket;

/// A confirmed call between two new users; each side's `phoneCall`.
async fn confirmed_call(
    server: &TestServer,
    n: u32,
) -> (Client, EstablishedCall, Client, EstablishedCall) {
    let mut alice = connect(server, Kind::Intermediate, false).await;
    alice
        .login(&format!("99966{n:03}01"), "Alice")
        .await
        .unwrap();
    let mut bob = connect(server, Kind::Intermediate, false).await;
    bob.login(&format!("99966{n:03}02"), "Bob").await.unwrap();
    bob.sync_update_state().await.unwrap();
    let bob_user = user_of(&mut alice, &format!("99966{n:03}02")).await;
    let outgoing = alice.place_call(bob_user, false).await.unwrap();
    let incoming = bob.next_incoming_call(true).await.unwrap();
    let (a, b) = tokio::join!(outgoing.established(&mut alice), incoming.accept(&mut bob));
    (alice, a.unwrap(), bob, b.unwrap())
}

fn reflectors(call: &EstablishedCall) -> Vec<types::PhoneConnection> {
    call.connections
        .iter()
        .filter_map(|c| match c {
            enums::PhoneConnection::PhoneConnection(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn turns(call: &EstablishedCall) -> Vec<types::PhoneConnectionWebrtc> {
    call.connections
        .iter()
        .filter_map(|c| match c {
            enums::PhoneConnection::Webrtc(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

/// The next datagram on `socket` within `wait`, if any.
async fn recv(socket: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    let (n, _) = tokio::time::timeout(wait, socket.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    buf.truncate(n);
    Some(buf)
}

const A_END: [u8; 4] = [0xA1, 0xA2, 0xA3, 0xA4];
const B_END: [u8; 4] = [0xB1, 0xB2, 0xB3, 0xB4];
const QUIET: Duration = Duration::from_millis(200);
const SOON: Duration = Duration::from_secs(5);

/// Two sockets bound as the parties' relay ports (a hello each, answered).
async fn bound_ends(
    relay: SocketAddr,
    caller_tag: &[u8; 16],
    callee_tag: &[u8; 16],
) -> (UdpSocket, UdpSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.send_to(&hello(caller_tag, A_END), relay).await.unwrap();
    assert_eq!(
        recv(&a, SOON).await.unwrap(),
        hello(caller_tag, A_END),
        "hello answered"
    );
    b.send_to(&hello(callee_tag, B_END), relay).await.unwrap();
    assert_eq!(recv(&b, SOON).await.unwrap(), hello(callee_tag, B_END));
    (a, b)
}

#[tokio::test]
async fn a_confirmed_call_is_relayed_between_its_parties_and_nobody_else() {
    let server = TestServer::start().await;
    let relay = server.relay_addr();
    let (mut alice, a, _bob, b) = confirmed_call(&server, 101).await;

    // One reflector entry each (UDP; TCP is off by default), the same id and address, a
    // different tag per party.
    let (ra, rb) = (reflectors(&a), reflectors(&b));
    assert_eq!((ra.len(), rb.len()), (1, 1), "{:?}", a.connections);
    assert_eq!(
        (ra[0].id, &ra[0].ip, ra[0].port),
        (rb[0].id, &rb[0].ip, rb[0].port)
    );
    assert_eq!(ra[0].port, i32::from(relay.port()));
    assert_eq!(ra[0].ip, "127.0.0.1");
    assert_ne!(ra[0].peer_tag[..12], rb[0].peer_tag[..12]);
    assert!(!ra[0].tcp);
    assert!(a.p2p_allowed && b.p2p_allowed, "p2p is allowed by default");
    let caller_tag: [u8; 16] = ra[0].peer_tag[..].try_into().unwrap();
    let callee_tag: [u8; 16] = rb[0].peer_tag[..].try_into().unwrap();

    let (ea, eb) = bound_ends(relay, &caller_tag, &callee_tag).await;
    // Caller to callee: the callee receives it under its own tag, the rest untouched.
    ea.send_to(&data(&caller_tag, B_END, A_END, b"srtp from a"), relay)
        .await
        .unwrap();
    let got = recv(&eb, SOON).await.expect("relayed to the callee");
    assert_eq!(got[..12], callee_tag[..12]);
    assert_eq!(
        got[12..],
        data(&caller_tag, B_END, A_END, b"srtp from a")[12..]
    );
    eb.send_to(&data(&callee_tag, A_END, B_END, b"srtp from b"), relay)
        .await
        .unwrap();
    let got = recv(&ea, SOON).await.expect("relayed to the caller");
    assert_eq!(got[..12], caller_tag[..12]);

    // Hostile datagrams from a third address: random bytes, an unknown tag, the caller's
    // tag with the caller's end tag (a takeover), the caller's tag with data for the callee.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..50 {
        let junk: Vec<u8> = (0..97).map(|i| (i * 37 % 251) as u8).collect();
        stranger.send_to(&junk, relay).await.unwrap();
    }
    stranger
        .send_to(&hello(&[9; 16], [1; 4]), relay)
        .await
        .unwrap();
    stranger
        .send_to(&data(&[9; 16], B_END, A_END, b"x"), relay)
        .await
        .unwrap();
    stranger
        .send_to(&hello(&caller_tag, A_END), relay)
        .await
        .unwrap();
    stranger
        .send_to(&data(&caller_tag, B_END, A_END, b"forged"), relay)
        .await
        .unwrap();
    assert!(
        recv(&stranger, QUIET).await.is_none(),
        "no answer to a stranger"
    );
    assert!(
        recv(&eb, QUIET).await.is_none(),
        "nothing forged reached the callee"
    );
    // The callee's traffic still goes to the caller's real address.
    eb.send_to(&data(&callee_tag, A_END, B_END, b"still here"), relay)
        .await
        .unwrap();
    assert!(recv(&ea, SOON).await.is_some());
    assert!(recv(&stranger, QUIET).await.is_none());

    // A flood on the caller's tag is cut at its end's rate; the call still carries.
    let flood = data(&caller_tag, B_END, A_END, &[0u8; 160]);
    for _ in 0..6_000 {
        let _ = ea.send_to(&flood, relay).await;
    }
    let mut through = 0;
    while recv(&eb, QUIET).await.is_some() {
        through += 1;
    }
    assert!(through > 100, "part of the flood is relayed ({through})");
    assert!(through < 5_000, "the flood is capped ({through})");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    eb.send_to(&data(&callee_tag, A_END, B_END, b"after the flood"), relay)
        .await
        .unwrap();
    let got = recv(&ea, SOON).await.expect("the call carries on");
    assert_eq!(got[24..24 + 15], *b"after the flood");

    // The counters saw it, by reason.
    let (status, metrics) = http_get(server.admin_addr(), "/metrics", "").await;
    assert_eq!(status, 200);
    let sample = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    };
    assert!(sample("mtcall_relay_forwarded_packets_total") >= 100.0);
    assert!(sample("mtcall_relay_dropped_total{reason=\"malformed\"}") >= 50.0);
    assert!(sample("mtcall_relay_dropped_total{reason=\"unknown_tag\"}") >= 2.0);
    assert!(sample("mtcall_relay_dropped_total{reason=\"not_an_end\"}") >= 2.0);
    assert!(sample("mtcall_relay_dropped_total{reason=\"end_over_limit\"}") >= 1.0);
    assert_eq!(sample("mtcall_relay_calls"), 1.0);
    assert_eq!(sample("mtcall_relay_calls_relaying"), 1.0);
    // The inspector shows the call's media path and traffic.
    let (_, calls) = http_get(server.admin_addr(), "/api/calls", "").await;
    let calls: serde_json::Value = serde_json::from_str(&calls).unwrap();
    let media = &calls["live"][0]["media"];
    assert_eq!(media["path"], "reflector", "{media}");
    assert!(media["reflector"]["packets"].as_u64().unwrap() >= 100);
    assert_eq!(
        media["reflector"]["caller_ends"][0],
        format!("udp {}", ea.local_addr().unwrap())
    );

    // The call ends: its tags die at once.
    a.hang_up(&mut alice, 3).await.unwrap();
    ea.send_to(&data(&caller_tag, B_END, A_END, b"too late"), relay)
        .await
        .unwrap();
    ea.send_to(&hello(&caller_tag, A_END), relay).await.unwrap();
    assert!(
        recv(&eb, QUIET).await.is_none(),
        "nothing relayed after the call"
    );
    assert!(recv(&ea, QUIET).await.is_none(), "no answer after the call");
}

#[tokio::test]
async fn turn_credentials_and_the_p2p_policy_are_in_the_call() {
    let mut config = Config::default();
    config.calls.p2p = P2pPolicy::Never;
    config.relay.turn = Some(
        toml::from_str(
            "secret = \"coturn secret\"\nservers = [\"127.0.0.1:3478\", \"127.0.0.2:3479\"]\ncredential_ttl_secs = 600\n",
        )
        .unwrap(),
    );
    let server = TestServer::start_with(config).await;
    let (_alice, a, _bob, b) = confirmed_call(&server, 102).await;
    assert!(!a.p2p_allowed && !b.p2p_allowed, "p2p = never");
    let (ta, tb) = (turns(&a), turns(&b));
    assert_eq!(ta.len(), 2);
    assert_eq!((ta[1].ip.as_str(), ta[1].port), ("127.0.0.2", 3479));
    assert!(ta.iter().all(|t| t.turn && t.stun));
    // `expiry:user`, expiry within the lifetime; the password is the HMAC coturn recomputes.
    let (expiry, user) = ta[0].username.split_once(':').unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expiry: i64 = expiry.parse().unwrap();
    assert!(
        (now + 590..=now + 610).contains(&expiry),
        "{expiry} vs {now}"
    );
    let (_, password) =
        server::relay::turn::credentials("coturn secret", user.parse().unwrap(), expiry);
    assert_eq!(ta[0].password, password);
    assert_ne!(
        ta[0].username, tb[0].username,
        "each party has its own user"
    );
    assert_eq!(reflectors(&a).len(), 1, "the reflector is still offered");
}

/// A free TCP port `p` for MTProto whose UDP port `p + 2` is held by the returned socket.
fn a_port_whose_reflector_port_is_taken() -> (u16, std::net::UdpSocket) {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if let Ok(udp) = std::net::UdpSocket::bind(("127.0.0.1", port.wrapping_add(2))) {
            return (port, udp);
        }
    }
}

#[tokio::test]
async fn the_reflector_beside_a_taken_port() {
    // A fixed MTProto port whose port + 2 is taken: the server starts, without a reflector.
    let (port, _held) = a_port_whose_reflector_port_is_taken();
    let mut config = Config {
        data_dir: std::env::temp_dir().join(format!("mtcall-test-taken-{port}")),
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        ..Config::default()
    };
    // Away from the default admin port, which a server on this machine may hold.
    config.admin.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let fixed = TestServer::launch(config).await;
    assert_eq!(fixed.addr.port(), port);
    assert!(fixed.server.as_ref().unwrap().relay_addr().is_none());
    // On a free port the reflector takes any free port too (it always runs), not the
    // MTProto port + 2 that another program may hold: three servers landing on + 2 by chance
    // is one in 10^13.
    let mut beside = 0;
    for _ in 0..3 {
        let server = TestServer::start().await;
        beside += usize::from(server.relay_addr().port() == server.addr.port().wrapping_add(2));
    }
    assert!(beside < 3, "the reflector followed the MTProto port");
}

#[tokio::test]
async fn without_the_reflector_calls_are_offered_none() {
    let mut config = Config::default();
    config.relay.enabled = false;
    let server = TestServer::start_with(config).await;
    assert!(server.server.as_ref().unwrap().relay_addr().is_none());
    let (_alice, a, _bob, _b) = confirmed_call(&server, 103).await;
    assert!(a.connections.is_empty(), "{:?}", a.connections);
    assert!(a.p2p_allowed);
}

/// Writes one TCP reflector frame.
async fn write_frame(stream: &mut tokio::net::TcpStream, body: &[u8]) {
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(&(body.len() as u32).to_le_bytes())
        .await
        .unwrap();
    stream.write_all(body).await.unwrap();
}

/// Reads one TCP reflector frame within `wait`.
async fn read_frame(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(wait, async {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.ok()?;
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        stream.read_exact(&mut body).await.ok()?;
        Some(body)
    })
    .await
    .ok()?
}

#[tokio::test]
async fn one_party_over_tcp_and_the_other_over_udp() {
    use tokio::io::AsyncWriteExt;
    let mut config = Config::default();
    config.relay.tcp = true;
    let server = TestServer::start_with(config).await;
    let relay = server.relay_addr();
    let (_alice, a, _bob, b) = confirmed_call(&server, 104).await;
    // UDP, then TCP with the next id, the same address and tag.
    let (ra, rb) = (reflectors(&a), reflectors(&b));
    assert_eq!((ra.len(), rb.len()), (2, 2), "{:?}", a.connections);
    assert!(!ra[0].tcp && ra[1].tcp && rb[1].tcp);
    assert_eq!((ra[1].id, ra[1].port), (ra[0].id + 1, ra[0].port));
    assert_eq!(ra[1].peer_tag, ra[0].peer_tag);
    let caller_tag: [u8; 16] = reflectors(&a)[1].peer_tag[..].try_into().unwrap();
    let callee_tag: [u8; 16] = reflectors(&b)[0].peer_tag[..].try_into().unwrap();

    // The caller's port over TCP: prologue, then the 20-byte hello (no answer: the connection
    // itself made the port ready).
    let mut tcp = tokio::net::TcpStream::connect(relay).await.unwrap();
    tcp.write_all(&[0xEE; 4]).await.unwrap();
    let mut tcp_hello = caller_tag[..12].to_vec();
    tcp_hello.extend(A_END);
    tcp_hello.extend([0; 4]);
    write_frame(&mut tcp, &tcp_hello).await;
    // The callee's over UDP.
    let eb = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    eb.send_to(&hello(&callee_tag, B_END), relay).await.unwrap();
    assert!(recv(&eb, SOON).await.is_some());

    eb.send_to(&data(&callee_tag, A_END, B_END, b"udp to tcp"), relay)
        .await
        .unwrap();
    let got = read_frame(&mut tcp, SOON)
        .await
        .expect("a frame for the caller");
    assert_eq!(got[..12], caller_tag[..12]);
    assert_eq!(got[24..34], *b"udp to tcp");
    write_frame(&mut tcp, &data(&caller_tag, B_END, A_END, b"tcp to udp")).await;
    let got = recv(&eb, SOON).await.expect("a datagram for the callee");
    assert_eq!(got[..12], callee_tag[..12]);
    assert_eq!(got[24..34], *b"tcp to udp");

    // A connection without the prologue, or with an oversized frame, is closed.
    for opening in [
        vec![1, 2, 3, 4],
        [vec![0xEE; 4], 1_000_000u32.to_le_bytes().to_vec()].concat(),
    ] {
        let mut bad = tokio::net::TcpStream::connect(relay).await.unwrap();
        bad.write_all(&opening).await.unwrap();
        assert!(read_frame(&mut bad, SOON).await.is_none(), "closed");
    }
    // The TCP party still gets the call's packets.
    eb.send_to(&data(&callee_tag, A_END, B_END, b"still open"), relay)
        .await
        .unwrap();
    assert!(read_frame(&mut tcp, SOON).await.is_some());
}
