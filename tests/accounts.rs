//! Platform accounts through the real server: Twitch's device flow, the YouTube and Discord
//! loopback flows with PKCE, refusals that store nothing, the refresher, unlinking, and that no
//! token ever shows up in a response, an event, a log line or the database.
//!
//! The fakes (`support/fake_oauth.rs`) run on the engine's `ManualClock`, so device codes,
//! poll intervals and token lifetimes pass when a test moves the clock, never by sleeping.

use std::sync::Arc;
use std::time::Duration;

use stagehand_engine::Secret;
use stagehand_engine::accounts::Provider;
use stagehand_engine::clock::ManualClock;
use support::fake_oauth::{
    DISCORD_NAME, DevicePoll, FakeOAuth, RefreshMode, TWITCH_CLIENT_SECRET, TWITCH_DISPLAY_NAME,
    TWITCH_USER_ID, YOUTUBE_CHANNEL_ID, YOUTUBE_CHANNEL_TITLE,
};
use support::{Events, Options, TestApp, error_code, event_within, logs};

const START_MS: i64 = 1_800_000_000_000;

struct Rig {
    app: TestApp,
    fake: FakeOAuth,
    clock: ManualClock,
    events: Events,
    /// Every body and event this test saw from Stagehand, for the leak scan.
    seen: Vec<String>,
}

async fn rig_with(extra: &[(&str, &str)]) -> Rig {
    let clock = ManualClock::new(START_MS);
    let fake = FakeOAuth::start(Arc::new(clock.clone())).await;
    let mut options = Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    };
    options.env.extend(fake.env());
    for (k, v) in extra {
        options.env.push(((*k).to_owned(), (*v).to_owned()));
    }
    let app = TestApp::start_with(options).await;
    let events = app.engine.events().subscribe();
    Rig {
        app,
        fake,
        clock,
        events,
        seen: Vec::new(),
    }
}

async fn rig() -> Rig {
    rig_with(&[]).await
}

impl Rig {
    fn options(&self) -> Options {
        let mut options = Options {
            clock: Arc::new(self.clock.clone()),
            ..Options::default()
        };
        options.env.extend(self.fake.env());
        options
    }

    fn advance(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }

    /// GETs a streamer endpoint, keeps the body, answers status and JSON.
    async fn get(&mut self, path: &str) -> (u16, serde_json::Value) {
        let response = self.app.get_as_streamer(path).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        self.seen.push(text.clone());
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// The next event of `kind` for which `want` holds (within 10 s); kept for the leak scan.
    async fn event(
        &mut self,
        kind: &str,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        loop {
            let data = event_within(&mut self.events, kind, 10).await;
            self.seen.push(data.to_string());
            if want(&data) {
                return data;
            }
        }
    }

    async fn accounts(&mut self) -> serde_json::Value {
        let (status, body) = self.get("/api/accounts").await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn stored_tokens(&self, provider: &str) -> Option<Secret> {
        self.app
            .engine
            .secrets()
            .get(&format!("account-{provider}"))
            .await
            .unwrap()
    }

    /// The system browser: follows redirects, asks for HTML, carries no Stagehand credential.
    async fn browse(&mut self, url: &str) -> (u16, String) {
        let browser = reqwest::Client::builder().build().unwrap();
        let response = browser
            .get(url)
            .header("accept", "text/html,application/xhtml+xml")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        self.seen.push(text.clone());
        (status, text)
    }

    /// Links Twitch through the device flow (the fake authorizes at the first poll).
    async fn link_twitch(&mut self) -> serde_json::Value {
        self.fake.script_device(&[DevicePoll::Authorize]);
        let (status, started) = self.get("/api/accounts/twitch/start").await;
        assert_eq!(status, 200, "{started}");
        self.advance(started["interval"].as_u64().unwrap());
        self.event("account.link", |d| d["state"] == "linked").await["account"].clone()
    }

    /// Every token and code the fake issued is absent from what Stagehand answered and
    /// published, from every log line, and from the database files; the secret store file
    /// holds them only encrypted.
    fn assert_no_token_anywhere(&self) {
        let issued = self.fake.issued();
        assert!(!issued.is_empty(), "the test issued tokens to look for");
        let logged = logs().contents();
        let dir = self.app.data_dir();
        let mut files = String::new();
        for name in ["stagehand.db", "stagehand.db-wal", "secrets.enc"] {
            if let Ok(bytes) = std::fs::read(dir.join(name)) {
                files.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        for token in &issued {
            for body in &self.seen {
                assert!(
                    !body.contains(token.as_str()),
                    "a response or event leaked {token}: {body}"
                );
            }
            assert!(!logged.contains(token.as_str()), "the logs leaked {token}");
            assert!(
                !files.contains(token.as_str()),
                "a data file holds {token} in plain text"
            );
        }
    }
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn twitch_device_flow_links_through_pending_and_slow_down() {
    let mut rig = rig().await;
    rig.fake.script_device(&[
        DevicePoll::Pending,
        DevicePoll::SlowDown,
        DevicePoll::Authorize,
    ]);
    let (status, started) = rig.get("/api/accounts/twitch/start").await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["flow"], "device");
    assert_eq!(started["provider"], "twitch");
    assert_eq!(
        started["expires_in"], 1800,
        "Twitch's expires_in, passed on"
    );
    assert_eq!(started["interval"], 5);
    let code = started["user_code"].as_str().unwrap();
    assert!(
        started["verification_uri"].as_str().unwrap().contains(code),
        "the verification URI to open: {started}"
    );
    assert_eq!(rig.fake.count("twitch.device"), 1);
    assert_eq!(
        rig.fake.count("twitch.poll"),
        0,
        "nothing is polled before the interval"
    );

    rig.advance(5);
    rig.fake.wait_count("twitch.poll", 1, 10).await;
    rig.advance(5);
    rig.fake.wait_count("twitch.poll", 2, 10).await;
    let slowed = rig.event("account.link", |d| d["interval"] == 10).await;
    assert_eq!(
        slowed["state"], "pending",
        "slow_down keeps the flow going: {slowed}"
    );
    let (status, progress) = rig.get("/api/accounts/twitch/device").await;
    assert_eq!(status, 200);
    assert_eq!(progress["state"], "pending");
    assert_eq!(
        progress["interval"], 10,
        "slow_down adds five seconds, for good"
    );
    assert_eq!(progress["user_code"], code);

    rig.advance(5);
    rig.advance(5);
    let linked = rig.event("account.link", |d| d["state"] == "linked").await;
    assert_eq!(
        rig.fake.count("twitch.poll"),
        3,
        "pending, slow_down, tokens"
    );
    let polls = rig.fake.poll_times();
    assert!(
        polls[1] - polls[0] >= 5_000,
        "polls at the interval: {polls:?}"
    );
    assert!(
        polls[2] - polls[1] >= 10_000,
        "after slow_down, 5 s more: {polls:?}"
    );
    assert_eq!(linked["account"]["accountName"], TWITCH_DISPLAY_NAME);

    let accounts = rig.accounts().await;
    let twitch = &accounts["accounts"][0];
    assert_eq!(twitch["provider"], "twitch");
    assert_eq!(twitch["accountId"], TWITCH_USER_ID);
    assert_eq!(
        twitch["accountName"], TWITCH_DISPLAY_NAME,
        "from Helix /users"
    );
    assert_eq!(twitch["status"], "ok");
    assert_eq!(twitch["flow"], "device");
    assert!(
        twitch["scopes"]
            .as_array()
            .unwrap()
            .contains(&"chat:read".into()),
        "Twitch's scope array is read: {twitch}"
    );
    assert!(twitch["expiresAt"].is_string());
    let (status, progress) = rig.get("/api/accounts/twitch/device").await;
    assert_eq!((status, progress["state"].as_str()), (200, Some("linked")));

    let stored = rig
        .stored_tokens("twitch")
        .await
        .expect("tokens in the secret store");
    assert!(
        stored.expose().contains("twat"),
        "the access token is what was stored"
    );
    let audit = rig.app.get_json("/api/audit?limit=50").await;
    rig.seen.push(audit.to_string());
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"account.start") && actions.contains(&"account.link"),
        "{actions:?}"
    );
    rig.assert_no_token_anywhere();
}

#[tokio::test]
async fn an_expired_device_code_is_an_error_and_stores_nothing() {
    let mut rig = rig().await;
    rig.fake.script_device(&[]);
    let (status, started) = rig.get("/api/accounts/twitch/start").await;
    assert_eq!(status, 200, "{started}");
    rig.advance(5);
    rig.fake.wait_count("twitch.poll", 1, 10).await;
    rig.advance(1800);
    let failed = rig.event("account.link", |d| d["state"] == "failed").await;
    assert_eq!(failed["code"], "account_device_code_expired");
    let response = rig
        .app
        .get_as_streamer("/api/accounts/twitch/device")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (410, "account_device_code_expired".into()),
        "the UI learns the code timed out"
    );
    assert_eq!(
        rig.accounts().await["accounts"],
        serde_json::json!([]),
        "nothing linked"
    );
    assert!(
        rig.stored_tokens("twitch").await.is_none(),
        "nothing stored"
    );
    let polls = rig.fake.count("twitch.poll");
    assert!(
        !rig.fake.requested_within("twitch.poll", 300).await,
        "polling stopped at {polls}"
    );
    rig.assert_no_token_anywhere();
}

#[tokio::test]
async fn youtube_links_through_the_loopback_redirect_with_pkce() {
    let mut rig = rig().await;
    let (status, started) = rig.get("/api/accounts/youtube/start").await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["flow"], "code");
    let url = started["authorization_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/google/o/oauth2/v2/auth?", rig.fake.url)),
        "{url}"
    );
    let q = query_of(&url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "a SHA-256, base64url");
    assert!(q["state"].len() >= 43, "a 256-bit state");
    assert_eq!(
        q["redirect_uri"],
        format!("{}/auth/youtube/callback", rig.app.url),
        "the loopback callback on our own port (RFC 8252)"
    );
    assert_eq!(q["access_type"], "offline");

    let (status, page) = rig.browse(&url).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("YouTube linked"), "{page}");
    assert!(page.contains(YOUTUBE_CHANNEL_TITLE), "{page}");
    assert_eq!(
        rig.fake.count("google.code"),
        1,
        "one exchange, verifier accepted"
    );
    let accounts = rig.accounts().await;
    let youtube = &accounts["accounts"][0];
    assert_eq!(youtube["provider"], "youtube");
    assert_eq!(youtube["accountId"], YOUTUBE_CHANNEL_ID);
    assert_eq!(youtube["accountName"], YOUTUBE_CHANNEL_TITLE);
    assert_eq!(youtube["status"], "ok");
    let linked = rig.event("account.link", |d| d["state"] == "linked").await;
    assert_eq!(
        linked["flow"], "code",
        "the UI hears of a loopback link too"
    );
    assert_eq!(linked["account"]["accountId"], YOUTUBE_CHANNEL_ID);

    // The same redirect again (a reload, or someone replaying it): the state is spent.
    let callback = format!(
        "{}/auth/youtube/callback?state={}&code=4%2F0fake-code1",
        rig.app.url,
        urlencode(&q["state"])
    );
    let response = rig.app.client.get(&callback).send().await.unwrap();
    assert_eq!(
        error_code(response).await,
        (400, "account_state_invalid".into())
    );
    assert_eq!(
        rig.fake.count("google.code"),
        1,
        "a spent state never reaches Google"
    );
    rig.assert_no_token_anywhere();
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)]).unwrap()[2..].to_owned()
}

#[tokio::test]
async fn a_state_that_does_not_match_is_refused_and_stores_nothing() {
    let mut rig = rig().await;
    let (_, started) = rig.get("/api/accounts/youtube/start").await;
    let url = started["authorization_url"].as_str().unwrap().to_owned();
    let state = query_of(&url)["state"].clone();
    for callback in [
        format!("{}/auth/youtube/callback?state=forged&code=x", rig.app.url),
        format!("{}/auth/youtube/callback?code=x", rig.app.url),
        // The right state on another provider's callback.
        format!(
            "{}/auth/discord/callback?state={}&code=x",
            rig.app.url,
            urlencode(&state)
        ),
    ] {
        let response = rig.app.client.get(&callback).send().await.unwrap();
        assert_eq!(
            error_code(response).await,
            (400, "account_state_invalid".into()),
            "{callback}"
        );
    }
    // A browser gets the same refusal as a page.
    let (status, page) = rig
        .browse(&format!(
            "{}/auth/youtube/callback?state=forged&code=x",
            rig.app.url
        ))
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("account_state_invalid"), "{page}");
    assert_eq!(
        rig.fake.count("google.code"),
        0,
        "nothing reached the token endpoint"
    );
    assert_eq!(rig.accounts().await["accounts"], serde_json::json!([]));
    assert!(rig.stored_tokens("youtube").await.is_none());
    assert!(rig.stored_tokens("discord").await.is_none());
    let audit = rig.app.engine.audit().list(50, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "account.callback" && e.outcome == "denied"),
        "refused callbacks are audited"
    );
}

#[tokio::test]
async fn a_declined_consent_is_an_error_and_stores_nothing() {
    let mut rig = rig().await;
    rig.fake.deny_consent(true);
    let (_, started) = rig.get("/api/accounts/youtube/start").await;
    let (status, page) = rig
        .browse(started["authorization_url"].as_str().unwrap())
        .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("account_access_denied"), "{page}");
    let failed = rig.event("account.link", |d| d["state"] == "failed").await;
    assert_eq!(
        failed["code"], "account_access_denied",
        "the UI hears of it too"
    );
    assert_eq!(rig.fake.count("google.code"), 0);
    assert_eq!(rig.accounts().await["accounts"], serde_json::json!([]));
    assert!(rig.stored_tokens("youtube").await.is_none());
}

#[tokio::test]
async fn discord_links_with_pkce_and_a_replayed_code_is_refused() {
    let mut rig = rig().await;
    let (_, started) = rig.get("/api/accounts/discord/start").await;
    let url = started["authorization_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/discord/api/oauth2/authorize?", rig.fake.url)));
    assert_eq!(query_of(&url)["scope"], "identify");
    // Follow the provider's redirect by hand, to keep the code.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = no_redirects.get(&url).send().await.unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_owned();
    let code = query_of(&back)["code"].clone();
    let (status, page) = rig.browse(&back).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(DISCORD_NAME), "{page}");
    let before = rig
        .stored_tokens("discord")
        .await
        .unwrap()
        .expose()
        .to_owned();
    let linked_at = rig.accounts().await["accounts"][0]["linkedAt"].clone();

    // The same code with a fresh, valid state: Discord refuses a code used before.
    let (_, again) = rig.get("/api/accounts/discord/start").await;
    let state = query_of(again["authorization_url"].as_str().unwrap())["state"].clone();
    let replay = format!(
        "{}/auth/discord/callback?code={}&state={}",
        rig.app.url,
        urlencode(&code),
        urlencode(&state)
    );
    let response = rig.app.client.get(&replay).send().await.unwrap();
    assert_eq!(
        error_code(response).await,
        (400, "account_code_rejected".into())
    );
    assert_eq!(
        rig.fake.count("discord.code"),
        2,
        "the replay reached Discord and was refused"
    );
    assert_eq!(
        rig.stored_tokens("discord").await.unwrap().expose(),
        before,
        "nothing new was stored"
    );
    assert_eq!(rig.accounts().await["accounts"][0]["linkedAt"], linked_at);
    rig.assert_no_token_anywhere();
}

#[tokio::test]
async fn unlinking_revokes_at_the_provider_then_deletes() {
    let mut rig = rig().await;
    rig.link_twitch().await;
    let (_, started) = rig.get("/api/accounts/discord/start").await;
    rig.browse(started["authorization_url"].as_str().unwrap())
        .await;
    assert_eq!(
        rig.accounts().await["accounts"].as_array().unwrap().len(),
        2
    );

    let response = rig
        .app
        .client
        .delete(rig.app.at("/api/accounts/discord"))
        .header("x-streamer-token", &rig.app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let unlinked: serde_json::Value = response.json().await.unwrap();
    assert_eq!(unlinked["revoked"], true, "{unlinked}");
    assert_eq!(
        rig.fake.count("discord.revoke"),
        1,
        "the revocation reached Discord"
    );
    assert!(
        rig.fake.revoked()[0].starts_with("dcat-rt"),
        "the refresh token is revoked, which ends the grant"
    );
    rig.event("account.status", |d| {
        d["status"] == "unlinked" && d["provider"] == "discord"
    })
    .await;

    let twitch_tokens = rig.stored_tokens("twitch").await.unwrap();
    let access =
        serde_json::from_str::<serde_json::Value>(twitch_tokens.expose()).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(rig.fake.access_live(&access));
    let response = rig
        .app
        .client
        .delete(rig.app.at("/api/accounts/twitch"))
        .header("x-streamer-token", &rig.app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(rig.fake.count("twitch.revoke"), 1);
    assert!(
        !rig.fake.access_live(&access),
        "Twitch no longer honours the token"
    );
    assert_eq!(rig.accounts().await["accounts"], serde_json::json!([]));
    assert!(rig.stored_tokens("twitch").await.is_none());
    assert!(rig.stored_tokens("discord").await.is_none());
    let response = rig
        .app
        .client
        .delete(rig.app.at("/api/accounts/twitch"))
        .header("x-streamer-token", &rig.app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (404, "account_not_linked".into())
    );
    rig.assert_no_token_anywhere();
}

#[tokio::test]
async fn the_refresher_renews_a_token_before_it_expires() {
    let mut rig = rig().await;
    let linked = rig.link_twitch().await;
    let first = rig
        .stored_tokens("twitch")
        .await
        .unwrap()
        .expose()
        .to_owned();
    assert_eq!(rig.fake.count("twitch.refresh"), 0);
    // Twitch's token lives 14 400 s; renewal is due five minutes (refresh_lead_seconds) early.
    rig.advance(14_400 - 300);
    let renewed = rig
        .event("account.status", |d| {
            d["provider"] == "twitch" && d["refreshedAt"].is_string()
        })
        .await;
    assert_eq!(renewed["status"], "ok");
    assert_eq!(rig.fake.count("twitch.refresh"), 1);
    assert_ne!(renewed["expiresAt"], linked["expiresAt"], "a new expiry");
    let second = rig
        .stored_tokens("twitch")
        .await
        .unwrap()
        .expose()
        .to_owned();
    assert_ne!(first, second, "new tokens in the secret store");
    let accounts = rig.accounts().await;
    assert_eq!(accounts["accounts"][0]["status"], "ok");
    rig.assert_no_token_anywhere();
}

#[tokio::test]
async fn a_refused_refresh_token_needs_relogin_and_is_not_retried() {
    let mut rig = rig().await;
    rig.link_twitch().await;
    rig.fake.refresh_mode(RefreshMode::Invalid);
    rig.advance(14_400 - 300);
    let notice = rig
        .event("account.status", |d| d["status"] == "needs_relogin")
        .await;
    assert!(
        notice["notice"].as_str().unwrap().contains("sign in again"),
        "a notice the UI can show: {notice}"
    );
    assert_eq!(rig.fake.count("twitch.refresh"), 1);
    let accounts = rig.accounts().await;
    assert_eq!(accounts["accounts"][0]["status"], "needs_relogin");
    assert!(
        accounts["accounts"][0]["statusReason"]
            .as_str()
            .unwrap()
            .contains("Invalid refresh token"),
        "{accounts}"
    );

    // Hours later nothing has been retried: no storm against Twitch.
    rig.advance(10 * 3600);
    assert!(
        !rig.fake.requested_within("twitch.refresh", 300).await,
        "the refresher does not retry a refused refresh token"
    );
    let response = rig
        .app
        .post_as_streamer("/api/accounts/twitch/refresh")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (409, "account_needs_relogin".into())
    );
    assert_eq!(
        rig.fake.count("twitch.refresh"),
        1,
        "a manual refresh is refused here too"
    );
    let audit = rig.app.engine.audit().list(50, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "account.refresh" && e.outcome == "failed"),
        "the failed refresh is audited"
    );

    // Linking again clears it.
    rig.fake.refresh_mode(RefreshMode::Normal);
    rig.link_twitch().await;
    assert_eq!(rig.accounts().await["accounts"][0]["status"], "ok");
    rig.assert_no_token_anywhere();
}

#[tokio::test]
async fn two_refresh_triggers_at_once_make_one_refresh() {
    let mut rig = rig().await;
    rig.link_twitch().await;
    let engine = rig.app.engine.clone();
    let (a, b) = tokio::join!(
        engine.account_refresh(Provider::Twitch),
        engine.account_refresh(Provider::Twitch)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        rig.fake.count("twitch.refresh"),
        1,
        "the second trigger joined the refresh under way"
    );
    assert_eq!(a.expires_at, b.expires_at, "both see the same renewal");
    // One after the other they are two refreshes (and the rotated refresh token works).
    engine.account_refresh(Provider::Twitch).await.unwrap();
    assert_eq!(rig.fake.count("twitch.refresh"), 2);
    rig.assert_no_token_anywhere();
}

#[tokio::test]
async fn an_unreachable_provider_is_retried_with_backoff() {
    let mut rig = rig().await;
    let (_, started) = rig.get("/api/accounts/youtube/start").await;
    rig.browse(started["authorization_url"].as_str().unwrap())
        .await;
    rig.fake.refresh_mode(RefreshMode::Unavailable(1));
    // Google's token lives 3 599 s.
    rig.advance(3_599 - 300);
    let retrying = rig
        .event("account.status", |d| {
            d["provider"] == "youtube" && d["statusReason"].is_string()
        })
        .await;
    assert_eq!(retrying["status"], "refreshing", "{retrying}");
    assert_eq!(rig.fake.count("google.refresh"), 1);
    rig.advance(5);
    let renewed = rig
        .event("account.status", |d| {
            d["provider"] == "youtube" && d["refreshedAt"].is_string()
        })
        .await;
    assert_eq!(renewed["status"], "ok");
    assert_eq!(
        rig.fake.count("google.refresh"),
        2,
        "retried once, after the backoff"
    );
    let stored = rig.stored_tokens("youtube").await.unwrap();
    assert!(
        stored.expose().contains("refresh_token"),
        "Google sends no new refresh token; the old one is kept"
    );
    rig.assert_no_token_anywhere();
}

#[tokio::test]
async fn twitch_tokens_are_validated_at_start_and_hourly() {
    let mut rig = rig().await;
    rig.link_twitch().await;
    let at_link = rig.fake.count("twitch.validate");
    assert_eq!(at_link, 1, "linking validated the new token");
    let options = rig.options();
    rig.app = rig.app.restart(options).await;
    rig.events = rig.app.engine.events().subscribe();
    rig.fake
        .wait_count("twitch.validate", at_link + 1, 10)
        .await;
    rig.advance(3_600);
    rig.fake
        .wait_count("twitch.validate", at_link + 2, 10)
        .await;
    assert_eq!(
        rig.fake.count("twitch.refresh"),
        0,
        "a valid token is left alone"
    );

    // The streamer disconnects the app on twitch.tv: the next validation finds out and the
    // refresh token gets a new access token at once.
    rig.fake.expire_twitch_access_tokens();
    rig.advance(3_600);
    let renewed = rig
        .event("account.status", |d| {
            d["provider"] == "twitch" && d["refreshedAt"].is_string()
        })
        .await;
    assert_eq!(renewed["status"], "ok");
    assert_eq!(rig.fake.count("twitch.refresh"), 1);
    rig.assert_no_token_anywhere();
}

#[tokio::test]
async fn twitch_offers_the_code_flow_only_with_a_client_secret() {
    let rig = rig().await;
    let response = rig
        .app
        .get_as_streamer("/api/accounts/twitch/start?flow=code")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (409, "account_flow_unavailable".into())
    );

    let mut rig = rig_with(&[("STAGEHAND_TWITCH_CLIENT_SECRET", TWITCH_CLIENT_SECRET)]).await;
    let (_, accounts) = rig.get("/api/accounts").await;
    assert_eq!(
        accounts["providers"][0]["flows"],
        serde_json::json!(["device", "code"])
    );
    let (status, started) = rig.get("/api/accounts/twitch/start?flow=code").await;
    assert_eq!(status, 200, "{started}");
    let url = started["authorization_url"].as_str().unwrap().to_owned();
    assert_eq!(
        query_of(&url)["redirect_uri"],
        format!(
            "http://localhost:{}/auth/twitch/callback",
            rig.app.addr.port()
        ),
        "Twitch takes plain HTTP redirects to localhost only"
    );
    let (status, page) = rig.browse(&url).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(rig.fake.count("twitch.code"), 1);
    assert_eq!(rig.accounts().await["accounts"][0]["flow"], "code");
    rig.assert_no_token_anywhere();
}

#[tokio::test]
async fn without_a_client_id_start_says_which_variable_to_set() {
    let app = TestApp::start().await;
    for (provider, var) in [
        ("twitch", "STAGEHAND_TWITCH_CLIENT_ID"),
        ("youtube", "STAGEHAND_GOOGLE_CLIENT_ID"),
        ("discord", "STAGEHAND_DISCORD_CLIENT_ID"),
    ] {
        let response = app
            .get_as_streamer(&format!("/api/accounts/{provider}/start"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 409);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "account_provider_not_configured");
        assert_eq!(body["error"]["details"]["envVar"], var);
        assert!(
            body["error"]["message"].as_str().unwrap().contains(var),
            "{body}"
        );
    }
    let response = app
        .get_as_streamer("/api/accounts/myspace/start")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (404, "account_provider_unknown".into())
    );
    let response = app.get("/api/accounts/twitch/start").send().await.unwrap();
    assert_eq!(
        error_code(response).await,
        (401, "auth_required".into()),
        "starting a link is the streamer's; only the callback is open"
    );
    let audit = app.engine.audit().list(50, None).await.unwrap();
    assert_eq!(
        audit.iter().filter(|e| e.action == "account.start").count(),
        4,
        "every /auth/* call that reached Stagehand is audited"
    );
}

#[tokio::test]
async fn rtmp_destinations_keep_the_key_secret_and_show_it_masked() {
    let app = TestApp::start().await;
    let key = "live_123456789_SuperSecretStreamKey";
    let response = app
        .post_as_streamer("/api/destinations")
        .json(&serde_json::json!({
            "name": "Backup",
            "serverUrl": "rtmp://live.example.com/app/",
            "streamKey": key,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let added: serde_json::Value = response.json().await.unwrap();
    assert_eq!(added["maskedUrl"], "rtmp://live.example.com/app/****");
    let id = added["id"].as_str().unwrap().to_owned();
    let list = app
        .get_as_streamer("/api/destinations")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("rtmp://live.example.com/app/****"), "{list}");
    assert!(
        !list.contains(key) && !added.to_string().contains(key),
        "the key is never shown"
    );
    assert_eq!(
        app.engine
            .destination_stream_key(&id)
            .await
            .unwrap()
            .expose(),
        key,
        "the key is in the secret store"
    );
    let response = app
        .post_as_streamer("/api/destinations")
        .json(&serde_json::json!({ "name": "Bad", "serverUrl": "https://x.example/app", "streamKey": "k" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await, (422, "invalid_fields".into()));
    let db = String::from_utf8_lossy(&std::fs::read(app.data_dir().join("stagehand.db")).unwrap())
        .into_owned()
        + &String::from_utf8_lossy(
            &std::fs::read(app.data_dir().join("stagehand.db-wal")).unwrap_or_default(),
        );
    assert!(!db.contains(key), "the database never holds the key");
    let response = app
        .client
        .delete(app.at(&format!("/api/destinations/{id}")))
        .header("x-streamer-token", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(
        app.engine.destination_stream_key(&id).await.is_err(),
        "the key went with it"
    );
    assert!(!logs().contents().contains(key));
}

#[tokio::test]
async fn a_discord_webhook_url_is_kept_secret_and_shown_masked() {
    let app = TestApp::start().await;
    let url = "https://discord.com/api/webhooks/123456789012345678/AbCdEf-webhook_token_value";
    let response = app
        .put_as_streamer("/api/accounts/discord/webhook")
        .json(&serde_json::json!({ "url": url }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let saved = response.text().await.unwrap();
    assert!(
        saved.contains("https://discord.com/api/webhooks/123456789012345678/****"),
        "{saved}"
    );
    let accounts = app
        .get_as_streamer("/api/accounts")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(accounts.contains("/123456789012345678/****"), "{accounts}");
    for shown in [&saved, &accounts] {
        assert!(!shown.contains("webhook_token_value"), "{shown}");
    }
    assert_eq!(
        app.engine
            .discord_webhook_url()
            .await
            .unwrap()
            .unwrap()
            .expose(),
        url
    );
    let response = app
        .put_as_streamer("/api/accounts/discord/webhook")
        .json(&serde_json::json!({ "url": "https://evil.example/api/webhooks/1/x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await, (422, "invalid_fields".into()));
    assert!(!logs().contents().contains("webhook_token_value"));
}

#[tokio::test]
async fn a_relogin_notice_reaches_the_panel_socket() {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let mut rig = rig().await;
    let mut request = format!("ws://{}/ws/events", rig.app.addr)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("origin", HeaderValue::from_str(&rig.app.url).unwrap());
    headers.insert(
        "x-streamer-token",
        HeaderValue::from_str(&rig.app.token).unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    rig.link_twitch().await;
    rig.fake.refresh_mode(RefreshMode::Invalid);
    rig.advance(14_400 - 300);

    let mut notices = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while notices.is_empty() {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a notice on /ws/events within 10 s of the refused refresh")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = frame {
            let event: serde_json::Value = serde_json::from_str(&text).unwrap();
            if event["type"] == "notice" {
                notices.push(event["data"].clone());
            }
        }
    }
    let notice = &notices[0];
    assert_eq!(notice["kind"], "account_needs_relogin", "{notice}");
    assert_eq!(notice["provider"], "twitch", "{notice}");
    assert!(
        notice["message"]
            .as_str()
            .unwrap()
            .contains("sign in again"),
        "the engine's words, for the panel and the OS notification: {notice}"
    );
    rig.seen.push(notice.to_string());
    rig.assert_no_token_anywhere();
}
