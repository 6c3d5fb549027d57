//! The binary's tunnel commands, and a running relay picking up their changes.

use crate::support::{TestRelay, cli, config};

#[tokio::test]
async fn tunnel_create_and_allow_from_the_command_line() {
    let (dir, config) = config();
    let relay = TestRelay::start(config).await;

    let out = cli(&["tunnel", "create"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let id = created["tunnelId"].as_str().expect("tunnelId").to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.len() >= 43, "32 random bytes");

    let out = cli(
        &["tunnel", "allow", &id, "webhooks/tv", "--tradingview"],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    relay.relay.reload().await.expect("reload");
    let url = relay.url(&format!("/h/{id}/webhooks/tv"));
    let resp = relay.http.post(&url).body("x").send().await.expect("sent");
    assert_eq!(
        resp.status(),
        403,
        "only TradingView's addresses may post here"
    );
    let url = relay.url(&format!("/h/{id}/webhooks/open"));
    let resp = relay.http.post(&url).body("x").send().await.expect("sent");
    assert_eq!(
        resp.status(),
        202,
        "the running relay picked up the new tunnel"
    );
    assert!(
        relay.try_connect(&id, &secret, Some(0)).await.is_ok(),
        "the printed secret opens the link"
    );
    relay.stop().await;
}

#[test]
fn door_limits_of_zero_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    for flag in [
        "--moderator-max-streams",
        "--moderator-max-body-bytes",
        "--moderator-response-timeout",
    ] {
        let zero = if flag.ends_with("timeout") { "0s" } else { "0" };
        let out = cli(
            &["serve", "--bind", "127.0.0.1", "--port", "0", flag, zero],
            dir.path(),
        );
        assert!(!out.status.success(), "{flag} 0 is refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("must be above zero"), "{flag}: {stderr}");
    }
    let out = cli(
        &[
            "serve",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--moderator-max-body-bytes",
            "3000000",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 2097152"));
    let out = cli(
        &["serve", "--moderator-response-timeout", "soon"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--moderator-response-timeout"),
        "clap names the bad flag"
    );
}
