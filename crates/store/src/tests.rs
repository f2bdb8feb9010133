//! Store behaviour against a real SQLite file and, when the test command provides one
//! (`MTCALL_TEST_POSTGRES`, a server URL; `MTCALL_REQUIRE_POSTGRES=1` makes its absence a
//! failure), a fresh database on a real PostgreSQL server: every test runs on both.

use std::sync::Arc;

use super::*;

pub(crate) fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// One backend's database for one test, which can be opened again on the same data.
enum Db {
    Sqlite(tempdir::TempDir),
    Postgres(String),
}

impl Db {
    /// SQLite, and PostgreSQL when the test command started one.
    fn each() -> Vec<Db> {
        let mut out = vec![Db::Sqlite(tempdir::TempDir::new())];
        match std::env::var("MTCALL_TEST_POSTGRES") {
            Ok(url) => out.push(Db::Postgres(
                block_on(fresh_test_database(&url)).expect("the test PostgreSQL server"),
            )),
            Err(_) if std::env::var("MTCALL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
                panic!("MTCALL_REQUIRE_POSTGRES=1 but MTCALL_TEST_POSTGRES is not set")
            }
            Err(_) => {}
        }
        out
    }

    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(dir) => Arc::new(
                SqliteStore::open(&dir.path().join("mtcall.db"), Durability::Full).unwrap(),
            ),
            Db::Postgres(url) => Arc::new(PgStore::connect(url).await.unwrap()),
        }
    }
}

/// Runs `test` on a fresh database of every backend.
fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(Db) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for db in Db::each() {
        block_on(test(db));
    }
}

mod tempdir {
    /// A directory removed on drop (no extra dependency for one helper).
    pub struct TempDir(std::path::PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!(
                "mtcall-store-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn users_are_unique_by_phone_and_username() {
    on_each_backend(|db| async move {
        let s = db.open().await;
        let a = s
            .create_user(
                NewUser {
                    phone: Some("15550001".into()),
                    first_name: "A".into(),
                    ..Default::default()
                },
                1,
            )
            .await
            .unwrap();
        assert!(a.id > 1_000_000);
        let e = s
            .create_user(
                NewUser {
                    phone: Some("15550001".into()),
                    first_name: "B".into(),
                    ..Default::default()
                },
                1,
            )
            .await;
        assert_eq!(e.unwrap_err(), StoreError::Conflict("phone"));
        s.set_username(a.id, Some("Alice".into())).await.unwrap();
        let b = s
            .create_user(
                NewUser {
                    phone: Some("15550002".into()),
                    first_name: "B".into(),
                    ..Default::default()
                },
                1,
            )
            .await
            .unwrap();
        assert_eq!(
            s.set_username(b.id, Some("alice".into()))
                .await
                .unwrap_err(),
            StoreError::Conflict("username")
        );
        assert_eq!(s.user_by_username("ALICE").await.unwrap().unwrap().id, a.id);
        assert_eq!(s.user_by_phone("15550002").await.unwrap().unwrap().id, b.id);
        assert_eq!(s.users().await.unwrap().len(), 2);
    });
}

#[test]
fn contacts_are_listed_per_owner_and_renamed_in_place() {
    on_each_backend(|db| async move {
        let s = db.open().await;
        let user = |phone: &str| NewUser {
            phone: Some(phone.into()),
            first_name: "U".into(),
            ..Default::default()
        };
        let a = s.create_user(user("15550011"), 1).await.unwrap();
        let b = s.create_user(user("15550012"), 1).await.unwrap();
        let c = s.create_user(user("15550013"), 1).await.unwrap();
        assert_eq!(s.contacts_of(a.id).await.unwrap(), Vec::<i64>::new());
        s.add_contact(a.id, c.id, "C", "").await.unwrap();
        s.add_contact(a.id, b.id, "B", "").await.unwrap();
        s.add_contact(a.id, b.id, "Bee", "Renamed").await.unwrap();
        s.add_contact(b.id, a.id, "A", "").await.unwrap();
        let mut want = vec![b.id, c.id];
        want.sort();
        assert_eq!(s.contacts_of(a.id).await.unwrap(), want);
        assert_eq!(s.contacts_of(b.id).await.unwrap(), vec![a.id]);
        assert_eq!(s.contacts_of(c.id).await.unwrap(), Vec::<i64>::new());
        assert!(s.is_contact(a.id, b.id).await.unwrap());
        assert!(!s.is_contact(c.id, a.id).await.unwrap());
    });
}

#[test]
fn keys_and_updates_survive_reopening() {
    on_each_backend(|db| async move {
        {
            let s = db.open().await;
            {
                let row = AuthKeyRow {
                    id: 42,
                    key: vec![7; 256],
                    created_at: 10,
                    first_salt: 99,
                    expires_at: None,
                    perm_key_id: None,
                    user_id: None,
                    layer: None,
                    client: None,
                };
                s.insert_auth_key(row).await.unwrap();
                let info = ClientInfo {
                    api_id: 5,
                    device_model: "d".into(),
                    system_version: "s".into(),
                    app_version: "1".into(),
                    lang_code: "en".into(),
                };
                s.set_key_client(42, Some(198), Some(info)).await.unwrap();
                assert_eq!(
                    s.append_update(7, 1, 100, Box::new(|pts| vec![pts as u8]))
                        .await
                        .unwrap(),
                    (1, vec![1])
                );
                assert_eq!(
                    s.append_update(7, 2, 101, Box::new(|_| vec![2]))
                        .await
                        .unwrap(),
                    (3, vec![2])
                );
                let call = CallRow {
                    id: 5,
                    admin_id: 1,
                    participant_id: 2,
                    state: "requested".into(),
                    body: vec![1, 2],
                    updated_at: 9,
                    random_id: 4,
                    deadline: Some(99),
                };
                s.save_call(call.clone()).await.unwrap();
                s.save_call(CallRow {
                    state: "received".into(),
                    ..call
                })
                .await
                .unwrap();
            }
        }
        let s = db.open().await;
        let k = s.auth_key(42).await.unwrap().unwrap();
        assert_eq!(
            (k.layer, k.key.len(), k.client.unwrap().api_id),
            (Some(198), 256, 5)
        );
        assert_eq!(s.pts(7).await.unwrap(), 3);
        let after1 = s.updates_after(7, 1, 10).await.unwrap();
        assert_eq!(
            after1,
            vec![UpdateRow {
                pts: 3,
                pts_count: 2,
                date: 101,
                body: vec![2]
            }]
        );
        assert_eq!(s.pts(8).await.unwrap(), 0);
        assert!(s.auth_key(43).await.unwrap().is_none());
        let calls = s.load_calls(u32::MAX).await.unwrap();
        assert_eq!((calls.len(), calls[0].state.as_str()), (1, "received"));
    });
}

#[test]
fn live_calls_load_with_the_latest_ended_and_old_ended_ones_are_deleted() {
    on_each_backend(|db| async move {
        let s = db.open().await;
        let call = |id: i64, state: &str, updated_at: i64| CallRow {
            id,
            admin_id: 1,
            participant_id: 2,
            state: state.into(),
            body: vec![id as u8],
            updated_at,
            random_id: id as i32 * 10,
            deadline: None,
        };
        for row in [
            call(1, "confirmed", 5),
            call(2, sql::ENDED_STATE, 50),
            call(3, sql::ENDED_STATE, 80),
            call(4, sql::ENDED_STATE, 10),
        ] {
            s.save_call(row).await.unwrap();
        }
        let ids = |rows: Vec<CallRow>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(s.load_calls(2).await.unwrap()), [1, 2, 3]);
        assert_eq!(ids(s.load_calls(0).await.unwrap()), [1]);
        assert_eq!(ids(s.load_calls(u32::MAX).await.unwrap()), [1, 2, 3, 4]);
        assert_eq!(
            s.call(3).await.unwrap(),
            Some(call(3, sql::ENDED_STATE, 80))
        );
        assert_eq!(s.call(9).await.unwrap(), None);
        assert_eq!(
            s.call_by_random(1, 40).await.unwrap(),
            Some(call(4, sql::ENDED_STATE, 10))
        );
        assert_eq!(s.call_by_random(2, 40).await.unwrap(), None);
        // Ended calls last changed before 60 go; a live one never does, however old.
        assert_eq!(s.forget_calls_before(60).await.unwrap(), 2);
        assert_eq!(ids(s.load_calls(u32::MAX).await.unwrap()), [1, 3]);
    });
}

#[test]
fn the_sign_up_allowlist_holds_numbers_until_removed() {
    on_each_backend(|db| async move {
        let store = db.open().await;
        store.ping().await.unwrap();
        assert!(!store.phone_allowed("15550001").await.unwrap());
        store.allow_phone("15550002", 10).await.unwrap();
        store.allow_phone("15550001", 11).await.unwrap();
        store.allow_phone("15550001", 12).await.unwrap();
        assert!(store.phone_allowed("15550001").await.unwrap());
        assert_eq!(
            store.allowed_phones().await.unwrap(),
            ["15550001", "15550002"]
        );
        drop(store);
        let store = db.open().await;
        store.disallow_phone("15550001").await.unwrap();
        assert!(!store.phone_allowed("15550001").await.unwrap());
        assert_eq!(store.allowed_phones().await.unwrap(), ["15550002"]);
    });
}

#[test]
fn a_cloud_password_is_kept_replaced_and_cleared() {
    on_each_backend(|db| async move {
        let store = db.open().await;
        let user = store
            .create_user(
                NewUser {
                    phone: Some("15550003".into()),
                    first_name: "P".into(),
                    ..Default::default()
                },
                1,
            )
            .await
            .unwrap();
        assert_eq!(store.password(user.id).await.unwrap(), None);
        let first = CloudPassword {
            salt1: vec![1; 40],
            salt2: vec![2; 16],
            verifier: vec![3; 256],
            hint: "the usual".into(),
            set_at: 5,
        };
        store.set_password(user.id, first.clone()).await.unwrap();
        drop(store);
        let store = db.open().await;
        assert_eq!(store.password(user.id).await.unwrap(), Some(first));
        let second = CloudPassword {
            verifier: vec![4; 256],
            hint: String::new(),
            set_at: 6,
            ..store.password(user.id).await.unwrap().unwrap()
        };
        store.set_password(user.id, second.clone()).await.unwrap();
        assert_eq!(store.password(user.id).await.unwrap(), Some(second));
        store.clear_password(user.id).await.unwrap();
        assert_eq!(store.password(user.id).await.unwrap(), None);
    });
}

#[test]
fn login_codes() {
    on_each_backend(|db| async move {
        let s = db.open().await;
        let code = LoginCode {
            hash: "h1".into(),
            phone: "15550001".into(),
            code: "12345".into(),
            created_at: 1,
            expires_at: 100,
            attempts: 0,
            verified: false,
        };
        s.save_login_code(code.clone()).await.unwrap();
        s.update_login_code("h1", 1, true).await.unwrap();
        let got = s.login_code("h1").await.unwrap().unwrap();
        assert_eq!((got.attempts, got.verified), (1, true));
        assert_eq!(
            s.latest_login_code("15550001").await.unwrap().unwrap().hash,
            "h1"
        );
        s.delete_login_code("h1").await.unwrap();
        assert!(s.login_code("h1").await.unwrap().is_none());
    });
}

#[test]
fn queued_calls_apply_in_creation_order_and_a_failure_stays_its_own() {
    on_each_backend(|db| async move {
        let s = db.open().await;
        // 300 appends queued before any is awaited: one or a few group commits, in order.
        let pending: Vec<_> = (0..300)
            .map(|i| s.append_update(9, 1, i, Box::new(move |pts| vec![(pts % 256) as u8])))
            .collect();
        let mut seen = Vec::new();
        for p in pending {
            seen.push(p.await.unwrap().0);
        }
        assert_eq!(seen, (1..=300).collect::<Vec<i32>>());
        // A call that fails inside a batch fails alone; its neighbours commit.
        let user = |phone: &str, username: &str| NewUser {
            phone: Some(phone.into()),
            first_name: "x".into(),
            last_name: String::new(),
            username: Some(username.into()),
            bot_secret: None,
        };
        let a = s.create_user(user("15550101", "first_one"), 0);
        let clash = s.create_user(user("15550101", "second_one"), 0);
        let b = s.create_user(user("15550102", "third_one"), 0);
        assert!(a.await.is_ok());
        assert_eq!(clash.await.unwrap_err(), StoreError::Conflict("phone"));
        assert!(b.await.is_ok());
        assert_eq!(s.users().await.unwrap().len(), 2);
        assert_eq!(s.pts(9).await.unwrap(), 300);
    });
}
