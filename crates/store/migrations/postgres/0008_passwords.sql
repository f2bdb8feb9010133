-- mtcall schema, version 8 (PostgreSQL): two-step verification. An account's cloud password
-- is kept as its SRP verifier (v = g^x mod p, computed by the client; the server never sees
-- the password) with the salts the client derived x with, and the hint shown at login.

CREATE TABLE passwords (
    user_id   BIGINT PRIMARY KEY REFERENCES users(id),
    salt1     BYTEA NOT NULL,
    salt2     BYTEA NOT NULL,
    verifier  BYTEA NOT NULL,
    hint      TEXT NOT NULL,
    set_at    BIGINT NOT NULL
);
