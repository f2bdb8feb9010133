-- mtcall schema, version 1 (SQLite).

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    phone       TEXT UNIQUE,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL DEFAULT '',
    username    TEXT UNIQUE COLLATE NOCASE,
    bot         INTEGER NOT NULL DEFAULT 0,
    bot_secret  TEXT,
    created_at  INTEGER NOT NULL
);
-- Ids start where Telegram's test accounts do, so they look like user ids to clients.
INSERT INTO sqlite_sequence (name, seq) VALUES ('users', 1000000);

CREATE TABLE auth_keys (
    id              INTEGER PRIMARY KEY,
    key             BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    first_salt      INTEGER NOT NULL,
    expires_at      INTEGER,
    perm_key_id     INTEGER,
    user_id         INTEGER REFERENCES users(id),
    layer           INTEGER,
    api_id          INTEGER,
    device_model    TEXT,
    system_version  TEXT,
    app_version     TEXT,
    lang_code       TEXT
);
CREATE INDEX auth_keys_user ON auth_keys(user_id);

CREATE TABLE login_codes (
    phone_code_hash TEXT PRIMARY KEY,
    phone           TEXT NOT NULL,
    code            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    verified        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX login_codes_phone ON login_codes(phone);

CREATE TABLE contacts (
    owner_id    INTEGER NOT NULL REFERENCES users(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    PRIMARY KEY (owner_id, user_id)
);

-- Each user's durable updates, numbered by pts.
CREATE TABLE updates (
    user_id     INTEGER NOT NULL,
    pts         INTEGER NOT NULL,
    pts_count   INTEGER NOT NULL,
    date        INTEGER NOT NULL,
    body        BLOB NOT NULL,
    PRIMARY KEY (user_id, pts)
);

CREATE TABLE user_state (
    user_id     INTEGER PRIMARY KEY,
    pts         INTEGER NOT NULL
);
