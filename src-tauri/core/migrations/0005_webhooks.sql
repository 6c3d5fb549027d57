-- Incoming webhooks. Every delivery that reached the engine is one row, accepted or refused
-- (a refused relay delivery must still be recorded so the relay can be acknowledged). An
-- accepted row is committed with `announced = 0` before anything is pushed to overlays, and
-- flipped to 1 afterwards, so a crash in between is repaired at the next start. `announcement`
-- is the alert (and chart point) to show, as JSON; the raw body and credentials are never kept.
CREATE TABLE webhook_deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms   INTEGER NOT NULL,
    source        TEXT NOT NULL,
    via           TEXT NOT NULL CHECK (via IN ('local', 'relay')),
    tunnel_id     TEXT,
    seq           INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('accepted', 'refused')),
    reason_code   TEXT,
    reason        TEXT,
    alert_id      TEXT,
    announcement  TEXT,
    announced     INTEGER NOT NULL DEFAULT 0,
    remote_addr   TEXT
) STRICT;
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_ms);
CREATE INDEX webhook_deliveries_unannounced ON webhook_deliveries (id)
    WHERE status = 'accepted' AND announced = 0;

-- Idempotency keys (X-Idempotency-Key, webhook-id, or the relay's delivery id), scoped by
-- source, of accepted deliveries only: a refused request must not block the real one.
CREATE TABLE webhook_idempotency_keys (
    key          TEXT PRIMARY KEY,
    delivery_id  INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_idempotency_keys_created ON webhook_idempotency_keys (created_ms);

-- Named endpoints the streamer made (`/webhooks/custom/{name}`); the whsec_ key of each lives
-- in the secret store as `webhook-custom-{name}`.
CREATE TABLE webhook_custom_endpoints (
    name        TEXT PRIMARY KEY,
    overlay_id  TEXT,
    title       TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    rotated_ms  INTEGER
) STRICT;

-- How TradingView alerts become overlay alerts (one row; absent means the defaults).
CREATE TABLE webhook_tradingview (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    overlay_id  TEXT,
    title       TEXT NOT NULL,
    message     TEXT NOT NULL,
    chart       INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;

-- The highest relay sequence committed per tunnel; written in the same transaction as the
-- delivery it belongs to, and sent to the relay on connect.
CREATE TABLE relay_cursor (
    tunnel_id  TEXT PRIMARY KEY,
    last_seq   INTEGER NOT NULL
) STRICT;
