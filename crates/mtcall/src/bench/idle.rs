//! `idle`: authorised idle connections. A server runs as its own process (so its memory is
//! its own); the load generator logs in a few users, then opens many connections on their
//! keys, each making one request (`updates.getState`, which also subscribes it to updates)
//! and then staying silent. Reported: the server's resident memory per connection and the
//! kernel's TCP buffer memory, against a plain tokio server process holding the same number
//! of connections, measured in the same run.

use std::net::SocketAddr;
use std::time::Duration;

use client::{Client, Raw};
use mtproto::crypto::rsa_key::PublicKey;
use mtproto::crypto::{AuthKey, OsEntropy};
use mtproto::session::{ClientSession, ServerMessage};
use mtproto::transport::Kind;
use tl::{Encode, Layer, functions};
use tokio::io::AsyncWriteExt;

use super::process::{free_port, spawn};
use super::{Options, Progress};

/// Resident memory of a process, in bytes (Linux).
fn rss(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading the server's memory: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no VmRSS".into())
}

/// The kernel's memory for TCP buffers, in bytes, where readable.
fn tcp_kernel_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "mem" {
            return words.next()?.parse::<u64>().ok().map(|pages| pages * 4096);
        }
    }
    None
}

/// One idle authorised connection: its socket and session (to check it still answers).
struct Idle {
    raw: Raw,
    session: ClientSession,
}

async fn get_state(raw: &mut Raw, session: &mut ClientSession) -> Result<(), String> {
    let body = functions::updates::GetState {}.to_bytes(Layer::LATEST);
    let (ids, packet) = session.encrypt(&[body], client::now_ms(), &mut OsEntropy);
    raw.send(&packet).await.map_err(|e| e.to_string())?;
    loop {
        let packet = raw.recv_packet().await.map_err(|e| e.to_string())?;
        for m in session.decrypt(packet).map_err(|e| e.to_string())? {
            match m {
                ServerMessage::RpcResult { req_msg_id, result } if req_msg_id == ids[0] => {
                    return result
                        .map(|_| ())
                        .map_err(|(c, m)| format!("rpc_error {c} {m}"));
                }
                ServerMessage::BadServerSalt { .. } => {
                    return Err("the salt was refused".into());
                }
                _ => {}
            }
        }
    }
}

async fn open_idle(addr: SocketAddr, key: AuthKey, salt: i64) -> Result<Idle, String> {
    let mut raw = Raw::connect(addr, Kind::Intermediate, false)
        .await
        .map_err(|e| e.to_string())?;
    let mut session = ClientSession::new(key, salt, 0, &mut OsEntropy);
    get_state(&mut raw, &mut session).await?;
    Ok(Idle { raw, session })
}

/// Opens `n` connections with `open`, 32 at a time.
async fn open_many<T, F, Fut>(n: usize, open: F) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let mut out = Vec::with_capacity(n);
    let mut progress = Progress::new();
    while out.len() < n {
        let mut batch = tokio::task::JoinSet::new();
        for i in out.len()..(out.len() + 32).min(n) {
            batch.spawn(open(i));
        }
        while let Some(r) = batch.join_next().await {
            out.push(r.map_err(|e| e.to_string())??);
        }
        progress.tick("connections open", out.len() as u64);
    }
    Ok(out)
}

/// Connections held open against a plain tokio server process, for the baseline.
async fn baseline(n: usize) -> Result<(u64, Option<u64>), String> {
    let port = free_port()?;
    let server = spawn(
        &["bench-echo-server", "--port", &port.to_string()],
        "listening",
    )?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let before = rss(server.0.id())?;
    let kernel_before = tcp_kernel_memory();
    let conns = open_many(n, |_| async move {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(&[0u8; 64]).await.map_err(|e| e.to_string())?;
        let mut back = [0u8; 64];
        tokio::io::AsyncReadExt::read_exact(&mut s, &mut back)
            .await
            .map_err(|e| e.to_string())?;
        Ok(s)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss(server.0.id())?;
    let kernel = tcp_kernel_memory()
        .zip(kernel_before)
        .map(|(a, b)| a.saturating_sub(b));
    drop(conns);
    Ok((after.saturating_sub(before), kernel))
}

pub async fn run(o: &Options) -> Result<(), String> {
    let n = o.connections.max(1);
    let dir = std::env::temp_dir().join(format!("mtcall-bench-idle-{}", std::process::id()));
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let data = dir.to_string_lossy().into_owned();
    let server = spawn(
        &["serve", "--listen", &listen, "--data", &data],
        "listening",
    )?;
    let addr: SocketAddr = listen.parse().expect("address");
    let pem = std::fs::read_to_string(dir.join("server.pub")).map_err(|e| e.to_string())?;
    let key = PublicKey::from_pkcs1_pem(&pem).map_err(|e| e.to_string())?;
    let result = measure(o, n, addr, &key, server.0.id()).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(
    o: &Options,
    n: usize,
    addr: SocketAddr,
    key: &PublicKey,
    pid: u32,
) -> Result<(), String> {
    let users = o.concurrency.clamp(1, 64);
    let mut keys = Vec::new();
    for i in 0..users {
        let mut c = Client::connect(addr, key, Kind::Full, false)
            .await
            .map_err(|e| e.to_string())?;
        c.login(&format!("99966{:05}", 60000 + i), "Idle")
            .await
            .map_err(|e| e.to_string())?;
        keys.push(c);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss(pid)?;
    let kernel_before = tcp_kernel_memory();
    let keys: Vec<(AuthKey, i64)> = super::echo::keys_of(&keys);
    let mut idle = open_many(n, |i| {
        let (key, salt) = keys[i % keys.len()].clone();
        open_idle(addr, key, salt)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss(pid)?;
    let kernel = tcp_kernel_memory()
        .zip(kernel_before)
        .map(|(a, b)| a.saturating_sub(b));
    // They are still authorised and served.
    let step = (idle.len() / 16).max(1);
    for c in idle.iter_mut().step_by(step) {
        get_state(&mut c.raw, &mut c.session).await?;
    }
    drop(idle);
    let (echo, echo_kernel) = baseline(n).await?;

    let per = |bytes: u64| bytes as f64 / n as f64;
    let server = per(after.saturating_sub(before));
    println!(
        "{n} authorised idle connections ({users} users): server RSS +{:.1} MiB, {server:.0} bytes per connection",
        after.saturating_sub(before) as f64 / 1048576.0
    );
    println!(
        "  = {:.0} connections per GiB of server memory (target 100000)",
        (1u64 << 30) as f64 / server.max(1.0)
    );
    if let Some(k) = kernel {
        println!(
            "  kernel TCP buffers: {:.0} bytes per connection (both ends, this machine)",
            per(k)
        );
    }
    println!(
        "baseline: a plain tokio server process, {:.0} bytes per connection{}",
        per(echo),
        echo_kernel.map_or(String::new(), |k| format!(", kernel {:.0}", per(k)))
    );
    println!(
        "ratio: mtcall uses {:.2}× the baseline's memory per connection",
        server / per(echo).max(1.0)
    );
    Ok(())
}

/// `mtcall bench-echo-server`: the baseline server for `idle`, a plain tokio echo.
pub async fn echo_server(port: u16) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    println!("listening on {port}");
    loop {
        let (s, _) = listener.accept().await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                if s.readable().await.is_err() {
                    return;
                }
                match s.try_read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if s.try_write(&buf[..n]).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        });
    }
}
