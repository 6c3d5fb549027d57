//! What the streamer's webhook settings page shows: the endpoints and which credentials exist.

use serde::Serialize;

use super::{CustomEndpoint, TradingViewAuth, TradingViewSettings};
use crate::{Engine, EngineError};

/// What the streamer's webhook settings page shows: where to send webhooks and which
/// credentials exist (never their values).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhooksOverview {
    /// TradingView.
    pub tradingview: TradingViewOverview,
    /// The custom endpoints.
    pub custom: Vec<CustomEndpointOverview>,
}

/// The TradingView endpoint.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TradingViewOverview {
    /// `/webhooks/tradingview` (the URL token is revealed separately).
    pub path: String,
    /// Which credentials are configured.
    pub auth: TradingViewAuth,
    /// How alerts are shown.
    pub settings: TradingViewSettings,
}

/// A custom endpoint with its path.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomEndpointOverview {
    /// `/webhooks/custom/{name}`.
    pub path: String,
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: CustomEndpoint,
}

impl Engine {
    /// Where to send webhooks and which credentials are configured.
    pub async fn webhooks_overview(&self) -> Result<WebhooksOverview, EngineError> {
        Ok(WebhooksOverview {
            tradingview: TradingViewOverview {
                path: "/webhooks/tradingview".into(),
                auth: self.webhook_tradingview_auth(),
                settings: self.webhook_tradingview_settings().await?,
            },
            custom: self
                .webhook_custom_list()
                .await?
                .into_iter()
                .map(|endpoint| CustomEndpointOverview {
                    path: format!("/webhooks/custom/{}", endpoint.name),
                    endpoint,
                })
                .collect(),
        })
    }
}
