-- mtcall schema, version 7 (PostgreSQL): the phone numbers that may sign up when `[auth]
-- signup` is "allowlist" (managed by `mtcall users add/remove`). Numbers are digits only, as
-- `users.phone`.

CREATE TABLE allowed_phones (
    phone     TEXT PRIMARY KEY,
    added_at  BIGINT NOT NULL
);
