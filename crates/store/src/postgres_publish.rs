//! One node's publisher of pushes made outside call transitions (a profile change reaching the
//! user's other sessions): every push waiting when it looks goes into one transaction, which
//! takes its users' row locks and counters in one round trip and writes the numbered rows
//! with their notifications and `COMMIT` in the second; answered after the commit.

use tokio::sync::mpsc;

use crate::PushRow;
use crate::postgres_log::{
    Counters, LogStatements, LogWrites, REQUEST_USERS, lock_users, read_counters, write,
};
use crate::postgres_pipeline::{Param, Pipeline, first_error};
use crate::postgres_rows::db_error;
use crate::write::gather;

/// The most publishes one transaction takes.
const PUBLISH_BATCH: usize = 256;

/// One node's publisher: every push waiting when it looks goes into one transaction,
/// answered after the commit.
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

/// Two round trips: `BEGIN`, the users' locks and counters; the numbered rows and `COMMIT`.
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
    // Locked in id order, as call transitions lock them: no deadlock.
    let lock = client
        .prepare_cached(&lock_users(REQUEST_USERS))
        .await
        .map_err(db_error)?;
    let counters = client
        .prepare_cached(&read_counters(REQUEST_USERS))
        .await
        .map_err(db_error)?;
    let statements = LogStatements::prepare(client).await?;
    let mut users: Vec<i64> = rows.iter().map(|r| r.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let params: [Param; 1] = [&users];
    let (begun, locked, read) = tokio::join!(
        client.batch_execute("BEGIN"),
        client.query(&lock, &params),
        client.query(&counters, &params),
    );
    let read = first_error([begun])
        .and(locked)
        .and_then(|l| Ok((l, read?)));
    let (locked, read) = match read {
        Ok(r) => r,
        Err(e) => return Err(pipeline.abandon(e).await),
    };
    let locked: Vec<i64> = locked.iter().map(|r| r.get(0)).collect();
    // A push for a user who does not exist (deleted meanwhile) reaches nobody: dropped.
    let rows = rows
        .into_iter()
        .filter(|r| locked.contains(&r.user_id))
        .collect();
    let writes = match LogWrites::new(Counters::new(&locked, &read), Vec::new(), rows) {
        Ok(w) => w,
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    };
    let client = pipeline.client();
    let (written, committed) = tokio::join!(
        write(client, &statements, &writes, now),
        client.batch_execute("COMMIT"),
    );
    committed.map_err(db_error)?;
    // After a failed statement the database answered `COMMIT` by rolling back.
    pipeline.finish();
    written.map_err(db_error)
}
