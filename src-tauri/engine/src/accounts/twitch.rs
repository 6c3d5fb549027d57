//! Twitch, from "Getting OAuth Access Tokens" (dev.twitch.tv): the Device Code Grant for public
//! clients, the Authorization Code grant for a streamer's own confidential app, refresh,
//! `/oauth2/validate` and `/oauth2/revoke`, all on `twitch.id_url`; the display name from
//! Helix `/users` on `twitch.api_url`.
//!
//! Twitch's answers differ from RFC 6749/8628 in two ways that matter here, which is why these
//! requests are made with reqwest rather than the `oauth2` crate: errors are
//! `{"status":400,"message":"authorization_pending"}` (a `message`, not an `error`), and
//! `scope` in token responses is a JSON array. Both spellings are accepted below.

use serde::Deserialize;

use super::{
    AccountError, DeviceFlow, DeviceState, Failure, Flow, FlowStart, Grant, Identity, Provider,
    error_message, http_get_json, http_send,
};
use crate::audit::{AuditEntry, Outcome};
use crate::config::TwitchConfig;
use crate::{Engine, EngineError, Secret};

/// The grant type of a device-code poll (RFC 8628 §3.4).
pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.5: after `slow_down` the interval grows by five seconds, for good.
const SLOW_DOWN_STEP: u64 = 5;
/// RFC 8628 §3.2: the interval when the server names none.
const DEFAULT_INTERVAL: u64 = 5;

fn endpoint(config: &TwitchConfig, path: &str) -> String {
    format!("{}{path}", config.id_url.trim().trim_end_matches('/'))
}

/// `scope` as Twitch sends it (an array) or as RFC 6749 does (a space-separated string).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    List(Vec<String>),
    Text(String),
}

impl Scopes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::List(list) => list,
            Self::Text(text) => text
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    scope: Option<Scopes>,
}

impl TokenResponse {
    fn into_grant(self) -> Grant {
        Grant {
            access: Secret::new(self.access_token),
            refresh: self.refresh_token.map(Secret::new),
            expires_in: self.expires_in,
            scopes: self.scope.map(Scopes::into_vec),
        }
    }
}

#[derive(Deserialize)]
struct DeviceCodeResponse {
    device_code: String,
    expires_in: u64,
    interval: Option<u64>,
    user_code: String,
    verification_uri: String,
}

/// One poll of the token endpoint.
enum Poll {
    Granted(Grant),
    Pending,
    SlowDown,
    Expired,
    Denied,
    Transient(String),
    Failed(String),
}

/// Reads a token response, or classifies the error. Twitch says what went wrong in `message`;
/// RFC-shaped servers in `error`.
async fn token_request(
    http: &reqwest::Client,
    config: &TwitchConfig,
    form: &[(&str, &str)],
) -> Result<Grant, (u16, String)> {
    let (status, body) = http_send(http.post(endpoint(config, "/oauth2/token")).form(form))
        .await
        .map_err(|f| (0, f.detail().to_owned()))?;
    if (200..300).contains(&status) {
        return serde_json::from_slice::<TokenResponse>(&body)
            .map(TokenResponse::into_grant)
            // Not printed: a 200 that failed to parse may hold a token.
            .map_err(|_| {
                (
                    status,
                    "the token answer was not the JSON Twitch documents".into(),
                )
            });
    }
    Err((status, error_message(&body)))
}

fn classify(status: u16, message: String) -> Failure {
    if status == 0 || status == 429 || status >= 500 {
        Failure::Transient(if status == 0 {
            message
        } else {
            format!("HTTP {status}: {message}")
        })
    } else {
        Failure::Rejected(format!("HTTP {status}: {message}"))
    }
}

async fn poll(
    http: &reqwest::Client,
    config: &TwitchConfig,
    client_id: &str,
    client_secret: Option<&Secret>,
    device_code: &Secret,
) -> Poll {
    let scopes = config.scopes.join(" ");
    let mut form = vec![
        ("client_id", client_id),
        ("scopes", scopes.as_str()),
        ("device_code", device_code.expose()),
        ("grant_type", DEVICE_GRANT),
    ];
    if let Some(secret) = client_secret {
        form.push(("client_secret", secret.expose()));
    }
    match token_request(http, config, &form).await {
        Ok(grant) => Poll::Granted(grant),
        Err((status, message)) => match message.to_ascii_lowercase().as_str() {
            "authorization_pending" => Poll::Pending,
            "slow_down" => Poll::SlowDown,
            "expired_token" | "invalid device code" => Poll::Expired,
            "access_denied" | "authorization_declined" => Poll::Denied,
            _ => match classify(status, message) {
                Failure::Transient(m) => Poll::Transient(m),
                Failure::Rejected(m) => Poll::Failed(m),
            },
        },
    }
}

/// The authorization URL of the code flow (a confidential app; Twitch documents no PKCE).
pub(crate) fn authorize_url(
    config: &TwitchConfig,
    client_id: &str,
    redirect_uri: &str,
    state: &Secret,
) -> Result<String, String> {
    let scopes = config.scopes.join(" ");
    reqwest::Url::parse_with_params(
        &endpoint(config, "/oauth2/authorize"),
        [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scopes.as_str()),
            ("state", state.expose()),
        ],
    )
    .map(String::from)
    .map_err(|e| format!("twitch.id_url: {e}"))
}

/// Exchanges the code of the code flow.
pub(crate) async fn exchange_code(
    http: &reqwest::Client,
    config: &TwitchConfig,
    client_id: &str,
    client_secret: &Secret,
    code: &Secret,
    redirect_uri: &str,
) -> Result<Grant, Failure> {
    token_request(
        http,
        config,
        &[
            ("client_id", client_id),
            ("client_secret", client_secret.expose()),
            ("code", code.expose()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect_uri),
        ],
    )
    .await
    .map_err(|(status, message)| classify(status, message))
}

/// Renews tokens. Twitch answers `400 {"message":"Invalid refresh token"}` for a refresh token
/// that is used, revoked or (public clients: 30 days) expired: that is [`Failure::Rejected`].
pub(crate) async fn refresh(
    http: &reqwest::Client,
    config: &TwitchConfig,
    client_id: &str,
    client_secret: Option<&Secret>,
    refresh_token: &Secret,
) -> Result<Grant, Failure> {
    let mut form = vec![
        ("client_id", client_id),
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
    ];
    if let Some(secret) = client_secret {
        form.push(("client_secret", secret.expose()));
    }
    token_request(http, config, &form)
        .await
        .map_err(|(status, message)| classify(status, message))
}

/// What `/oauth2/validate` says about a token.
#[derive(Deserialize)]
pub(crate) struct Validation {
    pub(crate) login: String,
    pub(crate) user_id: String,
    pub(crate) expires_in: Option<u64>,
}

/// `GET /oauth2/validate` with `Authorization: OAuth <token>`; `Ok(None)` when Twitch says
/// the token is no longer valid (401).
pub(crate) async fn validate(
    http: &reqwest::Client,
    config: &TwitchConfig,
    access: &Secret,
) -> Result<Option<Validation>, Failure> {
    let request = http.get(endpoint(config, "/oauth2/validate")).header(
        reqwest::header::AUTHORIZATION,
        format!("OAuth {}", access.expose()),
    );
    match http_get_json::<Validation>(request).await {
        Ok(v) => Ok(Some(v)),
        Err(Failure::Rejected(detail)) if detail.starts_with("HTTP 401") => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct Users {
    data: Vec<User>,
}

#[derive(Deserialize)]
struct User {
    display_name: String,
}

/// The user behind a token: id and login from `/oauth2/validate`, the display name from Helix
/// `/users` (the login when Helix cannot be reached: a name is not worth failing a link over).
pub(crate) async fn identity(
    http: &reqwest::Client,
    config: &TwitchConfig,
    client_id: &str,
    access: &Secret,
) -> Result<Identity, Failure> {
    let validation = validate(http, config, access)
        .await?
        .ok_or_else(|| Failure::Rejected("Twitch says the new token is not valid".into()))?;
    let url = format!("{}/users", config.api_url.trim().trim_end_matches('/'));
    let request = http
        .get(url)
        .query(&[("id", validation.user_id.as_str())])
        .bearer_auth(access.expose())
        .header("Client-Id", client_id);
    let name = match http_get_json::<Users>(request).await {
        Ok(users) => users
            .data
            .into_iter()
            .next()
            .map(|u| u.display_name)
            .filter(|n| !n.is_empty()),
        Err(e) => {
            tracing::warn!(detail = %e.detail(), "could not read the Twitch display name; using the login");
            None
        }
    };
    Ok(Identity {
        id: validation.user_id,
        name: name.unwrap_or(validation.login),
    })
}

/// `POST /oauth2/revoke`. `400 Invalid token` means it is dead already: done.
pub(crate) async fn revoke(
    http: &reqwest::Client,
    config: &TwitchConfig,
    client_id: &str,
    access: &Secret,
) -> Result<(), Failure> {
    let (status, body) = http_send(
        http.post(endpoint(config, "/oauth2/revoke"))
            .form(&[("client_id", client_id), ("token", access.expose())]),
    )
    .await?;
    match status {
        200..=299 => Ok(()),
        400 if error_message(&body).eq_ignore_ascii_case("invalid token") => Ok(()),
        _ => Err(classify(status, error_message(&body))),
    }
}

impl Engine {
    /// Starts the device flow: asks Twitch for a code, remembers it (replacing any earlier
    /// one) and starts polling in the background.
    pub(super) async fn twitch_device_start(
        &self,
        client_id: &str,
    ) -> Result<FlowStart, EngineError> {
        let config = &self.config().twitch;
        let started_ms = self.now_ms();
        let scopes = config.scopes.join(" ");
        let (status, body) = http_send(
            self.accounts()
                .http
                .post(endpoint(config, "/oauth2/device"))
                .form(&[("client_id", client_id), ("scopes", scopes.as_str())]),
        )
        .await
        .map_err(|f| AccountError::provider(Provider::Twitch, f.detail()))?;
        if !(200..300).contains(&status) {
            return Err(AccountError::provider(
                Provider::Twitch,
                format!("HTTP {status}: {}", error_message(&body)),
            )
            .into());
        }
        let device: DeviceCodeResponse = serde_json::from_slice(&body).map_err(|_| {
            AccountError::provider(
                Provider::Twitch,
                "the device code answer was not the JSON Twitch documents",
            )
        })?;
        let interval = device.interval.unwrap_or(DEFAULT_INTERVAL).clamp(1, 60);
        let expires_in = device.expires_in.clamp(1, 3600);
        let expires_ms = started_ms + i64::try_from(expires_in).unwrap_or(1800) * 1000;
        let generation = self
            .accounts()
            .device_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        *self
            .accounts()
            .device
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(DeviceFlow {
            generation,
            state: DeviceState::Pending {
                verification_uri: device.verification_uri.clone(),
                user_code: device.user_code.clone(),
                expires_ms,
                interval,
            },
        });
        self.twitch_device_publish();
        tokio::spawn(self.clone().twitch_device_poll(
            generation,
            client_id.to_owned(),
            Secret::new(device.device_code),
            interval,
            started_ms,
            expires_ms,
        ));
        Ok(FlowStart::Device {
            provider: Provider::Twitch,
            verification_uri: device.verification_uri,
            user_code: device.user_code,
            expires_in,
            interval,
        })
    }

    /// Whether device flow `generation` is still the current, pending one.
    fn twitch_device_current(&self, generation: u64) -> bool {
        self.accounts()
            .device
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|f| {
                f.generation == generation && matches!(f.state, DeviceState::Pending { .. })
            })
    }

    /// Polls the token endpoint every `interval` seconds by the engine's clock (counted from
    /// when the previous poll was sent), until a token, a refusal, or the code's expiry.
    async fn twitch_device_poll(
        self,
        generation: u64,
        client_id: String,
        device_code: Secret,
        mut interval: u64,
        started_ms: i64,
        expires_ms: i64,
    ) {
        let mut last_sent = started_ms;
        loop {
            let due = last_sent + i64::try_from(interval).unwrap_or(60) * 1000;
            self.inner.core.clock.sleep_until(due.min(expires_ms)).await;
            if !self.twitch_device_current(generation) {
                return;
            }
            let now = self.now_ms();
            if now >= expires_ms {
                self.twitch_device_finish(generation, Err(AccountError::DeviceCodeExpired))
                    .await;
                return;
            }
            last_sent = now;
            let secret = match self.account_client_secret(Provider::Twitch).await {
                Ok(secret) => secret,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the Twitch client secret");
                    None
                }
            };
            let answer = poll(
                &self.accounts().http,
                &self.config().twitch,
                &client_id,
                secret.as_ref(),
                &device_code,
            )
            .await;
            let result = match answer {
                Poll::Pending => continue,
                Poll::SlowDown => {
                    interval += SLOW_DOWN_STEP;
                    self.twitch_device_slow_down(generation, interval);
                    continue;
                }
                Poll::Transient(detail) => {
                    tracing::info!(detail = %detail, "Twitch device poll failed; polling on");
                    continue;
                }
                Poll::Granted(grant) => {
                    match self
                        .account_link_finish(Provider::Twitch, Flow::Device, grant)
                        .await
                    {
                        Ok(link) => Ok(link),
                        Err(EngineError::Account(e)) => Err(e),
                        Err(e) => {
                            tracing::error!(error = %e, "storing a Twitch link failed");
                            Err(AccountError::Interrupted)
                        }
                    }
                }
                Poll::Expired => Err(AccountError::DeviceCodeExpired),
                Poll::Denied => Err(AccountError::AccessDenied {
                    title: Provider::Twitch.title(),
                }),
                Poll::Failed(detail) => Err(AccountError::provider(Provider::Twitch, detail)),
            };
            self.twitch_device_finish(generation, result).await;
            return;
        }
    }

    fn twitch_device_slow_down(&self, generation: u64, new_interval: u64) {
        if let Some(flow) = self
            .accounts()
            .device
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .filter(|f| f.generation == generation)
            && let DeviceState::Pending { interval, .. } = &mut flow.state
        {
            *interval = new_interval;
        }
        self.twitch_device_publish();
    }

    /// Publishes `account.link` with the device sign-in as it stands.
    fn twitch_device_publish(&self) {
        match self.account_device_progress(Provider::Twitch) {
            Ok(progress) => self.account_link_publish(Provider::Twitch, Flow::Device, Ok(progress)),
            Err(EngineError::Account(e)) => {
                self.account_link_publish(Provider::Twitch, Flow::Device, Err(&e));
            }
            Err(_) => {}
        }
    }

    /// Records how a device flow ended, tells the UI and writes the audit log.
    async fn twitch_device_finish(
        &self,
        generation: u64,
        result: Result<super::AccountLink, AccountError>,
    ) {
        {
            let mut device = self
                .accounts()
                .device
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match device.as_mut() {
                Some(flow) if flow.generation == generation => {
                    flow.state = match &result {
                        Ok(link) => DeviceState::Linked(Box::new(link.clone())),
                        Err(e) => DeviceState::Failed(e.clone()),
                    };
                }
                // A newer start replaced this flow while it was finishing.
                _ => {}
            }
        }
        self.twitch_device_publish();
        let (outcome, detail) = match &result {
            Ok(link) => (
                Outcome::Ok,
                serde_json::json!({ "flow": "device", "accountId": link.account_id }),
            ),
            Err(e) => (
                Outcome::Failed,
                serde_json::json!({ "flow": "device", "error": e.to_string() }),
            ),
        };
        if let Err(e) = self
            .audit()
            .record(
                AuditEntry::new("streamer", "account.link", outcome)
                    .target(Provider::Twitch.as_str())
                    .detail(detail),
            )
            .await
        {
            tracing::warn!(error = %e, "could not audit the end of a Twitch sign-in");
        }
    }
}
