//! Fake Twitch, Google and Discord OAuth servers on one `127.0.0.1:0` listener, written from the
//! providers' documentation:
//!
//! * Twitch ("Getting OAuth Access Tokens", "Refreshing Access Tokens", "Validating Tokens",
//!   "Revoking Access Tokens"), under `/twitch`: `POST /oauth2/device`, `POST /oauth2/token`
//!   (the device grant `urn:ietf:params:oauth:grant-type:device_code` answering pending,
//!   slow_down and so on as scripted, with Twitch's `{"status":400,"message":"…"}` errors; the
//!   refresh grant answering `400 Invalid refresh token`; the authorization-code grant for
//!   confidential apps), `GET /oauth2/authorize`, `GET /oauth2/validate` (`Authorization: OAuth
//!   <token>`), `POST /oauth2/revoke`, Helix `GET /helix/users`. Token responses carry `scope`
//!   as a JSON array, as Twitch's do.
//! * Google ("OAuth 2.0 for Mobile & Desktop Apps"), under `/google`: the authorization endpoint
//!   redirects to the loopback `redirect_uri` with `code` and `state` as a browser would be
//!   sent; the token endpoint checks the client, the redirect URI and
//!   `BASE64URL(SHA256(code_verifier)) == code_challenge` (RFC 7636 S256), refuses a code used
//!   before with `invalid_grant` (and revokes what it issued, RFC 6749 §4.1.2); refresh answers
//!   a new access token only; `POST /revoke`; YouTube `GET /youtube/v3/channels?mine=true`.
//! * Discord ("OAuth2"), under `/discord/api`: the same code flow with PKCE for a public client,
//!   rotating refresh tokens, `POST /oauth2/token/revoke`, `GET /users/@me`.
//!
//! Time is the engine's injected clock, so device codes and tokens expire when the test moves
//! it. Every token issued is remembered, so tests can scan responses, logs and the database
//! for them.

mod code_flow;
mod discord;
mod google;
mod state;
mod twitch;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stagehand_engine::clock::Clock;
use tokio::sync::Notify;

use state::{Inner, Provider, Shared};

pub const TWITCH_CLIENT_ID: &str = "fake-twitch-client";
pub const TWITCH_CLIENT_SECRET: &str = "fake-twitch-secret";
pub const GOOGLE_CLIENT_ID: &str = "fake-google-client.apps.googleusercontent.com";
pub const GOOGLE_CLIENT_SECRET: &str = "fake-google-not-so-secret";
pub const DISCORD_CLIENT_ID: &str = "100200300400";

pub const TWITCH_USER_ID: &str = "141981764";
pub const TWITCH_LOGIN: &str = "stagehandtester";
pub const TWITCH_DISPLAY_NAME: &str = "StagehandTester";
pub const YOUTUBE_CHANNEL_ID: &str = "UCfake0channel0id0000001";
pub const YOUTUBE_CHANNEL_TITLE: &str = "Stagehand Test Channel";
pub const DISCORD_USER_ID: &str = "80351110224678912";
pub const DISCORD_NAME: &str = "Stagehand Tester";

/// What the Twitch token endpoint answers to one device-code poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePoll {
    /// `400 {"status":400,"message":"authorization_pending"}`.
    Pending,
    /// `400 {"status":400,"message":"slow_down"}`.
    SlowDown,
    /// The streamer entered the code: tokens.
    Authorize,
}

/// How the refresh grant answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// New tokens for a good refresh token.
    Normal,
    /// The refresh token is refused (revoked at the provider's site).
    Invalid,
    /// `503` for the next `n` refreshes, then normal.
    Unavailable(u32),
}

/// The running fake.
pub struct FakeOAuth {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOAuth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOAuth {
    /// Starts the fake; `clock` is the engine's.
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            clock,
            base: url.clone(),
            changed: Notify::new(),
            inner: Mutex::new(Inner {
                device_script: vec![DevicePoll::Authorize],
                device_expires_in: 1800,
                device_interval: 5,
                devices: HashMap::new(),
                access: HashMap::new(),
                refresh: HashMap::new(),
                codes: HashMap::new(),
                refresh_mode: RefreshMode::Normal,
                deny: false,
                ttl: [
                    (Provider::Twitch, 14_400),
                    (Provider::Google, 3_599),
                    (Provider::Discord, 604_800),
                ]
                .into_iter()
                .collect(),
                counts: HashMap::new(),
                poll_times: Vec::new(),
                issued: Vec::new(),
                revoked: Vec::new(),
                next: 0,
            }),
        });
        let app = twitch::routes()
            .merge(google::routes())
            .merge(discord::routes())
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, task }
    }

    /// The environment that points an engine at this fake, every provider configured.
    pub fn env(&self) -> Vec<(String, String)> {
        let u = &self.url;
        [
            ("STAGEHAND_TWITCH_CLIENT_ID", TWITCH_CLIENT_ID.to_owned()),
            ("STAGEHAND_TWITCH_ID_URL", format!("{u}/twitch")),
            ("STAGEHAND_TWITCH_API_URL", format!("{u}/twitch/helix")),
            ("STAGEHAND_GOOGLE_CLIENT_ID", GOOGLE_CLIENT_ID.to_owned()),
            (
                "STAGEHAND_GOOGLE_CLIENT_SECRET",
                GOOGLE_CLIENT_SECRET.to_owned(),
            ),
            (
                "STAGEHAND_GOOGLE_AUTH_URL",
                format!("{u}/google/o/oauth2/v2/auth"),
            ),
            ("STAGEHAND_GOOGLE_TOKEN_URL", format!("{u}/google/token")),
            ("STAGEHAND_GOOGLE_REVOKE_URL", format!("{u}/google/revoke")),
            (
                "STAGEHAND_GOOGLE_YOUTUBE_API_URL",
                format!("{u}/google/youtube/v3"),
            ),
            ("STAGEHAND_DISCORD_CLIENT_ID", DISCORD_CLIENT_ID.to_owned()),
            ("STAGEHAND_DISCORD_API_URL", format!("{u}/discord/api")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// What the next device codes answer to their polls, in order (then pending forever).
    pub fn script_device(&self, answers: &[DevicePoll]) {
        self.shared.with(|i| i.device_script = answers.to_vec());
    }

    /// How the refresh grant answers from now on.
    pub fn refresh_mode(&self, mode: RefreshMode) {
        self.shared.with(|i| i.refresh_mode = mode);
    }

    /// The streamer declines on the consent page (Google and Discord).
    pub fn deny_consent(&self, deny: bool) {
        self.shared.with(|i| i.deny = deny);
    }

    /// Revokes every Twitch access token, as the streamer disconnecting the app on twitch.tv
    /// would (refresh tokens keep working).
    pub fn expire_twitch_access_tokens(&self) {
        self.shared.with(|i| {
            for a in i
                .access
                .values_mut()
                .filter(|a| a.provider == Provider::Twitch)
            {
                a.revoked = true;
            }
        });
    }

    /// How many requests an endpoint got (`twitch.poll`, `twitch.refresh`, `google.code`, …).
    pub fn count(&self, key: &str) -> u32 {
        self.shared
            .read(|i| i.counts.get(key).copied().unwrap_or(0))
    }

    /// Waits (up to `seconds`) until `key` has been requested at least `n` times.
    pub async fn wait_count(&self, key: &str, n: u32, seconds: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.count(key) >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!(
                    "{key} was requested {} times, not {n}, within {seconds} s",
                    self.count(key)
                );
            }
        }
    }

    /// Whether `key` is requested again within `millis` (for "nothing more happens" checks).
    pub async fn requested_within(&self, key: &str, millis: u64) -> bool {
        let before = self.count(key);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(millis);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.count(key) > before {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }

    /// When each device poll arrived, by the engine's clock.
    pub fn poll_times(&self) -> Vec<i64> {
        self.shared.read(|i| i.poll_times.clone())
    }

    /// Every token, code and device code the fake ever issued.
    pub fn issued(&self) -> Vec<String> {
        self.shared.read(|i| i.issued.clone())
    }

    /// The tokens revoked through a revocation endpoint.
    pub fn revoked(&self) -> Vec<String> {
        self.shared.read(|i| i.revoked.clone())
    }

    /// Whether an access token is live at the provider.
    pub fn access_live(&self, token: &str) -> bool {
        let now = self.shared.now();
        self.shared.read(|i| {
            i.access
                .get(token)
                .is_some_and(|a| !a.revoked && a.expires_ms > now)
        })
    }
}
