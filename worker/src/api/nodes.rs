//! `/api/nodes`: machines with an agent. Tokens are shown once (create, rotate) and stored hashed.

use super::{Caller, Ctx};
use crate::auth::{self, Principal};
use crate::config::{AppState, Config};
use crate::error::ApiError;
use crate::http;
use crate::store::audit::{self, Outcome};
use crate::store::commands;
use crate::store::nodes::{self, NodeRow};
use stowage_shared::api::{
    CommandError, CommandSpec, Deleted, FsListing, NodeOutput, NodeRequest, NodeStatus,
    NodeWithToken, Role,
};
use stowage_shared::commands::CommandStatus;
use stowage_shared::nodes::{NodeName, effective_status};
use stowage_shared::time::{self, Timestamp};
use stowage_shared::{ErrorCode, validate};
use worker::{D1Database, Response};

pub fn output(row: &NodeRow, config: &Config, now: Timestamp) -> NodeOutput {
    let last_seen = row.last_seen_at.as_deref().and_then(time::parse);
    NodeOutput {
        id: row.id,
        name: row.name.clone(),
        status: effective_status(
            row.status == "online",
            last_seen,
            now,
            config.timings.offline_after,
        ),
        hostname: row.hostname.clone(),
        ip_address: row.ip_address.clone(),
        os: row.os.clone(),
        arch: row.arch.clone(),
        agent_version: row.agent_version.clone(),
        last_seen_at: row.last_seen_at.clone(),
        // Written only from a parsed heartbeat; an unreadable value shows as "nothing reported".
        capabilities: serde_json::from_str(&row.capabilities).unwrap_or_default(),
        queue_depth: u32::try_from(row.queue_depth).unwrap_or(u32::MAX),
        created_at: row.created_at.clone(),
    }
}

async fn signed_in(ctx: &Ctx<'_>, needed: Role) -> Result<(AppState, Principal), ApiError> {
    let state = ctx.state()?;
    let principal = auth::authenticate(&state.db, &state.config, &ctx.req, ctx.now).await?;
    principal.require(needed)?;
    Ok((state, principal))
}

async fn find(db: &D1Database, id: i64) -> Result<NodeRow, ApiError> {
    nodes::get(db, id).await?.ok_or_else(|| not_found(id))
}

async fn read_name(ctx: &mut Ctx<'_>, config: &Config) -> Result<NodeName, ApiError> {
    let body: NodeRequest =
        http::read_json(&mut ctx.req, config.max_json_body, ErrorCode::NodeInvalid).await?;
    NodeName::parse(&body.name).map_err(|e| ApiError::new(ErrorCode::NodeInvalid, e.to_string()))
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(ErrorCode::NodeNotFound, format!("node {id} does not exist"))
}

/// Records a successful admin action on node `id`.
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
        &caller.by(principal, &now, action, ("node", id), Outcome::Success, ""),
    )
    .await
}

fn duplicate(name: &NodeName) -> ApiError {
    ApiError::new(
        ErrorCode::NodeDuplicateName,
        format!("a node named {:?} already exists", name.as_str()),
    )
}

pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = signed_in(&ctx, Role::Viewer).await?;
    let rows = nodes::list(&db).await?;
    let out: Vec<NodeOutput> = rows.iter().map(|r| output(r, &config, ctx.now)).collect();
    http::ok(&out)
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = signed_in(&ctx, Role::Viewer).await?;
    let row = find(&db, ctx.id()?).await?;
    http::ok(&output(&row, &config, ctx.now))
}

pub async fn create(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = signed_in(&ctx, Role::Admin).await?;
    let name = read_name(&mut ctx, &config).await?;
    let token = auth::new_node_token()?;
    let now = time::format(ctx.now);
    let id = nodes::create(
        &db,
        name.as_str(),
        &auth::node_token_hash(token.expose()),
        &now,
    )
    .await?
    .ok_or_else(|| duplicate(&name))?;
    audited(&ctx, &db, &principal, "node.create", id).await?;
    let row = find(&db, id).await?;
    http::created(&NodeWithToken {
        node: output(&row, &config, ctx.now),
        token,
    })
}

pub async fn update(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = signed_in(&ctx, Role::Admin).await?;
    let id = ctx.id()?;
    let name = read_name(&mut ctx, &config).await?;
    find(&db, id).await?;
    if nodes::name_taken(&db, name.as_str(), id).await? {
        return Err(duplicate(&name));
    }
    let now = time::format(ctx.now);
    if !nodes::rename(&db, id, name.as_str(), &now).await? {
        // Taken between the check and the update, or deleted meanwhile.
        find(&db, id).await?;
        return Err(duplicate(&name));
    }
    audited(&ctx, &db, &principal, "node.update", id).await?;
    http::ok(&output(&find(&db, id).await?, &config, ctx.now))
}

pub async fn delete(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, principal) = signed_in(&ctx, Role::Admin).await?;
    let id = ctx.id()?;
    // Backup tasks arrive with their own table; deleting a node they use will answer
    // NODE_HAS_TASKS here, before anything is removed.
    if !nodes::delete(&db, id).await? {
        return Err(not_found(id));
    }
    audited(&ctx, &db, &principal, "node.delete", id).await?;
    http::ok(&Deleted { deleted: true })
}

pub async fn rotate_token(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = signed_in(&ctx, Role::Admin).await?;
    let id = ctx.id()?;
    let token = auth::new_node_token()?;
    let now = time::format(ctx.now);
    if !nodes::set_token_hash(&db, id, &auth::node_token_hash(token.expose()), &now).await? {
        return Err(not_found(id));
    }
    audited(&ctx, &db, &principal, "node.rotate_token", id).await?;
    http::ok(&NodeWithToken {
        node: output(&find(&db, id).await?, &config, ctx.now),
        token,
    })
}

/// Lists a directory on the node through its agent: enqueue `list_dir`, then wait a bounded time
/// for the result.
pub async fn fs_list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = signed_in(&ctx, Role::Operator).await?;
    let id = ctx.id()?;
    let path = validate::absolute_path(ctx.query("path")?.as_deref().unwrap_or("/"))
        .map_err(|e| ApiError::new(ErrorCode::NodeFsPathInvalid, e.to_string()))?;
    let row = find(&db, id).await?;
    if output(&row, &config, ctx.now).status == NodeStatus::Offline {
        return Err(ApiError::new(
            ErrorCode::NodeOffline,
            format!(
                "node {:?} is offline; start its agent and try again",
                row.name
            ),
        ));
    }
    let spec = CommandSpec::ListDir { path };
    let spec_json =
        serde_json::to_string(&spec).map_err(|e| ApiError::internal("encode command", e))?;
    let command_id =
        commands::enqueue(&db, id, spec.kind(), &spec_json, &time::format(ctx.now)).await?;
    let listing: FsListing = wait_for_result(&db, command_id, config.timings.rpc_wait).await?;
    http::ok(&listing)
}

/// Polls the command row until it finishes or `wait` runs out. On timeout a command no agent has
/// claimed is given up, so no agent works on an answer nobody will read.
async fn wait_for_result<T: serde::de::DeserializeOwned>(
    db: &D1Database,
    command_id: i64,
    wait: chrono::Duration,
) -> Result<T, ApiError> {
    const STEP_MS: i64 = 200;
    let timeout = || {
        ApiError::new(
            ErrorCode::AgentCommandTimeout,
            format!("the agent did not answer within {} s", wait.num_seconds()),
        )
    };
    let mut waited_ms = 0;
    loop {
        worker::Delay::from(std::time::Duration::from_millis(STEP_MS as u64)).await;
        waited_ms += STEP_MS;
        let row = commands::get(db, command_id)
            .await?
            .ok_or_else(|| ApiError::internal("wait for command", "command row vanished"))?;
        match CommandStatus::parse(&row.status) {
            Some(CommandStatus::Succeeded) => {
                let result = row.result.unwrap_or_default();
                return serde_json::from_str(&result).map_err(|e| {
                    ApiError::new(
                        ErrorCode::AgentResultInvalid,
                        format!("the agent's answer was unreadable: {e}"),
                    )
                });
            }
            Some(CommandStatus::Failed) => {
                let error = CommandError {
                    code: row
                        .error_code
                        .as_deref()
                        .and_then(ErrorCode::from_code)
                        .unwrap_or(ErrorCode::NodeFsReadError),
                    message: row.error_message.unwrap_or_default(),
                };
                return Err(agent_error(error));
            }
            Some(CommandStatus::Expired) => return Err(timeout()),
            _ if waited_ms >= wait.num_milliseconds() => {
                commands::abandon(db, command_id, &time::format(crate::now())).await?;
                return Err(timeout());
            }
            _ => {}
        }
    }
}

/// An error the agent reported, answered with its code when it is one a caller can act on.
fn agent_error(error: CommandError) -> ApiError {
    let code = match error.code {
        c @ (ErrorCode::NodeFsNotFound
        | ErrorCode::NodeFsNotADirectory
        | ErrorCode::NodeFsPermissionDenied
        | ErrorCode::NodeFsPathInvalid
        | ErrorCode::NodeFsReadError) => c,
        _ => ErrorCode::NodeFsReadError,
    };
    ApiError::new(code, error.message)
}
