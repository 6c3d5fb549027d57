//! What is written survives a restart; migrations are idempotent.

use stagehand_engine::audit::{AuditEntry, Outcome};
use support::{Options, TestApp};

#[tokio::test]
async fn data_written_before_a_restart_is_there_after_it() {
    let app = TestApp::start().await;
    let token = app.token.clone();
    app.engine
        .audit()
        .record(AuditEntry::new("streamer", "test.marker", Outcome::Ok).target("before-restart"))
        .await
        .unwrap();
    let signed_in = app
        .post("/session")
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let version_before = app.engine.store().schema_version().await.unwrap();
    let applied = |app: &TestApp| {
        let store = app.engine.store().clone();
        async move {
            store
                .call(|c| {
                    let mut stmt = c.prepare(
                        "SELECT version, applied_ms FROM schema_migrations ORDER BY version",
                    )?;
                    let rows =
                        stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                })
                .await
                .unwrap()
        }
    };
    let migrations_before = applied(&app).await;

    let app = app.restart(Options::default()).await;
    assert_eq!(
        app.token, token,
        "the streamer token is kept in the secret store"
    );
    assert_eq!(
        app.engine.store().schema_version().await.unwrap(),
        version_before,
        "reopening runs no migration again"
    );
    assert_eq!(
        applied(&app).await,
        migrations_before,
        "the same rows, with the same applied times: nothing re-ran"
    );
    let entries: serde_json::Value = app.get_json("/api/audit").await;
    let entries = entries["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "test.marker" && e["target"] == "before-restart"),
        "{entries:?}"
    );
    assert_eq!(
        app.get("/")
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "panel sessions live in SQLite and survive a restart"
    );
}

#[tokio::test]
async fn the_audit_log_pages_newest_first() {
    let app = TestApp::start().await;
    for i in 0..5 {
        app.engine
            .audit()
            .record(AuditEntry::new("system", "test.page", Outcome::Ok).target(i.to_string()))
            .await
            .unwrap();
    }
    let first: serde_json::Value = app.get_json("/api/audit?limit=2").await;
    let first = first["entries"].as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["target"], "4");
    let before = first[1]["id"].as_i64().unwrap();
    let next: serde_json::Value = app
        .get_json(&format!("/api/audit?limit=2&before={before}"))
        .await;
    assert_eq!(next["entries"][0]["target"], "2");
    let bad = app
        .get_as_streamer("/api/audit?limit=lots")
        .send()
        .await
        .unwrap();
    assert_eq!(
        support::error_code(bad).await,
        (400, "invalid_query".into())
    );
}

#[tokio::test]
async fn audit_entries_past_retention_are_deleted_and_newer_ones_kept() {
    let clock = stagehand_engine::clock::ManualClock::new(1_800_000_000_000);
    let app = TestApp::start_with(
        Options {
            clock: std::sync::Arc::new(clock.clone()),
            ..Options::default()
        }
        .env("STAGEHAND_LOGGING_AUDIT_RETENTION_DAYS", "30"),
    )
    .await;
    let record = |target: &'static str| {
        let engine = app.engine.clone();
        async move {
            engine
                .audit()
                .record(AuditEntry::new("system", "test.retention", Outcome::Ok).target(target))
                .await
                .unwrap();
        }
    };
    let kept = |app: &TestApp| {
        let engine = app.engine.clone();
        async move {
            let entries = engine.audit().list(500, None).await.unwrap();
            entries
                .into_iter()
                .filter(|e| e.action == "test.retention")
                .filter_map(|e| e.target)
                .collect::<Vec<_>>()
        }
    };
    record("old").await;
    clock.advance(std::time::Duration::from_secs(20 * 86_400));
    record("middle").await;
    assert_eq!(
        kept(&app).await,
        ["middle", "old"],
        "nothing is 30 days old yet"
    );
    clock.advance(std::time::Duration::from_secs(11 * 86_400));
    record("new").await;
    assert_eq!(
        kept(&app).await,
        ["new", "middle"],
        "31 days on, the first entry is gone"
    );
}
