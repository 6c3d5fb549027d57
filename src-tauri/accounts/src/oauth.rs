//! Standard OAuth 2.0 (RFC 6749 with PKCE, RFC 7636; revocation, RFC 7009) through the
//! `oauth2` crate, for the providers that speak it as written: Google and Discord.
//!
//! The crate builds the authorization URL (with the S256 challenge and our `state`) and the
//! token requests, and sends them with the engine's reqwest client; this file
//! turns its errors into [`Failure`]s: the provider refusing (`invalid_grant` and friends) is
//! for good, anything else is worth retrying.

use std::borrow::Cow;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthorizationCode, CsrfToken, EndpointNotSet, EndpointSet, ErrorResponse, HttpClientError,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardErrorResponse, TokenResponse,
};

use stagehand_core::Secret;

use crate::{Failure, Grant, Tokens};

/// A client with its authorization and token endpoints set.
pub(crate) type Client =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The authorization URL to open and the PKCE verifier to keep for the exchange.
pub(crate) fn authorize_url(
    client: &Client,
    scopes: &[String],
    redirect_uri: &str,
    state: &Secret,
    extra: &[(&str, &str)],
) -> Result<(String, Secret), String> {
    let redirect =
        RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| format!("redirect URI: {e}"))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = state.expose().to_owned();
    let mut request = client
        .authorize_url(move || CsrfToken::new(state))
        .set_redirect_uri(Cow::Owned(redirect))
        .set_pkce_challenge(challenge)
        .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())));
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let (url, _) = request.url();
    Ok((url.to_string(), Secret::new(verifier.secret().clone())))
}

/// Exchanges an authorization code (with the PKCE verifier and the same redirect URI).
pub(crate) async fn exchange_code(
    http: &reqwest::Client,
    client: &Client,
    code: &Secret,
    verifier: Option<&Secret>,
    redirect_uri: &str,
) -> Result<Grant, Failure> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| Failure::Rejected(format!("redirect URI: {e}")))?;
    let mut request = client
        .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
        .set_redirect_uri(Cow::Owned(redirect));
    if let Some(verifier) = verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_owned()));
    }
    let response = request.request_async(http).await.map_err(token_failure)?;
    Ok(grant(&response))
}

/// Renews tokens with a refresh token.
pub(crate) async fn refresh(
    http: &reqwest::Client,
    client: &Client,
    refresh_token: &Secret,
) -> Result<Grant, Failure> {
    let token = RefreshToken::new(refresh_token.expose().to_owned());
    let response = client
        .exchange_refresh_token(&token)
        .request_async(http)
        .await
        .map_err(token_failure)?;
    Ok(grant(&response))
}

/// Revokes the grant (RFC 7009): with the refresh token when there is one (which ends the
/// access tokens issued from it too), else the access token. A provider that says the token is
/// already invalid counts as revoked.
///
/// Sent with reqwest rather than the `oauth2` crate, which refuses revocation URLs that are not
/// HTTPS and so could never be pointed at a local fake; the request is one form POST.
pub(crate) async fn revoke(
    http: &reqwest::Client,
    url: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
    tokens: &Tokens,
) -> Result<(), Failure> {
    let (token, hint) = match &tokens.refresh {
        Some(refresh) => (refresh, "refresh_token"),
        None => (&tokens.access, "access_token"),
    };
    let mut form = vec![
        ("token", token.expose()),
        ("token_type_hint", hint),
        ("client_id", client_id),
    ];
    if let Some(secret) = client_secret {
        form.push(("client_secret", secret.expose()));
    }
    let (status, body) = crate::http_send(http.post(url).form(&form)).await?;
    match status {
        200..=299 => Ok(()),
        400 if crate::error_message(&body) == "invalid_token"
            || body_error(&body).as_deref() == Some("invalid_token") =>
        {
            Ok(())
        }
        429 | 500..=599 => Err(Failure::Transient(format!(
            "HTTP {status}: {}",
            crate::error_message(&body)
        ))),
        _ => Err(Failure::Rejected(format!(
            "HTTP {status}: {}",
            crate::error_message(&body)
        ))),
    }
}

/// The RFC 6749 `error` code of an error answer.
fn body_error(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_owned)
}

fn grant(response: &oauth2::basic::BasicTokenResponse) -> Grant {
    Grant {
        access: Secret::new(response.access_token().secret().clone()),
        refresh: response
            .refresh_token()
            .map(|r| Secret::new(r.secret().clone())),
        expires_in: response.expires_in().map(|d| d.as_secs()),
        scopes: response
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect()),
    }
}

fn transport(e: HttpClientError<reqwest::Error>) -> String {
    match e {
        HttpClientError::Reqwest(inner) => crate::describe(&inner.without_url()),
        other => other.to_string(),
    }
}

/// The provider's own error code and description, cut short (never a token: error bodies do
/// not carry one).
fn described<T: ErrorResponse + std::fmt::Display>(r: &T) -> String {
    r.to_string().chars().take(200).collect()
}

fn token_failure(
    e: RequestTokenError<
        HttpClientError<reqwest::Error>,
        StandardErrorResponse<BasicErrorResponseType>,
    >,
) -> Failure {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error() {
            // Servers that are briefly unwell sometimes say so in OAuth's words.
            BasicErrorResponseType::Extension(code)
                if code == "temporarily_unavailable" || code == "server_error" =>
            {
                Failure::Transient(described(&r))
            }
            _ => Failure::Rejected(described(&r)),
        },
        RequestTokenError::Request(e) => Failure::Transient(transport(e)),
        // The body is not printed: a 200 that failed to parse holds the tokens.
        RequestTokenError::Parse(_, _) => {
            Failure::Transient("the answer was not the JSON OAuth 2.0 describes".into())
        }
        RequestTokenError::Other(message) => Failure::Transient(message),
    }
}
