//! The cluster side of PostgreSQL against a real server (`MTCALL_TEST_POSTGRES`; skipped
//! without one unless `MTCALL_REQUIRE_POSTGRES=1`): a push wakes only the nodes present for
//! its user, a node thought gone learns it must write its presence again, pushes are numbered
//! per user, and writing presence waits for a transition holding the user's row.

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

/// Two new users' ids, with phone numbers of their own for each `n`.
async fn two_users(store: &PgStore, n: u32) -> (i64, i64) {
    let mut ids = [0; 2];
    for (i, id) in ids.iter_mut().enumerate() {
        let user = NewUser {
            phone: Some(format!("4471{n:03}0000{i}")),
            first_name: format!("User {n}.{i}"),
            last_name: String::new(),
            username: None,
            bot_secret: None,
        };
        *id = store.create_user(user, 1).await.unwrap().id;
    }
    (ids[0], ids[1])
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
        let (u7, u8) = two_users(&store, 0).await;
        let (a, b) = (store.join(10).await.unwrap(), store.join(10).await.unwrap());
        assert_ne!(a, b);
        let (mut wakes_a, mut wakes_b) = (store.listen(a), store.listen(b));
        until_listening(&store, &mut wakes_a, &mut wakes_b).await;
        let present = store.set_presence(a, 11, vec![u7], vec![]).await.unwrap();
        assert_eq!(
            present,
            Presence {
                forgotten: false,
                newest: vec![(u7, 0)]
            }
        );
        assert!(
            !store
                .set_presence(b, 11, vec![u8], vec![])
                .await
                .unwrap()
                .forgotten
        );

        // A push for the first user wakes node a only; the marker behind it reaches both, in
        // order.
        store.publish(vec![push(u7)], 12).await.unwrap();
        store.user_changed(MARKER).await.unwrap();
        let carried = |user_id, seq| {
            Wake::Push(StoredPush {
                seq,
                push: push(user_id),
            })
        };
        assert_eq!(next(&mut wakes_a).await, carried(u7, 1));
        assert_eq!(next(&mut wakes_a).await, Wake::UserChanged(MARKER));
        assert_eq!(next(&mut wakes_b).await, Wake::UserChanged(MARKER));
        let all = |user_id, after, since| PushCursor {
            user_id,
            after,
            since,
        };
        let rows = store.pushes_for(vec![all(u7, 0, 0)]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].seq, &rows[0].push.body), (1, &vec![1, 2, 3]));

        // Once the user's last session on node a is gone, their pushes wake nobody. Each
        // user's pushes are numbered on from their own newest.
        assert!(
            !store
                .set_presence(a, 13, vec![], vec![u7])
                .await
                .unwrap()
                .forgotten
        );
        store
            .publish(vec![push(u7), push(u8), push(u7)], 14)
            .await
            .unwrap();
        store.user_changed(MARKER + 1).await.unwrap();
        assert_eq!(next(&mut wakes_a).await, Wake::UserChanged(MARKER + 1));
        assert_eq!(next(&mut wakes_b).await, carried(u8, 1));
        assert_eq!(next(&mut wakes_b).await, Wake::UserChanged(MARKER + 1));
        let rows = store
            .pushes_for(vec![all(u7, 1, 0), all(u8, 0, 14)])
            .await
            .unwrap();
        let seqs: Vec<(i64, i64)> = rows.iter().map(|r| (r.push.user_id, r.seq)).collect();
        let mut expected = vec![(u7, 2), (u7, 3), (u8, 1)];
        expected.sort_unstable();
        assert_eq!(seqs, expected);
        assert!(
            store
                .pushes_for(vec![all(u8, 0, 15)])
                .await
                .unwrap()
                .is_empty()
        );

        // Nodes without a heartbeat since 14 are forgotten with their presence; the next
        // heartbeat says so.
        assert_eq!(store.forget_nodes_before(14).await.unwrap(), 2);
        assert!(
            store
                .set_presence(b, 15, vec![], vec![])
                .await
                .unwrap()
                .forgotten
        );
        store.publish(vec![push(u8)], 16).await.unwrap();
        store.user_changed(MARKER + 2).await.unwrap();
        assert_eq!(next(&mut wakes_b).await, Wake::UserChanged(MARKER + 2));

        // A push too large to ride in its notification is announced by its number only.
        assert!(
            !store
                .set_presence(b, 17, vec![u8], vec![])
                .await
                .unwrap()
                .forgotten
        );
        let mut large = push(u8);
        large.body = vec![7; 5_000];
        store
            .publish(vec![large.clone(), push(u8)], 18)
            .await
            .unwrap();
        assert_eq!(
            next(&mut wakes_b).await,
            Wake::Pushes {
                user_id: u8,
                seq: 3
            }
        );
        assert_eq!(next(&mut wakes_b).await, carried(u8, 4));
        let rows = store.pushes_for(vec![all(u8, 2, 0)]).await.unwrap();
        assert_eq!(rows[0].push, large);
    });
}

#[test]
fn presence_waits_for_a_transition_holding_its_user() {
    let Some(url) = database() else {
        return;
    };
    block_on(async {
        let store = std::sync::Arc::new(PgStore::connect(&url).await.unwrap());
        let (caller, callee) = two_users(&store, 0).await;
        let node = store.join(10).await.unwrap();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
        let scope = CallScope::Request {
            caller,
            callee,
            random_id: 1,
        };
        let held = store.clone();
        let transition = tokio::spawn(async move {
            held.transact_calls(
                scope,
                20,
                Box::new(move |_| {
                    Box::pin(async move {
                        let _ = locked.send(());
                        let _ = released.await;
                        Some(CallChanges {
                            pushes: vec![push(callee)],
                            ..CallChanges::default()
                        })
                    })
                }),
            )
            .await
        });
        is_locked.await.unwrap();
        let writer = store.clone();
        let presence =
            tokio::spawn(async move { writer.set_presence(node, 21, vec![callee], vec![]).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !presence.is_finished(),
            "presence did not wait for the row lock"
        );
        release.send(()).unwrap();
        transition.await.unwrap().unwrap();
        let present = presence.await.unwrap().unwrap();
        // The transition's push was made before the node was present: it counts as seen.
        assert_eq!(present.newest, vec![(callee, 1)]);
    });
}

#[test]
fn concurrent_transitions_sharing_users_each_see_the_ones_before() {
    let Some(url) = database() else {
        return;
    };
    block_on(async {
        let store = std::sync::Arc::new(PgStore::connect(&url).await.unwrap());
        let mut users = Vec::new();
        for n in 0..3 {
            let (a, b) = two_users(&store, n).await;
            users.extend([a, b]);
        }
        // Pairs that share users with many others, all sent at once: transitions that share
        // a transaction must not be given the same pts (the log's check would refuse them).
        let pairs: Vec<(i64, i64)> = (0..60)
            .map(|k| (users[k % 6], users[(k * 7 + 1) % 6]))
            .filter(|(a, b)| a != b)
            .collect();
        let mut running = Vec::new();
        for (k, (caller, callee)) in pairs.iter().copied().enumerate() {
            let store = store.clone();
            running.push(tokio::spawn(async move {
                let scope = CallScope::Request {
                    caller,
                    callee,
                    random_id: k as i32,
                };
                store
                    .transact_calls(
                        scope,
                        30,
                        Box::new(move |given: InScope| {
                            Box::pin(async move {
                                assert_eq!(given.pts.len(), 2, "both users' pts are given");
                                tokio::task::yield_now().await;
                                let updates = given
                                    .pts
                                    .iter()
                                    .map(|(user_id, pts)| NewUpdate {
                                        user_id: *user_id,
                                        update: UpdateRow {
                                            pts: pts + 1,
                                            pts_count: 1,
                                            date: 30,
                                            body: vec![k as u8],
                                        },
                                    })
                                    .collect();
                                Some(CallChanges {
                                    updates,
                                    pushes: vec![push(caller)],
                                    ..CallChanges::default()
                                })
                            })
                        }),
                    )
                    .await
            }));
        }
        for r in running {
            r.await.unwrap().unwrap();
        }
        for u in &users {
            let involved = pairs.iter().filter(|(a, b)| a == u || b == u).count();
            assert_eq!(store.pts(*u).await.unwrap(), involved as i32, "user {u}");
        }
        // They were grouped, and those sharing users waited for later groups.
        let groups = store.transition_groups();
        assert_eq!(groups.transitions, pairs.len() as u64);
        assert!(groups.groups < groups.transitions, "{groups:?}");
        assert!(groups.held_back > 0, "{groups:?}");
    });
}

#[test]
fn a_step_past_its_deadline_writes_nothing_and_the_others_commit() {
    let Some(url) = database() else {
        return;
    };
    block_on(async {
        let store = std::sync::Arc::new(PgStore::connect(&url).await.unwrap());
        let (slow_user, a) = two_users(&store, 100).await;
        let (b, c) = two_users(&store, 101).await;
        let run = |caller: i64, callee: i64, pause: Duration| {
            let store = store.clone();
            tokio::spawn(async move {
                let scope = CallScope::Request {
                    caller,
                    callee,
                    random_id: 1,
                };
                let step: CallStep<'_> = Box::new(move |given: InScope| {
                    Box::pin(async move {
                        tokio::time::sleep(pause).await;
                        let (user_id, pts) = given.pts[0];
                        Some(CallChanges {
                            updates: vec![NewUpdate {
                                user_id,
                                update: UpdateRow {
                                    pts: pts + 1,
                                    pts_count: 1,
                                    date: 40,
                                    body: vec![1],
                                },
                            }],
                            ..CallChanges::default()
                        })
                    })
                });
                store.transact_calls(scope, 40, step).await
            })
        };
        let slow = run(slow_user, a, Duration::from_millis(1_500));
        let quick = run(b, c, Duration::ZERO);
        assert!(matches!(
            slow.await.unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        quick.await.unwrap().unwrap();
        assert_eq!(store.pts(slow_user.min(a)).await.unwrap(), 0);
        assert_eq!(store.pts(b.min(c)).await.unwrap(), 1);
    });
}

#[test]
fn a_request_is_given_the_callers_ended_call_with_its_random_id_and_no_other() {
    let Some(url) = database() else {
        return;
    };
    block_on(async {
        let store = PgStore::connect(&url).await.unwrap();
        let (caller, callee) = two_users(&store, 200).await;
        let ended = CallRow {
            id: 77,
            admin_id: caller,
            participant_id: callee,
            state: sql::ENDED_STATE.to_owned(),
            body: vec![9],
            updated_at: 50,
            random_id: 5,
            deadline: None,
        };
        // The calls each request is given.
        let given_to = |random_id: i32, save: Option<CallRow>| {
            let store = &store;
            async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let scope = CallScope::Request {
                    caller,
                    callee,
                    random_id,
                };
                let step: CallStep<'_> = Box::new(move |given: InScope| {
                    Box::pin(async move {
                        let _ = tx.send(given.calls);
                        save.map(|call| CallChanges {
                            save: vec![call],
                            ..CallChanges::default()
                        })
                    })
                });
                store.transact_calls(scope, 50, step).await.unwrap();
                rx.await.unwrap()
            }
        };
        assert_eq!(given_to(5, Some(ended.clone())).await, vec![]);
        assert_eq!(given_to(5, None).await, vec![ended]);
        assert_eq!(given_to(6, None).await, vec![]);
    });
}
