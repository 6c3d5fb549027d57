-- A relayed webhook that reached the engine long after the relay received it (the desktop was
-- off) is recorded as accepted but `stale`: listed, not played, unless `webhooks.play_stale`.
-- Its row is written with `announced = 1` so a restart does not play it either.
ALTER TABLE webhook_deliveries ADD COLUMN stale INTEGER NOT NULL DEFAULT 0;
