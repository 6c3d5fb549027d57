//! The control panel's pages: each handler checks the session (or redirects to `/login`),
//! reads what the page shows from the engine, maps it into the UI's view structs and renders.
//! Nothing here changes anything: the pages' scripts call the JSON API for that. Also the
//! sign-in page and the panel's stylesheet and scripts (`/ui/{file}`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use stagehand_engine::Engine;
use stagehand_ui::panel::{
    AccountRow, AccountsView, CustomRow, DeliveryRow, HomeView, ModeratorsView, OverlayRow,
    OverlaysView, ProviderRow, SessionRow, SettingsView, TradingViewAuthView, WebhooksView,
};

use crate::auth::Streamer;
use crate::error::ApiError;
use crate::state::AppState;

/// The panel's page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/panel/overlays", get(overlays))
        .route("/panel/moderators", get(moderators))
        .route("/panel/accounts", get(accounts_page))
        .route("/panel/webhooks", get(webhooks))
        .route("/panel/settings", get(settings))
        .route("/login", get(login_page))
        .route("/ui/{file}", get(asset))
}

/// What the panel's pages may load: only this server.
pub(crate) const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A rendered page with the panel's CSP, never cached.
pub(crate) fn page(html: String) -> Response {
    (
        [
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(html),
    )
        .into_response()
}

/// `GET /login` — the sign-in page.
pub async fn login_page() -> Response {
    page(stagehand_ui::login_page(None))
}

/// `GET /ui/{file}` — the UI's stylesheet and scripts, compiled into the binary.
pub async fn asset(Path(file): Path<String>) -> Response {
    let Some((body, kind)) = stagehand_ui::asset(&file) else {
        return ApiError::not_found().into_response();
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// How many deliveries the Webhooks page lists, and the home page.
const DELIVERIES_SHOWN: u32 = 50;
const ALERTS_ON_HOME: usize = 5;

/// A serde enum's wire name (`"identified"`), or `unknown`.
fn wire<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

async fn accounts(engine: &Engine) -> Result<AccountsView, ApiError> {
    let overview = engine.accounts_list().await?;
    Ok(AccountsView {
        accounts: overview
            .accounts
            .into_iter()
            .map(|a| AccountRow {
                provider: a.provider.as_str().to_owned(),
                account_name: a.account_name,
                status: wire(&a.status),
                status_reason: a.status_reason,
                linked_at: a.linked_at,
            })
            .collect(),
        providers: overview
            .providers
            .into_iter()
            .map(|p| ProviderRow {
                provider: p.provider.as_str().to_owned(),
                configured: p.configured,
                flows: p.flows.iter().map(|f| f.as_str().to_owned()).collect(),
                client_id_var: p.client_id_var.to_owned(),
            })
            .collect(),
        discord_webhook: overview.discord_webhook.map(|w| w.url),
    })
}

async fn deliveries(engine: &Engine, limit: u32) -> Result<Vec<DeliveryRow>, ApiError> {
    Ok(engine
        .webhook_deliveries(limit)
        .await?
        .into_iter()
        .map(|d| DeliveryRow {
            received_at: d.received_at,
            source: d.source,
            via: d.via,
            status: d.status,
            reason_code: d.reason_code,
            reason: d.reason,
            stale: d.stale,
        })
        .collect())
}

/// Renders `build`'s page for a signed-in streamer; anyone else goes to sign in.
async fn signed_in_page<F, Fut>(state: &AppState, headers: &HeaderMap, build: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, ApiError>>,
{
    if !Streamer::signed_in(headers, state).await {
        return Redirect::to("/login").into_response();
    }
    match build().await {
        Ok(html) => page(html),
        Err(e) => e.into_response(),
    }
}

/// `GET /` — the home page.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    signed_in_page(&state, &headers, || async {
        let engine = &state.engine;
        let obs = engine.obs_status();
        let relay = engine.relay_status();
        let open = engine.overlays().pages_open();
        let overlays = engine
            .overlays()
            .list()
            .await?
            .into_iter()
            .map(|o| {
                let pages = open.get(&o.overlay_id).copied().unwrap_or(0);
                (o.name, pages)
            })
            .collect();
        let mut alerts = deliveries(engine, ALERTS_ON_HOME as u32).await?;
        alerts.truncate(ALERTS_ON_HOME);
        Ok(stagehand_ui::home_page(&HomeView {
            status: engine.status(&state.local_url),
            obs_state: wire(&obs.state),
            obs_address: obs.address,
            obs_error: obs.last_error,
            health: engine
                .obs_health()
                .map(|h| stagehand_ui::panel::HealthView {
                    live: h.live,
                    bitrate_kbps: h.bitrate_kbps,
                    dropped_frames: h.dropped_frames,
                    total_frames: h.total_frames,
                    cpu_percent: h.cpu_percent,
                }),
            overlays,
            accounts: accounts(engine).await?.accounts,
            relay_state: wire(&relay.state),
            relay_url: relay.url,
            relay_error: relay.last_error,
            recent_alerts: alerts,
        }))
    })
    .await
}

/// `GET /panel/overlays`
pub async fn overlays(State(state): State<AppState>, headers: HeaderMap) -> Response {
    signed_in_page(&state, &headers, || async {
        let engine = &state.engine;
        let open = engine.overlays().pages_open();
        let rows = engine
            .overlays()
            .list()
            .await?
            .into_iter()
            .map(|o| OverlayRow {
                signed_url: format!(
                    "{}{}",
                    state.local_url,
                    engine.overlays().link_path(&o.overlay_id, None)
                ),
                pages: open.get(&o.overlay_id).copied().unwrap_or(0),
                id: o.overlay_id,
                name: o.name,
                width: o.width,
                height: o.height,
            })
            .collect();
        Ok(stagehand_ui::panel::overlays_page(&OverlaysView {
            overlays: rows,
            limit: engine.config().limits.overlays,
        }))
    })
    .await
}

/// `GET /panel/moderators`
pub async fn moderators(State(state): State<AppState>, headers: HeaderMap) -> Response {
    signed_in_page(&state, &headers, || async {
        let engine = &state.engine;
        let config = engine.config();
        let sessions = engine
            .moderator_sessions()
            .await?
            .into_iter()
            .map(|s| SessionRow {
                scopes: s.scopes.iter().map(|x| x.as_str().to_owned()).collect(),
                id: s.id,
                label: s.label,
                created_at: s.created_at,
                expires_at: s.expires_at,
            })
            .collect();
        Ok(stagehand_ui::panel::moderators_page(&ModeratorsView {
            sessions,
            key_ttl_seconds: config.moderators.key_ttl_seconds,
            session_ttl_seconds: config.moderators.session_ttl_seconds,
            lan_access: state.moderator_url != state.local_url,
        }))
    })
    .await
}

/// `GET /panel/webhooks`
pub async fn webhooks(State(state): State<AppState>, headers: HeaderMap) -> Response {
    signed_in_page(&state, &headers, || async {
        let engine = &state.engine;
        let overview = engine.webhooks_overview().await?;
        let auth = overview.tradingview.auth;
        let custom = overview
            .custom
            .into_iter()
            .map(|c| CustomRow {
                url: format!("{}{}", state.local_url, c.path),
                relay_url: engine.relay_hook_url(&c.path),
                name: c.endpoint.name,
                title: c.endpoint.title,
                created_at: c.endpoint.created_at,
            })
            .collect();
        Ok(stagehand_ui::panel::webhooks_page(&WebhooksView {
            tradingview_url: format!("{}{}", state.local_url, overview.tradingview.path),
            tradingview_relay_url: engine.relay_hook_url(&overview.tradingview.path),
            auth: TradingViewAuthView {
                token: auth.token,
                hmac: auth.hmac,
                hmac_from_env: auth.hmac_from_env,
                passphrase: auth.passphrase,
            },
            custom,
            deliveries: deliveries(engine, DELIVERIES_SHOWN).await?,
        }))
    })
    .await
}

/// `GET /panel/accounts`
pub async fn accounts_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    signed_in_page(&state, &headers, || async {
        Ok(stagehand_ui::panel::accounts_page(
            &accounts(&state.engine).await?,
        ))
    })
    .await
}

/// `GET /panel/settings`
pub async fn settings(State(state): State<AppState>, headers: HeaderMap) -> Response {
    signed_in_page(&state, &headers, || async {
        let engine = &state.engine;
        let config = engine.config();
        let status = engine.status(&state.local_url);
        let obs = engine.obs_status();
        let relay = engine.relay_status();
        let port = state
            .local_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(config.server.port);
        Ok(stagehand_ui::panel::settings_page(&SettingsView {
            port,
            local_url: state.local_url.clone(),
            lan_access: config.server.lan_access,
            lan_url: (state.moderator_url != state.local_url).then(|| state.moderator_url.clone()),
            obs_enabled: config.obs.enabled,
            obs_address: obs.address,
            obs_state: wire(&obs.state),
            obs_error: obs.last_error,
            secret_backend: status.secret_backend,
            secret_location: status.secret_location,
            relay_url: config.relay.url.clone(),
            relay_tunnel_id: config.relay.tunnel_id.clone(),
            relay_state: wire(&relay.state),
            relay_error: relay.last_error,
            data_dir: status.data_dir,
            log_dir: config.log_dir().display().to_string(),
        }))
    })
    .await
}
