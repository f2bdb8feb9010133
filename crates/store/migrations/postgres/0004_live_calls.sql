-- mtcall schema, version 4 (PostgreSQL): each user's row lists the calls of theirs that have not
-- ended. A transition locks both users' rows and reads their calls by these ids, instead of
-- walking indexes over every call of the last hour (ended calls stay that long, and every
-- version of a call leaves an index entry until the next vacuum). Indexes nothing reads any
-- more are dropped: each one costs every call update an index insert.

ALTER TABLE users ADD COLUMN live_calls BIGINT[] NOT NULL DEFAULT '{}';
UPDATE users SET live_calls = ARRAY(
    SELECT id FROM calls
    WHERE (admin_id = users.id OR participant_id = users.id) AND state <> 'discarded'
    ORDER BY id);

DROP INDEX calls_state;
DROP INDEX calls_participant;
DROP INDEX calls_deadline;
CREATE INDEX calls_deadline ON calls(deadline) WHERE state <> 'discarded';
CREATE INDEX calls_ended ON calls(updated_at) WHERE state = 'discarded';
