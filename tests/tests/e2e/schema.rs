//! `schema.sql` is the readable whole schema; `migrations/` is what D1 runs. They must agree.

use anyhow::Result;
use stowage_tests::Server;

#[tokio::test]
async fn schema_sql_matches_the_migrations() -> Result<()> {
    let server = Server::start().await?;
    let migrated = normalised(&server.query(
        "SELECT type, name, sql FROM sqlite_master
         WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'd1_%' AND name NOT LIKE '_cf_%'
         ORDER BY type, name",
    )?);

    let fresh = Server::start_with(stowage_tests::ServerOptions {
        migrate: false,
        ..Default::default()
    })
    .await?;
    fresh.execute_file(&stowage_tests::repo_root().join("schema.sql"))?;
    let declared = normalised(&fresh.query(
        "SELECT type, name, sql FROM sqlite_master
         WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'd1_%' AND name NOT LIKE '_cf_%'
         ORDER BY type, name",
    )?);
    assert!(!migrated.is_empty());
    assert_eq!(migrated, declared, "schema.sql and migrations/ disagree");
    Ok(())
}

/// Whitespace-insensitive `type name sql` lines.
fn normalised(rows: &[serde_json::Value]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let sql = r["sql"].as_str().unwrap_or_default();
            format!(
                "{} {} {}",
                r["type"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default(),
                sql.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect()
}
