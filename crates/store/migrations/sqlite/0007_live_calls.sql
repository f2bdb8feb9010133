-- mtcall schema, version 7 (SQLite): fewer index writes per call transition. One node serves a
-- SQLite store and its call timer runs in memory, so nothing reads calls by deadline; and
-- start-up finds the live calls through an index of their ids that a transition between live
-- states leaves alone, where an index on the state changed with every transition.
DROP INDEX IF EXISTS calls_state;
DROP INDEX IF EXISTS calls_deadline;
CREATE INDEX calls_live ON calls(id) WHERE state <> 'discarded';
