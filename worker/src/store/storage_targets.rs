//! The `storage_targets` table. The config travels in and out sealed; this module never sees it
//! in the clear.

use super::StoreError;
use super::{all, first, int, run, text};
use serde::Deserialize;
use stowage_shared::status::TestStatus;
use stowage_shared::storage::StorageType;
use worker::D1Database;

#[derive(Debug, Clone, Deserialize)]
pub struct TargetRow {
    pub id: i64,
    pub uid: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: StorageType,
    pub description: String,
    pub enabled: i64,
    pub starred: i64,
    pub config_sealed: String,
    pub config_version: i64,
    pub quota_bytes: i64,
    pub last_tested_at: Option<String>,
    pub last_test_status: TestStatus,
    pub last_test_message: String,
    pub created_at: String,
    pub updated_at: String,
    /// The restic repository's password, sealed; none until the target's first repository run.
    pub repo_password_sealed: Option<String>,
    /// When a run first stored a snapshot in the target's repository.
    pub repo_ready_at: Option<String>,
}

macro_rules! target_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, uid, name, type, description, enabled, starred, config_sealed, config_version,
                    quota_bytes, last_tested_at, last_test_status, last_test_message, created_at, updated_at,
                    repo_password_sealed, repo_ready_at
             FROM storage_targets ",
            $tail
        )
    };
}

pub async fn list(db: &D1Database) -> Result<Vec<TargetRow>, StoreError> {
    all(
        db,
        target_select!("ORDER BY starred DESC, updated_at DESC, id DESC"),
        &[],
    )
    .await
}

pub async fn get(db: &D1Database, id: i64) -> Result<Option<TargetRow>, StoreError> {
    first(db, target_select!("WHERE id = ?1"), &[int(id)]).await
}

/// The fields a create or update writes.
#[derive(Debug)]
pub struct Fields<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub enabled: bool,
    pub config_sealed: &'a str,
    pub quota_bytes: i64,
}

/// Inserts a target; `None` when the name is taken.
pub async fn create(
    db: &D1Database,
    uid: &str,
    kind: &str,
    f: &Fields<'_>,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "INSERT INTO storage_targets (uid, name, type, description, enabled, config_sealed, quota_bytes, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT DO NOTHING RETURNING id",
        &[
            text(uid),
            text(f.name),
            text(kind),
            text(f.description),
            int(i64::from(f.enabled)),
            text(f.config_sealed),
            int(f.quota_bytes),
            text(now),
        ],
    )
    .await?;
    Ok(row.map(|r| r.id))
}

pub async fn name_taken(db: &D1Database, name: &str, except: i64) -> Result<bool, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        taken: i64,
    }
    let row: Option<Row> = first(
        db,
        "SELECT EXISTS (SELECT 1 FROM storage_targets WHERE name = ?1 AND id <> ?2) AS taken",
        &[text(name), int(except)],
    )
    .await?;
    Ok(row.is_some_and(|r| r.taken != 0))
}

/// Updates a target; the config version grows when the config changed. False when the row is
/// gone or the name was taken meanwhile.
pub async fn update(
    db: &D1Database,
    id: i64,
    f: &Fields<'_>,
    config_changed: bool,
    now: &str,
) -> Result<bool, StoreError> {
    let changed = run(
        db,
        "UPDATE OR IGNORE storage_targets
         SET name = ?2, description = ?3, enabled = ?4, config_sealed = ?5, quota_bytes = ?6,
             config_version = config_version + ?7, updated_at = ?8
         WHERE id = ?1",
        &[
            int(id),
            text(f.name),
            text(f.description),
            int(i64::from(f.enabled)),
            text(f.config_sealed),
            int(f.quota_bytes),
            int(i64::from(config_changed)),
            text(now),
        ],
    )
    .await?;
    Ok(changed > 0)
}

pub async fn toggle_star(db: &D1Database, id: i64, now: &str) -> Result<bool, StoreError> {
    let changed = run(
        db,
        "UPDATE storage_targets SET starred = 1 - starred, updated_at = ?2 WHERE id = ?1",
        &[int(id), text(now)],
    )
    .await?;
    Ok(changed > 0)
}

/// Deletes a target that no task writes to; false when it is gone or still in use.
pub async fn delete_unused(db: &D1Database, id: i64) -> Result<bool, StoreError> {
    Ok(run(
        db,
        "DELETE FROM storage_targets
         WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM backup_task_targets WHERE target_id = ?1)",
        &[int(id)],
    )
    .await?
        > 0)
}

/// Records the outcome of a connection test.
pub async fn record_test(
    db: &D1Database,
    id: i64,
    success: bool,
    message: &str,
    now: &str,
) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET last_tested_at = ?2, last_test_status = ?3, last_test_message = ?4
         WHERE id = ?1",
        &[
            int(id),
            text(now),
            text(if success { TestStatus::Success } else { TestStatus::Failed }.as_str()),
            text(&message.chars().take(512).collect::<String>()),
        ],
    )
    .await?;
    Ok(())
}

/// A target's last measured usage: the measuring node, the usage as JSON, and when.
#[derive(Debug, Deserialize)]
pub struct UsageRow {
    pub node_id: i64,
    pub usage: String,
    pub measured_at: String,
}

pub async fn last_usage(db: &D1Database, id: i64) -> Result<Option<UsageRow>, StoreError> {
    first(
        db,
        "SELECT node_id, usage, measured_at FROM storage_usage WHERE target_id = ?1",
        &[int(id)],
    )
    .await
}

pub async fn keep_usage(
    db: &D1Database,
    id: i64,
    node_id: i64,
    usage: &str,
    now: &str,
) -> Result<(), StoreError> {
    run(
        db,
        "INSERT INTO storage_usage (target_id, node_id, usage, measured_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (target_id) DO UPDATE SET node_id = excluded.node_id, usage = excluded.usage,
             measured_at = excluded.measured_at",
        &[int(id), int(node_id), text(usage), text(now)],
    )
    .await
    .map(drop)
}

/// Stores the target's repository password unless it has one already (two first runs at once
/// agree on the one stored first); the caller reads the row again for the one that counts.
pub async fn set_repo_password_once(
    db: &D1Database,
    id: i64,
    sealed: &str,
) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET repo_password_sealed = ?2
         WHERE id = ?1 AND repo_password_sealed IS NULL",
        &[int(id), text(sealed)],
    )
    .await
    .map(drop)
}

/// Notes that the target's repository exists (a snapshot landed in it), once.
pub async fn mark_repository_ready(db: &D1Database, id: i64, now: &str) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET repo_ready_at = ?2 WHERE id = ?1 AND repo_ready_at IS NULL",
        &[int(id), text(now)],
    )
    .await
    .map(drop)
}
