//! Small facts about the deployment itself: which migration D1 is at, when the cron tick last ran.

use super::{first, run, text};
use crate::error::ApiError;
use serde::Deserialize;
use worker::D1Database;

const LAST_TICK_AT: &str = "cron.last_tick_at";

/// The newest migration wrangler recorded as applied, or `None` when D1 was never migrated.
pub async fn latest_migration(db: &D1Database) -> Result<Option<String>, ApiError> {
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

pub async fn last_tick_at(db: &D1Database) -> Result<Option<String>, ApiError> {
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

pub async fn set_last_tick_at(db: &D1Database, now: &str) -> Result<(), ApiError> {
    run(
        db,
        "INSERT INTO system_state (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[text(LAST_TICK_AT), text(now)],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct TableCount {
    pub name: String,
    pub n: i64,
}

/// Row counts of the tables that grow.
pub async fn table_rows(db: &D1Database) -> Result<Vec<TableCount>, ApiError> {
    super::all(
        db,
        "SELECT 'users' AS name, COUNT(*) AS n FROM users
         UNION ALL SELECT 'nodes', COUNT(*) FROM nodes
         UNION ALL SELECT 'storage_targets', COUNT(*) FROM storage_targets
         UNION ALL SELECT 'backup_tasks', COUNT(*) FROM backup_tasks
         UNION ALL SELECT 'backup_records', COUNT(*) FROM backup_records
         UNION ALL SELECT 'restore_records', COUNT(*) FROM restore_records
         UNION ALL SELECT 'run_logs', COUNT(*) FROM run_logs
         UNION ALL SELECT 'agent_commands', COUNT(*) FROM agent_commands
         UNION ALL SELECT 'notification_channels', COUNT(*) FROM notification_channels
         UNION ALL SELECT 'notification_deliveries', COUNT(*) FROM notification_deliveries
         UNION ALL SELECT 'audit_logs', COUNT(*) FROM audit_logs
         UNION ALL SELECT 'sessions', COUNT(*) FROM sessions",
        &[],
    )
    .await
}

/// The database's size in bytes, as D1 reports it with every result.
pub async fn database_bytes(db: &D1Database) -> Result<Option<u64>, ApiError> {
    let result = super::stmt(db, "SELECT 1", &[])?
        .all()
        .await
        .map_err(|e| ApiError::internal("d1 size", e))?;
    Ok(result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.size_after)
        .and_then(|s| u64::try_from(s).ok()))
}
