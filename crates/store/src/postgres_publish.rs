//! One node's push publisher for the shared push log: every push waiting when it looks goes
//! into one transaction (one multi-row insert and one notification per user and node present
//! for that user, sent to the database in one round trip), answered after the commit. Publishers of all nodes take turns under one advisory lock, so sequence numbers
//! commit in order.

use tokio::sync::mpsc;

use crate::PushRow;
use crate::postgres_pipeline::{Param, Pipeline, first_error};
use crate::postgres_rows::db_error;
use crate::write::gather;

/// The channel node `node` listens on for new pushes to users it is present for.
pub(crate) fn push_channel(node: i64) -> String {
    format!("{PUSH_CHANNEL_PREFIX}{node}")
}
const PUSH_CHANNEL_PREFIX: &str = "mtcall_push_";
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

/// Appends the rows and notifies each user's newest `seq` to every node present for them,
/// in one statement.
const INSERT_AND_NOTIFY: &str = "WITH inserted AS (
        INSERT INTO pushes (user_id, except_key, only_key, body, created_at)
        SELECT u, e, o, b, $5 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[]) AS t(u, e, o, b)
        RETURNING seq, user_id),
     newest AS (SELECT user_id, max(seq) AS seq FROM inserted GROUP BY user_id)
     SELECT pg_notify($6 || p.node_id, n.user_id || ':' || n.seq)
     FROM newest n JOIN presence p ON p.user_id = n.user_id";

/// One round trip: `BEGIN`, the publishers' lock, the rows with their notifications, `COMMIT`.
async fn publish_rows(
    pool: &deadpool_postgres::Pool,
    rows: Vec<PushRow>,
    now: i64,
) -> Result<(), crate::StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let pipeline = Pipeline::connect(pool).await?;
    let client = pipeline.client();
    let lock = client
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await
        .map_err(db_error)?;
    let insert = client
        .prepare_cached(INSERT_AND_NOTIFY)
        .await
        .map_err(db_error)?;
    let users: Vec<i64> = rows.iter().map(|r| r.user_id).collect();
    let except: Vec<Option<i64>> = rows.iter().map(|r| r.except_key).collect();
    let only: Vec<Option<i64>> = rows.iter().map(|r| r.only_key).collect();
    let bodies: Vec<&[u8]> = rows.iter().map(|r| r.body.as_slice()).collect();
    let lock_params: [Param; 1] = [&PUBLISH_LOCK];
    let insert_params: [Param; 6] = [&users, &except, &only, &bodies, &now, &PUSH_CHANNEL_PREFIX];
    let (begun, locked, inserted, committed) = tokio::join!(
        client.batch_execute("BEGIN"),
        client.query(&lock, &lock_params),
        client.query(&insert, &insert_params),
        client.batch_execute("COMMIT"),
    );
    committed.map_err(db_error)?;
    // After a failed statement the database answered `COMMIT` by rolling back.
    pipeline.finish();
    first_error([begun, locked.map(drop), inserted.map(drop)]).map_err(db_error)
}
