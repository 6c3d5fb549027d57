//! Settings: what is in effect, and how to change it. Values the engine can change safely at
//! run time (the OBS password, the relay's tunnel secret) have forms; the rest come from the
//! configuration and are shown with the key and variable that set them.

use leptos::prelude::*;

use super::{Section, badge, panel_document};

/// What the Settings page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsView {
    /// The port in effect.
    pub port: u16,
    /// `http://127.0.0.1:{port}`.
    pub local_url: String,
    /// `server.lan_access`.
    pub lan_access: bool,
    /// The LAN address moderators use, when LAN access is on.
    pub lan_url: Option<String>,
    /// `obs.enabled`.
    pub obs_enabled: bool,
    /// `host:port` of obs-websocket.
    pub obs_address: String,
    /// The OBS connection state (`identified`, `connecting`, `lost`, `disabled`).
    pub obs_state: String,
    /// Why it is not connected, in words.
    pub obs_error: Option<String>,
    /// `keychain` or `file`.
    pub secret_backend: String,
    /// Where that backend keeps secrets, in words.
    pub secret_location: String,
    /// `relay.url` (empty: no relay).
    pub relay_url: String,
    /// `relay.tunnel_id`.
    pub relay_tunnel_id: String,
    /// The relay link's state (`disabled`, `connecting`, `linked`, `lost`).
    pub relay_state: String,
    /// Its last error in words.
    pub relay_error: Option<String>,
    /// The data folder.
    pub data_dir: String,
    /// The log folder.
    pub log_dir: String,
}

/// A connection state as a badge's words and class.
pub(crate) fn state_words(state: &str) -> (&'static str, &'static str) {
    match state {
        "identified" => ("connected", "ok"),
        "linked" => ("linked", "ok"),
        "connecting" => ("connecting…", "warn"),
        "lost" => ("lost", "bad"),
        "disabled" => ("off", ""),
        _ => ("unknown", ""),
    }
}

fn how_to_set(key: &'static str, var: &'static str) -> impl IntoView {
    view! {
        <span class="muted how">"Set " <code>{key}</code> " in config.toml or " <code>{var}</code> ", then restart."</span>
    }
}

/// `GET /panel/settings`
pub fn settings_page(view: &SettingsView) -> String {
    let v = view.clone();
    let (obs_words, obs_class) = state_words(&v.obs_state);
    let (relay_words, relay_class) = state_words(&v.relay_state);
    let relay_configured = !v.relay_url.is_empty() && !v.relay_tunnel_id.is_empty();
    let or_none = |s: String| if s.is_empty() { "(none)".to_owned() } else { s };
    let body = view! {
        <section class="card" aria-labelledby="server-h">
            <h2 id="server-h">"This computer"</h2>
            <dl class="facts">
                <dt>"Address"</dt>
                <dd><code id="local-url">{v.local_url.clone()}</code></dd>
                <dt>"Port"</dt>
                <dd><span id="port">{v.port.to_string()}</span> " " {how_to_set("server.port", "STAGEHAND_PORT")}</dd>
                <dt>"LAN access"</dt>
                <dd>
                    <span id="lan">{if v.lan_access { "on" } else { "off" }}</span>
                    {v.lan_url.clone().map(|u| view! { " · moderators use " <code>{u}</code> })}
                    " " {how_to_set("server.lan_access", "STAGEHAND_LAN_ACCESS")}
                </dd>
                <dt>"Data folder"</dt>
                <dd><code>{v.data_dir.clone()}</code></dd>
                <dt>"Log folder"</dt>
                <dd><code id="log-dir">{v.log_dir.clone()}</code> " " <span class="muted">"(daily JSON files; " <code>"STAGEHAND_LOG=debug"</code> " for more detail)"</span></dd>
                <dt>"Secrets"</dt>
                <dd>
                    {badge(v.secret_backend.clone(), "")} " " <span class="muted">{v.secret_location.clone()}</span>
                    " " {how_to_set("secrets.backend", "STAGEHAND_SECRETS")}
                </dd>
            </dl>
        </section>
        <section class="card" aria-labelledby="obs-h" data-part="obs">
            <h2 id="obs-h">"OBS"</h2>
            <dl class="facts">
                <dt>"Connection"</dt>
                <dd>{badge(obs_words.to_owned(), obs_class)}</dd>
                <dt>"obs-websocket"</dt>
                <dd><code id="obs-address">{v.obs_address.clone()}</code> " "
                    {how_to_set("obs.host / obs.port", "STAGEHAND_OBS_HOST / STAGEHAND_OBS_PORT")}</dd>
            </dl>
            {v.obs_error.clone().map(|e| view! { <p class="problem-inline">{e}</p> })}
            {(!v.obs_enabled).then(|| view! {
                <p class="muted">"Stagehand does not connect to OBS: " <code>"obs.enabled"</code> " is false (" <code>"STAGEHAND_OBS_ENABLED"</code> ")."</p>
            })}
            <form id="obs-password" class="secret-form">
                <label for="obs-password-input">"obs-websocket password"</label>
                <input id="obs-password-input" name="password" type="password" autocomplete="off" required />
                <p class="muted">"In OBS: Tools → WebSocket Server Settings → Show Connect Info. Kept in the secret store; Stagehand reconnects with it at once."</p>
                <button type="submit">"Save password"</button>
            </form>
        </section>
        <section class="card" aria-labelledby="relay-h" data-part="relay">
            <h2 id="relay-h">"Relay"</h2>
            <p class="muted">"Your own relay receives webhooks publicly and hands them to this computer (relay/README.md)."</p>
            <dl class="facts">
                <dt>"Link"</dt>
                <dd>{badge(relay_words.to_owned(), relay_class)}</dd>
                <dt>"Relay URL"</dt>
                <dd><code id="relay-url">{or_none(v.relay_url.clone())}</code> " " {how_to_set("relay.url", "STAGEHAND_RELAY_URL")}</dd>
                <dt>"Tunnel id"</dt>
                <dd><code id="relay-tunnel">{or_none(v.relay_tunnel_id.clone())}</code> " " {how_to_set("relay.tunnel_id", "STAGEHAND_RELAY_TUNNEL_ID")}</dd>
            </dl>
            {v.relay_error.clone().map(|e| view! { <p class="problem-inline">{e}</p> })}
            {(!relay_configured).then(|| view! {
                <p class="muted">"No relay is configured, so webhooks reach only this computer."</p>
            })}
            <form id="relay-secret" class="secret-form">
                <label for="relay-secret-input">"Tunnel secret"</label>
                <input id="relay-secret-input" name="secret" type="password" autocomplete="off" required />
                <p class="muted">"The secret " <code>"stagehand-relay tunnel create"</code> " printed. Kept in the secret store; the link uses it at once."</p>
                <button type="submit">"Save tunnel secret"</button>
            </form>
        </section>
    };
    panel_document(
        Section::Settings,
        &["/ui/panel.js", "/ui/settings.js"],
        body.to_html(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> SettingsView {
        SettingsView {
            port: 7420,
            local_url: "http://127.0.0.1:7420".into(),
            lan_access: false,
            lan_url: None,
            obs_enabled: true,
            obs_address: "127.0.0.1:4455".into(),
            obs_state: "lost".into(),
            obs_error: Some("OBS is not running <here>".into()),
            secret_backend: "file".into(),
            secret_location: "encrypted file".into(),
            relay_url: String::new(),
            relay_tunnel_id: String::new(),
            relay_state: "disabled".into(),
            relay_error: None,
            data_dir: "/data".into(),
            log_dir: "/data/logs".into(),
        }
    }

    #[test]
    fn read_only_values_say_how_to_change_them() {
        let html = settings_page(&view());
        for name in [
            "server.port",
            "STAGEHAND_PORT",
            "server.lan_access",
            "STAGEHAND_LAN_ACCESS",
            "secrets.backend",
            "STAGEHAND_SECRETS",
            "STAGEHAND_RELAY_URL",
            "STAGEHAND_RELAY_TUNNEL_ID",
        ] {
            assert!(html.contains(name), "{name} is named: {html}");
        }
        assert!(html.contains("OBS is not running &lt;here&gt;"), "{html}");
        assert!(html.contains("/data/logs"));
        assert!(html.contains("No relay is configured"));
        assert!(html.contains(r#"for="obs-password-input""#));
        assert!(html.contains(r#"for="relay-secret-input""#));
        assert!(html.contains(r#"type="password""#));
    }

    #[test]
    fn states_in_words() {
        assert_eq!(state_words("identified"), ("connected", "ok"));
        assert_eq!(state_words("lost"), ("lost", "bad"));
        assert_eq!(state_words("whatever"), ("unknown", ""));
    }
}
