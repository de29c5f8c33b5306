//! The `backup_tasks` and `backup_task_targets` tables.
//!
//! A write is one D1 batch (one transaction): the task row is inserted or updated only when its
//! node and every target exist, and the target rows follow only when that row carries the write's
//! fresh `revision`. So a task never exists without its targets, a target or node cannot vanish
//! under a task being written, and a refused write changes nothing.

use super::StoreError;
use super::{all, batch, first, int, run, stmt, text};
use serde::Deserialize;
use stowage_shared::status::RunStatus;
use stowage_shared::tasks::TaskType;
use worker::D1Database;

#[derive(Debug, Clone, Deserialize)]
pub struct TaskRow {
    pub id: i64,
    /// Never changes: the associated data of the sealed password.
    pub uid: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: TaskType,
    pub description: String,
    pub enabled: i64,
    pub node_id: i64,
    pub node_name: Option<String>,
    pub spec: String,
    /// The sealed database password (empty when none is stored).
    pub password_sealed: String,
    pub cron_expr: String,
    pub time_zone: String,
    pub tags: String,
    pub last_run_at: Option<String>,
    pub last_status: Option<RunStatus>,
    pub last_skip: String,
    pub schedule_cursor: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

macro_rules! task_select {
    ($tail:literal) => {
        concat!(
            "SELECT t.id, t.uid, t.name, t.type, t.description, t.enabled, t.node_id,
                    n.name AS node_name, t.spec, t.password_sealed, t.cron_expr, t.time_zone, t.tags, t.last_run_at, t.last_status,
                    t.last_skip, t.schedule_cursor, t.created_at, t.updated_at
             FROM backup_tasks t LEFT JOIN nodes n ON n.id = t.node_id ",
            $tail
        )
    };
}

/// One target of a task, in the task's order.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskTargetRow {
    pub task_id: i64,
    pub target_id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

pub async fn list(db: &D1Database) -> Result<Vec<TaskRow>, StoreError> {
    all(
        db,
        task_select!("ORDER BY t.updated_at DESC, t.id DESC"),
        &[],
    )
    .await
}

/// Enabled tasks that have a schedule.
pub async fn scheduled(db: &D1Database) -> Result<Vec<TaskRow>, StoreError> {
    all(
        db,
        task_select!("WHERE t.enabled = 1 AND t.cron_expr <> '' ORDER BY t.id"),
        &[],
    )
    .await
}

/// Moves the task's schedule cursor forward to `fire_at` (never back), noting a skipped fire time
/// when `skip` says why.
pub async fn advance_cursor(
    db: &D1Database,
    id: i64,
    fire_at: &str,
    skip: Option<&str>,
) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE backup_tasks
         SET schedule_cursor = ?2, last_skip = COALESCE(?3, last_skip)
         WHERE id = ?1 AND (schedule_cursor IS NULL OR schedule_cursor < ?2)",
        &[int(id), text(fire_at), super::opt_text(skip)],
    )
    .await
    .map(drop)
}

pub async fn get(db: &D1Database, id: i64) -> Result<Option<TaskRow>, StoreError> {
    first(db, task_select!("WHERE t.id = ?1"), &[int(id)]).await
}

/// The targets of every task (`task_id = 0`) or of one.
pub async fn targets(db: &D1Database, task_id: i64) -> Result<Vec<TaskTargetRow>, StoreError> {
    all(
        db,
        "SELECT tt.task_id, tt.target_id, s.name, s.type
         FROM backup_task_targets tt JOIN storage_targets s ON s.id = tt.target_id
         WHERE ?1 = 0 OR tt.task_id = ?1
         ORDER BY tt.task_id, tt.position",
        &[int(task_id)],
    )
    .await
}

/// The fields one write stores.
#[derive(Debug)]
pub struct TaskFields<'a> {
    pub revision: &'a str,
    /// The task's lasting identity (only an insert writes it).
    pub uid: &'a str,
    /// A newly sealed database password; `None` keeps the stored one.
    pub password_sealed: Option<&'a str>,
    pub name: &'a str,
    pub kind: &'a str,
    pub description: &'a str,
    pub enabled: bool,
    pub node_id: i64,
    pub spec: &'a str,
    pub cron_expr: &'a str,
    pub time_zone: &'a str,
    /// Where the scheduler starts counting fire times: the write's time when the schedule is new
    /// or changed, so that a new schedule never fires for the past.
    pub schedule_cursor: &'a str,
    pub tags: &'a str,
    /// JSON array of target ids, in order.
    pub target_ids: &'a str,
    pub now: &'a str,
}

/// Why a write did nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteRefused {
    NameTaken,
    /// The node or some target does not exist (any more).
    MissingReference,
    /// The task itself is gone (updates only).
    TaskGone,
}

/// Inserts the task row only when its node and every target exist.
const INSERT_TASK: &str = "INSERT INTO backup_tasks (revision, name, type, description, enabled, node_id, spec,
                                 cron_expr, time_zone, schedule_cursor, tags, created_at, updated_at,
                                 uid, password_sealed)
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13, ?13, ?14, COALESCE(?15, '')
     WHERE EXISTS (SELECT 1 FROM nodes WHERE id = ?6)
       AND (SELECT count(*) FROM storage_targets WHERE id IN (SELECT value FROM json_each(?12)))
           = json_array_length(?12)
     ON CONFLICT DO NOTHING";

/// Adds the targets of the task row that carries the write's revision.
const INSERT_TARGETS: &str = "INSERT INTO backup_task_targets (task_id, target_id, position)
     SELECT t.id, j.value, j.key FROM backup_tasks t, json_each(?2) j WHERE t.revision = ?1";

/// Inserts a task and its targets; the new id, or why nothing was written.
pub async fn create(
    db: &D1Database,
    f: &TaskFields<'_>,
) -> Result<Result<i64, WriteRefused>, StoreError> {
    if name_taken(db, f.name, 0).await? {
        return Ok(Err(WriteRefused::NameTaken));
    }
    let insert = stmt(db, INSERT_TASK, &bind(f))?;
    let targets = stmt(db, INSERT_TARGETS, &[text(f.revision), text(f.target_ids)])?;
    let changes = batch(db, vec![insert, targets]).await?;
    if changes.first().copied().unwrap_or(0) == 0 {
        return Ok(Err(refusal(db, f, 0).await?));
    }
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "SELECT id FROM backup_tasks WHERE revision = ?1",
        &[text(f.revision)],
    )
    .await?;
    row.map(|r| Ok(r.id))
        .ok_or_else(|| StoreError::new("create task", "the inserted row is missing"))
}

fn bind(f: &TaskFields<'_>) -> [worker::wasm_bindgen::JsValue; 15] {
    [
        text(f.revision),
        text(f.name),
        text(f.kind),
        text(f.description),
        int(i64::from(f.enabled)),
        int(f.node_id),
        text(f.spec),
        text(f.cron_expr),
        text(f.time_zone),
        text(f.schedule_cursor),
        text(f.tags),
        text(f.target_ids),
        text(f.now),
        text(f.uid),
        super::opt_text(f.password_sealed),
    ]
}

/// Updates a task and replaces its targets. `schedule_cursor` is written only when the schedule
/// changed (the caller decides by comparing with the stored one).
pub async fn update(
    db: &D1Database,
    id: i64,
    f: &TaskFields<'_>,
    schedule_changed: bool,
) -> Result<Result<(), WriteRefused>, StoreError> {
    if name_taken(db, f.name, id).await? {
        return Ok(Err(WriteRefused::NameTaken));
    }
    let mut args = bind(f).to_vec();
    args.push(int(id));
    args.push(int(i64::from(schedule_changed)));
    let update = stmt(
        db,
        "UPDATE OR IGNORE backup_tasks
         SET revision = ?1, name = ?2, type = ?3, description = ?4, enabled = ?5, node_id = ?6,
             spec = ?7, cron_expr = ?8, time_zone = ?9,
             schedule_cursor = CASE WHEN ?17 = 1 THEN ?10 ELSE schedule_cursor END,
             tags = ?11, updated_at = ?13, password_sealed = COALESCE(?15, password_sealed)
         WHERE id = ?16
           AND EXISTS (SELECT 1 FROM nodes WHERE id = ?6)
           AND (SELECT count(*) FROM storage_targets WHERE id IN (SELECT value FROM json_each(?12)))
               = json_array_length(?12)",
        &args,
    )?;
    let clear = stmt(
        db,
        "DELETE FROM backup_task_targets
         WHERE task_id = ?1 AND EXISTS (SELECT 1 FROM backup_tasks WHERE id = ?1 AND revision = ?2)",
        &[int(id), text(f.revision)],
    )?;
    let targets = stmt(db, INSERT_TARGETS, &[text(f.revision), text(f.target_ids)])?;
    let changes = batch(db, vec![update, clear, targets]).await?;
    if changes.first().copied().unwrap_or(0) == 0 {
        return Ok(Err(refusal(db, f, id).await?));
    }
    Ok(Ok(()))
}

/// Works out why a write changed nothing.
async fn refusal(db: &D1Database, f: &TaskFields<'_>, id: i64) -> Result<WriteRefused, StoreError> {
    if id != 0 && get(db, id).await?.is_none() {
        return Ok(WriteRefused::TaskGone);
    }
    if name_taken(db, f.name, id).await? {
        return Ok(WriteRefused::NameTaken);
    }
    Ok(WriteRefused::MissingReference)
}

pub async fn name_taken(db: &D1Database, name: &str, except: i64) -> Result<bool, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        taken: i64,
    }
    let row: Option<Row> = first(
        db,
        "SELECT EXISTS (SELECT 1 FROM backup_tasks WHERE name = ?1 AND id <> ?2) AS taken",
        &[text(name), int(except)],
    )
    .await?;
    Ok(row.is_some_and(|r| r.taken != 0))
}

pub async fn set_enabled(
    db: &D1Database,
    id: i64,
    enabled: bool,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(run(
        db,
        "UPDATE backup_tasks SET enabled = ?2, updated_at = ?3 WHERE id = ?1",
        &[int(id), int(i64::from(enabled)), text(now)],
    )
    .await?
        > 0)
}

pub async fn delete(db: &D1Database, id: i64) -> Result<bool, StoreError> {
    Ok(run(db, "DELETE FROM backup_tasks WHERE id = ?1", &[int(id)]).await? > 0)
}

/// Names of the tasks that write to a storage target (for `STORAGE_TARGET_IN_USE`).
pub async fn names_using_target(
    db: &D1Database,
    target_id: i64,
) -> Result<Vec<String>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
    }
    let rows: Vec<Row> = all(
        db,
        "SELECT t.name FROM backup_tasks t JOIN backup_task_targets tt ON tt.task_id = t.id
         WHERE tt.target_id = ?1 ORDER BY t.name",
        &[int(target_id)],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// The nodes whose tasks write to a target: the only nodes that hold its credentials already.
pub async fn nodes_using_target(db: &D1Database, target_id: i64) -> Result<Vec<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        node_id: i64,
    }
    let rows: Vec<Row> = all(
        db,
        "SELECT DISTINCT t.node_id FROM backup_tasks t JOIN backup_task_targets tt ON tt.task_id = t.id
         WHERE tt.target_id = ?1",
        &[int(target_id)],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.node_id).collect())
}

/// Names of the tasks that run on a node (for `NODE_HAS_TASKS`).
pub async fn names_on_node(db: &D1Database, node_id: i64) -> Result<Vec<String>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
    }
    let rows: Vec<Row> = all(
        db,
        "SELECT name FROM backup_tasks WHERE node_id = ?1 ORDER BY name",
        &[int(node_id)],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}
