//! Call setups per second against the real server over TCP with durable SQLite storage: each
//! of N caller/callee pairs runs request → received → accept → confirm → discard in a loop,
//! waiting for each push the other side needs. The baseline, measured in the same run over the
//! same connections, is the rate of a trivial RPC (`help.getNearestDc`), so the figure reads as
//! "one setup costs as much as K trivial round trips".
//!
//! `cargo run --release -p mtcall-server --example call_setup_bench -- [seconds] [pairs]`

use std::time::{Duration, Instant};

use client::{Client, user_id};
use mtproto::crypto::rsa_key::PublicKey;
use mtproto::crypto::sha256;
use mtproto::transport::Kind;
use server::{Config, Server};
use tl::{Decode, enums, functions, types};

fn protocol() -> enums::PhoneCallProtocol {
    types::PhoneCallProtocol {
        udp_p2p: true,
        udp_reflector: true,
        min_layer: 65,
        max_layer: 92,
        library_versions: vec!["2.4.4".into()],
    }
    .into()
}

async fn next_call(c: &mut Client) -> enums::PhoneCall {
    loop {
        let push = c.next_push().await.expect("push");
        if let Ok(enums::Updates::Updates(u)) = enums::Updates::from_bytes(&push) {
            for update in u.updates {
                if let enums::Update::PhoneCall(p) = update {
                    return p.phone_call;
                }
            }
        }
    }
}

async fn setup(
    caller: &mut Client,
    callee: &mut Client,
    callee_input: &enums::InputUser,
    random_id: i32,
) {
    let g_a = vec![7u8; 256];
    let enums::phone::PhoneCall::PhoneCall(r) = caller
        .call(&functions::phone::RequestCall {
            video: false,
            user_id: callee_input.clone(),
            random_id,
            g_a_hash: sha256(&[&g_a]).to_vec(),
            protocol: protocol(),
        })
        .await
        .expect("requestCall");
    let enums::PhoneCall::Waiting(w) = r.phone_call else {
        panic!("not waiting")
    };
    let enums::PhoneCall::Requested(req) = next_call(callee).await else {
        panic!("not requested")
    };
    let peer: enums::InputPhoneCall = types::InputPhoneCall {
        id: req.id,
        access_hash: req.access_hash,
    }
    .into();
    callee
        .call(&functions::phone::ReceivedCall { peer: peer.clone() })
        .await
        .expect("receivedCall");
    let _ringing = next_call(caller).await;
    callee
        .call(&functions::phone::AcceptCall {
            peer: peer.clone(),
            g_b: vec![9; 256],
            protocol: protocol(),
        })
        .await
        .expect("acceptCall");
    let _accepted = next_call(caller).await;
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
        .expect("confirmCall");
    let _confirmed = next_call(callee).await;
    caller
        .call(&functions::phone::DiscardCall {
            video: false,
            peer: mine,
            duration: 1,
            reason: types::PhoneCallDiscardReasonHangup {}.into(),
            connection_id: 0,
        })
        .await
        .expect("discardCall");
    // The callee's discard and both history messages.
    loop {
        if let enums::PhoneCall::Discarded(_) = next_call(callee).await {
            break;
        }
    }
    caller.pushes.clear();
    callee.pushes.clear();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let pairs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let dir = std::env::temp_dir().join(format!("mtcall-setup-bench-{}", std::process::id()));
    let server = Server::start(Config {
        data_dir: dir.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    })
    .await
    .unwrap();
    let key = PublicKey::from_pkcs1_pem(&std::fs::read_to_string(dir.join("server.pub")).unwrap())
        .unwrap();
    let addr = server.local_addr();

    let mut clients = Vec::new();
    for i in 0..pairs {
        let mut caller = Client::connect(addr, &key, Kind::Full, false)
            .await
            .unwrap();
        caller
            .login(&format!("99966{:05}", 10000 + 2 * i), "Caller")
            .await
            .unwrap();
        let mut callee = Client::connect(addr, &key, Kind::Full, false)
            .await
            .unwrap();
        let me = callee
            .login(&format!("99966{:05}", 10001 + 2 * i), "Callee")
            .await
            .unwrap();
        let enums::contacts::ResolvedPeer::ResolvedPeer(r) = caller
            .call(&functions::contacts::ResolvePhone {
                phone: format!("99966{:05}", 10001 + 2 * i),
            })
            .await
            .unwrap();
        let enums::User::User(u) = &r.users[0] else {
            panic!()
        };
        assert_eq!(u.id, user_id(&me));
        let input: enums::InputUser = types::InputUser {
            user_id: u.id,
            access_hash: u.access_hash.unwrap(),
        }
        .into();
        clients.push((caller, callee, input));
    }

    // Baseline: trivial round trips over the same connections.
    let deadline = Instant::now() + Duration::from_secs(seconds.div_ceil(2));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut caller, callee, input) in clients {
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                caller
                    .call(&functions::help::GetNearestDc {})
                    .await
                    .unwrap();
                n += 1;
            }
            (n, caller, callee, input)
        }));
    }
    let mut clients = Vec::new();
    let mut rpcs = 0;
    for t in tasks {
        let (n, a, b, i) = t.await.unwrap();
        rpcs += n;
        clients.push((a, b, i));
    }
    let rpc_rate = rpcs as f64 / started.elapsed().as_secs_f64();

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut caller, mut callee, input) in clients {
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                setup(&mut caller, &mut callee, &input, n as i32).await;
                n += 1;
            }
            n
        }));
    }
    let mut setups = 0;
    for t in tasks {
        setups += t.await.unwrap();
    }
    let rate = setups as f64 / started.elapsed().as_secs_f64();
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{pairs} caller/callee pairs, {seconds} s, SQLite durability=normal, load generator on the same cores"
    );
    println!("baseline: {rpc_rate:.0} trivial RPCs/s (help.getNearestDc)");
    println!(
        "call setups: {rate:.0}/s (request, received, accept, confirm, discard + 8 pushes + 2 history writes each)"
    );
    println!(
        "ratio: one setup costs {:.1} trivial round trips",
        rpc_rate / rate
    );
}
