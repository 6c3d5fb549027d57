-- Media uploaded for scenes: pictures, video and sound. The bytes live in
-- <data dir>/media/<id>.<ext>, where `id` is the SHA-256 of the bytes (hex), so the same file
-- uploaded twice is stored once. `kind` and `mime` come from sniffing the bytes, never from the
-- name or the type the client claimed; `original_name` is informational only.
CREATE TABLE media (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('image', 'video', 'audio')),
    mime           TEXT NOT NULL,
    ext            TEXT NOT NULL,
    size           INTEGER NOT NULL,
    original_name  TEXT,
    created_ms     INTEGER NOT NULL
) STRICT;
CREATE INDEX media_created ON media (created_ms);
