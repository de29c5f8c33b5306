//! Storage targets, their usage, tests, rclone backends and Google Drive authorisation.

use super::yes;
use crate::status::TestStatus;
use serde::{Deserialize, Serialize};

/// Space on the device or account behind a target, where the backend reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskUsage {
    pub total: Option<u64>,
    pub used: Option<u64>,
    pub free: Option<u64>,
}

/// The most objects one usage measurement walks.
pub const USAGE_MAX_OBJECTS: u64 = 100_000;

/// `GET /api/storage-targets/:id/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageUsageOutput {
    pub target_id: i64,
    pub target_name: String,
    #[serde(flatten)]
    pub usage: MeasuredUsage,
    pub node_id: i64,
    /// When it was measured: now for an operator's request, earlier for a viewer's (who reads
    /// the last measurement and starts no work on an agent).
    #[serde(default)]
    pub measured_at: String,
}

/// One option of an rclone backend, as rclone describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RcloneOption {
    /// The option's key in a target's `options` (`host`, `pass`, …).
    pub name: String,
    /// The first line of rclone's help text.
    pub help: String,
    pub required: bool,
    /// rclone marks it a password: Stowage seals and masks it.
    pub secret: bool,
    /// rclone redacts it from its logs (host and user names, for example).
    pub sensitive: bool,
    /// rclone lists it under advanced options.
    pub advanced: bool,
    /// The default as rclone prints it (empty when none).
    pub default: String,
    /// Suggested values, where rclone offers some.
    pub examples: Vec<String>,
}

/// A storage backend of rclone, as reported by an agent's rclone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RcloneBackend {
    pub name: String,
    pub description: String,
    pub options: Vec<RcloneOption>,
}

/// A backend in `GET /api/storage-targets/rclone/backends`, with the nodes whose rclone has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RcloneBackendOutput {
    #[serde(flatten)]
    pub backend: RcloneBackend,
    pub node_ids: Vec<i64>,
}

/// A node that has rclone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RcloneNode {
    pub id: i64,
    pub name: String,
    pub rclone_version: String,
    pub online: bool,
}

/// `GET /api/storage-targets/rclone/backends`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RcloneBackendsOutput {
    pub backends: Vec<RcloneBackendOutput>,
    pub nodes: Vec<RcloneNode>,
    /// rclone versions whose lists could not be fetched now (no node with that version online).
    pub unavailable_versions: Vec<String>,
}

/// `POST /api/storage-targets/google-drive/auth-url`. Creates a target, or with `targetId`
/// reconnects an existing one (empty or masked client credentials keep the stored ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GoogleDriveAuthRequest {
    #[serde(default)]
    pub target_id: Option<i64>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    #[serde(default)]
    pub folder_id: String,
    /// Where Google sends the browser back; defaults to the console's callback page on the origin
    /// of the request. It must be registered with the OAuth client.
    #[serde(default)]
    pub redirect_uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleDriveAuthUrl {
    pub auth_url: String,
    pub redirect_uri: String,
    pub expires_at: String,
}

/// `POST /api/storage-targets/google-drive/complete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GoogleDriveComplete {
    pub state: String,
    pub code: String,
}

/// What a successful storage test answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageTestResult {
    pub success: bool,
    pub message: String,
    /// Time for the whole probe round trip.
    pub latency_ms: u64,
    /// The node whose agent ran the test.
    pub node_id: i64,
}

/// `POST /api/storage-targets` and `PUT /api/storage-targets/:id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageTargetRequest {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The type's configuration; secrets may be sent as `********` on update to keep them.
    pub config: serde_json::Value,
    /// 0 means no quota.
    #[serde(default)]
    pub quota_bytes: i64,
    /// For `POST /api/storage-targets/test` only: the node whose agent runs the test (default: any
    /// online node).
    #[serde(default)]
    pub node_id: Option<i64>,
}

/// A storage target without its configuration (lists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageTargetSummary {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub enabled: bool,
    pub starred: bool,
    /// Grows by one whenever the configuration changes.
    pub config_version: i64,
    pub quota_bytes: i64,
    pub last_tested_at: Option<String>,
    /// `unknown`, `success` or `failed`.
    pub last_test_status: TestStatus,
    pub last_test_message: String,
    pub created_at: String,
    pub updated_at: String,
    /// The target's restic repository, once a repository run wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositoryState>,
}

/// A target's restic repository: when it was made, and its prunes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryState {
    pub ready_at: String,
    /// A prune is under way (no repository run is handed out meanwhile).
    pub pruning: bool,
    /// When the tick prunes next (none: scheduled prunes are off).
    pub prune_due_at: Option<String>,
    /// When a recovery kit (the repository's password) was last handed out; none: never, and
    /// the password exists only in Stowage.
    #[serde(default)]
    pub recovery_kit_at: Option<String>,
    pub pruned_at: Option<String>,
    /// Bytes the last successful prune removed from the repository's packs.
    pub prune_freed_bytes: u64,
    /// Why the last prune failed (empty when it did not).
    pub prune_error: String,
    /// When the tick next checks the whole repository (none: scheduled checks are off).
    pub check_due_at: Option<String>,
}

/// `POST /api/storage-targets/:id/prune`: the prune was started on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneStarted {
    pub target_id: i64,
    pub node_id: i64,
    pub started_at: String,
}

/// A storage target with its configuration, secrets masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageTargetDetail {
    #[serde(flatten)]
    pub summary: StorageTargetSummary,
    pub config: serde_json::Value,
    /// The config keys that are secrets for this type (masked as `********` when set).
    pub masked_fields: Vec<String>,
}

/// What the agent measured for `storage_usage`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeasuredUsage {
    /// Objects under the target's root, and their bytes.
    pub objects: u64,
    pub total_bytes: u64,
    /// True when the count stopped at [`USAGE_MAX_OBJECTS`].
    pub truncated: bool,
    pub disk: Option<DiskUsage>,
}

/// `POST /api/backup/records/:id/verify` and `POST /api/storage-targets/:id/verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    /// The copy to check (a record on several targets); the first stored copy by default.
    #[serde(default)]
    pub storage_target_id: Option<i64>,
    /// Share of the data read back and hashed, 0 to 100 (a record: 100 by default; a target:
    /// the setting `repositoryCheckReadPercent`).
    #[serde(default)]
    pub read_data_percent: Option<u8>,
    /// The node that checks (by default one whose tasks use the target).
    #[serde(default)]
    pub node_id: Option<i64>,
}

/// One check of a repository: of a record's snapshot, or of a whole target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRecordOutput {
    pub id: i64,
    /// The record whose snapshot was checked (none: the whole repository).
    pub backup_record_id: Option<i64>,
    pub task_id: Option<i64>,
    pub task_name: String,
    pub storage_target_id: i64,
    pub storage_target_name: String,
    pub node_id: i64,
    /// `running`, `success` or `failed`.
    pub status: crate::status::RunStatus,
    pub read_data_percent: u8,
    pub snapshots: u64,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub damaged_packs: Vec<String>,
    pub affected_snapshots: Vec<String>,
    /// The records whose snapshot on this target needs damaged data.
    pub affected_records: Vec<i64>,
    /// Why the check could not run or what it found, in one line.
    pub error: String,
    pub triggered_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
}
