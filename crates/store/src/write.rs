//! Every change to the store as data: one [`Write`] per kind of change, the same set for
//! both backends. The [`crate::Store`] write methods are written once, in terms of
//! [`crate::Store::submit`]; each backend only says how it applies a `Write` inside its batch
//! transaction. [`gather`] is how every batching writer (SQLite's database thread,
//! PostgreSQL's writer and its push publisher) takes what is waiting into one transaction.

use crate::{AuthKeyRow, CallRow, ClientInfo, LoginCode, NewUser, UpdateBody, User};

/// A change to the store.
pub enum Write {
    /// A new auth key.
    InsertAuthKey(AuthKeyRow),
    /// The layer and/or client a key announced.
    SetKeyClient(i64, Option<i32>, Option<ClientInfo>),
    /// The user a key is logged in as (or none).
    SetKeyUser(i64, Option<i64>),
    /// A temporary key bound to a permanent one, until a time.
    BindTempKey {
        /// The temporary key.
        temp: i64,
        /// The permanent key.
        perm: i64,
        /// Unix seconds.
        expires_at: i64,
    },
    /// A key removed.
    DeleteAuthKey(i64),
    /// A new user, at a time.
    CreateUser(NewUser, i64),
    /// A username set or removed.
    SetUsername(i64, Option<String>),
    /// A login code issued.
    SaveLoginCode(LoginCode),
    /// A login code's attempts and verification.
    UpdateLoginCode(String, i32, bool),
    /// A login code spent.
    DeleteLoginCode(String),
    /// A phone number allowed to sign up, at a time.
    AllowPhone(String, i64),
    /// A phone number no longer allowed to sign up.
    DisallowPhone(String),
    /// A user's cloud password set or replaced.
    SetPassword(i64, crate::CloudPassword),
    /// A user's cloud password removed.
    ClearPassword(i64),
    /// A contact added or renamed: owner, user, first and last name.
    AddContact(i64, i64, String, String),
    /// An update appended to a user's log: user, pts_count, date, body.
    AppendUpdate(i64, i32, i32, UpdateBody),
    /// A call saved (inserted or replaced).
    SaveCall(CallRow),
}

/// What a write gives back.
pub enum Written {
    /// Nothing beyond success.
    Nothing,
    /// The user created.
    User(Box<User>),
    /// The appended update's pts and body.
    Update(i32, Vec<u8>),
}

/// The most writes one transaction takes.
pub(crate) const MAX_BATCH: usize = 512;

/// A batch: `first`, and what `waiting` still has ready, up to `limit` in all.
pub(crate) fn gather<T>(first: T, limit: usize, mut waiting: impl FnMut() -> Option<T>) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < limit {
        match waiting() {
            Some(item) => batch.push(item),
            None => break,
        }
    }
    batch
}
