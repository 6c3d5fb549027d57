//! [`FormOrJson`]: a body that may come as a urlencoded form (HTML forms post one, and work
//! without script) or as JSON (the panel's scripts and API clients), read into one type.
//!
//! A form becomes a JSON object first: each field a string, a repeated field an array of
//! strings (`scopes=tts&scopes=alerts`), so one `Deserialize` type reads both. Types that
//! take numbers or lists from forms accept their string spellings themselves.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use stagehand_protocol::ErrorCode;

use crate::error::ApiError;

/// A body sent as a urlencoded form or as JSON.
///
/// Refusals, under the route's body limit like every other body: too large is `413
/// payload_too_large`; a form that does not parse is `400 invalid_fields`; anything else that
/// is not a JSON object is `400 invalid_json`; a field that is missing, unknown or of the
/// wrong type is `422 invalid_fields`. Handlers that must act before refusing (rate limits)
/// take `Result<FormOrJson<T>, ApiError>`.
#[derive(Debug)]
pub struct FormOrJson<T> {
    /// What was sent.
    pub value: T,
    /// Whether it came as a form: a browser without script, which is answered with a page or
    /// a redirect rather than JSON.
    pub form: bool,
}

/// Whether the body is a urlencoded form.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The fields of a urlencoded form as a JSON object; repeated keys collect into arrays.
fn form_object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::malformed(format!("invalid form: {e}")))?;
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        match map.get_mut(&k) {
            Some(serde_json::Value::Array(list)) => list.push(v.into()),
            Some(existing) => *existing = serde_json::Value::Array(vec![existing.take(), v.into()]),
            None => {
                map.insert(k, v.into());
            }
        }
    }
    Ok(serde_json::Value::Object(map))
}

/// The body as a JSON object.
fn json_object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    match serde_json::from_slice(body) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(ApiError::new(ErrorCode::InvalidJson, "send a JSON object")),
        Err(e) => Err(ApiError::new(ErrorCode::InvalidJson, e.to_string())),
    }
}

impl<T: DeserializeOwned> FormOrJson<T> {
    /// Reads `body`, a form when `form` is set, JSON otherwise.
    pub fn parse(form: bool, body: &[u8]) -> Result<Self, ApiError> {
        let object = if form {
            form_object(body)?
        } else {
            json_object(body)?
        };
        let value =
            serde_json::from_value(object).map_err(|e| ApiError::invalid_fields(e.to_string()))?;
        Ok(Self { value, form })
    }
}

impl<T, S> FromRequest<S> for FormOrJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let form = is_form(request.headers());
        let body = Bytes::from_request(request, state).await?;
        Self::parse(form, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: String,
        tags: Option<Vec<String>>,
    }

    #[test]
    fn forms_and_json_read_into_the_same_type() {
        let form = FormOrJson::<Sample>::parse(true, b"name=a&tags=x&tags=y").expect("valid");
        assert!(form.form);
        assert_eq!(
            form.value,
            Sample {
                name: "a".into(),
                tags: Some(vec!["x".into(), "y".into()])
            },
            "repeated form fields are a list"
        );
        let json = FormOrJson::<Sample>::parse(false, br#"{"name":"a"}"#).expect("valid");
        assert!(!json.form);
        assert_eq!(json.value.name, "a");
    }

    #[test]
    fn each_kind_of_bad_body_has_its_code_and_status() {
        let cases: [(bool, &[u8], u16, ErrorCode); 4] = [
            (false, b"{not json", 400, ErrorCode::InvalidJson),
            (false, b"[1]", 400, ErrorCode::InvalidJson),
            (
                false,
                br#"{"name":"a","x":1}"#,
                422,
                ErrorCode::InvalidFields,
            ),
            (true, b"tags=x", 422, ErrorCode::InvalidFields),
        ];
        for (form, body, status, code) in cases {
            let err = FormOrJson::<Sample>::parse(form, body).expect_err("refused");
            assert_eq!(
                (err.status().as_u16(), err.code),
                (status, code),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
