-- mtcall schema, version 3 (PostgreSQL): what several nodes need — calls found by their
-- caller's random_id and by their timer deadline, and the push log that carries updates to
-- sessions on other nodes (a NOTIFY is only the wake-up; the row is the update).

ALTER TABLE calls ADD COLUMN random_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN deadline INTEGER;
CREATE INDEX calls_deadline ON calls(deadline);
CREATE INDEX calls_admin ON calls(admin_id, random_id);
CREATE INDEX calls_participant ON calls(participant_id);

CREATE TABLE pushes (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    except_key  BIGINT,
    only_key    BIGINT,
    body        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX pushes_user ON pushes(user_id, seq);
