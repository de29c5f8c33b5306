//! `/api/nodes`: machines with an agent. Tokens are shown once (create, rotate) and stored hashed.

use super::{Ctx, rpc};
use crate::auth;
use crate::config::{AppState, Config};
use crate::error::ApiError;
use crate::http;
use crate::store::nodes::{self, NodeRow};
use stowage_shared::api::{
    Capabilities, Deleted, FsListing, NodeOutput, NodeRequest, NodeStatus, NodeWithToken, Role,
};
use stowage_shared::nodes::{NodeName, effective_status};
use stowage_shared::protocol::CommandSpec;
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

/// What a piece of work needs of the node that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// The `rclone` binary (rclone and Google Drive targets, rclone's backend list).
    Rclone,
    /// One program of each group (database dump programs and clients), as the agent's
    /// heartbeat reports them.
    Tools(stowage_shared::databases::ToolGroups),
}

impl Needs {
    pub fn storage(kind: stowage_shared::storage::StorageType) -> Self {
        if kind.needs_rclone() {
            Needs::Rclone
        } else {
            Needs::Nothing
        }
    }

    fn met_by(self, caps: &Capabilities) -> bool {
        match self {
            Needs::Nothing => true,
            Needs::Rclone => caps.rclone.is_some(),
            Needs::Tools(groups) => groups
                .iter()
                .all(|names| names.iter().any(|n| caps.tools.contains_key(*n))),
        }
    }

    /// What is missing on `node` (or, without one, what is needed), for a message.
    fn describe(self, caps: Option<&Capabilities>) -> String {
        match self {
            Needs::Nothing => String::new(),
            Needs::Rclone => "rclone".to_owned(),
            Needs::Tools(groups) => groups
                .iter()
                .filter(|names| {
                    caps.is_none_or(|c| !names.iter().any(|t| c.tools.contains_key(*t)))
                })
                .map(|names| names.join(" or "))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn missing(self, name: &str, caps: &Capabilities) -> ApiError {
        ApiError::new(
            ErrorCode::NodeMissingTool,
            match self {
                Needs::Rclone => format!(
                    "node {name:?} has no rclone, which this needs; install rclone there (or point its agent at one with --rclone) or choose another node"
                ),
                _ => format!(
                    "node {name:?} has no {}, which this needs; install it there (the agent reports its tools at start) or choose another node",
                    self.describe(Some(caps))
                ),
            },
        )
    }
}

/// The node that runs a piece of work the caller placed: the one asked for, which must exist, be
/// online and have what the work needs. Work that carries credentials never goes to a node the
/// caller did not name ([`choose_for_target`] finds the nodes that hold a target's already), so
/// without one this is `NODE_REQUIRED`.
pub async fn choose_online(
    db: &D1Database,
    config: &Config,
    now: Timestamp,
    requested: Option<i64>,
    needs: Needs,
) -> Result<i64, ApiError> {
    let Some(id) = requested else {
        return Err(ApiError::new(
            ErrorCode::NodeRequired,
            "name the node to run this on (nodeId): it receives the credentials this work carries",
        ));
    };
    {
        let node = output(&find(db, id).await?, config, now);
        if node.status == NodeStatus::Offline {
            return Err(ApiError::new(
                ErrorCode::NodeOffline,
                format!(
                    "node {:?} is offline; start its agent and try again",
                    node.name
                ),
            ));
        }
        if !needs.met_by(&node.capabilities) {
            return Err(needs.missing(&node.name, &node.capabilities));
        }
        Ok(id)
    }
}

/// The node that runs work on a stored target for a caller who named none: an online node whose
/// own tasks write to the target (so it holds the target's credentials already), heard from
/// last. A target no task uses has no such node: `NODE_REQUIRED`.
pub async fn choose_for_target(
    db: &D1Database,
    config: &Config,
    now: Timestamp,
    requested: Option<i64>,
    target_id: i64,
    needs: Needs,
) -> Result<i64, ApiError> {
    if requested.is_some() {
        return choose_online(db, config, now, requested, needs).await;
    }
    let users = crate::store::tasks::nodes_using_target(db, target_id).await?;
    if users.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NodeRequired,
            "no backup task writes to this target yet, so no node holds its credentials: name the node to run this on (nodeId)",
        ));
    }
    nodes::list(db)
        .await?
        .iter()
        .filter(|row| users.contains(&row.id))
        .map(|row| output(row, config, now))
        .filter(|n| n.status == NodeStatus::Online && needs.met_by(&n.capabilities))
        .max_by(|a, b| a.last_seen_at.cmp(&b.last_seen_at))
        .map(|n| n.id)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NodePoolEmpty,
                format!(
                    "none of the nodes whose tasks use this target is online{}; start one of their agents, or name another node (nodeId)",
                    match needs {
                        Needs::Nothing => String::new(),
                        _ => format!(" with {}", needs.describe(None)),
                    }
                ),
            )
        })
}

/// Refuses work for a node whose agent reported (in its last heartbeat) that it lacks what the
/// work needs, whether the node is online now or not.
pub async fn require_tools(db: &D1Database, id: i64, needs: Needs) -> Result<(), ApiError> {
    if needs == Needs::Nothing {
        return Ok(());
    }
    let row = find(db, id).await?;
    let caps: Capabilities = serde_json::from_str(&row.capabilities).unwrap_or_default();
    if needs.met_by(&caps) {
        Ok(())
    } else {
        Err(needs.missing(&row.name, &caps))
    }
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

fn duplicate(name: &NodeName) -> ApiError {
    ApiError::new(
        ErrorCode::NodeDuplicateName,
        format!("a node named {:?} already exists", name.as_str()),
    )
}

pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Viewer).await?;
    let rows = nodes::list(&db).await?;
    let out: Vec<NodeOutput> = rows.iter().map(|r| output(r, &config, ctx.now)).collect();
    http::ok(&out)
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Viewer).await?;
    let row = find(&db, ctx.id()?).await?;
    http::ok(&output(&row, &config, ctx.now))
}

pub async fn create(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Admin).await?;
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
    ctx.audit_success(&db, &principal, "node.create", ("node", id))
        .await?;
    let row = find(&db, id).await?;
    http::created(&NodeWithToken {
        node: output(&row, &config, ctx.now),
        token,
    })
}

pub async fn update(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Admin).await?;
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
    ctx.audit_success(&db, &principal, "node.update", ("node", id))
        .await?;
    http::ok(&output(&find(&db, id).await?, &config, ctx.now))
}

pub async fn delete(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, principal) = ctx.signed_in(Role::Admin).await?;
    let id = ctx.id()?;
    if !nodes::delete_unused(&db, id).await? {
        find(&db, id).await?;
        let tasks = crate::store::tasks::names_on_node(&db, id).await?;
        return Err(ApiError::new(
            ErrorCode::NodeHasTasks,
            format!(
                "backup tasks run on this node ({}); move them to another node or delete them first",
                tasks.join(", ")
            ),
        ));
    }
    ctx.audit_success(&db, &principal, "node.delete", ("node", id))
        .await?;
    http::ok(&Deleted { deleted: true })
}

pub async fn rotate_token(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Admin).await?;
    let id = ctx.id()?;
    let token = auth::new_node_token()?;
    let now = time::format(ctx.now);
    if !nodes::set_token_hash(&db, id, &auth::node_token_hash(token.expose()), &now).await? {
        return Err(not_found(id));
    }
    ctx.audit_success(&db, &principal, "node.rotate_token", ("node", id))
        .await?;
    http::ok(&NodeWithToken {
        node: output(&find(&db, id).await?, &config, ctx.now),
        token,
    })
}

/// Lists a directory on the node through its agent: enqueue `list_dir`, then wait a bounded time
/// for the result.
pub async fn fs_list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Operator).await?;
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
    let answer = rpc::call(
        &db,
        &config.sealer()?,
        id,
        &spec,
        config.timings.rpc_wait,
        ctx.now,
        FS_ERRORS,
    )
    .await?;
    let listing: FsListing = serde_json::from_value(answer).map_err(|e| {
        ApiError::new(
            ErrorCode::AgentResultInvalid,
            format!("the agent's listing was unreadable: {e}"),
        )
    })?;
    http::ok(&listing)
}

/// Errors of a listing the caller can act on keep their code.
const FS_ERRORS: rpc::ErrorPolicy = rpc::ErrorPolicy {
    passes: &[
        ErrorCode::NodeFsNotFound,
        ErrorCode::NodeFsNotADirectory,
        ErrorCode::NodeFsPermissionDenied,
        ErrorCode::NodeFsPathInvalid,
        ErrorCode::NodeFsReadError,
        ErrorCode::NodePathNotAllowed,
    ],
    fallback: ErrorCode::NodeFsReadError,
};
