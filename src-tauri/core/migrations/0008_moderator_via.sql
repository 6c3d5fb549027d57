-- How a moderator session was opened: 'local' (this machine or the LAN) or 'relay' (through
-- the streamer's relay), so the audit log can say where a moderator came from.
ALTER TABLE moderator_sessions ADD COLUMN via TEXT NOT NULL DEFAULT 'local';
