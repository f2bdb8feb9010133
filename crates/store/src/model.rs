//! The records the store keeps.

/// One auth key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthKeyRow {
    /// `auth_key_id`.
    pub id: i64,
    /// The 256 key bytes.
    pub key: Vec<u8>,
    /// Unix time of creation.
    pub created_at: i64,
    /// The handshake's first salt.
    pub first_salt: i64,
    /// For a temporary key, when it expires.
    pub expires_at: Option<i64>,
    /// For a bound temporary key, the permanent key it stands for.
    pub perm_key_id: Option<i64>,
    /// The user logged in with this key.
    pub user_id: Option<i64>,
    /// The API layer last announced with it.
    pub layer: Option<i32>,
    /// The client's `initConnection` details.
    pub client: Option<ClientInfo>,
}

/// What a client said about itself in `initConnection`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// `api_id`.
    pub api_id: i32,
    /// `device_model`.
    pub device_model: String,
    /// `system_version`.
    pub system_version: String,
    /// `app_version`.
    pub app_version: String,
    /// `lang_code`.
    pub lang_code: String,
}

/// A user or bot account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub id: i64,
    /// Phone number, digits only (none for bots).
    pub phone: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Username, if set.
    pub username: Option<String>,
    /// A bot.
    pub bot: bool,
    /// A bot's token secret (the part after `ID:`).
    pub bot_secret: Option<String>,
    /// Unix time of creation.
    pub created_at: i64,
}

/// A user to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewUser {
    /// Phone number, digits only.
    pub phone: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Username.
    pub username: Option<String>,
    /// For a bot, its token secret.
    pub bot_secret: Option<String>,
}

/// A login code sent by `auth.sendCode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginCode {
    /// `phone_code_hash`.
    pub hash: String,
    /// The phone, digits only.
    pub phone: String,
    /// The code.
    pub code: String,
    /// Unix time sent.
    pub created_at: i64,
    /// Unix time it stops working.
    pub expires_at: i64,
    /// Wrong attempts so far.
    pub attempts: i32,
    /// Checked by `auth.signIn` (so `auth.signUp` may use it).
    pub verified: bool,
}

/// An account's cloud password (two-step verification), as SRP needs it: never the
/// password, only the verifier the client computed from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudPassword {
    /// The first salt, with the client's random part appended.
    pub salt1: Vec<u8>,
    /// The second salt.
    pub salt2: Vec<u8>,
    /// `v = g^x mod p`, 256 bytes big-endian.
    pub verifier: Vec<u8>,
    /// The hint shown when the password is asked for.
    pub hint: String,
    /// Unix time it was set.
    pub set_at: i64,
}

/// One stored update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRow {
    /// Its pts.
    pub pts: i32,
    /// How much it advanced pts.
    pub pts_count: i32,
    /// Unix time.
    pub date: i32,
    /// The `Update` in canonical TL.
    pub body: Vec<u8>,
}

/// A stored call: the call crate's own binary form plus the columns to query by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRow {
    /// Call id.
    pub id: i64,
    /// Caller.
    pub admin_id: i64,
    /// Callee.
    pub participant_id: i64,
    /// State name.
    pub state: String,
    /// The call record.
    pub body: Vec<u8>,
    /// Unix time of the last change.
    pub updated_at: i64,
    /// The caller's `random_id` (a repeated `phone.requestCall` finds its call by it).
    pub random_id: i32,
    /// When the server's timer next acts on the call (Unix seconds), if it is live.
    pub deadline: Option<i32>,
}

/// An update to deliver to the sessions of one user on whichever node they are connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushRow {
    /// The user.
    pub user_id: i64,
    /// Skip sessions on this auth key (the one that caused it).
    pub except_key: Option<i64>,
    /// Only sessions on this auth key.
    pub only_key: Option<i64>,
    /// The `Updates`, encoded.
    pub body: Vec<u8>,
}

/// A stored push with its sequence number (per user: 1, 2, 3, … in commit order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPush {
    /// Position in its user's pushes.
    pub seq: i64,
    /// The push.
    pub push: PushRow,
}

/// An update for a user's log, written by a call transition with the pts it chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUpdate {
    /// Whose log.
    pub user_id: i64,
    /// The update, its pts the next of the user's.
    pub update: UpdateRow,
}

/// Which of a user's pushes a node reads: those numbered after `after` and made at or after
/// `since` (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushCursor {
    /// The user.
    pub user_id: i64,
    /// The newest push already handed out (0 for none).
    pub after: i64,
    /// Pushes made before this are not wanted (0 for every one).
    pub since: i64,
}

/// What writing a node's presence found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    /// The node had been forgotten (its other presence is gone: write it all again).
    pub forgotten: bool,
    /// For each user it is now present for, the number of that user's newest push: every
    /// newer one notifies this node.
    pub newest: Vec<(i64, i64)>,
}
