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
    tx: &deadpool_postgres::ClientWrapper,
    query: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = tx.prepare_cached(query).await.map_err(db_error)?;
    tx.execute(&statement, params).await.map_err(db_error)
}

/// Calls that began or ended (ids, admins, participants, whether live), added to
/// or removed from both parties' `users.live_calls`.
pub(crate) const SET_LIVE_CALLS: &str = "WITH changed AS (
        SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::boolean[]) AS t(id, admin_id, participant_id, live)),
     per_user AS (
        SELECT p.user_id, array_agg(c.id) AS touched, array_agg(c.id) FILTER (WHERE c.live) AS added
        FROM changed c CROSS JOIN LATERAL (VALUES (c.admin_id), (c.participant_id)) AS p(user_id)
        GROUP BY p.user_id)
     UPDATE users SET live_calls = ARRAY(
        SELECT x FROM unnest(users.live_calls) AS x WHERE x <> ALL(per_user.touched)
        UNION ALL SELECT unnest(per_user.added))
     FROM per_user WHERE users.id = per_user.user_id";

/// Whether a call has not ended.
pub(crate) fn is_live(c: &CallRow) -> bool {
    c.state != sql::ENDED_STATE
}

/// Inserts or replaces a call, and keeps its parties' lists of live calls.
pub(crate) async fn save_call(
    tx: &deadpool_postgres::ClientWrapper,
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
    exec(
        tx,
        SET_LIVE_CALLS,
        &[
            &vec![c.id],
            &vec![c.admin_id],
            &vec![c.participant_id],
            &vec![is_live(c)],
        ],
    )
    .await?;
    Ok(())
}

/// The one row a cached statement returns.
pub(crate) async fn one_row(
    tx: &deadpool_postgres::ClientWrapper,
    query: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Row, StoreError> {
    let statement = tx.prepare_cached(query).await.map_err(db_error)?;
    tx.query_one(&statement, params).await.map_err(db_error)
}
