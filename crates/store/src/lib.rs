//! mtcall's storage (`docs/design.md`, "Storage and scale"): the [`Store`] trait the
//! server calls, and [`SqliteStore`], the embedded default (one SQLite file, WAL).
//!
//! The trait is object-safe (`Arc<dyn Store>`) and asynchronous, so a PostgreSQL backend can
//! implement it without changing callers. Every mutating call has committed when its future
//! completes: the server answers a client only after that. Calls take effect in the order
//! their futures were created, even if awaited later or together (the server relies on it to
//! store call transitions in registry order without holding the registry lock over a commit).
//!
//! Every change is a [`Write`] (`write.rs`): the trait's write methods are written once, as a
//! `Write` handed to [`Store::submit`], and each backend applies the same set of writes
//! through its batching writer.

mod model;
mod postgres;
mod postgres_cluster;
mod postgres_log;
mod postgres_pipeline;
mod postgres_publish;
mod postgres_rows;
mod postgres_transitions;
mod sql;
mod sqlite;
mod sqlite_backup;
mod write;

pub use model::{
    AuthKeyRow, CallRow, ClientInfo, CloudPassword, LoginCode, NewUpdate, NewUser, Presence,
    PushCursor, PushRow, StoredPush, UpdateRow, User,
};
pub use postgres::{PgStore, fresh_test_database};
pub use postgres_cluster::LISTENER_NAME;
pub use sqlite::{Durability, SqliteStore};
pub use sqlite_backup::{BackupSummary, backup_sqlite, check_sqlite_backup, restore_sqlite};
pub use write::{Write, Written};

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// Why a store call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// A uniqueness rule was violated; names what (`"phone"`, `"username"`).
    Conflict(&'static str),
    /// The database cannot be reached or refused the operation; retrying later may work.
    Unavailable(String),
    /// Stored data is not what this version wrote (e.g. a key of the wrong size).
    Corrupt(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conflict(what) => write!(f, "{what} already taken"),
            Self::Unavailable(e) => write!(f, "database unavailable: {e}"),
            Self::Corrupt(e) => write!(f, "stored data is invalid: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Builds an update's body from the pts it is given (a message's id is its pts).
pub type UpdateBody = Box<dyn FnOnce(i32) -> Vec<u8> + Send>;

/// The future every store call returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Everything the server persists. Every change is a [`Write`] handed to [`Store::submit`];
/// the write methods below are that, written once for both backends.
pub trait Store: Send + Sync + 'static {
    /// Queues `write` now (writes apply in the order they were submitted, and writes waiting
    /// together share one transaction) and answers once the transaction it ran in committed.
    fn submit(&self, write: Write) -> StoreFuture<'_, Written>;

    // ------------------------------------------------------------------ auth keys

    /// Saves a new auth key.
    fn insert_auth_key(&self, row: AuthKeyRow) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::InsertAuthKey(row)))
    }
    /// The auth key with this id.
    fn auth_key(&self, id: i64) -> StoreFuture<'_, Option<AuthKeyRow>>;
    /// Records the API layer and client details a key announced (`initConnection`).
    fn set_key_client(
        &self,
        id: i64,
        layer: Option<i32>,
        client: Option<ClientInfo>,
    ) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::SetKeyClient(id, layer, client)))
    }
    /// Logs the key in as `user_id`, or out with `None`.
    fn set_key_user(&self, id: i64, user_id: Option<i64>) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::SetKeyUser(id, user_id)))
    }
    /// Binds temporary key `temp_id` to permanent key `perm_id` until `expires_at`.
    fn bind_temp_key(&self, temp_id: i64, perm_id: i64, expires_at: i64) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::BindTempKey {
            temp: temp_id,
            perm: perm_id,
            expires_at,
        }))
    }
    /// Deletes a key.
    fn delete_auth_key(&self, id: i64) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::DeleteAuthKey(id)))
    }

    // ------------------------------------------------------------------ users

    /// Creates a user (or a bot); `Conflict("phone")`/`Conflict("username")` if taken.
    fn create_user(&self, user: NewUser, now: i64) -> StoreFuture<'_, User> {
        let written = self.submit(Write::CreateUser(user, now));
        Box::pin(async move {
            match written.await? {
                Written::User(u) => Ok(*u),
                _ => Err(StoreError::Corrupt("a new user was not returned".into())),
            }
        })
    }
    /// The user with this id.
    fn user(&self, id: i64) -> StoreFuture<'_, Option<User>>;
    /// The user with this phone (digits only).
    fn user_by_phone(&self, phone: &str) -> StoreFuture<'_, Option<User>>;
    /// The user with this username (case-insensitive).
    fn user_by_username(&self, username: &str) -> StoreFuture<'_, Option<User>>;
    /// Sets or clears a username; `Conflict("username")` if another user has it.
    fn set_username(&self, user_id: i64, username: Option<String>) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::SetUsername(user_id, username)))
    }
    /// Every user, in id order (admin listing).
    fn users(&self) -> StoreFuture<'_, Vec<User>>;

    // ------------------------------------------------------------------ login codes

    /// Saves a login code.
    fn save_login_code(&self, code: LoginCode) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::SaveLoginCode(code)))
    }
    /// The login code with this hash.
    fn login_code(&self, hash: &str) -> StoreFuture<'_, Option<LoginCode>>;
    /// The newest login code sent to a phone.
    fn latest_login_code(&self, phone: &str) -> StoreFuture<'_, Option<LoginCode>>;
    /// Records a failed attempt or a verification.
    fn update_login_code(&self, hash: &str, attempts: i32, verified: bool) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::UpdateLoginCode(hash.to_owned(), attempts, verified)))
    }
    /// Removes a login code once used.
    fn delete_login_code(&self, hash: &str) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::DeleteLoginCode(hash.to_owned())))
    }

    /// Answers once the database has run a trivial statement (readiness checks).
    fn ping(&self) -> StoreFuture<'_, ()>;

    // ------------------------------------------------------------------ sign-up allowlist

    /// Allows `phone` (digits only) to sign up when sign-up is by allowlist.
    fn allow_phone(&self, phone: &str, now: i64) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::AllowPhone(phone.to_owned(), now)))
    }
    /// Takes `phone` off the allowlist (an account it made stays).
    fn disallow_phone(&self, phone: &str) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::DisallowPhone(phone.to_owned())))
    }
    /// Whether `phone` is on the allowlist.
    fn phone_allowed(&self, phone: &str) -> StoreFuture<'_, bool>;
    /// The allowlist, in order.
    fn allowed_phones(&self) -> StoreFuture<'_, Vec<String>>;

    // ------------------------------------------------------------------ cloud passwords

    /// Sets (or replaces) `user`'s cloud password.
    fn set_password(&self, user: i64, password: CloudPassword) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::SetPassword(user, password)))
    }
    /// Removes `user`'s cloud password.
    fn clear_password(&self, user: i64) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::ClearPassword(user)))
    }
    /// `user`'s cloud password, if one is set.
    fn password(&self, user: i64) -> StoreFuture<'_, Option<CloudPassword>>;

    // ------------------------------------------------------------------ contacts

    /// Adds or renames a contact.
    fn add_contact(
        &self,
        owner: i64,
        user: i64,
        first_name: &str,
        last_name: &str,
    ) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::AddContact(
            owner,
            user,
            first_name.to_owned(),
            last_name.to_owned(),
        )))
    }
    /// Whether `user` is in `owner`'s contacts.
    fn is_contact(&self, owner: i64, user: i64) -> StoreFuture<'_, bool>;
    /// The user ids in `owner`'s contacts, ascending.
    fn contacts_of(&self, owner: i64) -> StoreFuture<'_, Vec<i64>>;

    // ------------------------------------------------------------------ updates

    /// Appends an update to a user's log; returns its pts (the previous pts + `pts_count`) and
    /// the body `body` built for that pts.
    fn append_update(
        &self,
        user_id: i64,
        pts_count: i32,
        date: i32,
        body: UpdateBody,
    ) -> StoreFuture<'_, (i32, Vec<u8>)> {
        let written = self.submit(Write::AppendUpdate(user_id, pts_count, date, body));
        Box::pin(async move {
            match written.await? {
                Written::Update(pts, body) => Ok((pts, body)),
                _ => Err(StoreError::Corrupt(
                    "an appended update was not returned".into(),
                )),
            }
        })
    }
    /// The user's current pts (0 for none).
    fn pts(&self, user_id: i64) -> StoreFuture<'_, i32>;
    /// Updates with pts above `after`, oldest first, at most `limit`.
    fn updates_after(
        &self,
        user_id: i64,
        after: i32,
        limit: u32,
    ) -> StoreFuture<'_, Vec<UpdateRow>>;

    // ------------------------------------------------------------------ calls

    /// Saves a call's current state (insert or replace).
    fn save_call(&self, call: CallRow) -> StoreFuture<'_, ()> {
        unit(self.submit(Write::SaveCall(call)))
    }
    /// Every live call and the `recent` most recently ended ones (newest first), to restore
    /// after a restart; ordered by id.
    fn load_calls(&self, recent: u32) -> StoreFuture<'_, Vec<CallRow>>;
    /// One stored call, live or ended. Like every store call it runs after the writes queued
    /// before it (the SQLite backend's one thread; PostgreSQL's writer has committed them
    /// before their futures resolve).
    fn call(&self, id: i64) -> StoreFuture<'_, Option<CallRow>>;
    /// The caller's stored call made with `random_id`, if any.
    fn call_by_random(&self, admin_id: i64, random_id: i32) -> StoreFuture<'_, Option<CallRow>>;
    /// Deletes ended calls last changed before `before` (Unix seconds); returns how many.
    fn forget_calls_before(&self, before: i64) -> StoreFuture<'_, u64>;
}

/// A write's answer when it gives back nothing.
fn unit(written: StoreFuture<'_, Written>) -> StoreFuture<'_, ()> {
    Box::pin(async move { written.await.map(|_| ()) })
}

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod sqlite_upgrade_tests;
#[cfg(test)]
mod tests;

/// Which calls a database call transition locks and loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallScope {
    /// `phone.requestCall`: both users' live calls, and the caller's earlier call with the same
    /// `random_id` (a repeat returns it).
    Request {
        /// The caller.
        caller: i64,
        /// The callee.
        callee: i64,
        /// The caller's `random_id`.
        random_id: i32,
    },
    /// An operation on one call: it, and its two users' live calls.
    Call(i64),
}

/// What a call transition changed, to write in its transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallChanges {
    /// Calls to insert or replace.
    pub save: Vec<CallRow>,
    /// Updates for the users' logs, numbered from the pts the transition was given.
    pub updates: Vec<NewUpdate>,
    /// Pushes to the users in scope (numbered by the store).
    pub pushes: Vec<PushRow>,
}

/// What a call transition is given: the calls in its scope and its users' pts, read under
/// their row locks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InScope {
    /// The users' live calls, the call itself and an earlier one with the same `random_id`.
    pub calls: Vec<CallRow>,
    /// Each locked user's pts.
    pub pts: Vec<(i64, i32)>,
}

/// What a call transition's step returns: its changes, or `None` to write nothing (rolled
/// back; the step keeps its own reason).
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Option<CallChanges>> + Send + 'a>>;

/// A call transition: given what is in scope, decides what changes (it runs the sans-IO call
/// registry and renders what the change tells its users; the row locks are held meanwhile).
pub type CallStep<'a> = Box<dyn FnOnce(InScope) -> StepFuture<'a> + Send + 'a>;

/// How one node's call transitions shared database transactions, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransitionGroups {
    /// Transactions that carried call transitions.
    pub groups: u64,
    /// Call transitions given their scope in those transactions.
    pub transitions: u64,
    /// Times a transition was held back for a later transaction (it shared a user with an
    /// earlier one in its group).
    pub held_back: u64,
}

/// What a node's listener hears from the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wake {
    /// New pushes for `user_id` are in the log, the newest of them at `seq`.
    Pushes {
        /// Whose.
        user_id: i64,
        /// The newest one's sequence number.
        seq: i64,
    },
    /// A new push, carried whole.
    Push(StoredPush),
    /// This user's profile changed (drop cached copies).
    UserChanged(i64),
    /// The listener reconnected: notifications may have been missed, catch up from the log.
    Reconnected,
}

/// What several nodes sharing one database need beyond [`Store`] (PostgreSQL): call
/// transitions serialised in the database, call timers any node can run once, and a push log
/// with wake-ups so updates reach sessions on every node.
pub trait Cluster: Send + Sync + 'static {
    /// Runs `step` on the calls of `scope` in a transaction that holds both users' row locks
    /// (so a busy check and the new call are one step across all nodes), and writes its changes
    /// — calls, history and pushes — in that transaction. The transaction may be shared with
    /// other transitions on other users; `step` is given only what it would have read alone.
    /// `now` is when its pushes are made.
    fn transact_calls<'a>(
        &'a self,
        scope: CallScope,
        now: i64,
        step: CallStep<'a>,
    ) -> StoreFuture<'a, ()>;
    /// The live calls `user_id` takes part in.
    fn live_calls(&self, user_id: i64) -> StoreFuture<'_, Vec<CallRow>>;
    /// Ids of live calls whose deadline is at or before `now`.
    fn due_calls(&self, now: i32, limit: u32) -> StoreFuture<'_, Vec<i64>>;
    /// Appends pushes outside a call transition (under their users' row locks) and wakes the
    /// nodes present for their users (at commit).
    fn publish(&self, pushes: Vec<PushRow>, now: i64) -> StoreFuture<'_, ()>;
    /// Each user's pushes after the cursor's `after` and made at or after its `since`, in
    /// order per user. A user's pushes commit in the order of their numbers, so a reader that
    /// has seen `n` never later finds a smaller one.
    fn pushes_for(&self, cursors: Vec<PushCursor>) -> StoreFuture<'_, Vec<StoredPush>>;
    /// Deletes pushes made before `before` (Unix seconds).
    fn forget_pushes_before(&self, before: i64) -> StoreFuture<'_, u64>;
    /// Tells every node that a user's profile changed.
    fn user_changed(&self, user_id: i64) -> StoreFuture<'_, ()>;
    /// Registers a starting node; returns its id (what its presence and its channel are
    /// keyed by).
    fn join(&self, now: i64) -> StoreFuture<'_, i64>;
    /// Node `node` is alive at `now`, holds sessions of the users `online` and no longer of
    /// `offline`: pushes for the former wake it, for the latter not. Also its heartbeat.
    /// Waits for transitions holding the `online` users' rows, so every push made after it
    /// returns notifies this node, and returns each of their newest push numbers.
    fn set_presence(
        &self,
        node: i64,
        now: i64,
        online: Vec<i64>,
        offline: Vec<i64>,
    ) -> StoreFuture<'_, Presence>;
    /// Forgets nodes last alive before `before` (Unix seconds), with their presence.
    fn forget_nodes_before(&self, before: i64) -> StoreFuture<'_, u64>;
    /// Starts listening as node `node`: wake-ups for pushes to the users it is present for,
    /// and every user change, arrive on the returned channel for as long as it is kept; a
    /// lost listening connection is reopened and reported as [`Wake::Reconnected`].
    fn listen(&self, node: i64) -> tokio::sync::mpsc::UnboundedReceiver<Wake>;
    /// How this node's call transitions have shared transactions so far.
    fn transition_groups(&self) -> TransitionGroups;
}
