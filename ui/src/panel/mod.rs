//! The streamer's control panel: Home, Overlays, Moderators, Accounts, Webhooks and Settings.
//!
//! Every page is rendered here from plain view structs the server fills from the engine, so
//! what a page shows on first load is escaped by Leptos and tested without a browser. The live
//! parts (`assets/panel.js` plus one script per page) call the same JSON API as any other
//! client; after a change they fetch the page again and swap in the fresh parts marked
//! `data-part`, so every list is rendered by this code only.

use leptos::prelude::*;

use super::{Page, document};

mod accounts;
mod home;
mod moderators;
mod overlays;
mod settings;
mod webhooks;

pub use accounts::{AccountRow, AccountsView, ProviderRow, accounts_page};
pub use home::{HealthView, HomeView, home_page};
pub use moderators::{ModeratorsView, SessionRow, moderators_page};
pub use overlays::{OverlayRow, OverlaysView, overlays_page};
pub use settings::{SettingsView, settings_page};
pub use webhooks::{CustomRow, DeliveryRow, TradingViewAuthView, WebhooksView, webhooks_page};

/// Helpers every panel page loads first, served at `/ui/panel.js`.
pub const PANEL_JS: &str = include_str!("../../assets/panel.js");
/// The Overlays page's script, served at `/ui/overlays.js`.
pub const OVERLAYS_JS: &str = include_str!("../../assets/overlays.js");
/// The Moderators page's script, served at `/ui/moderators.js`.
pub const MODERATORS_JS: &str = include_str!("../../assets/moderators.js");
/// The Webhooks page's script, served at `/ui/webhooks.js`.
pub const WEBHOOKS_JS: &str = include_str!("../../assets/webhooks.js");
/// The Accounts page's script, served at `/ui/accounts.js`.
pub const ACCOUNTS_JS: &str = include_str!("../../assets/accounts.js");
/// The Settings page's script, served at `/ui/settings.js`.
pub const SETTINGS_JS: &str = include_str!("../../assets/settings.js");

/// A page of the panel, as the navigation lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `/`
    Home,
    /// `/panel/overlays`
    Overlays,
    /// `/panel/moderators`
    Moderators,
    /// `/panel/accounts`
    Accounts,
    /// `/panel/webhooks`
    Webhooks,
    /// `/panel/settings`
    Settings,
}

impl Section {
    /// Every section, in the navigation's order.
    pub const ALL: [Self; 6] = [
        Self::Home,
        Self::Overlays,
        Self::Moderators,
        Self::Accounts,
        Self::Webhooks,
        Self::Settings,
    ];

    /// Where the page is served.
    pub fn path(self) -> &'static str {
        match self {
            Self::Home => "/",
            Self::Overlays => "/panel/overlays",
            Self::Moderators => "/panel/moderators",
            Self::Accounts => "/panel/accounts",
            Self::Webhooks => "/panel/webhooks",
            Self::Settings => "/panel/settings",
        }
    }

    /// Its name in the navigation and the title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Home => "Home",
            Self::Overlays => "Overlays",
            Self::Moderators => "Moderators",
            Self::Accounts => "Accounts",
            Self::Webhooks => "Webhooks",
            Self::Settings => "Settings",
        }
    }
}

/// A page of the panel: the navigation, sign-out, a status line for what the page's script
/// says, an alert box for errors, a confirmation dialog, then the page's own sections.
pub(crate) fn panel_document(
    current: Section,
    scripts: &'static [&'static str],
    body: String,
) -> String {
    let title = if current == Section::Home {
        "Stagehand".to_owned()
    } else {
        format!("{} · Stagehand", current.title())
    };
    // The page's own sections arrive rendered (and escaped) already: nesting their view types
    // inside this one would make types deeper than the compiler cares to follow.
    let main = format!(r#"<h1 class="page-title">{}</h1>{body}"#, current.title());
    let page = view! {
        <Page title=title scripts=scripts>
            <a class="skip" href="#content">"Skip to the page"</a>
            <header class="bar">
                <span class="brand">"Stagehand"</span>
                <nav aria-label="Control panel">
                    <ul class="nav">
                        {Section::ALL.iter().map(|s| {
                            let here = (*s == current).then_some("page");
                            view! { <li><a href=s.path() aria-current=here>{s.title()}</a></li> }
                        }).collect_view()}
                    </ul>
                </nav>
                <form method="post" action="/session/logout">
                    <button type="submit" class="quiet">"Sign out"</button>
                </form>
            </header>
            <div class="messages">
                <p id="notice" class="notice" role="status" aria-live="polite"></p>
                <div id="problem" class="problem" role="alert" hidden>
                    <p id="problem-text"></p>
                    <button type="button" id="problem-close" class="quiet">"Dismiss"</button>
                </div>
                <noscript>
                    <p class="problem">"The control panel needs JavaScript for its buttons."</p>
                </noscript>
            </div>
            <main id="content" class="panel" tabindex="-1" inner_html=main>
            </main>
            <dialog id="confirm" aria-labelledby="confirm-text">
                <form method="dialog">
                    <p id="confirm-text"></p>
                    <div class="actions">
                        <button type="submit" value="cancel" class="quiet" id="confirm-cancel">"Cancel"</button>
                        <button type="submit" value="ok" class="danger" id="confirm-ok">"Confirm"</button>
                    </div>
                </form>
            </dialog>
            <dialog id="ask" aria-labelledby="ask-label">
                <form method="dialog">
                    <label id="ask-label" for="ask-input"></label>
                    <input id="ask-input" autocomplete="off" maxlength="200" />
                    <div class="actions">
                        <button type="submit" value="cancel" class="quiet">"Cancel"</button>
                        <button type="submit" value="ok" id="ask-ok">"Save"</button>
                    </div>
                </form>
            </dialog>
            <dialog id="choose" aria-labelledby="choose-label">
                <form method="dialog">
                    <label id="choose-label" for="choose-select"></label>
                    <select id="choose-select"></select>
                    <div class="actions">
                        <button type="submit" value="cancel" class="quiet">"Cancel"</button>
                        <button type="submit" value="ok" id="choose-ok">"OK"</button>
                    </div>
                </form>
            </dialog>
        </Page>
    };
    document(page.to_html())
}

/// A read-only field with a copy button: the value stays visible and selectable, so it can be
/// copied by hand where the clipboard is not available.
pub(crate) fn copy_field(id: String, label: String, value: String) -> impl IntoView {
    let copy_label = format!("Copy {}", label.to_lowercase());
    view! {
        <div class="copy">
            <label for=id.clone()>{label}</label>
            <div class="copy-field">
                <input id=id.clone() class="mono" readonly value=value spellcheck="false" />
                <button type="button" data-action="copy" data-copy-from=id aria-label=copy_label>
                    "Copy"
                </button>
            </div>
        </div>
    }
}

/// `2026-05-01T18:30:00.000Z` as a `<time>` that the script turns into local time.
pub(crate) fn time(rfc3339: String) -> impl IntoView {
    let text = super::moderator::readable_time(&rfc3339);
    view! { <time class="local-time" datetime=rfc3339>{text}</time> }
}

/// A status word as a badge with a colour class.
pub(crate) fn badge(text: String, class: &'static str) -> impl IntoView {
    view! { <span class=format!("badge {class}")>{text}</span> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_the_navigation_with_the_current_page_marked() {
        for current in Section::ALL {
            let html = panel_document(current, &[], "<p>body</p>".to_owned());
            assert!(html.starts_with("<!DOCTYPE html>"));
            for s in Section::ALL {
                assert!(
                    html.contains(&format!(r#"href="{}""#, s.path())),
                    "{current:?} links to {s:?}"
                );
            }
            assert_eq!(
                html.matches(r#"aria-current="page""#).count(),
                1,
                "exactly one page is current: {html}"
            );
            assert!(html.contains(&format!(
                r#"<a href="{}" aria-current="page">{}</a>"#,
                current.path(),
                current.title()
            )));
            assert!(html.contains(r#"action="/session/logout""#), "sign-out");
            assert!(html.contains(r#"aria-live="polite""#), "a status line");
            assert!(html.contains(r#"role="alert""#), "an error box");
            assert!(!html.contains("<script>"), "no inline script under the CSP");
            assert!(!html.contains(" style="), "no inline style under the CSP");
        }
    }

    #[test]
    fn copy_fields_are_labelled_and_escaped() {
        let html = view! { {copy_field("f".into(), "Link".into(), "a\"><b>".into())} }.to_html();
        assert!(html.contains(r#"<label for="f">Link</label>"#), "{html}");
        assert!(html.contains(r#"data-copy-from="f""#));
        assert!(!html.contains("\"><b>"), "the value is escaped: {html}");
    }
}
