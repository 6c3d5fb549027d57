//! Alerts on overlays: the checks an alert request must pass, and the `alert.show` message
//! fanned out to the pages of one overlay or all of them.

use std::sync::Arc;

use stagehand_protocol::overlay::{AlertRequest, AlertShow, ToPage};

use super::{Delivery, OverlayError, Overlays};
use crate::EngineError;

impl Overlays {
    /// Shows an alert on one overlay or all of them.
    pub async fn show_alert(&self, alert: AlertRequest) -> Result<Delivery, EngineError> {
        let id = format!("al_{}", crate::random::token(9)?);
        Ok(self.show_alert_with_id(id, alert).await?.0)
    }

    /// Shows an alert under a given id (webhooks derive it from the delivery, so a page that
    /// is sent the same alert again after a restart can tell); returns the message sent too.
    pub(crate) async fn show_alert_with_id(
        &self,
        id: String,
        alert: AlertRequest,
    ) -> Result<(Delivery, Arc<str>), EngineError> {
        let kind_ok = !alert.kind.is_empty()
            && alert.kind.len() <= 32
            && alert
                .kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !kind_ok {
            return Err(OverlayError::Invalid("kind must be 1-32 of a-z 0-9 _ -".into()).into());
        }
        if alert.title.trim().is_empty() || alert.title.chars().count() > 200 {
            return Err(OverlayError::Invalid("title must be 1-200 characters".into()).into());
        }
        if alert.message.chars().count() > 1000 {
            return Err(
                OverlayError::Invalid("message must be at most 1000 characters".into()).into(),
            );
        }
        for (what, url) in [("image", &alert.image), ("sound", &alert.sound)] {
            if let Some(url) = url
                && !(url.starts_with("/media/")
                    || url.starts_with("https://")
                    || url.starts_with("http://"))
            {
                return Err(OverlayError::Invalid(format!(
                    "{what} must be a /media/ path or an http(s) URL"
                ))
                .into());
            }
        }
        let duration = alert.duration_ms.unwrap_or(5000);
        if !(500..=60_000).contains(&duration) {
            return Err(
                OverlayError::Invalid("duration_ms must be between 500 and 60000".into()).into(),
            );
        }
        if let Some(id) = &alert.overlay_id {
            self.get(id).await?;
        }
        let message: Arc<str> = Arc::from(
            ToPage::AlertShow(AlertShow {
                id: id.clone(),
                kind: alert.kind.clone(),
                title: alert.title,
                message: alert.message,
                image: alert.image,
                sound: alert.sound,
                duration_ms: duration,
            })
            .to_text(),
        );
        let pages = match &alert.overlay_id {
            Some(overlay) => self.inner.hub.send(overlay, &message),
            None => self.inner.hub.send_all(&message),
        };
        self.inner.metrics.counter_add(
            "stagehand_overlay_alerts_total",
            "Alerts sent to overlays.",
            &[("kind", &alert.kind)],
            1,
        );
        Ok((Delivery { id, pages }, message))
    }
}
