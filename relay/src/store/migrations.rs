//! The schema, as append-only migrations, and bringing an opened file up to date.

use rusqlite::Connection;

use crate::RelayError;

/// Append-only migrations: never edit one that has shipped; add a new one at the end.
const MIGRATIONS: &[&str] = &[
    // 1: tunnels, the buffer, eviction runs and allow lists.
    "CREATE TABLE meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        config_version INTEGER NOT NULL
     ) STRICT;
     INSERT INTO meta (id, config_version) VALUES (1, 0);
     CREATE TABLE tunnels (
        key INTEGER PRIMARY KEY,
        public_id TEXT NOT NULL UNIQUE,
        secret_sha256 BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL,
        head_seq INTEGER NOT NULL DEFAULT 0,
        floor_seq INTEGER NOT NULL DEFAULT 0
     ) STRICT;
     CREATE TABLE deliveries (
        tunnel INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        path TEXT NOT NULL,
        query TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        received_at_ms INTEGER NOT NULL,
        remote_addr TEXT,
        PRIMARY KEY (tunnel, seq)
     ) STRICT;
     CREATE TABLE evictions (
        tunnel INTEGER NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        PRIMARY KEY (tunnel, first_seq)
     ) STRICT;
     CREATE TABLE allowlists (
        tunnel INTEGER NOT NULL,
        path TEXT NOT NULL,
        ip TEXT NOT NULL,
        PRIMARY KEY (tunnel, path, ip)
     ) STRICT;",
    // 2: the byte bound needs each tunnel's buffered body bytes without summing on every
    // insert; the age bound finds old deliveries of quiet tunnels by time.
    "ALTER TABLE tunnels ADD COLUMN buffered_bytes INTEGER NOT NULL DEFAULT 0;
     UPDATE tunnels SET buffered_bytes =
        (SELECT COALESCE(SUM(length(body)), 0) FROM deliveries d WHERE d.tunnel = tunnels.key);
     CREATE INDEX deliveries_received ON deliveries (received_at_ms);",
];

pub(super) fn migrate(conn: &mut Connection) -> Result<(), RelayError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(RelayError::SchemaTooNew {
            found: version,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}
