//! Live feeds for overlay widgets: chat lines for the chat box and points for the chart.
//!
//! Later capabilities (Twitch chat, TradingView webhooks) feed these; the streamer can push test
//! data through the API now. Like alerts, each message is serialised once and fanned out.

use std::sync::Arc;

use super::Overlays;
use super::{Delivery, OverlayError};
use crate::EngineError;
use stagehand_protocol::overlay::{ChartFeed, ChartUpdate, ChatLine, ChatMessage, ToPage};

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
        message: ToPage,
    ) -> Result<(Delivery, Arc<str>), EngineError> {
        if let Some(id) = overlay_id {
            self.get(id).await?;
        }
        let message: Arc<str> = Arc::from(message.to_text());
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
        let message = ToPage::ChatMessage(ChatLine {
            id: id.clone(),
            user: user.to_owned(),
            text: chat.text,
            color: chat.color,
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
        let message = ToPage::ChartUpdate(ChartFeed {
            id: id.clone(),
            symbol: update.symbol,
            replace: update.replace,
            points: update.points,
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
