//! What both of Stagehand's SQLite files (the engine's state, the relay's queue of webhooks)
//! need from WAL mode: switching to it even while another connection is closing the file, and
//! checkpoints on a thread and connection of their own so that no commit waits on an fsync.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Pages in the WAL past which the writing connection checkpoints by itself: only reached
/// when the checkpoint thread cannot keep up.
pub const AUTOCHECKPOINT_BACKSTOP: i64 = 16_000;
/// After a checkpoint, a WAL file larger than this is truncated back to it (bytes).
pub const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;
/// How often the checkpoint thread looks for new WAL content.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How long `set_wal` retries a busy file (the busy timeout the stores use).
const BUSY_FOR: Duration = Duration::from_secs(5);

/// Why the checkpoint thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointerError {
    /// Its connection did not open.
    #[error("cannot open the database for checkpoints: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The thread did not start.
    #[error("cannot start the checkpoint thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Puts the writing connection's file in WAL mode and hands checkpoints to [`Checkpointer`]:
/// the connection checkpoints by itself only past [`AUTOCHECKPOINT_BACKSTOP`] pages, and
/// truncates the WAL back to [`WAL_SIZE_LIMIT`].
///
/// When another connection is closing the file at that moment (the last one out checkpoints
/// and removes the WAL, as a second process or a checkpoint thread does), SQLite answers BUSY
/// to the mode change at once instead of waiting on the busy handler, so it is retried for as
/// long as the busy timeout would have waited.
pub fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_FOR;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => break other?,
        }
    }
    conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_BACKSTOP)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
}

/// Copies the WAL back into the database file from a thread and connection of its own.
///
/// SQLite's automatic checkpoint runs inside whichever commit crosses the threshold, and a
/// checkpoint ends in an fsync: a few milliseconds added to one unlucky webhook or alert. A
/// PASSIVE checkpoint from another connection never blocks the writer, so commits stay at
/// their usual cost and the fsync happens here. Dropping the value wakes the thread for a last
/// checkpoint, after which it ends.
#[derive(Debug)]
pub struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` on a thread called `thread_name`.
    pub fn start(path: &Path, thread_name: &str) -> Result<Self, CheckpointerError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_FOR)?;
        let wal = {
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            PathBuf::from(wal)
        };
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || {
                let modified = || std::fs::metadata(&wal).and_then(|m| m.modified()).ok();
                let mut seen = modified();
                loop {
                    let last = !matches!(
                        stopped.recv_timeout(CHECKPOINT_EVERY),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    );
                    let now = modified();
                    if now != seen || last {
                        seen = now;
                        if let Err(e) =
                            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        {
                            tracing::debug!(error = %e, "WAL checkpoint did not run");
                        }
                    }
                    if last {
                        return;
                    }
                }
            })?;
        Ok(Self { _stop: stop })
    }
}
