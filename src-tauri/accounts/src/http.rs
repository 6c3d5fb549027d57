//! Talking to providers with reqwest: one place that sends a request, reads a bounded answer
//! and sorts failures into "retry later" ([`Failure::Transient`]: network trouble, timeouts,
//! 429 and 5xx) and "the provider said no" ([`Failure::Rejected`]). Messages never hold a
//! request's URL or a token.

use crate::{Failure, clip};

/// Largest provider answer read (token and identity answers are a few hundred bytes).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// An error and its causes in one line (reqwest's own message says little on its own).
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    clip(&text)
}

/// Sends a request and reads the answer; trouble on the way is [`Failure::Transient`].
pub(crate) async fn http_send(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Failure> {
    let mut response = request
        .send()
        .await
        .map_err(|e| Failure::Transient(describe(&e.without_url())))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Transient(describe(&e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Failure::Transient("the answer was too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// Sends a request and parses a JSON answer. 429 and 5xx are transient, other errors are the
/// provider refusing.
pub(crate) async fn http_get_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, Failure> {
    let (status, body) = http_send(request).await?;
    match status {
        200..=299 => serde_json::from_slice(&body)
            .map_err(|_| Failure::Transient("the answer was not the JSON documented".into())),
        429 | 500..=599 => Err(Failure::Transient(format!(
            "HTTP {status}: {}",
            error_message(&body)
        ))),
        _ => Err(Failure::Rejected(format!(
            "HTTP {status}: {}",
            error_message(&body)
        ))),
    }
}

/// What an error answer says, from the fields providers use: Twitch and Discord `message`,
/// OAuth `error_description`/`error`, Google APIs `error.message`.
pub(crate) fn error_message(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return "no readable error".into();
    };
    let text = value["message"]
        .as_str()
        .or_else(|| value["error_description"].as_str())
        .or_else(|| value["error"].as_str())
        .or_else(|| value["error"]["message"].as_str())
        .unwrap_or("no readable error");
    clip(text)
}
