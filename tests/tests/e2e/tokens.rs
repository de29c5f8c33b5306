//! Tokens the server did not issue, or no longer honours, are refused with `AUTH_INVALID_TOKEN`.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use stowage_shared::api::{UserOutput, routes};
use stowage_tests::Server;

fn claims_of(token: &str) -> Result<Value> {
    let payload = token.split('.').nth(1).context("token has no payload")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}

fn sign(secret: &str, claims: &Value) -> Result<String> {
    Ok(encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

#[tokio::test]
async fn forged_tampered_and_stale_tokens_are_refused() -> Result<()> {
    let server = Server::start().await?;
    let token = server.admin("admin", "correct horse battery").await?;
    let secret = server
        .jwt_secret()
        .context("server has a secret")?
        .to_owned();
    let claims = claims_of(&token)?;
    let refused = |t: String| {
        let server = &server;
        async move {
            server
                .get(routes::AUTH_PROFILE, Some(&t))
                .await?
                .expect_error(401, "AUTH_INVALID_TOKEN")
        }
    };

    // The genuine token works, and so does its claims re-signed with the server's key: the forging
    // below changes one thing at a time from a token the server would accept.
    server
        .get(routes::AUTH_PROFILE, Some(&token))
        .await?
        .expect_ok::<UserOutput>()?;
    server
        .get(routes::AUTH_PROFILE, Some(&sign(&secret, &claims)?))
        .await?
        .expect_ok::<UserOutput>()?;

    // Payload changed, signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let mut other = claims.clone();
    other["sub"] = json!("2");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other)?),
        parts[2]
    );
    refused(tampered).await?;

    // alg=none, with and without a signature part.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    refused(format!("{none_header}.{}.", parts[1])).await?;
    refused(format!("{none_header}.{}", parts[1])).await?;

    // Another algorithm of the HMAC family with the right key is still not HS256.
    let hs512 = encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?;
    refused(hs512).await?;

    // Signed with a different key.
    refused(sign("some-other-secret-that-is-long-enough!!", &claims)?).await?;

    // Correctly signed but expired.
    let mut expired = claims.clone();
    expired["exp"] = json!(1_000_000_000);
    refused(sign(&secret, &expired)?).await?;

    // Correctly signed for a session that does not exist, or a session of another user.
    let mut ghost = claims.clone();
    ghost["sid"] = json!("00000000000000000000000000000000");
    refused(sign(&secret, &ghost)?).await?;
    let mut wrong_user = claims.clone();
    wrong_user["sub"] = json!("999");
    refused(sign(&secret, &wrong_user)?).await?;

    // Garbage and wrong schemes.
    refused("not-a-jwt".to_owned()).await?;
    let reply = server
        .http()
        .get(server.url(routes::AUTH_PROFILE))
        .header("Authorization", format!("Basic {token}"))
        .send()
        .await?;
    stowage_tests::Reply::read(reply)
        .await?
        .expect_error(401, "AUTH_INVALID_TOKEN")?;

    // None of this disturbed the real session.
    server
        .get(routes::AUTH_PROFILE, Some(&token))
        .await?
        .expect_ok::<UserOutput>()?;
    Ok(())
}
