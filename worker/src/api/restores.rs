//! Restores: `POST /api/backup/records/:id/restore` hands a `restore` command to a node; the
//! agent verifies the artifact's SHA-256 while unpacking into a staging directory and moves files
//! into place only after it matched. `GET /api/restore/records[/:id]` shows them.

use super::Ctx;
use super::records::{LOG_TAIL, progress};
use super::records::{Purpose, StoredCopy, stored_copy};
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::store::logs;
use crate::store::restores::{self, NewRestore, RestoreRow};
use stowage_shared::api::{
    CommandResult, CommandSpec, RestoreRecordOutput, RestoreReport, RestoreRequest, Role,
    StoredObject,
};
use stowage_shared::storage::StorageType;
use stowage_shared::tasks::Compression;
use stowage_shared::{ErrorCode, time};
use worker::{D1Database, Response};

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

fn output(row: RestoreRow) -> RestoreRecordOutput {
    RestoreRecordOutput {
        id: row.id,
        backup_record_id: row.backup_record_id,
        task_id: row.task_id,
        task_name: row.task_name,
        node_id: row.node_id,
        storage_target_id: row.target_id,
        target_path: row.target_path,
        progress: progress(&row.status, &row.progress),
        status: row.status,
        files: count(row.files),
        bytes: count(row.bytes),
        error: row.error,
        triggered_by: row.triggered_by,
        started_at: row.started_at,
        finished_at: row.finished_at,
        log_tail: Vec::new(),
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::RestoreRecordNotFound,
        format!("restore {id} does not exist"),
    )
}

async fn answer(db: &D1Database, id: i64) -> Result<RestoreRecordOutput, ApiError> {
    let row = restores::get(db, id).await?.ok_or_else(|| not_found(id))?;
    let mut out = output(row);
    out.log_tail = logs::tail(db, logs::Kind::Restore, id, LOG_TAIL).await?;
    Ok(out)
}

/// A restore destination: an absolute directory without `.` or `..` steps.
fn destination(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let invalid =
        |why: &str| ApiError::new(ErrorCode::RestoreTargetInvalid, format!("targetPath {why}"));
    if !raw.starts_with('/') {
        return Err(invalid("must be an absolute path"));
    }
    if raw.contains('\0') || raw.split('/').any(|step| step == ".." || step == ".") {
        return Err(invalid("must not contain `.` or `..` steps"));
    }
    let trimmed = raw.trim_end_matches('/');
    Ok(Some(
        if trimmed.is_empty() { "/" } else { trimmed }.to_owned(),
    ))
}

/// `POST /api/backup/records/:id/restore` `{targetPath?, nodeId?, storageTargetId?}`.
pub async fn start(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let record_id = ctx.id()?;
    let body: RestoreRequest =
        http::read_optional_json(&mut ctx.req, config.max_json_body, ErrorCode::InvalidInput)
            .await?;
    let target_path = destination(body.target_path.as_deref())?;
    let StoredCopy {
        record,
        copy: chosen,
        target,
    } = stored_copy(
        &db,
        &sealer,
        record_id,
        body.storage_target_id,
        Purpose::Restore,
    )
    .await?;
    let source_invalid = |why: String| ApiError::new(ErrorCode::RestoreSourceInvalid, why);
    let node_id = body.node_id.unwrap_or(record.node_id);
    if target.kind() == StorageType::LocalDisk && node_id != record.node_id {
        return Err(source_invalid(format!(
            "the copy on {:?} is on node {}'s own disk; restore on that node, or pick a copy on shared storage",
            chosen.target_name, record.node_id
        )));
    }
    let needs = super::nodes::Needs::storage(target.kind());
    super::nodes::choose_online(&db, &config, ctx.now, Some(node_id), needs).await?;
    let now = time::format(ctx.now);
    let triggered_by = principal.user.username.clone();
    let restore_id = restores::start(
        &db,
        &NewRestore {
            backup_record_id: record_id,
            task_id: record.task_id,
            task_name: &record.task_name,
            node_id,
            target_id: chosen.target_id,
            target_path: target_path.as_deref().unwrap_or_default(),
            triggered_by: &triggered_by,
        },
        &now,
    )
    .await?;
    let compression = if chosen.path.ends_with(".zst") {
        Compression::Zstd { level: 3 }
    } else {
        Compression::None
    };
    let command = CommandSpec::Restore {
        restore_id,
        source: StoredObject {
            target_id: chosen.target_id,
            storage_type: target.kind(),
            config: target.to_json(),
            path: chosen.path.clone(),
        },
        sha256: record.checksum.clone(),
        bytes: count(record.bytes),
        compression,
        destination: target_path,
    };
    let command_id = super::rpc::enqueue(&db, &sealer, node_id, &command, ctx.now).await?;
    restores::attach(&db, restore_id, command_id).await?;
    ctx.audit_success(
        &db,
        &principal,
        "backup_record.restore",
        ("backup_record", record_id),
    )
    .await?;
    http::created(&answer(&db, restore_id).await?)
}

/// Settles the restore of a finished `restore` command.
pub async fn settle(
    db: &D1Database,
    command_id: i64,
    report: &CommandResult,
    now: &str,
) -> Result<(), ApiError> {
    let Some(id) = restores::by_command(db, command_id).await? else {
        return Ok(());
    };
    match report {
        CommandResult::Succeeded { result } => {
            let r: RestoreReport = serde_json::from_value(result.clone()).map_err(|e| {
                ApiError::new(
                    ErrorCode::AgentResultInvalid,
                    format!("the restore's report was unreadable: {e}"),
                )
            })?;
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            restores::finish(db, id, true, n(r.files), n(r.bytes), "", now).await
        }
        CommandResult::Failed { error } => {
            restores::finish(db, id, false, 0, 0, &error.message, now).await
        }
    }
}

/// `GET /api/restore/records?backupRecordId=`: newest first.
pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let record = match ctx.query("backupRecordId")? {
        Some(raw) => raw.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "backupRecordId must be a record's numeric id",
            )
        })?,
        None => 0,
    };
    let rows = restores::list(&db, record, 200).await?;
    http::ok(&rows.into_iter().map(output).collect::<Vec<_>>())
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    http::ok(&answer(&db, ctx.id()?).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_absolute_without_dot_steps() {
        assert_eq!(destination(None).ok(), Some(None));
        assert_eq!(destination(Some("  ")).ok(), Some(None));
        assert_eq!(
            destination(Some("/srv/restore/")).ok(),
            Some(Some("/srv/restore".to_owned()))
        );
        assert_eq!(destination(Some("/")).ok(), Some(Some("/".to_owned())));
        for bad in ["relative/dir", "/srv/../etc", "/srv/./x", "/a\0b"] {
            assert!(destination(Some(bad)).is_err(), "{bad:?} is refused");
        }
    }
}
