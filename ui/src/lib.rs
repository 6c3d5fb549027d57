//! Stagehand's pages, written as Leptos components and rendered to HTML on the server.
//!
//! This toolchain has no wasm target, so nothing here hydrates: pages are plain HTML, and the
//! live parts are small scripts in `assets/` that talk to the engine over the same WebSockets
//! the overlays use. Each page is a function from the data it shows to a complete document.

use leptos::prelude::*;
use stagehand_protocol::EngineStatus;

mod moderator;

pub use moderator::{
    MODERATOR_JS, MODERATOR_LINK_JS, ModeratorView, moderator_access_ended_page,
    moderator_link_page, moderator_link_refused_page, moderator_panel_page, scope_in_words,
};

/// The shared stylesheet, served at `/ui/style.css`.
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
/// The login page's script, served at `/ui/login.js`.
pub const LOGIN_JS: &str = include_str!("../assets/login.js");
/// The home page's live script, served at `/ui/home.js`.
pub const HOME_JS: &str = include_str!("../assets/home.js");

fn document(body: String) -> String {
    format!("<!DOCTYPE html>{body}")
}

#[component]
fn Page(
    title: String,
    script: Option<&'static str>,
    /// Overrides the server's `Referrer-Policy: no-referrer` for this page. Under `no-referrer`
    /// a form POST carries `Origin: null`, which the Origin guard refuses; a page whose form
    /// must work without script sets `strict-origin` (origin only, never the path).
    #[prop(optional)]
    referrer: Option<&'static str>,
    /// Path prefix of every link on the page: empty on this machine, `/t/{tunnel}` when the
    /// page reached a moderator through the relay.
    #[prop(optional)]
    base: String,
    children: Children,
) -> impl IntoView {
    let stylesheet = format!("{base}/ui/style.css");
    let script = script.map(|src| format!("{base}{src}"));
    view! {
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                {referrer.map(|policy| view! { <meta name="referrer" content=policy /> })}
                <title>{title}</title>
                <link rel="stylesheet" href=stylesheet />
                {script.map(|src| view! { <script src=src defer></script> })}
            </head>
            <body>{children()}</body>
        </html>
    }
}

/// Formats seconds as `1 h 02 min 03 s`.
pub fn format_uptime(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds / 60) % 60, seconds % 60);
    if h > 0 {
        format!("{h} h {m:02} min {s:02} s")
    } else if m > 0 {
        format!("{m} min {s:02} s")
    } else {
        format!("{s} s")
    }
}

/// Sections still to come, shown as placeholders on the home page.
const UPCOMING: &[(&str, &str)] = &[
    (
        "OBS",
        "Connection, scenes, stream and record control, stream health.",
    ),
    (
        "Overlays",
        "Signed links for OBS browser sources and a live scene editor.",
    ),
    (
        "Moderators",
        "One-time invite links with scopes, live sessions, revoke.",
    ),
    (
        "Accounts",
        "Twitch, YouTube and Discord logins kept in the keychain.",
    ),
    (
        "Webhooks",
        "TradingView and custom webhooks, through your own relay.",
    ),
];

/// The home page of the control panel.
pub fn home_page(status: &EngineStatus) -> String {
    let status = status.clone();
    let warnings = status.config_warnings.clone();
    let uptime = status.uptime_seconds;
    let body = view! {
        <Page title="Stagehand".to_owned() script=Some("/ui/home.js")>
            <header class="bar">
                <h1>"Stagehand"</h1>
                <form method="post" action="/session/logout">
                    <button type="submit" class="quiet">"Sign out"</button>
                </form>
            </header>
            <main>
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
                {UPCOMING.iter().map(|(name, what)| view! {
                    <section class="card placeholder">
                        <h2>{*name}</h2>
                        <p class="muted">{*what}" Coming soon."</p>
                    </section>
                }).collect_view()}
            </main>
        </Page>
    };
    document(body.to_html())
}

/// The sign-in page. `error` is shown when a previous attempt failed.
pub fn login_page(error: Option<&str>) -> String {
    let error = error.map(str::to_owned);
    let body = view! {
        <Page title="Sign in · Stagehand".to_owned() script=Some("/ui/login.js")>
            <main class="narrow">
                <section class="card">
                    <h1>"Stagehand"</h1>
                    <p id="auto" class="muted" hidden>"Signing you in…"</p>
                    {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
                    <form id="login" method="post" action="/session">
                        <label for="token">"Streamer token"</label>
                        <input id="token" name="token" type="password" autocomplete="current-password" required />
                        <p class="muted">"Print it with " <code>"stagehand token"</code> "."</p>
                        <button type="submit">"Sign in"</button>
                    </form>
                </section>
            </main>
        </Page>
    };
    document(body.to_html())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> EngineStatus {
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

    #[test]
    fn home_page_shows_the_engine_facts_escaped() {
        let html = home_page(&status());
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
        let without = home_page(&EngineStatus {
            tts_engine: None,
            ..status()
        });
        assert!(
            without.contains("browser voices"),
            "no renderer says so: {without}"
        );
    }

    #[test]
    fn login_page_shows_an_error_only_when_given() {
        assert!(!login_page(None).contains("role=\"alert\""));
        assert!(login_page(Some("Wrong token")).contains("Wrong token"));
    }

    #[test]
    fn uptime_is_readable() {
        assert_eq!(format_uptime(5), "5 s");
        assert_eq!(format_uptime(65), "1 min 05 s");
    }
}
