//! Alerts, chat lines and chart points: the API bodies that ask for them
//! (`POST /api/alerts`, `/api/chat/messages`, `/api/chart/updates`) and the page messages that
//! carry them. The engine checks the requests; these types only give them their shape.

use serde::{Deserialize, Serialize};

/// An alert to show (`POST /api/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRequest {
    /// Only this overlay; all overlays when absent.
    #[serde(rename = "overlayId")]
    pub overlay_id: Option<String>,
    /// `follow`, `sub`, `raid`, `tradingview`, … (1-32 of a-z 0-9 _ -).
    pub kind: String,
    /// Headline.
    pub title: String,
    /// Body text.
    #[serde(default)]
    pub message: String,
    /// Picture URL.
    pub image: Option<String>,
    /// Sound URL.
    pub sound: Option<String>,
    /// How long it shows (500-60000 ms, default 5000).
    pub duration_ms: Option<u32>,
}

/// `alert.show`: an alert for the page's alert box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertShow {
    /// The alert's id; a page that is sent the same id twice (after a restart) plays it once.
    pub id: String,
    /// What kind of alert (picks the page's styling).
    pub kind: String,
    /// Headline.
    pub title: String,
    /// Body text.
    pub message: String,
    /// Picture URL.
    pub image: Option<String>,
    /// Sound URL.
    pub sound: Option<String>,
    /// How long it shows.
    pub duration_ms: u32,
}

/// A chat line to show (`POST /api/chat/messages`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// Only this overlay; all overlays when absent.
    #[serde(rename = "overlayId")]
    pub overlay_id: Option<String>,
    /// Who wrote it (1-64 characters).
    pub user: String,
    /// What they wrote (1-500 characters).
    pub text: String,
    /// Name colour, `#rgb` or `#rrggbb`.
    pub color: Option<String>,
}

/// `chat.message`: a line for the page's chat box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatLine {
    /// The line's id.
    pub id: String,
    /// Who wrote it.
    pub user: String,
    /// What they wrote.
    pub text: String,
    /// Name colour.
    pub color: Option<String>,
}

/// One chart point: a line value, or a candle (all of open/high/low/close).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartPoint {
    /// Seconds since the Unix epoch; strictly increasing within an update.
    pub time: i64,
    /// Line value.
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

/// Points for the chart (`POST /api/chart/updates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartUpdate {
    /// Only this overlay; all overlays when absent.
    #[serde(rename = "overlayId")]
    pub overlay_id: Option<String>,
    /// Ticker symbol (1-32 of `A-Z a-z 0-9 : . _ - / !`).
    pub symbol: String,
    /// Replace the series instead of appending to it.
    #[serde(default)]
    pub replace: bool,
    /// 1-5000 points in increasing time order.
    pub points: Vec<ChartPoint>,
}

/// `chart.update`: points for the page's chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartFeed {
    /// The update's id.
    pub id: String,
    /// Ticker symbol.
    pub symbol: String,
    /// Replace the series instead of appending to it.
    pub replace: bool,
    /// The points.
    pub points: Vec<ChartPoint>,
}
