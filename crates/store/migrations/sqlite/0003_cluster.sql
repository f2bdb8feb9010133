-- mtcall schema, version 3 (SQLite): what several nodes need (used by PostgreSQL; kept in step
-- here so both schemas have the same tables and columns).

ALTER TABLE calls ADD COLUMN random_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN deadline INTEGER;
CREATE INDEX calls_deadline ON calls(deadline);
CREATE INDEX calls_admin ON calls(admin_id, random_id);
CREATE INDEX calls_participant ON calls(participant_id);

-- Updates on their way to sessions on any node.
CREATE TABLE pushes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL,
    except_key  INTEGER,
    only_key    INTEGER,
    body        BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX pushes_user ON pushes(user_id, seq);
