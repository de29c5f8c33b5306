//! A record's snapshot, browsed and checked: `GET /api/backup/records/:id/files?path=` lists one
//! of its directories through an agent. Checks: `POST /api/backup/records/:id/verify` checks one record's snapshot or archive,
//! `POST /api/storage-targets/:id/verify` a whole target's repository; `GET /api/verify/records`
//! lists the checks (`?taskId&backupRecordId&status`), `GET /api/verify/records/:id` shows one.

use super::Ctx;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::ops::fleet::{Needs, choose_for_target};
use crate::ops::runs::{Purpose, StoredCopy, stored_copy};
use crate::ops::verifies::{Check, What, output, start};
use crate::store::storage_targets;
use crate::store::verifies;
use stowage_shared::ErrorCode;
use stowage_shared::api::{Role, VerifyRequest};
use stowage_shared::status::RunStatus;
use worker::Response;

/// How much of a target's data a check of the whole repository reads unless told.
const TARGET_READ_PERCENT: u8 = 10;

async fn answer(db: &worker::D1Database, id: i64) -> Result<Response, ApiError> {
    let row = verifies::get(db, id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::VerifyRecordNotFound,
            format!("verification record {id} does not exist"),
        )
    })?;
    http::created(&output(&row))
}

/// `POST /api/backup/records/:id/verify` `{storageTargetId?, readDataPercent? (100), nodeId?}`.
pub async fn record(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let record_id = ctx.id()?;
    let body: VerifyRequest =
        http::read_optional_json(&mut ctx.req, config.max_json_body, ErrorCode::InvalidInput)
            .await?;
    let sealer = config.sealer()?;
    let StoredCopy { record, copy, .. } = stored_copy(
        &db,
        &sealer,
        record_id,
        body.storage_target_id,
        Purpose::Restore,
    )
    .await?;
    let target = storage_targets::get(&db, copy.target_id)
        .await?
        .ok_or_else(|| crate::ops::targets::not_found(copy.target_id))?;
    let id = start(
        &db,
        &config,
        &sealer,
        &Check {
            target: &target,
            what: if copy.snapshot_id.is_empty() {
                What::Archive(&record, &copy)
            } else {
                What::Snapshot(&record, &copy.snapshot_id)
            },
            read_data_percent: body.read_data_percent.unwrap_or(100),
            // The node that wrote the snapshot reaches the target (a local disk is only its).
            node: body.node_id.or(Some(record.node_id)),
            triggered_by: &principal.user.username,
        },
        ctx.now,
    )
    .await?;
    ctx.audit_success(
        &db,
        &principal,
        "backup_record.verify",
        ("backup_record", record_id),
    )
    .await?;
    answer(&db, id).await
}

/// `POST /api/storage-targets/:id/verify` `{readDataPercent? (10), nodeId?}` (admin).
pub async fn target(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Admin).await?;
    let id = ctx.id()?;
    let body: VerifyRequest =
        http::read_optional_json(&mut ctx.req, config.max_json_body, ErrorCode::InvalidInput)
            .await?;
    if body.storage_target_id.is_some_and(|t| t != id) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "storageTargetId does not apply here: the target is the one in the path",
        ));
    }
    let sealer = config.sealer()?;
    let target = crate::ops::targets::find(&db, id).await?;
    let verify_id = start(
        &db,
        &config,
        &sealer,
        &Check {
            target: &target,
            what: What::Repository,
            read_data_percent: body.read_data_percent.unwrap_or(TARGET_READ_PERCENT),
            node: body.node_id,
            triggered_by: &principal.user.username,
        },
        ctx.now,
    )
    .await?;
    ctx.audit_success(
        &db,
        &principal,
        "storage_target.verify",
        ("storage_target", id),
    )
    .await?;
    answer(&db, verify_id).await
}

fn id_param(ctx: &Ctx<'_>, name: &str) -> Result<i64, ApiError> {
    match ctx.query(name)? {
        Some(raw) => raw.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("{name} must be a numeric id"),
            )
        }),
        None => Ok(0),
    }
}

/// `GET /api/verify/records[?taskId&backupRecordId&status]`, newest first.
pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let task = id_param(&ctx, "taskId")?;
    let record = id_param(&ctx, "backupRecordId")?;
    let status = match ctx.query("status")? {
        Some(raw) => Some(
            RunStatus::parse(&raw)
                .filter(|s| *s != RunStatus::Partial)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidInput,
                        "status must be running, success or failed",
                    )
                })?,
        ),
        None => None,
    };
    let rows = verifies::list(&db, task, record, status.map(RunStatus::as_str), 200).await?;
    http::ok(&rows.iter().map(output).collect::<Vec<_>>())
}

/// `GET /api/verify/records/:id`.
pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let id = ctx.id()?;
    let row = verifies::get(&db, id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::VerifyRecordNotFound,
            format!("verification record {id} does not exist"),
        )
    })?;
    http::ok(&output(&row))
}

/// Errors of a snapshot listing the caller can act on keep their code.
const LIST_ERRORS: crate::ops::commands::ErrorPolicy = crate::ops::commands::ErrorPolicy {
    passes: &[ErrorCode::NodeFsNotFound],
    fallback: ErrorCode::NodeFsReadError,
};

/// `GET /api/backup/records/:id/files?path=/dir[&storageTargetId=N]` (operator: the repository's
/// password goes to an agent): one directory of a repository record's snapshot, directories first.
pub async fn files(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Operator).await?;
    let record_id = ctx.id()?;
    let path =
        stowage_shared::validate::absolute_path(ctx.query("path")?.as_deref().unwrap_or("/"))
            .map_err(|e| {
                ApiError::new(ErrorCode::NodeFsPathInvalid, format!("path {}", e.reason))
            })?;
    let requested = match ctx.query("storageTargetId")? {
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "storageTargetId must be a numeric id",
            )
        })?),
        None => None,
    };
    let sealer = config.sealer()?;
    let StoredCopy {
        record,
        copy,
        target,
    } = stored_copy(&db, &sealer, record_id, requested, Purpose::Restore).await?;
    let snapshot = crate::ops::runs::snapshot_of(&db, &sealer, &copy)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BackupRecordNotBrowsable,
                format!("record {record_id} is an archive, one file: download or restore it"),
            )
        })?;
    let node = choose_for_target(
        &db,
        &config,
        ctx.now,
        Some(record.node_id),
        copy.target_id,
        Needs::storage(target.kind()),
    )
    .await?;
    let spec = stowage_shared::protocol::CommandSpec::ListSnapshot {
        source: stowage_shared::protocol::StoredObject {
            target_id: copy.target_id,
            storage_type: target.kind(),
            config: target.to_json(),
            path: copy.path.clone(),
            snapshot: Some(snapshot),
        },
        path,
    };
    let answer = crate::ops::commands::call(
        &db,
        &config.links,
        &sealer,
        node,
        &spec,
        config.timings.rpc_wait,
        ctx.now,
        LIST_ERRORS,
    )
    .await?;
    match answer {
        stowage_shared::protocol::CommandReport::ListSnapshot(listing) => http::ok(&listing),
        other => Err(crate::ops::commands::unexpected(&other)),
    }
}
