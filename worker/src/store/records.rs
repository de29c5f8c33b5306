//! The `backup_records` and `backup_record_targets` tables.

use super::StoreError;
use super::{all, batch, first, int, run, stmt, text};
use serde::Deserialize;
use stowage_shared::status::{RunStatus, TargetStatus, Trigger};
use worker::D1Database;

#[derive(Debug, Clone, Deserialize)]
pub struct RecordRow {
    pub id: i64,
    pub task_id: Option<i64>,
    pub task_name: String,
    /// The task's type at the time of the run.
    pub kind: String,
    /// What the run read (the task's spec then, without its retention), as JSON.
    pub source: String,
    /// Database dumps: the artifact's sections (JSON).
    pub sections: String,
    pub node_id: i64,
    pub trigger: Trigger,
    pub fire_at: Option<String>,
    pub coalesced: i64,
    pub status: RunStatus,
    pub bytes: i64,
    pub files: i64,
    pub source_bytes: i64,
    pub checksum: String,
    pub error: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub progress: String,
    pub removal: String,
    pub removed_at: Option<String>,
    /// A repository run's file changes (JSON; empty for archives).
    pub changes: String,
}

macro_rules! record_select {
    ($tail:expr) => {
        concat!(
            "SELECT id, task_id, task_name, kind, source, sections, node_id, trigger, fire_at, coalesced, status, bytes, files,
                    source_bytes, checksum, error, started_at, finished_at, progress, removal,
                    removed_at, changes
             FROM backup_records ",
            $tail
        )
    };
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecordTargetRow {
    pub record_id: i64,
    pub target_id: i64,
    pub target_name: String,
    pub path: String,
    pub status: TargetStatus,
    pub bytes: i64,
    pub error: String,
    /// The snapshot in the target's repository (empty for archives).
    pub snapshot_id: String,
}

pub async fn get(db: &D1Database, id: i64) -> Result<Option<RecordRow>, StoreError> {
    first(db, record_select!("WHERE id = ?1"), &[int(id)]).await
}

/// Which records a list shows; `None` matches everything.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub task_id: Option<i64>,
    pub node_id: Option<i64>,
    pub status: Option<RunStatus>,
    /// Started at or after (RFC 3339 UTC, as stored).
    pub from: Option<&'a str>,
    /// Started before.
    pub to: Option<&'a str>,
}

macro_rules! filter_sql {
    () => {
        "(?1 IS NULL OR task_id = ?1) AND (?2 IS NULL OR node_id = ?2)
         AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR started_at >= ?4)
         AND (?5 IS NULL OR started_at < ?5)"
    };
}

fn filter_args(f: &Filter<'_>) -> Vec<worker::wasm_bindgen::JsValue> {
    let opt_int = |v: Option<i64>| v.map_or(worker::wasm_bindgen::JsValue::NULL, int);
    vec![
        opt_int(f.task_id),
        opt_int(f.node_id),
        super::opt_text(f.status.map(RunStatus::as_str)),
        super::opt_text(f.from),
        super::opt_text(f.to),
    ]
}

/// One page of the matching records, newest first, and how many match in all.
pub async fn page(
    db: &D1Database,
    f: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<RecordRow>, u64), StoreError> {
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    let mut args = filter_args(f);
    let total: Option<N> = first(
        db,
        concat!(
            "SELECT count(*) AS n FROM backup_records WHERE ",
            filter_sql!()
        ),
        &args,
    )
    .await?;
    args.push(int(limit));
    args.push(int(offset));
    let rows = all(
        db,
        record_select!(concat!(
            "WHERE ",
            filter_sql!(),
            " ORDER BY id DESC LIMIT ?6 OFFSET ?7"
        )),
        &args,
    )
    .await?;
    Ok((
        rows,
        total.map_or(0, |t| u64::try_from(t.n).unwrap_or_default()),
    ))
}

/// The records among `ids` that exist, with their rows.
pub async fn get_many(db: &D1Database, ids: &[i64]) -> Result<Vec<RecordRow>, StoreError> {
    let ids = serde_json::to_string(ids).map_err(|e| StoreError::new("record ids", e))?;
    all(
        db,
        record_select!("WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"),
        &[text(&ids)],
    )
    .await
}

/// Deletes finished records (with their targets and logs); returns how many went.
pub async fn delete(db: &D1Database, ids: &[i64]) -> Result<u64, StoreError> {
    let ids = serde_json::to_string(ids).map_err(|e| StoreError::new("record ids", e))?;
    let changed = batch(
        db,
        vec![
            stmt(
                db,
                "DELETE FROM backup_record_targets WHERE record_id IN
                   (SELECT id FROM backup_records WHERE status != 'running'
                      AND id IN (SELECT value FROM json_each(?1)))",
                &[text(&ids)],
            )?,
            stmt(
                db,
                "DELETE FROM run_logs WHERE kind = 'backup' AND record_id IN
                   (SELECT id FROM backup_records WHERE status != 'running'
                      AND id IN (SELECT value FROM json_each(?1)))",
                &[text(&ids)],
            )?,
            stmt(
                db,
                "DELETE FROM backup_records
                 WHERE status != 'running' AND id IN (SELECT value FROM json_each(?1))",
                &[text(&ids)],
            )?,
        ],
    )
    .await?;
    Ok(changed.last().copied().unwrap_or(0) as u64)
}

/// A task's backups that retention decides on: finished with a stored artifact, not removed.
#[derive(Debug, Clone, Deserialize)]
pub struct Kept {
    pub id: i64,
    pub finished_at: String,
    /// `success` or `partial`.
    pub status: RunStatus,
    /// The node that wrote it (the only one that can reach its `local_disk` copies).
    pub node_id: i64,
    /// A removal is under way (its command is pending or claimed).
    pub removing: i64,
}

pub async fn retention_candidates(db: &D1Database, task_id: i64) -> Result<Vec<Kept>, StoreError> {
    all(
        db,
        "SELECT r.id, r.finished_at, r.status, r.node_id,
                EXISTS (SELECT 1 FROM agent_commands c WHERE c.id = r.removal_command
                        AND c.status IN ('pending', 'claimed')) AS removing
         FROM backup_records r
         WHERE r.task_id = ?1 AND r.status IN ('success', 'partial') AND r.removed_at IS NULL
           AND r.finished_at IS NOT NULL",
        &[int(task_id)],
    )
    .await
}

/// Notes why each record goes and which command removes its objects.
pub async fn mark_removal(
    db: &D1Database,
    reasons: &[(i64, String)],
    command_id: i64,
) -> Result<(), StoreError> {
    let mut statements = Vec::new();
    for (id, reason) in reasons {
        statements.push(stmt(
            db,
            "UPDATE backup_records SET removal = ?2, removal_command = ?3 WHERE id = ?1",
            &[int(*id), text(reason), int(command_id)],
        )?);
    }
    batch(db, statements).await.map(drop)
}

/// After a removal command ended: its records whose objects are all gone (none of `failed_paths`,
/// which name snapshots as `path#id`: `StoredObject::key`)
/// are marked removed; the others are released for the next attempt. Returns how many were removed.
pub async fn removal_done(
    db: &D1Database,
    command_id: i64,
    failed_paths: &[String],
    now: &str,
) -> Result<usize, StoreError> {
    let failed =
        serde_json::to_string(failed_paths).map_err(|e| StoreError::new("failed paths", e))?;
    let changed = batch(
        db,
        vec![
            stmt(
                db,
                "UPDATE backup_records SET removed_at = ?3
                 WHERE removal_command = ?1 AND removed_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM backup_record_targets t
                                   WHERE t.record_id = backup_records.id
                                     AND (CASE WHEN t.snapshot_id = '' THEN t.path
                                          ELSE t.path || '#' || t.snapshot_id END)
                                         IN (SELECT value FROM json_each(?2)))",
                &[int(command_id), text(&failed), text(now)],
            )?,
            stmt(
                db,
                "UPDATE backup_records SET removal_command = NULL
                 WHERE removal_command = ?1 AND removed_at IS NULL",
                &[int(command_id)],
            )?,
        ],
    )
    .await?;
    Ok(changed.first().copied().unwrap_or(0))
}

/// Releases the records of a removal command that failed as a whole, for the next attempt.
pub async fn release_removal(db: &D1Database, command_id: i64) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE backup_records SET removal_command = NULL
         WHERE removal_command = ?1 AND removed_at IS NULL",
        &[int(command_id)],
    )
    .await
    .map(drop)
}

/// Whether a command is removing records' objects.
pub async fn removal_of_command(db: &D1Database, command_id: i64) -> Result<bool, StoreError> {
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    let row: Option<N> = first(
        db,
        "SELECT count(*) AS n FROM backup_records WHERE removal_command = ?1",
        &[int(command_id)],
    )
    .await?;
    Ok(row.is_some_and(|r| r.n > 0))
}

pub async fn targets(db: &D1Database, record_id: i64) -> Result<Vec<RecordTargetRow>, StoreError> {
    targets_of(db, &[record_id]).await
}

/// The targets of several records in one query, in each record's order.
/// The records (not removed, not running) that hold a stored copy on `target_id`.
pub async fn with_copies_on(db: &D1Database, target_id: i64) -> Result<Vec<RecordRow>, StoreError> {
    all(
        db,
        record_select!(
            "WHERE removed_at IS NULL AND status != 'running' AND id IN
               (SELECT record_id FROM backup_record_targets WHERE target_id = ?1 AND status = 'success')"
        ),
        &[int(target_id)],
    )
    .await
}

/// Forgets the copies on a deleted target: its rows go, and a record left without any stored copy
/// is marked removed, saying why.
pub async fn forget_target(db: &D1Database, target_id: i64, now: &str) -> Result<(), StoreError> {
    batch(
        db,
        vec![
            stmt(
                db,
                "UPDATE backup_records SET removed_at = ?2,
                        removal = 'its storage target was deleted with its backups'
                 WHERE removed_at IS NULL AND id IN
                   (SELECT record_id FROM backup_record_targets WHERE target_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM backup_record_targets t
                                   WHERE t.record_id = backup_records.id AND t.target_id != ?1
                                     AND t.status = 'success')",
                &[int(target_id), text(now)],
            )?,
            stmt(
                db,
                "DELETE FROM backup_record_targets WHERE target_id = ?1",
                &[int(target_id)],
            )?,
        ],
    )
    .await
    .map(drop)
}

pub async fn targets_of(
    db: &D1Database,
    record_ids: &[i64],
) -> Result<Vec<RecordTargetRow>, StoreError> {
    let ids = serde_json::to_string(record_ids).map_err(|e| StoreError::new("record ids", e))?;
    all(
        db,
        "SELECT record_id, target_id, target_name, path, status, bytes, error, snapshot_id
         FROM backup_record_targets WHERE record_id IN (SELECT value FROM json_each(?1))
         ORDER BY record_id, rowid",
        &[text(&ids)],
    )
    .await
}

/// Starts a run's record, unless a run of the task is going; the new id. `fire_at` is the
/// scheduled fire time (`None` for a manual run): a task and fire time make one record at most,
/// so ticks that repeat or overlap start it once.
pub async fn start(
    db: &D1Database,
    task: &super::tasks::TaskRow,
    fire_at: Option<&str>,
    coalesced: u32,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "INSERT INTO backup_records (task_id, task_name, kind, source, node_id, trigger, fire_at,
                                     coalesced, started_at)
         SELECT ?1, ?2, t.type, json_remove(t.spec, '$.retention'), ?3,
                CASE WHEN ?4 IS NULL THEN 'manual' ELSE 'schedule' END, ?4, ?5, ?6
         FROM backup_tasks t
         WHERE t.id = ?1 AND NOT EXISTS (SELECT 1 FROM backup_records WHERE task_id = ?1 AND status = 'running')
         ON CONFLICT (task_id, fire_at) DO NOTHING
         RETURNING id",
        &[
            int(task.id),
            text(&task.name),
            int(task.node_id),
            super::opt_text(fire_at),
            int(i64::from(coalesced)),
            text(now),
        ],
    )
    .await?;
    Ok(row.map(|r| r.id))
}

/// Whether the task already has a record for this fire time.
pub async fn exists_for_fire(
    db: &D1Database,
    task_id: i64,
    fire_at: &str,
) -> Result<bool, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        n: i64,
    }
    let row: Option<Row> = first(
        db,
        "SELECT count(*) AS n FROM backup_records WHERE task_id = ?1 AND fire_at = ?2",
        &[int(task_id), text(fire_at)],
    )
    .await?;
    Ok(row.is_some_and(|r| r.n > 0))
}

/// One destination of a starting run.
#[derive(Debug)]
pub struct PlannedTarget<'a> {
    pub target_id: i64,
    pub target_name: &'a str,
    pub path: &'a str,
}

/// Links the record to its command and lists its destinations, in one transaction.
pub async fn attach(
    db: &D1Database,
    record_id: i64,
    command_id: i64,
    targets: &[PlannedTarget<'_>],
) -> Result<(), StoreError> {
    let mut statements = vec![stmt(
        db,
        "UPDATE backup_records SET command_id = ?2 WHERE id = ?1",
        &[int(record_id), int(command_id)],
    )?];
    for t in targets {
        statements.push(stmt(
            db,
            "INSERT INTO backup_record_targets (record_id, target_id, target_name, path)
             VALUES (?1, ?2, ?3, ?4)",
            &[
                int(record_id),
                int(t.target_id),
                text(t.target_name),
                text(t.path),
            ],
        )?);
    }
    batch(db, statements).await.map(drop)
}

/// One target's outcome.
#[derive(Debug)]
pub struct TargetOutcome<'a> {
    pub target_id: i64,
    pub ok: bool,
    pub bytes: i64,
    pub error: &'a str,
    /// The snapshot a repository run wrote there (empty otherwise).
    pub snapshot_id: &'a str,
}

/// The figures of a run that stored its artifact somewhere.
#[derive(Debug)]
pub struct Finished<'a> {
    pub status: RunStatus,
    pub bytes: i64,
    pub files: i64,
    pub source_bytes: i64,
    pub checksum: &'a str,
    pub error: &'a str,
    /// Database dumps: the artifact's sections (JSON array).
    pub sections: &'a str,
    /// Repository runs: the file changes (JSON; empty for archives).
    pub changes: &'a str,
}

impl<'a> Finished<'a> {
    /// A run that stored nothing, and why.
    pub fn failed(error: &'a str) -> Self {
        Self {
            status: RunStatus::Failed,
            bytes: 0,
            files: 0,
            source_bytes: 0,
            checksum: "",
            error,
            sections: "[]",
            changes: "",
        }
    }
}

/// Finishes a running record with its targets' outcomes, and the task's last run, atomically.
pub async fn finish(
    db: &D1Database,
    record_id: i64,
    f: &Finished<'_>,
    targets: &[TargetOutcome<'_>],
    now: &str,
) -> Result<(), StoreError> {
    let mut statements = vec![stmt(
        db,
        "UPDATE backup_records
         SET status = ?2, bytes = ?3, files = ?4, source_bytes = ?5, checksum = ?6, error = ?7,
             finished_at = ?8, sections = ?9, changes = ?10
         WHERE id = ?1 AND status = 'running'",
        &[
            int(record_id),
            text(f.status.as_str()),
            int(f.bytes),
            int(f.files),
            int(f.source_bytes),
            text(f.checksum),
            text(f.error),
            text(now),
            text(f.sections),
            text(f.changes),
        ],
    )?];
    for t in targets {
        statements.push(stmt(
            db,
            "UPDATE backup_record_targets SET status = ?3, bytes = ?4, error = ?5, snapshot_id = ?6
             WHERE record_id = ?1 AND target_id = ?2",
            &[
                int(record_id),
                int(t.target_id),
                text(
                    if t.ok {
                        TargetStatus::Success
                    } else {
                        TargetStatus::Failed
                    }
                    .as_str(),
                ),
                int(t.bytes),
                text(t.error),
                text(t.snapshot_id),
            ],
        )?);
    }
    statements.push(task_last_run(db, record_id)?);
    batch(db, statements).await.map(drop)
}

fn task_last_run(
    db: &D1Database,
    record_id: i64,
) -> Result<worker::D1PreparedStatement, StoreError> {
    stmt(
        db,
        "UPDATE backup_tasks
         SET last_run_at = (SELECT finished_at FROM backup_records WHERE id = ?1),
             last_status = (SELECT status FROM backup_records WHERE id = ?1)
         WHERE id = (SELECT task_id FROM backup_records WHERE id = ?1)",
        &[int(record_id)],
    )
}

/// Fails every running record whose command ended without a usable report (expired lease,
/// failed on the agent, or never enqueued within a minute); returns how many.
pub async fn fail_lost(
    db: &D1Database,
    now: &str,
    unlinked_before: &str,
) -> Result<usize, StoreError> {
    let failed = run(
        db,
        "UPDATE backup_records
         SET status = 'failed', finished_at = ?1,
             error = COALESCE(
                 (SELECT COALESCE(c.error_message, 'the agent command ended without a result')
                  FROM agent_commands c WHERE c.id = backup_records.command_id),
                 'the run was never handed to an agent')
         WHERE status = 'running'
           AND ((command_id IS NULL AND started_at < ?2)
                OR command_id IN (SELECT id FROM agent_commands WHERE status IN ('expired', 'failed')))",
        &[text(now), text(unlinked_before)],
    )
    .await?;
    if failed > 0 {
        run(
            db,
            "UPDATE backup_record_targets SET status = 'failed', error = 'the run failed'
             WHERE status = 'running'
               AND record_id IN (SELECT id FROM backup_records WHERE status = 'failed')",
            &[],
        )
        .await?;
        run(
            db,
            "UPDATE backup_tasks
             SET last_run_at = ?1, last_status = 'failed'
             WHERE id IN (SELECT task_id FROM backup_records WHERE status = 'failed' AND finished_at = ?1)",
            &[text(now)],
        )
        .await?;
    }
    Ok(failed)
}

/// The record a command is running, if it is a run.
pub async fn by_command(db: &D1Database, command_id: i64) -> Result<Option<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "SELECT id FROM backup_records WHERE command_id = ?1",
        &[int(command_id)],
    )
    .await?;
    Ok(row.map(|r| r.id))
}

/// A repository run still going that started before `record_id` and whose task writes to
/// `target_id`, if any.
pub async fn earlier_repository_run_on(
    db: &D1Database,
    record_id: i64,
    target_id: i64,
) -> Result<Option<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "SELECT r.id FROM backup_records r
         WHERE r.status = 'running' AND r.id < ?1
           AND json_extract(r.source, '$.format') = 'repository'
           AND r.task_id IN (SELECT task_id FROM backup_task_targets WHERE target_id = ?2)
         ORDER BY r.id LIMIT 1",
        &[int(record_id), int(target_id)],
    )
    .await?;
    Ok(row.map(|r| r.id))
}
