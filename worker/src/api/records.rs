//! Backup runs and their records: `POST /api/backup/tasks/:id/run` starts one on the task's node;
//! the agent's report (or its silence) settles the record; `GET /api/backup/records[/:id]` shows
//! them.

use super::Ctx;
use super::storage_targets::open_config;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::seal::Sealer;
use crate::store::records::{
    self, Finished, PlannedTarget, RecordRow, RecordTargetRow, TargetOutcome,
};
use crate::store::tasks::TaskRow;
use crate::store::{storage_targets, tasks};
use stowage_shared::api::{
    BackupRecordOutput, CommandResult, CommandSpec, RecordTargetOutput, Role, RunBackupReport,
    RunDestination,
};
use stowage_shared::tasks::{FileSpec, artifact_path};
use stowage_shared::time::Timestamp;
use stowage_shared::{ErrorCode, time};
use worker::{D1Database, Response};

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::BackupRecordNotFound,
        format!("backup record {id} does not exist"),
    )
}

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
            status: t.status.clone(),
            path: t.path.clone(),
            bytes: count(t.bytes),
            error: t.error.clone(),
        })
        .collect();
    BackupRecordOutput {
        id: row.id,
        task_id: row.task_id,
        task_name: row.task_name,
        node_id: row.node_id,
        trigger: row.trigger,
        fire_at: row.fire_at,
        coalesced_slots: u32::try_from(row.coalesced).unwrap_or_default(),
        status: row.status,
        bytes: count(row.bytes),
        files: count(row.files),
        source_bytes: count(row.source_bytes),
        checksum: row.checksum,
        error: row.error,
        started_at: row.started_at,
        finished_at: row.finished_at,
        targets,
    }
}

/// One record with its targets.
async fn answer(db: &D1Database, id: i64) -> Result<BackupRecordOutput, ApiError> {
    let row = records::get(db, id).await?.ok_or_else(|| not_found(id))?;
    Ok(output(row, &records::targets(db, id).await?))
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
    // Refused up front rather than queued for a node that may not come back.
    super::nodes::choose_online(
        &db,
        &config,
        ctx.now,
        Some(task.node_id),
        super::nodes::Needs::Nothing,
    )
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
    hand_out(&db, &sealer, &task, record_id, ctx.now).await?;
    ctx.audit_success(&db, &principal, "backup_task.run", ("backup_task", task_id))
        .await?;
    http::created(&answer(&db, record_id).await?)
}

/// Gives a started record's run to the task's node: a sealed `run_backup` command with the
/// targets' configs and the artifact path, linked to the record with its destinations.
pub async fn hand_out(
    db: &D1Database,
    sealer: &Sealer,
    task: &TaskRow,
    record_id: i64,
    now: Timestamp,
) -> Result<(), ApiError> {
    let spec: FileSpec =
        serde_json::from_str(&task.spec).map_err(|e| ApiError::internal("stored task spec", e))?;
    let path = artifact_path(&task.name, record_id, now, spec.compression);
    let mut destinations = Vec::new();
    let mut names = Vec::new();
    for t in tasks::targets(db, task.id).await? {
        let row = storage_targets::get(db, t.target_id)
            .await?
            .ok_or_else(|| ApiError::internal("task target", "a task's target is missing"))?;
        let target = open_config(sealer, &row)?;
        destinations.push(RunDestination {
            target_id: t.target_id,
            storage_type: target.kind(),
            config: target.to_json(),
            path: path.clone(),
        });
        names.push(t.name);
    }
    let planned: Vec<(i64, String)> = destinations
        .iter()
        .zip(names)
        .map(|(d, name)| (d.target_id, name))
        .collect();
    let command = CommandSpec::RunBackup {
        record_id,
        task_id: task.id,
        task_name: task.name.clone(),
        spec,
        destinations,
    };
    let command_id = super::rpc::enqueue(db, sealer, task.node_id, &command, now).await?;
    let planned: Vec<PlannedTarget<'_>> = planned
        .iter()
        .map(|(target_id, name)| PlannedTarget {
            target_id: *target_id,
            target_name: name,
            path: &path,
        })
        .collect();
    records::attach(db, record_id, command_id, &planned).await
}

/// Settles the record of a finished `run_backup` command from the agent's report.
pub async fn settle(
    db: &D1Database,
    command_id: i64,
    report: &CommandResult,
    now: &str,
) -> Result<(), ApiError> {
    let Some(record_id) = records::by_command(db, command_id).await? else {
        return Ok(());
    };
    match report {
        CommandResult::Succeeded { result } => {
            let report: RunBackupReport = serde_json::from_value(result.clone()).map_err(|e| {
                ApiError::new(
                    ErrorCode::AgentResultInvalid,
                    format!("the run's report was unreadable: {e}"),
                )
            })?;
            let stored = report.targets.iter().filter(|t| t.bytes.is_some()).count();
            let status = match stored {
                0 => "failed",
                n if n == report.targets.len() => "success",
                _ => "partial",
            };
            let errors: Vec<String> = report
                .targets
                .iter()
                .filter_map(|t| {
                    t.error
                        .as_ref()
                        .map(|e| format!("target {}: {e}", t.target_id))
                })
                .collect();
            let error = errors.join("; ");
            let outcomes: Vec<TargetOutcome<'_>> = report
                .targets
                .iter()
                .map(|t| TargetOutcome {
                    target_id: t.target_id,
                    ok: t.bytes.is_some(),
                    bytes: t.bytes.map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)),
                    error: t.error.as_deref().unwrap_or_default(),
                })
                .collect();
            let figures = Finished {
                status,
                bytes: i64::try_from(report.bytes).unwrap_or(i64::MAX),
                files: i64::try_from(report.files).unwrap_or(i64::MAX),
                source_bytes: i64::try_from(report.source_bytes).unwrap_or(i64::MAX),
                checksum: &report.sha256,
                error: &error,
            };
            records::finish(db, record_id, &figures, &outcomes, now).await
        }
        CommandResult::Failed { error } => {
            let targets = records::targets(db, record_id).await?;
            let outcomes: Vec<TargetOutcome<'_>> = targets
                .iter()
                .map(|t| TargetOutcome {
                    target_id: t.target_id,
                    ok: false,
                    bytes: 0,
                    error: "the run failed",
                })
                .collect();
            let figures = Finished {
                status: "failed",
                bytes: 0,
                files: 0,
                source_bytes: 0,
                checksum: "",
                error: &error.message,
            };
            records::finish(db, record_id, &figures, &outcomes, now).await
        }
    }
}

pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let task_id = match ctx.query("taskId")? {
        Some(raw) => raw.parse::<i64>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "taskId must be a task's numeric id",
            )
        })?,
        None => 0,
    };
    let rows = records::list(&db, task_id, 100).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let targets = records::targets_of(&db, &ids).await?;
    let out: Vec<BackupRecordOutput> = rows.into_iter().map(|row| output(row, &targets)).collect();
    http::ok(&out)
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    http::ok(&answer(&db, ctx.id()?).await?)
}
