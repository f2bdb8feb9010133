-- mtcall schema, version 8 (SQLite): fewer pages written per commit.
--
-- Calls were stored by their id, which is random: every transition rewrote a leaf page of its
-- own somewhere in the table, so a commit of a few transitions wrote as many pages, and every
-- checkpoint wrote them back again. Calls are now stored in the order they were made (`seq`),
-- so the live calls sit together in the table's last pages and one commit writes those few
-- pages once; the id has an index of its own, written once when a call is made. The index on
-- `participant_id` went with the old table: nothing on SQLite reads calls by participant.

CREATE TABLE calls_in_order (
    seq             INTEGER PRIMARY KEY,
    id              INTEGER NOT NULL UNIQUE,
    admin_id        INTEGER NOT NULL,
    participant_id  INTEGER NOT NULL,
    state           TEXT NOT NULL,
    body            BLOB NOT NULL,
    updated_at      INTEGER NOT NULL,
    random_id       INTEGER NOT NULL DEFAULT 0,
    deadline        INTEGER
);
INSERT INTO calls_in_order (id, admin_id, participant_id, state, body, updated_at, random_id, deadline)
    SELECT id, admin_id, participant_id, state, body, updated_at, random_id, deadline
    FROM calls ORDER BY updated_at, id;
DROP TABLE calls;
ALTER TABLE calls_in_order RENAME TO calls;
CREATE INDEX calls_admin ON calls(admin_id, random_id);
CREATE INDEX calls_ended ON calls(updated_at) WHERE state = 'discarded';
CREATE INDEX calls_live ON calls(id) WHERE state <> 'discarded';
