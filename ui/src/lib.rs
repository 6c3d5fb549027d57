//! Stagehand's pages, written as Leptos components and rendered to HTML on the server.
//!
//! This toolchain has no wasm target, so nothing here hydrates: pages are plain HTML, and the
//! live parts are small scripts in `assets/` that talk to the engine over the same WebSockets
//! the overlays use. Each page is a function from the data it shows to a complete document.

use leptos::prelude::*;

mod editor;
mod moderator;
pub mod panel;

pub use editor::SCENE_EDITOR_JS;
pub use moderator::{
    MODERATOR_JS, MODERATOR_LINK_JS, ModeratorView, moderator_access_ended_page,
    moderator_link_page, moderator_link_refused_page, moderator_panel_page, scope_in_words,
};
pub use panel::{Section, home_page};

/// The shared stylesheet, served at `/ui/style.css`.
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
/// The login page's script, served at `/ui/login.js`.
pub const LOGIN_JS: &str = include_str!("../assets/login.js");
/// The home page's live script, served at `/ui/home.js`.
pub const HOME_JS: &str = include_str!("../assets/home.js");

/// Every file served under `/ui/`: name, body and content type.
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", STYLE_CSS, "text/css; charset=utf-8"),
    ("login.js", LOGIN_JS, JS),
    ("home.js", HOME_JS, JS),
    ("panel.js", panel::PANEL_JS, JS),
    ("overlays.js", panel::OVERLAYS_JS, JS),
    ("moderators.js", panel::MODERATORS_JS, JS),
    ("webhooks.js", panel::WEBHOOKS_JS, JS),
    ("accounts.js", panel::ACCOUNTS_JS, JS),
    ("settings.js", panel::SETTINGS_JS, JS),
    ("scene-editor.js", SCENE_EDITOR_JS, JS),
    ("moderator.js", MODERATOR_JS, JS),
    ("moderator-link.js", MODERATOR_LINK_JS, JS),
];

const JS: &str = "text/javascript; charset=utf-8";

/// A file served under `/ui/`: its body and content type.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, body, kind)| (*body, *kind))
}

fn document(body: String) -> String {
    format!("<!DOCTYPE html>{body}")
}

#[component]
fn Page(
    title: String,
    /// Scripts loaded in order (deferred), all served from `/ui/`.
    scripts: &'static [&'static str],
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
    let scripts: Vec<String> = scripts.iter().map(|src| format!("{base}{src}")).collect();
    view! {
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                {referrer.map(|policy| view! { <meta name="referrer" content=policy /> })}
                <title>{title}</title>
                <link rel="stylesheet" href=stylesheet />
                <link rel="icon" href="data:," />
                {scripts.into_iter().map(|src| view! { <script src=src defer></script> }).collect_view()}
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

/// The sign-in page. `error` is shown when a previous attempt failed.
pub fn login_page(error: Option<&str>) -> String {
    let error = error.map(str::to_owned);
    let body = view! {
        <Page title="Sign in · Stagehand".to_owned() scripts=&["/ui/login.js"]>
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

    #[test]
    fn login_page_shows_an_error_only_when_given() {
        assert!(!login_page(None).contains("role=\"alert\""));
        assert!(login_page(Some("Wrong token")).contains("Wrong token"));
    }

    #[test]
    fn every_script_a_page_loads_is_served() {
        for name in [
            "panel.js",
            "overlays.js",
            "moderators.js",
            "webhooks.js",
            "accounts.js",
            "settings.js",
            "scene-editor.js",
        ] {
            let (body, kind) = asset(name).expect("served");
            assert!(kind.starts_with("text/javascript"));
            assert!(!body.is_empty());
        }
        assert!(asset("../secret").is_none());
    }

    #[test]
    fn uptime_is_readable() {
        assert_eq!(format_uptime(5), "5 s");
        assert_eq!(format_uptime(65), "1 min 05 s");
    }
}
