//! Receiving webhooks: each one is prepared (authenticated, validated, turned into the row to
//! write), committed (the row, its idempotency key and the relay cursor in one transaction) and
//! then finished (shown, logged, counted). A run of relayed webhooks shares one commit.

use rusqlite::{OptionalExtension, params};

use super::{
    Announcement, Checks, MAX_BODY_BYTES, RefusalCode, Source, Verified, WebhookOutcome,
    WebhookRefusal, WebhookRequest, WebhookVia,
};
use crate::store::StoreError;
use crate::{Engine, EngineError};

/// How many refused deliveries are kept (accepted ones are kept for the idempotency period).
const REFUSED_KEPT: i64 = 1000;

/// The row to commit.
struct Record {
    now: i64,
    source: Source,
    via: &'static str,
    relay: Option<(String, i64)>,
    key: Option<String>,
    verdict: Result<Announcement, WebhookRefusal>,
    remote_addr: Option<String>,
    key_ttl_ms: i64,
    /// Relayed too late (`webhooks.stale_after_seconds`).
    stale: bool,
    /// Stale and not to be played (`webhooks.play_stale` off): written as announced, so no
    /// restart plays it either.
    hold: bool,
}

/// A webhook ready to commit, or one the relay cursor shows was handled already.
enum Prepared {
    Record(Box<Record>),
    Duplicate(Source),
}

enum Committed {
    Duplicate,
    Stored { id: i64, alert_id: Option<String> },
}

/// Writes one webhook inside the caller's transaction. A duplicate writes nothing, except that
/// a relay duplicate by key still moves the cursor: it was handled.
fn commit(tx: &rusqlite::Transaction<'_>, record: &Record) -> Result<Committed, StoreError> {
    if let Some((tunnel, seq)) = &record.relay {
        let last: i64 = tx
            .query_row(
                "SELECT last_seq FROM relay_cursor WHERE tunnel_id = ?1",
                [tunnel],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        if *seq <= last {
            return Ok(Committed::Duplicate);
        }
        tx.execute(
            "INSERT INTO relay_cursor (tunnel_id, last_seq) VALUES (?1, ?2)
             ON CONFLICT (tunnel_id) DO UPDATE SET last_seq = excluded.last_seq",
            params![tunnel, seq],
        )?;
    }
    if let Some(key) = &record.key {
        tx.execute(
            "DELETE FROM webhook_idempotency_keys WHERE key = ?1 AND created_ms <= ?2",
            params![key, record.now - record.key_ttl_ms],
        )?;
        let seen: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM webhook_idempotency_keys WHERE key = ?1)",
            [key],
            |r| r.get(0),
        )?;
        if seen {
            return Ok(Committed::Duplicate);
        }
    }
    let (tunnel, seq) = record.relay.clone().unzip();
    let (status, code, reason, announcement) = match &record.verdict {
        Ok(a) => (
            "accepted",
            None,
            None,
            Some(serde_json::to_string(a).map_err(|e| StoreError::Task(e.to_string()))?),
        ),
        Err(r) => (
            "refused",
            Some(r.code.as_str()),
            Some(r.message.clone()),
            None,
        ),
    };
    tx.execute(
        "INSERT INTO webhook_deliveries
         (received_ms, source, via, tunnel_id, seq, status, reason_code, reason, announcement,
          remote_addr, stale, announced)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            record.now,
            record.source.label(),
            record.via,
            tunnel,
            seq,
            status,
            code,
            reason,
            announcement,
            record.remote_addr,
            record.stale,
            record.hold,
        ],
    )?;
    let id = tx.last_insert_rowid();
    let alert_id = record.verdict.is_ok().then(|| format!("al_wh_{id}"));
    if let Some(alert) = &alert_id {
        tx.execute(
            "UPDATE webhook_deliveries SET alert_id = ?2 WHERE id = ?1",
            params![id, alert],
        )?;
        if let Some(key) = &record.key {
            tx.execute(
                "INSERT INTO webhook_idempotency_keys (key, delivery_id, created_ms)
                 VALUES (?1, ?2, ?3)",
                params![key, id, record.now],
            )?;
        }
    } else {
        // Refusals are cheap to send; keep only the most recent ones.
        tx.execute(
            "DELETE FROM webhook_deliveries WHERE status = 'refused' AND id <=
             (SELECT id FROM webhook_deliveries WHERE status = 'refused'
              ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            [REFUSED_KEPT],
        )?;
    }
    Ok(Committed::Stored { id, alert_id })
}

impl Engine {
    /// Receives one webhook from any door: authenticates, validates, records and shows it.
    ///
    /// `Ok` for every webhook that was handled, including refused ones (recorded, with a
    /// reason); `Err` only when it could not be recorded (then nothing was committed, and a
    /// relay delivery must not be acknowledged).
    pub async fn webhook_receive(
        &self,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, EngineError> {
        self.receive(request, true).await
    }

    /// Test hook: records a webhook exactly like [`Engine::webhook_receive`] but does not
    /// announce it, as if the engine stopped between the commit and the push.
    #[doc(hidden)]
    pub async fn webhook_receive_unannounced(
        &self,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, EngineError> {
        self.receive(request, false).await
    }

    async fn receive(
        &self,
        request: WebhookRequest,
        announce: bool,
    ) -> Result<WebhookOutcome, EngineError> {
        let now = self.now_ms();
        let checks = Checks::default();
        let cursor = match &request.via {
            WebhookVia::Local => None,
            WebhookVia::Relay { tunnel_id, .. } => Some(self.relay_cursor(tunnel_id).await?),
        };
        let prepared = self.prepare(request, now, cursor, &checks).await?;
        let Prepared::Record(record) = prepared else {
            return self.finish(prepared, None, announce).await;
        };
        let committed = self
            .store()
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let committed = commit(&tx, &record)?;
                tx.commit()?;
                Ok((record, committed))
            })
            .await?;
        let (record, committed) = committed;
        let stored = matches!(committed, Committed::Stored { .. });
        let outcome = self
            .finish(Prepared::Record(record), Some(committed), announce)
            .await;
        if stored {
            self.publish_deliveries(1);
        }
        outcome
    }

    /// Announces that `count` deliveries were stored (`webhook.deliveries`, which the panel's
    /// lists follow): once per commit, not per webhook, so a burst is one event.
    fn publish_deliveries(&self, count: usize) {
        self.events()
            .publish("webhook.deliveries", serde_json::json!({ "count": count }));
    }

    /// Records a run of relayed webhooks from one tunnel, in sequence order, in one
    /// transaction (cursor included), then shows them: what [`Engine::webhook_receive`] does
    /// for each, with one commit for the run. Returns the highest sequence handled, which the
    /// caller acknowledges. On `Err` nothing of the run was committed.
    pub(crate) async fn webhook_receive_relayed(
        &self,
        tunnel_id: &str,
        requests: Vec<WebhookRequest>,
    ) -> Result<u64, EngineError> {
        let now = self.now_ms();
        let checks = Checks::default();
        let cursor = self.relay_cursor(tunnel_id).await?;
        let mut highest = u64::try_from(cursor).unwrap_or(0);
        let mut prepared = Vec::with_capacity(requests.len());
        for request in requests {
            if let WebhookVia::Relay { seq, .. } = &request.via {
                highest = highest.max(*seq);
            }
            prepared.push(self.prepare(request, now, Some(cursor), &checks).await?);
        }
        let committed = self
            .store()
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut committed = Vec::with_capacity(prepared.len());
                for p in &prepared {
                    committed.push(match p {
                        Prepared::Record(record) => Some(commit(&tx, record)?),
                        Prepared::Duplicate(_) => None,
                    });
                }
                tx.commit()?;
                Ok((prepared, committed))
            })
            .await?;
        let stored = committed
            .1
            .iter()
            .filter(|c| matches!(c, Some(Committed::Stored { .. })))
            .count();
        for (p, c) in committed.0.into_iter().zip(committed.1) {
            let outcome = self.finish(p, c, true).await?;
            tracing::debug!(?outcome, "relayed webhook");
        }
        if stored > 0 {
            self.publish_deliveries(stored);
        }
        Ok(highest)
    }

    /// Authenticates and validates one webhook and turns it into the row to commit, or into a
    /// duplicate when the relay cursor (`cursor`, for relayed ones) is already past it.
    async fn prepare(
        &self,
        request: WebhookRequest,
        now: i64,
        cursor: Option<i64>,
        checks: &Checks,
    ) -> Result<Prepared, EngineError> {
        let source = Source::of(&request.path);
        let relay = match &request.via {
            WebhookVia::Local => None,
            WebhookVia::Relay { tunnel_id, seq, .. } => {
                Some((tunnel_id.clone(), i64::try_from(*seq).unwrap_or(i64::MAX)))
            }
        };
        if let (Some((_, seq)), Some(cursor)) = (&relay, cursor)
            && *seq <= cursor
        {
            return Ok(Prepared::Duplicate(source));
        }
        let verdict = self.webhook_check(&source, &request, now, checks).await?;
        let key = match (&verdict, &request.via) {
            (Err(_), _) => None,
            (Ok(v), via) => v.idempotency_key.clone().or_else(|| match via {
                WebhookVia::Relay { delivery_id, .. } => Some(delivery_id.clone()),
                WebhookVia::Local => None,
            }),
        }
        .map(|k| format!("{}\n{k}", source.label()));
        let stale = match &request.via {
            WebhookVia::Relay { received_at_ms, .. } => {
                let limit = self.config().webhooks.stale_after_seconds;
                now.saturating_sub(*received_at_ms)
                    > i64::try_from(limit.saturating_mul(1000)).unwrap_or(i64::MAX)
            }
            WebhookVia::Local => false,
        };
        let hold = stale && verdict.is_ok() && !self.config().webhooks.play_stale;
        Ok(Prepared::Record(Box::new(Record {
            now,
            source,
            via: if relay.is_some() { "relay" } else { "local" },
            relay,
            key,
            verdict: verdict.map(|v| v.announcement),
            remote_addr: request.remote_addr,
            key_ttl_ms: self.idempotency_ttl_ms(),
            stale,
            hold,
        })))
    }

    /// After the commit: shows an accepted webhook (when `announce`), logs a refusal, counts.
    async fn finish(
        &self,
        prepared: Prepared,
        committed: Option<Committed>,
        announce: bool,
    ) -> Result<WebhookOutcome, EngineError> {
        let (record, committed) = match (prepared, committed) {
            (Prepared::Duplicate(source), _) => {
                self.count(&source, "duplicate");
                return Ok(WebhookOutcome::Duplicate);
            }
            (Prepared::Record(record), Some(committed)) => (record, committed),
            (Prepared::Record(_), None) => {
                return Err(EngineError::Task("a webhook was not committed".into()));
            }
        };
        let outcome = match committed {
            Committed::Duplicate => WebhookOutcome::Duplicate,
            Committed::Stored { id, alert_id } => match (record.verdict, alert_id) {
                (Ok(announcement), Some(alert_id)) => {
                    if record.hold {
                        tracing::info!(
                            delivery_id = id,
                            "a relayed webhook arrived too late to play; listed as stale"
                        );
                    } else if announce {
                        self.announce(id, &alert_id, &announcement).await?;
                    }
                    WebhookOutcome::Accepted {
                        delivery_id: id,
                        alert_id,
                        stale: record.stale,
                    }
                }
                (Err(refusal), _) => WebhookOutcome::Refused {
                    delivery_id: id,
                    refusal,
                },
                (Ok(_), None) => {
                    return Err(EngineError::Task(
                        "an accepted delivery has no alert".into(),
                    ));
                }
            },
        };
        if let WebhookOutcome::Refused { refusal, .. } = &outcome {
            tracing::info!(
                source = %record.source.label(),
                code = refusal.code.as_str(),
                "refused a webhook"
            );
        }
        self.count(&record.source, outcome.status());
        Ok(outcome)
    }

    fn count(&self, source: &Source, status: &str) {
        self.metrics().counter_add(
            "stagehand_webhooks_total",
            "Webhooks received, by source and outcome (accepted, duplicate, refused).",
            &[("source", source.metric()), ("status", status)],
            1,
        );
    }

    pub(super) fn idempotency_ttl_ms(&self) -> i64 {
        i64::try_from(self.config().webhooks.idempotency_hours)
            .unwrap_or(72)
            .saturating_mul(3_600_000)
    }

    /// Checks everything about a webhook that can refuse it.
    async fn webhook_check(
        &self,
        source: &Source,
        request: &WebhookRequest,
        now: i64,
        checks: &Checks,
    ) -> Result<Result<Verified, WebhookRefusal>, EngineError> {
        if matches!(source, Source::Unknown) {
            return Ok(Err(WebhookRefusal::new(
                RefusalCode::UnknownWebhook,
                "there is no webhook endpoint at this path",
            )));
        }
        // Webhook senders are servers; a request with an Origin comes from a web page, which
        // could otherwise make the streamer's browser post to localhost.
        if request.header("origin").is_some() {
            return Ok(Err(WebhookRefusal::new(
                RefusalCode::OriginNotAllowed,
                "webhooks are not accepted from web pages",
            )));
        }
        if request.body.len() > MAX_BODY_BYTES {
            return Ok(Err(WebhookRefusal::new(
                RefusalCode::PayloadTooLarge,
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )));
        }
        match source {
            Source::TradingView => self.tradingview_check(request, now, checks).await,
            Source::Custom(name) => self.custom_check(name, request, now).await,
            Source::Unknown => Err(EngineError::Task("unreachable: unknown source".into())),
        }
    }

    async fn relay_cursor(&self, tunnel_id: &str) -> Result<i64, EngineError> {
        let tunnel = tunnel_id.to_owned();
        Ok(self
            .store()
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT last_seq FROM relay_cursor WHERE tunnel_id = ?1",
                        [tunnel],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()?
                    .unwrap_or(0))
            })
            .await?)
    }

    /// The highest relay sequence committed for a tunnel (0 when none): what the relay link
    /// sends on connect, and the sequence it acknowledges.
    pub async fn relay_last_seq(&self, tunnel_id: &str) -> Result<u64, EngineError> {
        Ok(u64::try_from(self.relay_cursor(tunnel_id).await?).unwrap_or(0))
    }
}
