//! The cron handler, triggered the way Cloudflare would.

use anyhow::{Result, ensure};
use stowage_shared::api::{Readiness, routes};
use stowage_tests::Server;

#[tokio::test]
async fn cron_tick_records_itself_and_purges_dead_sessions() -> Result<()> {
    let server = Server::start().await?;
    server.admin("admin", "first password 1").await?;
    // One session that expired long ago and one that is live.
    server.query(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, client_ip, user_agent)
         VALUES ('expired-session', 1, '2020-01-01T00:00:00.000Z', '2020-01-02T00:00:00.000Z', 'x', 'x')",
    )?;
    let before = server.query("SELECT id FROM sessions")?;
    ensure!(
        before.len() == 2,
        "setup session plus the expired one: {before:?}"
    );

    server.trigger_cron().await?;

    let ready: Readiness = server.get(routes::HEALTH_READY, None).await?.expect_ok()?;
    assert!(ready.last_tick_at.is_some(), "the tick stamps its run");
    let after = server.query("SELECT id FROM sessions")?;
    assert_eq!(after.len(), 1, "only the live session is left: {after:?}");
    assert_ne!(after[0]["id"], "expired-session");
    Ok(())
}
