-- mtcall schema, version 4 (SQLite): the phone numbers that may sign up when `[auth] signup`
-- is "allowlist" (managed by `mtcall users add/remove`). Numbers are digits only, as
-- `users.phone`.

CREATE TABLE allowed_phones (
    phone     TEXT PRIMARY KEY,
    added_at  INTEGER NOT NULL
);
