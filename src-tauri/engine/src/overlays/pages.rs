//! Connected overlay pages: opening and closing them (announced as `overlay.pages`), the
//! versions they report applied and how long that took, and the figures for
//! `GET /api/metrics/realtime`.

use stagehand_protocol::overlay::{Percentiles, Realtime};

use super::Overlays;
use super::hub;

impl Overlays {
    pub(super) fn record_published(&self, overlay_id: &str, version: i64) {
        self.inner
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(overlay_id, version, std::time::Instant::now());
    }

    /// The registry of connected pages.
    pub fn hub(&self) -> &hub::OverlayHub {
        &self.inner.hub
    }

    /// Registers a page of `overlay_id` whose socket just opened, and announces how many it
    /// has now (`overlay.pages`, which the panel shows).
    pub fn page_open(&self, overlay_id: &str) -> hub::PageConnection {
        let page = self.inner.hub.connect(overlay_id);
        self.publish_pages(overlay_id);
        page
    }

    /// Forgets a page whose socket ended, and announces how many are left.
    pub fn page_closed(&self, overlay_id: &str, page_id: u64) {
        self.inner.hub.disconnect(overlay_id, page_id);
        self.publish_pages(overlay_id);
    }

    fn publish_pages(&self, overlay_id: &str) {
        let pages = self.inner.hub.pages_of(overlay_id);
        self.inner.events.publish(
            "overlay.pages",
            serde_json::json!({ "overlayId": overlay_id, "pages": pages }),
        );
    }

    /// Records that a page applied `version`; returns the time since it was published.
    pub fn applied(&self, overlay_id: &str, page: &hub::PageState, version: i64) -> Option<f64> {
        page.applied_version
            .fetch_max(version, std::sync::atomic::Ordering::Relaxed);
        let published = self
            .inner
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(overlay_id, version)?;
        let seconds = published.elapsed().as_secs_f64();
        self.inner.metrics.observe(
            "stagehand_overlay_apply_seconds",
            "Time from publishing a scene version to a page reporting it applied.",
            &[],
            seconds,
        );
        self.inner
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(seconds);
        Some(seconds)
    }

    /// How many pages have each overlay open now, by overlay id (overlays with none absent).
    pub fn pages_open(&self) -> std::collections::HashMap<String, usize> {
        self.inner
            .hub
            .figures()
            .into_iter()
            .map(|(overlay, pages)| (overlay, pages.len()))
            .collect()
    }

    /// Connected pages, versions and latency percentiles, for `GET /api/metrics/realtime`.
    pub fn realtime(&self) -> Realtime {
        let hub = &self.inner.hub;
        let (sent, dropped) = hub.totals();
        let figures = hub.figures();
        let latencies = self
            .inner
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .percentiles();
        let pages: usize = figures.values().map(Vec::len).sum();
        let metrics = &self.inner.metrics;
        metrics.gauge_set(
            "stagehand_overlay_pages_connected",
            "Overlay pages connected now.",
            &[],
            pages as f64,
        );
        metrics.gauge_set(
            "stagehand_overlay_messages_sent",
            "Messages queued for overlay pages since start.",
            &[],
            sent as f64,
        );
        metrics.gauge_set(
            "stagehand_overlay_messages_dropped",
            "Messages dropped for stalled overlay pages since start.",
            &[],
            dropped as f64,
        );
        Realtime {
            overlays: figures.into_iter().collect(),
            pages_connected: pages,
            messages_sent: sent,
            messages_dropped: dropped,
            apply_latency_ms: latencies,
        }
    }
}

/// When each recent scene version was published, for apply latency.
#[derive(Debug, Default)]
pub(crate) struct Published(std::collections::VecDeque<(String, i64, std::time::Instant)>);

impl Published {
    fn record(&mut self, overlay: &str, version: i64, at: std::time::Instant) {
        if self.0.iter().any(|(o, v, _)| o == overlay && *v == version) {
            return;
        }
        if self.0.len() >= 1024 {
            self.0.pop_front();
        }
        self.0.push_back((overlay.to_owned(), version, at));
    }

    fn get(&self, overlay: &str, version: i64) -> Option<std::time::Instant> {
        self.0
            .iter()
            .rev()
            .find(|(o, v, _)| o == overlay && *v == version)
            .map(|(_, _, at)| *at)
    }
}

/// The last 1024 apply latencies, for percentiles.
#[derive(Debug, Default)]
pub(crate) struct Latencies(std::collections::VecDeque<f64>);

impl Latencies {
    fn push(&mut self, seconds: f64) {
        if self.0.len() >= 1024 {
            self.0.pop_front();
        }
        self.0.push_back(seconds);
    }

    fn percentiles(&self) -> Option<Percentiles> {
        if self.0.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.0.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let i = ((v.len() - 1) as f64 * p).round() as usize;
            (v[i] * 1_000_000.0).round() / 1000.0
        };
        Some(Percentiles {
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            samples: v.len(),
        })
    }
}
