//! The streamer's list of recorded deliveries, accepted and refused.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::store::StoreError;
use crate::{Engine, EngineError};

/// A recorded delivery, as the streamer's list shows it (no secrets, no body, no query).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// Row id.
    pub id: i64,
    /// When it arrived (RFC 3339).
    pub received_at: String,
    /// `tradingview`, `custom:{name}` or `unknown`.
    pub source: String,
    /// `local` or `relay`.
    pub via: String,
    /// The relay tunnel, for relay deliveries.
    pub tunnel_id: Option<String>,
    /// The relay sequence, for relay deliveries.
    pub seq: Option<i64>,
    /// `accepted` or `refused`.
    pub status: String,
    /// The refusal code.
    pub reason_code: Option<String>,
    /// The refusal message.
    pub reason: Option<String>,
    /// The alert shown, for accepted deliveries.
    pub alert_id: Option<String>,
    /// Whether the alert has been pushed to the overlays.
    pub announced: bool,
    /// Relayed too late to be played (see `webhooks.stale_after_seconds`).
    pub stale: bool,
}

impl Engine {
    /// Recent deliveries, newest first (at most 500).
    pub async fn webhook_deliveries(
        &self,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, EngineError> {
        let limit = limit.clamp(1, 500);
        Ok(self
            .store()
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, received_ms, source, via, tunnel_id, seq, status, reason_code,
                            reason, alert_id, announced, stale
                     FROM webhook_deliveries ORDER BY id DESC LIMIT ?1",
                )?;
                let rows = stmt.query_map([limit], |r| {
                    Ok(WebhookDelivery {
                        id: r.get(0)?,
                        received_at: rfc3339(r.get(1)?),
                        source: r.get(2)?,
                        via: r.get(3)?,
                        tunnel_id: r.get(4)?,
                        seq: r.get(5)?,
                        status: r.get(6)?,
                        reason_code: r.get(7)?,
                        reason: r.get(8)?,
                        alert_id: r.get(9)?,
                        announced: r.get(10)?,
                        stale: r.get(11)?,
                    })
                })?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::from)
            })
            .await?)
    }
}
