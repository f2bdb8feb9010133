//! A transaction whose statements are sent together: `BEGIN` goes out with the first reads and
//! `COMMIT` with the writes, so a call transition costs two round trips to the database instead
//! of one per statement, and a publish one. The database runs pipelined statements in order, so
//! each still sees what the ones before it did (the row locks of the first are held by the
//! second); only the waiting for answers in between is gone.
//!
//! A connection left inside a transaction must never go back to the pool: a [`Pipeline`]
//! dropped before it [`finish`](Pipeline::finish)es — its future cancelled, or an answer lost
//! with the connection — closes its connection, and the database rolls the transaction back.

use deadpool_postgres::{Object, Pool};

use crate::StoreError;
use crate::postgres_rows::{db_error, unavailable};

/// A statement parameter, as pipelined statements take them (bound to locals that outlive
/// the joined futures).
pub(crate) type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// A pooled connection that may be inside a transaction.
pub(crate) struct Pipeline {
    client: Option<Object>,
}

impl Pipeline {
    /// A connection from `pool`, not yet in a transaction.
    pub(crate) async fn connect(pool: &Pool) -> Result<Pipeline, StoreError> {
        let client = pool.get().await.map_err(unavailable)?;
        Ok(Pipeline {
            client: Some(client),
        })
    }

    /// The connection, to send statements on (they are sent when first polled, so statements
    /// joined together leave in one write).
    pub(crate) fn client(&self) -> &deadpool_postgres::ClientWrapper {
        self.client
            .as_deref()
            .expect("a pipeline's connection is only taken by finish and drop")
    }

    /// The transaction ended (committed, or rolled back by the database): the connection goes
    /// back to the pool.
    pub(crate) fn finish(mut self) {
        drop(self.client.take());
    }

    /// The transaction failed part-way: rolls it back and returns the connection, or closes
    /// the connection when even that fails. Returns `error`, for the caller to report.
    pub(crate) async fn abandon(self, error: tokio_postgres::Error) -> StoreError {
        if self.client().batch_execute("ROLLBACK").await.is_ok() {
            self.finish();
        }
        db_error(error)
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Still here: the transaction may be open. Closing the connection ends it.
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// The first error among pipelined answers, if any.
pub(crate) fn first_error<const N: usize>(
    answers: [Result<(), tokio_postgres::Error>; N],
) -> Result<(), tokio_postgres::Error> {
    answers.into_iter().collect()
}
