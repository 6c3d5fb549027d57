//! The yardstick of `scripts/bench-desktop`: the least a Tauri window onto a local axum server
//! can be. One small page on `127.0.0.1`, one window showing it, no engine, no tray, no plugins;
//! measured the same way as Stagehand, in the same run, it says what the WebKit window itself
//! costs and so how much Stagehand adds to it.
//!
//! `cargo run --release -p stagehand-desktop --example bare` prints `bare: page served` on
//! stderr once the window has loaded the page.

use anyhow::Context as _;
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use tauri::{WebviewUrl, WebviewWindowBuilder};

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>bare</title></head>
<body><main><h1>A bare Tauri window</h1><p>Served by axum on 127.0.0.1.</p></main></body>
</html>
"#;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tauri::async_runtime::set(runtime.handle().clone());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .context("binding 127.0.0.1")?;
    let url = format!("http://{}/", listener.local_addr()?);
    let app = Router::new().route(
        "/",
        get(|| async {
            eprintln!("bare: page served");
            Html(PAGE)
        }),
    );
    runtime.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("bare: the server stopped: {e}");
        }
    });
    let url = url.parse().context("the server's address is not a URL")?;
    tauri::Builder::default()
        .setup(move |app| {
            WebviewWindowBuilder::new(app, "main", WebviewUrl::External(url))
                .title("bare")
                .inner_size(1100.0, 760.0)
                .build()?;
            Ok(())
        })
        .run(tauri::generate_context!())
        .context("running the window")?;
    Ok(())
}
