-- Overlays and their scenes. A scene row exists for every overlay; `version` increases by one
-- on every save and is the optimistic-concurrency token for editors.
CREATE TABLE overlays (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE scenes (
    overlay_id  TEXT PRIMARY KEY REFERENCES overlays (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    scene       TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;
