//! `latency`: one request in flight per client; percentiles of an RPC (`help.getNearestDc`)
//! against those of a plain TCP echo of the same frame size on this machine, in the same run.

use std::time::{Duration, Instant};

use client::Client;
use mtproto::transport::Kind;
use tl::functions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Options, Target};

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (at(0.50), at(0.99), at(0.999))
}

/// Round trips of `size`-byte frames through a tokio echo server on loopback.
async fn echo_baseline(size: usize, seconds: u64) -> Result<Vec<Duration>, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    let frame = vec![7u8; size];
    let mut back = vec![0u8; size];
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let t = Instant::now();
        s.write_all(&frame).await.map_err(|e| e.to_string())?;
        s.read_exact(&mut back).await.map_err(|e| e.to_string())?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

pub async fn run(t: &Target, o: &Options) -> Result<(), String> {
    let mut c = Client::connect(t.addr, &t.key, Kind::Full, false)
        .await
        .map_err(|e| e.to_string())?;
    c.call(&functions::help::GetNearestDc {})
        .await
        .map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    while Instant::now() < deadline {
        let t = Instant::now();
        c.call(&functions::help::GetNearestDc {})
            .await
            .map_err(|e| e.to_string())?;
        samples.push(t.elapsed());
    }
    // An encrypted getNearestDc request is about 80 bytes on the wire; its answer about 100.
    let echo = echo_baseline(96, o.seconds).await?;
    let (r50, r99, r999) = percentiles(samples);
    let (e50, e99, e999) = percentiles(echo);
    println!("RPC  p50 {r50:?}  p99 {r99:?}  p99.9 {r999:?}");
    println!("echo p50 {e50:?}  p99 {e99:?}  p99.9 {e999:?}");
    println!("p99 over the echo's: +{:?}", r99.saturating_sub(e99));
    Ok(())
}
