-- mtcall schema, version 6 (PostgreSQL): the push log numbered per user. A push's sequence
-- number is the next of its user's `push_seq`, taken under that user's row lock by the
-- transaction that writes it (a call transition writes its own pushes and history), so each
-- user's pushes commit in the order of their numbers while transitions of other users commit
-- side by side. The log holds only recent pushes, so the old one is dropped, not converted:
-- nodes of an older version must be stopped before one of this version starts.

DROP TABLE pushes;
CREATE TABLE pushes (
    user_id     BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    except_key  BIGINT,
    only_key    BIGINT,
    body        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX pushes_created ON pushes(created_at);
ALTER TABLE user_state ADD COLUMN push_seq BIGINT NOT NULL DEFAULT 0;
