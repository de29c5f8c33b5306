//! Bad requests of every kind get a 4xx with a code in the envelope — never a 500, never HTML.

use anyhow::Result;
use reqwest::Method;
use serde_json::json;
use stowage_shared::api::routes;
use stowage_tests::{Reply, Server};

async fn raw(
    server: &Server,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Result<Reply> {
    let mut req = server.http().request(method, server.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    Reply::read(req.send().await?).await
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods() -> Result<()> {
    let server = Server::start().await?;
    server
        .get("/api/no-such-thing", None)
        .await?
        .expect_error(404, "NOT_FOUND")?;
    server
        .get("/api/auth/setup/status/extra", None)
        .await?
        .expect_error(404, "NOT_FOUND")?;
    // Outside /api the console answers (a single-page app: every path is its index.html).
    let page = server
        .http()
        .get(server.url("/not-api-at-all"))
        .send()
        .await?;
    assert_eq!(page.status(), 200);
    let html = page.text().await?;
    assert!(html.contains("stowage_console.js"), "{html}");

    let reply = server.get(routes::AUTH_LOGIN, None).await?;
    reply.expect_error(405, "METHOD_NOT_ALLOWED")?;
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = server
        .call::<()>(Method::DELETE, routes::AUTH_PASSWORD, None, None)
        .await?;
    reply.expect_error(405, "METHOD_NOT_ALLOWED")?;
    assert_eq!(reply.header("allow"), Some("PUT"));
    Ok(())
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_name_what_is_wrong() -> Result<()> {
    let server = Server::start().await?;
    let json = Some("application/json");

    let reply = raw(
        &server,
        Method::POST,
        routes::AUTH_SETUP,
        json,
        "{\"username\": \"admin\",",
    )
    .await?;
    reply.expect_error(400, "AUTH_SETUP_INVALID")?;
    assert!(
        reply.envelope.message.contains("malformed JSON"),
        "{}",
        reply.raw
    );

    let reply = raw(&server, Method::POST, routes::AUTH_SETUP, json, "").await?;
    reply.expect_error(400, "AUTH_SETUP_INVALID")?;
    assert!(
        reply.envelope.message.contains("body is required"),
        "{}",
        reply.raw
    );

    let reply = server
        .post(routes::AUTH_SETUP, None, &json!({"username": "admin"}))
        .await?;
    reply.expect_error(400, "AUTH_SETUP_INVALID")?;
    assert!(
        reply.envelope.message.contains("missing field `password`"),
        "{}",
        reply.raw
    );

    let reply = server
        .post(
            routes::AUTH_SETUP,
            None,
            &json!({"username": "admin", "password": 1234567890}),
        )
        .await?;
    reply.expect_error(400, "AUTH_SETUP_INVALID")?;
    assert!(
        reply.envelope.message.starts_with("password: wrong type"),
        "{}",
        reply.raw
    );
    assert!(
        !reply.raw.contains("1234567890"),
        "the value sent is not echoed"
    );

    // serde alone would read an array into the struct by position.
    let reply = server
        .post(routes::AUTH_SETUP, None, &json!(["admin", "password"]))
        .await?;
    reply.expect_error(400, "AUTH_SETUP_INVALID")?;
    assert!(
        reply.envelope.message.contains("must be a JSON object"),
        "{}",
        reply.raw
    );

    let reply = server
        .post(
            routes::AUTH_SETUP,
            None,
            &json!({"username": "ab", "password": "long enough 1"}),
        )
        .await?;
    reply.expect_error(400, "AUTH_SETUP_INVALID")?;
    assert!(
        reply.envelope.message.starts_with("username:"),
        "{}",
        reply.raw
    );

    let reply = server
        .post(
            routes::AUTH_SETUP,
            None,
            &json!({"username": "admin", "password": "short"}),
        )
        .await?;
    reply.expect_error(400, "AUTH_SETUP_INVALID")?;
    assert!(
        !reply.raw.contains("short\""),
        "the password is not echoed: {}",
        reply.raw
    );

    let reply = server
        .post(routes::AUTH_LOGIN, None, &json!({"username": "admin"}))
        .await?;
    reply.expect_error(400, "AUTH_LOGIN_INVALID")?;

    let reply = raw(
        &server,
        Method::POST,
        routes::AUTH_LOGIN,
        Some("text/plain"),
        "{}",
    )
    .await?;
    reply.expect_error(415, "UNSUPPORTED_MEDIA_TYPE")?;

    // Nothing above created a user.
    let status: stowage_shared::api::SetupStatus = server
        .get(routes::AUTH_SETUP_STATUS, None)
        .await?
        .expect_ok()?;
    assert!(!status.initialized);
    Ok(())
}

#[tokio::test]
async fn oversized_bodies_are_refused_whether_declared_or_streamed() -> Result<()> {
    let server = Server::start().await?;
    let big = format!(
        "{{\"username\":\"admin\",\"password\":\"{}\"}}",
        "x".repeat(1_100_000)
    );

    let json = Some("application/json");
    let reply = raw(&server, Method::POST, routes::AUTH_LOGIN, json, big.clone()).await?;
    reply.expect_error(413, "PAYLOAD_TOO_LARGE")?;

    // Chunked: no Content-Length, so the Worker must stop reading at the limit itself.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let reply = raw(&server, Method::POST, routes::AUTH_LOGIN, json, body).await?;
    reply.expect_error(413, "PAYLOAD_TOO_LARGE")?;

    // Just under the limit is still parsed (and fails validation on its merits, not its size).
    let under = format!(
        "{{\"username\":\"admin\",\"password\":\"{}\"}}",
        "x".repeat(1_000_000)
    );
    let reply = raw(&server, Method::POST, routes::AUTH_LOGIN, json, under).await?;
    reply.expect_error(400, "AUTH_LOGIN_INVALID")?;
    Ok(())
}
