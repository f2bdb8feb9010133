-- mtcall schema, version 6 (SQLite): ended calls by when they ended, for loading the most
-- recent at start-up and deleting the old ones (live calls are all held in memory).
CREATE INDEX calls_ended ON calls(updated_at) WHERE state = 'discarded';
