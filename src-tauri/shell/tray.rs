//! The tray icon: Stagehand at a glance while its window is closed, and the way back to it.
//!
//! The menu's first lines are the engine's own summary ([`Engine::status_summary`]), kept
//! current by a task that rereads it when the engine announces something and every few
//! seconds (page counts change without an event); below them Open panel, Copy overlay link
//! (one entry per overlay, each copying a freshly signed link) and Quit. Linux trays show no
//! tooltips, hence the status lines in the menu; elsewhere the tooltip says the same.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use stagehand_engine::Engine;
use stagehand_engine::summary::StatusSummary;
use tauri::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager as _};

use crate::window;

/// The tray icon's id.
pub const ID: &str = "stagehand";
const OPEN: &str = "open";
const QUIT: &str = "quit";
/// Menu ids of overlay entries: this prefix and the overlay id.
const COPY_PREFIX: &str = "copy:";
/// The longest wait between two rereads of the summary.
const REFRESH_EVERY: Duration = Duration::from_secs(3);
/// Overlays listed in the menu; a menu longer than a screen helps nobody.
const MAX_LISTED: usize = 20;

/// What the menu handler and the refresher share.
struct Tray {
    engine: Engine,
    url: String,
    obs: MenuItem<tauri::Wry>,
    overlays: MenuItem<tauri::Wry>,
    relay: MenuItem<tauri::Wry>,
    copy: Submenu<tauri::Wry>,
    /// Linux's X11 clipboard is served by whoever set it, for as long as they live, so the
    /// clipboard is opened once and kept.
    clipboard: Arc<Mutex<Option<arboard::Clipboard>>>,
}

/// Puts the icon in the tray and starts keeping its menu current.
pub fn install(app: &AppHandle, engine: &Engine, url: &str) -> anyhow::Result<()> {
    let item = |id: &str, text: &str, enabled: bool| {
        MenuItem::with_id(app, id, text, enabled, None::<&str>)
            .with_context(|| format!("creating the tray's `{id}` entry"))
    };
    let obs = item("status.obs", "OBS: …", false)?;
    let overlays = item("status.overlays", "Overlays: …", false)?;
    let relay = item("status.relay", "Relay: …", false)?;
    let open = item(OPEN, "Open panel", true)?;
    let copy = Submenu::with_id(app, "copy", "Copy overlay link", true)
        .context("creating the tray's overlay list")?;
    let quit = item(QUIT, "Quit Stagehand", true)?;
    let separator = || PredefinedMenuItem::separator(app).context("creating a tray separator");
    let menu = Menu::with_items(
        app,
        &[
            &obs,
            &overlays,
            &relay,
            &separator()?,
            &open,
            &copy,
            &separator()?,
            &quit,
        ],
    )
    .context("creating the tray menu")?;
    let mut icon = TrayIconBuilder::with_id(ID)
        .tooltip("Stagehand")
        .menu(&menu)
        .on_menu_event(on_menu_event);
    if let Some(image) = app.default_window_icon() {
        icon = icon.icon(image.clone());
    }
    icon.build(app).context("putting the icon in the tray")?;
    app.manage(Tray {
        engine: engine.clone(),
        url: url.to_owned(),
        obs,
        overlays,
        relay,
        copy,
        clipboard: Arc::default(),
    });
    tauri::async_runtime::spawn(keep_current(app.clone()));
    Ok(())
}

fn on_menu_event(app: &AppHandle, event: MenuEvent) {
    let id = event.id().as_ref();
    match id {
        OPEN => window::show_main(app),
        QUIT => {
            tracing::info!("quitting from the tray");
            app.exit(0);
        }
        _ => {
            if let Some(overlay) = id.strip_prefix(COPY_PREFIX) {
                copy_link(app, overlay);
            }
        }
    }
}

/// Copies a freshly signed link to the overlay (never logged: the link is its credential).
fn copy_link(app: &AppHandle, overlay_id: &str) {
    let Some(tray) = app.try_state::<Tray>() else {
        return;
    };
    let link = format!(
        "{}{}",
        tray.url,
        tray.engine.overlays().link_path(overlay_id, None)
    );
    let clipboard = Arc::clone(&tray.clipboard);
    let overlay = overlay_id.to_owned();
    // X11 and Wayland clipboards answer over a socket: off the main thread.
    tauri::async_runtime::spawn_blocking(move || {
        let mut held = clipboard.lock().unwrap_or_else(|p| p.into_inner());
        let copied = match held.as_mut() {
            Some(clipboard) => clipboard.set_text(link),
            None => arboard::Clipboard::new().and_then(|mut clipboard| {
                let copied = clipboard.set_text(link);
                *held = Some(clipboard);
                copied
            }),
        };
        match copied {
            Ok(()) => tracing::info!(overlay = %overlay, "copied an overlay link from the tray"),
            Err(e) => {
                tracing::warn!(overlay = %overlay, error = %e, "cannot copy the overlay link")
            }
        }
    });
}

/// Rereads the summary whenever the engine announces something (at most once a second) and
/// at least every [`REFRESH_EVERY`], and updates the menu when it changed.
async fn keep_current(app: AppHandle) {
    let Some(tray) = app.try_state::<Tray>() else {
        return;
    };
    let mut events = tray.engine.events().subscribe();
    let mut shown: Option<StatusSummary> = None;
    loop {
        match tray.engine.status_summary().await {
            Ok(summary) if shown.as_ref() != Some(&summary) => {
                if let Err(e) = show(&app, &tray, &summary, shown.as_ref()) {
                    tracing::warn!(error = format!("{e:#}"), "cannot update the tray");
                }
                shown = Some(summary);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the status for the tray"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Anything announced, or the time is up; a lagging receiver just means "changed".
        let _ = tokio::time::timeout(REFRESH_EVERY, events.recv()).await;
    }
}

fn show(
    app: &AppHandle,
    tray: &Tray,
    summary: &StatusSummary,
    before: Option<&StatusSummary>,
) -> anyhow::Result<()> {
    tray.obs.set_text(summary.obs_line())?;
    tray.overlays.set_text(summary.overlays_line())?;
    tray.relay.set_text(summary.relay_line())?;
    if let Some(icon) = app.tray_by_id(ID) {
        icon.set_tooltip(Some(summary.tooltip()))?;
    }
    let listed = |s: &StatusSummary| {
        s.overlays
            .iter()
            .take(MAX_LISTED)
            .map(|o| (o.overlay_id.clone(), o.name.clone()))
            .collect::<Vec<_>>()
    };
    if before.map(listed) == Some(listed(summary)) {
        return Ok(());
    }
    for item in tray.copy.items()? {
        tray.copy.remove(&item)?;
    }
    if summary.overlays.is_empty() {
        let none = MenuItem::with_id(app, "copy.none", "No overlays yet", false, None::<&str>)?;
        tray.copy.append(&none)?;
    }
    for (id, name) in listed(summary) {
        let entry = MenuItem::with_id(app, format!("{COPY_PREFIX}{id}"), name, true, None::<&str>)?;
        tray.copy.append(&entry)?;
    }
    Ok(())
}
