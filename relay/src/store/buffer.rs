//! Writes to the tunnels' buffers of deliveries: storing, acknowledging, and keeping each
//! tunnel within its bounds by evicting the oldest. All of it runs on the writer thread,
//! inside one command's savepoint.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Bounds, NewDelivery, Stored};
use crate::RelayError;

pub(super) fn insert_delivery(
    c: &Connection,
    d: &NewDelivery,
    bounds: Bounds,
) -> Result<Stored, RelayError> {
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
pub(super) fn sweep(c: &Connection, bounds: Bounds, now_ms: i64) -> Result<Vec<i64>, RelayError> {
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

pub(super) fn ack(c: &Connection, tunnel: i64, seq: u64) -> Result<(), RelayError> {
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

pub(super) fn evicted_seen(c: &Connection, tunnel: i64, last_seq: u64) -> Result<(), RelayError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        Attached, EvictionReport, Readers, Writer, deliveries_after, eviction_report, open,
    };
    use crate::tunnel::{TunnelId, TunnelSecret};

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
