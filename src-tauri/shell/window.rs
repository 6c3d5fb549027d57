//! The shell's two windows: the main window onto the engine's local server, and the boot page
//! that says why the engine could not start or stopped.
//!
//! The main window signs itself in: every time it finishes loading the engine's own `/login`
//! page (at start, and again after a sign-out or an expired session), the shell issues a fresh
//! one-time login code and hands it to that page, which trades it for a session cookie. The
//! code is never in a URL, and the window refuses to navigate anywhere but the engine.
//!
//! Pages elsewhere (a provider's sign-in page, documentation) open in the system browser, where
//! the streamer's passwords, password manager and existing sessions are, and never in this
//! window. The panel asks for that with `window.__stagehandOpenExternal(url)`, which the shell
//! defines on every page of the main window; `window.open(url)`, a link with a `target` and a
//! plain navigation away from the engine end up in the system browser too.

use anyhow::Context as _;
use stagehand_engine::Engine;
use tauri::webview::{NewWindowResponse, PageLoadEvent};
use tauri::{AppHandle, Manager as _, Url, WebviewUrl, WebviewWindowBuilder};
use tauri_plugin_opener::OpenerExt as _;

/// Label of the window onto the engine.
pub const MAIN: &str = "main";
/// Label of the window that explains a failure.
const FAILURE: &str = "failure";

/// Opens the main window on the engine's `/login` page and signs it in.
pub fn open_main(app: &AppHandle, engine: &Engine, engine_url: &str) -> anyhow::Result<()> {
    let base = Url::parse(engine_url)
        .with_context(|| format!("the local server's address `{engine_url}` is not a URL"))?;
    let login = base
        .join("/login")
        .context("building the login page's address")?;
    let origin = base.origin();
    let login_origin = origin.clone();
    let engine = engine.clone();
    let opener = app.clone();
    let new_window_opener = app.clone();
    WebviewWindowBuilder::new(app, MAIN, WebviewUrl::External(login))
        .title("Stagehand")
        .inner_size(1100.0, 760.0)
        .min_inner_size(640.0, 480.0)
        .on_page_load(move |window, payload| {
            let url = payload.url();
            if payload.event() != PageLoadEvent::Finished
                || url.origin() != login_origin
                || url.path() != "/login"
            {
                return;
            }
            // Issued per load: a code is single use and lives a minute.
            let signed_in = engine
                .issue_login_code()
                .map_err(anyhow::Error::from)
                .and_then(|code| sign_in_script(code.expose()))
                .and_then(|script| window.eval(script).context("handing the page its code"));
            if let Err(e) = signed_in {
                tracing::error!(error = format!("{e:#}"), "cannot sign the window in");
            }
        })
        .initialization_script(OPEN_EXTERNAL_SCRIPT)
        .on_navigation(move |url| {
            // No address bar, and a login script aboard: this window only ever shows the engine.
            if url.origin() == origin {
                return true;
            }
            open_external(&opener, url);
            false
        })
        .on_new_window(move |url, _features| {
            open_external(&new_window_opener, &url);
            NewWindowResponse::Deny
        })
        .build()
        .context("opening the main window")?;
    Ok(())
}

/// Defines `window.__stagehandOpenExternal(url)` for the panel. An address elsewhere is
/// navigated to, which the navigation handler refuses and hands to the system browser: a
/// navigation needs no user gesture, so this works after an `await` too (the usual case: fetch
/// the authorization URL, then open it), where WebKit would block `window.open`. An address on
/// the engine itself would simply load in this window, so it goes through `window.open` and the
/// new-window handler instead, which needs the call to come from a click.
const OPEN_EXTERNAL_SCRIPT: &str = r#"window.__stagehandOpenExternal = function (url) {
  var target = new URL(String(url), window.location.href);
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    throw new TypeError("only http and https addresses open in the browser");
  }
  if (target.origin === window.location.origin) {
    window.open(target.href, "_blank");
  } else {
    window.location.assign(target.href);
  }
};
"#;

/// Opens an http(s) address in the system browser; anything else is refused. Only the scheme
/// and host are logged: the path and query of an authorization URL carry its state.
fn open_external(app: &AppHandle, url: &Url) {
    let origin = url.origin().ascii_serialization();
    if !matches!(url.scheme(), "http" | "https") {
        tracing::warn!(to = %url.scheme(), "the main window refused to open a non-web address");
        return;
    }
    match app.opener().open_url(url.as_str(), None::<&str>) {
        Ok(()) => tracing::info!(to = %origin, "opened in the system browser"),
        Err(e) => {
            // The launcher's error repeats the whole address.
            let error = e.to_string().replace(url.as_str(), &origin);
            tracing::warn!(to = %origin, error = %error, "cannot open the system browser");
        }
    }
}

/// Brings the main window back: from the tray, or when Stagehand is launched a second time.
pub fn show_main(app: &AppHandle) {
    let Some(main) = app.get_webview_window(MAIN) else {
        return;
    };
    let shown = main
        .unminimize()
        .and_then(|()| main.show())
        .and_then(|()| main.set_focus());
    if let Err(e) = shown {
        tracing::warn!(error = %e, "cannot bring the main window back");
    }
}

/// Shows `error` on the boot page in its own window; the main window, if any, is closed.
pub fn open_failure(app: &AppHandle, headline: &str, error: &anyhow::Error) -> anyhow::Result<()> {
    if app.get_webview_window(FAILURE).is_some() {
        return Ok(());
    }
    let script = failure_script(headline, &format!("{error:#}"))?;
    WebviewWindowBuilder::new(app, FAILURE, WebviewUrl::App("index.html".into()))
        .title(headline)
        .inner_size(720.0, 440.0)
        .initialization_script(script)
        .build()
        .context("opening the failure window")?;
    if let Some(main) = app.get_webview_window(MAIN) {
        // Destroyed, not closed: closing the main window only hides it in the tray.
        main.destroy().context("closing the main window")?;
    }
    Ok(())
}

/// The script that hands `code` to the login page (`login.js` defines the function).
fn sign_in_script(code: &str) -> anyhow::Result<String> {
    Ok(format!(
        "if (typeof window.__stagehandSignIn === \"function\") {{ window.__stagehandSignIn({}); }}",
        js_string(code)?
    ))
}

/// The script that writes a failure into the boot page.
fn failure_script(headline: &str, detail: &str) -> anyhow::Result<String> {
    Ok(format!(
        r#"document.addEventListener("DOMContentLoaded", function () {{
  document.title = {headline};
  document.getElementById("title").textContent = {headline};
  document.getElementById("hint").textContent = {hint};
  var detail = document.getElementById("detail");
  detail.textContent = {detail};
  detail.hidden = false;
}});
"#,
        headline = js_string(headline)?,
        hint = js_string(
            "Fix the problem below, then start Stagehand again. Closing this window quits Stagehand."
        )?,
        detail = js_string(detail)?,
    ))
}

/// A JavaScript string literal: JSON's string syntax is a subset of JavaScript's.
fn js_string(value: &str) -> anyhow::Result<String> {
    serde_json::to_string(value).context("quoting a string for a script")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_script_quotes_the_code() {
        let script = sign_in_script("c0\"de").expect("plain strings quote");
        assert_eq!(
            script,
            r#"if (typeof window.__stagehandSignIn === "function") { window.__stagehandSignIn("c0\"de"); }"#
        );
    }

    #[test]
    fn failure_detail_cannot_break_out_of_its_string() {
        let script = failure_script("Stagehand could not start", "port \"7420\"\n</script>\\")
            .expect("plain strings quote");
        assert!(
            script.contains(r#"detail.textContent = "port \"7420\"\n</script>\\";"#),
            "quotes, newlines and backslashes in an error must stay inside the literal: {script}"
        );
    }
}
