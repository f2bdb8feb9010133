//! Unit tests of the services without a socket: a node put together as [`crate::Server`]
//! does, on a real SQLite store in a temporary directory, with sessions registered in the hub
//! as channels, seeded entropy, and tokio's clock (which the server's [`Clock`] follows)
//! paused, so the call timer and flood control are tested in milliseconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use calls::{Protocol, SessionRef};
use mtproto::crypto::{Entropy, OsEntropy};
use store::{CallScope, NewUser, Store};
use tl::enums;

use crate::clock::Clock;
use crate::entropy::Randomness;
use crate::hub::{self, Push};
use crate::limits::LimitSettings;
use crate::node::{Node, assemble};
use crate::push_queue::{PushReceiver, push_queue};
use crate::rpc::KeyInfo;
use crate::{Config, data_dir};

/// Unix time, ms, at which the tests' clock starts.
const T0_MS: i64 = 1_764_000_000_000;

/// The state of a one-node server in a fresh directory (removed on drop).
struct Fixture {
    node: Arc<Node>,
    /// The store under the node, to check what was committed.
    store: Arc<dyn Store>,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

/// [`fixture`] with settings changed by `adjust`.
async fn fixture_with(adjust: impl FnOnce(&mut Config)) -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "mtcall-unit-{}-{}",
        std::process::id(),
        OsEntropy.i64() as u64
    ));
    let mut config = Config {
        data_dir: dir.clone(),
        ..Config::default()
    };
    adjust(&mut config);
    let mut data = data_dir::DataDir::open(&dir).unwrap();
    let keys = Arc::new(crate::key_ring::KeyRing::new(
        dir.clone(),
        std::mem::take(&mut data.keys),
    ));
    let (store, cluster) = config.open_store(&data.database()).await.unwrap();
    let node = assemble(
        config,
        None,
        data,
        keys,
        store.clone(),
        cluster,
        Clock::tokio(T0_MS),
        Randomness::seeded(1),
    )
    .await
    .unwrap();
    Fixture {
        node: Arc::new(node),
        store,
        dir,
    }
}

/// A user with one live session: its key id and the channel its pushes arrive on.
async fn user(f: &Fixture, phone: &str, conn_id: u64) -> (SessionRef, PushReceiver) {
    let u = f
        .store
        .create_user(
            NewUser {
                phone: Some(phone.into()),
                first_name: phone.into(),
                ..Default::default()
            },
            T0_MS / 1000,
        )
        .await
        .unwrap();
    let (tx, rx) = push_queue(hub::QUEUE);
    let key_id = conn_id as i64 * 100;
    f.node.sessions.register(u.id, conn_id, key_id, tx);
    let session = SessionRef {
        user_id: u.id,
        key_id,
    };
    (session, rx)
}

fn protocol() -> Protocol {
    Protocol {
        udp_p2p: true,
        udp_reflector: true,
        min_layer: 65,
        max_layer: 92,
        library_versions: vec!["2.4.4".into()],
    }
}

/// `phone.requestCall` as the handler runs it: the transition, then its pushes.
async fn request(node: &Node, caller: SessionRef, callee: i64) -> Arc<calls::Call> {
    let calls = &node.services.calls;
    let now = node.clock.now_secs() as i32;
    let scope = CallScope::Request {
        caller: caller.user_id,
        callee,
        random_id: 7,
    };
    let mut ids = calls.ids();
    let done = calls
        .run(scope, None, move |reg| {
            reg.request(
                caller,
                callee,
                7,
                vec![1; 32],
                protocol(),
                false,
                now,
                &mut ids,
            )
        })
        .await
        .unwrap();
    done.result.unwrap()
}

/// The `PhoneCall` values of the `updatePhoneCall`s in a push.
fn phone_calls(push: Push) -> Vec<enums::PhoneCall> {
    let Push::Updates(updates) = push else {
        return Vec::new();
    };
    let list = match updates.updates().as_ref() {
        enums::Updates::Updates(u) => u.updates.clone(),
        enums::Updates::UpdateShort(u) => vec![u.update.clone()],
        _ => Vec::new(),
    };
    list.into_iter()
        .filter_map(|u| match u {
            enums::Update::PhoneCall(p) => Some(p.phone_call),
            _ => None,
        })
        .collect()
}

/// The next push carrying an `updatePhoneCall`, skipping others (history messages).
async fn next_call_push(rx: &mut PushReceiver) -> enums::PhoneCall {
    loop {
        let push = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a push in time");
        if let Some(call) = phone_calls(push).into_iter().next() {
            return call;
        }
    }
}

#[tokio::test]
async fn a_request_commits_then_rings_the_callee() {
    let f = fixture().await;
    let (alice, _alice_rx) = user(&f, "15550101", 1).await;
    let (bob, mut bob_rx) = user(&f, "15550102", 2).await;
    let call = request(&f.node, alice, bob.user_id).await;
    // Stored before anyone heard of it.
    let stored = f.store.load_calls(u32::MAX).await.unwrap();
    assert!(
        stored
            .iter()
            .any(|r| r.id == call.id && r.state == "requested")
    );
    assert!(matches!(
        next_call_push(&mut bob_rx).await,
        enums::PhoneCall::Requested(r) if r.id == call.id
    ));
}

#[tokio::test]
async fn nobody_acknowledges_and_the_timer_ends_the_call_as_missed_on_time() {
    let f = fixture().await;
    let (alice, mut alice_rx) = user(&f, "15550201", 1).await;
    let (bob, mut bob_rx) = user(&f, "15550202", 2).await;
    let call = request(&f.node, alice, bob.user_id).await;
    assert!(matches!(
        next_call_push(&mut bob_rx).await,
        enums::PhoneCall::Requested(_)
    ));
    let timeouts = f.node.config.calls.timeouts();
    let due = Duration::from_secs((timeouts.receive + timeouts.grace) as u64);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let calls = f.node.services.calls.clone();
    let timers = tokio::spawn(async move { calls.run_timers(stopped).await });
    tokio::time::pause();
    // Just before the deadline nothing has happened.
    tokio::time::advance(due - Duration::from_secs(1)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        alice_rx.try_recv().is_none(),
        "the caller heard something early"
    );
    let live = f.node.services.calls.live_calls().await.unwrap();
    assert!(live.iter().any(|c| c.id == call.id));
    // Past it, both parties hear the call end as missed, and it is stored so.
    tokio::time::advance(Duration::from_secs(2)).await;
    tokio::time::resume();
    for rx in [&mut alice_rx, &mut bob_rx] {
        match next_call_push(rx).await {
            enums::PhoneCall::Discarded(d) => {
                assert_eq!(d.id, call.id);
                assert!(matches!(
                    d.reason,
                    Some(enums::PhoneCallDiscardReason::Missed(_))
                ));
            }
            other => panic!("expected the end of the call, got {other:?}"),
        }
    }
    assert!(f.node.services.calls.live_calls().await.unwrap().is_empty());
    let _ = stop.send(true);
    timers.await.unwrap();
}

#[tokio::test]
async fn a_call_due_before_the_sleeping_timer_wakes_it() {
    let f = fixture().await;
    let (alice, mut alice_rx) = user(&f, "15550211", 1).await;
    let (bob, _bob_rx) = user(&f, "15550212", 2).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let calls = f.node.services.calls.clone();
    let timers = tokio::spawn(async move { calls.run_timers(stopped).await });
    // The timer finds nothing to do and sleeps its idle minute; then a call is requested (the
    // clock runs, so waiting on the store does not jump it to the timer's wake-up), and the
    // timer, woken, sleeps until the call's deadline.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let call = request(&f.node, alice, bob.user_id).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let timeouts = f.node.config.calls.timeouts();
    let due = Duration::from_secs((timeouts.receive + timeouts.grace) as u64);
    assert!(due < Duration::from_secs(59), "due before the idle wake-up");
    tokio::time::pause();
    tokio::time::advance(due + Duration::from_secs(1)).await;
    tokio::time::resume();
    match next_call_push(&mut alice_rx).await {
        enums::PhoneCall::Discarded(d) => assert_eq!(d.id, call.id),
        other => panic!("expected the end of the call, got {other:?}"),
    }
    let _ = stop.send(true);
    timers.await.unwrap();
}

#[tokio::test]
async fn the_same_seed_gives_the_same_call_ids() {
    let (first, second) = (fixture().await, fixture().await);
    let mut ids = Vec::new();
    for f in [&first, &second] {
        let (alice, _a) = user(f, "15550301", 1).await;
        let (bob, _b) = user(f, "15550302", 2).await;
        ids.push(request(&f.node, alice, bob.user_id).await.id);
    }
    assert_eq!(ids[0], ids[1], "call ids come from the node's entropy");
}

#[tokio::test]
async fn a_keys_requests_over_its_rate_wait_and_are_served_again_in_paused_time() {
    let f = fixture_with(|config| {
        config.limits = LimitSettings {
            exempt_loopback: false,
            requests_per_second: 2.0,
            request_burst: 5.0,
            ..LimitSettings::default()
        }
    })
    .await;
    let key = |key_id| KeyInfo {
        key_id,
        perm_key_id: key_id,
        expires_at: None,
        user_id: None,
        layer: tl::Layer::LATEST,
        announced_layer: None,
        client: None,
        session_id: 0,
        revision: 0,
    };
    let (greedy, other) = (key(1), key(2));
    let ip: std::net::IpAddr = "198.18.0.1".parse().unwrap();
    let sessions = &f.node.sessions;
    let now = || f.node.clock.now_ms();
    tokio::time::pause();
    for _ in 0..5 {
        assert_eq!(sessions.request_allowed(ip, &greedy, now()), Ok(()));
    }
    // Over the burst: wait a second (FLOOD_WAIT_1); another key is not affected.
    assert_eq!(sessions.request_allowed(ip, &greedy, now()), Err(1));
    assert_eq!(sessions.request_allowed(ip, &other, now()), Ok(()));
    // Half a token later (2/s): still waiting; a whole token later: served.
    tokio::time::advance(Duration::from_millis(250)).await;
    assert_eq!(sessions.request_allowed(ip, &greedy, now()), Err(1));
    tokio::time::advance(Duration::from_millis(300)).await;
    assert_eq!(sessions.request_allowed(ip, &greedy, now()), Ok(()));
    tokio::time::resume();
}

/// An idle connection is mostly its task, and tokio allocates a task in steps of 128 bytes (the
/// task's cell is aligned to 128 on x86_64; its header and trailer took 104 bytes with tokio
/// 1.54): a connection's future of up to 1,432 bytes fits the 1,536-byte step, 8 more bytes
/// cost every idle connection 128. Measured by `mtcall bench idle`.
#[cfg(target_arch = "x86_64")]
#[tokio::test]
async fn a_connection_s_future_fits_its_allocation_step() {
    let f = fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, peer) = listener.accept().await.unwrap();
    let connection = crate::connection::serve(f.node.clone(), stream, peer, push_queue(hub::QUEUE));
    let size = std::mem::size_of_val(&connection);
    assert!(size <= 1432, "a connection's future is {size} bytes");
}
