//! `GET /api/storage-targets/rclone/backends`: the backends the fleet's rclone binaries have, as
//! rclone itself describes them. Each node reports its rclone version in its heartbeat; the list of
//! a version is asked from an online agent with that version once and kept, since it is compiled
//! into rclone and changes only with the version.

use super::nodes as node_api;
use super::{Ctx, rpc};
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::store::{nodes, rclone_backends};
use std::collections::BTreeMap;
use stowage_shared::api::{
    CommandSpec, NodeOutput, NodeStatus, RcloneBackend, RcloneBackendOutput, RcloneBackendsOutput,
    RcloneNode, Role,
};
use stowage_shared::{ErrorCode, time};
use worker::Response;

const ERRORS: rpc::ErrorPolicy = rpc::ErrorPolicy {
    passes: &[ErrorCode::NodeMissingTool],
    fallback: ErrorCode::NodeMissingTool,
};

pub async fn backends(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Viewer).await?;
    let fleet: Vec<NodeOutput> = nodes::list(&db)
        .await?
        .iter()
        .map(|row| node_api::output(row, &config, ctx.now))
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
        let Some(list) = version_backends(&db, &config, ctx.now, version, holders).await? else {
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
) -> Result<Option<Vec<RcloneBackend>>, ApiError> {
    if let Some(kept) = rclone_backends::get(db, version).await? {
        return serde_json::from_str(&kept)
            .map(Some)
            .map_err(|e| ApiError::internal("kept rclone backends", e));
    }
    let Some(node) = holders
        .iter()
        .filter(|n| n.status == NodeStatus::Online)
        .max_by(|a, b| a.last_seen_at.cmp(&b.last_seen_at))
    else {
        return Ok(None);
    };
    let answer = rpc::call(
        db,
        &config.sealer()?,
        node.id,
        &CommandSpec::RcloneBackends,
        config.timings.rpc_wait,
        now,
        ERRORS,
    )
    .await?;
    let list: Vec<RcloneBackend> = serde_json::from_value(answer).map_err(|e| {
        ApiError::new(
            ErrorCode::AgentResultInvalid,
            format!("the agent's rclone backend list was unreadable: {e}"),
        )
    })?;
    let text =
        serde_json::to_string(&list).map_err(|e| ApiError::internal("encode backends", e))?;
    rclone_backends::put(db, version, &text, &time::format(now)).await?;
    Ok(Some(list))
}
