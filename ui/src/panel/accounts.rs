//! Accounts: link and unlink Twitch (device code, shown large), YouTube and Discord (the
//! provider's page opens in the system browser), status badges and re-login prompts, and what to
//! set when a provider is not configured.

use leptos::prelude::*;

use super::{Section, badge, panel_document, time};

/// A linked account (never a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// `twitch`, `youtube` or `discord`.
    pub provider: String,
    /// Its name on the platform.
    pub account_name: String,
    /// `ok`, `refreshing` or `needs_relogin`.
    pub status: String,
    /// Why, in plain words, when not `ok`.
    pub status_reason: Option<String>,
    /// When it was linked (RFC 3339).
    pub linked_at: String,
}

/// A platform that can be linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    /// `twitch`, `youtube` or `discord`.
    pub provider: String,
    /// Whether a client id is configured.
    pub configured: bool,
    /// Flows offered now (`device`, `code`).
    pub flows: Vec<String>,
    /// The variable that sets the client id.
    pub client_id_var: String,
}

/// What the Accounts page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsView {
    /// Linked accounts.
    pub accounts: Vec<AccountRow>,
    /// Every provider.
    pub providers: Vec<ProviderRow>,
    /// The Discord channel webhook, masked, if one is saved.
    pub discord_webhook: Option<String>,
}

/// A provider's wire name in words.
pub(crate) fn provider_name(provider: &str) -> &str {
    match provider {
        "twitch" => "Twitch",
        "youtube" => "YouTube",
        "discord" => "Discord",
        other => other,
    }
}

/// A link's status as a badge's words and class.
pub(crate) fn status_words(status: &str) -> (&'static str, &'static str) {
    match status {
        "ok" => ("linked", "ok"),
        "refreshing" => ("renewing…", "warn"),
        "needs_relogin" => ("sign in again", "bad"),
        _ => ("unknown", ""),
    }
}

fn setup_help(provider: &str, var: String) -> impl IntoView + use<> {
    let how = match provider {
        "twitch" => {
            "Register an application at dev.twitch.tv/console (Client Type: Public), then set its Client ID in"
        }
        "youtube" => {
            "Create an OAuth client of type \"Desktop app\" in the Google Cloud console, then set its client ID in"
        }
        _ => {
            "Create an application in the Discord developer portal (OAuth2: Public Client on, redirect to this computer), then set its client ID in"
        }
    };
    view! {
        <p class="muted not-configured">
            {how} " " <code>{var}</code> " and restart Stagehand. The README's \"Platform accounts\" section has each step."
        </p>
    }
}

fn provider_card(provider: ProviderRow, link: Option<AccountRow>) -> impl IntoView {
    let ProviderRow {
        provider,
        configured,
        flows,
        client_id_var,
    } = provider;
    let name = provider_name(&provider).to_owned();
    let heading = format!("acct-{provider}-h");
    let device = flows.iter().any(|f| f == "device");
    let flow = if device { "device" } else { "code" };
    let (badge_view, details) = match &link {
        Some(l) => {
            let (words, class) = status_words(&l.status);
            (
                badge(words.to_owned(), class).into_any(),
                Some((l.account_name.clone(), l.linked_at.clone())),
            )
        }
        None if configured => (badge("not linked".to_owned(), "").into_any(), None),
        None => (badge("not set up".to_owned(), "").into_any(), None),
    };
    let relogin = link
        .as_ref()
        .filter(|l| l.status == "needs_relogin")
        .map(|l| {
            l.status_reason
                .clone()
                .unwrap_or_else(|| "The platform no longer accepts Stagehand's sign-in.".to_owned())
        });
    let reason = link
        .as_ref()
        .filter(|l| l.status == "refreshing")
        .and_then(|l| l.status_reason.clone());
    let linked = link.is_some();
    let needs_relogin = relogin.is_some();
    let help = (!configured).then(|| setup_help(&provider, client_id_var));
    let link_words = if needs_relogin {
        format!("Sign in to {name} again")
    } else {
        format!("Link {name}")
    };
    view! {
        <section class="card account" data-provider=provider.clone() data-flow=flow
            aria-labelledby=heading.clone()>
            <div class="row-head">
                <h2 id=heading.clone()>{name.clone()}</h2>
                {badge_view}
            </div>
            {details.map(|(who, at)| view! {
                <p>"Linked as " <strong class="account-name">{who}</strong> " since " {time(at)}</p>
            })}
            {relogin.map(|why| view! {
                <p class="problem relogin" role="alert">{why} " Sign in again to keep using it."</p>
            })}
            {reason.map(|why| view! { <p class="muted">{why}</p> })}
            {help}
            <div class="actions">
                {(configured && (!linked || needs_relogin)).then(|| view! {
                    <button type="button" data-action="link">{link_words}</button>
                })}
                {linked.then(|| view! {
                    <button type="button" data-action="refresh" class="quiet">"Renew now"</button>
                    <button type="button" data-action="unlink" class="danger">"Unlink"</button>
                })}
            </div>
            <div class="device" hidden>
                <p>"On " <a class="device-url" data-external href="#" target="_blank" rel="noopener noreferrer"></a>
                    ", sign in and enter this code:"</p>
                <p class="device-code" aria-label="Code to enter"></p>
                <button type="button" data-action="copy-code" class="quiet">"Copy code"</button>
            </div>
            <div class="external" hidden>
                <p>"Finish in the browser window that opened. If none did, "
                    <a class="external-url" data-external href="#" target="_blank" rel="noopener noreferrer">"open the sign-in page"</a> "."</p>
            </div>
            <p class="row-status" role="status" aria-live="polite"></p>
        </section>
    }
}

/// `GET /panel/accounts`
pub fn accounts_page(view: &AccountsView) -> String {
    let view = view.clone();
    let cards: Vec<_> = view
        .providers
        .iter()
        .map(|p| {
            let link = view
                .accounts
                .iter()
                .find(|a| a.provider == p.provider)
                .cloned();
            (p.clone(), link)
        })
        .collect();
    let discord_webhook = view.discord_webhook.clone();
    let body = view! {
        <div class="cards" data-part="accounts">
            {cards.into_iter().map(|(p, l)| provider_card(p, l)).collect_view()}
        </div>
        <section class="card" aria-labelledby="dw-h" data-part="discord-webhook">
            <h2 id="dw-h">"Discord go-live announcements"</h2>
            <p class="muted">"Instead of linking an account, paste a channel webhook URL (Channel settings → Integrations → Webhooks). It is kept in the secret store and shown masked."</p>
            {discord_webhook.map(|url| view! {
                <p>"Saved: " <code id="dw-saved">{url}</code></p>
                <button type="button" data-action="discord-webhook-delete" class="danger">"Remove"</button>
            })}
            <form id="discord-webhook">
                <label for="dw-url">"Channel webhook URL"</label>
                <input id="dw-url" name="url" type="url" required autocomplete="off"
                    placeholder="https://discord.com/api/webhooks/…" />
                <button type="submit">"Save webhook"</button>
            </form>
        </section>
    };
    panel_document(
        Section::Accounts,
        &["/ui/panel.js", "/ui/accounts.js"],
        body.to_html(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers() -> Vec<ProviderRow> {
        vec![
            ProviderRow {
                provider: "twitch".into(),
                configured: true,
                flows: vec!["device".into()],
                client_id_var: "STAGEHAND_TWITCH_CLIENT_ID".into(),
            },
            ProviderRow {
                provider: "youtube".into(),
                configured: false,
                flows: vec![],
                client_id_var: "STAGEHAND_GOOGLE_CLIENT_ID".into(),
            },
            ProviderRow {
                provider: "discord".into(),
                configured: true,
                flows: vec!["code".into()],
                client_id_var: "STAGEHAND_DISCORD_CLIENT_ID".into(),
            },
        ]
    }

    #[test]
    fn unconfigured_providers_name_their_variable() {
        let html = accounts_page(&AccountsView {
            accounts: vec![],
            providers: providers(),
            discord_webhook: None,
        });
        assert!(
            html.contains("<code>STAGEHAND_GOOGLE_CLIENT_ID</code>"),
            "{html}"
        );
        assert!(html.contains("not set up"));
        assert!(html.contains("Link Twitch") && html.contains("Link Discord"));
        assert!(
            !html.contains("Link YouTube"),
            "nothing to link without a client id"
        );
        assert!(html.contains(r#"data-flow="device""#));
        assert!(
            html.contains("data-external"),
            "the shell can route external links"
        );
    }

    #[test]
    fn a_refused_link_asks_to_sign_in_again_escaped() {
        let html = accounts_page(&AccountsView {
            accounts: vec![AccountRow {
                provider: "twitch".into(),
                account_name: "<b>ada</b>".into(),
                status: "needs_relogin".into(),
                status_reason: Some("Twitch refused the refresh token.".into()),
                linked_at: "2026-05-01T18:30:00.000Z".into(),
            }],
            providers: providers(),
            discord_webhook: Some("https://discord.com/api/webhooks/1/****".into()),
        });
        assert!(html.contains("&lt;b&gt;ada&lt;/b&gt;"), "{html}");
        assert!(html.contains("sign in again"));
        assert!(html.contains("Twitch refused the refresh token."));
        assert!(html.contains("Sign in to Twitch again"));
        assert!(html.contains("Unlink"));
        assert!(html.contains("https://discord.com/api/webhooks/1/****"));
    }
}
