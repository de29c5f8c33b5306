//! Small facts about the deployment itself: which migration D1 is at, when the cron tick last ran.

use super::StoreError;
use super::{first, run, text};
use serde::Deserialize;
use worker::D1Database;

const LAST_TICK_AT: &str = "cron.last_tick_at";

/// The newest migration wrangler recorded as applied, or `None` when D1 was never migrated.
pub async fn latest_migration(db: &D1Database) -> Result<Option<String>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
    }
    let row: Option<Row> = first(
        db,
        "SELECT name FROM d1_migrations ORDER BY id DESC LIMIT 1",
        &[],
    )
    .await?;
    Ok(row.map(|r| r.name))
}

pub async fn last_tick_at(db: &D1Database) -> Result<Option<String>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        value: String,
    }
    let row: Option<Row> = first(
        db,
        "SELECT value FROM system_state WHERE key = ?1",
        &[text(LAST_TICK_AT)],
    )
    .await?;
    Ok(row.map(|r| r.value))
}

pub async fn set_last_tick_at(db: &D1Database, now: &str) -> Result<(), StoreError> {
    run(
        db,
        "INSERT INTO system_state (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[text(LAST_TICK_AT), text(now)],
    )
    .await?;
    Ok(())
}

/// The tables whose rows `table_rows` counts, in its column order.
pub const COUNTED_TABLES: [&str; 12] = [
    "users",
    "nodes",
    "storage_targets",
    "backup_tasks",
    "backup_records",
    "restore_records",
    "run_logs",
    "agent_commands",
    "notification_channels",
    "notification_deliveries",
    "audit_logs",
    "sessions",
];

/// Row counts of the tables that grow, in the order of [`COUNTED_TABLES`]. One row of scalar
/// subqueries: D1 refuses a compound SELECT with this many terms.
pub async fn table_rows(db: &D1Database) -> Result<Vec<i64>, StoreError> {
    let row: Option<serde_json::Map<String, serde_json::Value>> = first(
        db,
        "SELECT (SELECT COUNT(*) FROM users) AS users,
                (SELECT COUNT(*) FROM nodes) AS nodes,
                (SELECT COUNT(*) FROM storage_targets) AS storage_targets,
                (SELECT COUNT(*) FROM backup_tasks) AS backup_tasks,
                (SELECT COUNT(*) FROM backup_records) AS backup_records,
                (SELECT COUNT(*) FROM restore_records) AS restore_records,
                (SELECT COUNT(*) FROM run_logs) AS run_logs,
                (SELECT COUNT(*) FROM agent_commands) AS agent_commands,
                (SELECT COUNT(*) FROM notification_channels) AS notification_channels,
                (SELECT COUNT(*) FROM notification_deliveries) AS notification_deliveries,
                (SELECT COUNT(*) FROM audit_logs) AS audit_logs,
                (SELECT COUNT(*) FROM sessions) AS sessions",
        &[],
    )
    .await?;
    let row = row.unwrap_or_default();
    Ok(COUNTED_TABLES
        .iter()
        .map(|t| row.get(*t).and_then(serde_json::Value::as_i64).unwrap_or(0))
        .collect())
}

/// The database's size in bytes, as D1 reports it with every result.
pub async fn database_bytes(db: &D1Database) -> Result<Option<u64>, StoreError> {
    let result = super::stmt(db, "SELECT 1", &[])?
        .all()
        .await
        .map_err(|e| StoreError::new("d1 size", e))?;
    super::counted(&result);
    Ok(result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.size_after)
        .and_then(|s| u64::try_from(s).ok()))
}
