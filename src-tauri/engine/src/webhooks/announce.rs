//! Showing accepted webhooks on the overlays, and showing again after a restart those that
//! were committed but not yet seen by a page: they are held for pages that connect soon after.

use std::sync::Arc;

use super::Announcement;
use crate::overlays::{AlertRequest, ChartPoint, ChartUpdate, OverlayError};
use crate::{Engine, EngineError};

/// Messages held for pages that connect soon after a restart.
#[derive(Debug, Default)]
pub(crate) struct Backlog(Vec<Held>);

#[derive(Debug)]
struct Held {
    until_ms: i64,
    overlay_id: Option<String>,
    messages: Vec<Arc<str>>,
}

impl Engine {
    /// Pushes a committed delivery's alert (and chart point) and marks it announced.
    /// Returns the messages pushed.
    pub(super) async fn announce(
        &self,
        delivery_id: i64,
        alert_id: &str,
        announcement: &Announcement,
    ) -> Result<Vec<Arc<str>>, EngineError> {
        let mut messages = Vec::new();
        let alert = AlertRequest {
            overlay_id: announcement.overlay_id.clone(),
            kind: announcement.kind.clone(),
            title: announcement.title.clone(),
            message: announcement.message.clone(),
            image: None,
            sound: None,
            duration_ms: None,
        };
        match self
            .overlays()
            .show_alert_with_id(alert_id.to_owned(), alert)
            .await
        {
            Ok((_, message)) => messages.push(message),
            // The target overlay was deleted since: nothing to show, and nothing to retry.
            Err(EngineError::Overlay(OverlayError::NotFound)) => {
                tracing::warn!(delivery_id, "a webhook's overlay no longer exists");
            }
            Err(e) => return Err(e),
        }
        if let Some(chart) = &announcement.chart {
            let update = ChartUpdate {
                overlay_id: announcement.overlay_id.clone(),
                symbol: chart.symbol.clone(),
                replace: false,
                points: vec![ChartPoint {
                    time: chart.time,
                    value: Some(chart.value),
                    open: None,
                    high: None,
                    low: None,
                    close: None,
                }],
            };
            match self
                .overlays()
                .chart_update_with_id(format!("cu_wh_{delivery_id}"), update)
                .await
            {
                Ok((_, message)) => messages.push(message),
                Err(EngineError::Overlay(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // `announced` is set when a page says it has the alert (`alert.seen`, see
        // [`Engine::webhook_alert_seen`]), not here: a message queued for a page dies with the
        // process if the engine is killed before the socket writes it.
        Ok(messages)
    }

    /// An overlay page reports that it has the alert `alert_id`: a webhook's alert is then
    /// not shown again after a restart. Ids that are not webhook alerts are ignored.
    pub async fn webhook_alert_seen(&self, alert_id: &str) -> Result<(), EngineError> {
        let Some(id) = alert_id
            .strip_prefix("al_wh_")
            .and_then(|n| n.parse::<i64>().ok())
        else {
            return Ok(());
        };
        self.store()
            .call(move |conn| {
                conn.execute(
                    "UPDATE webhook_deliveries SET announced = 1 WHERE id = ?1 AND announced = 0",
                    [id],
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// At start: forgets expired idempotency keys and old deliveries, and announces deliveries
    /// that were accepted but not yet shown when the engine stopped. Those recent enough
    /// (`webhooks.reannounce_window_seconds`) are also held for pages connecting in that window,
    /// since no page is connected yet.
    pub(crate) async fn webhooks_start(&self) -> Result<(), EngineError> {
        let now = self.now_ms();
        let cutoff = now - self.idempotency_ttl_ms();
        let window = i64::try_from(self.config().webhooks.reannounce_window_seconds)
            .unwrap_or(0)
            .saturating_mul(1000);
        let pending: Vec<(i64, i64, String, String)> = self
            .store()
            .call(move |conn| {
                let tx = conn.transaction()?;
                tx.execute(
                    "DELETE FROM webhook_idempotency_keys WHERE created_ms <= ?1",
                    [cutoff],
                )?;
                tx.execute(
                    "DELETE FROM webhook_deliveries WHERE received_ms <= ?1 AND announced = 1",
                    [cutoff],
                )?;
                let pending = {
                    let mut stmt = tx.prepare(
                        "SELECT id, received_ms, alert_id, announcement FROM webhook_deliveries
                         WHERE status = 'accepted' AND announced = 0 ORDER BY id",
                    )?;
                    let rows =
                        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                tx.commit()?;
                Ok(pending)
            })
            .await?;
        for (id, received_ms, alert_id, text) in pending {
            let announcement: Announcement = match serde_json::from_str(&text) {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(delivery_id = id, error = %e, "a stored webhook announcement does not parse");
                    continue;
                }
            };
            if now - received_ms > window {
                tracing::info!(
                    delivery_id = id,
                    "a webhook accepted before the last stop is too old to show now"
                );
                self.store()
                    .call(move |conn| {
                        conn.execute(
                            "UPDATE webhook_deliveries SET announced = 1 WHERE id = ?1",
                            [id],
                        )?;
                        Ok(())
                    })
                    .await?;
                continue;
            }
            let messages = self.announce(id, &alert_id, &announcement).await?;
            self.inner
                .webhook_backlog
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .push(Held {
                    until_ms: received_ms + window,
                    overlay_id: announcement.overlay_id,
                    messages,
                });
            tracing::info!(
                delivery_id = id,
                "announced a webhook accepted before the last stop"
            );
        }
        Ok(())
    }

    /// Messages an overlay page should get right after connecting: alerts accepted just before
    /// a restart and announced while no page was connected. Pages ignore alert ids they have
    /// shown, so sending them to every page that connects in the window is safe.
    pub fn overlay_backlog(&self, overlay_id: &str) -> Vec<Arc<str>> {
        let now = self.now_ms();
        let mut backlog = self
            .inner
            .webhook_backlog
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        backlog.0.retain(|h| h.until_ms > now);
        backlog
            .0
            .iter()
            .filter(|h| h.overlay_id.as_deref().is_none_or(|o| o == overlay_id))
            .flat_map(|h| h.messages.iter().cloned())
            .collect()
    }
}
