//! A database made by an older mtcall opens in this one with every row intact: the schema
//! steps that rebuild a table (calls stored in the order they were made) keep what they move.

use rusqlite::{Connection, params};

use crate::sqlite::MIGRATIONS;
use crate::tests::block_on;
use crate::{CallRow, Durability, SqliteStore, Store, sql};

fn call(id: i64, state: &str, updated_at: i64) -> CallRow {
    CallRow {
        id,
        admin_id: 1,
        participant_id: 2,
        state: state.into(),
        body: vec![id as u8; 700],
        updated_at,
        random_id: id as i32,
        deadline: (state != sql::ENDED_STATE).then_some(updated_at as i32 + 60),
    }
}

/// A database at schema version `version`, as that mtcall left it, holding `calls`.
fn database_at(version: usize, calls: &[CallRow]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mtcall-upgrade-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mtcall.db");
    let conn = Connection::open(&path).unwrap();
    for step in &MIGRATIONS[..version] {
        conn.execute_batch(step).unwrap();
    }
    conn.execute_batch(&format!("PRAGMA user_version = {version}"))
        .unwrap();
    for c in calls {
        conn.execute(
            sql::SAVE_CALL,
            params![
                c.id,
                c.admin_id,
                c.participant_id,
                c.state,
                c.body,
                c.updated_at,
                c.random_id,
                c.deadline
            ],
        )
        .unwrap();
    }
    path
}

#[test]
fn calls_stored_by_an_older_schema_are_all_there_after_the_upgrade() {
    // Ids out of creation order, as random ids are.
    let before = [
        call(900, "confirmed", 30),
        call(5, sql::ENDED_STATE, 10),
        call(700, sql::ENDED_STATE, 20),
        call(42, "requested", 40),
    ];
    let path = database_at(7, &before);
    let store = SqliteStore::open(&path, Durability::Normal).unwrap();
    block_on(async {
        let mut loaded = store.load_calls(u32::MAX).await.unwrap();
        loaded.sort_by_key(|c| c.id);
        let mut expected = before.to_vec();
        expected.sort_by_key(|c| c.id);
        assert_eq!(loaded, expected);
        assert_eq!(store.call(700).await.unwrap(), Some(before[2].clone()));
        assert_eq!(
            store.call_by_random(1, 5).await.unwrap(),
            Some(before[1].clone())
        );
        // A moved call changes in place, and new calls go in beside the moved ones.
        let mut answered = call(42, "accepted", 50);
        answered.body = vec![1; 900];
        store.save_call(answered.clone()).await.unwrap();
        store.save_call(call(1, "requested", 60)).await.unwrap();
        assert_eq!(store.call(42).await.unwrap(), Some(answered));
        let live: Vec<i64> = store
            .load_calls(0)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(live, [1, 42, 900]);
        assert_eq!(store.forget_calls_before(15).await.unwrap(), 1);
    });
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
