//! The cluster side of PostgreSQL against a real server (`MTCALL_TEST_POSTGRES`; skipped
//! without one unless `MTCALL_REQUIRE_POSTGRES=1`): a push wakes only the nodes present for
//! its user, and a node thought gone learns it must write its presence again.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::*;
use crate::tests::block_on;

/// A fresh database on the test server, if there is one.
fn database() -> Option<String> {
    match std::env::var("MTCALL_TEST_POSTGRES") {
        Ok(url) => Some(block_on(fresh_test_database(&url)).expect("the test PostgreSQL server")),
        Err(_) if std::env::var("MTCALL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("MTCALL_REQUIRE_POSTGRES=1 but MTCALL_TEST_POSTGRES is not set")
        }
        Err(_) => None,
    }
}

/// Markers below this are the listeners' readiness checks.
const MARKER: i64 = 1_000_000;

/// The next wake-up that is not a readiness check, waiting at most 10 s.
async fn next(wakes: &mut UnboundedReceiver<Wake>) -> Wake {
    loop {
        let wake = tokio::time::timeout(Duration::from_secs(10), wakes.recv())
            .await
            .expect("a wake-up within 10 s")
            .expect("the listener is running");
        if !matches!(wake, Wake::UserChanged(n) if n < MARKER) {
            return wake;
        }
    }
}

/// Waits until both listeners listen: user changes reach every node.
async fn until_listening(
    store: &PgStore,
    a: &mut UnboundedReceiver<Wake>,
    b: &mut UnboundedReceiver<Wake>,
) {
    for (n, wakes) in [a, b].into_iter().enumerate() {
        let mut tries = 0;
        loop {
            store.user_changed(n as i64).await.unwrap();
            match tokio::time::timeout(Duration::from_millis(200), wakes.recv()).await {
                Ok(Some(Wake::UserChanged(_))) => break,
                _ if tries < 50 => tries += 1,
                other => panic!("the listener never started: {other:?}"),
            }
        }
    }
}

fn push(user_id: i64) -> PushRow {
    PushRow {
        user_id,
        except_key: None,
        only_key: None,
        body: vec![1, 2, 3],
    }
}

#[test]
fn a_push_wakes_only_the_nodes_present_for_its_user() {
    let Some(url) = database() else {
        return;
    };
    block_on(async {
        let store = PgStore::connect(&url).await.unwrap();
        let (a, b) = (store.join(10).await.unwrap(), store.join(10).await.unwrap());
        assert_ne!(a, b);
        let (mut wakes_a, mut wakes_b) = (store.listen(a), store.listen(b));
        until_listening(&store, &mut wakes_a, &mut wakes_b).await;
        assert!(!store.set_presence(a, 11, vec![7], vec![]).await.unwrap());
        assert!(!store.set_presence(b, 11, vec![8], vec![]).await.unwrap());

        // A push for user 7 wakes node a only; the marker behind it reaches both, in order.
        store.publish(vec![push(7)], 12).await.unwrap();
        store.user_changed(MARKER).await.unwrap();
        let Wake::Pushes { user_id: 7, seq } = next(&mut wakes_a).await else {
            panic!("node a was not woken for user 7");
        };
        assert_eq!(next(&mut wakes_a).await, Wake::UserChanged(MARKER));
        assert_eq!(next(&mut wakes_b).await, Wake::UserChanged(MARKER));
        let rows = store.pushes_for(0, seq, vec![7]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].push.body, vec![1, 2, 3]);

        // Once user 7's last session on node a is gone, their pushes wake nobody.
        assert!(!store.set_presence(a, 13, vec![], vec![7]).await.unwrap());
        store.publish(vec![push(7), push(8)], 14).await.unwrap();
        store.user_changed(MARKER + 1).await.unwrap();
        assert_eq!(next(&mut wakes_a).await, Wake::UserChanged(MARKER + 1));
        assert!(matches!(
            next(&mut wakes_b).await,
            Wake::Pushes { user_id: 8, .. }
        ));
        assert_eq!(next(&mut wakes_b).await, Wake::UserChanged(MARKER + 1));

        // Nodes without a heartbeat since 14 are forgotten with their presence; the next
        // heartbeat says so.
        assert_eq!(store.forget_nodes_before(14).await.unwrap(), 2);
        assert!(store.set_presence(b, 15, vec![], vec![]).await.unwrap());
        store.publish(vec![push(8)], 16).await.unwrap();
        store.user_changed(MARKER + 2).await.unwrap();
        assert_eq!(next(&mut wakes_b).await, Wake::UserChanged(MARKER + 2));
    });
}
