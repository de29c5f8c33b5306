//! The `restore_records` table.

use super::StoreError;
use super::{all, first, int, run, text};
use serde::Deserialize;
use stowage_shared::status::RestoreStatus;
use worker::D1Database;

#[derive(Debug, Clone, Deserialize)]
pub struct RestoreRow {
    pub id: i64,
    pub backup_record_id: i64,
    pub task_id: Option<i64>,
    pub task_name: String,
    pub node_id: i64,
    pub target_id: i64,
    pub target_path: String,
    /// Database restores: `[{from, into}]` (JSON).
    pub target_databases: String,
    pub status: RestoreStatus,
    pub files: i64,
    pub bytes: i64,
    pub progress: String,
    pub error: String,
    pub triggered_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
}

macro_rules! restore_select {
    ($tail:expr) => {
        concat!(
            "SELECT id, backup_record_id, task_id, task_name, node_id, target_id, target_path,
                    target_databases, status, files, bytes, progress, error, triggered_by, started_at, finished_at
             FROM restore_records ",
            $tail
        )
    };
}

/// What a new restore is.
#[derive(Debug)]
pub struct NewRestore<'a> {
    pub backup_record_id: i64,
    pub task_id: Option<i64>,
    pub task_name: &'a str,
    pub node_id: i64,
    pub target_id: i64,
    pub target_path: &'a str,
    /// JSON array of `{from, into}`.
    pub target_databases: &'a str,
    pub triggered_by: &'a str,
}

pub async fn start(db: &D1Database, r: &NewRestore<'_>, now: &str) -> Result<i64, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "INSERT INTO restore_records (backup_record_id, task_id, task_name, node_id, target_id,
                                      target_path, triggered_by, started_at, target_databases)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        &[
            int(r.backup_record_id),
            r.task_id.map_or(worker::wasm_bindgen::JsValue::NULL, int),
            text(r.task_name),
            int(r.node_id),
            int(r.target_id),
            text(r.target_path),
            text(r.triggered_by),
            text(now),
            text(r.target_databases),
        ],
    )
    .await?;
    row.map(|r| r.id)
        .ok_or_else(|| StoreError::new("start restore", "insert returned no id"))
}

pub async fn attach(db: &D1Database, id: i64, command_id: i64) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE restore_records SET command_id = ?2 WHERE id = ?1",
        &[int(id), int(command_id)],
    )
    .await
    .map(drop)
}

pub async fn get(db: &D1Database, id: i64) -> Result<Option<RestoreRow>, StoreError> {
    first(db, restore_select!("WHERE id = ?1"), &[int(id)]).await
}

/// Newest first, optionally of one backup record (`0` for all).
pub async fn list(
    db: &D1Database,
    backup_record_id: i64,
    limit: i64,
) -> Result<Vec<RestoreRow>, StoreError> {
    all(
        db,
        restore_select!("WHERE ?1 = 0 OR backup_record_id = ?1 ORDER BY id DESC LIMIT ?2"),
        &[int(backup_record_id), int(limit)],
    )
    .await
}

pub async fn by_command(db: &D1Database, command_id: i64) -> Result<Option<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "SELECT id FROM restore_records WHERE command_id = ?1",
        &[int(command_id)],
    )
    .await?;
    Ok(row.map(|r| r.id))
}

/// Ends a running restore.
pub async fn finish(
    db: &D1Database,
    id: i64,
    ok: bool,
    files: i64,
    bytes: i64,
    error: &str,
    now: &str,
) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE restore_records SET status = ?2, files = ?3, bytes = ?4, error = ?5, finished_at = ?6
         WHERE id = ?1 AND status = 'running'",
        &[
            int(id),
            text(if ok { RestoreStatus::Success } else { RestoreStatus::Failed }.as_str()),
            int(files),
            int(bytes),
            text(error),
            text(now),
        ],
    )
    .await
    .map(drop)
}

/// Fails running restores whose command ended without a usable report; returns how many.
pub async fn fail_lost(db: &D1Database, now: &str) -> Result<usize, StoreError> {
    run(
        db,
        "UPDATE restore_records
         SET status = 'failed', finished_at = ?1,
             error = (SELECT COALESCE(c.error_message, 'the agent command ended without a result')
                      FROM agent_commands c WHERE c.id = restore_records.command_id)
         WHERE status = 'running'
           AND command_id IN (SELECT id FROM agent_commands WHERE status IN ('expired', 'failed'))",
        &[text(now)],
    )
    .await
}
