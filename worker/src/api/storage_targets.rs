//! `/api/storage-targets`: where backups go. Configs are validated per type, sealed at rest and
//! masked in every response; an update that sends a mask back keeps the stored secret.

use super::Ctx;
use crate::config::{AppState, Config};
use crate::error::ApiError;
use crate::http;
use crate::ops::commands;
use crate::ops::fleet::{self as node_api, Needs};
use crate::ops::targets::{
    Plain, detail, find, insert, name_exists, not_found, open_config, rewrite, summary,
};
use crate::secrets::Sealer;
use crate::store::storage_targets::{self as targets};
use serde_json::Value;
use stowage_shared::api::{
    Deleted, Role, StorageTargetRequest, StorageTestResult, StorageUsageOutput, routes,
};
use stowage_shared::notifications::Message;
use stowage_shared::protocol::CommandReport;
use stowage_shared::protocol::CommandSpec;
use stowage_shared::recovery::RecoveryKitRequest;
use stowage_shared::status::BackupFormat;
use stowage_shared::storage::{StorageConfig, StorageType, drop_nulls};
use stowage_shared::time::Timestamp;
use stowage_shared::validate;
use stowage_shared::{ErrorCode, time};
use worker::{D1Database, Response};

/// The request's plain fields, checked.
struct Checked {
    node_id: Option<i64>,
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
    let name = validate::name(&body.name, 128).map_err(|e| invalid(&e.to_string()))?;
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
        node_id: body.node_id,
        name,
        kind,
        description: body.description.trim().to_owned(),
        enabled: body.enabled,
        quota_bytes: body.quota_bytes,
        config: drop_nulls(&body.config),
    })
}

impl Checked {
    fn plain(&self) -> Plain<'_> {
        Plain {
            name: &self.name,
            description: &self.description,
            enabled: self.enabled,
            quota_bytes: self.quota_bytes,
        }
    }
}

fn parse_config(kind: StorageType, json: &Value) -> Result<StorageConfig, ApiError> {
    StorageConfig::parse(kind, json)
        .map_err(|e| ApiError::new(ErrorCode::StorageTargetInvalidConfig, e.to_string()))
}

pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let rows = targets::list(&db).await?;
    http::ok(&rows.iter().map(summary).collect::<Vec<_>>())
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Viewer).await?;
    let row = find(&db, ctx.id()?).await?;
    http::ok(&detail(&config.sealer()?, &row)?)
}

pub async fn create(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let req = read_request(&mut ctx, &config).await?;
    let parsed = parse_config(req.kind, &req.config)?;
    let id = insert(&db, &sealer, ctx.now, req.plain(), &parsed).await?;
    ctx.audit_success(
        &db,
        &principal,
        "storage_target.create",
        ("storage_target", id),
    )
    .await?;
    http::created(&detail(&sealer, &find(&db, id).await?)?)
}

pub async fn update(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let id = ctx.id()?;
    let req = read_request(&mut ctx, &config).await?;
    let row = find(&db, id).await?;
    if req.kind != row.kind {
        return Err(ApiError::new(
            ErrorCode::StorageTargetTypeImmutable,
            format!(
                "the type of a storage target cannot change (it is {}); create a new target instead",
                row.kind.as_str()
            ),
        ));
    }
    let stored = open_config(&sealer, &row)?;
    let parsed = StorageConfig::parse_update(req.kind, &req.config, &stored)
        .map_err(|e| ApiError::new(ErrorCode::StorageTargetInvalidConfig, e.to_string()))?;
    if targets::name_taken(&db, &req.name, id).await? {
        return Err(name_exists(&req.name));
    }
    rewrite(&db, &sealer, ctx.now, &row, req.plain(), &parsed).await?;
    ctx.audit_success(
        &db,
        &principal,
        "storage_target.update",
        ("storage_target", row.id),
    )
    .await?;
    http::ok(&detail(&sealer, &find(&db, row.id).await?)?)
}

pub async fn delete(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let id = ctx.id()?;
    let delete_backups = match ctx.query("deleteBackups")?.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "deleteBackups must be true or false",
            ));
        }
    };
    let target = find(&db, id).await?;
    let holding = crate::store::tasks::names_using_target(&db, id).await?;
    if holding.is_empty() {
        let rows = crate::store::records::with_copies_on(&db, id).await?;
        // Left in place, a repository's backups can only be read with its password, which
        // lives only in this row: it must have been handed out in a recovery kit first.
        let unreadable = || {
            target.repo_password_sealed.is_some()
                && target.recovery_kit_at.is_none()
                && rows
                    .iter()
                    .any(|r| crate::ops::runs::format(r) == BackupFormat::Repository)
        };
        match (rows.is_empty(), delete_backups) {
            (true, _) => {}
            (false, Some(false)) if unreadable() => {
                return Err(ApiError::new(
                    ErrorCode::StorageRecoveryKitRequired,
                    format!(
                        "this target's restic repository holds backups, and its password exists only in Stowage: save its recovery kit first (POST {}), or delete the backups with ?deleteBackups=true",
                        routes::storage_target_recovery_kit(id)
                    ),
                ));
            }
            (false, Some(false)) => {}
            (false, None) => {
                return Err(ApiError::new(
                    ErrorCode::StorageTargetHasBackups,
                    format!(
                        "{} backup(s) are stored on this target; say what happens to them: ?deleteBackups=true removes them from the target first, ?deleteBackups=false leaves them there (Stowage can no longer reach them; a repository's need its recovery kit saved first)",
                        rows.len()
                    ),
                ));
            }
            (false, Some(true)) => {
                let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                let copies: Vec<_> = crate::store::records::targets_of(&db, &ids)
                    .await?
                    .into_iter()
                    .filter(|t| t.target_id == id)
                    .collect();
                crate::ops::runs::remove_objects(&db, &config, ctx.now, &rows, &copies).await?;
                crate::store::records::forget_target(&db, id, &time::format(ctx.now)).await?;
            }
        }
    }
    if !targets::delete_unused(&db, id).await? {
        find(&db, id).await?;
        let tasks = crate::store::tasks::names_using_target(&db, id).await?;
        return Err(ApiError::new(
            ErrorCode::StorageTargetInUse,
            format!(
                "backup tasks write to this target ({}); remove it from them first",
                tasks.join(", ")
            ),
        ));
    }
    ctx.audit_success(
        &db,
        &principal,
        "storage_target.delete",
        ("storage_target", id),
    )
    .await?;
    http::ok(&Deleted { deleted: true })
}

pub async fn star(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, principal) = ctx.signed_in(Role::Operator).await?;
    let id = ctx.id()?;
    if !targets::toggle_star(&db, id, &time::format(ctx.now)).await? {
        return Err(not_found(id));
    }
    ctx.audit_success(
        &db,
        &principal,
        "storage_target.star",
        ("storage_target", id),
    )
    .await?;
    http::ok(&summary(&find(&db, id).await?))
}

/// Errors of a connection test the caller can act on keep their code.
const TEST_ERRORS: commands::ErrorPolicy = commands::ErrorPolicy {
    passes: &[
        ErrorCode::StorageTargetTestFailed,
        ErrorCode::StorageTargetInvalidConfig,
    ],
    fallback: ErrorCode::StorageTargetTestFailed,
};

/// Runs the probe on a node's agent. Failure messages are the backend's, scrubbed of the
/// config's secrets (the agent scrubs too).
async fn run_test(
    db: &D1Database,
    config: &Config,
    sealer: &Sealer,
    now: Timestamp,
    (node, saved): (Option<i64>, Option<i64>),
    target: &StorageConfig,
) -> Result<StorageTestResult, ApiError> {
    let needs = Needs::storage(target.kind());
    let node_id = match saved {
        Some(target_id) => {
            node_api::choose_for_target(db, config, now, node, target_id, needs).await?
        }
        None => node_api::choose_online(db, config, now, node, needs).await?,
    };
    let spec = CommandSpec::StorageTest {
        storage_type: target.kind(),
        config: target.to_json(),
    };
    match commands::call(
        db,
        &config.links,
        sealer,
        node_id,
        &spec,
        config.timings.rpc_wait,
        now,
        TEST_ERRORS,
    )
    .await
    {
        Ok(CommandReport::StorageTest(probe)) => Ok(StorageTestResult {
            success: true,
            message: "connected: a probe object was written, read back, listed and deleted"
                .to_owned(),
            latency_ms: probe.latency_ms,
            node_id,
        }),
        Ok(other) => Err(commands::unexpected(&other)),
        Err(ApiError::Request { code, message }) => Err(ApiError::Request {
            code,
            message: target.scrub(&message),
        }),
        Err(other) => Err(other),
    }
}

/// The optional `?nodeId=` of the routes that run on an agent.
pub(crate) fn node_param(ctx: &Ctx<'_>) -> Result<Option<i64>, ApiError> {
    ctx.query("nodeId")?
        .map(|raw| {
            raw.parse::<i64>().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidInput,
                    "nodeId must be a node's numeric id",
                )
            })
        })
        .transpose()
}

/// `GET /api/storage-targets/:id/usage[?nodeId=N]`: objects and bytes under the target's root,
/// measured by an agent, and the device's or account's space where the backend reports it.
pub async fn usage(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Viewer).await?;
    let id = ctx.id()?;
    let node = node_param(&ctx)?;
    let row = find(&db, id).await?;
    if principal.require(Role::Operator).is_err() {
        // A viewer reads the last measurement; measuring sends the credentials to an agent.
        let kept = targets::last_usage(&db, id).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::StorageTargetUsageUnmeasured,
                "this target's usage was never measured; an operator can measure it",
            )
        })?;
        return http::ok(&StorageUsageOutput {
            target_id: id,
            target_name: row.name,
            usage: serde_json::from_str(&kept.usage)
                .map_err(|e| ApiError::internal("kept usage", e))?,
            node_id: kept.node_id,
            measured_at: kept.measured_at,
        });
    }
    let sealer = config.sealer()?;
    let target = open_config(&sealer, &row)?;
    let node_id = node_api::choose_for_target(
        &db,
        &config,
        ctx.now,
        node,
        id,
        Needs::storage(target.kind()),
    )
    .await?;
    let spec = CommandSpec::StorageUsage {
        storage_type: target.kind(),
        config: target.to_json(),
    };
    let answer = commands::call(
        &db,
        &config.links,
        &sealer,
        node_id,
        &spec,
        config.timings.rpc_wait,
        ctx.now,
        TEST_ERRORS,
    )
    .await
    .map_err(|e| match e {
        ApiError::Request { code, message } => ApiError::Request {
            code,
            message: target.scrub(&message),
        },
        other => other,
    })?;
    let usage = match answer {
        CommandReport::StorageUsage(usage) => usage,
        other => return Err(commands::unexpected(&other)),
    };
    let now = time::format(ctx.now);
    let text = serde_json::to_string(&usage).map_err(|e| ApiError::internal("usage", e))?;
    targets::keep_usage(&db, id, node_id, &text, &now).await?;
    http::ok(&StorageUsageOutput {
        target_id: id,
        target_name: row.name,
        usage,
        node_id,
        measured_at: now,
    })
}

/// `POST /api/storage-targets/test`: tests a config before it is saved.
pub async fn test_pending(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let req = read_request(&mut ctx, &config).await?;
    let target = parse_config(req.kind, &req.config)?;
    let result = run_test(&db, &config, &sealer, ctx.now, (req.node_id, None), &target).await?;
    http::ok(&result)
}

/// `POST /api/storage-targets/:id/test[?nodeId=N]`: tests a saved target and records the outcome.
pub async fn test_saved(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let id = ctx.id()?;
    let node = node_param(&ctx)?;
    let row = find(&db, id).await?;
    let target = open_config(&sealer, &row)?;
    let outcome = run_test(&db, &config, &sealer, ctx.now, (node, Some(id)), &target).await;
    let now = time::format(ctx.now);
    match &outcome {
        Ok(result) => targets::record_test(&db, id, true, &result.message, &now).await?,
        Err(ApiError::Request {
            code: ErrorCode::StorageTargetTestFailed | ErrorCode::StorageTargetInvalidConfig,
            message,
        }) => {
            targets::record_test(&db, id, false, message, &now).await?;
            let state = AppState { db, config };
            let settings = crate::store::settings::load(&state.db).await?;
            let event = Message::storage_test_failed(
                &settings.site_name,
                &settings.site_url,
                id,
                &row.name,
                message,
                &now,
            );
            crate::notify::emit(&state, &event, &format!("storage_test:{id}:{now}"), ctx.now)
                .await?;
            ctx.notify_soon();
            return http::ok(&outcome?);
        }
        // No node, or no answer: the target itself was not tested.
        Err(_) => {}
    }
    http::ok(&outcome?)
}

/// `POST /api/storage-targets/:id/recovery-kit {currentPassword}` (admin): the repository's
/// location, password and the restic commands to list and restore without Stowage. POST, not
/// GET: the current password rides in the body (never a URL), and the answer is never cached.
/// The password check is throttled like a sign-in; every kit handed out is audited.
pub async fn recovery_kit(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Admin).await?;
    let id = ctx.id()?;
    let body: RecoveryKitRequest =
        http::read_json(&mut ctx.req, config.max_json_body, ErrorCode::InvalidInput).await?;
    let caller = super::Caller::of(&ctx);
    if !crate::ops::signin::confirm_password(
        &db,
        &config,
        &principal,
        &caller.ip,
        &body.current_password,
        ctx.now,
    )
    .await?
    {
        return Err(ApiError::new(
            ErrorCode::AuthWrongPassword,
            "the current password is not correct",
        ));
    }
    let row = find(&db, id).await?;
    if row.repo_password_sealed.is_none() {
        return Err(ApiError::new(
            ErrorCode::StorageRepositoryMissing,
            format!(
                "storage target {:?} holds no repository yet: the first run of a repository task that uses it creates one",
                row.name
            ),
        ));
    }
    let sealer = config.sealer()?;
    let password = crate::ops::targets::repository_password(&db, &sealer, &row).await?;
    let kit =
        stowage_shared::recovery::kit(row.id, &row.name, &open_config(&sealer, &row)?, password);
    targets::note_recovery_kit(&db, id, &time::format(ctx.now)).await?;
    ctx.audit_success(
        &db,
        &principal,
        "storage_target.recovery_kit",
        ("storage_target", id),
    )
    .await?;
    http::ok(&kit)
}

/// `POST /api/storage-targets/:id/prune[?nodeId=N]` (admin): prunes the target's repository now,
/// on the node named or one whose tasks use the target. Refused while a run or a restore uses
/// the repository, or a prune is under way (`409 STORAGE_REPOSITORY_BUSY`).
pub async fn prune(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Admin).await?;
    let id = ctx.id()?;
    let node = node_param(&ctx)?;
    let row = find(&db, id).await?;
    let sealer = config.sealer()?;
    let started = crate::ops::prune::start(&db, &config, &sealer, &row, node, ctx.now).await?;
    ctx.audit_success(
        &db,
        &principal,
        "storage_target.prune",
        ("storage_target", id),
    )
    .await?;
    http::accepted(&started)
}
