//! Backup runs and their records: `POST /api/backup/tasks/:id/run` starts one on the task's node;
//! the agent's report (or its silence) settles the record; `GET /api/backup/records[/:id]` shows
//! them.

use super::Ctx;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::ops::runs::{
    LOG_TAIL, delete_with_objects, hand_out, needs, not_found, progress, sections,
};
use crate::store::logs;
use crate::store::records::{self, RecordRow, RecordTargetRow};
use crate::store::tasks;
use stowage_shared::api::{
    BATCH_DELETE_MAX, BackupRecordOutput, BatchDeleteRequest, BatchDeleted, Deleted, Page,
    RecordTargetOutput, Role,
};
use stowage_shared::status::RunStatus;
use stowage_shared::{ErrorCode, time};
use worker::{D1Database, Response};

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// A record for the API, from its row and the target rows (of it, or of several records).
fn output(row: RecordRow, targets: &[RecordTargetRow]) -> BackupRecordOutput {
    let targets = targets
        .iter()
        .filter(|t| t.record_id == row.id)
        .map(|t| RecordTargetOutput {
            target_id: t.target_id,
            target_name: t.target_name.clone(),
            status: t.status,
            path: t.path.clone(),
            bytes: count(t.bytes),
            error: t.error.clone(),
            snapshot_id: t.snapshot_id.clone(),
        })
        .collect();
    let databases = sections(&row)
        .into_iter()
        .filter(|s| !s.globals)
        .map(|s| s.database)
        .collect();
    let (format, changes) = (
        crate::ops::runs::format(&row),
        crate::ops::runs::changes(&row),
    );
    BackupRecordOutput {
        format,
        changes,
        id: row.id,
        task_id: row.task_id,
        task_name: row.task_name,
        kind: row.kind,
        databases,
        node_id: row.node_id,
        trigger: row.trigger,
        fire_at: row.fire_at,
        coalesced_slots: u32::try_from(row.coalesced).unwrap_or_default(),
        progress: progress(row.status == RunStatus::Running, &row.progress),
        status: row.status,
        bytes: count(row.bytes),
        files: count(row.files),
        source_bytes: count(row.source_bytes),
        checksum: row.checksum,
        error: row.error,
        started_at: row.started_at,
        finished_at: row.finished_at,
        targets,
        removed_at: row.removed_at,
        removal: row.removal,
        log_tail: Vec::new(),
    }
}

/// One record with its targets and the end of its log.
async fn answer(db: &D1Database, id: i64) -> Result<BackupRecordOutput, ApiError> {
    let row = records::get(db, id).await?.ok_or_else(|| not_found(id))?;
    let mut out = output(row, &records::targets(db, id).await?);
    out.log_tail = logs::tail(db, logs::Kind::Backup, id, LOG_TAIL).await?;
    Ok(out)
}

/// `POST /api/backup/tasks/:id/run`: starts a run now; 409 while one is running.
pub async fn run_now(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let task_id = ctx.id()?;
    let task = tasks::get(&db, task_id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::BackupTaskNotFound,
            format!("backup task {task_id} does not exist"),
        )
    })?;
    // Refused up front rather than queued for a node that may not come back, or that lacks the
    // programs the task needs.
    crate::ops::fleet::choose_online(&db, &config, ctx.now, Some(task.node_id), needs(&task)?)
        .await?;
    let now = time::format(ctx.now);
    let record_id = records::start(&db, &task, None, 0, &now)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BackupTaskRunning,
                format!(
                    "task {:?} is running already; wait for that run to end",
                    task.name
                ),
            )
        })?;
    hand_out(&db, &config.links, &sealer, &task, record_id, ctx.now).await?;
    ctx.audit_success(&db, &principal, "backup_task.run", ("backup_task", task_id))
        .await?;
    http::created(&answer(&db, record_id).await?)
}

/// Most records one page holds.
const MAX_PAGE_SIZE: u64 = 200;

fn filter_invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BackupRecordFilterInvalid, message)
}

const FILTER: ErrorCode = ErrorCode::BackupRecordFilterInvalid;

/// `GET /api/backup/records?taskId&nodeId&status&dateFrom&dateTo&page&pageSize`: newest first.
pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let status =
        match ctx.query("status")? {
            None => None,
            Some(s) => Some(RunStatus::parse(&s).ok_or_else(|| {
                filter_invalid("status must be running, success, partial or failed")
            })?),
        };
    let (from, to) = (
        ctx.query_time("dateFrom", FILTER)?,
        ctx.query_time("dateTo", FILTER)?,
    );
    if let (Some(f), Some(t)) = (&from, &to)
        && f > t
    {
        return Err(filter_invalid("dateFrom is after dateTo"));
    }
    let paging = ctx.paging(MAX_PAGE_SIZE, FILTER)?;
    let filter = records::Filter {
        task_id: ctx.query_positive("taskId", FILTER)?,
        node_id: ctx.query_positive("nodeId", FILTER)?,
        status,
        from: from.as_deref(),
        to: to.as_deref(),
    };
    let (rows, total) = records::page(&db, &filter, paging.limit(), paging.offset()).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let targets = records::targets_of(&db, &ids).await?;
    let items: Vec<BackupRecordOutput> =
        rows.into_iter().map(|row| output(row, &targets)).collect();
    http::ok(&Page {
        items,
        total,
        page: paging.page,
        page_size: paging.page_size,
    })
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    http::ok(&answer(&db, ctx.id()?).await?)
}

/// `DELETE /api/backup/records/:id`: removes the stored backup from every target, then the record.
pub async fn delete(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let id = ctx.id()?;
    let row = records::get(&db, id).await?.ok_or_else(|| not_found(id))?;
    delete_with_objects(&db, &config, ctx.now, &[row]).await?;
    ctx.audit_success(
        &db,
        &principal,
        "backup_record.delete",
        ("backup_record", id),
    )
    .await?;
    http::ok(&Deleted { deleted: true })
}

/// `POST /api/backup/records/batch-delete` `{ids}`: like `DELETE` for each; all or nothing for
/// the checks, and ids that do not exist are reported, not skipped silently.
pub async fn batch_delete(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let body: BatchDeleteRequest =
        http::read_json(&mut ctx.req, config.max_json_body, ErrorCode::InvalidInput).await?;
    let mut ids = body.ids;
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() || ids.len() > BATCH_DELETE_MAX {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("ids: name 1 to {BATCH_DELETE_MAX} records"),
        ));
    }
    let rows = records::get_many(&db, &ids).await?;
    if rows.len() != ids.len() {
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !rows.iter().any(|r| r.id == **id))
            .map(ToString::to_string)
            .collect();
        return Err(ApiError::new(
            ErrorCode::BackupRecordNotFound,
            format!(
                "no backup record {}; nothing was deleted",
                missing.join(", ")
            ),
        ));
    }
    let deleted = delete_with_objects(&db, &config, ctx.now, &rows).await?;
    for id in &ids {
        ctx.audit_success(
            &db,
            &principal,
            "backup_record.delete",
            ("backup_record", *id),
        )
        .await?;
    }
    http::ok(&BatchDeleted { deleted })
}
