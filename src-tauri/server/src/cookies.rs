//! The two cookies this server sets, in one place: the streamer's session
//! (`stagehand_session`) and a moderator's session (`stagehand_moderator`), their attributes,
//! and reading them back.
//!
//! Both are `HttpOnly; SameSite=Strict`: scripts never see them and no other site's page can
//! send them. The moderator's is scoped to the relay tunnel's path (and `Secure` over TLS)
//! when the moderator came through the relay, so it is never sent to anything else served
//! under the relay's name.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use stagehand_protocol::ErrorCode;

use crate::error::ApiError;

/// Name of the streamer session cookie.
pub const SESSION_COOKIE: &str = "stagehand_session";

/// Name of the moderator session cookie (separate from the streamer's).
pub const MODERATOR_COOKIE: &str = "stagehand_moderator";

/// The value of cookie `name`, if sent.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The streamer's session id, if the cookie was sent.
pub fn session(headers: &HeaderMap) -> Option<&str> {
    read(headers, SESSION_COOKIE)
}

/// A moderator's session token, if the cookie was sent.
pub fn moderator(headers: &HeaderMap) -> Option<&str> {
    read(headers, MODERATOR_COOKIE)
}

/// Where a moderator's cookie applies: under the relay tunnel's path prefix (empty when the
/// moderator reached this server directly), and whether it travels over TLS only.
#[derive(Debug, Clone, Copy, Default)]
pub struct CookieScope<'a> {
    /// `/t/{tunnel}` through the relay, else empty.
    pub prefix: &'a str,
    /// Adds `Secure`.
    pub secure: bool,
}

/// Sets the streamer's session cookie for `max_age_seconds`.
pub fn set_session(
    response: &mut Response,
    session_id: &str,
    max_age_seconds: u64,
) -> Result<(), ApiError> {
    set(
        response,
        &format!(
            "{SESSION_COOKIE}={session_id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_seconds}"
        ),
    )
}

/// Clears the streamer's session cookie.
pub fn clear_session(response: &mut Response) -> Result<(), ApiError> {
    set(
        response,
        &format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    )
}

/// Sets a moderator's session cookie for `max_age_seconds` (0 when negative), within `scope`.
pub fn set_moderator(
    response: &mut Response,
    token: &str,
    max_age_seconds: i64,
    scope: CookieScope<'_>,
) -> Result<(), ApiError> {
    let secure = if scope.secure { "; Secure" } else { "" };
    set(
        response,
        &format!(
            "{MODERATOR_COOKIE}={token}; HttpOnly; SameSite=Strict; Path={}/; Max-Age={}{secure}",
            scope.prefix,
            max_age_seconds.max(0)
        ),
    )
}

fn set(response: &mut Response, cookie: &str) -> Result<(), ApiError> {
    let value = HeaderValue::from_str(cookie)
        .map_err(|_| ApiError::new(ErrorCode::InternalError, "bad cookie"))?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_cookie(response: &Response) -> &str {
        response.headers()[header::SET_COOKIE]
            .to_str()
            .expect("cookies are text")
    }

    #[test]
    fn cookie_lookup_finds_the_named_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; stagehand_session=xyz; b=2"),
        );
        assert_eq!(session(&headers), Some("xyz"));
        assert_eq!(read(&headers, "c"), None);
        assert_eq!(moderator(&headers), None);
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_site_wide() {
        let mut response = Response::default();
        set_session(&mut response, "s1", 60).expect("a plain id is a valid cookie");
        assert_eq!(
            set_cookie(&response),
            "stagehand_session=s1; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        clear_session(&mut response).expect("clearing always works");
        assert!(
            set_cookie(&response).ends_with("Max-Age=0"),
            "expired at once"
        );
    }

    #[test]
    fn a_relayed_moderator_cookie_stays_under_the_tunnel_path() {
        let mut response = Response::default();
        set_moderator(&mut response, "t", -5, CookieScope::default()).expect("valid");
        assert_eq!(
            set_cookie(&response),
            "stagehand_moderator=t; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        );
        let relayed = CookieScope {
            prefix: "/t/tun_1",
            secure: true,
        };
        set_moderator(&mut response, "t", 30, relayed).expect("valid");
        assert_eq!(
            set_cookie(&response),
            "stagehand_moderator=t; HttpOnly; SameSite=Strict; Path=/t/tun_1/; Max-Age=30; Secure"
        );
        assert!(
            set_moderator(&mut response, "bad\nvalue", 1, relayed).is_err(),
            "a value that cannot be a header is refused, not sent"
        );
    }
}
