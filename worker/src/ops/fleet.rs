//! The fleet: which node runs a piece of work, and whether it has the tools the work needs. A
//! node's status is judged here from its row, the same way for every caller.

use crate::config::Config;
use crate::error::ApiError;
use crate::store::nodes::{self, NodeRow};
use stowage_shared::ErrorCode;
use stowage_shared::api::{Capabilities, NodeOutput, NodeStatus};
use stowage_shared::nodes::effective_status;
use stowage_shared::time::{self, Timestamp};
use worker::D1Database;

/// A node's status now: as its row says (the node's object writes every change), unless the
/// row's `lastSeenAt` is older than the object could leave it for a live node (the object flushes
/// it at most once a minute), which proves the node silent even if no object said so.
pub fn status(row: &NodeRow, config: &Config, now: Timestamp) -> NodeStatus {
    let last_seen = row.last_seen_at.as_deref().and_then(time::parse);
    effective_status(
        row.status == NodeStatus::Online,
        last_seen,
        now,
        config.timings.offline_after + stowage_shared::link::last_seen_slack(),
    )
}

/// What the node's agent reported it can do in its last heartbeat.
pub fn capabilities(row: &NodeRow) -> Capabilities {
    // Written only from a parsed heartbeat; an unreadable value shows as "nothing reported".
    serde_json::from_str(&row.capabilities).unwrap_or_default()
}

/// A node as the API shows it.
pub fn output(row: &NodeRow, config: &Config, now: Timestamp) -> NodeOutput {
    NodeOutput {
        id: row.id,
        name: row.name.clone(),
        status: status(row, config, now),
        hostname: row.hostname.clone(),
        ip_address: row.ip_address.clone(),
        os: row.os.clone(),
        arch: row.arch.clone(),
        agent_version: row.agent_version.clone(),
        last_seen_at: row.last_seen_at.clone(),
        capabilities: capabilities(row),
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
        let row = find(db, id).await?;
        if status(&row, config, now) == NodeStatus::Offline {
            return Err(ApiError::new(
                ErrorCode::NodeOffline,
                format!(
                    "node {:?} is offline; start its agent and try again",
                    row.name
                ),
            ));
        }
        let caps = capabilities(&row);
        if !needs.met_by(&caps) {
            return Err(needs.missing(&row.name, &caps));
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
        .filter(|row| {
            status(row, config, now) == NodeStatus::Online && needs.met_by(&capabilities(row))
        })
        .max_by(|a, b| a.last_seen_at.cmp(&b.last_seen_at))
        .map(|row| row.id)
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
    let caps = capabilities(&row);
    if needs.met_by(&caps) {
        Ok(())
    } else {
        Err(needs.missing(&row.name, &caps))
    }
}

pub async fn find(db: &D1Database, id: i64) -> Result<NodeRow, ApiError> {
    nodes::get(db, id).await?.ok_or_else(|| not_found(id))
}

pub fn not_found(id: i64) -> ApiError {
    ApiError::new(ErrorCode::NodeNotFound, format!("node {id} does not exist"))
}

/// Queues the "node offline" or "node back online" notification for a change of status the
/// caller just wrote. `last_seen` names the occurrence, so noticing it twice sends once.
pub async fn announce(
    db: &D1Database,
    node_id: i64,
    name: &str,
    online: bool,
    last_seen: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    let settings = crate::store::settings::load(db).await?;
    let message = stowage_shared::notifications::Message::node(
        &settings.site_name,
        &settings.site_url,
        online,
        node_id,
        name,
        last_seen,
        &time::format(now),
    );
    let state = if online { "online" } else { "offline" };
    let key = format!("node:{node_id}:{state}:{last_seen}");
    crate::notify::emit_to(db, &message, &key, now).await
}

fn clip(text: &str) -> String {
    text.chars().take(256).collect()
}

/// Writes what a heartbeat says about the machine and marks the node online.
pub async fn record_heartbeat(
    db: &D1Database,
    node_id: i64,
    heartbeat: &stowage_shared::protocol::HeartbeatRequest,
    now: &str,
) -> Result<(), ApiError> {
    let capabilities = serde_json::to_string(&heartbeat.capabilities)
        .map_err(|e| ApiError::internal("encode capabilities", e))?;
    let row = nodes::Heartbeat {
        hostname: &clip(&heartbeat.hostname),
        ip_address: &clip(&heartbeat.ip_address),
        os: &clip(&heartbeat.os),
        arch: &clip(&heartbeat.arch),
        agent_version: &clip(&heartbeat.agent_version),
        capabilities: &capabilities,
    };
    Ok(nodes::heartbeat(db, node_id, &row, now).await?)
}

/// A digest of what a heartbeat says about the machine (not what it runs): the node's object
/// writes the row again only when this changes. Not stored anywhere lasting, so std's hasher
/// (stable within one build) is enough.
pub fn machine_digest(heartbeat: &stowage_shared::protocol::HeartbeatRequest) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        &heartbeat.hostname,
        &heartbeat.ip_address,
        &heartbeat.os,
        &heartbeat.arch,
        &heartbeat.agent_version,
    )
        .hash(&mut hasher);
    serde_json::to_string(&heartbeat.capabilities)
        .unwrap_or_default()
        .hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
