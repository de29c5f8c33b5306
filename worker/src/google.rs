//! Google's OAuth 2.0 endpoints, as the Google Drive connect flow uses them: the consent URL and the
//! exchange of an authorization code for tokens. The endpoints come from the configuration, so the
//! flow runs against a local stand-in in tests.

use crate::config::GoogleOauth;
use crate::error::ApiError;
use serde::Deserialize;
use stowage_shared::ErrorCode;
use worker::{Fetch, Headers, Method, Request, RequestInit, Url};

/// Full Drive access: backups are written to, listed in and deleted from the chosen folder.
pub const DRIVE_SCOPE: &str = "https://www.googleapis.com/auth/drive";

/// The consent page the browser is sent to. `access_type=offline` and `prompt=consent` make
/// Google return a refresh token every time, also for a user who granted access before.
pub fn consent_url(
    oauth: &GoogleOauth,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
) -> Result<String, ApiError> {
    let mut url = Url::parse(&oauth.auth_url).map_err(|e| ApiError::internal("auth url", e))?;
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", DRIVE_SCOPE)
        .append_pair("access_type", "offline")
        .append_pair("prompt", "consent")
        .append_pair("state", state);
    Ok(url.into())
}

/// What the token endpoint answers.
#[derive(Debug, Deserialize)]
struct Tokens {
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

fn exchange_failed(message: String) -> ApiError {
    ApiError::new(ErrorCode::StorageGoogleOauthExchangeFailed, message)
}

/// Exchanges an authorization code for a refresh token.
pub async fn exchange_code(
    oauth: &GoogleOauth,
    client_id: &str,
    client_secret: &str,
    redirect_uri: &str,
    code: &str,
) -> Result<String, ApiError> {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("client_id", client_id)
        .append_pair("client_secret", client_secret)
        .append_pair("redirect_uri", redirect_uri)
        .finish();
    let headers = Headers::new();
    headers
        .set("Content-Type", "application/x-www-form-urlencoded")
        .and_then(|()| headers.set("Accept", "application/json"))
        .map_err(|e| ApiError::internal("token request headers", e))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let request = Request::new_with_init(&oauth.token_url, &init)
        .map_err(|e| ApiError::internal("token request", e))?;
    let mut response = Fetch::Request(request).send().await.map_err(|e| {
        exchange_failed(format!(
            "the token endpoint could not be reached: {e}; try again"
        ))
    })?;
    let status = response.status_code();
    let text = crate::http::read_bounded(&mut response, 64 * 1024)
        .await
        .unwrap_or_default();
    if !(200..300).contains(&status) {
        let why: TokenError = serde_json::from_str(&text).unwrap_or_default();
        let reason = match (why.error.is_empty(), why.error_description.is_empty()) {
            (true, _) => format!("HTTP {status}"),
            (false, true) => why.error,
            (false, false) => format!("{} ({})", why.error, why.error_description),
        };
        return Err(exchange_failed(format!(
            "Google refused the authorization code: {reason}; start the connection again"
        )));
    }
    let tokens: Tokens = serde_json::from_str(&text).map_err(|e| {
        exchange_failed(format!("the token endpoint answered unreadable JSON: {e}"))
    })?;
    tokens
        .refresh_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::StorageGoogleOauthRefreshTokenMissing,
                "Google granted access without a refresh token, so backups could not renew it; \
                 remove Stowage's access in your Google account's third-party access settings and connect again",
            )
        })
}
