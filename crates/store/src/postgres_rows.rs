//! What the PostgreSQL store and its cluster side share: the store's errors from the
//! database's, rows read into the model (columns in the order of the `SELECT` lists in
//! `sql.rs`), and statements run through a connection's prepared-statement cache.

use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use crate::{AuthKeyRow, CallRow, ClientInfo, LoginCode, StoreError, User, sql};

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A database error as the store reports it: unique violations name what was taken.
pub(crate) fn db_error(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        let constraint = e.as_db_error().and_then(|d| d.constraint()).unwrap_or("");
        if constraint.contains("phone") {
            return StoreError::Conflict("phone");
        }
        if constraint.contains("username") {
            return StoreError::Conflict("username");
        }
    }
    unavailable(e)
}

pub(crate) fn user_row(r: &Row) -> User {
    User {
        id: r.get(0),
        phone: r.get(1),
        first_name: r.get(2),
        last_name: r.get(3),
        username: r.get(4),
        bot: r.get(5),
        bot_secret: r.get(6),
        created_at: r.get(7),
    }
}

pub(crate) fn key_row(r: &Row) -> AuthKeyRow {
    let api_id: Option<i32> = r.get(8);
    AuthKeyRow {
        id: r.get(0),
        key: r.get(1),
        created_at: r.get(2),
        first_salt: r.get(3),
        expires_at: r.get(4),
        perm_key_id: r.get(5),
        user_id: r.get(6),
        layer: r.get(7),
        client: api_id.map(|api_id| ClientInfo {
            api_id,
            device_model: r.get::<_, Option<String>>(9).unwrap_or_default(),
            system_version: r.get::<_, Option<String>>(10).unwrap_or_default(),
            app_version: r.get::<_, Option<String>>(11).unwrap_or_default(),
            lang_code: r.get::<_, Option<String>>(12).unwrap_or_default(),
        }),
    }
}

pub(crate) fn call_row(r: &Row) -> CallRow {
    CallRow {
        id: r.get(0),
        admin_id: r.get(1),
        participant_id: r.get(2),
        state: r.get(3),
        body: r.get(4),
        updated_at: r.get(5),
        random_id: r.get(6),
        deadline: r.get(7),
    }
}

pub(crate) fn code_row(r: &Row) -> LoginCode {
    LoginCode {
        hash: r.get(0),
        phone: r.get(1),
        code: r.get(2),
        created_at: r.get(3),
        expires_at: r.get(4),
        attempts: r.get(5),
        verified: r.get(6),
    }
}

/// Runs a statement through the connection's prepared-statement cache.
pub(crate) async fn exec(
    tx: &deadpool_postgres::Transaction<'_>,
    query: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = tx.prepare_cached(query).await.map_err(db_error)?;
    tx.execute(&statement, params).await.map_err(db_error)
}

/// Inserts or replaces a call.
pub(crate) async fn save_call(
    tx: &deadpool_postgres::Transaction<'_>,
    c: &CallRow,
) -> Result<(), StoreError> {
    exec(
        tx,
        sql::SAVE_CALL,
        &[
            &c.id,
            &c.admin_id,
            &c.participant_id,
            &c.state,
            &c.body,
            &c.updated_at,
            &c.random_id,
            &c.deadline,
        ],
    )
    .await?;
    Ok(())
}

/// The one row a cached statement returns.
pub(crate) async fn one_row(
    tx: &deadpool_postgres::Transaction<'_>,
    query: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Row, StoreError> {
    let statement = tx.prepare_cached(query).await.map_err(db_error)?;
    tx.query_one(&statement, params).await.map_err(db_error)
}
