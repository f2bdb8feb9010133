//! `setup`: complete call setups per second (request → received → accept → confirm →
//! discard, each side waiting for the push it needs), against two baselines measured in the
//! same run: trivial RPCs per second over the same connections, and the same setup's messages
//! — its requests, answers and pushes, recorded from one real setup — replayed on the MTProto
//! echo (`setup_pattern.rs`), the ceiling of any MTProto server doing these setups.

use std::time::{Duration, Instant};

use client::Client;
use tl::{enums, functions, types};

use super::{Options, Progress, Target, counts, echo, setup_pattern};

fn protocol() -> enums::PhoneCallProtocol {
    client::calls::default_protocol()
}

async fn next_call(c: &mut Client) -> Result<enums::PhoneCall, String> {
    loop {
        if let enums::Update::PhoneCall(p) = c.next_update().await.map_err(|e| e.to_string())? {
            return Ok(p.phone_call);
        }
    }
}

/// One setup at the protocol level. The DH values are fixed bytes of the right sizes (the
/// server checks sizes and `SHA256(g_a) == g_a_hash`, not the arithmetic), so the load
/// generator spends its CPU on the protocol, not on modular exponentiation.
async fn one_setup(
    caller: &mut Client,
    callee: &mut Client,
    user: &enums::InputUser,
    random_id: i32,
) -> Result<(), String> {
    let e = |e: client::ClientError| e.to_string();
    let g_a = vec![7u8; 256];
    let g_a_hash = mtproto::crypto::sha256(&[&g_a]).to_vec();
    let enums::phone::PhoneCall::PhoneCall(r) = caller
        .call(&functions::phone::RequestCall {
            video: false,
            user_id: user.clone(),
            random_id,
            g_a_hash,
            protocol: protocol(),
        })
        .await
        .map_err(e)?;
    let enums::PhoneCall::Waiting(w) = r.phone_call else {
        return Err("requestCall did not answer phoneCallWaiting".into());
    };
    let enums::PhoneCall::Requested(req) = next_call(callee).await? else {
        return Err("no phoneCallRequested".into());
    };
    let theirs: enums::InputPhoneCall = types::InputPhoneCall {
        id: req.id,
        access_hash: req.access_hash,
    }
    .into();
    callee
        .call(&functions::phone::ReceivedCall {
            peer: theirs.clone(),
        })
        .await
        .map_err(e)?;
    next_call(caller).await?; // ringing
    callee
        .call(&functions::phone::AcceptCall {
            peer: theirs,
            g_b: vec![9; 256],
            protocol: protocol(),
        })
        .await
        .map_err(e)?;
    next_call(caller).await?; // accepted
    let mine: enums::InputPhoneCall = types::InputPhoneCall {
        id: w.id,
        access_hash: w.access_hash,
    }
    .into();
    caller
        .call(&functions::phone::ConfirmCall {
            peer: mine.clone(),
            g_a,
            key_fingerprint: 1,
            protocol: protocol(),
        })
        .await
        .map_err(e)?;
    next_call(callee).await?; // phoneCall
    let reason: enums::PhoneCallDiscardReason = types::PhoneCallDiscardReasonHangup {}.into();
    caller
        .call(&functions::phone::DiscardCall {
            video: false,
            peer: mine,
            duration: 1,
            reason,
            connection_id: 0,
        })
        .await
        .map_err(e)?;
    while !matches!(next_call(callee).await?, enums::PhoneCall::Discarded(_)) {}
    Ok(())
}

pub async fn run(t: &Target, o: &Options) -> Result<(), String> {
    let mut pairs = Vec::new();
    for i in 0..o.concurrency {
        pairs.push(t.pair(20000 + 2 * i).await.map_err(|e| e.to_string())?);
    }
    // Baseline over the same connections.
    let baseline = o.baseline_seconds.unwrap_or(o.seconds.div_ceil(2)).max(1);
    let deadline = Instant::now() + Duration::from_secs(baseline);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut caller, callee, user) in pairs {
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                caller
                    .call(&functions::help::GetNearestDc {})
                    .await
                    .map_err(|e| e.to_string())?;
                n += 1;
            }
            Ok::<_, String>((n, caller, callee, user))
        }));
    }
    let mut pairs = Vec::new();
    let mut rpcs = 0;
    for task in tasks {
        let (n, a, b, u) = task.await.map_err(|e| e.to_string())??;
        rpcs += n;
        pairs.push((a, b, u));
    }
    let rpc_rate = rpcs as f64 / started.elapsed().as_secs_f64();

    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let started = Instant::now();
    let counting = match o.count {
        true => Some(counts::Counting::start(&t.node_pids())?),
        false => None,
    };
    let before = Cpu::now(t);
    let throttled_before = t.throttled();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (mut caller, mut callee, user) in pairs {
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline {
                one_setup(&mut caller, &mut callee, &user, n).await?;
                n += 1;
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<_, String>((caller, callee))
        }));
    }
    let mut progress = Progress::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        progress.tick("setups", count.load(std::sync::atomic::Ordering::Relaxed));
    }
    let mut done = Vec::new();
    for task in tasks {
        done.push(task.await.map_err(|e| e.to_string())??);
    }
    let spent = Cpu::now(t).since(&before);
    let setups = count.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(counting) = counting {
        counting.finish(setups, "call setup")?;
    }
    let rate = setups as f64 / started.elapsed().as_secs_f64();
    let pairs: Vec<_> = done.into_iter().collect();
    let (ceiling, messages) = echo_ceiling(t, o, pairs, baseline).await?;
    println!(
        "baseline: {rpc_rate:.0} trivial RPCs/s (help.getNearestDc) over the same connections"
    );
    println!(
        "call setups: {rate:.0}/s (request, received, accept, confirm, discard, each push awaited; durable)"
    );
    println!(
        "baseline: {ceiling:.0} setups/s on the MTProto echo ({messages} messages per setup as recorded: the same requests, answers and pushes, decrypted, checked and encrypted, nothing else)"
    );
    println!(
        "ratio: one setup costs {:.1} trivial round trips; {:.2} of the MTProto echo's setups/s",
        rpc_rate / rate.max(f64::MIN_POSITIVE),
        rate / ceiling.max(f64::MIN_POSITIVE)
    );
    spent.print(setups.max(1), t.node_pids().is_empty());
    let throttled: Vec<String> = t
        .throttled()
        .iter()
        .zip(&throttled_before)
        .map(|(after, before)| (after - before).to_string())
        .collect();
    if !throttled.is_empty() {
        // Each period a node is held back shows its cap, not something else, bound it.
        println!(
            "node CPU caps: periods each node was held back at its cap: {} (of {:.0} periods of 100 ms)",
            throttled.join(", "),
            started.elapsed().as_secs_f64() * 10.0
        );
    }
    Ok(())
}

/// The same pairs' setups replayed on the MTProto echo for `seconds`: setups per second, and
/// the messages (requests and pushes) one setup is.
async fn echo_ceiling(
    t: &Target,
    o: &Options,
    pairs: Vec<(Client, Client)>,
    seconds: u64,
) -> Result<(f64, usize), String> {
    let (a, b, user) = t.pair(19000).await.map_err(|e| e.to_string())?;
    let steps = setup_pattern::record(a, b, user).await?;
    for s in &steps {
        eprintln!(
            "  recorded: {} sends {} bytes, answer {} bytes, pushes {:?} (to caller?, bytes)",
            if s.by_caller { "caller" } else { "callee" },
            s.request,
            s.answer,
            s.pushes
        );
    }
    let echo = echo::launch(echo::keys_of(pairs.iter().flat_map(|(a, b)| [a, b])), o).await?;
    let server = echo.addr();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut caller, mut callee) in pairs {
        let steps = steps.clone();
        tasks.push(tokio::spawn(async move {
            echo::move_to(&mut caller, server).await?;
            echo::move_to(&mut callee, server).await?;
            setup_pattern::pair_on_echo(&mut caller, &mut callee).await?;
            let mut n = 0u64;
            while Instant::now() < deadline {
                setup_pattern::replay(&mut caller, &mut callee, &steps).await?;
                n += 1;
            }
            Ok::<_, String>(n)
        }));
    }
    let mut setups = 0;
    for task in tasks {
        setups += task.await.map_err(|e| e.to_string())??;
    }
    let rate = setups as f64 / started.elapsed().as_secs_f64();
    Ok((rate, setup_pattern::messages(&steps)))
}

/// CPU seconds so far: this process, each node process, PostgreSQL.
struct Cpu {
    own: f64,
    nodes: Vec<f64>,
    postgres: f64,
}

impl Cpu {
    fn now(t: &Target) -> Cpu {
        Cpu {
            own: super::cpu::own(),
            nodes: t
                .node_pids()
                .iter()
                .map(|p| super::cpu::of(&p.to_string()))
                .collect(),
            postgres: super::cpu::postgres().0,
        }
    }

    fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            own: self.own - before.own,
            nodes: self
                .nodes
                .iter()
                .zip(&before.nodes)
                .map(|(a, b)| a - b)
                .collect(),
            postgres: self.postgres - before.postgres,
        }
    }

    /// CPU per setup by part, in microseconds.
    fn print(&self, setups: u64, in_process: bool) {
        let per = |secs: f64| secs / setups as f64 * 1e6;
        let nodes: f64 = self.nodes.iter().sum();
        if in_process {
            println!(
                "CPU per setup: nodes and load generator (one process) {:.0} µs, PostgreSQL {:.0} µs; server side unknown apart (use --node-processes)",
                per(self.own),
                per(self.postgres)
            );
        } else {
            let each: Vec<String> = self
                .nodes
                .iter()
                .map(|n| format!("{:.0}", per(*n)))
                .collect();
            println!(
                "CPU per setup: nodes {:.0} µs (each: {} µs), PostgreSQL {:.0} µs, load generator {:.0} µs; server side (nodes + PostgreSQL) {:.0} µs",
                per(nodes),
                each.join(", "),
                per(self.postgres),
                per(self.own),
                per(nodes + self.postgres)
            );
        }
    }
}
