//! The shell's two windows: the main window onto the engine's local server, and the boot page
//! that says why the engine could not start or stopped.
//!
//! The main window signs itself in: an initialization script hands the page a one-time login
//! code, which the engine's `/login` page exchanges for a session cookie. The script checks the
//! origin and path so the code is only ever offered to the engine's own login page, and the
//! window refuses to navigate anywhere but the engine.

use anyhow::Context as _;
use stagehand_engine::Secret;
use tauri::{AppHandle, Manager as _, Url, WebviewUrl, WebviewWindowBuilder};

/// Label of the window onto the engine.
pub const MAIN: &str = "main";
/// Label of the window that explains a failure.
const FAILURE: &str = "failure";

/// Opens the main window on the engine's `/login` page, carrying `code` for that page only.
pub fn open_main(app: &AppHandle, engine_url: &str, code: &Secret) -> anyhow::Result<()> {
    let engine = Url::parse(engine_url)
        .with_context(|| format!("the local server's address `{engine_url}` is not a URL"))?;
    let login = engine
        .join("/login")
        .context("building the login page's address")?;
    let origin = engine.origin();
    let script = login_code_script(&origin.ascii_serialization(), code.expose())?;
    WebviewWindowBuilder::new(app, MAIN, WebviewUrl::External(login))
        .title("Stagehand")
        .inner_size(1100.0, 760.0)
        .min_inner_size(640.0, 480.0)
        .initialization_script(script)
        .on_navigation(move |url| {
            // No address bar, and a login script aboard: this window only ever shows the engine.
            let allowed = url.origin() == origin;
            if !allowed {
                tracing::warn!(
                    to = %url.origin().ascii_serialization(),
                    "the main window refused to leave the engine"
                );
            }
            allowed
        })
        .build()
        .context("opening the main window")?;
    Ok(())
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
        main.close().context("closing the main window")?;
    }
    Ok(())
}

/// The script that offers `code` to the engine's login page and to nothing else.
fn login_code_script(origin: &str, code: &str) -> anyhow::Result<String> {
    Ok(format!(
        "if (location.origin === {origin} && location.pathname === \"/login\") {{\n  \
         window.__STAGEHAND_LOGIN_CODE = {code};\n}}\n",
        origin = js_string(origin)?,
        code = js_string(code)?,
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
    fn login_script_offers_the_code_only_to_the_engines_login_page() {
        let script =
            login_code_script("http://127.0.0.1:7420", "c0de").expect("plain strings quote");
        assert!(
            script.starts_with(
                r#"if (location.origin === "http://127.0.0.1:7420" && location.pathname === "/login")"#
            ),
            "the code must be guarded by origin and path, got: {script}"
        );
        assert!(
            script.contains(r#"window.__STAGEHAND_LOGIN_CODE = "c0de";"#),
            "{script}"
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
