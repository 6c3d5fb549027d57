//! The relay's SQLite file: the durable buffer behind every 202.
//!
//! One writer thread owns the only writing connection and group-commits: requests send their
//! command over a channel with a oneshot, the writer drains whatever is queued, applies it in
//! one transaction (a savepoint per command, so one failure does not sink its neighbours),
//! commits, and only then answers every waiter. Readers (engine links, config reloads) use a
//! small pool of read-only connections; WAL lets them read while the writer writes.
//!
//! Per tunnel the stored deliveries are always the contiguous range `(floor_seq, head_seq]`:
//! acknowledgements and evictions both delete "everything up to n", so the buffer size is
//! `head_seq - floor_seq` without counting rows. Evicted ranges are kept as runs in
//! `evictions` until the engine says it has seen them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::RelayError;
use crate::tunnel::{SecretDigest, TunnelId};

/// The database file inside the data directory.
pub const DB_FILE: &str = "relay.sqlite3";

/// Commands queued for the writer before senders wait (backpressure on the HTTP side).
const WRITER_QUEUE: usize = 8_192;
/// Commands applied in one transaction at most.
const MAX_BATCH: usize = 2_048;
/// Idle read connections kept.
const MAX_IDLE_READERS: usize = 8;

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

/// How much one tunnel may hold for an absent engine. Past any bound the oldest deliveries
/// are evicted, and the engine is told how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Deliveries.
    pub count: u64,
    /// Body bytes (the newest delivery is kept whatever its size).
    pub bytes: u64,
    /// Age in milliseconds, by the relay's receive time.
    pub age_ms: i64,
}

/// A webhook about to be stored.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The tunnel's row key.
    pub tunnel: i64,
    /// Engine path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Forwarded headers, in order.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
    /// Receive time.
    pub received_at_ms: i64,
    /// Sender address.
    pub remote_addr: Option<String>,
}

/// A stored webhook, as read back for the engine.
#[derive(Debug, Clone)]
pub struct StoredDelivery {
    /// Sequence number.
    pub seq: u64,
    /// Engine path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Forwarded headers, in order.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
    /// Receive time.
    pub received_at_ms: i64,
    /// Sender address.
    pub remote_addr: Option<String>,
}

/// What storing a webhook did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The sequence it got.
    pub seq: u64,
    /// Whether older deliveries were evicted to make room.
    pub evicted: bool,
}

/// A tunnel's buffer bounds when an engine attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// Highest assigned sequence.
    pub head_seq: u64,
    /// Everything at or below this is gone (acknowledged or evicted).
    pub floor_seq: u64,
}

/// An eviction report: how many were dropped, first and last sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictionReport {
    /// Dropped deliveries.
    pub count: u64,
    /// First dropped sequence.
    pub first_seq: u64,
    /// Last dropped sequence.
    pub last_seq: u64,
}

/// A tunnel as stored.
#[derive(Debug, Clone)]
pub struct TunnelRow {
    /// Row key.
    pub key: i64,
    /// Public id.
    pub id: TunnelId,
    /// Secret digest.
    pub digest: SecretDigest,
    /// Allow lists: (path, addresses).
    pub allowlists: Vec<(String, Vec<IpAddr>)>,
}

type Reply<T> = oneshot::Sender<Result<T, RelayError>>;

enum Command {
    Insert(NewDelivery, Reply<Stored>),
    Ack {
        tunnel: i64,
        seq: u64,
    },
    Attach {
        tunnel: i64,
        last_seq: u64,
        reply: Reply<Attached>,
    },
    EvictedSeen {
        tunnel: i64,
        last_seq: u64,
    },
    Sweep {
        now_ms: i64,
        reply: Reply<Vec<i64>>,
    },
    CreateTunnel {
        id: TunnelId,
        digest: SecretDigest,
        now_ms: i64,
        reply: Reply<i64>,
    },
    SetAllowlist {
        tunnel: i64,
        path: String,
        ips: Vec<IpAddr>,
        reply: Reply<()>,
    },
}

/// The handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
}

impl Writer {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, RelayError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| RelayError::WriterGone)?;
        rx.await.map_err(|_| RelayError::WriterGone)?
    }

    /// Stores a webhook; resolves once it is committed.
    pub async fn insert(&self, delivery: NewDelivery) -> Result<Stored, RelayError> {
        self.call(|reply| Command::Insert(delivery, reply)).await
    }

    /// Deletes a tunnel's deliveries up to `seq`. Queued, not awaited: a lost acknowledgement
    /// only means a resend, which at-least-once allows.
    pub async fn ack(&self, tunnel: i64, seq: u64) -> Result<(), RelayError> {
        self.tx
            .send(Command::Ack { tunnel, seq })
            .await
            .map_err(|_| RelayError::WriterGone)
    }

    /// Applies an engine's `last_seq` as an acknowledgement and reads the buffer bounds, in
    /// writer order: anything queued before (an older link's last acks) is already applied.
    pub async fn attach(&self, tunnel: i64, last_seq: u64) -> Result<Attached, RelayError> {
        self.call(|reply| Command::Attach {
            tunnel,
            last_seq,
            reply,
        })
        .await
    }

    /// Forgets eviction runs up to `last_seq`. Queued, not awaited.
    pub async fn evicted_seen(&self, tunnel: i64, last_seq: u64) -> Result<(), RelayError> {
        self.tx
            .send(Command::EvictedSeen { tunnel, last_seq })
            .await
            .map_err(|_| RelayError::WriterGone)
    }

    /// Evicts what has outlived the age bound in every tunnel; returns the keys of the
    /// tunnels that evicted (their links have news for their engines).
    pub async fn sweep(&self, now_ms: i64) -> Result<Vec<i64>, RelayError> {
        self.call(|reply| Command::Sweep { now_ms, reply }).await
    }

    /// Stores a new tunnel; returns its row key.
    pub async fn create_tunnel(
        &self,
        id: TunnelId,
        digest: SecretDigest,
        now_ms: i64,
    ) -> Result<i64, RelayError> {
        self.call(|reply| Command::CreateTunnel {
            id,
            digest,
            now_ms,
            reply,
        })
        .await
    }

    /// Replaces the allow list of one path of one tunnel (empty: no restriction).
    pub async fn set_allowlist(
        &self,
        tunnel: i64,
        path: String,
        ips: Vec<IpAddr>,
    ) -> Result<(), RelayError> {
        self.call(|reply| Command::SetAllowlist {
            tunnel,
            path,
            ips,
            reply,
        })
        .await
    }
}

/// Opens (creating if needed) the database in `data_dir`, migrates it, and starts the writer.
pub fn open(
    data_dir: &Path,
    sync_full: bool,
    bounds: Bounds,
) -> Result<(Writer, Readers), RelayError> {
    std::fs::create_dir_all(data_dir).map_err(|source| RelayError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let path = data_dir.join(DB_FILE);
    let mut conn = Connection::open(&path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Checkpoints run on their own thread; the writer does one itself only if that thread
    // falls far behind.
    stagehand_sqlite::set_wal(&conn)?;
    // In WAL mode NORMAL syncs at checkpoints, not at each commit: a committed transaction
    // survives the process being killed (it is in the WAL file, in the OS page cache) but the
    // last few may be lost if the machine loses power. FULL closes that gap.
    conn.pragma_update(
        None,
        "synchronous",
        if sync_full { "FULL" } else { "NORMAL" },
    )?;
    migrate(&mut conn)?;
    let checkpointer =
        stagehand_sqlite::Checkpointer::start(&path, "relay-checkpoint").map_err(|e| match e {
            stagehand_sqlite::CheckpointerError::Sqlite(e) => RelayError::Database(e),
            stagehand_sqlite::CheckpointerError::Thread(e) => RelayError::Io(e),
        })?;

    let (tx, rx) = mpsc::channel(WRITER_QUEUE);
    thread::Builder::new()
        .name("relay-writer".into())
        .spawn(move || {
            run_writer(conn, rx, bounds);
            // The last checkpoint, once nothing writes any more.
            drop(checkpointer);
        })
        .map_err(RelayError::Io)?;
    Ok((Writer { tx }, Readers::new(path)))
}

fn migrate(conn: &mut Connection) -> Result<(), RelayError> {
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

fn run_writer(mut conn: Connection, mut rx: mpsc::Receiver<Command>, bounds: Bounds) {
    let mut batch = Vec::with_capacity(64);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        apply_batch(&mut conn, &mut batch, bounds);
    }
    tracing::debug!("relay writer stopped");
}

/// A command's answer, held until the batch commits.
enum Outcome {
    Stored(Reply<Stored>, Result<Stored, RelayError>),
    Attached(Reply<Attached>, Result<Attached, RelayError>),
    Created(Reply<i64>, Result<i64, RelayError>),
    Done(Reply<()>, Result<(), RelayError>),
    Swept(Reply<Vec<i64>>, Result<Vec<i64>, RelayError>),
    Nothing,
}

impl Outcome {
    fn fail(self, err: &str) {
        let e = || RelayError::Commit(err.to_owned());
        match self {
            Outcome::Stored(r, _) => drop(r.send(Err(e()))),
            Outcome::Attached(r, _) => drop(r.send(Err(e()))),
            Outcome::Created(r, _) => drop(r.send(Err(e()))),
            Outcome::Done(r, _) => drop(r.send(Err(e()))),
            Outcome::Swept(r, _) => drop(r.send(Err(e()))),
            Outcome::Nothing => {}
        }
    }

    fn answer(self) {
        // A waiter that went away (client disconnected) is fine: the row is stored anyway.
        match self {
            Outcome::Stored(r, v) => drop(r.send(v)),
            Outcome::Attached(r, v) => drop(r.send(v)),
            Outcome::Created(r, v) => drop(r.send(v)),
            Outcome::Done(r, v) => drop(r.send(v)),
            Outcome::Swept(r, v) => drop(r.send(v)),
            Outcome::Nothing => {}
        }
    }
}

fn apply_batch(conn: &mut Connection, batch: &mut Vec<Command>, bounds: Bounds) {
    let mut outcomes = Vec::with_capacity(batch.len());
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "cannot begin a write transaction");
            let msg = e.to_string();
            for cmd in batch.drain(..) {
                pending(cmd).fail(&msg);
            }
            return;
        }
    };
    let mut tx = tx;
    for cmd in batch.drain(..) {
        outcomes.push(apply_one(&mut tx, cmd, bounds));
    }
    match tx.commit() {
        Ok(()) => outcomes.into_iter().for_each(Outcome::answer),
        Err(e) => {
            tracing::error!(error = %e, "write transaction failed to commit");
            let msg = e.to_string();
            outcomes.into_iter().for_each(|o| o.fail(&msg));
        }
    }
}

/// The outcome slot of a command that never ran.
fn pending(cmd: Command) -> Outcome {
    match cmd {
        Command::Insert(_, r) => Outcome::Stored(r, Err(RelayError::WriterGone)),
        Command::Attach { reply, .. } => Outcome::Attached(reply, Err(RelayError::WriterGone)),
        Command::CreateTunnel { reply, .. } => Outcome::Created(reply, Err(RelayError::WriterGone)),
        Command::SetAllowlist { reply, .. } => Outcome::Done(reply, Err(RelayError::WriterGone)),
        Command::Sweep { reply, .. } => Outcome::Swept(reply, Err(RelayError::WriterGone)),
        Command::Ack { .. } | Command::EvictedSeen { .. } => Outcome::Nothing,
    }
}

/// Runs `f` inside a savepoint: on error only this command's changes are rolled back.
fn in_savepoint<T>(
    tx: &mut rusqlite::Transaction<'_>,
    f: impl FnOnce(&Connection) -> Result<T, RelayError>,
) -> Result<T, RelayError> {
    let sp = tx.savepoint()?;
    let out = f(&sp)?;
    sp.commit()?;
    Ok(out)
}

fn apply_one(tx: &mut rusqlite::Transaction<'_>, cmd: Command, bounds: Bounds) -> Outcome {
    match cmd {
        Command::Insert(d, reply) => {
            Outcome::Stored(reply, in_savepoint(tx, |c| insert_delivery(c, &d, bounds)))
        }
        Command::Ack { tunnel, seq } => {
            if let Err(e) = in_savepoint(tx, |c| ack(c, tunnel, seq)) {
                tracing::warn!(error = %e, "acknowledgement not applied");
            }
            Outcome::Nothing
        }
        Command::Attach {
            tunnel,
            last_seq,
            reply,
        } => Outcome::Attached(
            reply,
            in_savepoint(tx, |c| {
                ack(c, tunnel, last_seq)?;
                c.query_row(
                    "SELECT head_seq, floor_seq FROM tunnels WHERE key = ?1",
                    [tunnel],
                    |r| {
                        Ok(Attached {
                            head_seq: r.get::<_, i64>(0)? as u64,
                            floor_seq: r.get::<_, i64>(1)? as u64,
                        })
                    },
                )
                .optional()?
                .ok_or(RelayError::UnknownTunnel)
            }),
        ),
        Command::EvictedSeen { tunnel, last_seq } => {
            if let Err(e) = in_savepoint(tx, |c| evicted_seen(c, tunnel, last_seq)) {
                tracing::warn!(error = %e, "eviction acknowledgement not applied");
            }
            Outcome::Nothing
        }
        Command::Sweep { now_ms, reply } => {
            Outcome::Swept(reply, in_savepoint(tx, |c| sweep(c, bounds, now_ms)))
        }
        Command::CreateTunnel {
            id,
            digest,
            now_ms,
            reply,
        } => Outcome::Created(
            reply,
            in_savepoint(tx, |c| {
                let key = c.query_row(
                    "INSERT INTO tunnels (public_id, secret_sha256, created_at_ms)
                     VALUES (?1, ?2, ?3) RETURNING key",
                    params![id.as_str(), &digest.0[..], now_ms],
                    |r| r.get(0),
                )?;
                bump_config(c)?;
                Ok(key)
            }),
        ),
        Command::SetAllowlist {
            tunnel,
            path,
            ips,
            reply,
        } => Outcome::Done(
            reply,
            in_savepoint(tx, |c| {
                c.execute(
                    "DELETE FROM allowlists WHERE tunnel = ?1 AND path = ?2",
                    params![tunnel, path],
                )?;
                let mut stmt = c.prepare_cached(
                    "INSERT OR IGNORE INTO allowlists (tunnel, path, ip) VALUES (?1, ?2, ?3)",
                )?;
                for ip in &ips {
                    stmt.execute(params![tunnel, path, ip.to_string()])?;
                }
                bump_config(c)?;
                Ok(())
            }),
        ),
    }
}

fn bump_config(c: &Connection) -> Result<(), RelayError> {
    c.execute(
        "UPDATE meta SET config_version = config_version + 1 WHERE id = 1",
        [],
    )?;
    Ok(())
}

fn insert_delivery(c: &Connection, d: &NewDelivery, bounds: Bounds) -> Result<Stored, RelayError> {
    let bytes = i64::try_from(d.body.len()).unwrap_or(i64::MAX);
    let (head, floor, buffered): (i64, i64, i64) = c
        .prepare_cached(
            "UPDATE tunnels SET head_seq = head_seq + 1, buffered_bytes = buffered_bytes + ?2
             WHERE key = ?1
             RETURNING head_seq, floor_seq, buffered_bytes",
        )?
        .query_row(params![d.tunnel, bytes], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?
        .ok_or(RelayError::UnknownTunnel)?;
    let headers =
        serde_json::to_string(&d.headers).map_err(|e| RelayError::Encode(e.to_string()))?;
    c.prepare_cached(
        "INSERT INTO deliveries
         (tunnel, seq, path, query, headers, body, received_at_ms, remote_addr)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        d.tunnel,
        head,
        d.path,
        d.query,
        headers,
        d.body,
        d.received_at_ms,
        d.remote_addr
    ])?;
    let evicted = enforce_bounds(c, d.tunnel, head, floor, buffered, bounds, d.received_at_ms)?;
    Ok(Stored {
        seq: head as u64,
        evicted: evicted > 0,
    })
}

/// Evicts the oldest deliveries of a tunnel until it is within `bounds` at time `now_ms`;
/// returns how many were evicted. The newest delivery (`head`) is never evicted here.
fn enforce_bounds(
    c: &Connection,
    tunnel: i64,
    head: i64,
    floor: i64,
    buffered: i64,
    bounds: Bounds,
    now_ms: i64,
) -> Result<u64, RelayError> {
    let max_count = i64::try_from(bounds.count).unwrap_or(i64::MAX).max(1);
    let max_bytes = i64::try_from(bounds.bytes).unwrap_or(i64::MAX);
    let cutoff = now_ms.saturating_sub(bounds.age_ms);
    let mut new_floor = floor.max(head - max_count);
    let oldest_received: Option<i64> = c
        .prepare_cached("SELECT received_at_ms FROM deliveries WHERE tunnel = ?1 AND seq = ?2")?
        .query_row(params![tunnel, new_floor + 1], |r| r.get(0))
        .optional()?;
    let too_old = oldest_received.is_some_and(|t| t < cutoff);
    // What the count bound already drops does not count against the byte bound.
    let mut left = buffered - bytes_through(c, tunnel, floor, new_floor)?;
    if too_old || left > max_bytes {
        let mut rows = c.prepare_cached(
            "SELECT seq, received_at_ms, length(body) FROM deliveries
                 WHERE tunnel = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq",
        )?;
        let mut rows = rows.query(params![tunnel, new_floor, head])?;
        while let Some(r) = rows.next()? {
            let (seq, received, len): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if received >= cutoff && left <= max_bytes {
                break;
            }
            new_floor = seq;
            left -= len;
        }
    }
    if new_floor <= floor {
        return Ok(0);
    }
    evict_through(c, tunnel, floor, new_floor)?;
    Ok(u64::try_from(new_floor - floor).unwrap_or(0))
}

/// Body bytes of a tunnel's deliveries in `(after, through]`.
fn bytes_through(c: &Connection, tunnel: i64, after: i64, through: i64) -> Result<i64, RelayError> {
    if through <= after {
        return Ok(0);
    }
    Ok(c.prepare_cached(
        "SELECT COALESCE(SUM(length(body)), 0) FROM deliveries
         WHERE tunnel = ?1 AND seq > ?2 AND seq <= ?3",
    )?
    .query_row(params![tunnel, after, through], |r| r.get(0))?)
}

/// Drops deliveries `(floor, new_floor]` unacknowledged, and records them as an eviction run
/// for the engine to be told about.
fn evict_through(
    c: &Connection,
    tunnel: i64,
    floor: i64,
    new_floor: i64,
) -> Result<(), RelayError> {
    drop_through(c, tunnel, floor, new_floor)?;
    // Extend the newest run when this eviction continues it; else start a new run.
    let merged = c
        .prepare_cached("UPDATE evictions SET last_seq = ?3 WHERE tunnel = ?1 AND last_seq = ?2")?
        .execute(params![tunnel, floor, new_floor])?;
    if merged == 0 {
        c.prepare_cached(
            "INSERT INTO evictions (tunnel, first_seq, last_seq) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![tunnel, floor + 1, new_floor])?;
    }
    Ok(())
}

/// Deletes deliveries `(floor, new_floor]` and moves the floor and the byte count with them.
fn drop_through(c: &Connection, tunnel: i64, floor: i64, new_floor: i64) -> Result<(), RelayError> {
    let bytes = bytes_through(c, tunnel, floor, new_floor)?;
    c.prepare_cached("DELETE FROM deliveries WHERE tunnel = ?1 AND seq > ?2 AND seq <= ?3")?
        .execute(params![tunnel, floor, new_floor])?;
    c.prepare_cached(
        "UPDATE tunnels SET floor_seq = ?2, buffered_bytes = MAX(0, buffered_bytes - ?3)
         WHERE key = ?1",
    )?
    .execute(params![tunnel, new_floor, bytes])?;
    Ok(())
}

/// Applies the age bound to every tunnel that holds deliveries (a tunnel that receives
/// nothing new is never checked at insert). Returns the keys of tunnels that evicted.
fn sweep(c: &Connection, bounds: Bounds, now_ms: i64) -> Result<Vec<i64>, RelayError> {
    let cutoff = now_ms.saturating_sub(bounds.age_ms);
    let old: Vec<(i64, i64, i64, i64)> = c
        .prepare_cached(
            "SELECT t.key, t.head_seq, t.floor_seq, t.buffered_bytes FROM tunnels t
             WHERE t.head_seq > t.floor_seq
               AND t.key IN (SELECT DISTINCT tunnel FROM deliveries WHERE received_at_ms < ?1)",
        )?
        .query_map([cutoff], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut evicted = Vec::new();
    for (key, head, floor, buffered) in old {
        // The newest delivery is subject to the age bound too when nothing newer came.
        let newest_old: bool = c
            .prepare_cached(
                "SELECT received_at_ms < ?3 FROM deliveries WHERE tunnel = ?1 AND seq = ?2",
            )?
            .query_row(params![key, head, cutoff], |r| r.get(0))
            .optional()?
            .unwrap_or(false);
        let mut n = enforce_bounds(c, key, head, floor, buffered, bounds, now_ms)?;
        if newest_old {
            let floor_now: i64 =
                c.query_row("SELECT floor_seq FROM tunnels WHERE key = ?1", [key], |r| {
                    r.get(0)
                })?;
            if floor_now < head {
                evict_through(c, key, floor_now, head)?;
                n += 1;
            }
        }
        if n > 0 {
            evicted.push(key);
        }
    }
    Ok(evicted)
}

fn ack(c: &Connection, tunnel: i64, seq: u64) -> Result<(), RelayError> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    // One conditional update decides whether the floor moves; only then delete.
    let floor: Option<i64> = c
        .prepare_cached(
            "UPDATE tunnels SET floor_seq = MIN(?2, head_seq)
             WHERE key = ?1 AND floor_seq < MIN(?2, head_seq)
             RETURNING floor_seq",
        )?
        .query_row(params![tunnel, seq], |r| r.get(0))
        .optional()?;
    if let Some(floor) = floor {
        // The floor already moved; take the bytes of what goes.
        let bytes: i64 = c
            .prepare_cached(
                "SELECT COALESCE(SUM(length(body)), 0) FROM deliveries
                 WHERE tunnel = ?1 AND seq <= ?2",
            )?
            .query_row(params![tunnel, floor], |r| r.get(0))?;
        c.prepare_cached("DELETE FROM deliveries WHERE tunnel = ?1 AND seq <= ?2")?
            .execute(params![tunnel, floor])?;
        c.prepare_cached(
            "UPDATE tunnels SET buffered_bytes = MAX(0, buffered_bytes - ?2) WHERE key = ?1",
        )?
        .execute(params![tunnel, bytes])?;
    }
    Ok(())
}

fn evicted_seen(c: &Connection, tunnel: i64, last_seq: u64) -> Result<(), RelayError> {
    let last = i64::try_from(last_seq).unwrap_or(i64::MAX);
    c.prepare_cached("DELETE FROM evictions WHERE tunnel = ?1 AND last_seq <= ?2")?
        .execute(params![tunnel, last])?;
    c.prepare_cached(
        "UPDATE evictions SET first_seq = ?2 + 1
         WHERE tunnel = ?1 AND first_seq <= ?2 AND last_seq > ?2",
    )?
    .execute(params![tunnel, last])?;
    Ok(())
}

/// A pool of read-only connections.
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Result<Connection, RelayError> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }

    /// Runs `f` on a read connection, on this thread.
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, RelayError>,
    ) -> Result<T, RelayError> {
        let conn = self.take()?;
        let out = f(&conn);
        self.give_back(conn);
        out
    }

    /// Runs `f` on a read connection on the blocking pool.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, RelayError> + Send + 'static,
    ) -> Result<T, RelayError> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.read_blocking(f))
            .await
            .map_err(|e| RelayError::Io(std::io::Error::other(e)))?
    }
}

/// Deliveries of `tunnel` above `after`, oldest first: at most `limit` of them and, past the
/// first, no more than about `max_bytes` of body.
pub fn deliveries_after(
    c: &Connection,
    tunnel: i64,
    after: u64,
    limit: u64,
    max_bytes: usize,
) -> Result<Vec<StoredDelivery>, RelayError> {
    let mut stmt = c.prepare_cached(
        "SELECT seq, path, query, headers, body, received_at_ms, remote_addr
         FROM deliveries WHERE tunnel = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![tunnel, after, limit])?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(r) = rows.next()? {
        let headers: String = r.get(3)?;
        let body: Vec<u8> = r.get(4)?;
        bytes += body.len();
        out.push(StoredDelivery {
            seq: r.get::<_, i64>(0)? as u64,
            path: r.get(1)?,
            query: r.get(2)?,
            headers: serde_json::from_str(&headers).unwrap_or_default(),
            body,
            received_at_ms: r.get(5)?,
            remote_addr: r.get(6)?,
        });
        if bytes >= max_bytes {
            break;
        }
    }
    Ok(out)
}

/// The evictions of `tunnel` at or above `from_seq`, summed into one report.
pub fn eviction_report(
    c: &Connection,
    tunnel: i64,
    from_seq: u64,
) -> Result<Option<EvictionReport>, RelayError> {
    let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
    let (count, first, last): (i64, Option<i64>, Option<i64>) = c
        .prepare_cached(
            "SELECT COALESCE(SUM(last_seq - MAX(first_seq, ?2) + 1), 0),
                    MIN(MAX(first_seq, ?2)), MAX(last_seq)
             FROM evictions WHERE tunnel = ?1 AND last_seq >= ?2",
        )?
        .query_row(params![tunnel, from], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok(match (first, last) {
        (Some(first), Some(last)) if count > 0 => Some(EvictionReport {
            count: count as u64,
            first_seq: first as u64,
            last_seq: last as u64,
        }),
        _ => None,
    })
}

/// The counter bumped by every tunnel or allow-list change.
pub fn config_version(c: &Connection) -> Result<i64, RelayError> {
    Ok(
        c.query_row("SELECT config_version FROM meta WHERE id = 1", [], |r| {
            r.get(0)
        })?,
    )
}

/// Every tunnel with its allow lists.
pub fn load_tunnels(c: &Connection) -> Result<Vec<TunnelRow>, RelayError> {
    let mut tunnels = Vec::new();
    let mut stmt = c.prepare("SELECT key, public_id, secret_sha256 FROM tunnels ORDER BY key")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let key: i64 = r.get(0)?;
        let id: String = r.get(1)?;
        let digest: Vec<u8> = r.get(2)?;
        let (Some(id), Ok(digest)) = (TunnelId::parse(&id), <[u8; 32]>::try_from(digest)) else {
            tracing::warn!(key, "skipping a malformed tunnel row");
            continue;
        };
        tunnels.push(TunnelRow {
            key,
            id,
            digest: SecretDigest(digest),
            allowlists: Vec::new(),
        });
    }
    let mut stmt = c.prepare("SELECT tunnel, path, ip FROM allowlists ORDER BY tunnel, path")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let key: i64 = r.get(0)?;
        let path: String = r.get(1)?;
        let ip: String = r.get(2)?;
        let (Ok(pos), Ok(ip)) = (
            tunnels.binary_search_by_key(&key, |t| t.key),
            ip.parse::<IpAddr>(),
        ) else {
            continue;
        };
        let lists = &mut tunnels[pos].allowlists;
        match lists.iter_mut().find(|(p, _)| *p == path) {
            Some((_, ips)) => ips.push(ip),
            None => lists.push((path, vec![ip])),
        }
    }
    Ok(tunnels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::TunnelSecret;

    fn delivery(tunnel: i64) -> NewDelivery {
        NewDelivery {
            tunnel,
            path: "webhooks/x".into(),
            query: String::new(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"x".to_vec(),
            received_at_ms: 1,
            remote_addr: None,
        }
    }

    async fn setup(max_buffered: u64) -> (tempfile::TempDir, Writer, Readers, i64) {
        setup_bounded(Bounds {
            count: max_buffered,
            bytes: u64::MAX,
            age_ms: i64::MAX,
        })
        .await
    }

    fn sized(tunnel: i64, bytes: usize, received_at_ms: i64) -> NewDelivery {
        NewDelivery {
            body: vec![b'x'; bytes],
            received_at_ms,
            ..delivery(tunnel)
        }
    }

    fn kept(readers: &Readers, key: i64) -> (Vec<u64>, i64) {
        readers
            .read_blocking(|c| {
                let seqs = deliveries_after(c, key, 0, 100, usize::MAX)?
                    .iter()
                    .map(|d| d.seq)
                    .collect();
                let bytes = c.query_row(
                    "SELECT buffered_bytes FROM tunnels WHERE key = ?1",
                    [key],
                    |r| r.get(0),
                )?;
                Ok((seqs, bytes))
            })
            .expect("read")
    }

    #[tokio::test]
    async fn the_byte_bound_evicts_the_oldest_and_keeps_the_newest() {
        let (_dir, writer, readers, key) = setup_bounded(Bounds {
            count: 100,
            bytes: 250,
            age_ms: i64::MAX,
        })
        .await;
        assert!(
            !writer
                .insert(sized(key, 100, 1))
                .await
                .expect("stored")
                .evicted
        );
        assert!(
            !writer
                .insert(sized(key, 100, 1))
                .await
                .expect("stored")
                .evicted
        );
        let third = writer.insert(sized(key, 100, 1)).await.expect("stored");
        assert!(third.evicted, "300 bytes is over 250");
        assert_eq!(kept(&readers, key), (vec![2, 3], 200));
        // One delivery larger than the bound pushes out everything older, and stays.
        let big = writer.insert(sized(key, 400, 1)).await.expect("stored");
        assert!(big.evicted);
        assert_eq!(kept(&readers, key), (vec![4], 400));
        let report = readers
            .read_blocking(|c| eviction_report(c, key, 1))
            .expect("read");
        assert_eq!(
            report,
            Some(EvictionReport {
                count: 3,
                first_seq: 1,
                last_seq: 3
            }),
            "the engine is told of every one"
        );
        writer.ack(key, 4).await.expect("queued");
        writer.insert(sized(key, 10, 1)).await.expect("stored");
        assert_eq!(
            kept(&readers, key),
            (vec![5], 10),
            "an acknowledgement takes its bytes off the count"
        );
    }

    #[tokio::test]
    async fn the_age_bound_evicts_at_insert_and_in_the_sweep() {
        let (_dir, writer, readers, key) = setup_bounded(Bounds {
            count: 100,
            bytes: u64::MAX,
            age_ms: 1_000,
        })
        .await;
        writer.insert(sized(key, 1, 0)).await.expect("stored");
        writer.insert(sized(key, 1, 500)).await.expect("stored");
        writer.insert(sized(key, 1, 1_400)).await.expect("stored");
        assert_eq!(
            kept(&readers, key).0,
            vec![2, 3],
            "at 1,400 ms, 0 is too old"
        );
        assert_eq!(
            writer.sweep(1_450).await.expect("swept"),
            Vec::<i64>::new(),
            "nothing else is a second old yet"
        );
        assert_eq!(writer.sweep(2_000).await.expect("swept"), vec![key]);
        assert_eq!(kept(&readers, key).0, vec![3], "500 went in the sweep");
        assert_eq!(writer.sweep(3_000).await.expect("swept"), vec![key]);
        assert_eq!(
            kept(&readers, key),
            (vec![], 0),
            "the newest goes too once it is too old"
        );
        let report = readers
            .read_blocking(|c| eviction_report(c, key, 1))
            .expect("read");
        assert_eq!(
            report,
            Some(EvictionReport {
                count: 3,
                first_seq: 1,
                last_seq: 3
            })
        );
    }

    async fn setup_bounded(bounds: Bounds) -> (tempfile::TempDir, Writer, Readers, i64) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (writer, readers) = open(dir.path(), false, bounds).expect("opens");
        let id = TunnelId::parse("t1").expect("id");
        let key = writer
            .create_tunnel(id, TunnelSecret::new("s").digest(), 0)
            .await
            .expect("created");
        (dir, writer, readers, key)
    }

    #[tokio::test]
    async fn an_ack_beyond_the_head_does_not_swallow_later_deliveries() {
        let (_dir, writer, readers, key) = setup(100).await;
        writer.insert(delivery(key)).await.expect("stored");
        let attached = writer.attach(key, 50).await.expect("attached");
        assert_eq!(
            attached,
            Attached {
                head_seq: 1,
                floor_seq: 1
            },
            "the floor stops at the head"
        );
        let stored = writer.insert(delivery(key)).await.expect("stored");
        assert_eq!(stored.seq, 2);
        let rows = readers
            .read_blocking(|c| deliveries_after(c, key, 0, 10, usize::MAX))
            .expect("read");
        assert_eq!(rows.len(), 1, "seq 2 was not covered by the early ack");
        assert_eq!(rows[0].headers, delivery(key).headers);
    }

    #[tokio::test]
    async fn eviction_runs_merge_and_seen_reports_trim_them() {
        let (_dir, writer, readers, key) = setup(2).await;
        for _ in 0..5 {
            writer.insert(delivery(key)).await.expect("stored");
        }
        let report = |from| {
            readers
                .read_blocking(|c| eviction_report(c, key, from))
                .expect("read")
        };
        assert_eq!(
            report(1),
            Some(EvictionReport {
                count: 3,
                first_seq: 1,
                last_seq: 3
            }),
            "three single evictions in a row are one run"
        );
        // An ack moves the floor; the next eviction starts a separate run.
        writer.ack(key, 4).await.expect("queued");
        for _ in 0..3 {
            writer.insert(delivery(key)).await.expect("stored");
        }
        assert_eq!(
            report(1),
            Some(EvictionReport {
                count: 5,
                first_seq: 1,
                last_seq: 6
            }),
            "runs 1..=3 and 5..=6; 4 was acknowledged, not evicted"
        );
        assert_eq!(
            report(4),
            Some(EvictionReport {
                count: 2,
                first_seq: 5,
                last_seq: 6
            })
        );
        writer.evicted_seen(key, 2).await.expect("queued");
        writer
            .attach(key, 0)
            .await
            .expect("a round trip through the writer");
        assert_eq!(
            report(1),
            Some(EvictionReport {
                count: 3,
                first_seq: 3,
                last_seq: 6
            }),
            "the seen part of a run is trimmed, the rest stays"
        );
    }
}
