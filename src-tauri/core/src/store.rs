//! The SQLite store: one file in the data directory, WAL, append-only migrations.
//!
//! There is one connection, used by one caller at a time, and every use runs on tokio's
//! blocking pool through [`Store::call`], so SQLite never blocks the async runtime. Migrations
//! are numbered SQL files compiled into the binary; each runs once, in its own transaction,
//! and is recorded in `schema_migrations`. They are never edited once released: a change is a
//! new file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use stagehand_sqlite::{Checkpointer, CheckpointerError, set_wal};

/// The migrations, in order. Append only.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "overlays",
        include_str!("../migrations/0002_overlays.sql"),
    ),
    (3, "media", include_str!("../migrations/0003_media.sql")),
    (
        4,
        "moderators",
        include_str!("../migrations/0004_moderators.sql"),
    ),
    (
        5,
        "webhooks",
        include_str!("../migrations/0005_webhooks.sql"),
    ),
    (
        6,
        "accounts",
        include_str!("../migrations/0006_accounts.sql"),
    ),
    (
        7,
        "webhook_stale",
        include_str!("../migrations/0007_webhook_stale.sql"),
    ),
    (
        8,
        "moderator_via",
        include_str!("../migrations/0008_moderator_via.sql"),
    ),
];

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The integrity check found damage.
    #[error("the database {path} failed its integrity check: {detail}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The database was written by a newer Stagehand.
    #[error(
        "the database {path} has schema version {found}, newer than this build knows \
         ({known}); run a newer Stagehand"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Version in the file.
        found: i64,
        /// Latest version this build knows.
        known: i64,
    },
    /// The data directory could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The blocking task running the query panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    _checkpointer: Arc<Checkpointer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database, checks it and runs pending migrations.
    /// Blocking: call from `spawn_blocking` or before the runtime starts.
    pub fn open_blocking(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // Checkpoints run on their own thread (see `Checkpointer`); the writer does one itself
        // only if that thread falls far behind.
        set_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: check,
            });
        }
        migrate(&mut conn, path)?;
        let checkpointer = Checkpointer::start(path, "store-checkpoint").map_err(|e| match e {
            CheckpointerError::Sqlite(e) => StoreError::Sqlite(e),
            CheckpointerError::Thread(source) => StoreError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
            _checkpointer: Arc::new(checkpointer),
        })
    }

    /// Opens the database on the blocking pool.
    pub async fn open(path: PathBuf) -> Result<Self, StoreError> {
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic inside a closure leaves no transaction open (rusqlite rolls back on
            // drop), so the connection is still sound and the poison can be cleared.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with the connection on the current thread (for blocking contexts only).
    pub fn call_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// The applied schema version.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.call(|conn| current_version(conn)).await
    }
}

fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_ms INTEGER NOT NULL
         ) STRICT;",
    )?;
    let found = current_version(conn)?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        // IMMEDIATE takes the write lock first, and the version is read again under it, so two
        // processes starting at once (the desktop app and `stagehand token`) cannot both apply
        // the same migration.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if current_version(&tx)? >= *version {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_ms)
             VALUES (?1, ?2, CAST(unixepoch('subsec') * 1000 AS INTEGER))",
            rusqlite::params![version, name],
        )?;
        tx.commit()?;
        tracing::info!(version, name, "applied database migration");
    }
    Ok(())
}

/// Reads a value from the `meta` table.
pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Reads a `meta` value, inserting `make()` first if there is none (atomically).
pub fn meta_get_or_insert(
    conn: &Connection,
    key: &str,
    make: impl FnOnce() -> String,
) -> Result<String, StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        rusqlite::params![key, make()],
    )?;
    Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_reaches_the_database_file_without_a_commit_paying_for_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.db");
        let store = Store::open_blocking(&path).expect("opens");
        let before = std::fs::metadata(&path).expect("db file").len();
        // About 2 MB: far below the writer's own checkpoint threshold (16,000 pages).
        store
            .call_blocking(|c| {
                let tx = c.transaction()?;
                for i in 0..512 {
                    tx.execute(
                        "INSERT INTO meta VALUES (?1, ?2)",
                        rusqlite::params![format!("k{i}"), "x".repeat(4000)],
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
            .expect("insert");
        let wal_pages: i64 = store
            .call_blocking(|c| Ok(c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?))
            .expect("pragma");
        assert_eq!(wal_pages, stagehand_sqlite::AUTOCHECKPOINT_BACKSTOP);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let size = std::fs::metadata(&path).expect("db file").len();
            if size >= before + 2_000_000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the checkpoint thread copied the WAL into the file ({before} -> {size} bytes)"
            );
            std::thread::sleep(Duration::from_millis(50)); // poll: the thread runs every 250 ms
        }
    }

    #[test]
    fn migrations_run_once_and_reopen_is_a_no_op() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.db");
        let store = Store::open_blocking(&path).expect("first open migrates");
        store
            .call_blocking(|c| Ok(c.execute("INSERT INTO meta VALUES ('k', 'v')", [])?))
            .expect("insert");
        drop(store);
        let store = Store::open_blocking(&path).expect("second open runs nothing");
        let (count, value): (i64, Option<String>) = store
            .call_blocking(|c| {
                let n = c.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))?;
                Ok((n, meta_get(c, "k")?))
            })
            .expect("query");
        assert_eq!(
            count,
            MIGRATIONS.len() as i64,
            "each migration recorded exactly once"
        );
        assert_eq!(value.as_deref(), Some("v"), "data survives reopening");
        let mode: String = store
            .call_blocking(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
            .expect("pragma");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn two_processes_migrating_at_once_both_succeed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.db");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || Store::open_blocking(&path).map(|_| ()))
            })
            .collect();
        for h in handles {
            h.join()
                .expect("no panic")
                .expect("every concurrent open succeeds");
        }
        let store = Store::open_blocking(&path).expect("open");
        let count: i64 = store
            .call_blocking(|c| {
                Ok(c.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))?)
            })
            .expect("count");
        assert_eq!(count, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_database_from_the_future_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.db");
        let store = Store::open_blocking(&path).expect("open");
        store
            .call_blocking(|c| {
                Ok(c.execute(
                    "INSERT INTO schema_migrations VALUES (9999, 'future', 0)",
                    [],
                )?)
            })
            .expect("insert");
        drop(store);
        let err = Store::open_blocking(&path).expect_err("newer schema");
        assert!(
            matches!(err, StoreError::TooNew { found: 9999, .. }),
            "{err}"
        );
    }

    #[test]
    fn meta_get_or_insert_keeps_the_first_value() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_blocking(&dir.path().join("s.db")).expect("open");
        let (a, b) = store
            .call_blocking(|c| {
                Ok((
                    meta_get_or_insert(c, "instance", || "first".into())?,
                    meta_get_or_insert(c, "instance", || "second".into())?,
                ))
            })
            .expect("meta");
        assert_eq!((a.as_str(), b.as_str()), ("first", "first"));
    }
}
