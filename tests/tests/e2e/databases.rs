//! Database discovery through a real agent against the machine's real MariaDB and PostgreSQL:
//! the test makes its own database (and a MariaDB user with an awkward password), lists it,
//! and checks that a wrong password is a clear 400 and that the password is stored nowhere.

use crate::storage::d1_bytes;
use anyhow::{Result, ensure};
use serde_json::json;
use stowage_shared::api::routes;
use stowage_shared::databases::DiscoverOutput;
use stowage_tests::Fleet;

/// Runs SQL as the local superuser; fails naming what is missing when the server is not there.
fn admin_sql(engine: &str, statement: &str) -> Result<()> {
    crate::database_backups::sql(engine, None, statement).map(drop)
}

#[tokio::test]
async fn discovery_lists_what_a_connection_sees_on_real_servers() -> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent,
    } = Fleet::start("db-host").await?;

    let tag = std::process::id();
    let db = format!("stowage_disc_{tag}");
    let user = format!("stowage_disc_{tag}");
    let password = r#"p"a:ss\w0rd with spaces"#;
    let sql_password = password.replace('\\', "\\\\").replace('"', "\\\"");
    admin_sql("mysql", &format!("CREATE DATABASE {db}"))?;
    admin_sql(
        "mysql",
        &format!(
            "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY \"{sql_password}\"; \
             GRANT ALL ON {db}.* TO '{user}'@'127.0.0.1'"
        ),
    )?;
    admin_sql("postgresql", &format!("CREATE DATABASE {db}"))?;

    let discover = |body: serde_json::Value| {
        let server = &server;
        let admin = admin.clone();
        async move {
            server
                .post(routes::DATABASE_DISCOVER, Some(&admin), &body)
                .await
        }
    };
    let outcome = async {
        let found: DiscoverOutput = discover(json!({
            "type": "mysql", "host": "127.0.0.1", "user": user, "password": password,
            "nodeId": node.node.id}))
        .await?
        .expect_ok()?;
        ensure!(found.node_id == node.node.id);
        ensure!(found.databases == [db.clone()], "{found:?}");

        let refused = discover(json!({
            "type": "mysql", "host": "127.0.0.1", "user": user, "password": "not it",
            "nodeId": node.node.id}))
        .await?;
        refused.expect_error(400, "DATABASE_CONNECT_FAILED")?;
        ensure!(refused.raw.contains("Access denied"), "{}", refused.raw);

        let pg: DiscoverOutput = discover(json!({
            "type": "postgresql", "host": "127.0.0.1", "user": "postgres", "nodeId": node.node.id}))
        .await?
        .expect_ok()?;
        ensure!(pg.databases.contains(&db), "{pg:?}");
        ensure!(
            !pg.databases.iter().any(|d| d.starts_with("template")),
            "{pg:?}"
        );

        let closed = discover(json!({
            "type": "postgresql", "host": "127.0.0.1", "port": 1, "user": "postgres",
            "nodeId": node.node.id}))
        .await?;
        closed.expect_error(400, "DATABASE_CONNECT_FAILED")?;

        for (body, code) in [
            (
                json!({"type": "mysql", "user": ""}),
                "DATABASE_CONNECTION_INVALID",
            ),
            (
                json!({"type": "mysql", "user": "u", "host": "--host=x"}),
                "DATABASE_CONNECTION_INVALID",
            ),
            (
                json!({"type": "oracle", "user": "u"}),
                "DATABASE_CONNECTION_INVALID",
            ),
        ] {
            discover(body).await?.expect_error(400, code)?;
        }
        discover(json!({"type": "mysql", "user": "u", "nodeId": 999}))
            .await?
            .expect_error(404, "NODE_NOT_FOUND")?;
        // The password goes only to a node the caller names.
        discover(json!({"type": "mysql", "host": "127.0.0.1", "user": user, "password": password}))
            .await?
            .expect_error(400, "NODE_REQUIRED")?;

        // The password went to the client in a file: it is nowhere in D1 or the agent's log.
        ensure!(
            !d1_bytes(&server)?.contains(password),
            "the password is in D1"
        );
        ensure!(
            !agent.log().contains(password),
            "the password is in the agent's log"
        );
        anyhow::Ok(())
    }
    .await;
    let _ = admin_sql(
        "mysql",
        &format!("DROP USER '{user}'@'127.0.0.1'; DROP DATABASE {db}"),
    );
    let _ = admin_sql("postgresql", &format!("DROP DATABASE {db}"));
    outcome
}
