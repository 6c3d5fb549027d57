//! OS notifications for the engine's notices (`stagehand_engine::notices` decides what is one).

use stagehand_engine::Engine;
use stagehand_engine::notices;
use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt as _;
use tokio::sync::broadcast::error::RecvError;

/// Shows every `notice` the engine publishes from now on as an OS notification.
pub fn forward(app: &AppHandle, engine: &Engine) {
    let mut events = engine.events().subscribe();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            if event.kind != notices::EVENT {
                continue;
            }
            let text = |field: &str| event.data.get(field).and_then(|v| v.as_str());
            let (Some(title), Some(message)) = (text("title"), text("message")) else {
                continue;
            };
            if let Err(e) = app
                .notification()
                .builder()
                .title(title)
                .body(message)
                .show()
            {
                tracing::warn!(error = %e, "cannot show a notification");
            }
        }
    });
}
