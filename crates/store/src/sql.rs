//! The statements both backends run, written once where SQLite and PostgreSQL agree.
//!
//! Parameters are `$1…$n` and appear in the text in that order: PostgreSQL numbers them, and
//! SQLite (which takes `$1` as a named parameter) binds them in order of first appearance, so
//! the same positional arguments fit both. What differs stays in each backend: the DDL
//! (`migrations/{sqlite,postgres}`), case-insensitive usernames, and "the newest login code".

pub const INSERT_AUTH_KEY: &str = "INSERT INTO auth_keys (id, key, created_at, first_salt, expires_at) VALUES ($1, $2, $3, $4, $5)";
pub const AUTH_KEY: &str = "SELECT id, key, created_at, first_salt, expires_at, perm_key_id, user_id, layer, api_id, device_model, system_version, app_version, lang_code FROM auth_keys WHERE id = $1";
pub const SET_KEY_LAYER: &str = "UPDATE auth_keys SET layer = $1 WHERE id = $2";
pub const SET_KEY_CLIENT: &str = "UPDATE auth_keys SET api_id = $1, device_model = $2, system_version = $3, app_version = $4, lang_code = $5 WHERE id = $6";
pub const SET_KEY_USER: &str = "UPDATE auth_keys SET user_id = $1 WHERE id = $2";
pub const BIND_TEMP_KEY: &str =
    "UPDATE auth_keys SET perm_key_id = $1, expires_at = $2 WHERE id = $3";
pub const DELETE_AUTH_KEY: &str = "DELETE FROM auth_keys WHERE id = $1";

pub const INSERT_USER: &str = "INSERT INTO users (phone, first_name, last_name, username, bot, bot_secret, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
pub const USER_BY_ID: &str = "SELECT id, phone, first_name, last_name, username, bot, bot_secret, created_at FROM users WHERE id = $1";
pub const USER_BY_PHONE: &str = "SELECT id, phone, first_name, last_name, username, bot, bot_secret, created_at FROM users WHERE phone = $1";
pub const SET_USERNAME: &str = "UPDATE users SET username = $1 WHERE id = $2";
pub const USERS: &str = "SELECT id, phone, first_name, last_name, username, bot, bot_secret, created_at FROM users ORDER BY id";

pub const INSERT_LOGIN_CODE: &str = "INSERT INTO login_codes (phone_code_hash, phone, code, created_at, expires_at, attempts, verified) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const LOGIN_CODE: &str = "SELECT phone_code_hash, phone, code, created_at, expires_at, attempts, verified FROM login_codes WHERE phone_code_hash = $1";
pub const UPDATE_LOGIN_CODE: &str =
    "UPDATE login_codes SET attempts = $1, verified = $2 WHERE phone_code_hash = $3";
pub const DELETE_LOGIN_CODE: &str = "DELETE FROM login_codes WHERE phone_code_hash = $1";

pub const ALLOW_PHONE: &str =
    "INSERT INTO allowed_phones (phone, added_at) VALUES ($1, $2) ON CONFLICT (phone) DO NOTHING";
pub const DISALLOW_PHONE: &str = "DELETE FROM allowed_phones WHERE phone = $1";
pub const PHONE_ALLOWED: &str = "SELECT 1 FROM allowed_phones WHERE phone = $1";
pub const ALLOWED_PHONES: &str = "SELECT phone FROM allowed_phones ORDER BY phone";

pub const SET_PASSWORD: &str = "INSERT INTO passwords (user_id, salt1, salt2, verifier, hint, set_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO UPDATE SET salt1 = excluded.salt1, salt2 = excluded.salt2, verifier = excluded.verifier, hint = excluded.hint, set_at = excluded.set_at";
pub const CLEAR_PASSWORD: &str = "DELETE FROM passwords WHERE user_id = $1";
pub const PASSWORD_OF: &str =
    "SELECT salt1, salt2, verifier, hint, set_at FROM passwords WHERE user_id = $1";

pub const UPSERT_CONTACT: &str = "INSERT INTO contacts (owner_id, user_id, first_name, last_name) VALUES ($1, $2, $3, $4) ON CONFLICT (owner_id, user_id) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name";
pub const IS_CONTACT: &str = "SELECT 1 FROM contacts WHERE owner_id = $1 AND user_id = $2";
pub const CONTACTS_OF: &str = "SELECT user_id FROM contacts WHERE owner_id = $1 ORDER BY user_id";

pub const BUMP_PTS: &str = "INSERT INTO user_state (user_id, pts) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET pts = user_state.pts + excluded.pts RETURNING pts";
pub const INSERT_UPDATE: &str =
    "INSERT INTO updates (user_id, pts, pts_count, date, body) VALUES ($1, $2, $3, $4, $5)";
pub const PTS: &str = "SELECT pts FROM user_state WHERE user_id = $1";
pub const UPDATES_AFTER: &str = "SELECT pts, pts_count, date, body FROM updates WHERE user_id = $1 AND pts > $2 ORDER BY pts LIMIT $3";

pub const SAVE_CALL: &str = "INSERT INTO calls (id, admin_id, participant_id, state, body, updated_at, random_id, deadline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body, updated_at = excluded.updated_at, deadline = excluded.deadline";
pub const CALL_COLUMNS: &str =
    "id, admin_id, participant_id, state, body, updated_at, random_id, deadline";
/// Live calls and the `$1` most recently ended (through the partial index `calls_ended`).
pub const LOAD_CALLS: &str = "SELECT id, admin_id, participant_id, state, body, updated_at, random_id, deadline FROM calls WHERE state <> 'discarded'
     UNION ALL SELECT * FROM (SELECT id, admin_id, participant_id, state, body, updated_at, random_id, deadline FROM calls WHERE state = 'discarded' ORDER BY updated_at DESC, id DESC LIMIT $1) AS recent
     ORDER BY id";
pub const CALL_BY_ID: &str = "SELECT id, admin_id, participant_id, state, body, updated_at, random_id, deadline FROM calls WHERE id = $1";
pub const CALL_BY_RANDOM: &str = "SELECT id, admin_id, participant_id, state, body, updated_at, random_id, deadline FROM calls WHERE admin_id = $1 AND random_id = $2 ORDER BY updated_at DESC LIMIT 1";
pub const FORGET_CALLS: &str = "DELETE FROM calls WHERE state = 'discarded' AND updated_at < $1";
/// The state of a call that has ended (its row stays as a tombstone for a while).
pub const ENDED_STATE: &str = "discarded";
