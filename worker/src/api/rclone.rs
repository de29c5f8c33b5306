//! `GET /api/storage-targets/rclone/backends`: the backends the fleet's rclone binaries have, as
//! rclone itself describes them. Each node reports its rclone version in its heartbeat; the list of
//! a version is asked from an online agent with that version once and kept, since it is compiled
//! into rclone and changes only with the version.
//!
//! An agent's answer is not trusted: only the backends and options of `shared::rclone`'s allow-list
//! are kept from it, so a lying agent can offer nothing a target may not use, and an operator's
//! `?refresh=true` asks again (from the online node heard from last) to replace a bad list. A
//! viewer reads only what is kept and never starts work on an agent.

use super::Ctx;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::ops::commands;
use crate::store::{nodes, rclone_backends};
use std::collections::BTreeMap;
use stowage_shared::api::{
    NodeOutput, NodeStatus, RcloneBackend, RcloneBackendOutput, RcloneBackendsOutput, RcloneNode,
    Role,
};
use stowage_shared::protocol::CommandReport;
use stowage_shared::protocol::CommandSpec;
use stowage_shared::rclone as allow;
use stowage_shared::{ErrorCode, time};
use worker::Response;

const ERRORS: commands::ErrorPolicy = commands::ErrorPolicy {
    passes: &[ErrorCode::NodeMissingTool],
    fallback: ErrorCode::NodeMissingTool,
};

pub async fn backends(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Viewer).await?;
    let may_ask = principal.require(Role::Operator).is_ok();
    let refresh = match ctx.query("refresh")?.as_deref() {
        None | Some("false") => false,
        Some("true") => {
            // Asking agents again is work on them: an operator's.
            principal.require(Role::Operator)?;
            true
        }
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "refresh must be true or false",
            ));
        }
    };
    let fleet: Vec<NodeOutput> = nodes::list(&db)
        .await?
        .iter()
        .map(|row| crate::ops::fleet::output(row, &config, ctx.now))
        .filter(|n| n.capabilities.rclone.is_some())
        .collect();
    let mut by_version: BTreeMap<String, Vec<&NodeOutput>> = BTreeMap::new();
    for node in &fleet {
        if let Some(version) = &node.capabilities.rclone {
            by_version.entry(version.clone()).or_default().push(node);
        }
    }
    let mut merged: BTreeMap<String, RcloneBackendOutput> = BTreeMap::new();
    let mut unavailable_versions = Vec::new();
    // Newest version first, so that a backend's description and options are the newest rclone's.
    for (version, holders) in by_version.iter().rev() {
        let asking = (may_ask, refresh);
        let Some(list) = version_backends(&db, &config, ctx.now, version, holders, asking).await?
        else {
            unavailable_versions.push(version.clone());
            continue;
        };
        for backend in list {
            let entry = merged
                .entry(backend.name.clone())
                .or_insert_with(|| RcloneBackendOutput {
                    backend,
                    node_ids: Vec::new(),
                });
            entry.node_ids.extend(holders.iter().map(|n| n.id));
        }
    }
    let mut backends: Vec<RcloneBackendOutput> = merged.into_values().collect();
    for b in &mut backends {
        b.node_ids.sort_unstable();
    }
    http::ok(&RcloneBackendsOutput {
        backends,
        nodes: fleet
            .iter()
            .map(|n| RcloneNode {
                id: n.id,
                name: n.name.clone(),
                rclone_version: n.capabilities.rclone.clone().unwrap_or_default(),
                online: n.status == NodeStatus::Online,
            })
            .collect(),
        unavailable_versions,
    })
}

/// One version's list: kept, or asked from the online node with it heard from last. `None` when
/// none of its nodes is online.
async fn version_backends(
    db: &worker::D1Database,
    config: &crate::config::Config,
    now: stowage_shared::time::Timestamp,
    version: &str,
    holders: &[&NodeOutput],
    (may_ask, refresh): (bool, bool),
) -> Result<Option<Vec<RcloneBackend>>, ApiError> {
    if !refresh && let Some(kept) = rclone_backends::get(db, version).await? {
        return serde_json::from_str(&kept)
            .map(Some)
            .map_err(|e| ApiError::internal("kept rclone backends", e));
    }
    if !may_ask {
        return Ok(None);
    }
    let Some(node) = holders
        .iter()
        .filter(|n| n.status == NodeStatus::Online)
        .max_by(|a, b| a.last_seen_at.cmp(&b.last_seen_at))
    else {
        return Ok(None);
    };
    let answer = commands::call(
        db,
        &config.links,
        &config.sealer()?,
        node.id,
        &CommandSpec::RcloneBackends,
        config.timings.rpc_wait,
        now,
        ERRORS,
    )
    .await?;
    let mut list = match answer {
        CommandReport::RcloneBackends(list) => list,
        other => return Err(commands::unexpected(&other)),
    };
    list.retain(|b| allow::backend_allowed(&b.name));
    for backend in &mut list {
        let name = backend.name.clone();
        backend
            .options
            .retain(|o| allow::option_allowed(&name, &o.name));
    }
    let text =
        serde_json::to_string(&list).map_err(|e| ApiError::internal("encode backends", e))?;
    rclone_backends::put(db, version, &text, &time::format(now)).await?;
    Ok(Some(list))
}
