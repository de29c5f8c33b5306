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
