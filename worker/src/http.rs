//! Request and response plumbing shared by the handlers: bounded JSON bodies that fail with a
//! code naming the bad field, client identity for audit and throttling, and success envelopes.

use crate::error::{ApiError, json_headers};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use stowage_shared::{Envelope, ErrorCode};
use worker::{Request, Response};

/// Reads a JSON body of at most `limit` bytes and parses it. Every failure is a 4xx: `invalid` is the
/// route's own code for a body it cannot use (e.g. `AUTH_LOGIN_INVALID`).
pub async fn read_json<T: DeserializeOwned>(
    req: &mut Request,
    limit: usize,
    invalid: ErrorCode,
) -> Result<T, ApiError> {
    read_json_or(req, limit, invalid, None).await
}

/// Like [`read_json`], for a body that may be left out: no body means `T::default()`.
pub async fn read_optional_json<T: DeserializeOwned + Default>(
    req: &mut Request,
    limit: usize,
    invalid: ErrorCode,
) -> Result<T, ApiError> {
    read_json_or(req, limit, invalid, Some(T::default())).await
}

async fn read_json_or<T: DeserializeOwned>(
    req: &mut Request,
    limit: usize,
    invalid: ErrorCode,
    absent: Option<T>,
) -> Result<T, ApiError> {
    let content_type = req.headers().get("Content-Type")?.unwrap_or_default();
    if !content_type.is_empty() && !is_json(&content_type) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("expected Content-Type application/json, got {content_type}"),
        ));
    }
    let bytes = read_body(req, limit).await?;
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return absent.ok_or_else(|| ApiError::new(invalid, "a JSON request body is required"));
        }
        // serde would read an array into a struct by position; a body is always an object.
        Some(b'{') => {}
        Some(_) => {
            return Err(ApiError::new(
                invalid,
                "the request body must be a JSON object",
            ));
        }
    }
    parse_json(&bytes).map_err(|message| ApiError::new(invalid, message))
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// A raw body of at most `limit` bytes.
pub async fn read_bytes(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    read_body(req, limit).await
}

/// Reads the body without ever holding more than `limit` bytes: a declared length over the limit is
/// refused before reading, and a chunked body is cut off as soon as it passes the limit.
async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than {limit} bytes"),
        )
    };
    if let Some(declared) = req.headers().get("Content-Length")? {
        match declared.trim().parse::<u64>() {
            Ok(n) if n > limit as u64 => return Err(too_large()),
            Ok(_) => {}
            Err(_) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    "Content-Length is not a number",
                ));
            }
        }
    }
    let mut body = Vec::new();
    let mut stream = match req.stream() {
        Ok(stream) => stream,
        // A request without a body has no stream.
        Err(_) => return Ok(body),
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses JSON and turns serde's error into a message that names the field and the expected type
/// but never echoes the value that was sent (it may be a password).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return format!("malformed JSON: {inner}");
        }
        let text = inner.to_string();
        let text = text
            .rfind(" at line ")
            .map_or(text.as_str(), |i| &text[..i]);
        let reason = if text.starts_with("invalid type") || text.starts_with("invalid value") {
            let expected = text
                .split_once(", expected ")
                .map_or("a different type", |(_, e)| e);
            format!("wrong type, expected {expected}")
        } else {
            text.to_owned()
        };
        if path == "." {
            reason
        } else {
            format!("{path}: {reason}")
        }
    })
}

/// The client's address as Cloudflare saw it. `CF-Connecting-IP` is set by Cloudflare's edge and
/// cannot be forged from outside; `X-Forwarded-For` is never trusted.
pub fn client_ip(req: &Request) -> String {
    req.headers()
        .get("CF-Connecting-IP")
        .ok()
        .flatten()
        .map(|ip| truncate(ip.trim(), 64))
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

pub fn user_agent(req: &Request) -> String {
    req.headers()
        .get("User-Agent")
        .ok()
        .flatten()
        .map(|ua| truncate(&ua, 256))
        .unwrap_or_default()
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

pub fn ok<T: Serialize>(data: &T) -> Result<Response, ApiError> {
    respond(200, data)
}

pub fn created<T: Serialize>(data: &T) -> Result<Response, ApiError> {
    respond(201, data)
}

/// Work that was started and goes on without the caller.
pub fn accepted<T: Serialize>(data: &T) -> Result<Response, ApiError> {
    respond(202, data)
}

fn respond<T: Serialize>(status: u16, data: &T) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(&Envelope::ok(data))
        .map_err(|e| ApiError::internal("encode response", e))?;
    Ok(Response::builder()
        .with_status(status)
        .with_headers(json_headers())
        .fixed(bytes))
}

/// `fut`'s output, or `None` when it takes longer than `ms` milliseconds (outbound calls must
/// not hold a request or a tick for ever).
pub async fn within<F: std::future::Future>(ms: u64, fut: F) -> Option<F::Output> {
    use futures_util::future::{Either, select};
    let timeout = worker::Delay::from(std::time::Duration::from_millis(ms));
    match select(std::pin::pin!(fut), std::pin::pin!(timeout)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// Reads at most `limit` bytes of the body of an answer the Worker fetched (the rest is never
/// read), as text: a receiver or feed cannot make the Worker hold an answer of any size.
pub async fn read_bounded(response: &mut worker::Response, limit: usize) -> Result<String, String> {
    use futures_util::StreamExt;
    let mut stream = response.stream().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `Content-Disposition` for a download named `name` (any text: a snapshot's file names are the
/// user's): an ASCII `filename` for old clients, and RFC 6266's UTF-8 `filename*`. Header values
/// must be visible ASCII, so a raw name with other characters could not even be sent.
pub fn attachment(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded =
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_shared::api::LoginRequest;

    #[test]
    fn attachment_names_are_ascii_with_the_utf8_name_beside() {
        assert_eq!(
            attachment("backup.tar.zst"),
            "attachment; filename=\"backup.tar.zst\"; filename*=UTF-8''backup%2Etar%2Ezst"
        );
        let header = attachment("résumé \"q\"\n.pdf");
        assert!(header.is_ascii() && !header.contains('\n'), "{header}");
        assert!(
            header.starts_with("attachment; filename=\"r_sum_ _q__.pdf\""),
            "{header}"
        );
        assert!(header.ends_with("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22q%22%0A%2Epdf"));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }

    #[test]
    fn parse_errors_name_the_field_and_hide_the_value() {
        let err = parse_json::<LoginRequest>(br#"{"username":"a","password":12345678}"#)
            .expect_err("wrong type");
        assert_eq!(err, "password: wrong type, expected a string");
        assert!(!err.contains("12345678"));

        let err = parse_json::<LoginRequest>(br#"{"username":"a"}"#).expect_err("missing");
        assert_eq!(err, "missing field `password`");

        let err = parse_json::<LoginRequest>(br#"{"username": "a", "#).expect_err("syntax");
        assert!(err.starts_with("malformed JSON"), "{err}");

        let err = parse_json::<LoginRequest>(b"[1,2]").expect_err("not an object");
        assert!(err.contains("expected"), "{err}");
    }
}
