//! The moderator's pages: the invite link that opens a session, the page shown when a link can
//! no longer be opened, and the panel itself.
//!
//! The link page never consumes the key on GET: it holds the key in a form that its script
//! posts, so a chat app's link preview (which fetches but runs no script) cannot burn it. The
//! panel is rendered with exactly the sections the session's scopes allow; the scene editor and
//! the forms come alive in `assets/moderator.js`, which talks to `/ws/moderator`. The server
//! checks every action against the scopes again, so hiding a section is a courtesy, not the
//! guard.

use leptos::prelude::*;

use super::editor::{EditorFor, scene_editor};
use super::{Page, document};

/// The panel's script, served at `/ui/moderator.js`.
pub const MODERATOR_JS: &str = include_str!("../assets/moderator.js");
/// The invite link page's script, served at `/ui/moderator-link.js`.
pub const MODERATOR_LINK_JS: &str = include_str!("../assets/moderator-link.js");

/// What the panel shows about the moderator's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeratorView {
    /// Who they are, as the streamer named them.
    pub label: String,
    /// What they may do: wire names such as `scene.edit`.
    pub scopes: Vec<String>,
    /// When the session ends (RFC 3339).
    pub expires_at: String,
    /// Path prefix of the panel's links: empty locally, `/t/{tunnel}` through the relay.
    pub base: String,
}

impl ModeratorView {
    fn may(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Every scope a moderator can hold, with the words the panel uses for it.
pub(crate) const SCOPE_WORDS: &[(&str, &str)] = &[
    ("scene.edit", "Edit overlay scenes"),
    ("tts", "Send text to speech"),
    ("alerts", "Fire test alerts"),
    ("chat.moderate", "Moderate chat"),
    ("obs.scenes", "Switch OBS scenes"),
];

/// A scope in words (`scene.edit` → "Edit overlay scenes"); `None` for a scope this page does
/// not know.
pub fn scope_in_words(scope: &str) -> Option<&'static str> {
    SCOPE_WORDS
        .iter()
        .find(|(name, _)| *name == scope)
        .map(|(_, words)| *words)
}

/// `2026-05-01T18:30:00.000Z` → `2026-05-01 18:30 UTC`, readable before the script replaces it
/// with the moderator's local time; anything else is shown as given.
pub(crate) fn readable_time(rfc3339: &str) -> String {
    let utc = rfc3339.ends_with('Z') || rfc3339.ends_with("+00:00");
    match (rfc3339.get(..10), rfc3339.get(10..11), rfc3339.get(11..16)) {
        (Some(day), Some("T"), Some(time)) if utc => format!("{day} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

/// `GET /m/{key}`: posts the key to open the session. The key is in the hidden input and
/// nowhere else on the page. `base` prefixes every link (`/t/{tunnel}` through the relay).
pub fn moderator_link_page(key: &str, base: &str) -> String {
    let key = key.to_owned();
    let action = format!("{base}/api/moderator-keys/consume");
    let body = view! {
        <Page
            title="Moderator link · Stagehand".to_owned()
            scripts=&["/ui/moderator-link.js"]
            referrer="strict-origin"
            base=base.to_owned()
        >
            <main class="narrow">
                <section class="card">
                    <h1>"Opening the moderator panel…"</h1>
                    <form id="consume" method="post" action=action>
                        <input type="hidden" name="key" value=key />
                        <p class="muted">
                            "This link works once. If the panel does not open by itself, press the button."
                        </p>
                        <button type="submit">"Open the panel"</button>
                    </form>
                </section>
            </main>
        </Page>
    };
    document(body.to_html())
}

/// The answer to a link that was already used, has expired or never existed (deliberately the
/// same words for all three, as the server gives the same status).
pub fn moderator_link_refused_page(base: &str) -> String {
    let body = view! {
        <Page title="Link no longer valid · Stagehand".to_owned() scripts=&[] base=base.to_owned()>
            <main class="narrow">
                <section class="card">
                    <h1 id="refused">
                        "This moderator link was already used or has expired. Ask the streamer for a new one."
                    </h1>
                    <p class="muted">
                        "Each link opens the panel once. If you opened it before on this device, the panel may still be open in another tab."
                    </p>
                </section>
            </main>
        </Page>
    };
    document(body.to_html())
}

/// `GET /moderator` with a session that has ended (revoked by the streamer, or expired).
pub fn moderator_access_ended_page(base: &str) -> String {
    let body = view! {
        <Page title="Access ended · Stagehand".to_owned() scripts=&[] base=base.to_owned()>
            <main class="narrow">
                <section class="card">
                    <h1 id="ended">"Your moderator access has ended."</h1>
                    <p class="muted">
                        "The streamer revoked it, or its time ran out. Ask the streamer for a new link if you still need it."
                    </p>
                </section>
            </main>
        </Page>
    };
    document(body.to_html())
}

/// `GET /moderator`: the panel for a live session, with a section per scope held.
pub fn moderator_panel_page(view: &ModeratorView) -> String {
    let label = view.label.clone();
    let scopes_attr = view.scopes.join(" ");
    let expires_at = view.expires_at.clone();
    let expires_text = readable_time(&view.expires_at);
    let abilities: Vec<&'static str> = view
        .scopes
        .iter()
        .filter_map(|s| scope_in_words(s))
        .collect();
    let (edit, tts, alerts, chat, obs) = (
        view.may("scene.edit"),
        view.may("tts"),
        view.may("alerts"),
        view.may("chat.moderate"),
        view.may("obs.scenes"),
    );
    let body = view! {
        <Page title="Moderator · Stagehand".to_owned() scripts=&["/ui/scene-editor.js", "/ui/moderator.js"] base=view.base.clone()>
            <header class="bar">
                <h1>"Stagehand moderator"</h1>
                <span id="connection" class="badge">"connecting…"</span>
            </header>
            <main id="moderator" class="moderator" data-scopes=scopes_attr>
                <section class="card who" aria-labelledby="who-h">
                    <h2 id="who-h">"Your access"</h2>
                    <dl class="facts">
                        <dt>"You are"</dt>
                        <dd id="label">{label}</dd>
                        <dt>"You may"</dt>
                        <dd>
                            <ul id="scopes" class="scopes">
                                {abilities.into_iter().map(|words| view! { <li>{words}</li> }).collect_view()}
                            </ul>
                        </dd>
                        <dt>"Access ends"</dt>
                        <dd>
                            <time id="expires" datetime=expires_at>{expires_text}</time>
                            " "
                            <span id="expires-in" class="muted"></span>
                        </dd>
                    </dl>
                    <p id="status" class="status" role="status" aria-live="polite">"Connecting…"</p>
                    <p id="ended" class="ended" role="alert" hidden>
                        "Your access has ended. Ask the streamer for a new link if you need more time."
                    </p>
                    <noscript>
                        <p class="error">"The moderator panel needs JavaScript to talk to Stagehand."</p>
                    </noscript>
                </section>
                {edit.then(|| scene_editor(EditorFor::Moderator))}
                {tts.then(tts_form)}
                {alerts.then(alert_form)}
                {chat.then(|| coming_soon("chat-h", "Chat", "Moderating chat from here is coming soon."))}
                {obs.then(|| coming_soon("obs-h", "OBS scenes", "Switching the streamer's OBS scenes from here is coming soon."))}
            </main>
        </Page>
    };
    document(body.to_html())
}

fn tts_form() -> impl IntoView {
    view! {
        <section id="tts-section" class="card" aria-labelledby="tts-h">
            <h2 id="tts-h">"Text to speech"</h2>
            <form id="tts-form">
                <label for="tts-text">"Text"</label>
                <textarea id="tts-text" name="text" rows="3" maxlength="500" required></textarea>
                <label for="tts-lang">"Language"</label>
                <input id="tts-lang" name="lang" value="en-US" autocomplete="off" spellcheck="false" />
                <button type="submit" disabled>"Speak on stream"</button>
            </form>
        </section>
    }
}

fn alert_form() -> impl IntoView {
    view! {
        <section id="alert-section" class="card" aria-labelledby="alerts-h">
            <h2 id="alerts-h">"Test alert"</h2>
            <form id="alert-form">
                <label for="alert-overlay">"Show on"</label>
                <select id="alert-overlay" name="overlayId">
                    <option value="">"All overlays"</option>
                </select>
                <label for="alert-title">"Title"</label>
                <input id="alert-title" name="title" maxlength="200" required autocomplete="off" />
                <label for="alert-message">"Message"</label>
                <input id="alert-message" name="message" maxlength="500" autocomplete="off" />
                <button type="submit" disabled>"Fire test alert"</button>
            </form>
        </section>
    }
}

fn coming_soon(id: &'static str, title: &'static str, what: &'static str) -> impl IntoView {
    view! {
        <section class="card placeholder" aria-labelledby=id>
            <h2 id=id>{title}</h2>
            <p class="muted">{what}</p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(scopes: &[&str]) -> ModeratorView {
        ModeratorView {
            label: "Sam <script>alert(1)</script> & co".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_at: "2026-05-01T18:30:00.000Z".into(),
            base: String::new(),
        }
    }

    #[test]
    fn through_the_relay_every_link_carries_the_tunnel_prefix() {
        let link = moderator_link_page("k3y", "/t/tun_1");
        assert!(
            link.contains(r#"action="/t/tun_1/api/moderator-keys/consume""#),
            "{link}"
        );
        assert!(
            link.contains(r#"src="/t/tun_1/ui/moderator-link.js""#),
            "{link}"
        );
        assert!(link.contains(r#"href="/t/tun_1/ui/style.css""#), "{link}");
        let panel = moderator_panel_page(&ModeratorView {
            base: "/t/tun_1".into(),
            ..view(&["scene.edit"])
        });
        assert!(
            panel.contains(r#"src="/t/tun_1/ui/moderator.js""#),
            "{panel}"
        );
        assert!(
            !panel.contains(r#""/ui/"#),
            "no link may leave the prefix: {panel}"
        );
        assert!(
            moderator_access_ended_page("/t/tun_1").contains(r#"href="/t/tun_1/ui/style.css""#)
        );
    }

    #[test]
    fn link_page_holds_the_key_only_in_its_hidden_input() {
        let key = "k3yK3yk3y-_0123456789abcdefXYZ";
        let html = moderator_link_page(key, "");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("Opening the moderator panel…"));
        assert!(
            html.contains(
                r#"<form id="consume" method="post" action="/api/moderator-keys/consume">"#
            ),
            "the form posts the key, so a GET (a link preview) never consumes it: {html}"
        );
        assert!(
            html.contains(&format!(r#"<input type="hidden" name="key" value="{key}""#)),
            "{html}"
        );
        assert_eq!(
            html.matches(key).count(),
            1,
            "the key appears once, in the hidden input, and nowhere else: {html}"
        );
        assert!(html.contains("Open the panel"), "works without script");
        assert!(
            html.contains(r#"<meta name="referrer" content="strict-origin">"#),
            "under no-referrer the form's POST would carry `Origin: null` and be refused: {html}"
        );
        assert!(html.contains(r#"src="/ui/moderator-link.js""#));
        assert!(!html.contains("<script>"), "no inline script under the CSP");
    }

    #[test]
    fn link_page_escapes_a_hostile_key() {
        let html = moderator_link_page(r#""><script>x</script>"#, "");
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;") || html.contains("&quot;>&lt;script>"));
    }

    #[test]
    fn refused_page_says_plainly_what_happened() {
        let html = moderator_link_refused_page("");
        assert!(html.contains(r#"id="refused""#));
        assert!(html.contains(
            "This moderator link was already used or has expired. Ask the streamer for a new one."
        ));
        assert!(!html.contains("<script"), "nothing to run on a dead end");
    }

    #[test]
    fn panel_shows_who_what_and_until_when_escaped() {
        let html = moderator_panel_page(&view(&["scene.edit", "alerts"]));
        assert!(
            html.contains("Sam &lt;script&gt;alert(1)&lt;/script&gt; &amp; co"),
            "the label is text, never markup: {html}"
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("Edit overlay scenes"));
        assert!(html.contains("Fire test alerts"));
        assert!(
            !html.contains("Send text to speech"),
            "only held scopes are listed"
        );
        assert!(
            html.contains(r#"data-scopes="scene.edit alerts""#),
            "{html}"
        );
        assert!(
            html.contains(r#"<time id="expires" datetime="2026-05-01T18:30:00.000Z">2026-05-01 18:30 UTC</time>"#),
            "{html}"
        );
        assert!(html.contains(r#"id="status""#) && html.contains(r#"aria-live="polite""#));
        assert!(html.contains(r#"src="/ui/moderator.js""#));
    }

    #[test]
    fn panel_sections_appear_only_with_their_scope() {
        let some = moderator_panel_page(&view(&["scene.edit", "alerts"]));
        assert!(
            some.contains(r#"id="editor""#),
            "scene.edit brings the editor"
        );
        assert!(
            some.contains(r#"id="alert-form""#),
            "alerts brings the alert form"
        );
        assert!(
            !some.contains(r#"id="tts-form""#),
            "no tts scope, no tts form"
        );
        assert!(
            !some.contains("OBS scenes"),
            "no obs.scenes scope, no OBS section"
        );

        let others = moderator_panel_page(&view(&["tts", "obs.scenes", "chat.moderate"]));
        assert!(!others.contains(r#"id="editor""#));
        assert!(!others.contains(r#"id="stage""#));
        assert!(!others.contains(r#"id="alert-form""#));
        assert!(others.contains(r#"id="tts-form""#));
        assert!(others.contains("OBS scenes") && others.contains("coming soon"));
        assert!(others.contains("Moderate chat"));
    }

    #[test]
    fn every_form_control_has_a_label() {
        let html = moderator_panel_page(&view(&["scene.edit", "tts", "alerts"]));
        for id in [
            "overlay",
            "geo-x",
            "geo-y",
            "geo-w",
            "geo-h",
            "tts-text",
            "tts-lang",
            "alert-overlay",
            "alert-title",
            "alert-message",
        ] {
            assert!(
                html.contains(&format!(r#"for="{id}""#)),
                "#{id} is labelled for screen readers"
            );
        }
    }

    #[test]
    fn scopes_and_times_in_words() {
        assert_eq!(scope_in_words("tts"), Some("Send text to speech"));
        assert_eq!(scope_in_words("obs.scenes"), Some("Switch OBS scenes"));
        assert_eq!(scope_in_words("admin"), None);
        assert_eq!(
            readable_time("2026-01-02T03:04:05Z"),
            "2026-01-02 03:04 UTC"
        );
        assert_eq!(readable_time("soon"), "soon");
    }
}
