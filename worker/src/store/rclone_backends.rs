//! The `rclone_backends` table: each rclone version's backend list, as JSON text.

use super::StoreError;
use super::{first, run, text};
use serde::Deserialize;
use worker::D1Database;

pub async fn get(db: &D1Database, version: &str) -> Result<Option<String>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        backends: String,
    }
    let row: Option<Row> = first(
        db,
        "SELECT backends FROM rclone_backends WHERE version = ?1",
        &[text(version)],
    )
    .await?;
    Ok(row.map(|r| r.backends))
}

pub async fn put(
    db: &D1Database,
    version: &str,
    backends: &str,
    now: &str,
) -> Result<(), StoreError> {
    run(
        db,
        "INSERT INTO rclone_backends (version, backends, fetched_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (version) DO UPDATE SET backends = excluded.backends, fetched_at = excluded.fetched_at",
        &[text(version), text(backends), text(now)],
    )
    .await
    .map(drop)
}
