-- Linked platform accounts: one link per provider. Only what the streamer sees is kept here;
-- the access and refresh tokens live in the secret store (`account-{provider}`), never in this
-- file. `token_ms` is when the current access token was obtained, `expires_ms` when it
-- expires (NULL: the provider did not say).
CREATE TABLE account_links (
    provider       TEXT PRIMARY KEY CHECK (provider IN ('twitch', 'youtube', 'discord')),
    account_id     TEXT NOT NULL,
    account_name   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    flow           TEXT NOT NULL CHECK (flow IN ('device', 'code')),
    status         TEXT NOT NULL CHECK (status IN ('ok', 'refreshing', 'needs_relogin')),
    status_reason  TEXT,
    token_ms       INTEGER NOT NULL,
    expires_ms     INTEGER,
    linked_ms      INTEGER NOT NULL,
    refreshed_ms   INTEGER
) STRICT;

-- Custom RTMP destinations: the server URL is shown (masked with the key as `****`); the
-- stream key lives in the secret store as `rtmp-key-{id}`.
CREATE TABLE stream_destinations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    server_url  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
) STRICT;

-- The Discord channel webhook for go-live announcements (one). The URL carries its own
-- credential, so it lives in the secret store as `discord-webhook`; only the webhook's public
-- id is kept here, to show the URL masked.
CREATE TABLE discord_webhook (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    webhook_id  TEXT NOT NULL,
    set_ms      INTEGER NOT NULL
) STRICT;
