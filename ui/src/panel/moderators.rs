//! Moderators: make a one-time link with scopes and a lifetime, show it once, list the live
//! sessions, revoke one.

use leptos::prelude::*;

use super::{Section, panel_document, time};
use crate::moderator::{SCOPE_WORDS, scope_in_words};

/// A live moderator session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Public id, for revoking.
    pub id: String,
    /// Who, as the streamer named them.
    pub label: String,
    /// Wire names such as `scene.edit`.
    pub scopes: Vec<String>,
    /// Opened (RFC 3339).
    pub created_at: String,
    /// Ends (RFC 3339).
    pub expires_at: String,
}

/// What the Moderators page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeratorsView {
    /// Live sessions.
    pub sessions: Vec<SessionRow>,
    /// `moderators.key_ttl_seconds`: how long a new link can be opened by default.
    pub key_ttl_seconds: u64,
    /// `moderators.session_ttl_seconds`: how long a session lasts once opened.
    pub session_ttl_seconds: u64,
    /// Whether links point at the LAN address (`server.lan_access`).
    pub lan_access: bool,
}

/// Link lifetimes offered, in seconds.
const LIFETIMES: &[(u64, &str)] = &[
    (900, "15 minutes"),
    (3600, "1 hour"),
    (21_600, "6 hours"),
    (86_400, "1 day"),
    (604_800, "7 days"),
];

/// `14400` → "4 hours".
pub(crate) fn duration_in_words(seconds: u64) -> String {
    let plural = |n: u64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    if seconds > 0 && seconds.is_multiple_of(86_400) {
        plural(seconds / 86_400, "day")
    } else if seconds > 0 && seconds.is_multiple_of(3600) {
        plural(seconds / 3600, "hour")
    } else if seconds > 0 && seconds.is_multiple_of(60) {
        plural(seconds / 60, "minute")
    } else {
        plural(seconds, "second")
    }
}

fn session_row(row: SessionRow) -> impl IntoView {
    let SessionRow {
        id,
        label,
        scopes,
        created_at,
        expires_at,
    } = row;
    let heading = format!("session-{id}-h");
    let words: Vec<String> = scopes
        .iter()
        .map(|s| scope_in_words(s).map_or_else(|| s.clone(), str::to_owned))
        .collect();
    let revoke_label = format!("Revoke {label}'s access");
    view! {
        <li class="row session-row" data-session-id=id aria-labelledby=heading.clone()>
            <div class="row-head">
                <h3 id=heading.clone()>{label}</h3>
            </div>
            <p class="muted">"May: " {words.join(", ")}</p>
            <p class="muted">"Opened " {time(created_at)} " · access ends " {time(expires_at)}</p>
            <div class="actions">
                <button type="button" data-action="revoke" class="danger" aria-label=revoke_label>"Revoke"</button>
            </div>
        </li>
    }
}

/// `GET /panel/moderators`
pub fn moderators_page(view: &ModeratorsView) -> String {
    let sessions = view.sessions.clone();
    let empty = sessions.is_empty();
    let default_ttl = view.key_ttl_seconds;
    let offered_default = LIFETIMES.iter().any(|(s, _)| *s == default_ttl);
    let session_words = duration_in_words(view.session_ttl_seconds);
    let where_words = if view.lan_access {
        "Links use this computer's address on your local network, so a moderator on the same network can open them."
    } else {
        "Links use this computer's local address (127.0.0.1), so they only open on this computer. To invite someone on your network, turn on LAN access (Settings)."
    };
    let body = view! {
        <section class="card" aria-labelledby="invite-h">
            <h2 id="invite-h">"Invite a moderator"</h2>
            <form id="invite">
                <label for="mod-label">"Who is this link for?"</label>
                <input id="mod-label" name="label" maxlength="64" required autocomplete="off"
                    placeholder="Sam" />
                <fieldset class="checks">
                    <legend>"They may"</legend>
                    {SCOPE_WORDS.iter().map(|(scope, words)| {
                        let id = format!("scope-{}", scope.replace('.', "-"));
                        let checked = *scope == "scene.edit";
                        view! {
                            <div class="check">
                                <input type="checkbox" id=id.clone() name="scopes" value=*scope checked=checked />
                                <label for=id>{*words}</label>
                            </div>
                        }
                    }).collect_view()}
                </fieldset>
                <label for="mod-ttl">"The link can be opened for"</label>
                <select id="mod-ttl" name="ttl_seconds">
                    {(!offered_default).then(|| view! {
                        <option value=default_ttl.to_string() selected>{duration_in_words(default_ttl)}</option>
                    })}
                    {LIFETIMES.iter().map(|(seconds, words)| view! {
                        <option value=seconds.to_string() selected=*seconds == default_ttl>{*words}</option>
                    }).collect_view()}
                </select>
                <p class="muted">
                    "Once opened, the moderator's access lasts " {session_words}
                    " (" <code>"moderators.session_ttl_seconds"</code> "). " {where_words}
                </p>
                <button type="submit">"Create link"</button>
            </form>
            <div id="invite-result" class="once" hidden>
                <p><strong>"Send this link to " <span id="invite-for"></span> ". It works once, and is shown only now."</strong></p>
                <label for="invite-link">"Moderator link"</label>
                <div class="copy-field">
                    <input id="invite-link" class="mono" readonly spellcheck="false" />
                    <button type="button" data-action="copy" data-copy-from="invite-link" aria-label="Copy moderator link">"Copy"</button>
                </div>
                <p class="muted">"Open it before " <time id="invite-expires"></time> "."</p>
            </div>
        </section>
        <section class="card" aria-labelledby="sessions-h" data-part="sessions">
            <h2 id="sessions-h">"Moderators with access now"</h2>
            {empty.then(|| view! {
                <p class="muted" id="no-sessions">"Nobody. A moderator appears here once they open their link."</p>
            })}
            <ul id="session-list" class="rows">
                {sessions.into_iter().map(session_row).collect_view()}
            </ul>
        </section>
    };
    panel_document(
        Section::Moderators,
        &["/ui/panel.js", "/ui/moderators.js"],
        body.to_html(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_with(sessions: Vec<SessionRow>) -> ModeratorsView {
        ModeratorsView {
            sessions,
            key_ttl_seconds: 3600,
            session_ttl_seconds: 14_400,
            lan_access: false,
        }
    }

    #[test]
    fn the_form_offers_every_scope_in_words_with_labels() {
        let html = moderators_page(&view_with(vec![]));
        for (scope, words) in SCOPE_WORDS {
            let id = format!("scope-{}", scope.replace('.', "-"));
            assert!(html.contains(&format!(r#"value="{scope}""#)), "{scope}");
            assert!(
                html.contains(&format!(r#"<label for="{id}">{words}</label>"#)),
                "{scope} is labelled in words: {html}"
            );
        }
        assert!(
            html.contains(r#"<option value="3600" selected>1 hour</option>"#),
            "{html}"
        );
        assert!(html.contains("4 hours"), "the session lifetime is said");
        assert!(html.contains("Nobody."));
        assert!(html.contains(r#"for="mod-label""#) && html.contains(r#"for="mod-ttl""#));
    }

    #[test]
    fn sessions_are_listed_escaped_with_scopes_in_words() {
        let html = moderators_page(&view_with(vec![SessionRow {
            id: "ms_1".into(),
            label: "<img src=x onerror=alert(1)>".into(),
            scopes: vec!["scene.edit".into(), "tts".into()],
            created_at: "2026-05-01T18:30:00.000Z".into(),
            expires_at: "2026-05-01T22:30:00.000Z".into(),
        }]));
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("Edit overlay scenes, Send text to speech"));
        assert!(html.contains(r#"data-session-id="ms_1""#));
        assert!(html.contains("2026-05-01 22:30 UTC"));
        assert!(!html.contains("Nobody."));
    }

    #[test]
    fn an_unusual_default_lifetime_is_offered_too() {
        let html = moderators_page(&ModeratorsView {
            key_ttl_seconds: 1800,
            ..view_with(vec![])
        });
        assert!(
            html.contains(r#"<option value="1800" selected>30 minutes</option>"#),
            "{html}"
        );
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(duration_in_words(60), "1 minute");
        assert_eq!(duration_in_words(7200), "2 hours");
        assert_eq!(duration_in_words(86_400), "1 day");
        assert_eq!(duration_in_words(61), "61 seconds");
    }
}
