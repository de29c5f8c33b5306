//! `/api/nodes`: machines with an agent. Tokens are shown once (create, rotate) and stored hashed.

use super::Ctx;
use crate::auth;
use crate::config::{AppState, Config};
use crate::error::ApiError;
use crate::http;
use crate::ops::commands;
use crate::ops::fleet::{find, not_found, output};
use crate::store::nodes::{self};
use stowage_shared::api::{
    Deleted, NodeOutput, NodeRequest, NodeStatus, NodeWithToken, Page, Role,
};
use stowage_shared::nodes::NodeName;
use stowage_shared::protocol::CommandReport;
use stowage_shared::protocol::CommandSpec;
use stowage_shared::time::{self};
use stowage_shared::{ErrorCode, validate};
use worker::Response;

async fn read_name(ctx: &mut Ctx<'_>, config: &Config) -> Result<NodeName, ApiError> {
    let body: NodeRequest =
        http::read_json(&mut ctx.req, config.max_json_body, ErrorCode::NodeInvalid).await?;
    NodeName::parse(&body.name).map_err(|e| ApiError::new(ErrorCode::NodeInvalid, e.to_string()))
}

fn duplicate(name: &NodeName) -> ApiError {
    ApiError::new(
        ErrorCode::NodeDuplicateName,
        format!("a node named {:?} already exists", name.as_str()),
    )
}

/// `GET /api/nodes`: every node by name, as BackupX answers; with `page`, `pageSize`, `status`
/// or `q`, one page of them (`{items, total, page, pageSize}`), which is what a console showing
/// a fleet of thousands asks for.
pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Viewer).await?;
    let status = match ctx.query("status")?.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(NodeStatus::parse(raw).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidInput, "status must be online or offline")
        })?),
    };
    let text = ctx.query("q")?.filter(|q| !q.trim().is_empty());
    let paged = ["page", "pageSize"]
        .iter()
        .any(|name| ctx.query(name).ok().flatten().is_some());
    if !paged && status.is_none() && text.is_none() {
        let rows = nodes::list(&db).await?;
        let out: Vec<NodeOutput> = rows.iter().map(|r| output(r, &config, ctx.now)).collect();
        return http::ok(&out);
    }
    let paging = ctx.paging(500, ErrorCode::InvalidInput)?;
    let filter = nodes::Filter {
        status,
        text: text.as_deref().map(str::trim),
    };
    let (rows, total) = nodes::page(&db, &filter, paging.limit(), paging.offset()).await?;
    http::ok(&Page {
        items: rows.iter().map(|r| output(r, &config, ctx.now)).collect(),
        total,
        page: paging.page,
        page_size: paging.page_size,
    })
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
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Admin).await?;
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
    config.links.close(id).await?;
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
    // A link opened with the old token goes with it.
    config.links.close(id).await?;
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
    let answer = commands::call(
        &db,
        &config.links,
        &config.sealer()?,
        id,
        &spec,
        config.timings.rpc_wait,
        ctx.now,
        FS_ERRORS,
    )
    .await?;
    let listing = match answer {
        CommandReport::ListDir(listing) => listing,
        other => return Err(commands::unexpected(&other)),
    };
    http::ok(&listing)
}

/// Errors of a listing the caller can act on keep their code.
const FS_ERRORS: commands::ErrorPolicy = commands::ErrorPolicy {
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
