//! Account doors: starting a link (`GET /api/accounts/{provider}/start`, streamer), the
//! provider's redirect back (`GET /auth/{provider}/callback`), the streamer's account list and
//! unlinking under `/api/accounts`, and custom RTMP destinations under `/api/destinations`.
//!
//! The callback is opened by the system browser coming back from the provider, so it carries
//! no streamer credential: the single-use `state` Stagehand put in the authorization URL is
//! its credential, checked by the engine. It is a GET on our own Host name, so the Host and
//! Origin guards let it through as they let any page load through. A browser (`Accept:
//! text/html`) gets a small page to close; anything else gets JSON.

use std::net::SocketAddr;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use stagehand_engine::Secret;
use stagehand_engine::accounts::{AccountError, CallbackParams, Flow, Provider};
use stagehand_engine::audit::{AuditEntry, Outcome};
use stagehand_protocol::ErrorCode;

use crate::auth::Streamer;
use crate::error::ApiError;
use crate::state::AppState;

/// The account and destination routes. The callback stays at `/auth/{provider}/callback`:
/// it is the redirect URI registered with each provider.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/accounts/{provider}/start", get(start))
        .route("/auth/{provider}/callback", get(callback))
        .route("/api/accounts", get(list))
        .route(
            "/api/accounts/discord/webhook",
            put(discord_webhook_set).delete(discord_webhook_delete),
        )
        .route("/api/accounts/{provider}", delete(unlink))
        .route("/api/accounts/{provider}/device", get(device))
        .route("/api/accounts/{provider}/refresh", post(refresh))
        .route(
            "/api/accounts/{provider}/client-secret",
            put(client_secret_set).delete(client_secret_delete),
        )
        .route("/api/destinations", get(destinations).post(destination_add))
        .route("/api/destinations/{id}", delete(destination_delete))
}

/// What the callback page may load: nothing.
const CALLBACK_CSP: &str =
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Parses the provider in the path.
fn parse_provider(name: &str) -> Result<Provider, ApiError> {
    Provider::parse(name)
        .ok_or_else(|| AccountError::UnknownProvider(name.chars().take(40).collect()).into())
}

/// Parses the provider of a linking route (start or callback); an unknown one is audited
/// too, since every linking call is.
async fn auth_provider(state: &AppState, name: &str, action: &str) -> Result<Provider, ApiError> {
    let parsed = parse_provider(name);
    if parsed.is_err() {
        let name: String = name.chars().take(40).collect();
        state
            .engine
            .audit()
            .record(AuditEntry::new("anonymous", action, Outcome::Denied).target(name))
            .await?;
    }
    parsed
}

/// Query of `GET /api/accounts/{provider}/start`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    flow: Option<String>,
}

/// `GET /api/accounts/{provider}/start[?flow=device|code]` — the device code to show, or the
/// URL to open in the system browser.
pub async fn start(
    _: Streamer,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    query: Result<Query<StartQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let provider = auth_provider(&state, &name, "account.start").await?;
    let Query(q) = query.map_err(|e| ApiError::invalid_query(&e))?;
    let flow = match q.flow.as_deref() {
        None => None,
        Some(f) => Some(
            Flow::parse(f)
                .ok_or_else(|| ApiError::invalid_fields("flow must be device or code"))?,
        ),
    };
    let started = state
        .engine
        .account_start(
            provider,
            flow,
            &state.local_url,
            Some(peer.ip().to_string()),
        )
        .await?;
    Ok(no_store(Json(started).into_response()))
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn callback_page(status: StatusCode, title: &str, message: &str, code: Option<&str>) -> Response {
    let code = code.map_or_else(String::new, |c| {
        format!("<p><small>Code: <code>{}</code></small></p>", escape(c))
    });
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title} · Stagehand</title></head><body><h1>{title}</h1><p>{message}</p>{code}\
         <p>You can close this tab and go back to Stagehand.</p></body></html>",
        title = escape(title),
        message = escape(message),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CALLBACK_CSP),
    );
    // The URL that brought the browser here holds the code and state.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    no_store(response)
}

/// `GET /auth/{provider}/callback?code=…&state=…` — where the provider sends the browser back.
/// Authenticated by the single-use `state`, not the streamer token.
pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let html = wants_html(&headers);
    let provider = match auth_provider(&state, &name, "account.callback").await {
        Ok(p) => p,
        Err(e) if html => {
            return callback_page(e.status(), "Not linked", &e.message, Some(e.code.as_str()));
        }
        Err(e) => return e.into_response(),
    };
    // Providers add parameters of their own (`scope`, `authuser`, `iss`); only ours are read.
    let params: CallbackParams =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let result = state
        .engine
        .account_callback(provider, params, Some(peer.ip().to_string()))
        .await;
    match result {
        Ok(link) if html => callback_page(
            StatusCode::OK,
            &format!("{} linked", provider.title()),
            &format!(
                "Stagehand is now linked to the {} account {}.",
                provider.title(),
                link.account_name
            ),
            None,
        ),
        Ok(link) => no_store(Json(serde_json::json!({ "account": link })).into_response()),
        Err(e) => {
            let error = ApiError::from(e);
            if html {
                callback_page(
                    error.status(),
                    "Not linked",
                    &error.message,
                    Some(error.code.as_str()),
                )
            } else {
                error.into_response()
            }
        }
    }
}

/// `GET /api/accounts` — linked accounts (never a token), what can be linked, the Discord
/// webhook masked.
pub async fn list(_: Streamer, State(state): State<AppState>) -> Result<Response, ApiError> {
    let overview = state.engine.accounts_list().await?;
    Ok(no_store(Json(overview).into_response()))
}

/// `GET /api/accounts/{provider}/device` — where the Twitch device sign-in stands.
pub async fn device(
    _: Streamer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let provider = parse_provider(&name)?;
    let progress = state.engine.account_device_progress(provider)?;
    Ok(no_store(Json(progress).into_response()))
}

/// `DELETE /api/accounts/{provider}` — revokes at the provider, then deletes.
pub async fn unlink(
    _: Streamer,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let provider = parse_provider(&name)?;
    let unlinked = state
        .engine
        .account_unlink(provider, Some(peer.ip().to_string()))
        .await?;
    Ok(Json(unlinked).into_response())
}

/// `POST /api/accounts/{provider}/refresh` — renews the tokens now (joins a renewal already
/// under way).
pub async fn refresh(
    _: Streamer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let provider = parse_provider(&name)?;
    let link = state.engine.account_refresh(provider).await?;
    Ok(no_store(Json(link).into_response()))
}

/// Body of `PUT /api/accounts/{provider}/client-secret`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecretBody {
    secret: String,
}

/// `PUT /api/accounts/{provider}/client-secret` — into the secret store (Twitch: turns on the
/// Authorization Code flow; YouTube: sent with token requests).
pub async fn client_secret_set(
    _: Streamer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    json: Result<Json<ClientSecretBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let provider = parse_provider(&name)?;
    let Json(body) = json?;
    state
        .engine
        .account_client_secret_set(provider, Some(Secret::new(body.secret)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/accounts/{provider}/client-secret`
pub async fn client_secret_delete(
    _: Streamer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let provider = parse_provider(&name)?;
    state
        .engine
        .account_client_secret_set(provider, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /api/accounts/discord/webhook`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    url: String,
}

/// `PUT /api/accounts/discord/webhook` — `{url}` into the secret store; answered masked.
pub async fn discord_webhook_set(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<WebhookBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = json?;
    let url = Secret::new(body.url);
    let saved = state.engine.discord_webhook_set(url.expose()).await?;
    Ok(Json(saved).into_response())
}

/// `DELETE /api/accounts/discord/webhook`
pub async fn discord_webhook_delete(
    _: Streamer,
    State(state): State<AppState>,
) -> Result<StatusCode, ApiError> {
    if state.engine.discord_webhook_clear().await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::DiscordWebhookNotFound,
            "no Discord webhook is saved",
        ))
    }
}

/// `GET /api/destinations` — custom RTMP destinations, keys masked.
pub async fn destinations(
    _: Streamer,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list = state.engine.destinations_list().await?;
    Ok(Json(serde_json::json!({ "destinations": list })))
}

/// Body of `POST /api/destinations`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DestinationBody {
    name: String,
    server_url: String,
    stream_key: String,
}

/// `POST /api/destinations` — `{name, serverUrl, streamKey}` → 201, the key masked.
pub async fn destination_add(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<DestinationBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = json?;
    let added = state
        .engine
        .destination_add(&body.name, &body.server_url, Secret::new(body.stream_key))
        .await?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

/// `DELETE /api/destinations/{id}`
pub async fn destination_delete(
    _: Streamer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.destination_delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_page_escapes_what_providers_name() {
        assert_eq!(
            escape("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }
}
