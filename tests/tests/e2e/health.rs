//! Liveness, readiness and failing closed when misconfigured.

use anyhow::Result;
use stowage_shared::api::{Health, Readiness, routes};
use stowage_tests::{Server, ServerOptions};

#[tokio::test]
async fn health_is_public_and_reports_the_version() -> Result<()> {
    let server = Server::start().await?;
    let reply = server.get(routes::HEALTH, None).await?;
    let health: Health = reply.expect_ok()?;
    assert_eq!(health.status, "ok");
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(
        reply
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
    Ok(())
}

#[tokio::test]
async fn ready_reports_the_applied_migration() -> Result<()> {
    let server = Server::start().await?;
    let ready: Readiness = server.get(routes::HEALTH_READY, None).await?.expect_ok()?;
    assert!(ready.ready);
    let newest = std::fs::read_dir(stowage_tests::repo_root().join("migrations"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .max()
        .unwrap_or_default();
    assert_eq!(ready.schema_migration, newest);
    assert_eq!(ready.last_tick_at, None, "no tick has run yet");
    Ok(())
}

#[tokio::test]
async fn unmigrated_database_is_not_ready_and_never_a_500() -> Result<()> {
    let server = Server::start_with(ServerOptions {
        migrate: false,
        ..ServerOptions::default()
    })
    .await?;
    server
        .get(routes::HEALTH, None)
        .await?
        .expect_ok::<Health>()?;
    server
        .get(routes::HEALTH_READY, None)
        .await?
        .expect_error(503, "NOT_READY")?;
    Ok(())
}

#[tokio::test]
async fn missing_jwt_secret_fails_closed_without_saying_more_than_needed() -> Result<()> {
    let server = Server::start_with(ServerOptions {
        jwt_secret: false,
        ..ServerOptions::default()
    })
    .await?;
    server
        .get(routes::HEALTH, None)
        .await?
        .expect_ok::<Health>()?;
    let reply = server.login("admin", "whatever password").await?;
    reply.expect_error(500, "SERVER_MISCONFIGURED")?;
    assert!(
        !reply.raw.contains("JWT_SECRET"),
        "the response names no setting: {}",
        reply.raw
    );
    // The operator's log says what is missing.
    server
        .wait_for_log("JWT_SECRET is not set", std::time::Duration::from_secs(10))
        .await?;
    Ok(())
}
