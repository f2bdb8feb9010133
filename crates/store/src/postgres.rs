//! The PostgreSQL backend (`--database postgres://…`; `docs/design.md`, "Storage and
//! scale"): several mtcall nodes can share one database.
//!
//! Reads go through a connection pool. Writes go to one writer task per node, which runs them
//! in the order they were queued (the [`Store`] contract) and puts every write waiting at that
//! moment into one transaction — each in its own savepoint, so one failing write (a taken
//! username) fails alone — and answers each only after the commit (group commit). When the
//! database cannot be reached, calls fail with [`StoreError::Unavailable`] within the pool's
//! timeouts instead of hanging; nothing is answered as done unless it committed.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Pool, Runtime, Timeouts};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{NoTls, Row};

use crate::postgres_pipeline::Pipeline;
use crate::postgres_publish::{Publish, publish_loop};
use crate::postgres_rows::{
    call_row, code_row, db_error, exec, key_row, one_row, save_call, unavailable, user_row,
};
use crate::postgres_transitions::{CONCURRENT, Counted, Transition, transition_loop};
use crate::write::{MAX_BATCH, Write, Written, gather};
use crate::{
    AuthKeyRow, CallRow, CloudPassword, LoginCode, Store, StoreError, StoreFuture, UpdateRow, User,
    sql,
};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_calls.sql"),
    include_str!("../migrations/postgres/0003_cluster.sql"),
    include_str!("../migrations/postgres/0004_live_calls.sql"),
    include_str!("../migrations/postgres/0005_presence.sql"),
    include_str!("../migrations/postgres/0006_push_seq.sql"),
    include_str!("../migrations/postgres/0007_allowlist.sql"),
    include_str!("../migrations/postgres/0008_passwords.sql"),
];

/// PostgreSQL's own statements (see `sql.rs` for the shared ones).
const USER_BY_USERNAME: &str = "SELECT id, phone, first_name, last_name, username, bot, bot_secret, created_at FROM users WHERE lower(username) = lower($1)";
const PING: &str = "SELECT 1";
const LATEST_LOGIN_CODE: &str = "SELECT phone_code_hash, phone, code, created_at, expires_at, attempts, verified FROM login_codes WHERE phone = $1 ORDER BY created_at DESC, seq DESC LIMIT 1";

/// A write queued for the writer, and where its answer goes.
struct Queued {
    write: Write,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

/// The PostgreSQL store. Cheap to clone; clones share the pool and the writer.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: Pool,
    /// Call transitions waiting for a transaction of the transition loop, which has a pool of
    /// its own: a transaction holds its connection while its steps render, and rendering may
    /// read users through `pool`; were both one pool, transactions waiting for a connection
    /// could hold every one of them.
    pub(crate) transition_queue: mpsc::UnboundedSender<Transition>,
    /// How the transition loop has grouped transitions.
    pub(crate) transitions_counted: Arc<Counted>,
    writes: mpsc::UnboundedSender<Queued>,
    /// Where the database is, for the listening connection (not pooled).
    pub(crate) url: String,
    /// The node's push publisher (`postgres_publish.rs`).
    pub(crate) publishes: mpsc::UnboundedSender<Publish>,
}

/// Connections a node keeps for everything but call transitions, at most.
const POOL_SIZE: usize = 16;

/// A pool of at most `size` connections to `url`.
fn connection_pool(url: &str, size: usize) -> Result<Pool, StoreError> {
    let mut config = deadpool_postgres::Config::new();
    config.url = Some(url.to_owned());
    config.pool = Some(deadpool_postgres::PoolConfig {
        max_size: size,
        timeouts: Timeouts {
            wait: Some(Duration::from_secs(10)),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        },
        ..Default::default()
    });
    config
        .create_pool(Some(Runtime::Tokio1), NoTls)
        .map_err(unavailable)
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`), brings its schema
    /// up to date (one node at a time, under an advisory lock) and starts the writer.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let pool = connection_pool(url, POOL_SIZE)?;
        let transitions = connection_pool(url, CONCURRENT)?;
        migrate(&pool).await?;
        let (writes, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(pool.clone(), queue));
        let (publishes, queue) = mpsc::unbounded_channel();
        tokio::spawn(publish_loop(pool.clone(), queue));
        let (transition_queue, queue) = mpsc::unbounded_channel();
        let transitions_counted = Arc::new(Counted::default());
        tokio::spawn(transition_loop(
            transitions,
            queue,
            transitions_counted.clone(),
        ));
        Ok(PgStore {
            pool,
            transition_queue,
            transitions_counted,
            writes,
            url: url.to_owned(),
            publishes,
        })
    }

    fn write(&self, write: Write) -> StoreFuture<'static, Written> {
        let (reply, done) = oneshot::channel();
        let sent = self.writes.send(Queued { write, reply });
        Box::pin(async move {
            sent.map_err(|_| unavailable("the database writer has stopped"))?;
            done.await
                .map_err(|_| unavailable("the database writer has stopped"))?
        })
    }

    pub(crate) async fn query_opt<T>(
        &self,
        query: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        map: impl FnOnce(&Row) -> T,
    ) -> Result<Option<T>, StoreError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let statement = client.prepare_cached(query).await.map_err(db_error)?;
        let row = client
            .query_opt(&statement, params)
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(map))
    }

    pub(crate) async fn query_all<T>(
        &self,
        query: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        map: impl Fn(&Row) -> T,
    ) -> Result<Vec<T>, StoreError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let statement = client.prepare_cached(query).await.map_err(db_error)?;
        let rows = client.query(&statement, params).await.map_err(db_error)?;
        Ok(rows.iter().map(map).collect())
    }
}

/// Creates an empty database named `mtcall_test_<n>` on the server at `url` and returns its
/// URL: a clean slate for each test (the test command starts a private server).
pub async fn fresh_test_database(url: &str) -> Result<String, StoreError> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(unavailable)?;
    let driver = tokio::spawn(connection);
    let name = format!(
        "mtcall_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(db_error)?;
    drop(client);
    let _ = driver.await;
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(unavailable)?;
    let tx = client.transaction().await.map_err(db_error)?;
    // Nodes starting together migrate one after the other.
    tx.execute("SELECT pg_advisory_xact_lock(7099353245412566)", &[])
        .await
        .map_err(db_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS mtcall_schema (version INTEGER NOT NULL)")
        .await
        .map_err(db_error)?;
    let version: i32 = tx
        .query_opt("SELECT version FROM mtcall_schema", &[])
        .await
        .map_err(db_error)?
        .map_or(0, |r| r.get(0));
    let version = usize::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("schema version {version}")))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}; this mtcall knows {}",
            MIGRATIONS.len()
        )));
    }
    for sql in &MIGRATIONS[version..] {
        tx.batch_execute(sql).await.map_err(db_error)?;
    }
    tx.execute("DELETE FROM mtcall_schema", &[])
        .await
        .map_err(db_error)?;
    tx.execute(
        "INSERT INTO mtcall_schema (version) VALUES ($1)",
        &[&(MIGRATIONS.len() as i32)],
    )
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}

/// The writer: batches of queued writes, each batch one transaction, answered after commit.
async fn write_loop(pool: Pool, mut queue: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = queue.recv().await {
        let batch = gather(first, MAX_BATCH, || queue.try_recv().ok());
        let (replies, results, committed) = run_batch(&pool, batch).await;
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(match &committed {
                Ok(()) => result,
                Err(e) => Err(e.clone()),
            });
        }
    }
}

type Replies = Vec<oneshot::Sender<Result<Written, StoreError>>>;

/// One batch in one transaction, each write in its own savepoint. The statements that end one
/// write's savepoint and open the next go to the database as one message (and the first with
/// `BEGIN`, the last with `COMMIT`), so a batch of `k` writes costs `k + 1` round trips besides
/// the writes' own statements.
async fn run_batch(
    pool: &Pool,
    batch: Vec<Queued>,
) -> (
    Replies,
    Vec<Result<Written, StoreError>>,
    Result<(), StoreError>,
) {
    let mut replies = Vec::with_capacity(batch.len());
    let mut ops = Vec::with_capacity(batch.len());
    for q in batch {
        replies.push(q.reply);
        ops.push(q.write);
    }
    let mut results = Vec::with_capacity(ops.len());
    let pipeline = match Pipeline::connect(pool).await {
        Ok(p) => p,
        Err(e) => {
            results.resize_with(ops.len(), || Err(e.clone()));
            return (replies, results, Err(e));
        }
    };
    let client = pipeline.client();
    if let Err(e) = client.batch_execute("BEGIN; SAVEPOINT w").await {
        // Dropping the pipeline closes the connection, ending whatever was begun.
        let e = db_error(e);
        results.resize_with(ops.len(), || Err(e.clone()));
        return (replies, results, Err(e));
    }
    let count = ops.len();
    for (i, op) in ops.into_iter().enumerate() {
        let result = apply(client, op).await;
        let next = match (result.is_ok(), i + 1 == count) {
            (true, false) => "RELEASE w; SAVEPOINT w",
            (true, true) => "RELEASE w; COMMIT",
            (false, false) => "ROLLBACK TO w; RELEASE w; SAVEPOINT w",
            (false, true) => "ROLLBACK TO w; RELEASE w; COMMIT",
        };
        results.push(result);
        if let Err(e) = client.batch_execute(next).await {
            let e = db_error(e);
            results.resize_with(count, || Err(e.clone()));
            return (replies, results, Err(e));
        }
    }
    pipeline.finish();
    (replies, results, Ok(()))
}

/// Applies one write inside the batch's transaction (in its own savepoint).
async fn apply(tx: &deadpool_postgres::ClientWrapper, write: Write) -> Result<Written, StoreError> {
    match write {
        Write::InsertAuthKey(r) => {
            exec(
                tx,
                sql::INSERT_AUTH_KEY,
                &[&r.id, &r.key, &r.created_at, &r.first_salt, &r.expires_at],
            )
            .await?;
        }
        Write::SetKeyClient(id, layer, client) => {
            if let Some(layer) = layer {
                exec(tx, sql::SET_KEY_LAYER, &[&layer, &id]).await?;
            }
            if let Some(i) = client {
                exec(
                    tx,
                    sql::SET_KEY_CLIENT,
                    &[
                        &i.api_id,
                        &i.device_model,
                        &i.system_version,
                        &i.app_version,
                        &i.lang_code,
                        &id,
                    ],
                )
                .await?;
            }
        }
        Write::SetKeyUser(id, user) => {
            exec(tx, sql::SET_KEY_USER, &[&user, &id]).await?;
        }
        Write::BindTempKey {
            temp,
            perm,
            expires_at,
        } => {
            exec(tx, sql::BIND_TEMP_KEY, &[&perm, &expires_at, &temp]).await?;
        }
        Write::DeleteAuthKey(id) => {
            exec(tx, sql::DELETE_AUTH_KEY, &[&id]).await?;
        }
        Write::CreateUser(u, now) => {
            let bot = u.bot_secret.is_some();
            let row = one_row(
                tx,
                sql::INSERT_USER,
                &[
                    &u.phone,
                    &u.first_name,
                    &u.last_name,
                    &u.username,
                    &bot,
                    &u.bot_secret,
                    &now,
                ],
            )
            .await?;
            let id: i64 = row.get(0);
            let row = one_row(tx, sql::USER_BY_ID, &[&id]).await?;
            return Ok(Written::User(Box::new(user_row(&row))));
        }
        Write::SetUsername(id, username) => {
            exec(tx, sql::SET_USERNAME, &[&username, &id]).await?;
        }
        Write::SaveLoginCode(c) => {
            exec(
                tx,
                sql::INSERT_LOGIN_CODE,
                &[
                    &c.hash,
                    &c.phone,
                    &c.code,
                    &c.created_at,
                    &c.expires_at,
                    &c.attempts,
                    &c.verified,
                ],
            )
            .await?;
        }
        Write::UpdateLoginCode(hash, attempts, verified) => {
            exec(tx, sql::UPDATE_LOGIN_CODE, &[&attempts, &verified, &hash]).await?;
        }
        Write::DeleteLoginCode(hash) => {
            exec(tx, sql::DELETE_LOGIN_CODE, &[&hash]).await?;
        }
        Write::AllowPhone(phone, now) => {
            exec(tx, sql::ALLOW_PHONE, &[&phone, &now]).await?;
        }
        Write::DisallowPhone(phone) => {
            exec(tx, sql::DISALLOW_PHONE, &[&phone]).await?;
        }
        Write::SetPassword(user, p) => {
            exec(
                tx,
                sql::SET_PASSWORD,
                &[&user, &p.salt1, &p.salt2, &p.verifier, &p.hint, &p.set_at],
            )
            .await?;
        }
        Write::ClearPassword(user) => {
            exec(tx, sql::CLEAR_PASSWORD, &[&user]).await?;
        }
        Write::AddContact(owner, user, first, last) => {
            exec(tx, sql::UPSERT_CONTACT, &[&owner, &user, &first, &last]).await?;
        }
        Write::AppendUpdate(user, pts_count, date, body) => {
            let pts: i32 = one_row(tx, sql::BUMP_PTS, &[&user, &pts_count])
                .await?
                .get(0);
            let body = body(pts);
            exec(
                tx,
                sql::INSERT_UPDATE,
                &[&user, &pts, &pts_count, &date, &body],
            )
            .await?;
            return Ok(Written::Update(pts, body));
        }
        Write::SaveCall(c) => save_call(tx, &c).await?,
    }
    Ok(Written::Nothing)
}

impl Store for PgStore {
    fn submit(&self, write: Write) -> StoreFuture<'_, Written> {
        self.write(write)
    }

    fn auth_key(&self, id: i64) -> StoreFuture<'_, Option<AuthKeyRow>> {
        Box::pin(async move { self.query_opt(sql::AUTH_KEY, &[&id], key_row).await })
    }

    fn user(&self, id: i64) -> StoreFuture<'_, Option<User>> {
        Box::pin(async move { self.query_opt(sql::USER_BY_ID, &[&id], user_row).await })
    }

    fn user_by_phone(&self, phone: &str) -> StoreFuture<'_, Option<User>> {
        let phone = phone.to_owned();
        Box::pin(async move {
            self.query_opt(sql::USER_BY_PHONE, &[&phone], user_row)
                .await
        })
    }

    fn user_by_username(&self, username: &str) -> StoreFuture<'_, Option<User>> {
        let username = username.to_owned();
        Box::pin(async move {
            self.query_opt(USER_BY_USERNAME, &[&username], user_row)
                .await
        })
    }

    fn users(&self) -> StoreFuture<'_, Vec<User>> {
        Box::pin(async move { self.query_all(sql::USERS, &[], user_row).await })
    }

    fn login_code(&self, hash: &str) -> StoreFuture<'_, Option<LoginCode>> {
        let hash = hash.to_owned();
        Box::pin(async move { self.query_opt(sql::LOGIN_CODE, &[&hash], code_row).await })
    }

    fn latest_login_code(&self, phone: &str) -> StoreFuture<'_, Option<LoginCode>> {
        let phone = phone.to_owned();
        Box::pin(async move { self.query_opt(LATEST_LOGIN_CODE, &[&phone], code_row).await })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.query_opt(PING, &[], |_| ()).await.map(drop) })
    }

    fn phone_allowed(&self, phone: &str) -> StoreFuture<'_, bool> {
        let phone = phone.to_owned();
        Box::pin(async move {
            Ok(self
                .query_opt(sql::PHONE_ALLOWED, &[&phone], |_| ())
                .await?
                .is_some())
        })
    }

    fn password(&self, user: i64) -> StoreFuture<'_, Option<CloudPassword>> {
        Box::pin(async move {
            self.query_opt(sql::PASSWORD_OF, &[&user], |r| CloudPassword {
                salt1: r.get(0),
                salt2: r.get(1),
                verifier: r.get(2),
                hint: r.get(3),
                set_at: r.get(4),
            })
            .await
        })
    }

    fn allowed_phones(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move { self.query_all(sql::ALLOWED_PHONES, &[], |r| r.get(0)).await })
    }

    fn is_contact(&self, owner: i64, user: i64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            Ok(self
                .query_opt(sql::IS_CONTACT, &[&owner, &user], |_| ())
                .await?
                .is_some())
        })
    }

    fn contacts_of(&self, owner: i64) -> StoreFuture<'_, Vec<i64>> {
        Box::pin(async move {
            self.query_all(sql::CONTACTS_OF, &[&owner], |r| r.get(0))
                .await
        })
    }

    fn pts(&self, user_id: i64) -> StoreFuture<'_, i32> {
        Box::pin(async move {
            Ok(self
                .query_opt(sql::PTS, &[&user_id], |r| r.get::<_, i32>(0))
                .await?
                .unwrap_or(0))
        })
    }

    fn updates_after(
        &self,
        user_id: i64,
        after: i32,
        limit: u32,
    ) -> StoreFuture<'_, Vec<UpdateRow>> {
        let limit = i64::from(limit);
        Box::pin(async move {
            self.query_all(sql::UPDATES_AFTER, &[&user_id, &after, &limit], |r| {
                UpdateRow {
                    pts: r.get("pts"),
                    pts_count: r.get("pts_count"),
                    date: r.get("date"),
                    body: r.get("body"),
                }
            })
            .await
        })
    }

    fn load_calls(&self, recent: u32) -> StoreFuture<'_, Vec<CallRow>> {
        let recent = i64::from(recent);
        Box::pin(async move { self.query_all(sql::LOAD_CALLS, &[&recent], call_row).await })
    }

    fn call(&self, id: i64) -> StoreFuture<'_, Option<CallRow>> {
        Box::pin(async move { self.query_opt(sql::CALL_BY_ID, &[&id], call_row).await })
    }

    fn call_by_random(&self, admin_id: i64, random_id: i32) -> StoreFuture<'_, Option<CallRow>> {
        Box::pin(async move {
            self.query_opt(sql::CALL_BY_RANDOM, &[&admin_id, &random_id], call_row)
                .await
        })
    }

    fn forget_calls_before(&self, before: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            client
                .execute(sql::FORGET_CALLS, &[&before])
                .await
                .map_err(db_error)
        })
    }
}
