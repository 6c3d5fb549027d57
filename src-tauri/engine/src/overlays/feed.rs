//! Live feeds for overlay widgets: chat lines for the chat box and points for the chart.
//!
//! Later capabilities (Twitch chat, TradingView webhooks) feed these; the streamer can push test
//! data through the API now. Like alerts, each message is serialised once and fanned out.

use std::sync::Arc;

use serde::Deserialize;

use super::Overlays;
use super::{Delivery, OverlayError};
use crate::EngineError;

/// A chat line for chat box layers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// Only this overlay; all overlays when absent.
    #[serde(rename = "overlayId")]
    pub overlay_id: Option<String>,
    /// Who wrote it (1-64 characters).
    pub user: String,
    /// What they wrote (1-500 characters).
    pub text: String,
    /// The user's colour, `#rgb` or `#rrggbb`.
    pub color: Option<String>,
}

/// One point of a line chart or one candle.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChartPoint {
    /// Unix seconds.
    pub time: i64,
    /// Line value (for line series).
    pub value: Option<f64>,
    /// Candle open.
    pub open: Option<f64>,
    /// Candle high.
    pub high: Option<f64>,
    /// Candle low.
    pub low: Option<f64>,
    /// Candle close.
    pub close: Option<f64>,
}

/// New data for chart layers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartUpdate {
    /// Only this overlay; all overlays when absent.
    #[serde(rename = "overlayId")]
    pub overlay_id: Option<String>,
    /// Which symbol this is (chart layers with `props.symbol` show only theirs).
    pub symbol: String,
    /// `true`: these points replace the series; `false`: they are appended or update the last.
    #[serde(default)]
    pub replace: bool,
    /// Points in time order (1-5000).
    pub points: Vec<ChartPoint>,
}

fn invalid(message: impl Into<String>) -> EngineError {
    OverlayError::Invalid(message.into()).into()
}

fn is_colour(c: &str) -> bool {
    let hex = c.strip_prefix('#').unwrap_or("");
    (hex.len() == 3 || hex.len() == 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Overlays {
    async fn feed_send(
        &self,
        overlay_id: Option<&str>,
        kind: &str,
        message: serde_json::Value,
    ) -> Result<(Delivery, Arc<str>), EngineError> {
        if let Some(id) = overlay_id {
            self.get(id).await?;
        }
        let message: Arc<str> = Arc::from(message.to_string());
        let hub = self.hub();
        let pages = match overlay_id {
            Some(id) => hub.send(id, &message),
            None => hub.send_all(&message),
        };
        self.inner.metrics.counter_add(
            "stagehand_overlay_feed_messages_total",
            "Chat and chart messages sent to overlays.",
            &[("type", kind)],
            1,
        );
        Ok((
            Delivery {
                id: String::new(),
                pages,
            },
            message,
        ))
    }

    /// Sends a chat line to chat box layers.
    pub async fn chat_message(&self, chat: ChatMessage) -> Result<Delivery, EngineError> {
        let user = chat.user.trim();
        if user.is_empty() || user.chars().count() > 64 {
            return Err(invalid("user must be 1-64 characters"));
        }
        if chat.text.trim().is_empty() || chat.text.chars().count() > 500 {
            return Err(invalid("text must be 1-500 characters"));
        }
        if let Some(c) = &chat.color
            && !is_colour(c)
        {
            return Err(invalid("color must be #rgb or #rrggbb"));
        }
        let id = format!("ch_{}", crate::random::token(9)?);
        let message = serde_json::json!({
            "type": "chat.message",
            "id": id,
            "user": user,
            "text": chat.text,
            "color": chat.color,
        });
        let (mut delivery, _) = self
            .feed_send(chat.overlay_id.as_deref(), "chat.message", message)
            .await?;
        delivery.id = id;
        Ok(delivery)
    }

    /// Sends points to chart layers.
    pub async fn chart_update(&self, update: ChartUpdate) -> Result<Delivery, EngineError> {
        let id = format!("cu_{}", crate::random::token(9)?);
        Ok(self.chart_update_with_id(id, update).await?.0)
    }

    /// Sends points under a given id; returns the message sent too.
    pub(crate) async fn chart_update_with_id(
        &self,
        id: String,
        update: ChartUpdate,
    ) -> Result<(Delivery, Arc<str>), EngineError> {
        let symbol_ok = !update.symbol.is_empty()
            && update.symbol.len() <= 32
            && update
                .symbol
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":._-/!".contains(&b));
        if !symbol_ok {
            return Err(invalid("symbol must be 1-32 of A-Z a-z 0-9 : . _ - / !"));
        }
        if update.points.is_empty() || update.points.len() > 5000 {
            return Err(invalid("points must hold 1-5000 points"));
        }
        let mut last = i64::MIN;
        for p in &update.points {
            if p.time <= last {
                return Err(invalid("points must be in strictly increasing time order"));
            }
            last = p.time;
            let candle = [p.open, p.high, p.low, p.close];
            let is_line = p.value.is_some() && candle.iter().all(Option::is_none);
            let is_candle = p.value.is_none() && candle.iter().all(Option::is_some);
            if !is_line && !is_candle {
                return Err(invalid(
                    "each point has either `value` or all of open/high/low/close",
                ));
            }
            if [p.value, p.open, p.high, p.low, p.close]
                .iter()
                .flatten()
                .any(|v| !v.is_finite())
            {
                return Err(invalid("chart values must be finite numbers"));
            }
        }
        let message = serde_json::json!({
            "type": "chart.update",
            "id": id,
            "symbol": update.symbol,
            "replace": update.replace,
            "points": update.points,
        });
        let (mut delivery, message) = self
            .feed_send(update.overlay_id.as_deref(), "chart.update", message)
            .await?;
        delivery.id = id;
        Ok((delivery, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex_only() {
        assert!(is_colour("#fff") && is_colour("#a1B2c3"));
        assert!(!is_colour("red") && !is_colour("#ffff") && !is_colour("url(x)"));
    }
}
