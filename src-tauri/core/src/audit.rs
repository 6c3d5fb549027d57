//! The audit log: who did what, when, from where, and whether it was allowed.
//!
//! Every capability that changes something on the streamer's behalf, or refuses to, writes an
//! entry. Entries never hold secret values: callers put names, ids and outcomes in `detail`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::params;
use serde::Serialize;

use crate::clock::{Clock, rfc3339};
use crate::events::EventBus;
use crate::store::{Store, StoreError};

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was allowed and done.
    Ok,
    /// It was refused (bad credentials, out of scope).
    Denied,
    /// It was allowed but failed.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// One entry to record.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Who: `streamer`, `moderator:<session>`, `system`, `anonymous`.
    pub actor: String,
    /// What: dotted name, e.g. `auth.login`.
    pub action: String,
    /// On what, when there is a target.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Client address, when known.
    pub client: Option<String>,
    /// Extra structured detail (never secrets).
    pub detail: serde_json::Value,
}

impl AuditEntry {
    /// An entry with no target, client or detail.
    pub fn new(actor: &str, action: &str, outcome: Outcome) -> Self {
        Self {
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: None,
            outcome,
            client: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Sets the client address.
    pub fn client(mut self, client: Option<String>) -> Self {
        self.client = client;
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// A recorded entry, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Increasing id; pass as `before` to page back.
    pub id: i64,
    /// When (RFC 3339).
    pub ts: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: String,
    /// From where.
    pub client: Option<String>,
    /// Extra detail.
    pub detail: serde_json::Value,
}

/// Most old entries deleted with one new one.
const PRUNE_BATCH: usize = 5000;

/// Largest page `audit_list` returns.
pub const MAX_PAGE: u32 = 500;

/// The audit log: writes entries (pruning those past retention as it goes) and lists them.
#[derive(Clone)]
pub struct Audit {
    store: Store,
    clock: Arc<dyn Clock>,
    events: EventBus,
    retention_days: u32,
    /// When the log was last pruned (0: not yet in this process).
    pruned_ms: Arc<AtomicI64>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("retention_days", &self.retention_days)
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// The audit log in `store`, keeping entries for `retention_days`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, events: EventBus, retention_days: u32) -> Self {
        Self {
            store,
            clock,
            events,
            retention_days,
            pruned_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Records an audit entry and announces it on the event bus.
    pub async fn record(&self, entry: AuditEntry) -> Result<i64, StoreError> {
        let ts_ms = self.clock.now_ms();
        let detail = entry.detail.to_string();
        let e = entry.clone();
        let prune_before = self.audit_prune_due(ts_ms);
        let id = self
            .store
            .call(move |conn| {
                // At most PRUNE_BATCH rows at a time, so a long backlog never holds the one
                // writer for long; a full batch asks for another on the next write. A failed
                // prune is logged and the entry still written.
                let pruned = prune_before.map(|cutoff| {
                    conn.execute(
                        "DELETE FROM audit_log WHERE id IN
                         (SELECT id FROM audit_log WHERE ts_ms < ?1 LIMIT ?2)",
                        params![cutoff, PRUNE_BATCH],
                    )
                });
                match &pruned {
                    Some(Ok(n)) if *n > 0 => {
                        tracing::info!(entries = n, "deleted audit entries past retention");
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "could not delete old audit entries");
                    }
                    _ => {}
                }
                let more = matches!(pruned, Some(Ok(n)) if n >= PRUNE_BATCH);
                conn.execute(
                    "INSERT INTO audit_log (ts_ms, actor, action, target, outcome, client, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        ts_ms,
                        e.actor,
                        e.action,
                        e.target,
                        e.outcome.as_str(),
                        e.client,
                        detail
                    ],
                )?;
                Ok((conn.last_insert_rowid(), more))
            })
            .await?;
        let (id, more) = id;
        if more {
            self.pruned_ms.store(0, Ordering::Relaxed);
        }
        self.events.publish(
            "audit.recorded",
            serde_json::json!({
                "id": id,
                "actor": entry.actor,
                "action": entry.action,
                "outcome": entry.outcome,
            }),
        );
        Ok(id)
    }

    /// The cutoff to prune before when the last pruning was an hour ago or more (or never, in
    /// this process); `None` otherwise.
    fn audit_prune_due(&self, now_ms: i64) -> Option<i64> {
        const EVERY_MS: i64 = 3_600_000;
        let last = &self.pruned_ms;
        let before = last.load(Ordering::Relaxed);
        if before != 0 && now_ms - before < EVERY_MS {
            return None;
        }
        last.compare_exchange(before, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        let days = i64::from(self.retention_days);
        Some(now_ms - days * 86_400_000)
    }

    /// Lists entries, newest first, at most `limit` (capped at [`MAX_PAGE`]), older than
    /// `before` when given.
    pub async fn list(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let before = before.unwrap_or(i64::MAX);
        self.store
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, ts_ms, actor, action, target, outcome, client, detail
                     FROM audit_log WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![before, limit], |r| {
                    let detail: String = r.get(7)?;
                    Ok(AuditRecord {
                        id: r.get(0)?,
                        ts: rfc3339(r.get(1)?),
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        target: r.get(4)?,
                        outcome: r.get(5)?,
                        client: r.get(6)?,
                        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                    })
                })?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::from)
            })
            .await
    }
}
