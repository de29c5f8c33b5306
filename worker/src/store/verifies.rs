//! The `verify_records` table: checks of repositories and what they found.

use super::StoreError;
use super::{all, first, int, opt_text, run, text};
use serde::Deserialize;
use stowage_shared::status::RunStatus;
use worker::D1Database;
use worker::wasm_bindgen::JsValue;

#[derive(Debug, Clone, Deserialize)]
pub struct VerifyRow {
    pub id: i64,
    pub backup_record_id: Option<i64>,
    pub task_id: Option<i64>,
    pub task_name: String,
    pub target_id: i64,
    pub target_name: String,
    pub node_id: i64,
    pub status: RunStatus,
    pub read_data_percent: i64,
    pub snapshots: i64,
    pub errors: String,
    pub warnings: String,
    pub damaged_packs: String,
    pub affected_snapshots: String,
    pub affected_records: String,
    pub error: String,
    pub triggered_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
}

macro_rules! verify_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, backup_record_id, task_id, task_name, target_id, target_name, node_id,
                    status, read_data_percent, snapshots, errors, warnings, damaged_packs,
                    affected_snapshots, affected_records, error, triggered_by, started_at,
                    finished_at
             FROM verify_records ",
            $tail
        )
    };
}

/// A check about to be handed to a node.
#[derive(Debug)]
pub struct NewVerify<'a> {
    pub backup_record_id: Option<i64>,
    pub task_id: Option<i64>,
    pub task_name: &'a str,
    pub target_id: i64,
    pub target_name: &'a str,
    pub node_id: i64,
    pub read_data_percent: u8,
    pub triggered_by: &'a str,
}

pub async fn start(db: &D1Database, v: &NewVerify<'_>, now: &str) -> Result<i64, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "INSERT INTO verify_records (backup_record_id, task_id, task_name, target_id, target_name,
                                     node_id, read_data_percent, triggered_by, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        &[
            v.backup_record_id.map_or(JsValue::NULL, int),
            v.task_id.map_or(JsValue::NULL, int),
            text(v.task_name),
            int(v.target_id),
            text(v.target_name),
            int(v.node_id),
            int(i64::from(v.read_data_percent)),
            text(v.triggered_by),
            text(now),
        ],
    )
    .await?;
    row.map(|r| r.id)
        .ok_or_else(|| StoreError::new("insert verify record", "no id returned"))
}

pub async fn attach(db: &D1Database, id: i64, command_id: i64) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE verify_records SET command_id = ?2 WHERE id = ?1",
        &[int(id), int(command_id)],
    )
    .await
    .map(drop)
}

pub async fn get(db: &D1Database, id: i64) -> Result<Option<VerifyRow>, StoreError> {
    first(db, verify_select!("WHERE id = ?1"), &[int(id)]).await
}

pub async fn by_command(db: &D1Database, command_id: i64) -> Result<Option<VerifyRow>, StoreError> {
    first(
        db,
        verify_select!("WHERE command_id = ?1"),
        &[int(command_id)],
    )
    .await
}

/// Checks, newest first, filtered by task, record and status (0 / empty: any).
pub async fn list(
    db: &D1Database,
    task_id: i64,
    backup_record_id: i64,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<VerifyRow>, StoreError> {
    all(
        db,
        verify_select!(
            "WHERE (?1 = 0 OR task_id = ?1) AND (?2 = 0 OR backup_record_id = ?2)
               AND (?3 IS NULL OR status = ?3)
             ORDER BY id DESC LIMIT ?4"
        ),
        &[
            int(task_id),
            int(backup_record_id),
            opt_text(status),
            int(limit),
        ],
    )
    .await
}

/// What a finished check found (the lists as JSON).
#[derive(Debug)]
pub struct Found<'a> {
    pub status: RunStatus,
    pub snapshots: i64,
    pub errors: &'a str,
    pub warnings: &'a str,
    pub damaged_packs: &'a str,
    pub affected_snapshots: &'a str,
    pub affected_records: &'a str,
    pub error: &'a str,
}

/// Ends a running check. False when it had already ended.
pub async fn finish(
    db: &D1Database,
    id: i64,
    f: &Found<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    #[derive(Deserialize)]
    struct Ended {}
    let ended: Option<Ended> = first(
        db,
        "UPDATE verify_records
         SET status = ?2, snapshots = ?3, errors = ?4, warnings = ?5, damaged_packs = ?6,
             affected_snapshots = ?7, affected_records = ?8, error = ?9, finished_at = ?10
         WHERE id = ?1 AND status = 'running' RETURNING id",
        &[
            int(id),
            text(f.status.as_str()),
            int(f.snapshots),
            text(f.errors),
            text(f.warnings),
            text(f.damaged_packs),
            text(f.affected_snapshots),
            text(f.affected_records),
            text(f.error),
            text(now),
        ],
    )
    .await?;
    Ok(ended.is_some())
}

/// Fails the running checks whose command expired (the node stopped answering). Returns how many.
pub async fn fail_lost(db: &D1Database, now: &str) -> Result<usize, StoreError> {
    #[derive(Deserialize)]
    struct Ended {}
    let ended: Vec<Ended> = all(
        db,
        "UPDATE verify_records
         SET status = 'failed', finished_at = ?1,
             error = 'the node stopped answering before the check ended'
         WHERE status = 'running'
           AND command_id IN (SELECT id FROM agent_commands WHERE status = 'expired')
         RETURNING id",
        &[text(now)],
    )
    .await?;
    Ok(ended.len())
}

/// The records whose snapshot on `target_id` is one of `snapshot_ids`.
pub async fn records_of_snapshots(
    db: &D1Database,
    target_id: i64,
    snapshot_ids: &str,
) -> Result<Vec<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        record_id: i64,
    }
    let rows: Vec<Id> = all(
        db,
        "SELECT DISTINCT record_id FROM backup_record_targets
         WHERE target_id = ?1 AND snapshot_id IN (SELECT value FROM json_each(?2))
         ORDER BY record_id",
        &[int(target_id), text(snapshot_ids)],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.record_id).collect())
}
