//! The writer thread: the only writing connection, fed by a bounded queue of commands.
//!
//! It drains what is queued, applies each command in its own savepoint inside one
//! transaction, commits, and only then answers the waiters.

use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::buffer::{ack, evicted_seen, insert_delivery, sweep};
use super::tunnels::bump_config;
use super::{Attached, Bounds, NewDelivery, Stored};
use crate::RelayError;
use crate::tunnel::{SecretDigest, TunnelId};

/// Commands queued for the writer before senders wait (backpressure on the HTTP side).
pub(super) const WRITER_QUEUE: usize = 8_192;
/// Commands applied in one transaction at most.
const MAX_BATCH: usize = 2_048;

type Reply<T> = oneshot::Sender<Result<T, RelayError>>;

pub(super) enum Command {
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
    pub(super) tx: mpsc::Sender<Command>,
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

pub(super) fn run_writer(mut conn: Connection, mut rx: mpsc::Receiver<Command>, bounds: Bounds) {
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
