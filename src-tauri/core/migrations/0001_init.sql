-- Foundation: instance identity, audit log, streamer panel sessions.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms    INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT,
    outcome  TEXT NOT NULL,
    client   TEXT,
    detail   TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX audit_log_ts ON audit_log (ts_ms);

CREATE TABLE streamer_sessions (
    id_hash       TEXT PRIMARY KEY,
    created_ms    INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    client        TEXT
) STRICT;
CREATE INDEX streamer_sessions_expiry ON streamer_sessions (expires_ms);
