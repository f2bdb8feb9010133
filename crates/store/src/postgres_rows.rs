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
        id: r.get("id"),
        phone: r.get("phone"),
        first_name: r.get("first_name"),
        last_name: r.get("last_name"),
        username: r.get("username"),
        bot: r.get("bot"),
        bot_secret: r.get("bot_secret"),
        created_at: r.get("created_at"),
    }
}

pub(crate) fn key_row(r: &Row) -> AuthKeyRow {
    let api_id: Option<i32> = r.get("api_id");
    AuthKeyRow {
        id: r.get("id"),
        key: r.get("key"),
        created_at: r.get("created_at"),
        first_salt: r.get("first_salt"),
        expires_at: r.get("expires_at"),
        perm_key_id: r.get("perm_key_id"),
        user_id: r.get("user_id"),
        layer: r.get("layer"),
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
        id: r.get("id"),
        admin_id: r.get("admin_id"),
        participant_id: r.get("participant_id"),
        state: r.get("state"),
        body: r.get("body"),
        updated_at: r.get("updated_at"),
        random_id: r.get("random_id"),
        deadline: r.get("deadline"),
    }
}

pub(crate) fn code_row(r: &Row) -> LoginCode {
    LoginCode {
        hash: r.get("phone_code_hash"),
        phone: r.get("phone"),
        code: r.get("code"),
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
        attempts: r.get("attempts"),
        verified: r.get("verified"),
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
