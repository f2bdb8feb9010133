//! `handshake`: auth-key creations per second over TCP, against the bound the crypto sets,
//! measured in the same run: the RSA-2048 private operation and the 2048-bit modular
//! exponentiations (two on the server, two on the in-process clients sharing the cores).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::Raw;
use mtproto::crypto::rsa_key::ServerKey;
use mtproto::crypto::{Entropy, OsEntropy, dh};
use mtproto::handshake::RsaScheme;
use mtproto::transport::Kind;

use super::{Options, Progress, Target};

fn per_op(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() / f64::from(n)
}

pub async fn run(t: &Target, o: &Options) -> Result<(), String> {
    // Baseline: the crypto one key costs.
    let key = match &t.private_pem {
        Some(pem) => ServerKey::from_pkcs1_pem(pem).map_err(|e| e.to_string())?,
        None => ServerKey::generate().map_err(|e| e.to_string())?,
    };
    let mut block = [0u8; 256];
    OsEntropy.fill(&mut block[1..]);
    let c = key.public().encrypt_raw(&block).ok_or("RSA block")?;
    let rsa = per_op(40, || {
        key.decrypt_raw(&c);
    });
    let secret: [u8; 256] = OsEntropy.array();
    let modpow = per_op(40, || {
        dh::mod_pow(&dh::DH_PRIME[..255], &secret);
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let server_cost = rsa + 2.0 * modpow;
    let shared_cost = server_cost + 2.0 * modpow;

    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let (done, key, addr) = (done.clone(), t.key.clone(), t.addr);
        tasks.push(tokio::spawn(async move {
            let mut raw = Raw::connect(addr, Kind::Full, false).await?;
            while Instant::now() < deadline {
                raw.handshake(&key, RsaScheme::Pad, None).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), client::ClientError>(())
        }));
    }
    let mut progress = Progress::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        progress.tick("keys", done.load(Ordering::Relaxed));
    }
    for task in tasks {
        task.await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!(
        "RSA-2048 private op {:.2} ms; 2048-bit modpow {:.2} ms (measured now)",
        rsa * 1e3,
        modpow * 1e3
    );
    println!(
        "bound, server crypto only: {:.0} keys/s; with the in-process clients' crypto: {:.0} keys/s",
        cores / server_cost,
        cores / shared_cost
    );
    println!(
        "measured: {rate:.0} auth keys/s = {:.2} x the shared bound",
        rate / (cores / shared_cost)
    );
    Ok(())
}
