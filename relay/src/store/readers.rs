//! The read side: a small pool of read-only connections, and the queries the engine links
//! run on it. WAL lets them read while the writer writes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, params};

use super::{EvictionReport, StoredDelivery};
use crate::RelayError;

/// Idle read connections kept.
const MAX_IDLE_READERS: usize = 8;

/// A pool of read-only connections.
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Self {
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
