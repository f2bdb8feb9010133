-- mtcall schema, version 2 (SQLite): calls.

CREATE TABLE calls (
    id              INTEGER PRIMARY KEY,
    admin_id        INTEGER NOT NULL,
    participant_id  INTEGER NOT NULL,
    state           TEXT NOT NULL,
    body            BLOB NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX calls_state ON calls(state);
