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

mod buffer;
mod migrations;
mod readers;
mod tunnels;
mod writer;

use std::path::Path;
use std::thread;

use rusqlite::Connection;
use tokio::sync::mpsc;

use crate::RelayError;

use self::migrations::migrate;
pub use self::readers::{Readers, deliveries_after, eviction_report};
pub use self::tunnels::{TunnelRow, config_version, load_tunnels};
pub use self::writer::Writer;
use self::writer::{WRITER_QUEUE, run_writer};

/// The database file inside the data directory.
pub const DB_FILE: &str = "relay.sqlite3";

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
