//! The Google Drive connect flow through the real Worker, against a local stand-in of Google's
//! OAuth token endpoint (Google itself cannot be reached from here): the consent URL, the one-time
//! state, the code exchange, the refresh token sealed on the target, reconnecting, expiry.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use stowage_shared::api::{GoogleDriveAuthUrl, StorageTargetDetail, routes};
use stowage_shared::storage::MASK;
use stowage_tests::{OauthStandIn, Server, ServerOptions};

const CLIENT_ID: &str = "1234-stowage.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "GOCSPX-client-secret-never-shown";

fn query(url: &str) -> Result<std::collections::HashMap<String, String>> {
    let parsed = reqwest::Url::parse(url)?;
    Ok(parsed.query_pairs().into_owned().collect())
}

#[tokio::test]
async fn google_drive_connects_through_oauth_and_keeps_the_refresh_token_sealed() -> Result<()> {
    let google = OauthStandIn::start()?;
    let server = Server::start_with(
        ServerOptions::default()
            .var("GOOGLE_OAUTH_AUTH_URL", google.url("/auth"))
            .var("GOOGLE_OAUTH_TOKEN_URL", google.url("/token")),
    )
    .await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let mut replies = Vec::new();
    let start = |body: Value| {
        let server = &server;
        let admin = admin.clone();
        async move {
            server
                .post(routes::GOOGLE_DRIVE_AUTH_URL, Some(&admin), &body)
                .await
        }
    };

    // Bad requests name what is missing.
    start(json!({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}))
        .await?
        .expect_error(400, "STORAGE_GOOGLE_OAUTH_INVALID")?;
    let no_secret = start(json!({"name": "drive", "clientId": CLIENT_ID})).await?;
    no_secret.expect_error(400, "STORAGE_GOOGLE_OAUTH_INVALID")?;
    assert!(
        no_secret.envelope.message.contains("clientSecret"),
        "{}",
        no_secret.raw
    );
    start(json!({"name": "drive", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "scope": "x"}))
        .await?
        .expect_error(400, "STORAGE_GOOGLE_OAUTH_INVALID")?;

    // The consent URL goes to the configured endpoint with everything Google needs.
    let body = json!({"name": "drive", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                      "folderId": "folder-123"});
    let reply = start(body.clone()).await?;
    let auth: GoogleDriveAuthUrl = reply.expect_ok()?;
    replies.push(reply);
    assert!(
        auth.auth_url.starts_with(&google.url("/auth?")),
        "{}",
        auth.auth_url
    );
    let q = query(&auth.auth_url)?;
    let expected_redirect = format!("{}/storage-targets/google-drive/callback", server.base_url);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], expected_redirect);
    assert_eq!(auth.redirect_uri, expected_redirect);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "https://www.googleapis.com/auth/drive");
    assert_eq!(
        (q["access_type"].as_str(), q["prompt"].as_str()),
        ("offline", "consent")
    );
    let state = q["state"].clone();
    assert_eq!(state.len(), 64, "256 bits of state");
    assert!(!auth.auth_url.contains(CLIENT_SECRET));
    // Only the state's hash is stored.
    let stored = server.query("SELECT state_hash, draft_sealed FROM oauth_sessions")?;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].to_string().contains(&state));

    let complete = |state: String, code: &str| {
        let server = &server;
        let admin = admin.clone();
        let body = json!({"state": state, "code": code});
        async move {
            server
                .post(routes::GOOGLE_DRIVE_COMPLETE, Some(&admin), &body)
                .await
        }
    };
    complete("0".repeat(64), "good-code")
        .await?
        .expect_error(400, "STORAGE_GOOGLE_OAUTH_STATE_INVALID")?;
    complete(state.clone(), "")
        .await?
        .expect_error(400, "STORAGE_GOOGLE_OAUTH_INVALID")?;

    // Google refuses the code: its reason is given, and the state is spent.
    let refused = complete(state.clone(), "expired-code").await?;
    refused.expect_error(400, "STORAGE_GOOGLE_OAUTH_EXCHANGE_FAILED")?;
    assert!(
        refused.envelope.message.contains("invalid_grant"),
        "{}",
        refused.raw
    );
    replies.push(refused);
    complete(state.clone(), "good-code")
        .await?
        .expect_error(400, "STORAGE_GOOGLE_OAUTH_STATE_INVALID")?;

    // No refresh token in Google's answer: nothing is created.
    let q = query(
        &start(body.clone())
            .await?
            .expect_ok::<GoogleDriveAuthUrl>()?
            .auth_url,
    )?;
    complete(q["state"].clone(), "no-refresh")
        .await?
        .expect_error(400, "STORAGE_GOOGLE_OAUTH_REFRESH_TOKEN_MISSING")?;

    // The happy path creates the target with the refresh token sealed and masked.
    let q = query(
        &start(body.clone())
            .await?
            .expect_ok::<GoogleDriveAuthUrl>()?
            .auth_url,
    )?;
    let created = complete(q["state"].clone(), "good-first").await?;
    assert_eq!(created.status, 201, "{}", created.raw);
    let target: StorageTargetDetail = created.expect_ok()?;
    replies.push(created);
    assert_eq!(target.summary.kind, "google_drive");
    assert_eq!(target.summary.name, "drive");
    assert_eq!(target.config["clientId"], CLIENT_ID);
    assert_eq!(target.config["folderId"], "folder-123");
    assert_eq!(target.config["clientSecret"], MASK);
    assert_eq!(target.config["refreshToken"], MASK);
    assert!(target.masked_fields.contains(&"refreshToken".to_owned()));
    let exchange = google
        .requests()?
        .into_iter()
        .find(|r| r["form"]["code"] == "good-first")
        .context("the exchange reached the stand-in")?;
    assert_eq!(exchange["contentType"], "application/x-www-form-urlencoded");
    assert_eq!(exchange["form"]["grant_type"], "authorization_code");
    assert_eq!(exchange["form"]["client_id"], CLIENT_ID);
    assert_eq!(exchange["form"]["client_secret"], CLIENT_SECRET);
    assert_eq!(exchange["form"]["redirect_uri"], expected_redirect);

    // A second connection with the same name is refused before Google is asked.
    start(body.clone())
        .await?
        .expect_error(409, "STORAGE_TARGET_NAME_EXISTS")?;

    // Reconnecting an existing target: masked credentials keep the stored ones.
    let id = target.summary.id;
    let again = start(json!({"targetId": id, "clientId": "", "clientSecret": MASK})).await?;
    let q = query(&again.expect_ok::<GoogleDriveAuthUrl>()?.auth_url)?;
    assert_eq!(q["client_id"], CLIENT_ID);
    let reconnected = complete(q["state"].clone(), "good-second").await?;
    let after: StorageTargetDetail = reconnected.expect_ok()?;
    assert_eq!(
        (after.summary.id, after.config["folderId"].as_str()),
        (id, Some("folder-123"))
    );
    assert_eq!(
        after.summary.config_version,
        target.summary.config_version + 1
    );
    let second = google
        .requests()?
        .into_iter()
        .find(|r| r["form"]["code"] == "good-second")
        .context("the second exchange")?;
    assert_eq!(second["form"]["client_secret"], CLIENT_SECRET);

    // Only Google Drive targets can be reconnected.
    let s3: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(&admin),
            &json!({"name": "s3", "type": "s3", "config": {"endpoint": "http://127.0.0.1:9", "bucket": "b",
                   "accessKeyId": "a", "secretAccessKey": "s"}}),
        )
        .await?
        .expect_ok()?;
    start(json!({"targetId": s3.summary.id}))
        .await?
        .expect_error(400, "STORAGE_GOOGLE_DRIVE_TYPE_MISMATCH")?;

    // A state older than ten minutes is refused, and the tick deletes expired sessions.
    let q = query(
        &start(json!({"name": "late", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}))
            .await?
            .expect_ok::<GoogleDriveAuthUrl>()?
            .auth_url,
    )?;
    server.query(
        "UPDATE oauth_sessions SET expires_at = '2000-01-01T00:00:00Z' WHERE used_at IS NULL",
    )?;
    complete(q["state"].clone(), "good-late")
        .await?
        .expect_error(400, "STORAGE_GOOGLE_OAUTH_STATE_INVALID")?;
    server.trigger_cron().await?;
    let left = server
        .query("SELECT count(*) AS n FROM oauth_sessions WHERE expires_at <= '2001-01-01'")?;
    assert_eq!(left[0]["n"], 0, "expired sessions are purged");

    // No secret in any answer, none in D1 in the clear.
    for reply in &replies {
        for secret in [CLIENT_SECRET, "rt-good-first", "at-good-first"] {
            assert!(
                !reply.raw.contains(secret),
                "a response leaks {secret}: {}",
                reply.raw
            );
        }
    }
    let audit =
        server.query("SELECT action FROM audit_logs WHERE action LIKE 'storage_target.%'")?;
    let actions: Vec<&str> = audit.iter().filter_map(|r| r["action"].as_str()).collect();
    assert!(
        actions.contains(&"storage_target.create") && actions.contains(&"storage_target.update")
    );
    let d1 = super::storage::d1_bytes(&server)?;
    for secret in [CLIENT_SECRET, "rt-good-first", "rt-good-second", &state] {
        assert!(
            !d1.contains(secret),
            "the local D1 holds {secret} in the clear"
        );
    }
    Ok(())
}
