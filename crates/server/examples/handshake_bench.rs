//! Auth-key creations per second against the real server over TCP, next to the bound its own
//! crypto sets, measured in the same run: the RSA private operation and the two 2048-bit modular
//! exponentiations a server does per key, and the two a client does.
//!
//! `cargo run --release -p mtcall-server --example handshake_bench -- [seconds] [concurrency]`
//! (the load generator shares the machine's cores with the server).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mtproto::crypto::rsa_key::PublicKey;
use mtproto::crypto::{Entropy, OsEntropy, dh};
use mtproto::handshake::{ClientHandshake, RsaScheme, plain};
use mtproto::transport::{ClientFrame, ClientTransport, Kind};
use server::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn per_op(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() / f64::from(n)
}

async fn call(
    stream: &mut TcpStream,
    t: &mut ClientTransport,
    body: &[u8],
    buf: &mut [u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    t.encode(&plain::encode(1 << 32, body), false, &mut out);
    stream.write_all(&out).await.unwrap();
    loop {
        if let Some(ClientFrame::Packet(p)) = t.next_frame().unwrap() {
            return plain::decode(&p).unwrap().1.to_vec();
        }
        let n = stream.read(buf).await.unwrap();
        assert!(n > 0, "server closed the connection");
        t.feed(&buf[..n]);
    }
}

async fn handshake(
    stream: &mut TcpStream,
    t: &mut ClientTransport,
    key: &PublicKey,
    buf: &mut [u8],
) {
    let e = &mut OsEntropy;
    let (mut hs, req) = ClientHandshake::start(RsaScheme::Pad, 2, None, e);
    let res = call(stream, t, &req, buf).await;
    let req = hs.on_res_pq(&res, std::slice::from_ref(key), e).unwrap();
    let res = call(stream, t, &req, buf).await;
    let req = hs.on_dh_params(&res, 0, e).unwrap();
    let res = call(stream, t, &req, buf).await;
    hs.on_dh_answer(&res).unwrap();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let dir = std::env::temp_dir().join(format!("mtcall-hs-bench-{}", std::process::id()));
    let server = Server::start(Config {
        data_dir: dir.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    })
    .await
    .unwrap();
    let key = PublicKey::from_pkcs1_pem(&std::fs::read_to_string(dir.join("server.pub")).unwrap())
        .unwrap();
    let server_key = mtproto::crypto::rsa_key::ServerKey::from_pkcs1_pem(
        &std::fs::read_to_string(dir.join("server.key")).unwrap(),
    )
    .unwrap();

    // Baseline: the crypto each key costs, measured now.
    let mut block = [0u8; 256];
    OsEntropy.fill(&mut block[1..]);
    let c = key.encrypt_raw(&block).unwrap();
    let rsa = per_op(50, || {
        server_key.decrypt_raw(&c).unwrap();
    });
    let a: [u8; 256] = OsEntropy.array();
    let modpow = per_op(50, || {
        dh::mod_pow(&dh::DH_PRIME[..255], &a);
    });
    let server_cost = rsa + 2.0 * modpow;
    let both_cost = server_cost + 2.0 * modpow;

    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..concurrency {
        let (done, key, addr) = (done.clone(), key.clone(), server.local_addr());
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let mut t = ClientTransport::new(Kind::Full, false, 2, &mut OsEntropy);
            let mut buf = vec![0u8; 8192];
            while Instant::now() < deadline {
                handshake(&mut stream, &mut t, &key, &mut buf).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = done.load(Ordering::Relaxed) as f64 / elapsed;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    let server_bound = cores as f64 / server_cost;
    let shared_bound = cores as f64 / both_cost;
    println!("cores {cores}, {concurrency} client tasks, {seconds} s");
    println!(
        "RSA-2048 private op: {:.2} ms; 2048-bit modpow: {:.2} ms",
        rsa * 1e3,
        modpow * 1e3
    );
    println!(
        "server crypto per key (RSA + 2 modpow): {:.2} ms -> bound {:.0} keys/s on {cores} cores",
        server_cost * 1e3,
        server_bound
    );
    println!(
        "server + in-process client crypto per key (+2 modpow): {:.2} ms -> bound {:.0} keys/s",
        both_cost * 1e3,
        shared_bound
    );
    println!(
        "measured: {rate:.0} auth keys/s = {:.2} x the shared bound ({:.2} x the server-only bound)",
        rate / shared_bound,
        rate / server_bound
    );
}
