//! `/api/backup/tasks`: what to back up, from which node, to which targets, when. Requests are
//! checked by `shared::tasks`; the store writes a task and its targets in one transaction.

use super::Ctx;
use crate::config::{AppState, Config};
use crate::error::ApiError;
use crate::http;
use crate::ops::tasks::stored_spec;
use crate::secrets::Identity;
use crate::store::tasks::{self, TaskFields, TaskRow, TaskTargetRow, WriteRefused};
use stowage_shared::api::{
    BackupTaskOutput, BackupTaskRequest, Deleted, Role, TaskTargetRef, ToggleRequest,
};
use stowage_shared::schedule::Schedule;
use stowage_shared::status::RunStatus;
use stowage_shared::tasks::{
    CheckedTask, Compression, MASK, PasswordChange, SourceSpec, TaskSpec, check_password_bound,
};
use stowage_shared::time::Timestamp;
use stowage_shared::{ErrorCode, time};
use worker::{D1Database, Response};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BackupTaskInvalid, message.into())
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::BackupTaskNotFound,
        format!("backup task {id} does not exist"),
    )
}

fn output(
    row: &TaskRow,
    targets: &[TaskTargetRow],
    now: Timestamp,
) -> Result<BackupTaskOutput, ApiError> {
    let spec = stored_spec(row)?;
    let (compression, compression_level) = match spec.compression {
        Compression::None => ("none", None),
        Compression::Zstd { level } => ("zstd", Some(level)),
    };
    let next_run_at = (row.enabled != 0 && !row.cron_expr.is_empty())
        .then(|| Schedule::parse(&row.cron_expr, &row.time_zone).ok())
        .flatten()
        .and_then(|s| s.next_after(now))
        .map(time::format);
    let mine: Vec<&TaskTargetRow> = targets.iter().filter(|t| t.task_id == row.id).collect();
    let mut out = BackupTaskOutput {
        id: row.id,
        name: row.name.clone(),
        kind: row.kind.as_str().to_owned(),
        description: row.description.clone(),
        enabled: row.enabled != 0,
        node_id: row.node_id,
        node_name: row.node_name.clone().unwrap_or_default(),
        source_paths: Vec::new(),
        exclude_patterns: Vec::new(),
        storage_target_ids: mine.iter().map(|t| t.target_id).collect(),
        storage_targets: mine
            .iter()
            .map(|t| TaskTargetRef {
                id: t.target_id,
                name: t.name.clone(),
                kind: t.kind.clone(),
            })
            .collect(),
        cron_expr: row.cron_expr.clone(),
        time_zone: row.time_zone.clone(),
        next_run_at,
        format: spec.format,
        compression: compression.to_owned(),
        compression_level,
        retention: spec.retention,
        tags: serde_json::from_str(&row.tags).unwrap_or_default(),
        db_host: String::new(),
        db_port: None,
        db_user: String::new(),
        db_password: String::new(),
        db_names: Vec::new(),
        db_options: Vec::new(),
        db_include_globals: false,
        db_path: String::new(),
        masked_fields: Vec::new(),
        last_run_at: row.last_run_at.clone(),
        last_status: row.last_status,
        last_skip: row.last_skip.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    };
    match spec.source {
        SourceSpec::File(files) => {
            out.source_paths = files.sources;
            out.exclude_patterns = files.excludes;
        }
        SourceSpec::Sqlite(lite) => out.db_path = lite.path,
        SourceSpec::Mysql(db) | SourceSpec::Postgresql(db) => {
            out.db_host = db.host;
            out.db_port = Some(db.port);
            out.db_user = db.user;
            out.db_names = db.databases;
            out.db_options = db.options;
            out.db_include_globals = db.include_globals;
            out.masked_fields = vec!["dbPassword".to_owned()];
            if !row.password_sealed.is_empty() {
                out.db_password = MASK.to_owned();
            }
        }
    }
    Ok(out)
}

async fn find(db: &D1Database, id: i64) -> Result<TaskRow, ApiError> {
    tasks::get(db, id).await?.ok_or_else(|| not_found(id))
}

async fn answer(db: &D1Database, id: i64, now: Timestamp) -> Result<BackupTaskOutput, ApiError> {
    let row = find(db, id).await?;
    output(&row, &tasks::targets(db, id).await?, now)
}

async fn read_request(ctx: &mut Ctx<'_>, config: &Config) -> Result<CheckedTask, ApiError> {
    let body: BackupTaskRequest = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::BackupTaskInvalid,
    )
    .await?;
    let checked = body.check().map_err(|e| invalid(e.to_string()))?;
    if let Some((_, _, schedule)) = &checked.schedule
        && schedule.next_after(ctx.now).is_none()
    {
        return Err(invalid("cronExpr: never fires (no such date in any year)"));
    }
    Ok(checked)
}

/// The JSON columns of a checked task.
struct Encoded {
    spec: String,
    tags: String,
    target_ids: String,
}

fn encode(task: &CheckedTask) -> Result<Encoded, ApiError> {
    let json = |v: serde_json::Result<String>| v.map_err(|e| ApiError::internal("encode task", e));
    Ok(Encoded {
        spec: json(serde_json::to_string(&task.spec))?,
        tags: json(serde_json::to_string(&task.tags))?,
        target_ids: json(serde_json::to_string(&task.target_ids))?,
    })
}

fn fields<'a>(
    task: &'a CheckedTask,
    e: &'a Encoded,
    ids: (&'a str, &'a str),
    password_sealed: Option<&'a str>,
    now: &'a str,
) -> TaskFields<'a> {
    let (revision, uid) = ids;
    let (cron_expr, time_zone) = task
        .schedule
        .as_ref()
        .map_or(("", "UTC"), |(expr, zone, _)| {
            (expr.as_str(), zone.as_str())
        });
    TaskFields {
        revision,
        uid,
        password_sealed,
        name: &task.name,
        kind: task.kind.as_str(),
        description: &task.description,
        enabled: task.enabled,
        node_id: task.node_id,
        spec: &e.spec,
        cron_expr,
        time_zone,
        schedule_cursor: now,
        tags: &e.tags,
        target_ids: &e.target_ids,
        now,
    }
}

fn refused(why: WriteRefused, task: &CheckedTask, id: i64) -> ApiError {
    match why {
        WriteRefused::NameTaken => ApiError::new(
            ErrorCode::BackupTaskNameExists,
            format!("a backup task named {:?} already exists", task.name),
        ),
        WriteRefused::MissingReference => invalid(format!(
            "nodeId {} or one of storageTargetIds {:?} does not exist",
            task.node_id, task.target_ids
        )),
        WriteRefused::TaskGone => not_found(id),
    }
}

pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let rows = tasks::list(&db).await?;
    let targets = tasks::targets(&db, 0).await?;
    let out = rows
        .iter()
        .map(|row| output(row, &targets, ctx.now))
        .collect::<Result<Vec<_>, _>>()?;
    http::ok(&out)
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    http::ok(&answer(&db, ctx.id()?, ctx.now).await?)
}

/// The task's new password sealed for its row, when the request sets one.
fn seal_password(
    config: &Config,
    task: &CheckedTask,
    uid: &str,
) -> Result<Option<String>, ApiError> {
    match &task.password {
        PasswordChange::Keep => Ok(None),
        PasswordChange::Set(password) => config
            .sealer()?
            .seal(Identity::TaskPassword(uid), password.expose().as_bytes())
            .map(Some),
    }
}

pub async fn create(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let task = read_request(&mut ctx, &config).await?;
    let encoded = encode(&task)?;
    let revision = crate::secrets::random_id()?;
    let uid = crate::secrets::random_id()?;
    let sealed = seal_password(&config, &task, &uid)?;
    let now = time::format(ctx.now);
    let id = tasks::create(
        &db,
        &fields(&task, &encoded, (&revision, &uid), sealed.as_deref(), &now),
    )
    .await?
    .map_err(|why| refused(why, &task, 0))?;
    ctx.audit_success(&db, &principal, "backup_task.create", ("backup_task", id))
        .await?;
    http::created(&answer(&db, id, ctx.now).await?)
}

pub async fn update(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let id = ctx.id()?;
    let task = read_request(&mut ctx, &config).await?;
    let stored = find(&db, id).await?;
    if stored.kind != task.kind {
        return Err(invalid(format!(
            "type: a task's type cannot change (it is {}); create a new task instead",
            stored.kind.as_str()
        )));
    }
    if task.password == PasswordChange::Keep && !stored.password_sealed.is_empty() {
        let old: TaskSpec = serde_json::from_str(&stored.spec)
            .map_err(|e| ApiError::internal("stored task spec", e))?;
        check_password_bound(&task.spec.source, &old.source).map_err(|e| invalid(e.to_string()))?;
    }
    let encoded = encode(&task)?;
    let revision = crate::secrets::random_id()?;
    let sealed = seal_password(&config, &task, &stored.uid)?;
    let now = time::format(ctx.now);
    let f = fields(
        &task,
        &encoded,
        (&revision, &stored.uid),
        sealed.as_deref(),
        &now,
    );
    let schedule_changed =
        (f.cron_expr, f.time_zone) != (stored.cron_expr.as_str(), stored.time_zone.as_str());
    tasks::update(&db, id, &f, schedule_changed)
        .await?
        .map_err(|why| refused(why, &task, id))?;
    ctx.audit_success(&db, &principal, "backup_task.update", ("backup_task", id))
        .await?;
    http::ok(&answer(&db, id, ctx.now).await?)
}

/// `PUT /api/backup/tasks/:id/toggle` with `{enabled}` to set it, or no body to flip it.
pub async fn toggle(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let id = ctx.id()?;
    let stored = find(&db, id).await?;
    let has_body = ctx
        .req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .is_some_and(|l| l != "0");
    let body: ToggleRequest = if has_body {
        http::read_json(
            &mut ctx.req,
            config.max_json_body,
            ErrorCode::BackupTaskInvalid,
        )
        .await?
    } else {
        ToggleRequest::default()
    };
    let enabled = body.enabled.unwrap_or(stored.enabled == 0);
    if !tasks::set_enabled(&db, id, enabled, &time::format(ctx.now)).await? {
        return Err(not_found(id));
    }
    let action = if enabled {
        "backup_task.enable"
    } else {
        "backup_task.disable"
    };
    ctx.audit_success(&db, &principal, action, ("backup_task", id))
        .await?;
    http::ok(&answer(&db, id, ctx.now).await?)
}

/// `DELETE /api/backup/tasks/:id?keepBackups=true|false`: the caller must say what becomes of the
/// task's stored backups, so nothing is deleted by accident.
pub async fn delete(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let id = ctx.id()?;
    let keep = match ctx.query("keepBackups")?.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return Err(invalid(
                "keepBackups: say true (keep the stored backups) or false (delete them from every target)",
            ));
        }
    };
    if tasks::get(&db, id).await?.is_none() {
        return Err(not_found(id));
    }
    if !keep {
        // Every record of the task, its stored objects first; a run that is going refuses all.
        let filter = crate::store::records::Filter {
            task_id: Some(id),
            ..Default::default()
        };
        let (rows, _) = crate::store::records::page(&db, &filter, 1_000_000, 0).await?;
        if rows.iter().any(|r| r.status == RunStatus::Running) {
            return Err(ApiError::new(
                ErrorCode::BackupTaskRunning,
                "the task is running; delete it once the run has ended",
            ));
        }
        if !rows.is_empty() {
            crate::ops::runs::delete_with_objects(&db, &config, ctx.now, &rows).await?;
        }
    }
    if !tasks::delete(&db, id).await? {
        return Err(not_found(id));
    }
    ctx.audit_success(&db, &principal, "backup_task.delete", ("backup_task", id))
        .await?;
    http::ok(&Deleted { deleted: true })
}
