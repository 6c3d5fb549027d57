//! Webhooks: the TradingView URL to paste (local, and through the relay), its credentials
//! hidden until revealed (an audited call), rotation with the new value shown once, custom
//! endpoints, and the recent deliveries.

use leptos::prelude::*;

use super::{Section, badge, copy_field, panel_document, time};

/// Which TradingView credentials exist (never their values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradingViewAuthView {
    /// The URL token.
    pub token: bool,
    /// An HMAC secret.
    pub hmac: bool,
    /// The HMAC secret comes from `STAGEHAND_TRADINGVIEW_HMAC_SECRET`.
    pub hmac_from_env: bool,
    /// A passphrase.
    pub passphrase: bool,
}

/// A custom endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRow {
    /// `/webhooks/custom/{name}`.
    pub name: String,
    /// The local URL.
    pub url: String,
    /// The URL through the relay, when one is configured.
    pub relay_url: Option<String>,
    /// Title template.
    pub title: String,
    /// Created (RFC 3339).
    pub created_at: String,
}

/// A recorded delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// When it arrived (RFC 3339).
    pub received_at: String,
    /// `tradingview`, `custom:{name}` or `unknown`.
    pub source: String,
    /// `local` or `relay`.
    pub via: String,
    /// `accepted` or `refused`.
    pub status: String,
    /// The refusal's code.
    pub reason_code: Option<String>,
    /// The refusal in words.
    pub reason: Option<String>,
    /// Relayed too late to be played.
    pub stale: bool,
}

/// What the Webhooks page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhooksView {
    /// `{local}/webhooks/tradingview` (the token is added when revealed).
    pub tradingview_url: String,
    /// `{relay}/h/{tunnel}/webhooks/tradingview`, when a relay is configured.
    pub tradingview_relay_url: Option<String>,
    /// Which credentials exist.
    pub auth: TradingViewAuthView,
    /// Custom endpoints.
    pub custom: Vec<CustomRow>,
    /// Recent deliveries, newest first.
    pub deliveries: Vec<DeliveryRow>,
}

const HIDDEN: &str = "••••••••••••";

fn credential(which: &'static str, title: &'static str, set: bool, note: String) -> impl IntoView {
    let field = format!("secret-{which}");
    let state = if set { "set" } else { "not set" };
    let class = if set { "ok" } else { "" };
    let rotate = if set {
        format!("Replace the {}", title.to_lowercase())
    } else {
        format!("Create a {}", title.to_lowercase())
    };
    view! {
        <div class="credential" data-which=which>
            <div class="row-head">
                <h3>{title}</h3>
                {badge(state.to_owned(), class)}
            </div>
            <p class="muted">{note}</p>
            <label for=field.clone()>{title}</label>
            <div class="copy-field">
                <input id=field.clone() class="mono secret" readonly value=if set { HIDDEN } else { "" }
                    data-hidden="1" spellcheck="false" />
                <button type="button" data-action="copy" data-copy-from=field disabled>"Copy"</button>
            </div>
            <div class="actions">
                <button type="button" data-action="rotate" data-which=which class="quiet">{rotate}</button>
                {(set && which != "token").then(|| view! {
                    <button type="button" data-action="clear" data-which=which class="danger">"Remove"</button>
                })}
            </div>
        </div>
    }
}

fn delivery_row(row: DeliveryRow) -> impl IntoView {
    let DeliveryRow {
        received_at,
        source,
        via,
        status,
        reason_code,
        reason,
        stale,
    } = row;
    let (words, class) = match (status.as_str(), stale) {
        ("accepted", true) => ("stale, not played".to_owned(), "warn"),
        ("accepted", false) => ("accepted".to_owned(), "ok"),
        ("refused", _) => ("refused".to_owned(), "bad"),
        (other, _) => (other.to_owned(), ""),
    };
    let source = match source.strip_prefix("custom:") {
        Some(name) => format!("custom “{name}”"),
        None if source == "tradingview" => "TradingView".to_owned(),
        None => source,
    };
    let via = if via == "relay" {
        "through the relay"
    } else {
        "direct"
    };
    let why = match (reason, reason_code) {
        (Some(r), Some(c)) => format!("{r} ({c})"),
        (Some(r), None) => r,
        (None, Some(c)) => c,
        (None, None) if stale => {
            "arrived too late (webhooks.stale_after_seconds); listed, not played".to_owned()
        }
        (None, None) => String::new(),
    };
    view! {
        <tr class="delivery" data-status=status>
            <td>{time(received_at)}</td>
            <td>{source}</td>
            <td>{via}</td>
            <td>{badge(words, class)}</td>
            <td>{why}</td>
        </tr>
    }
}

fn custom_row(row: CustomRow) -> impl IntoView {
    let CustomRow {
        name,
        url,
        relay_url,
        title,
        created_at,
    } = row;
    let heading = format!("custom-{name}-h");
    let url_id = format!("custom-{name}-url");
    let relay_id = format!("custom-{name}-relay");
    view! {
        <li class="row custom-row" data-name=name.clone() aria-labelledby=heading.clone()>
            <div class="row-head">
                <h3 id=heading.clone()>{name.clone()}</h3>
                <span class="muted">"made " {time(created_at)}</span>
            </div>
            <p class="muted">"Alert title: " <code>{title}</code></p>
            {copy_field(url_id, "URL on this computer".to_owned(), url)}
            {relay_url.map(|u| copy_field(relay_id, "URL through the relay".to_owned(), u))}
            <div class="actions">
                <button type="button" data-action="rotate-custom" class="quiet">"New signing secret"</button>
                <button type="button" data-action="delete-custom" class="danger">"Delete"</button>
            </div>
        </li>
    }
}

/// `GET /panel/webhooks`
pub fn webhooks_page(view: &WebhooksView) -> String {
    let view = view.clone();
    let auth = view.auth;
    let relay = view.tradingview_relay_url.clone();
    let hmac_note = if auth.hmac_from_env {
        "Set by STAGEHAND_TRADINGVIEW_HMAC_SECRET; senders sign the body into X-Signature."
            .to_owned()
    } else {
        "Optional: senders that can sign put base64(HMAC-SHA256(secret, body)) in X-Signature. TradingView cannot; leave it unset for TradingView.".to_owned()
    };
    let empty_custom = view.custom.is_empty();
    let no_deliveries = view.deliveries.is_empty();
    let body = view! {
        <section class="card wide" aria-labelledby="tv-h">
            <h2 id="tv-h">"TradingView"</h2>
            <p>
                "In TradingView, open an alert → Notifications → Webhook URL, and paste the URL below. It contains a secret token, so it stays hidden until you reveal it."
            </p>
            <div class="copy">
                <label for="tv-url">"Webhook URL on this computer"</label>
                <div class="copy-field">
                    <input id="tv-url" class="mono secret" readonly data-hidden="1" spellcheck="false"
                        data-base=view.tradingview_url.clone()
                        value=format!("{}?token={HIDDEN}", view.tradingview_url) />
                    <button type="button" data-action="copy" data-copy-from="tv-url" disabled>"Copy"</button>
                </div>
            </div>
            {match relay {
                Some(url) => view! {
                    <div class="copy">
                        <label for="tv-relay-url">"Webhook URL through your relay (use this one in TradingView)"</label>
                        <div class="copy-field">
                            <input id="tv-relay-url" class="mono secret" readonly data-hidden="1" spellcheck="false"
                                data-base=url.clone() value=format!("{url}?token={HIDDEN}") />
                            <button type="button" data-action="copy" data-copy-from="tv-relay-url" disabled>"Copy"</button>
                        </div>
                    </div>
                }.into_any(),
                None => view! {
                    <p class="muted" id="no-relay">
                        "TradingView can only reach public addresses, and this computer's is private. Set up a relay ("
                        <code>"STAGEHAND_RELAY_URL"</code> ", " <code>"STAGEHAND_RELAY_TUNNEL_ID"</code>
                        " and the tunnel secret in Settings) to get a public URL here."
                    </p>
                }.into_any(),
            }}
            <div class="actions">
                <button type="button" id="reveal" data-action="reveal" aria-pressed="false">"Reveal secrets"</button>
            </div>
            <p class="muted">"Revealing is recorded in the activity log."</p>
            <div class="credentials" data-part="credentials">
                {credential("token", "URL token", auth.token,
                    "Part of the URL. Replace it if the URL leaked; then paste the new URL into every TradingView alert.".to_owned())}
                {credential("hmac", "HMAC secret", auth.hmac, hmac_note)}
                {credential("passphrase", "Passphrase", auth.passphrase,
                    "Optional: put \"passphrase\": \"…\" in the alert's JSON message; alerts without it are then refused.".to_owned())}
            </div>
            <div id="rotated" class="once" hidden>
                <p><strong>"Your new " <span id="rotated-what"></span> ". Copy it now: it is shown only this once."</strong></p>
                <label for="rotated-value">"New value"</label>
                <div class="copy-field">
                    <input id="rotated-value" class="mono" readonly spellcheck="false" />
                    <button type="button" data-action="copy" data-copy-from="rotated-value" aria-label="Copy the new value">"Copy"</button>
                </div>
            </div>
        </section>
        <section class="card" aria-labelledby="custom-h">
            <h2 id="custom-h">"Custom webhooks"</h2>
            <p class="muted">"For services that sign with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature). Templates fill " <code>"{{field}}"</code> " from the JSON body."</p>
            <form id="custom-create">
                <label for="custom-name">"Name (letters, digits, - and _)"</label>
                <input id="custom-name" name="name" required maxlength="64" autocomplete="off" pattern="[A-Za-z0-9_-]+" />
                <label for="custom-title">"Alert title"</label>
                <input id="custom-title" name="title" required maxlength="200" autocomplete="off" placeholder="{{user}} donated" />
                <label for="custom-message">"Alert message"</label>
                <input id="custom-message" name="message" maxlength="500" autocomplete="off" placeholder="{{amount}}" />
                <button type="submit">"Create webhook"</button>
            </form>
            <div id="custom-secret" class="once" hidden>
                <p><strong>"Signing secret for " <span id="custom-secret-for"></span> ". Copy it now: it is shown only this once."</strong></p>
                <label for="custom-secret-value">"Signing secret"</label>
                <div class="copy-field">
                    <input id="custom-secret-value" class="mono" readonly spellcheck="false" />
                    <button type="button" data-action="copy" data-copy-from="custom-secret-value" aria-label="Copy the signing secret">"Copy"</button>
                </div>
            </div>
            <div data-part="custom">
                {empty_custom.then(|| view! { <p class="muted" id="no-custom">"No custom webhooks yet."</p> })}
                <ul id="custom-list" class="rows">
                    {view.custom.into_iter().map(custom_row).collect_view()}
                </ul>
            </div>
        </section>
        <section class="card wide" aria-labelledby="deliveries-h" data-part="deliveries">
            <h2 id="deliveries-h">"Recent deliveries"</h2>
            {no_deliveries.then(|| view! {
                <p class="muted" id="no-deliveries">"Nothing has arrived yet. Send a test alert from TradingView to see it here."</p>
            })}
            <div class="table-wrap">
                <table id="deliveries">
                    <caption class="visually-hidden">"Webhooks received, newest first"</caption>
                    <thead>
                        <tr><th scope="col">"When"</th><th scope="col">"From"</th><th scope="col">"Via"</th><th scope="col">"Result"</th><th scope="col">"Why"</th></tr>
                    </thead>
                    <tbody>{view.deliveries.into_iter().map(delivery_row).collect_view()}</tbody>
                </table>
            </div>
        </section>
    };
    panel_document(
        Section::Webhooks,
        &["/ui/panel.js", "/ui/webhooks.js"],
        body.to_html(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> WebhooksView {
        WebhooksView {
            tradingview_url: "http://127.0.0.1:7420/webhooks/tradingview".into(),
            tradingview_relay_url: None,
            auth: TradingViewAuthView {
                token: true,
                hmac: false,
                hmac_from_env: false,
                passphrase: true,
            },
            custom: vec![],
            deliveries: vec![],
        }
    }

    #[test]
    fn secrets_are_hidden_until_revealed() {
        let html = webhooks_page(&view());
        assert!(html.contains(&format!(
            r#"value="http://127.0.0.1:7420/webhooks/tradingview?token={HIDDEN}""#
        )));
        assert!(html.contains(r#"id="reveal""#));
        assert!(html.contains("No custom webhooks yet."));
        assert!(html.contains("Nothing has arrived yet."));
        assert!(
            html.contains("STAGEHAND_RELAY_URL"),
            "no relay: how to get one"
        );
        assert!(
            !html.contains(r#"data-action="clear" data-which="token""#),
            "the token cannot be removed, only replaced"
        );
        assert!(html.contains(r#"data-action="clear" data-which="passphrase""#));
    }

    #[test]
    fn relay_url_custom_endpoints_and_deliveries_are_shown_escaped() {
        let html = webhooks_page(&WebhooksView {
            tradingview_relay_url: Some("https://relay.example/h/t1/webhooks/tradingview".into()),
            custom: vec![CustomRow {
                name: "kofi".into(),
                url: "http://127.0.0.1:7420/webhooks/custom/kofi".into(),
                relay_url: Some("https://relay.example/h/t1/webhooks/custom/kofi".into()),
                title: "{{user}} <3".into(),
                created_at: "2026-05-01T18:30:00.000Z".into(),
            }],
            deliveries: vec![
                DeliveryRow {
                    received_at: "2026-05-01T18:31:00.000Z".into(),
                    source: "tradingview".into(),
                    via: "relay".into(),
                    status: "refused".into(),
                    reason_code: Some("invalid_token".into()),
                    reason: Some("the <token> is wrong".into()),
                    stale: false,
                },
                DeliveryRow {
                    received_at: "2026-05-01T18:32:00.000Z".into(),
                    source: "custom:kofi".into(),
                    via: "relay".into(),
                    status: "accepted".into(),
                    reason_code: None,
                    reason: None,
                    stale: true,
                },
            ],
            ..view()
        });
        assert!(html.contains(r#"id="tv-relay-url""#));
        assert!(html.contains("{{user}} &lt;3"), "{html}");
        assert!(html.contains("https://relay.example/h/t1/webhooks/custom/kofi"));
        assert!(html.contains("the &lt;token&gt; is wrong (invalid_token)"));
        assert!(html.contains("stale, not played"));
        assert!(html.contains("through the relay"));
        assert!(html.contains("custom “kofi”"));
        assert!(!html.contains("No custom webhooks yet."));
    }
}
