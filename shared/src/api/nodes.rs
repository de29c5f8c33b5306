//! Nodes (the machines agents run on) and their file listings.

use crate::secret::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Online,
    Offline,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Online => "online",
            NodeStatus::Offline => "offline",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "online" => Some(NodeStatus::Online),
            "offline" => Some(NodeStatus::Offline),
            _ => None,
        }
    }
}

/// What an agent found on its machine, reported with every heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// `rclone version`, when rclone is installed.
    #[serde(default)]
    pub rclone: Option<String>,
    /// Database client tools found on PATH, with their versions (e.g. `pg_dump` → `15.19`).
    #[serde(default)]
    pub tools: std::collections::BTreeMap<String, String>,
    /// How many commands the agent runs at once.
    #[serde(default)]
    pub max_concurrent: u32,
}

/// A node (a machine with an agent) as the API shows it. The token is never part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeOutput {
    pub id: i64,
    pub name: String,
    pub status: NodeStatus,
    pub hostname: String,
    pub ip_address: String,
    pub os: String,
    pub arch: String,
    pub agent_version: String,
    pub last_seen_at: Option<String>,
    pub capabilities: Capabilities,
    /// Commands waiting for or being run by this node's agent.
    pub queue_depth: u32,
    pub created_at: String,
}

/// `POST /api/nodes` and `PUT /api/nodes/:id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRequest {
    pub name: String,
}

/// Returned once, at creation and at rotation: the plaintext token is not stored anywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeWithToken {
    pub node: NodeOutput,
    pub token: SecretString,
}

/// One entry of `GET /api/nodes/:id/fs/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsEntry {
    pub name: String,
    pub path: String,
    pub is_dir: bool,
    pub size: u64,
    pub modified_at: Option<String>,
}

/// A directory listing, directories first, then by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsListing {
    pub path: String,
    pub entries: Vec<FsEntry>,
    /// True when the directory holds more than [`FS_LIST_MAX_ENTRIES`] entries and only the first
    /// ones (in listing order) are returned.
    pub truncated: bool,
}

/// The most entries one listing returns, so that an answer always fits the Worker's body limit.
pub const FS_LIST_MAX_ENTRIES: usize = 2_000;
