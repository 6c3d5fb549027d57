//! The streamer's own webhook endpoints (`POST /webhooks/custom/{name}`), verified with the
//! Standard Webhooks scheme (<https://www.standardwebhooks.com>): `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` (`v1,<base64>` entries separated by spaces)
//! over `{id}.{timestamp}.{body}`, HMAC-SHA256 keyed with the base64 after `whsec_`, within
//! five minutes of the engine's clock either way. The body must be a JSON object; the title
//! and message templates pull its top-level fields in with `{{field}}`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::Sha256;

use super::template::render;
use super::{
    Announcement, MAX_KEY_CHARS, RefusalCode, Verified, WebhookError, WebhookRefusal,
    WebhookRequest, clip, tidy,
};
use crate::audit::{AuditEntry, Outcome};
use crate::clock::rfc3339;
use crate::store::StoreError;
use crate::{Engine, EngineError, Secret};

/// Timestamps further than this from now are refused (seconds).
const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Most custom endpoints at once.
const MAX_ENDPOINTS: u32 = 50;

/// Whether `name` is a valid endpoint name (1-32 of a-z 0-9 _ -).
pub(super) fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn secret_name(name: &str) -> String {
    format!("webhook-custom-{name}")
}

/// A custom endpoint, as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomEndpoint {
    /// Name; the endpoint is `/webhooks/custom/{name}`.
    pub name: String,
    /// Only this overlay; every overlay when `None`.
    pub overlay_id: Option<String>,
    /// Title template (`{{field}}` placeholders).
    pub title: String,
    /// Message template.
    pub message: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Secret last rotated (RFC 3339).
    pub rotated_at: Option<String>,
}

/// A custom endpoint just made, with its secret (shown once).
#[derive(Debug)]
pub struct NewCustomEndpoint {
    /// The endpoint.
    pub endpoint: CustomEndpoint,
    /// `whsec_` + base64 of 24 random bytes.
    pub secret: Secret,
}

fn new_secret() -> Result<Secret, EngineError> {
    let mut key = [0u8; 24];
    crate::random::fill(&mut key)?;
    Ok(Secret::new(format!("whsec_{}", STANDARD.encode(key))))
}

/// Verifies a Standard Webhooks signature. `now_s` is the engine's clock in Unix seconds.
pub fn verify_standard_webhook(
    secret: &Secret,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signatures: &str,
    now_s: i64,
) -> Result<(), WebhookRefusal> {
    let bad = || {
        WebhookRefusal::new(
            RefusalCode::InvalidSignature,
            "the webhook-signature does not match (wrong secret or changed body)",
        )
    };
    let ts: i64 = timestamp.trim().parse().map_err(|_| {
        WebhookRefusal::new(
            RefusalCode::StaleTimestamp,
            "webhook-timestamp must be Unix seconds",
        )
    })?;
    if (now_s - ts).abs() > TOLERANCE_SECONDS {
        return Err(WebhookRefusal::new(
            RefusalCode::StaleTimestamp,
            "webhook-timestamp is more than five minutes from now (check the sender's clock)",
        ));
    }
    let encoded = secret.expose().strip_prefix("whsec_").ok_or_else(bad)?;
    let key = STANDARD.decode(encoded).map_err(|_| bad())?;
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|_| bad())?;
    let mut mac = mac;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    for entry in signatures.split(' ') {
        let Some(("v1", given)) = entry.split_once(',') else {
            continue;
        };
        let Ok(given) = STANDARD.decode(given) else {
            continue;
        };
        // verify_slice compares in constant time.
        if mac.clone().verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(bad())
}

fn check_templates(title: &str, message: &str) -> Result<(String, String), WebhookError> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(WebhookError::Invalid(
            "title must be 1-200 characters".into(),
        ));
    }
    if message.chars().count() > 1000 {
        return Err(WebhookError::Invalid(
            "message must be at most 1000 characters".into(),
        ));
    }
    Ok((title.to_owned(), message.trim().to_owned()))
}

/// A top-level JSON value as template text: strings as they are, numbers and booleans
/// written out, anything else (objects, arrays, null) as nothing.
fn field_text(value: Option<&serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::String(s)) => clip(s, 500),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v.to_string(),
        _ => String::new(),
    }
}

fn row_to_endpoint(r: &rusqlite::Row<'_>) -> rusqlite::Result<CustomEndpoint> {
    Ok(CustomEndpoint {
        name: r.get(0)?,
        overlay_id: r.get(1)?,
        title: r.get(2)?,
        message: r.get(3)?,
        created_at: rfc3339(r.get(4)?),
        rotated_at: r.get::<_, Option<i64>>(5)?.map(rfc3339),
    })
}

const ENDPOINT_COLUMNS: &str = "name, overlay_id, title, message, created_ms, rotated_ms";

impl Engine {
    pub(super) async fn custom_check(
        &self,
        name: &str,
        request: &WebhookRequest,
        now: i64,
    ) -> Result<Result<Verified, WebhookRefusal>, EngineError> {
        let Some(endpoint) = self.webhook_custom_get(name).await? else {
            return Ok(Err(WebhookRefusal::new(
                RefusalCode::UnknownWebhook,
                "there is no webhook endpoint with that name",
            )));
        };
        let (Some(id), Some(timestamp), Some(signature)) = (
            request.header("webhook-id"),
            request.header("webhook-timestamp"),
            request.header("webhook-signature"),
        ) else {
            return Ok(Err(WebhookRefusal::new(
                RefusalCode::WebhookAuthRequired,
                "this webhook needs the webhook-id, webhook-timestamp and webhook-signature \
                 headers (Standard Webhooks)",
            )));
        };
        let Some(secret) = self.secrets().get(&secret_name(name)).await? else {
            tracing::error!(endpoint = name, "a custom webhook endpoint has no secret");
            return Ok(Err(WebhookRefusal::new(
                RefusalCode::InvalidSignature,
                "this endpoint has no secret; rotate it in Stagehand",
            )));
        };
        if let Err(refusal) = verify_standard_webhook(
            &secret,
            id,
            timestamp,
            &request.body,
            signature,
            now.div_euclid(1000),
        ) {
            return Ok(Err(refusal));
        }
        if id.trim().is_empty() || id.chars().count() > MAX_KEY_CHARS {
            return Ok(Err(WebhookRefusal::field(
                "webhook-id",
                format!("webhook-id must be 1-{MAX_KEY_CHARS} characters"),
            )));
        }
        let map = match serde_json::from_slice::<serde_json::Value>(&request.body) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                return Ok(Err(WebhookRefusal::new(
                    RefusalCode::InvalidJson,
                    "the body must be a JSON object",
                )));
            }
        };
        let lookup = |field: &str| Some(field_text(map.get(field)));
        let title = clip(&tidy(&render(&endpoint.title, "{{", "}}", lookup)), 200);
        let message = clip(render(&endpoint.message, "{{", "}}", lookup).trim(), 1000);
        Ok(Ok(Verified {
            idempotency_key: Some(id.trim().to_owned()),
            announcement: Announcement {
                overlay_id: endpoint.overlay_id,
                kind: "webhook".into(),
                title: if title.is_empty() {
                    endpoint.name
                } else {
                    title
                },
                message,
                chart: None,
            },
        }))
    }

    async fn webhook_custom_get(&self, name: &str) -> Result<Option<CustomEndpoint>, EngineError> {
        let name = name.to_owned();
        Ok(self
            .store()
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        &format!(
                            "SELECT {ENDPOINT_COLUMNS} FROM webhook_custom_endpoints WHERE name = ?1"
                        ),
                        [name],
                        row_to_endpoint,
                    )
                    .optional()?)
            })
            .await?)
    }

    /// The custom endpoints, by name.
    pub async fn webhook_custom_list(&self) -> Result<Vec<CustomEndpoint>, EngineError> {
        Ok(self
            .store()
            .call(|conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_custom_endpoints ORDER BY name"
                ))?;
                let rows = stmt.query_map([], row_to_endpoint)?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::from)
            })
            .await?)
    }

    /// Makes a custom endpoint and its secret (returned once). Templates use `{{field}}`
    /// for the JSON body's top-level fields.
    pub async fn webhook_custom_create(
        &self,
        name: &str,
        overlay_id: Option<String>,
        title: &str,
        message: &str,
    ) -> Result<NewCustomEndpoint, EngineError> {
        if !name_ok(name) {
            return Err(WebhookError::Invalid("name must be 1-32 of a-z 0-9 _ -".into()).into());
        }
        let (title, message) = check_templates(title, message)?;
        if let Some(id) = &overlay_id {
            self.overlays().get(id).await?;
        }
        let secret = new_secret()?;
        let now = self.now_ms();
        let (n, o, t, m) = (
            name.to_owned(),
            overlay_id.clone(),
            title.clone(),
            message.clone(),
        );
        self.store()
            .call(move |conn| {
                let tx = conn.transaction()?;
                let count: u32 = tx.query_row(
                    "SELECT COUNT(*) FROM webhook_custom_endpoints",
                    [],
                    |r| r.get(0),
                )?;
                if count >= MAX_ENDPOINTS {
                    return Ok(Err(WebhookError::LimitReached(MAX_ENDPOINTS)));
                }
                let inserted = tx.execute(
                    "INSERT INTO webhook_custom_endpoints (name, overlay_id, title, message, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
                    params![n, o, t, m, now],
                )?;
                if inserted == 0 {
                    return Ok(Err(WebhookError::Exists));
                }
                tx.commit()?;
                Ok(Ok(()))
            })
            .await??;
        if let Err(e) = self.secrets().set(&secret_name(name), secret.clone()).await {
            // Without its secret the endpoint could never be used; take it back.
            let n = name.to_owned();
            self.store()
                .call(move |conn| {
                    conn.execute("DELETE FROM webhook_custom_endpoints WHERE name = ?1", [n])?;
                    Ok(())
                })
                .await?;
            return Err(e.into());
        }
        self.audit()
            .record(
                AuditEntry::new("streamer", "webhook.custom.create", Outcome::Ok)
                    .target(name.to_owned())
                    .detail(serde_json::json!({ "overlayId": overlay_id })),
            )
            .await?;
        Ok(NewCustomEndpoint {
            endpoint: CustomEndpoint {
                name: name.to_owned(),
                overlay_id,
                title,
                message,
                created_at: rfc3339(now),
                rotated_at: None,
            },
            secret,
        })
    }

    /// Deletes a custom endpoint and its secret.
    pub async fn webhook_custom_delete(&self, name: &str) -> Result<(), EngineError> {
        if !name_ok(name) {
            return Err(WebhookError::NotFound.into());
        }
        let n = name.to_owned();
        let deleted = self
            .store()
            .call(move |conn| {
                Ok(conn.execute("DELETE FROM webhook_custom_endpoints WHERE name = ?1", [n])?)
            })
            .await?;
        if deleted == 0 {
            return Err(WebhookError::NotFound.into());
        }
        self.secrets().delete(&secret_name(name)).await?;
        self.audit()
            .record(
                AuditEntry::new("streamer", "webhook.custom.delete", Outcome::Ok)
                    .target(name.to_owned()),
            )
            .await?;
        Ok(())
    }

    /// Gives a custom endpoint a new secret (returned once); the old one stops working.
    pub async fn webhook_custom_rotate(&self, name: &str) -> Result<Secret, EngineError> {
        if !name_ok(name) {
            return Err(WebhookError::NotFound.into());
        }
        let n = name.to_owned();
        let now = self.now_ms();
        let found = self
            .store()
            .call(move |conn| {
                Ok(conn.execute(
                    "UPDATE webhook_custom_endpoints SET rotated_ms = ?2 WHERE name = ?1",
                    params![n, now],
                )?)
            })
            .await?;
        if found == 0 {
            return Err(WebhookError::NotFound.into());
        }
        let secret = new_secret()?;
        self.secrets()
            .set(&secret_name(name), secret.clone())
            .await?;
        self.audit()
            .record(
                AuditEntry::new("streamer", "webhook.custom.rotate", Outcome::Ok)
                    .target(name.to_owned()),
            )
            .await?;
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    // The spec's example signature. (A copy circulating with `/tMIK` instead of `/tmIK` is a
    // typo; HMAC-SHA256 of the example gives this one, as do the reference libraries.)
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specs_documented_example_verifies() {
        let secret = Secret::new(SECRET);
        verify_standard_webhook(&secret, ID, TS, BODY, SIGNATURE, 1_614_265_330)
            .expect("the example from the Standard Webhooks spec");
        verify_standard_webhook(
            &secret,
            ID,
            TS,
            BODY,
            &format!("v1,bm90IGl0 v2,xyz {SIGNATURE}"),
            1_614_265_330,
        )
        .expect("any one matching v1 entry in the list is enough");
        let one_letter_off = "v1,g0hM9SsE+OTPJTGt/tMIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(
            verify_standard_webhook(&secret, ID, TS, BODY, one_letter_off, 1_614_265_330).is_err(),
            "a signature one letter off is not the signature"
        );
    }

    #[test]
    fn changes_and_clock_skew_are_refused() {
        let secret = Secret::new(SECRET);
        let code = |r: Result<(), WebhookRefusal>| r.expect_err("refused").code;
        let at = 1_614_265_330;
        assert_eq!(
            code(verify_standard_webhook(
                &secret,
                ID,
                TS,
                br#"{"test": 1}"#,
                SIGNATURE,
                at
            )),
            RefusalCode::InvalidSignature
        );
        assert_eq!(
            code(verify_standard_webhook(
                &secret,
                "msg_other",
                TS,
                BODY,
                SIGNATURE,
                at
            )),
            RefusalCode::InvalidSignature
        );
        let other = Secret::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            code(verify_standard_webhook(&other, ID, TS, BODY, SIGNATURE, at)),
            RefusalCode::InvalidSignature
        );
        assert_eq!(
            code(verify_standard_webhook(
                &secret,
                ID,
                TS,
                BODY,
                SIGNATURE,
                at + 301
            )),
            RefusalCode::StaleTimestamp
        );
        assert_eq!(
            code(verify_standard_webhook(
                &secret,
                ID,
                TS,
                BODY,
                SIGNATURE,
                at - 301
            )),
            RefusalCode::StaleTimestamp,
            "a timestamp from the future is refused too"
        );
        verify_standard_webhook(&secret, ID, TS, BODY, SIGNATURE, at + 300)
            .expect("exactly five minutes is within tolerance");
    }

    #[test]
    fn secrets_are_whsec_and_24_bytes() {
        let secret = new_secret().expect("random");
        let encoded = secret.expose().strip_prefix("whsec_").expect("prefix");
        assert_eq!(STANDARD.decode(encoded).expect("base64").len(), 24);
    }

    #[test]
    fn fields_become_plain_text() {
        let v = serde_json::json!({"s": "hi", "n": 5, "b": true, "o": {"x": 1}});
        assert_eq!(field_text(v.get("s")), "hi");
        assert_eq!(field_text(v.get("n")), "5");
        assert_eq!(field_text(v.get("b")), "true");
        assert_eq!(field_text(v.get("o")), "");
        assert_eq!(field_text(v.get("missing")), "");
    }
}
