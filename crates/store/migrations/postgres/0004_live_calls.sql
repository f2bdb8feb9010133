-- mtcall schema, version 4 (PostgreSQL): each transition loads the live calls of both users;
-- ended calls stay for an hour, so indexes over every call would walk each user's whole recent
-- history. These cover only the calls that have not ended.

CREATE INDEX calls_live_admin ON calls(admin_id) WHERE state <> 'discarded';
CREATE INDEX calls_live_participant ON calls(participant_id) WHERE state <> 'discarded';
