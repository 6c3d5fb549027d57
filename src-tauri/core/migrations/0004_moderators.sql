-- Moderator invite keys (stored only as hashes, single use) and the sessions they open.
CREATE TABLE moderator_keys (
    key_hash     TEXT PRIMARY KEY,
    label        TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    streamer_id  TEXT,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    consumed_ms  INTEGER,
    session_id   TEXT
) STRICT;

CREATE TABLE moderator_sessions (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    label        TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    streamer_id  TEXT,
    client       TEXT,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    revoked_ms   INTEGER
) STRICT;
CREATE INDEX moderator_sessions_expiry ON moderator_sessions (expires_ms);
