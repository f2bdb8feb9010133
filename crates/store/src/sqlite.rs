//! The SQLite backend: one database file, WAL journal, all statements on one dedicated thread
//! (SQLite serialises writers anyway). Calls run in the order they were made; the thread takes
//! every call waiting at that moment into one transaction (group commit) and answers each only
//! after that transaction committed — one WAL append (and, with `full` durability, one fsync)
//! for many calls under load, one per call when idle.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::write::{MAX_BATCH, Write, Written, gather};
use crate::{
    AuthKeyRow, CallRow, ClientInfo, CloudPassword, LoginCode, Store, StoreError, StoreFuture,
    UpdateRow, User, sql,
};

/// How hard a commit is pushed to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: a commit survives the process being killed; the last
    /// commits may be lost if the machine loses power.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is on disk before the call returns.
    Full,
}

pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_calls.sql"),
    include_str!("../migrations/sqlite/0003_cluster.sql"),
    include_str!("../migrations/sqlite/0004_allowlist.sql"),
    include_str!("../migrations/sqlite/0005_passwords.sql"),
    include_str!("../migrations/sqlite/0006_ended_calls.sql"),
    include_str!("../migrations/sqlite/0007_live_calls.sql"),
    include_str!("../migrations/sqlite/0008_calls_in_order.sql"),
];

/// A store call: runs on the connection and returns how to answer its caller once the
/// transaction it ran in has committed (or failed to).
type Job = Box<dyn FnOnce(&mut Connection) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A stored call from its row.
fn call_row(r: &Row<'_>) -> rusqlite::Result<CallRow> {
    Ok(CallRow {
        id: r.get("id")?,
        admin_id: r.get("admin_id")?,
        participant_id: r.get("participant_id")?,
        state: r.get("state")?,
        body: r.get("body")?,
        updated_at: r.get("updated_at")?,
        random_id: r.get("random_id")?,
        deadline: r.get("deadline")?,
    })
}

/// The database thread: runs jobs in arrival order, each waiting batch in one transaction.
fn serve_jobs(mut conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let batch = gather(first, MAX_BATCH, || jobs.try_recv().ok());
        let began = conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable);
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(&mut conn)).collect();
        let failed = match began {
            Err(e) => Some(e),
            Ok(()) => conn.execute_batch("COMMIT").map_err(unavailable).err(),
        };
        if failed.is_some() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(failed.as_ref());
        }
    }
}

/// The SQLite store. Cheap to clone; all clones share one database thread.
#[derive(Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
    {
        for what in ["phone", "username"] {
            if msg.contains(&format!("users.{what}")) {
                return StoreError::Conflict(what);
            }
        }
    }
    StoreError::Unavailable(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(unavailable)?;
        let sync = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;"
        ))
        .map_err(unavailable)?;
        migrate(&mut conn)?;
        conn.set_prepared_statement_cache_capacity(128);
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("mtcall-sqlite".into())
            .spawn(move || serve_jobs(conn, rx))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(SqliteStore { jobs })
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Box::new(move |conn| {
            let result = f(conn);
            Box::new(move |commit: Option<&StoreError>| {
                let _ = tx.send(match commit {
                    Some(e) => Err(e.clone()),
                    None => result,
                });
            })
        }));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Unavailable("the database thread has stopped".into()))?;
            rx.await
                .map_err(|_| StoreError::Unavailable("the database thread has stopped".into()))?
        })
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    let version = usize::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("schema version {version}")))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}; this mtcall knows up to {}",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(unavailable)?;
        tx.execute_batch(sql).map_err(unavailable)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
    }
    Ok(())
}

fn key_row(r: &Row) -> rusqlite::Result<AuthKeyRow> {
    let api_id: Option<i32> = r.get("api_id")?;
    let client = match api_id {
        Some(api_id) => Some(ClientInfo {
            api_id,
            device_model: r
                .get::<_, Option<String>>("device_model")?
                .unwrap_or_default(),
            system_version: r
                .get::<_, Option<String>>("system_version")?
                .unwrap_or_default(),
            app_version: r
                .get::<_, Option<String>>("app_version")?
                .unwrap_or_default(),
            lang_code: r.get::<_, Option<String>>("lang_code")?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(AuthKeyRow {
        id: r.get("id")?,
        key: r.get("key")?,
        created_at: r.get("created_at")?,
        first_salt: r.get("first_salt")?,
        expires_at: r.get("expires_at")?,
        perm_key_id: r.get("perm_key_id")?,
        user_id: r.get("user_id")?,
        layer: r.get("layer")?,
        client,
    })
}

fn user_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get("id")?,
        phone: r.get("phone")?,
        first_name: r.get("first_name")?,
        last_name: r.get("last_name")?,
        username: r.get("username")?,
        bot: r.get("bot")?,
        bot_secret: r.get("bot_secret")?,
        created_at: r.get("created_at")?,
    })
}

fn code_row(r: &Row) -> rusqlite::Result<LoginCode> {
    Ok(LoginCode {
        hash: r.get("phone_code_hash")?,
        phone: r.get("phone")?,
        code: r.get("code")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        attempts: r.get("attempts")?,
        verified: r.get("verified")?,
    })
}

/// Statements through the connection's prepared-statement cache: each SQL text is parsed once
/// per connection, not on every call (parsing was a tenth of the server's time in `mtcall
/// bench setup`).
trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P: rusqlite::Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

fn user_where(
    conn: &Connection,
    query: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<Option<User>, StoreError> {
    conn.row(query, [value], user_row)
        .optional()
        .map_err(unavailable)
}

/// Applies one write on the database thread, inside the batch's transaction. A statement that
/// fails (a taken username) is undone alone; the other writes of the batch stand.
fn apply(c: &mut Connection, write: Write) -> Result<Written, StoreError> {
    match write {
        Write::InsertAuthKey(row) => {
            c.exec(
                sql::INSERT_AUTH_KEY,
                params![
                    row.id,
                    row.key,
                    row.created_at,
                    row.first_salt,
                    row.expires_at
                ],
            )
            .map_err(unavailable)?;
        }
        Write::SetKeyClient(id, layer, client) => {
            // A savepoint: both columns change, or neither.
            let tx = c.savepoint().map_err(unavailable)?;
            if let Some(layer) = layer {
                tx.exec(sql::SET_KEY_LAYER, params![layer, id])
                    .map_err(unavailable)?;
            }
            if let Some(i) = client {
                tx.exec(
                    sql::SET_KEY_CLIENT,
                    params![
                        i.api_id,
                        i.device_model,
                        i.system_version,
                        i.app_version,
                        i.lang_code,
                        id
                    ],
                )
                .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)?;
        }
        Write::SetKeyUser(id, user_id) => {
            c.exec(sql::SET_KEY_USER, params![user_id, id])
                .map_err(unavailable)?;
        }
        Write::BindTempKey {
            temp,
            perm,
            expires_at,
        } => {
            c.exec(sql::BIND_TEMP_KEY, params![perm, expires_at, temp])
                .map_err(unavailable)?;
        }
        Write::DeleteAuthKey(id) => {
            c.exec(sql::DELETE_AUTH_KEY, [id]).map_err(unavailable)?;
        }
        Write::CreateUser(user, now) => {
            let id: i64 = c
                .row(
                    sql::INSERT_USER,
                    params![
                        user.phone,
                        user.first_name,
                        user.last_name,
                        user.username,
                        user.bot_secret.is_some(),
                        user.bot_secret,
                        now
                    ],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            let created = user_where(c, sql::USER_BY_ID, &id)?
                .ok_or_else(|| StoreError::Corrupt("inserted user not found".into()))?;
            return Ok(Written::User(Box::new(created)));
        }
        Write::SetUsername(user_id, username) => {
            c.exec(sql::SET_USERNAME, params![username, user_id])
                .map_err(unavailable)?;
        }
        Write::SaveLoginCode(code) => {
            c.exec(
                sql::INSERT_LOGIN_CODE,
                params![
                    code.hash,
                    code.phone,
                    code.code,
                    code.created_at,
                    code.expires_at,
                    code.attempts,
                    code.verified
                ],
            )
            .map_err(unavailable)?;
        }
        Write::UpdateLoginCode(hash, attempts, verified) => {
            c.exec(sql::UPDATE_LOGIN_CODE, params![attempts, verified, hash])
                .map_err(unavailable)?;
        }
        Write::DeleteLoginCode(hash) => {
            c.exec(sql::DELETE_LOGIN_CODE, [hash])
                .map_err(unavailable)?;
        }
        Write::AllowPhone(phone, now) => {
            c.exec(sql::ALLOW_PHONE, params![phone, now])
                .map_err(unavailable)?;
        }
        Write::DisallowPhone(phone) => {
            c.exec(sql::DISALLOW_PHONE, [phone]).map_err(unavailable)?;
        }
        Write::SetPassword(user, p) => {
            c.exec(
                sql::SET_PASSWORD,
                params![user, p.salt1, p.salt2, p.verifier, p.hint, p.set_at],
            )
            .map_err(unavailable)?;
        }
        Write::ClearPassword(user) => {
            c.exec(sql::CLEAR_PASSWORD, [user]).map_err(unavailable)?;
        }
        Write::AddContact(owner, user, first, last) => {
            c.exec(sql::UPSERT_CONTACT, params![owner, user, first, last])
                .map_err(unavailable)?;
        }
        Write::AppendUpdate(user_id, pts_count, date, body) => {
            // A savepoint: the two rows go in together inside the batch's transaction.
            let tx = c.savepoint().map_err(unavailable)?;
            let pts: i32 = tx
                .row(sql::BUMP_PTS, params![user_id, pts_count], |r| r.get(0))
                .map_err(unavailable)?;
            let body = body(pts);
            tx.exec(
                sql::INSERT_UPDATE,
                params![user_id, pts, pts_count, date, body],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            return Ok(Written::Update(pts, body));
        }
        Write::SaveCall(call) => {
            c.exec(
                sql::SAVE_CALL,
                params![
                    call.id,
                    call.admin_id,
                    call.participant_id,
                    call.state,
                    call.body,
                    call.updated_at,
                    call.random_id,
                    call.deadline
                ],
            )
            .map_err(unavailable)?;
        }
    }
    Ok(Written::Nothing)
}

/// SQLite's own statements (see `sql.rs` for the shared ones).
const USER_BY_USERNAME: &str = "SELECT id, phone, first_name, last_name, username, bot, bot_secret, created_at FROM users WHERE username = $1";
const LATEST_LOGIN_CODE: &str = "SELECT phone_code_hash, phone, code, created_at, expires_at, attempts, verified FROM login_codes WHERE phone = $1 ORDER BY created_at DESC, rowid DESC LIMIT 1";

impl Store for SqliteStore {
    fn submit(&self, write: Write) -> StoreFuture<'_, Written> {
        self.run(move |c| apply(c, write))
    }

    fn auth_key(&self, id: i64) -> StoreFuture<'_, Option<AuthKeyRow>> {
        self.run(move |c| {
            c.row(sql::AUTH_KEY, [id], key_row)
                .optional()
                .map_err(unavailable)
        })
    }

    fn user(&self, id: i64) -> StoreFuture<'_, Option<User>> {
        self.run(move |c| user_where(c, sql::USER_BY_ID, &id))
    }

    fn user_by_phone(&self, phone: &str) -> StoreFuture<'_, Option<User>> {
        let phone = phone.to_owned();
        self.run(move |c| user_where(c, sql::USER_BY_PHONE, &phone))
    }

    fn user_by_username(&self, username: &str) -> StoreFuture<'_, Option<User>> {
        let username = username.to_owned();
        // The column is COLLATE NOCASE.
        self.run(move |c| user_where(c, USER_BY_USERNAME, &username))
    }

    fn users(&self) -> StoreFuture<'_, Vec<User>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::USERS).map_err(unavailable)?;
            let rows = stmt.query_map([], user_row).map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    fn login_code(&self, hash: &str) -> StoreFuture<'_, Option<LoginCode>> {
        let hash = hash.to_owned();
        self.run(move |c| {
            c.row(sql::LOGIN_CODE, [hash], code_row)
                .optional()
                .map_err(unavailable)
        })
    }

    fn latest_login_code(&self, phone: &str) -> StoreFuture<'_, Option<LoginCode>> {
        let phone = phone.to_owned();
        self.run(move |c| {
            c.row(LATEST_LOGIN_CODE, [phone], code_row)
                .optional()
                .map_err(unavailable)
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        self.run(move |c| c.row("SELECT 1", [], |_| Ok(())).map_err(unavailable))
    }

    fn phone_allowed(&self, phone: &str) -> StoreFuture<'_, bool> {
        let phone = phone.to_owned();
        self.run(move |c| {
            c.row(sql::PHONE_ALLOWED, [phone], |_| Ok(()))
                .optional()
                .map(|r| r.is_some())
                .map_err(unavailable)
        })
    }

    fn password(&self, user: i64) -> StoreFuture<'_, Option<CloudPassword>> {
        self.run(move |c| {
            c.row(sql::PASSWORD_OF, [user], |r| {
                Ok(CloudPassword {
                    salt1: r.get(0)?,
                    salt2: r.get(1)?,
                    verifier: r.get(2)?,
                    hint: r.get(3)?,
                    set_at: r.get(4)?,
                })
            })
            .optional()
            .map_err(unavailable)
        })
    }

    fn allowed_phones(&self) -> StoreFuture<'_, Vec<String>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::ALLOWED_PHONES).map_err(unavailable)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    fn is_contact(&self, owner: i64, user: i64) -> StoreFuture<'_, bool> {
        self.run(move |c| {
            c.row(sql::IS_CONTACT, [owner, user], |_| Ok(()))
                .optional()
                .map(|r| r.is_some())
                .map_err(unavailable)
        })
    }

    fn contacts_of(&self, owner: i64) -> StoreFuture<'_, Vec<i64>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::CONTACTS_OF).map_err(unavailable)?;
            let rows = stmt.query_map([owner], |r| r.get(0)).map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    fn load_calls(&self, recent: u32) -> StoreFuture<'_, Vec<CallRow>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::LOAD_CALLS).map_err(unavailable)?;
            let rows = stmt.query_map([recent], call_row).map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    fn call(&self, id: i64) -> StoreFuture<'_, Option<CallRow>> {
        self.run(move |c| {
            c.row(sql::CALL_BY_ID, [id], call_row)
                .optional()
                .map_err(unavailable)
        })
    }

    fn call_by_random(&self, admin_id: i64, random_id: i32) -> StoreFuture<'_, Option<CallRow>> {
        self.run(move |c| {
            c.row(sql::CALL_BY_RANDOM, params![admin_id, random_id], call_row)
                .optional()
                .map_err(unavailable)
        })
    }

    fn forget_calls_before(&self, before: i64) -> StoreFuture<'_, u64> {
        self.run(move |c| {
            c.exec(sql::FORGET_CALLS, [before])
                .map(|n| n as u64)
                .map_err(unavailable)
        })
    }

    fn pts(&self, user_id: i64) -> StoreFuture<'_, i32> {
        self.run(move |c| {
            c.row(sql::PTS, [user_id], |r| r.get(0))
                .optional()
                .map(|p| p.unwrap_or(0))
                .map_err(unavailable)
        })
    }

    fn updates_after(
        &self,
        user_id: i64,
        after: i32,
        limit: u32,
    ) -> StoreFuture<'_, Vec<UpdateRow>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::UPDATES_AFTER).map_err(unavailable)?;
            let rows = stmt
                .query_map(params![user_id, after, limit], |r| {
                    Ok(UpdateRow {
                        pts: r.get("pts")?,
                        pts_count: r.get("pts_count")?,
                        date: r.get("date")?,
                        body: r.get("body")?,
                    })
                })
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }
}
