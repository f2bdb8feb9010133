//! Crash consistency: `mtcall serve` is killed with SIGKILL at a random moment while
//! pairs of clients run call setups, then started again on the same data directory. Every
//! transition a client saw acknowledged must be in the restarted server's database (a call's
//! stored state is at least as far as its last acknowledged step), and every call that was
//! still going completes: the callee accepts, the caller confirms, then hangs up. Rounds:
//! `MTCALL_CRASH_ROUNDS` (3 in the test command, 20 for the full run recorded in FUZZING.md).
//!
//! Backups under the same load: `mtcall backup` taken while pairs set up calls, restored with
//! `mtcall restore` into another data directory, holds every transition acknowledged before
//! the backup began.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::Client;
use mtproto::crypto::rsa_key::PublicKey;
use mtproto::crypto::{Entropy, OsEntropy};
use mtproto::transport::Kind;
use store::{Durability, SqliteStore, Store};
use tl::{enums, functions, types};

const BIN: &str = env!("CARGO_BIN_EXE_mtcall");
const PAIRS: usize = 6;

/// Steps in order; a stored state must not be behind an acknowledged one.
const STEPS: [&str; 5] = [
    "requested",
    "received",
    "accepted",
    "confirmed",
    "discarded",
];

fn step_of(state: &str) -> usize {
    STEPS
        .iter()
        .position(|s| *s == state)
        .expect("a known state")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &std::path::Path, addr: &str) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", addr])
        .arg("--data")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("listening"))),
        "the server did not start"
    );
    std::thread::spawn(move || for _ in lines {});
    Server(child)
}

fn g_a() -> Vec<u8> {
    vec![7; 256]
}

fn input_call(id: i64, access_hash: i64) -> enums::InputPhoneCall {
    types::InputPhoneCall { id, access_hash }.into()
}

/// The highest step each call was acknowledged at.
type Acked = Arc<Mutex<HashMap<i64, usize>>>;

fn ack(acked: &Acked, id: i64, step: &str) {
    let mut a = acked.lock().unwrap();
    let s = a.entry(id).or_insert(0);
    *s = (*s).max(step_of(step));
}

async fn next_call(c: &mut Client) -> Result<enums::PhoneCall, client::ClientError> {
    loop {
        if let enums::Update::PhoneCall(p) = c.next_update().await? {
            return Ok(p.phone_call);
        }
    }
}

/// Call setups until the connection breaks; every acknowledged step is recorded.
async fn setups(
    mut caller: Client,
    mut callee: Client,
    callee_user: enums::InputUser,
    acked: Acked,
) -> Result<(), client::ClientError> {
    let protocol = client::calls::default_protocol;
    loop {
        let enums::phone::PhoneCall::PhoneCall(r) = caller
            .call(&functions::phone::RequestCall {
                video: false,
                user_id: callee_user.clone(),
                random_id: OsEntropy.i64() as i32,
                g_a_hash: mtproto::crypto::sha256(&[&g_a()]).to_vec(),
                protocol: protocol(),
            })
            .await?;
        let enums::PhoneCall::Waiting(w) = r.phone_call else {
            continue;
        };
        ack(&acked, w.id, "requested");
        // Skip what is left of earlier calls (their phoneCall and phoneCallDiscarded pushes).
        let req = loop {
            if let enums::PhoneCall::Requested(r) = next_call(&mut callee).await?
                && r.id == w.id
            {
                break r;
            }
        };
        let theirs = input_call(req.id, req.access_hash);
        callee
            .call(&functions::phone::ReceivedCall {
                peer: theirs.clone(),
            })
            .await?;
        ack(&acked, w.id, "received");
        callee
            .call(&functions::phone::AcceptCall {
                peer: theirs,
                g_b: vec![9; 256],
                protocol: protocol(),
            })
            .await?;
        ack(&acked, w.id, "accepted");
        let mine = input_call(w.id, w.access_hash);
        caller
            .call(&functions::phone::ConfirmCall {
                peer: mine.clone(),
                g_a: g_a(),
                key_fingerprint: 1,
                protocol: protocol(),
            })
            .await?;
        ack(&acked, w.id, "confirmed");
        caller
            .call(&functions::phone::DiscardCall {
                video: false,
                peer: mine,
                duration: 1,
                reason: types::PhoneCallDiscardReasonHangup {}.into(),
                connection_id: 0,
            })
            .await?;
        ack(&acked, w.id, "discarded");
    }
}

/// A logged-in caller and callee's auth keys, and the callee as the caller addresses them.
type Pair = ([u8; 256], [u8; 256], enums::InputUser);

/// Logs in [`PAIRS`] pairs whose keys survive restarts.
async fn login_pairs(socket: std::net::SocketAddr, key: &PublicKey) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        let mut caller = Client::connect(socket, key, Kind::Full, false)
            .await
            .unwrap();
        caller
            .login(&format!("99966{:05}", 95000 + 2 * i), "Caller")
            .await
            .unwrap();
        let mut callee = Client::connect(socket, key, Kind::Full, false)
            .await
            .unwrap();
        let phone = format!("99966{:05}", 95001 + 2 * i);
        callee.login(&phone, "Callee").await.unwrap();
        let enums::contacts::ResolvedPeer::ResolvedPeer(r) = caller
            .call(&functions::contacts::ResolvePhone { phone })
            .await
            .unwrap();
        let enums::User::User(u) = &r.users[0] else {
            panic!("no callee")
        };
        let user: enums::InputUser = types::InputUser {
            user_id: u.id,
            access_hash: u.access_hash.unwrap(),
        }
        .into();
        pairs.push((
            *caller.session.auth_key().bytes(),
            *callee.session.auth_key().bytes(),
            user,
        ));
    }

    pairs
}

/// Starts call setups for every pair on `socket`, recording what is acknowledged in `acked`.
async fn load(
    socket: std::net::SocketAddr,
    pairs: &[Pair],
    acked: &Acked,
) -> tokio::task::JoinSet<Result<(), client::ClientError>> {
    let mut load = tokio::task::JoinSet::new();
    for (caller_key, callee_key, user) in pairs {
        let mut caller = Client::resume(socket, *caller_key).await.unwrap();
        let mut callee = Client::resume(socket, *callee_key).await.unwrap();
        for c in [&mut caller, &mut callee] {
            c.auto_reconnect = false;
            c.update_wait_limit = Some(Duration::from_secs(5));
        }
        callee.sync_update_state().await.unwrap();
        load.spawn(setups(caller, callee, user.clone(), acked.clone()));
    }
    load
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transitions_survive_sigkill_and_live_calls_complete() {
    let rounds: usize = std::env::var("MTCALL_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("mtcall-crash-{}", std::process::id()));
    let data = dir.join("data");
    let addr = format!("127.0.0.1:{}", free_port());
    let socket: std::net::SocketAddr = addr.parse().unwrap();
    let mut server = start(&data, &addr);
    let key = PublicKey::from_pkcs1_pem(&std::fs::read_to_string(data.join("server.pub")).unwrap())
        .unwrap();

    let pairs = login_pairs(socket, &key).await;

    for round in 0..rounds {
        let acked: Acked = Arc::default();
        let mut load = load(socket, &pairs, &acked).await;
        let at = Duration::from_millis(100 + (OsEntropy.i64() as u64 % 900));
        tokio::time::sleep(at).await;
        server.0.kill().unwrap(); // SIGKILL
        server.0.wait().unwrap();
        while load.join_next().await.is_some() {}

        // What the clients saw acknowledged is in the database.
        let acked = acked.lock().unwrap().clone();
        assert!(!acked.is_empty(), "round {round}: no setup got anywhere");
        let stored: HashMap<i64, String> = {
            let db = SqliteStore::open(&data.join("mtcall.db"), Durability::Normal).unwrap();
            db.load_calls(u32::MAX)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.id, c.state))
                .collect()
        };
        for (id, step) in &acked {
            let state = stored.get(id).unwrap_or_else(|| {
                panic!(
                    "round {round}: call {id} acknowledged as {} is not stored",
                    STEPS[*step]
                )
            });
            assert!(
                step_of(state) >= *step,
                "round {round}: call {id} acknowledged as {} but stored as {state}",
                STEPS[*step]
            );
        }

        // Restart; every call still going completes.
        server = start(&data, &addr);
        let live: Vec<(i64, String)> = stored
            .iter()
            .filter(|(_, s)| s.as_str() != "discarded")
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        for (caller_key, callee_key, _) in &pairs {
            let mut caller = Client::resume(socket, *caller_key).await.unwrap();
            let mut callee = Client::resume(socket, *callee_key).await.unwrap();
            callee.update_wait_limit = Some(Duration::from_secs(5));
            caller.update_wait_limit = Some(Duration::from_secs(5));
            // The live call of this pair, as each side sees it (from getDifference).
            callee.catch_up().await.unwrap();
            caller.catch_up().await.unwrap();
            let mut theirs = None;
            let mut mine = None;
            callee.update_wait_limit = Some(Duration::from_millis(300));
            while let Ok(u) = callee.next_update().await {
                if let enums::Update::PhoneCall(p) = u {
                    match p.phone_call {
                        enums::PhoneCall::Requested(r) => {
                            theirs = Some((r.id, r.access_hash, "requested"))
                        }
                        enums::PhoneCall::Waiting(w) => {
                            theirs = Some((w.id, w.access_hash, "accepted"))
                        }
                        enums::PhoneCall::PhoneCall(c) => {
                            theirs = Some((c.id, c.access_hash, "confirmed"))
                        }
                        _ => {}
                    }
                }
            }
            caller.update_wait_limit = Some(Duration::from_millis(300));
            while let Ok(u) = caller.next_update().await {
                if let enums::Update::PhoneCall(p) = u {
                    match p.phone_call {
                        enums::PhoneCall::Waiting(w) => mine = Some((w.id, w.access_hash)),
                        enums::PhoneCall::Accepted(a) => mine = Some((a.id, a.access_hash)),
                        enums::PhoneCall::PhoneCall(c) => mine = Some((c.id, c.access_hash)),
                        _ => {}
                    }
                }
            }
            let Some((id, hash)) = mine else {
                continue;
            };
            assert!(
                live.iter().any(|(l, _)| *l == id),
                "round {round}: call {id} is live"
            );
            if let Some((their_id, their_hash, state)) = theirs {
                assert_eq!(their_id, id);
                if state == "requested" {
                    callee
                        .call(&functions::phone::AcceptCall {
                            peer: input_call(their_id, their_hash),
                            g_b: vec![9; 256],
                            protocol: client::calls::default_protocol(),
                        })
                        .await
                        .unwrap();
                }
            }
            let stage = live.iter().find(|(l, _)| *l == id).map(|(_, s)| s.as_str());
            if stage != Some("confirmed") {
                caller
                    .call(&functions::phone::ConfirmCall {
                        peer: input_call(id, hash),
                        g_a: g_a(),
                        key_fingerprint: 1,
                        protocol: client::calls::default_protocol(),
                    })
                    .await
                    .unwrap();
            }
            caller
                .call(&functions::phone::DiscardCall {
                    video: false,
                    peer: input_call(id, hash),
                    duration: 1,
                    reason: types::PhoneCallDiscardReasonHangup {}.into(),
                    connection_id: 0,
                })
                .await
                .unwrap();
        }
        let db = SqliteStore::open(&data.join("mtcall.db"), Durability::Normal).unwrap();
        let still_live: Vec<_> = db
            .load_calls(u32::MAX)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.state != "discarded")
            .map(|c| (c.id, c.state))
            .collect();
        assert!(
            still_live.is_empty(),
            "round {round}: calls left going: {still_live:?}"
        );
        eprintln!(
            "round {round}: killed after {at:?}; {} calls acknowledged, {} transitions checked, {} live calls completed after the restart",
            acked.len(),
            acked.values().map(|s| s + 1).sum::<usize>(),
            live.len()
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn mtcall(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "mtcall {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_call_acknowledged_before_it() {
    let dir = std::env::temp_dir().join(format!("mtcall-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    let addr = format!("127.0.0.1:{}", free_port());
    let socket: std::net::SocketAddr = addr.parse().unwrap();
    let server = start(&data, &addr);
    let key = PublicKey::from_pkcs1_pem(&std::fs::read_to_string(data.join("server.pub")).unwrap())
        .unwrap();
    let pairs = login_pairs(socket, &key).await;
    let acked: Acked = Arc::default();
    let mut load = load(socket, &pairs, &acked).await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    let before = acked.lock().unwrap().clone();
    let copy = dir.join("backup.db");
    let said = mtcall(&[
        "backup".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        copy.as_os_str(),
    ]);
    assert!(said.starts_with("backed up"), "{said}");
    let during = acked.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = acked.lock().unwrap().len();
    drop(server);
    while load.join_next().await.is_some() {}
    assert!(
        !before.is_empty(),
        "no setup got anywhere before the backup"
    );
    assert!(
        after > during,
        "the setups went on while and after the backup was taken ({during} calls then {after})"
    );

    // Restored into another data directory (with the first one's keys and secret).
    let restored = dir.join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    for file in ["server.key", "server.pub", "server.secret"] {
        std::fs::copy(data.join(file), restored.join(file)).unwrap();
    }
    let said = mtcall(&[
        "restore".as_ref(),
        "--data".as_ref(),
        restored.as_os_str(),
        copy.as_os_str(),
    ]);
    assert!(said.starts_with("restored"), "{said}");
    let stored: HashMap<i64, String> = {
        let db = SqliteStore::open(&restored.join("mtcall.db"), Durability::Normal).unwrap();
        db.load_calls(u32::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.state))
            .collect()
    };
    for (id, step) in &before {
        let state = stored.get(id).unwrap_or_else(|| {
            panic!(
                "call {id} acknowledged as {} before the backup is not in it",
                STEPS[*step]
            )
        });
        assert!(
            step_of(state) >= *step,
            "call {id} acknowledged as {} before the backup but restored as {state}",
            STEPS[*step]
        );
    }

    // The restored directory serves: a pair's keys still log them in.
    let server = start(&restored, &addr);
    let (caller_key, _, _) = &pairs[0];
    let mut caller = Client::resume(socket, *caller_key).await.unwrap();
    caller
        .call(&functions::updates::GetState {})
        .await
        .expect("a key stored before the backup works on the restored server");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
