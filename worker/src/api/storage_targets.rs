//! `/api/storage-targets`: where backups go. Configs are validated per type, sealed at rest and
//! masked in every response; an update that sends a mask back keeps the stored secret.

use super::{Caller, Ctx};
use crate::auth::{self, Principal};
use crate::config::{AppState, Config};
use crate::error::ApiError;
use crate::http;
use crate::seal::Sealer;
use crate::store::audit::{self, Outcome};
use crate::store::storage_targets::{self as targets, Fields, TargetRow};
use serde_json::Value;
use stowage_shared::api::{
    Deleted, Role, StorageTargetDetail, StorageTargetRequest, StorageTargetSummary,
};
use stowage_shared::storage::{StorageConfig, StorageType, drop_nulls, keep_stored_secrets};
use stowage_shared::{ErrorCode, time};
use worker::{D1Database, Response};

fn identity(uid: &str) -> String {
    format!("storage_targets/{uid}")
}

fn summary(row: &TargetRow) -> StorageTargetSummary {
    StorageTargetSummary {
        id: row.id,
        name: row.name.clone(),
        kind: row.kind.clone(),
        description: row.description.clone(),
        enabled: row.enabled != 0,
        starred: row.starred != 0,
        config_version: row.config_version,
        quota_bytes: row.quota_bytes,
        last_tested_at: row.last_tested_at.clone(),
        last_test_status: row.last_test_status.clone(),
        last_test_message: row.last_test_message.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    }
}

/// Opens a stored config (the agent path will use this too).
pub fn open_config(sealer: &Sealer, row: &TargetRow) -> Result<StorageConfig, ApiError> {
    let kind = StorageType::parse(&row.kind)
        .ok_or_else(|| ApiError::internal("storage target type", row.kind.clone()))?;
    let plain = sealer.open(&identity(&row.uid), &row.config_sealed)?;
    let json: Value =
        serde_json::from_slice(&plain).map_err(|e| ApiError::internal("stored config", e))?;
    StorageConfig::parse(kind, &json).map_err(|e| ApiError::internal("stored config", e))
}

fn detail(sealer: &Sealer, row: &TargetRow) -> Result<StorageTargetDetail, ApiError> {
    let (config, masked_fields) = open_config(sealer, row)?.masked();
    Ok(StorageTargetDetail {
        summary: summary(row),
        config,
        masked_fields,
    })
}

async fn signed_in(ctx: &Ctx<'_>, needed: Role) -> Result<(AppState, Principal), ApiError> {
    let state = ctx.state()?;
    let principal = auth::authenticate(&state.db, &state.config, &ctx.req, ctx.now).await?;
    principal.require(needed)?;
    Ok((state, principal))
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::StorageTargetNotFound,
        format!("storage target {id} does not exist"),
    )
}

fn name_exists(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::StorageTargetNameExists,
        format!("a storage target named {name:?} already exists"),
    )
}

async fn find(db: &D1Database, id: i64) -> Result<TargetRow, ApiError> {
    targets::get(db, id).await?.ok_or_else(|| not_found(id))
}

async fn audited(
    ctx: &Ctx<'_>,
    db: &D1Database,
    principal: &Principal,
    action: &'static str,
    id: i64,
) -> Result<(), ApiError> {
    let now = time::format(ctx.now);
    let caller = Caller::of(ctx);
    audit::record(
        db,
        &caller.by(
            principal,
            &now,
            action,
            ("storage_target", id),
            Outcome::Success,
            "",
        ),
    )
    .await
}

/// The request's plain fields, checked.
struct Checked {
    name: String,
    kind: StorageType,
    description: String,
    enabled: bool,
    quota_bytes: i64,
    config: Value,
}

async fn read_request(ctx: &mut Ctx<'_>, config: &Config) -> Result<Checked, ApiError> {
    let body: StorageTargetRequest = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::StorageTargetInvalid,
    )
    .await?;
    let invalid = |m: &str| ApiError::new(ErrorCode::StorageTargetInvalid, m.to_owned());
    let name = body.name.trim().to_owned();
    let len = name.chars().count();
    if !(1..=128).contains(&len) || name.chars().any(char::is_control) {
        return Err(invalid(
            "name: must be 1 to 128 characters without control characters",
        ));
    }
    if body.description.chars().count() > 255 {
        return Err(invalid("description: must be at most 255 characters"));
    }
    if body.quota_bytes < 0 {
        return Err(invalid("quotaBytes: must be 0 (no quota) or more"));
    }
    let kind = StorageType::parse(&body.kind).ok_or_else(|| {
        let known: Vec<&str> = StorageType::ALL.iter().map(|t| t.as_str()).collect();
        ApiError::new(
            ErrorCode::StorageProviderUnsupported,
            format!(
                "type {:?} is not supported; use one of {}",
                body.kind,
                known.join(", ")
            ),
        )
    })?;
    Ok(Checked {
        name,
        kind,
        description: body.description.trim().to_owned(),
        enabled: body.enabled,
        quota_bytes: body.quota_bytes,
        config: drop_nulls(&body.config),
    })
}

fn parse_config(kind: StorageType, json: &Value) -> Result<StorageConfig, ApiError> {
    StorageConfig::parse(kind, json)
        .map_err(|e| ApiError::new(ErrorCode::StorageTargetInvalidConfig, e.to_string()))
}

fn seal_config(sealer: &Sealer, uid: &str, config: &StorageConfig) -> Result<String, ApiError> {
    let plain = serde_json::to_vec(&config.to_json())
        .map_err(|e| ApiError::internal("encode config", e))?;
    sealer.seal(&identity(uid), &plain)
}

pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = signed_in(&ctx, Role::Viewer).await?;
    let rows = targets::list(&db).await?;
    http::ok(&rows.iter().map(summary).collect::<Vec<_>>())
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = signed_in(&ctx, Role::Viewer).await?;
    let row = find(&db, ctx.id()?).await?;
    http::ok(&detail(&config.sealer()?, &row)?)
}

pub async fn create(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = signed_in(&ctx, Role::Operator).await?;
    let sealer = config.sealer()?;
    let req = read_request(&mut ctx, &config).await?;
    let parsed = parse_config(req.kind, &req.config)?;
    let uid = auth::new_session_id()?;
    let sealed = seal_config(&sealer, &uid, &parsed)?;
    let fields = Fields {
        name: &req.name,
        description: &req.description,
        enabled: req.enabled,
        config_sealed: &sealed,
        quota_bytes: req.quota_bytes,
    };
    let now = time::format(ctx.now);
    let id = targets::create(&db, &uid, req.kind.as_str(), &fields, &now)
        .await?
        .ok_or_else(|| name_exists(&req.name))?;
    audited(&ctx, &db, &principal, "storage_target.create", id).await?;
    http::created(&detail(&sealer, &find(&db, id).await?)?)
}

pub async fn update(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = signed_in(&ctx, Role::Operator).await?;
    let sealer = config.sealer()?;
    let id = ctx.id()?;
    let req = read_request(&mut ctx, &config).await?;
    let row = find(&db, id).await?;
    if req.kind.as_str() != row.kind {
        return Err(ApiError::new(
            ErrorCode::StorageTargetTypeImmutable,
            format!(
                "the type of a storage target cannot change (it is {}); create a new target instead",
                row.kind
            ),
        ));
    }
    let stored = open_config(&sealer, &row)?;
    let parsed = parse_config(req.kind, &keep_stored_secrets(&req.config, &stored))?;
    if targets::name_taken(&db, &req.name, id).await? {
        return Err(name_exists(&req.name));
    }
    let sealed = seal_config(&sealer, &row.uid, &parsed)?;
    let fields = Fields {
        name: &req.name,
        description: &req.description,
        enabled: req.enabled,
        config_sealed: &sealed,
        quota_bytes: req.quota_bytes,
    };
    let now = time::format(ctx.now);
    if !targets::update(&db, id, &fields, parsed != stored, &now).await? {
        find(&db, id).await?;
        return Err(name_exists(&req.name));
    }
    audited(&ctx, &db, &principal, "storage_target.update", id).await?;
    http::ok(&detail(&sealer, &find(&db, id).await?)?)
}

pub async fn delete(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, principal) = signed_in(&ctx, Role::Operator).await?;
    let id = ctx.id()?;
    // Backup tasks arrive with their own table; a target they write to will answer
    // STORAGE_TARGET_IN_USE here, before anything is removed.
    if !targets::delete(&db, id).await? {
        return Err(not_found(id));
    }
    audited(&ctx, &db, &principal, "storage_target.delete", id).await?;
    http::ok(&Deleted { deleted: true })
}

pub async fn star(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, principal) = signed_in(&ctx, Role::Operator).await?;
    let id = ctx.id()?;
    if !targets::toggle_star(&db, id, &time::format(ctx.now)).await? {
        return Err(not_found(id));
    }
    audited(&ctx, &db, &principal, "storage_target.star", id).await?;
    http::ok(&summary(&find(&db, id).await?))
}
