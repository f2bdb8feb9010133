//! `received`: many connections, each the callee of a live call it has acknowledged, sending
//! `phone.receivedCall` pipelined (a window of requests in flight) — the method the server
//! exists for, on its idempotent path. Two baselines in the same run, over the same number of
//! connections with the same window: the MTProto echo (`echo.rs`: the same clients, keys and
//! encrypted frames of the same sizes, decrypted, checked and answered by mtcall's session
//! layer and nothing else), and a plain tokio server answering frames of the same sizes with
//! no cryptography.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::Client;
use mtproto::crypto::OsEntropy;
use mtproto::session::ServerMessage;
use tl::{Encode, Layer, enums, functions, types};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Options, Progress, Target, counts, echo};

/// A callee connection with a ringing call, and the encoded `phone.receivedCall` for it.
struct Ringing {
    callee: Client,
    request: Vec<u8>,
    _caller: Client,
}

async fn ringing(t: &Target, i: usize) -> Result<Ringing, String> {
    let e = |e: client::ClientError| e.to_string();
    let (mut caller, mut callee, user) = t.pair(40000 + 2 * i).await.map_err(e)?;
    let g_a_hash = mtproto::crypto::sha256(&[&[7u8; 256]]).to_vec();
    caller
        .call(&functions::phone::RequestCall {
            video: false,
            user_id: user,
            random_id: i as i32,
            g_a_hash,
            protocol: client::calls::default_protocol(),
        })
        .await
        .map_err(e)?;
    let call = loop {
        if let enums::Update::PhoneCall(u) = callee.next_update().await.map_err(e)?
            && let enums::PhoneCall::Requested(r) = u.phone_call
        {
            break r;
        }
    };
    let request = functions::phone::ReceivedCall {
        peer: types::InputPhoneCall {
            id: call.id,
            access_hash: call.access_hash,
        }
        .into(),
    };
    if !callee.call(&request).await.map_err(e)? {
        return Err("receivedCall did not answer true".into());
    }
    Ok(Ringing {
        request: request.to_bytes(callee.layer),
        callee,
        _caller: caller,
    })
}

/// Encrypts and frames `n` copies of `body`, each its own packet, into one write.
async fn send(c: &mut Client, body: &[u8], n: usize) -> Result<usize, String> {
    let mut out = Vec::new();
    let mut frame = 0;
    for _ in 0..n {
        let (_, packet) = c
            .session
            .encrypt(&[body.to_vec()], client::now_ms(), &mut OsEntropy);
        let before = out.len();
        c.raw.transport.encode(&packet, false, &mut out);
        frame = out.len() - before;
    }
    c.raw
        .stream
        .write_all(&out)
        .await
        .map_err(|e| e.to_string())?;
    Ok(frame)
}

/// Keeps `window` requests in flight until `deadline`; returns (answers, request frame size,
/// mean bytes per answer — the server packs several answers into one container) and the
/// ringing call, for the next run.
async fn pipeline(
    mut r: Ringing,
    window: usize,
    deadline: Instant,
    count: Arc<AtomicU64>,
) -> Result<((u64, usize, usize), Ringing), String> {
    let c = &mut r.callee;
    let request_size = send(c, &r.request, window).await?;
    let mut in_flight = window;
    let mut answers = 0;
    let mut answer_bytes = 0;
    // The echo answers with as many bytes as boolTrue has.
    let bool_true = true.to_bytes(Layer::LATEST);
    let echoed = vec![0u8; bool_true.len()];
    while in_flight > 0 {
        let packet = c.raw.recv_packet().await.map_err(|e| e.to_string())?;
        answer_bytes += packet.len() + 4;
        let mut done = 0;
        for m in c.session.decrypt(packet).map_err(|e| e.to_string())? {
            if let ServerMessage::RpcResult { result, .. } = m {
                let body = result.map_err(|(code, m)| format!("rpc_error {code} {m}"))?;
                if body != bool_true && body != echoed {
                    return Err("receivedCall did not answer boolTrue".into());
                }
                done += 1;
            }
        }
        in_flight -= done;
        answers += done as u64;
        count.fetch_add(done as u64, Ordering::Relaxed);
        if done > 0 && Instant::now() < deadline {
            send(c, &r.request, done).await?;
            in_flight += done;
        }
    }
    Ok((
        (
            answers,
            request_size,
            answer_bytes / answers.max(1) as usize,
        ),
        r,
    ))
}

/// Drives every ringing call's pipeline for `seconds`; returns answers per second, the
/// answers, the largest request frame, the largest mean answer size, and the calls back.
async fn measure(
    calls: Vec<Ringing>,
    window: usize,
    seconds: u64,
    what: &str,
) -> Result<(f64, u64, usize, usize, Vec<Ringing>), String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let count = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|r| tokio::spawn(pipeline(r, window, deadline, count.clone())))
        .collect();
    let mut progress = Progress::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        progress.tick(what, count.load(Ordering::Relaxed));
    }
    let (mut answers, mut request, mut answer) = (0, 0, 0);
    let mut back = Vec::new();
    for task in tasks {
        let ((n, req, ans), r) = task.await.map_err(|e| e.to_string())??;
        answers += n;
        request = request.max(req);
        answer = answer.max(ans);
        back.push(r);
    }
    let rate = answers as f64 / started.elapsed().as_secs_f64();
    Ok((rate, answers, request, answer, back))
}

/// The baseline: a tokio server that answers each `request`-byte frame with an
/// `answer`-byte frame, driven like the real one; returns answers per second.
async fn echo_baseline(
    connections: usize,
    window: usize,
    request: usize,
    answer: usize,
    seconds: u64,
) -> Result<f64, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let reply = vec![1u8; answer * window];
                let mut pending = 0;
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending += n;
                    let frames = pending / request;
                    pending %= request;
                    let mut left = frames;
                    while left > 0 {
                        let k = left.min(window);
                        if s.write_all(&reply[..k * answer]).await.is_err() {
                            return;
                        }
                        left -= k;
                    }
                }
            });
        }
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let _ = s.set_nodelay(true);
        tasks.push(tokio::spawn(async move {
            let frame = vec![7u8; request];
            let mut buf = vec![0u8; 16 * 1024];
            let mut received = 0usize;
            let mut answers = 0u64;
            let mut in_flight = window;
            s.write_all(&frame.repeat(window)).await?;
            while in_flight > 0 {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                received += n;
                let done = received / answer;
                received %= answer;
                in_flight -= done;
                answers += done as u64;
                if done > 0 && Instant::now() < deadline {
                    s.write_all(&frame.repeat(done)).await?;
                    in_flight += done;
                }
            }
            Ok::<_, std::io::Error>(answers)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

pub async fn run(t: &Target, o: &Options) -> Result<(), String> {
    let window = o.window.max(1);
    let mut calls = Vec::new();
    for i in 0..o.concurrency {
        calls.push(ringing(t, i).await?);
    }
    eprintln!("  {} calls ringing; measuring", calls.len());
    let counting = match o.count {
        true => Some(counts::Counting::start(&t.node_pids())?),
        false => None,
    };
    let (rate, answered, request, answer, mut calls) =
        measure(calls, window, o.seconds, "acknowledgements").await?;
    if let Some(counting) = counting {
        counting.finish(answered, "phone.receivedCall")?;
    }

    // The MTProto echo: the same clients with the same keys on the echo, sending requests of
    // the same size that ask for answers of boolTrue's size.
    let server = echo::launch(echo::keys_of(calls.iter().map(|r| &r.callee)), o).await?;
    for r in &mut calls {
        echo::move_to(&mut r.callee, server.addr()).await?;
        let size = r.request.len();
        r.request = echo::request(size, true.to_bytes(Layer::LATEST).len(), &[]);
    }
    let (mtproto_echo, ..) = measure(calls, window, o.seconds, "echoes").await?;
    let plain = echo_baseline(o.concurrency, window, request, answer, o.seconds).await?;
    println!(
        "phone.receivedCall: {rate:.0}/s over {} connections, {window} in flight each ({request}-byte requests, {answer}-byte answers)",
        o.concurrency
    );
    println!(
        "baseline: {mtproto_echo:.0} answers/s from the MTProto echo (decrypt, check, encrypted answer; same clients, frames and window)"
    );
    println!(
        "baseline: {plain:.0} answers/s from a plain tokio server, same frame sizes and window"
    );
    let ratio = |base: f64| rate / base.max(f64::MIN_POSITIVE);
    println!(
        "ratio: {:.2} of the MTProto echo, {:.2} of the plain server",
        ratio(mtproto_echo),
        ratio(plain)
    );
    Ok(())
}
