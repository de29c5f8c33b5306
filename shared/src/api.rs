//! The HTTP API, defined once for every side that speaks it: route paths and one struct per request
//! and response body. Field names are camelCase JSON, times RFC 3339 UTC strings (see [`crate::time`]).

use crate::secret::SecretString;
use serde::{Deserialize, Serialize};

/// The agent protocol version this build speaks; the Worker refuses agents older than it supports.
pub const AGENT_PROTOCOL_VERSION: u32 = 2;

/// Route paths. The Worker's router and every client build URLs from these.
pub mod routes {
    pub const HEALTH: &str = "/api/health";
    pub const HEALTH_READY: &str = "/api/health/ready";
    pub const AUTH_SETUP_STATUS: &str = "/api/auth/setup/status";
    pub const AUTH_SETUP: &str = "/api/auth/setup";
    pub const AUTH_LOGIN: &str = "/api/auth/login";
    pub const AUTH_LOGOUT: &str = "/api/auth/logout";
    pub const AUTH_PROFILE: &str = "/api/auth/profile";
    pub const AUTH_PASSWORD: &str = "/api/auth/password";
    pub const NODES: &str = "/api/nodes";
    pub const AGENT_HEARTBEAT: &str = "/api/agent/heartbeat";
    pub const AGENT_POLL: &str = "/api/agent/commands/poll";

    pub fn node(id: i64) -> String {
        format!("{NODES}/{id}")
    }
    pub fn node_fs_list(id: i64) -> String {
        format!("{NODES}/{id}/fs/list")
    }
    pub fn node_rotate_token(id: i64) -> String {
        format!("{NODES}/{id}/rotate-token")
    }
    pub const STORAGE_TARGETS: &str = "/api/storage-targets";
    pub fn storage_target(id: i64) -> String {
        format!("{STORAGE_TARGETS}/{id}")
    }
    pub const STORAGE_TARGETS_TEST: &str = "/api/storage-targets/test";
    pub const RCLONE_BACKENDS: &str = "/api/storage-targets/rclone/backends";
    pub const GOOGLE_DRIVE_AUTH_URL: &str = "/api/storage-targets/google-drive/auth-url";
    pub const GOOGLE_DRIVE_COMPLETE: &str = "/api/storage-targets/google-drive/complete";
    pub const BACKUP_TASKS: &str = "/api/backup/tasks";
    pub fn backup_task(id: i64) -> String {
        format!("{BACKUP_TASKS}/{id}")
    }
    pub fn backup_task_toggle(id: i64) -> String {
        format!("{BACKUP_TASKS}/{id}/toggle")
    }
    pub fn backup_task_run(id: i64) -> String {
        format!("{BACKUP_TASKS}/{id}/run")
    }
    pub const BACKUP_RECORDS: &str = "/api/backup/records";
    pub fn backup_record(id: i64) -> String {
        format!("{BACKUP_RECORDS}/{id}")
    }
    pub fn backup_record_logs(id: i64) -> String {
        format!("{BACKUP_RECORDS}/{id}/logs/stream")
    }
    pub fn backup_record_download(id: i64) -> String {
        format!("{BACKUP_RECORDS}/{id}/download")
    }
    pub fn backup_record_restore(id: i64) -> String {
        format!("{BACKUP_RECORDS}/{id}/restore")
    }
    pub const BACKUP_RECORDS_BATCH_DELETE: &str = "/api/backup/records/batch-delete";
    pub const RESTORE_RECORDS: &str = "/api/restore/records";
    pub const DATABASE_DISCOVER: &str = "/api/database/discover";
    pub fn restore_record(id: i64) -> String {
        format!("{RESTORE_RECORDS}/{id}")
    }
    pub fn restore_record_logs(id: i64) -> String {
        format!("{RESTORE_RECORDS}/{id}/logs/stream")
    }
    /// A short-lived ticket that signs in one GET of one path, for clients that cannot send
    /// headers (a browser's `EventSource`, a download link).
    pub const AUTH_STREAM_TICKET: &str = "/api/auth/stream-ticket";
    /// Where an agent posts a run's log lines and progress.
    pub fn agent_record_log(id: i64) -> String {
        format!("/api/agent/records/{id}")
    }
    /// Where an agent posts a restore's log lines and progress.
    pub fn agent_restore_log(id: i64) -> String {
        format!("/api/agent/restores/{id}")
    }
    /// Where an agent posts chunk `seq` of a relayed download (the body is the raw bytes).
    pub fn agent_relay_chunk(id: i64, seq: u64) -> String {
        format!("/api/agent/relays/{id}?seq={seq}")
    }
    pub fn storage_target_test(id: i64) -> String {
        format!("{STORAGE_TARGETS}/{id}/test")
    }
    pub fn storage_target_usage(id: i64) -> String {
        format!("{STORAGE_TARGETS}/{id}/usage")
    }
    pub fn storage_target_star(id: i64) -> String {
        format!("{STORAGE_TARGETS}/{id}/star")
    }
    pub fn agent_command_result(id: i64) -> String {
        format!("/api/agent/commands/{id}/result")
    }
    pub const NOTIFICATIONS: &str = "/api/notifications";
    pub const NOTIFICATIONS_TEST: &str = "/api/notifications/test";
    pub fn notification(id: i64) -> String {
        format!("{NOTIFICATIONS}/{id}")
    }
    pub fn notification_test(id: i64) -> String {
        format!("{NOTIFICATIONS}/{id}/test")
    }
    pub fn notification_deliveries(id: i64) -> String {
        format!("{NOTIFICATIONS}/{id}/deliveries")
    }
    pub const DASHBOARD_STATS: &str = "/api/dashboard/stats";
    pub const DASHBOARD_TIMELINE: &str = "/api/dashboard/timeline";
    pub const AUDIT_LOGS: &str = "/api/audit-logs";
    pub const SYSTEM_INFO: &str = "/api/system/info";
    pub const SYSTEM_UPDATE_CHECK: &str = "/api/system/update-check";
    pub const SETTINGS: &str = "/api/settings";
}

/// Header that carries a node's token on every agent request.
pub const AGENT_TOKEN_HEADER: &str = "X-Agent-Token";
/// Header that carries the agent's protocol version on every agent request.
pub const AGENT_PROTOCOL_HEADER: &str = "X-Stowage-Protocol";
/// The oldest agent protocol the Worker still serves.
///
/// 2: run commands carry a task spec of any type (files, database dumps, SQLite) and database
/// restores exist; a version-1 agent could not read them.
pub const MIN_AGENT_PROTOCOL_VERSION: u32 = 2;

/// `GET /api/health`: liveness, public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// `GET /api/health/ready`: readiness, public. 200 when the database answers and is migrated,
/// otherwise 503 `NOT_READY`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub ready: bool,
    pub version: String,
    /// The newest migration applied to D1.
    pub schema_migration: String,
    /// When the cron tick last ran, if ever.
    pub last_tick_at: Option<String>,
}

/// `GET /api/auth/setup/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupStatus {
    /// True once the first administrator exists; setup is then closed for good.
    pub initialized: bool,
}

/// `POST /api/auth/setup`: creates the first administrator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupRequest {
    pub username: String,
    pub password: SecretString,
    /// Defaults to the username.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `POST /api/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub username: String,
    pub password: SecretString,
}

/// What setup and login return: a bearer token for `Authorization: Bearer …` and the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthPayload {
    pub token: SecretString,
    pub expires_at: String,
    pub user: UserOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A user as the API shows it. Never carries the password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserOutput {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub created_at: String,
    pub password_changed_at: String,
}

/// `POST /api/auth/logout`: the session behind the token is revoked at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedOut {
    pub logged_out: bool,
}

/// `PUT /api/auth/password`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    pub old_password: SecretString,
    pub new_password: SecretString,
}

/// The session that made the change stays valid; every other session of the user is revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChanged {
    pub changed: bool,
    pub revoked_sessions: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Online,
    Offline,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub deleted: bool,
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

/// `POST /api/agent/heartbeat`: who the agent is and what it can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatRequest {
    pub hostname: String,
    pub ip_address: String,
    pub os: String,
    pub arch: String,
    pub agent_version: String,
    pub capabilities: Capabilities,
    /// Commands this agent is running now; their leases are renewed.
    #[serde(default)]
    pub running: Vec<i64>,
}

/// The node's identity and the timings the agent must keep, so that all timing lives in the
/// Worker's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    pub node_id: i64,
    pub node_name: String,
    pub heartbeat_interval_secs: u64,
    pub poll_interval_secs: u64,
    pub lease_secs: u64,
    /// Running commands whose lease could not be renewed (expired, or not this node's): the agent
    /// should stop working on them.
    pub lost: Vec<i64>,
}

/// What a command asks the agent to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandSpec {
    /// List one directory on the node.
    ListDir { path: String },
    /// Check that a storage target works: write, stat, read back and delete a small probe object.
    /// The config carries its secrets; the Worker seals command specs at rest.
    #[serde(rename_all = "camelCase")]
    StorageTest {
        storage_type: crate::storage::StorageType,
        config: serde_json::Value,
    },
    /// Measure what a storage target holds (and the space left, where the backend can tell).
    #[serde(rename_all = "camelCase")]
    StorageUsage {
        storage_type: crate::storage::StorageType,
        config: serde_json::Value,
    },
    /// Report the backends the node's rclone has, with their options (`rclone config providers`).
    RcloneBackends,
    /// Run a backup: read the source once (a tar of files, the dumps of databases, an SQLite
    /// copy) and store the artifact on every destination.
    #[serde(rename_all = "camelCase")]
    RunBackup {
        record_id: i64,
        task_id: i64,
        task_name: String,
        spec: crate::tasks::TaskSpec,
        /// The database password of a `mysql` or `postgresql` task (the command is sealed).
        #[serde(default)]
        db_password: Option<SecretString>,
        destinations: Vec<RunDestination>,
    },
    /// Remove stored artifacts (each with its manifest) from their targets.
    #[serde(rename_all = "camelCase")]
    DeleteArtifacts { objects: Vec<StoredObject> },
    /// List the databases a connection can see.
    DiscoverDatabases {
        connection: crate::databases::DbConnection,
    },
    /// Send a stored artifact through the Worker to a download that is waiting for it.
    #[serde(rename_all = "camelCase")]
    Relay { relay_id: i64, source: StoredObject },
    /// Restore a stored artifact: fetch it, check its SHA-256 while unpacking into a staging
    /// directory, and only then move the files into place.
    #[serde(rename_all = "camelCase")]
    Restore {
        restore_id: i64,
        source: StoredObject,
        sha256: String,
        bytes: u64,
        compression: crate::tasks::Compression,
        /// An absolute directory to restore under, or `None` for the original paths.
        destination: Option<String>,
    },
    /// Restore a database backup: fetch the artifact and check its SHA-256 before any of it
    /// reaches the database, then apply it.
    #[serde(rename_all = "camelCase")]
    RestoreDatabase {
        restore_id: i64,
        source: StoredObject,
        sha256: String,
        bytes: u64,
        compression: crate::tasks::Compression,
        target: DbRestoreTarget,
    },
}

/// Where a database restore goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DbRestoreTarget {
    /// A MySQL/MariaDB or PostgreSQL server: each step's section into its database.
    Server {
        connection: crate::databases::DbConnection,
        steps: Vec<crate::databases::RestoreStep>,
    },
    /// An SQLite database file (replaced through SQLite's backup API when it exists).
    Sqlite { path: String },
}

/// An artifact on one target: the target's config (sealed with the command) and the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredObject {
    pub target_id: i64,
    pub storage_type: crate::storage::StorageType,
    pub config: serde_json::Value,
    pub path: String,
}

/// What `delete_artifacts` could not remove (objects already gone count as removed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteArtifactsReport {
    pub failures: Vec<DeleteFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteFailure {
    pub target_id: i64,
    pub path: String,
    pub error: String,
}

/// What an agent reports for a finished relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReport {
    pub chunks: u64,
    pub bytes: u64,
}

/// The size of the pieces a relayed download moves in.
pub const RELAY_CHUNK: usize = 512 * 1024;
/// Chunks that may wait in the Worker for the download to take them.
pub const RELAY_MAX_WAITING: i64 = 8;

/// What an agent reports for a finished restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    pub files: u64,
    pub bytes: u64,
}

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [LogLevel::Info, LogLevel::Warn, LogLevel::Error]
            .into_iter()
            .find(|l| l.as_str() == text)
    }
}

/// One log line of a run or restore. `seq` counts from 1 per record, so a batch sent twice is
/// stored once and a stream can resume after the last line it delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub seq: u64,
    pub at: String,
    pub level: LogLevel,
    pub message: String,
}

/// Where a run or restore stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Bytes through so far: the artifact's bytes written (backup) or read (restore).
    pub bytes: u64,
    /// The artifact's size, when known (restores), for a percentage.
    pub total_bytes: Option<u64>,
    pub files: u64,
    /// Source bytes read (backup) or file bytes written (restore).
    pub source_bytes: u64,
    /// The average rate since the start.
    pub bytes_per_sec: u64,
    pub elapsed_ms: u64,
}

/// `POST /api/agent/records/:id` and `/api/agent/restores/:id`: new log lines and the latest
/// progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunLogBatch {
    pub lines: Vec<LogLine>,
    pub progress: Option<Progress>,
}

/// Most log lines one batch may carry.
pub const LOG_BATCH_MAX_LINES: usize = 200;
/// Longest log message stored (longer ones are cut).
pub const LOG_LINE_MAX_CHARS: usize = 2_000;
/// Most log lines one record keeps: line [`LOG_RECORD_MAX_LINES`] says the log was cut there, and
/// later lines are dropped (the agent's own log has them), so no agent can fill the database.
pub const LOG_RECORD_MAX_LINES: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogBatchAccepted {
    /// False when the record has ended: the agent can stop sending.
    pub live: bool,
}

/// `POST /api/backup/records/:id/restore`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreRequest {
    /// An absolute directory to restore under (the sources keep their full paths beneath it);
    /// absent for the original paths.
    #[serde(default)]
    pub target_path: Option<String>,
    /// The node to restore on; the record's node when absent.
    #[serde(default)]
    pub node_id: Option<i64>,
    /// The target to read the artifact from; the first that holds it when absent.
    #[serde(default)]
    pub storage_target_id: Option<i64>,
    /// Database backups: which of its databases to restore (all when empty).
    #[serde(default)]
    pub databases: Vec<String>,
    /// Database backups: restore the one chosen database under this name instead.
    #[serde(default)]
    pub target_database: Option<String>,
    /// PostgreSQL backups with globals: restore the roles and tablespaces too.
    #[serde(default)]
    pub restore_globals: bool,
    /// Database backups: the server to restore into; by default the one the backup was taken
    /// from (as seen from the restoring node), with the task's stored password.
    #[serde(default)]
    pub connection: Option<RestoreConnection>,
}

/// The server a database restore connects to. Empty fields take the backup's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreConnection {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub password: Option<SecretString>,
}

/// One database a restore wrote, and where from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoredDatabase {
    /// The database in the backup (empty for PostgreSQL's globals).
    pub from: String,
    pub into: String,
}

/// A restore of a backup record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRecordOutput {
    pub id: i64,
    pub backup_record_id: i64,
    pub task_id: Option<i64>,
    pub task_name: String,
    pub node_id: i64,
    pub storage_target_id: i64,
    /// Empty for the original paths (files) or the original file (SQLite).
    pub target_path: String,
    /// Database restores: which databases went where.
    pub target_databases: Vec<RestoredDatabase>,
    /// `running`, `success` or `failed`.
    pub status: String,
    pub files: u64,
    pub bytes: u64,
    pub error: String,
    pub triggered_by: String,
    pub progress: Option<Progress>,
    pub started_at: String,
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<LogLine>,
}

/// `POST /api/backup/records/batch-delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchDeleteRequest {
    pub ids: Vec<i64>,
}

/// Most records one batch delete may name.
pub const BATCH_DELETE_MAX: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleted {
    pub deleted: u64,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

/// `POST /api/auth/stream-ticket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamTicketRequest {
    /// The path the ticket opens (one GET), e.g. `/api/backup/records/7/logs/stream`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamTicket {
    /// Pass as `?ticket=`.
    pub ticket: String,
    pub expires_at: String,
}

/// The kinds of the commands whose outcome settles something in the Worker (a record, a
/// restore, a download), as stored in `agent_commands.kind`.
pub mod kinds {
    pub const RUN_BACKUP: &str = "run_backup";
    pub const DELETE_ARTIFACTS: &str = "delete_artifacts";
    pub const RESTORE: &str = "restore";
    pub const RELAY: &str = "relay";
}

/// The manifest stored beside every artifact (`<artifact>.manifest.json`), so that a target
/// describes its backups without the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupManifest {
    /// `stowage-backup/1`.
    pub format: String,
    pub task_id: i64,
    pub task_name: String,
    /// The task's type (`file` when absent: the first manifests were of file tasks only).
    #[serde(rename = "type", default = "file_type")]
    pub kind: String,
    pub record_id: i64,
    /// The agent's host name.
    pub host: String,
    /// What was read: paths (files, an SQLite file) or `engine://user@host:port/database`.
    pub sources: Vec<String>,
    pub excludes: Vec<String>,
    pub compression: crate::tasks::Compression,
    /// The artifact's file name, beside this manifest.
    pub artifact: String,
    pub bytes: u64,
    pub sha256: String,
    pub files: u64,
    pub source_bytes: u64,
    pub started_at: String,
    pub finished_at: String,
    /// Database dumps: where each database lies in the uncompressed artifact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<crate::databases::DumpSection>,
}

fn file_type() -> String {
    "file".to_owned()
}

pub const MANIFEST_FORMAT: &str = "stowage-backup/1";

/// Where an artifact's manifest is stored.
pub fn manifest_path(artifact: &str) -> String {
    format!("{artifact}.manifest.json")
}

/// Where a run stores its artifact: a target's config (sealed with the command) and the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDestination {
    pub target_id: i64,
    pub storage_type: crate::storage::StorageType,
    pub config: serde_json::Value,
    pub path: String,
}

/// One destination's outcome in a run's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTargetReport {
    pub target_id: i64,
    /// Bytes stored, when the whole artifact landed.
    pub bytes: Option<u64>,
    pub error: Option<String>,
}

/// What an agent reports for a finished run that stored the artifact somewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunBackupReport {
    pub bytes: u64,
    pub sha256: String,
    /// Files archived, or databases dumped.
    pub files: u64,
    pub source_bytes: u64,
    pub targets: Vec<RunTargetReport>,
    /// Database dumps: where each database lies in the uncompressed artifact.
    #[serde(default)]
    pub sections: Vec<crate::databases::DumpSection>,
}

/// One target of a backup record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordTargetOutput {
    pub target_id: i64,
    pub target_name: String,
    pub status: String,
    pub path: String,
    pub bytes: u64,
    pub error: String,
}

/// A backup record: one run of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecordOutput {
    pub id: i64,
    pub task_id: Option<i64>,
    pub task_name: String,
    /// The task's type at the time of the run.
    #[serde(rename = "type")]
    pub kind: String,
    /// Database backups: the databases the artifact holds, in order.
    pub databases: Vec<String>,
    pub node_id: i64,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// The scheduled fire time a `schedule` run is for.
    pub fire_at: Option<String>,
    /// Earlier fire times this scheduled run stands for (missed while the control plane was down).
    pub coalesced_slots: u32,
    /// `running`, `success`, `partial` (some targets failed) or `failed`.
    pub status: String,
    pub bytes: u64,
    pub files: u64,
    pub source_bytes: u64,
    /// Lowercase hex SHA-256 of the artifact.
    pub checksum: String,
    pub error: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub targets: Vec<RecordTargetOutput>,
    /// Where a running record stands.
    pub progress: Option<Progress>,
    /// When retention removed the stored backup, and the rule that dropped it.
    pub removed_at: Option<String>,
    pub removal: String,
    /// The last log lines (the detail only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<LogLine>,
}

impl CommandSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            CommandSpec::ListDir { .. } => "list_dir",
            CommandSpec::StorageTest { .. } => "storage_test",
            CommandSpec::StorageUsage { .. } => "storage_usage",
            CommandSpec::RcloneBackends => "rclone_backends",
            CommandSpec::RunBackup { .. } => kinds::RUN_BACKUP,
            CommandSpec::DeleteArtifacts { .. } => kinds::DELETE_ARTIFACTS,
            CommandSpec::Restore { .. } | CommandSpec::RestoreDatabase { .. } => kinds::RESTORE,
            CommandSpec::Relay { .. } => kinds::RELAY,
            CommandSpec::DiscoverDatabases { .. } => "discover_databases",
        }
    }
}

/// Space on the device or account behind a target, where the backend reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskUsage {
    pub total: Option<u64>,
    pub used: Option<u64>,
    pub free: Option<u64>,
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

/// A command claimed by `POST /api/agent/commands/poll`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedCommand {
    pub id: i64,
    pub spec: CommandSpec,
    pub lease_expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    pub command: Option<ClaimedCommand>,
}

/// Why a command failed, in the API's own terms so the Worker can answer the waiting caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandError {
    pub code: crate::envelope::ErrorCode,
    pub message: String,
}

/// `POST /api/agent/commands/:id/result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CommandResult {
    Succeeded { result: serde_json::Value },
    Failed { error: CommandError },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultAccepted {
    /// False when the same result had already been recorded (the report is idempotent).
    pub recorded: bool,
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

fn yes() -> bool {
    true
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
    pub last_test_status: String,
    pub last_test_message: String,
    pub created_at: String,
    pub updated_at: String,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn setup_request_reads_camel_case_and_defaults_display_name() {
        let req: SetupRequest =
            serde_json::from_value(json!({"username": "admin", "password": "correct horse"}))
                .expect("parse");
        assert_eq!(req.username, "admin");
        assert_eq!(req.display_name, None);
        let req: SetupRequest = serde_json::from_value(
            json!({"username": "admin", "password": "x", "displayName": "Ada"}),
        )
        .expect("parse");
        assert_eq!(req.display_name.as_deref(), Some("Ada"));
    }

    #[test]
    fn missing_and_mistyped_fields_are_errors() {
        assert!(serde_json::from_value::<LoginRequest>(json!({"username": "a"})).is_err());
        assert!(
            serde_json::from_value::<LoginRequest>(json!({"username": 5, "password": "x"}))
                .is_err()
        );
    }

    #[test]
    fn user_output_is_camel_case_without_secrets() {
        let user = UserOutput {
            id: 1,
            username: "admin".into(),
            display_name: "Admin".into(),
            role: Role::Admin,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            password_changed_at: "2026-01-01T00:00:00.000Z".into(),
        };
        let v = serde_json::to_value(&user).expect("json");
        assert_eq!(v["displayName"], "Admin");
        assert_eq!(v["role"], "admin");
        let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
        assert!(keys.iter().all(|k| !k.to_lowercase().contains("hash")));
    }

    #[test]
    fn command_specs_and_results_are_tagged() {
        let spec = CommandSpec::ListDir {
            path: "/srv".into(),
        };
        assert_eq!(
            serde_json::to_value(&spec).expect("json"),
            json!({"kind": "list_dir", "path": "/srv"})
        );
        let failed: CommandResult = serde_json::from_value(json!({
            "outcome": "failed",
            "error": {"code": "NODE_FS_NOT_FOUND", "message": "no such directory"}
        }))
        .expect("parse");
        assert!(
            matches!(failed, CommandResult::Failed { ref error } if error.code == crate::ErrorCode::NodeFsNotFound)
        );
        assert!(
            serde_json::from_value::<CommandResult>(
                json!({"outcome": "failed", "error": {"code": "MADE_UP", "message": ""}})
            )
            .is_err(),
            "agents can only report codes the API knows"
        );
    }

    #[test]
    fn role_text_round_trips() {
        for role in [Role::Admin, Role::Operator, Role::Viewer] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}

/// `POST /api/backup/tasks` and `PUT /api/backup/tasks/:id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupTaskRequest {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The node whose agent runs the task (for `file` tasks: whose files are backed up).
    #[serde(default)]
    pub node_id: i64,
    #[serde(default)]
    pub source_paths: Vec<String>,
    #[serde(default)]
    pub exclude_patterns: Vec<String>,
    #[serde(default)]
    pub storage_target_ids: Vec<i64>,
    /// Five cron fields or `@daily`-style; empty means the task runs only when asked to.
    #[serde(default)]
    pub cron_expr: String,
    /// IANA time zone the schedule is read in (default `UTC`).
    #[serde(default)]
    pub time_zone: String,
    /// `zstd` (default) or `none`.
    #[serde(default)]
    pub compression: String,
    #[serde(default)]
    pub compression_level: Option<i32>,
    #[serde(default)]
    pub retention: crate::tasks::Retention,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `mysql` and `postgresql`: the server (default `127.0.0.1` and the engine's port), the user
    /// and password (sealed; `********` or nothing keeps the stored one), the databases (none
    /// means all), extra dump options (allow-listed) and, for PostgreSQL, the globals.
    #[serde(default)]
    pub db_host: String,
    #[serde(default)]
    pub db_port: Option<u16>,
    #[serde(default)]
    pub db_user: String,
    #[serde(default)]
    pub db_password: Option<SecretString>,
    #[serde(default)]
    pub db_names: Vec<String>,
    #[serde(default)]
    pub db_options: Vec<String>,
    #[serde(default)]
    pub db_include_globals: bool,
    /// `sqlite`: the database file.
    #[serde(default)]
    pub db_path: String,
}

/// A storage target as a task shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskTargetRef {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A backup task as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupTaskOutput {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub enabled: bool,
    pub node_id: i64,
    pub node_name: String,
    pub source_paths: Vec<String>,
    pub exclude_patterns: Vec<String>,
    pub storage_target_ids: Vec<i64>,
    pub storage_targets: Vec<TaskTargetRef>,
    pub cron_expr: String,
    pub time_zone: String,
    /// The next scheduled run, when the task is enabled and scheduled.
    pub next_run_at: Option<String>,
    pub compression: String,
    pub compression_level: Option<i32>,
    pub retention: crate::tasks::Retention,
    pub tags: Vec<String>,
    /// Database tasks' connection (empty for other types); the password shows as `********`
    /// when one is stored, and is listed in `maskedFields`.
    pub db_host: String,
    pub db_port: Option<u16>,
    pub db_user: String,
    pub db_password: String,
    pub db_names: Vec<String>,
    pub db_options: Vec<String>,
    pub db_include_globals: bool,
    pub db_path: String,
    pub masked_fields: Vec<String>,
    pub last_run_at: Option<String>,
    pub last_status: Option<String>,
    /// The last fire time the scheduler could not run, and why (empty when none).
    pub last_skip: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `PUT /api/backup/tasks/:id/toggle`: the state to set; absent flips it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToggleRequest {
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `POST /api/notifications`, `PUT /api/notifications/:id` and `POST /api/notifications/test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationRequest {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Event names (`backup_success`, `backup_failed`, …).
    pub events: Vec<String>,
    /// Backup failures are sent only once this many runs of the task failed in a row (1 = every
    /// failure).
    #[serde(default = "one")]
    pub failure_threshold: u32,
    /// The type's configuration; secrets may be sent as `********` on update to keep them.
    pub config: serde_json::Value,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSummary {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: bool,
    pub events: Vec<String>,
    pub failure_threshold: u32,
    /// The newest delivery's outcome (`sent`, `failed`, `pending`), if any.
    pub last_delivery_status: Option<String>,
    pub last_delivery_at: Option<String>,
    pub last_delivery_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationDetail {
    #[serde(flatten)]
    pub summary: NotificationSummary,
    /// Secrets replaced by `********`.
    pub config: serde_json::Value,
    pub masked_fields: Vec<String>,
}

/// A test message went out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationTestResult {
    pub success: bool,
    pub message: String,
}

/// One attempt-tracked message to one channel (`GET /api/notifications/:id/deliveries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationDelivery {
    pub id: i64,
    pub channel_id: i64,
    pub channel_name: String,
    pub event: String,
    pub title: String,
    /// `pending` (waiting for its next attempt), `sending`, `sent` or `failed` (given up).
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_error: String,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// Record counts of one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StatusCounts {
    pub total: u64,
    pub success: u64,
    pub partial: u64,
    pub failed: u64,
    pub running: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetUsage {
    pub storage_target_id: i64,
    pub target_name: String,
    /// Stored copies (records not removed by retention) and their bytes.
    pub objects: u64,
    pub bytes: u64,
}

/// A task that needs attention, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskAttention {
    pub task_id: i64,
    pub task_name: String,
    pub node_id: i64,
    pub last_run_at: Option<String>,
    pub last_success_at: Option<String>,
    /// For an overdue task: the schedule's fire time by which a success was expected.
    pub expected_by: Option<String>,
}

/// `GET /api/dashboard/stats?days=N` (default 30).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardStats {
    pub days: u32,
    pub total_tasks: u64,
    pub enabled_tasks: u64,
    /// Backup records started within the window, by status.
    pub records: StatusCounts,
    /// success / finished records in the window (partial counts as not successful); `null`
    /// when nothing finished.
    pub success_rate: Option<f64>,
    /// Bytes of the backups that are still stored (successful or partial, not removed).
    pub bytes_protected: u64,
    pub storage_usage: Vec<TargetUsage>,
    pub nodes_online: u64,
    pub nodes_offline: u64,
    pub last_backup_at: Option<String>,
    pub failing_tasks: Vec<TaskAttention>,
    /// Enabled scheduled tasks with no success since the fire time before their latest one.
    pub overdue_tasks: Vec<TaskAttention>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineDay {
    /// `YYYY-MM-DD`, a UTC day.
    pub date: String,
    #[serde(flatten)]
    pub counts: StatusCounts,
    /// Bytes written by the runs that started that day.
    pub bytes: u64,
}

/// One line of recent activity: a backup run or a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// `backup` or `restore`.
    pub kind: String,
    pub id: i64,
    pub task_name: String,
    pub node_id: i64,
    pub status: String,
    pub bytes: u64,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// `GET /api/dashboard/timeline?days=N` (1 to 366, default 30).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardTimeline {
    pub days: Vec<TimelineDay>,
    pub recent_activity: Vec<Activity>,
}

/// One row of `GET /api/audit-logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLogEntry {
    pub id: i64,
    pub created_at: String,
    pub user_id: Option<i64>,
    /// The user name (or the name a sign-in attempt gave).
    pub actor: String,
    /// `<resource>.<verb>`, e.g. `backup_task.create`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    /// `success` or `failure`.
    pub result: String,
    /// A short reason code or error code, never a request body.
    pub detail: String,
    pub client_ip: String,
    pub user_agent: String,
}

/// Rows of a table, for `GET /api/system/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRows {
    pub table: String,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemLimits {
    pub max_json_body_bytes: u64,
    pub session_ttl_secs: u64,
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    pub login_lockout_secs: u64,
    pub heartbeat_secs: u64,
    pub poll_secs: u64,
    pub lease_secs: u64,
    pub offline_after_secs: u64,
    pub rpc_wait_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronStatus {
    pub last_tick_at: Option<String>,
    /// The trigger fires every minute; a last tick older than three minutes means it stopped.
    pub healthy: bool,
}

/// `GET /api/system/info` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemInfo {
    pub version: String,
    /// The commit the Worker was built from, when the build knew it.
    pub build: String,
    pub agent_protocol: u32,
    pub min_agent_protocol: u32,
    pub schema_migration: Option<String>,
    /// D1's size in bytes, as D1 reports it.
    pub database_bytes: Option<u64>,
    pub table_rows: Vec<TableRows>,
    pub limits: SystemLimits,
    pub cron: CronStatus,
    pub seal_key_configured: bool,
}

/// `GET /api/system/update-check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCheck {
    pub current_version: String,
    pub latest_version: Option<String>,
    pub has_update: bool,
    pub release_url: Option<String>,
    pub published_at: Option<String>,
    pub release_notes: Option<String>,
    /// Why no answer could be had (offline, the releases URL failed, …).
    pub error: Option<String>,
    pub checked_url: String,
}
