//! `relay`: confirmed calls whose two ends bounce media-sized packets through the server's
//! reflector (caller → reflector → callee → reflector → caller, a window of packets in
//! flight per call), against the same clients through a plain UDP forwarder in this process
//! (an echo that sends each datagram to its sender's partner: no tags, no limits, no maps
//! beyond that one). Also the reflector's memory per relayed call, from the sans-IO relay
//! holding many calls with both ends bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use relay::packet::{self, data, hello};
use tl::enums;
use tokio::net::UdpSocket;

use super::{Options, Target};

/// Bytes of payload per packet: an Opus frame of a voice call with its SRTP header.
const PAYLOAD: usize = 160;
const CALLER_END: [u8; 4] = [0xCA, 0x11, 0xE4, 0x01];
const CALLEE_END: [u8; 4] = [0xCA, 0x11, 0xEE, 0x02];

/// One call's two relay ports and the headers each writes.
struct Ends {
    caller: Arc<UdpSocket>,
    callee: Arc<UdpSocket>,
    caller_tag: [u8; 16],
    callee_tag: [u8; 16],
}

/// Round trips and their times, from every call.
#[derive(Default)]
struct Run {
    round_trips: AtomicU64,
    lost: AtomicU64,
    samples: std::sync::Mutex<Vec<Duration>>,
}

/// A confirmed call between two new users, with the reflector it was offered and each
/// party's tag. The clients are kept: the call lives while they do.
async fn confirmed(
    t: &Target,
    i: usize,
) -> Result<
    (
        SocketAddr,
        [u8; 16],
        [u8; 16],
        client::Client,
        client::Client,
    ),
    String,
> {
    let e = |e: client::ClientError| e.to_string();
    let (mut caller, mut callee, user) = t.pair(60000 + 2 * i).await.map_err(e)?;
    callee.sync_update_state().await.map_err(e)?;
    let outgoing = caller
        .place_call(user, false)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let incoming = callee
        .next_incoming_call(true)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let (a, b) = tokio::join!(
        outgoing.established(&mut caller),
        incoming.accept(&mut callee)
    );
    let (a, b) = (
        a.map_err(|e| format!("{e:?}"))?,
        b.map_err(|e| format!("{e:?}"))?,
    );
    let reflector = |c: &client::calls::EstablishedCall| {
        c.connections.iter().find_map(|c| match c {
            enums::PhoneConnection::PhoneConnection(r) => Some(r.clone()),
            _ => None,
        })
    };
    let (Some(ra), Some(rb)) = (reflector(&a), reflector(&b)) else {
        return Err("the call was offered no reflector (is the server's relay on?)".into());
    };
    let addr: SocketAddr = format!("{}:{}", ra.ip, ra.port)
        .parse()
        .map_err(|e| format!("reflector address: {e}"))?;
    let tag = |v: &[u8]| -> Result<[u8; 16], String> {
        v.try_into()
            .map_err(|_| "a peer tag is not 16 bytes".to_string())
    };
    Ok((addr, tag(&ra.peer_tag)?, tag(&rb.peer_tag)?, caller, callee))
}

/// Binds the two ends of a call and has the reflector answer a hello from each.
async fn bind_ends(
    reflector: SocketAddr,
    caller_tag: [u8; 16],
    callee_tag: [u8; 16],
) -> Result<Ends, String> {
    let io = |e: std::io::Error| e.to_string();
    let ends = Ends {
        caller: Arc::new(UdpSocket::bind("127.0.0.1:0").await.map_err(io)?),
        callee: Arc::new(UdpSocket::bind("127.0.0.1:0").await.map_err(io)?),
        caller_tag,
        callee_tag,
    };
    let mut buf = [0u8; 256];
    for (socket, tag, end) in [
        (&ends.caller, &caller_tag, CALLER_END),
        (&ends.callee, &callee_tag, CALLEE_END),
    ] {
        socket
            .send_to(&hello(tag, end), reflector)
            .await
            .map_err(io)?;
        tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
            .await
            .map_err(|_| "the reflector did not answer a hello".to_string())?
            .map_err(io)?;
    }
    Ok(ends)
}

/// Bounces packets through `via` for `seconds`: the callee sends back each packet it gets,
/// the caller keeps `window` in flight and times each round trip.
async fn bounce(ends: &Ends, via: SocketAddr, window: usize, seconds: u64, run: &Run) {
    let callee = ends.callee.clone();
    let callee_tag = ends.callee_tag;
    let bouncer = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, _)) = callee.recv_from(&mut buf).await {
            // The same payload back, under the callee's own header.
            let header = data(&callee_tag, CALLER_END, CALLEE_END, &[]);
            buf[..20].copy_from_slice(&header[..20]);
            let _ = callee.send_to(&buf[..n], via).await;
        }
    });
    let mut sent_at: HashMap<u64, Instant> = HashMap::new();
    let mut seq = 0u64;
    let mut packet = data(&ends.caller_tag, CALLEE_END, CALLER_END, &[0u8; PAYLOAD]);
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut samples = Vec::new();
    let (mut trips, mut lost) = (0u64, 0u64);
    while Instant::now() < deadline {
        while sent_at.len() < window {
            seq += 1;
            packet[packet::DATA_HEADER..packet::DATA_HEADER + 8]
                .copy_from_slice(&seq.to_le_bytes());
            sent_at.insert(seq, Instant::now());
            let _ = ends.caller.send_to(&packet, via).await;
        }
        match tokio::time::timeout(Duration::from_millis(200), ends.caller.recv_from(&mut buf))
            .await
        {
            Ok(Ok((n, _))) if n >= packet::DATA_HEADER + 8 => {
                let back = u64::from_le_bytes(
                    buf[packet::DATA_HEADER..packet::DATA_HEADER + 8]
                        .try_into()
                        .expect("8 bytes"),
                );
                if let Some(at) = sent_at.remove(&back) {
                    samples.push(at.elapsed());
                    trips += 1;
                }
            }
            Ok(_) => {}
            Err(_) => {
                // Nothing came back for a while: what is in flight is lost.
                lost += sent_at.len() as u64;
                sent_at.clear();
            }
        }
    }
    bouncer.abort();
    run.round_trips.fetch_add(trips, Ordering::Relaxed);
    run.lost.fetch_add(lost, Ordering::Relaxed);
    run.samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(samples);
}

/// A plain UDP forwarder: each datagram goes to its sender's partner, unchanged.
async fn forwarder(pairs: &[(SocketAddr, SocketAddr)]) -> Result<SocketAddr, String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    let partner: HashMap<SocketAddr, SocketAddr> = pairs
        .iter()
        .flat_map(|(a, b)| [(*a, *b), (*b, *a)])
        .collect();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if let Some(to) = partner.get(&from) {
                let _ = socket.send_to(&buf[..n], to).await;
            }
        }
    });
    Ok(addr)
}

/// Runs every call's bounce through `via` (or each call's own address) at once.
async fn measure(calls: &[(SocketAddr, Arc<Ends>)], via: Option<SocketAddr>, o: &Options) -> Run {
    let run = Arc::new(Run::default());
    let mut tasks = Vec::new();
    for (reflector, ends) in calls {
        let (ends, run) = (ends.clone(), run.clone());
        let to = via.unwrap_or(*reflector);
        let (window, seconds) = (o.window, o.seconds);
        tasks.push(tokio::spawn(async move {
            bounce(&ends, to, window, seconds, &run).await
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Arc::try_unwrap(run).unwrap_or_default()
}

fn percentiles(run: &Run) -> (Duration, Duration) {
    let mut v = run
        .samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if v.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (at(0.50), at(0.99))
}

/// Resident memory of this process, bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// A relay with `n` granted calls, both ends of each bound by a hello. Call `i`'s caller tag
/// holds `i` in its first 8 bytes (the callee's differs in byte 8), and its caller end is
/// `10.x.y.z:1` with `x.y.z` the low 24 bits of `i`.
fn filled(n: usize, settings: relay::Settings) -> relay::Relay {
    let mut relay = relay::Relay::new(relay::Settings {
        max_calls: n,
        ..settings
    });
    for i in 0..n {
        let (caller, callee) = tags_of(i);
        let grant = relay::Grant {
            call_id: i as i64,
            caller,
            callee,
        };
        relay.grant(grant, 0).expect("room for every call");
        let port = |k: u16| SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], k));
        relay.handle(0, port(1), &mut hello(&caller, CALLER_END));
        relay.handle(0, port(2), &mut hello(&callee, CALLEE_END));
    }
    relay
}

/// The caller's and the callee's tags of call `i` in [`filled`].
fn tags_of(i: usize) -> ([u8; 16], [u8; 16]) {
    let mut caller = [0u8; 16];
    caller[..8].copy_from_slice(&(i as u64).to_le_bytes());
    let mut callee = caller;
    callee[8] = 1;
    (caller, callee)
}

/// Bytes per call of a relay holding `n` granted calls with both ends bound.
fn memory_per_call(n: usize) -> f64 {
    let before = rss();
    let relay = filled(n, relay::Settings::default());
    let grown = rss().saturating_sub(before);
    assert_eq!(relay.calls().count(), n);
    grown as f64 / n as f64
}

/// Nanoseconds per forwarded packet in the sans-IO relay alone (no sockets), over `n`
/// packets of one call among `calls` granted ones.
fn core_ns_per_packet(n: u64, calls: usize) -> f64 {
    let unlimited = u64::MAX / 1_000_000;
    let mut relay = filled(
        calls,
        relay::Settings {
            end_packets_per_sec: unlimited,
            end_bytes_per_sec: unlimited,
            call_packets_per_sec: unlimited,
            call_bytes_per_sec: unlimited,
            ..relay::Settings::default()
        },
    );
    let (caller, _) = tags_of(0);
    let from = SocketAddr::from(([10, 0, 0, 0], 1));
    let mut packet = data(&caller, CALLEE_END, CALLER_END, &[0u8; PAYLOAD]);
    let started = Instant::now();
    for i in 0..n {
        packet[..12].copy_from_slice(&caller[..12]);
        let v = relay.handle(i / 1000, from, std::hint::black_box(&mut packet));
        assert!(matches!(v, relay::Verdict::Forward { .. }));
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

pub async fn run(t: &Target, o: &Options) -> Result<(), String> {
    let mut calls = Vec::new();
    let mut clients = Vec::new();
    for i in 0..o.concurrency {
        let (reflector, caller_tag, callee_tag, caller, callee) = confirmed(t, i).await?;
        let ends = bind_ends(reflector, caller_tag, callee_tag).await?;
        calls.push((reflector, Arc::new(ends)));
        clients.push((caller, callee));
    }
    println!(
        "{} calls, {} packets of {} bytes in flight per call",
        calls.len(),
        o.window,
        PAYLOAD + packet::DATA_HEADER
    );
    let cpu = super::cpu::own();
    let relayed = measure(&calls, None, o).await;
    let relayed_cpu = super::cpu::own() - cpu;
    let pairs: Vec<(SocketAddr, SocketAddr)> = calls
        .iter()
        .map(|(_, e)| {
            (
                e.caller.local_addr().expect("bound"),
                e.callee.local_addr().expect("bound"),
            )
        })
        .collect();
    let plain = forwarder(&pairs).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu = super::cpu::own();
    let baseline = measure(&calls, Some(plain), o).await;
    let baseline_cpu = super::cpu::own() - cpu;
    let secs = o.seconds as f64;
    // Each round trip passes the relay twice.
    let rate = |r: &Run| 2.0 * r.round_trips.load(Ordering::Relaxed) as f64 / secs;
    let (r50, r99) = percentiles(&relayed);
    let (b50, b99) = percentiles(&baseline);
    println!(
        "reflector: {:.0} packets/s relayed, round trip p50 {r50:?} p99 {r99:?}, {} lost",
        rate(&relayed),
        relayed.lost.load(Ordering::Relaxed)
    );
    println!(
        "forwarder: {:.0} packets/s forwarded, round trip p50 {b50:?} p99 {b99:?}, {} lost",
        rate(&baseline),
        baseline.lost.load(Ordering::Relaxed)
    );
    println!(
        "ratio: the reflector relays {:.2}x the forwarder's packets/s; adds {:?} at p50, {:?} at p99 per round trip (two passes)",
        rate(&relayed) / rate(&baseline).max(1.0),
        r50.saturating_sub(b50),
        r99.saturating_sub(b99)
    );
    // CPU of the whole process (clients, and the reflector or the forwarder) per pass.
    let passes = |r: &Run| (2 * r.round_trips.load(Ordering::Relaxed)).max(1) as f64;
    let (rc, bc) = (
        relayed_cpu / passes(&relayed) * 1e6,
        baseline_cpu / passes(&baseline) * 1e6,
    );
    println!(
        "CPU per packet (the whole process): reflector {rc:.2} µs, forwarder {bc:.2} µs; the reflector adds {:.2} µs",
        rc - bc
    );
    println!(
        "relay core alone (no sockets): {:.0} ns per forwarded packet, one call of 10,000 granted",
        core_ns_per_packet(2_000_000, 10_000)
    );
    let n = 50_000;
    println!(
        "memory: {:.0} bytes per relayed call (the relay holding {n} calls, both ends bound)",
        memory_per_call(n)
    );
    drop(clients);
    Ok(())
}
