-- mtcall schema, version 5 (SQLite): two-step verification. An account's cloud password is
-- kept as its SRP verifier (v = g^x mod p, computed by the client; the server never sees the
-- password) with the salts the client derived x with, and the hint shown at login.

CREATE TABLE passwords (
    user_id   INTEGER PRIMARY KEY REFERENCES users(id),
    salt1     BLOB NOT NULL,
    salt2     BLOB NOT NULL,
    verifier  BLOB NOT NULL,
    hint      TEXT NOT NULL,
    set_at    INTEGER NOT NULL
);
