-- mtcall schema, version 2 (PostgreSQL): calls.

CREATE TABLE calls (
    id              BIGINT PRIMARY KEY,
    admin_id        BIGINT NOT NULL,
    participant_id  BIGINT NOT NULL,
    state           TEXT NOT NULL,
    body            BYTEA NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX calls_state ON calls(state);
