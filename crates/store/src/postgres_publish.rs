//! One node's push publisher for the shared push log: every push waiting when it looks goes
//! into one transaction (one multi-row insert and one notification per user), answered after
//! the commit. Publishers of all nodes take turns under one advisory lock, so sequence numbers
//! commit in order.

use tokio::sync::mpsc;

use crate::PushRow;
use crate::postgres_rows::{db_error, unavailable};
use crate::write::gather;

/// The channel nodes listen on for new pushes.
pub(crate) const PUSH_CHANNEL: &str = "mtcall_push";
/// The most publishes one transaction takes.
const PUBLISH_BATCH: usize = 256;
/// The advisory lock that orders publishers.
const PUBLISH_LOCK: i64 = 7_099_353_245_412_567;

/// One node's publisher: every push waiting when it looks goes into one transaction (one
/// multi-row insert and one notification per user), answered after the commit. Publishers of
/// all nodes take turns under one advisory lock, so sequence numbers commit in order.
pub(crate) async fn publish_loop(
    pool: deadpool_postgres::Pool,
    mut queue: mpsc::UnboundedReceiver<Publish>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = gather(first, PUBLISH_BATCH, || queue.try_recv().ok());
        let rows: Vec<PushRow> = batch
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.rows))
            .collect();
        let now = batch.iter().map(|p| p.now).max().unwrap_or(0);
        let result = publish_rows(&pool, rows, now).await;
        for p in batch {
            let _ = p.done.send(result.clone());
        }
    }
}

/// Pushes waiting for the publisher.
pub(crate) struct Publish {
    pub(crate) rows: Vec<PushRow>,
    pub(crate) now: i64,
    pub(crate) done: tokio::sync::oneshot::Sender<Result<(), crate::StoreError>>,
}

async fn publish_rows(
    pool: &deadpool_postgres::Pool,
    rows: Vec<PushRow>,
    now: i64,
) -> Result<(), crate::StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut client = pool.get().await.map_err(unavailable)?;
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PUBLISH_LOCK])
        .await
        .map_err(db_error)?;
    let users: Vec<i64> = rows.iter().map(|r| r.user_id).collect();
    let except: Vec<Option<i64>> = rows.iter().map(|r| r.except_key).collect();
    let only: Vec<Option<i64>> = rows.iter().map(|r| r.only_key).collect();
    let bodies: Vec<&[u8]> = rows.iter().map(|r| r.body.as_slice()).collect();
    let inserted = tx
        .query(
            "INSERT INTO pushes (user_id, except_key, only_key, body, created_at)
             SELECT u, e, o, b, $5 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[]) AS t(u, e, o, b)
             RETURNING seq, user_id",
            &[&users, &except, &only, &bodies, &now],
        )
        .await
        .map_err(db_error)?;
    let mut newest: Vec<(i64, i64)> = Vec::new();
    for r in &inserted {
        let (seq, user): (i64, i64) = (r.get("seq"), r.get("user_id"));
        match newest.iter_mut().find(|(u, _)| *u == user) {
            Some(entry) => entry.1 = entry.1.max(seq),
            None => newest.push((user, seq)),
        }
    }
    let payloads: Vec<String> = newest.iter().map(|(u, seq)| format!("{u}:{seq}")).collect();
    tx.execute(
        "SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p",
        &[&PUSH_CHANNEL, &payloads],
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}
