//! The `storage_targets` table. The config travels in and out sealed; this module never sees it
//! in the clear.

use super::StoreError;
use super::{all, first, int, opt_text, run, text};
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
    /// The prune lease: when the prune under way started, and its command.
    pub prune_started_at: Option<String>,
    pub prune_command_id: Option<i64>,
    pub prune_due_at: Option<String>,
    pub pruned_at: Option<String>,
    pub prune_freed_bytes: i64,
    pub prune_error: String,
    pub check_due_at: Option<String>,
    /// When a recovery kit of the repository was last handed out.
    pub recovery_kit_at: Option<String>,
}

macro_rules! target_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, uid, name, type, description, enabled, starred, config_sealed, config_version,
                    quota_bytes, last_tested_at, last_test_status, last_test_message, created_at, updated_at,
                    repo_password_sealed, repo_ready_at, prune_started_at, prune_command_id,
                    prune_due_at, pruned_at, prune_freed_bytes, prune_error, check_due_at,
                    recovery_kit_at
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

/// Notes that a snapshot landed in the target's repository: the first time, the repository is
/// ready (any number of runs may write from now on), and its first prune and check are due.
pub async fn mark_repository_ready(
    db: &D1Database,
    id: i64,
    now: &str,
    prune_due: Option<&str>,
    check_due: Option<&str>,
) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET repo_ready_at = ?2, prune_due_at = ?3, check_due_at = ?4
         WHERE id = ?1 AND repo_ready_at IS NULL",
        &[int(id), text(now), opt_text(prune_due), opt_text(check_due)],
    )
    .await
    .map(drop)
}

/// Notes that a recovery kit of the target's repository was handed out.
pub async fn note_recovery_kit(db: &D1Database, id: i64, now: &str) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET recovery_kit_at = ?2 WHERE id = ?1",
        &[int(id), text(now)],
    )
    .await
    .map(drop)
}

/// Targets whose scheduled check is due: not while a prune holds the repository, nor while a
/// check of it is still going.
pub async fn due_checks(
    db: &D1Database,
    now: &str,
    stale_before: &str,
) -> Result<Vec<TargetRow>, StoreError> {
    all(
        db,
        target_select!(
            "WHERE repo_ready_at IS NOT NULL AND check_due_at IS NOT NULL AND check_due_at <= ?1
               AND (prune_started_at IS NULL OR prune_started_at < ?2)
               AND NOT EXISTS (SELECT 1 FROM verify_records v
                               WHERE v.target_id = storage_targets.id AND v.status = 'running')
             ORDER BY check_due_at LIMIT 5"
        ),
        &[text(now), text(stale_before)],
    )
    .await
}

/// Sets a target's next scheduled check.
pub async fn set_check_due(db: &D1Database, id: i64, due: Option<&str>) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET check_due_at = ?2 WHERE id = ?1",
        &[int(id), opt_text(due)],
    )
    .await
    .map(drop)
}

/// Moves every repository's next scheduled check to `due` (checks turned on, off or changed).
pub async fn reschedule_checks(db: &D1Database, due: Option<&str>) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET check_due_at = ?1 WHERE repo_ready_at IS NOT NULL",
        &[opt_text(due)],
    )
    .await
    .map(drop)
}

/// Whether the prune lease of target `id` is held (a prune started after `stale_before`).
pub fn pruning(row: &TargetRow, stale_before: &str) -> bool {
    row.prune_started_at
        .as_deref()
        .is_some_and(|started| started >= stale_before)
}

/// Takes the prune lease of target `id`: only when its repository exists, no prune holds the
/// lease (one older than `stale_before` is abandoned), and no repository run or restore that
/// reads or writes the target is going. One statement, so a run being handed out and a prune
/// being started can never both go ahead.
pub async fn claim_prune(
    db: &D1Database,
    id: i64,
    now: &str,
    stale_before: &str,
) -> Result<bool, StoreError> {
    #[derive(Deserialize)]
    struct Claimed {}
    let row: Option<Claimed> = first(
        db,
        "UPDATE storage_targets SET prune_started_at = ?2, prune_command_id = NULL
         WHERE id = ?1 AND repo_ready_at IS NOT NULL
           AND (prune_started_at IS NULL OR prune_started_at < ?3)
           AND NOT EXISTS (
             SELECT 1 FROM backup_records r
             WHERE r.status = 'running' AND json_extract(r.source, '$.format') = 'repository'
               AND (r.task_id IN (SELECT task_id FROM backup_task_targets WHERE target_id = ?1)
                    OR r.id IN (SELECT record_id FROM backup_record_targets WHERE target_id = ?1)))
           AND NOT EXISTS (
             SELECT 1 FROM restore_records WHERE status = 'running' AND target_id = ?1)
           AND NOT EXISTS (
             SELECT 1 FROM verify_records WHERE status = 'running' AND target_id = ?1)
         RETURNING id",
        &[int(id), text(now), text(stale_before)],
    )
    .await?;
    Ok(row.is_some())
}

pub async fn attach_prune(db: &D1Database, id: i64, command_id: i64) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET prune_command_id = ?2 WHERE id = ?1",
        &[int(id), int(command_id)],
    )
    .await
    .map(drop)
}

/// Gives the prune lease back without a prune (it could not be handed to a node).
pub async fn release_prune(db: &D1Database, id: i64, retry_at: &str) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET prune_started_at = NULL, prune_command_id = NULL,
                prune_due_at = ?2
         WHERE id = ?1",
        &[int(id), text(retry_at)],
    )
    .await
    .map(drop)
}

/// Moves a target's next prune to `retry_at` (it could not start now).
pub async fn postpone_prune(db: &D1Database, id: i64, retry_at: &str) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET prune_due_at = ?2 WHERE id = ?1",
        &[int(id), text(retry_at)],
    )
    .await
    .map(drop)
}

/// Ends the prunes whose command expired without an outcome. Returns how many.
pub async fn fail_lost_prunes(
    db: &D1Database,
    now: &str,
    retry_at: &str,
) -> Result<usize, StoreError> {
    #[derive(Deserialize)]
    struct Ended {}
    let ended: Vec<Ended> = all(
        db,
        "UPDATE storage_targets
         SET prune_started_at = NULL, prune_command_id = NULL, prune_due_at = ?2,
             prune_error = 'the node stopped answering before the prune ended (at ' || ?1 || ')'
         WHERE prune_command_id IN (SELECT id FROM agent_commands WHERE status = 'expired')
         RETURNING id",
        &[text(now), text(retry_at)],
    )
    .await?;
    Ok(ended.len())
}

/// How a prune ended.
#[derive(Debug)]
pub struct PruneEnd<'a> {
    /// Bytes freed, or why it failed.
    pub outcome: Result<i64, &'a str>,
    pub now: &'a str,
    pub next_due: Option<&'a str>,
}

/// Ends the prune of command `command_id` and gives the lease back.
pub async fn finish_prune(
    db: &D1Database,
    command_id: i64,
    end: &PruneEnd<'_>,
) -> Result<(), StoreError> {
    let (freed, error) = match end.outcome {
        Ok(freed) => (Some(freed), ""),
        Err(why) => (None, why),
    };
    run(
        db,
        "UPDATE storage_targets
         SET prune_started_at = NULL, prune_command_id = NULL, prune_due_at = ?2,
             pruned_at = CASE WHEN ?3 IS NULL THEN pruned_at ELSE ?4 END,
             prune_freed_bytes = COALESCE(?3, prune_freed_bytes), prune_error = ?5
         WHERE prune_command_id = ?1",
        &[
            int(command_id),
            opt_text(end.next_due),
            freed.map_or(worker::wasm_bindgen::JsValue::NULL, int),
            text(end.now),
            text(error),
        ],
    )
    .await
    .map(drop)
}

/// Targets whose repository prune is due and not under way.
pub async fn due_prunes(
    db: &D1Database,
    now: &str,
    stale_before: &str,
) -> Result<Vec<TargetRow>, StoreError> {
    all(
        db,
        target_select!(
            "WHERE repo_ready_at IS NOT NULL AND prune_due_at IS NOT NULL AND prune_due_at <= ?1
               AND (prune_started_at IS NULL OR prune_started_at < ?2)
             ORDER BY prune_due_at LIMIT 5"
        ),
        &[text(now), text(stale_before)],
    )
    .await
}

/// Moves every repository's next scheduled prune to `due` (prunes turned on or off).
pub async fn reschedule_prunes(db: &D1Database, due: Option<&str>) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE storage_targets SET prune_due_at = ?1 WHERE repo_ready_at IS NOT NULL",
        &[opt_text(due)],
    )
    .await
    .map(drop)
}
