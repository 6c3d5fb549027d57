//! Home: the engine, OBS and stream health, overlays and where they are open, linked accounts,
//! the relay link, recent alerts and the activity log, kept current by `assets/home.js`.

use leptos::prelude::*;
use stagehand_protocol::EngineStatus;

use super::accounts::{AccountRow, provider_name, status_words};
use super::settings::state_words;
use super::webhooks::DeliveryRow;
use super::{Section, badge, panel_document, time};
use crate::format_uptime;

/// A stream health reading.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthView {
    /// Whether OBS is streaming.
    pub live: bool,
    /// Output bitrate, kbit/s.
    pub bitrate_kbps: Option<f64>,
    /// Frames dropped by the stream output.
    pub dropped_frames: u32,
    /// Frames handled by the stream output.
    pub total_frames: u32,
    /// OBS's CPU use, percent.
    pub cpu_percent: f64,
}

/// What the home page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct HomeView {
    /// The engine's facts.
    pub status: EngineStatus,
    /// `identified`, `connecting`, `lost` or `disabled`.
    pub obs_state: String,
    /// `host:port`.
    pub obs_address: String,
    /// Why OBS is not connected, in words.
    pub obs_error: Option<String>,
    /// The last stream health reading.
    pub health: Option<HealthView>,
    /// Overlays by name, with the pages open for each.
    pub overlays: Vec<(String, usize)>,
    /// Linked accounts.
    pub accounts: Vec<AccountRow>,
    /// The relay link's state.
    pub relay_state: String,
    /// The relay's URL, if configured.
    pub relay_url: Option<String>,
    /// The relay link's last error.
    pub relay_error: Option<String>,
    /// The last webhook deliveries (TradingView and custom alerts).
    pub recent_alerts: Vec<DeliveryRow>,
}

fn health_line(h: &HealthView) -> String {
    if !h.live {
        return format!("Not streaming · OBS CPU {:.1} %", h.cpu_percent);
    }
    let bitrate = h
        .bitrate_kbps
        .map_or_else(|| "measuring…".to_owned(), |b| format!("{b:.0} kbit/s"));
    let dropped = if h.total_frames > 0 {
        f64::from(h.dropped_frames) * 100.0 / f64::from(h.total_frames)
    } else {
        0.0
    };
    format!(
        "Live · {bitrate} · {} dropped frames ({dropped:.1} %) · OBS CPU {:.1} %",
        h.dropped_frames, h.cpu_percent
    )
}

/// The home page of the control panel.
pub fn home_page(view: &HomeView) -> String {
    let v = view.clone();
    let status = v.status.clone();
    let warnings = status.config_warnings.clone();
    let uptime = status.uptime_seconds;
    let (obs_words, obs_class) = state_words(&v.obs_state);
    let (relay_words, relay_class) = state_words(&v.relay_state);
    let health = v.health.as_ref().map(health_line);
    let no_overlays = v.overlays.is_empty();
    let no_accounts = v.accounts.is_empty();
    let no_alerts = v.recent_alerts.is_empty();
    let body = view! {
        <section class="card" aria-labelledby="obs-h" data-part="obs">
            <h2 id="obs-h">"OBS"</h2>
            <p>{badge(obs_words.to_owned(), obs_class)} " " <code>{v.obs_address.clone()}</code></p>
            {v.obs_error.clone().map(|e| view! { <p class="problem-inline">{e}</p> })}
            <p id="health">{health.unwrap_or_else(|| "No stream health reading yet (OBS not connected).".to_owned())}</p>
        </section>
        <section class="card" aria-labelledby="ov-h" data-part="overlays">
            <h2 id="ov-h">"Overlays"</h2>
            {no_overlays.then(|| view! { <p class="muted">"None yet. " <a href="/panel/overlays">"Create one"</a> "."</p> })}
            <ul class="plain" id="home-overlays">
                {v.overlays.clone().into_iter().map(|(name, pages)| {
                    let class = if pages > 0 { "ok" } else { "" };
                    let words = match pages { 0 => "not open".to_owned(), 1 => "1 page".to_owned(), n => format!("{n} pages") };
                    view! { <li>{name} " " {badge(words, class)}</li> }
                }).collect_view()}
            </ul>
        </section>
        <section class="card" aria-labelledby="acct-h" data-part="accounts">
            <h2 id="acct-h">"Accounts"</h2>
            {no_accounts.then(|| view! { <p class="muted">"None linked. " <a href="/panel/accounts">"Link Twitch, YouTube or Discord"</a> "."</p> })}
            <ul class="plain">
                {v.accounts.clone().into_iter().map(|a| {
                    let (words, class) = status_words(&a.status);
                    view! { <li>{provider_name(&a.provider).to_owned()} ": " {a.account_name} " " {badge(words.to_owned(), class)}</li> }
                }).collect_view()}
            </ul>
        </section>
        <section class="card" aria-labelledby="relay-h" data-part="relay">
            <h2 id="relay-h">"Relay"</h2>
            <p>{badge(relay_words.to_owned(), relay_class)} " "
                {v.relay_url.clone().map_or_else(|| view! { <span class="muted">"not configured (see Settings)"</span> }.into_any(), |u| view! { <code>{u}</code> }.into_any())}
            </p>
            {v.relay_error.clone().map(|e| view! { <p class="problem-inline">{e}</p> })}
        </section>
        <section class="card" aria-labelledby="alerts-h" data-part="alerts">
            <h2 id="alerts-h">"Recent alerts"</h2>
            {no_alerts.then(|| view! { <p class="muted">"No webhook alerts yet."</p> })}
            <ul class="plain">
                {v.recent_alerts.clone().into_iter().map(|d| {
                    let (words, class) = match (d.status.as_str(), d.stale) {
                        ("accepted", true) => ("stale", "warn"),
                        ("accepted", false) => ("shown", "ok"),
                        _ => ("refused", "bad"),
                    };
                    view! { <li>{time(d.received_at)} " " {d.source} " " {badge(words.to_owned(), class)}</li> }
                }).collect_view()}
            </ul>
        </section>
        <section class="card" aria-labelledby="engine-h">
            <h2 id="engine-h">"Engine"</h2>
            <dl class="facts">
                <dt>"Version"</dt>
                <dd id="version">{status.version.clone()}</dd>
                <dt>"Address"</dt>
                <dd><code>{status.local_url.clone()}</code></dd>
                <dt>"Data folder"</dt>
                <dd><code id="data-dir">{status.data_dir.clone()}</code></dd>
                <dt>"Secrets"</dt>
                <dd>
                    <span id="secret-backend" class="badge">{status.secret_backend.clone()}</span>
                    " "
                    <span class="muted">{status.secret_location.clone()}</span>
                </dd>
                <dt>"Speech"</dt>
                <dd>
                    <span id="tts-engine" class="badge">
                        {status.tts_engine.clone().unwrap_or_else(|| "browser voices".to_owned())}
                    </span>
                    {status.tts_engine.is_none().then(|| view! {
                        " "
                        <span class="muted">"install espeak-ng so OBS captures overlay speech"</span>
                    })}
                </dd>
                <dt>"Running since"</dt>
                <dd>
                    <time datetime=status.started_at.clone()>{status.started_at.clone()}</time>
                    " · up "
                    <span id="uptime" data-seconds=uptime.to_string()>{format_uptime(uptime)}</span>
                </dd>
                <dt>"Live link"</dt>
                <dd><span id="live" class="badge" aria-live="polite">"connecting…"</span></dd>
            </dl>
            {(!warnings.is_empty()).then(|| view! {
                <div class="warning" role="alert">
                    <h3>"Configuration warnings"</h3>
                    <ul>{warnings.into_iter().map(|w| view! { <li>{w}</li> }).collect_view()}</ul>
                </div>
            })}
        </section>
        <section class="card" aria-labelledby="activity-h">
            <h2 id="activity-h">"Recent activity"</h2>
            <ol id="activity" class="activity" aria-live="polite"></ol>
        </section>
    };
    panel_document(
        Section::Home,
        &["/ui/panel.js", "/ui/home.js"],
        body.to_html(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn status() -> EngineStatus {
        EngineStatus {
            version: "9.9.9".into(),
            data_dir: "/data/<dir>".into(),
            secret_backend: "file".into(),
            secret_location: "encrypted file".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            uptime_seconds: 3723,
            local_url: "http://127.0.0.1:7420".into(),
            config_warnings: vec!["unknown key `x`".into()],
            tts_engine: Some("espeak-ng".into()),
        }
    }

    pub(crate) fn home(status: EngineStatus) -> HomeView {
        HomeView {
            status,
            obs_state: "identified".into(),
            obs_address: "127.0.0.1:4455".into(),
            obs_error: None,
            health: Some(HealthView {
                live: true,
                bitrate_kbps: Some(6000.4),
                dropped_frames: 3,
                total_frames: 300,
                cpu_percent: 12.25,
            }),
            overlays: vec![("Main <scene>".into(), 2)],
            accounts: vec![AccountRow {
                provider: "twitch".into(),
                account_name: "ada".into(),
                status: "needs_relogin".into(),
                status_reason: None,
                linked_at: "2026-01-01T00:00:00.000Z".into(),
            }],
            relay_state: "linked".into(),
            relay_url: Some("https://relay.example".into()),
            relay_error: None,
            recent_alerts: vec![],
        }
    }

    #[test]
    fn home_page_shows_the_engine_facts_escaped() {
        let html = home_page(&home(status()));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("9.9.9"));
        assert!(
            html.contains("/data/&lt;dir&gt;"),
            "text must be escaped: {html}"
        );
        assert!(html.contains("1 h 02 min 03 s"));
        assert!(html.contains("unknown key `x`"));
        assert!(html.contains("/ui/home.js"));
        assert!(html.contains("espeak-ng"), "the speech renderer is shown");
        let without = home_page(&home(EngineStatus {
            tts_engine: None,
            ..status()
        }));
        assert!(
            without.contains("browser voices"),
            "no renderer says so: {without}"
        );
    }

    #[test]
    fn home_page_shows_obs_overlays_accounts_and_relay() {
        let html = home_page(&home(status()));
        assert!(html.contains("connected"), "OBS state in words");
        assert!(
            html.contains("Live · 6000 kbit/s · 3 dropped frames (1.0 %) · OBS CPU 12.2 %")
                || html.contains("Live · 6000 kbit/s · 3 dropped frames (1.0 %) · OBS CPU 12.3 %"),
            "{html}"
        );
        assert!(html.contains("Main &lt;scene&gt;"));
        assert!(html.contains("2 pages"));
        assert!(
            html.contains("sign in again"),
            "a link that needs re-login says so"
        );
        assert!(html.contains("https://relay.example"));
        assert!(html.contains("No webhook alerts yet."));
    }
}
