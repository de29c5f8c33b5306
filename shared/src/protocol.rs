//! The agent protocol: what the Worker asks an agent to do (`CommandSpec`), what the agent
//! reports back (`CommandReport`, one typed report per command), heartbeats, polls and log batches.
//! Both sides build and read these types; nothing else crosses between them.

use crate::api::nodes::{Capabilities, FsListing};
use crate::api::records::{LogLine, Progress, SnapshotChanges};
use crate::api::storage::{MeasuredUsage, RcloneBackend};
use crate::secret::SecretString;
use crate::status::CommandKind;
use serde::{Deserialize, Serialize};

/// The agent protocol version this build speaks; the Worker refuses agents older than it supports.
pub const AGENT_PROTOCOL_VERSION: u32 = 3;

/// Header that carries a node's token on every agent request.
pub const AGENT_TOKEN_HEADER: &str = "X-Agent-Token";
/// Header that carries the agent's protocol version on every agent request.
pub const AGENT_PROTOCOL_HEADER: &str = "X-Stowage-Protocol";
/// The oldest agent protocol the Worker still serves.
///
/// 3: the agent holds a link (`GET /api/agent/link`, a WebSocket) and is woken when work is
/// queued; a version-2 agent heartbeats and polls over HTTP, which the Worker still serves.
///
/// 2: run commands carry a task spec of any type (files, database dumps, SQLite) and database
/// restores exist; a version-1 agent could not read them.
pub const MIN_AGENT_PROTOCOL_VERSION: u32 = 2;

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
    /// List one directory of a stored snapshot (`path` absolute, as the snapshot holds it).
    #[serde(rename_all = "camelCase")]
    ListSnapshot { source: StoredObject, path: String },
    /// Check a target's repository (restic's `check`): its structure, and `readDataPercent` of
    /// the data read back (of one snapshot's packs when `snapshotId` is given).
    #[serde(rename_all = "camelCase")]
    VerifyRepository {
        verify_id: i64,
        storage_type: crate::storage::StorageType,
        config: serde_json::Value,
        path: String,
        password: SecretString,
        snapshot_id: Option<String>,
        read_data_percent: u8,
    },
    /// Check a stored archive end to end (verification record `verifyId`): its SHA-256 and size
    /// against the record, every byte decompressed, a file archive's tar walked to its end and
    /// counted against its manifest, a dump's length against its sections. Nothing is written.
    #[serde(rename_all = "camelCase")]
    VerifyArchive {
        verify_id: i64,
        source: StoredObject,
        sha256: String,
        bytes: u64,
        compression: crate::tasks::Compression,
    },
    /// Remove the data no snapshot uses any more from a target's repository (restic's `prune`),
    /// under an exclusive restic lock.
    #[serde(rename_all = "camelCase")]
    PruneRepository {
        target_id: i64,
        storage_type: crate::storage::StorageType,
        config: serde_json::Value,
        path: String,
        password: SecretString,
    },
    /// Run a backup: read the source once (a tar of files, the dumps of databases, an SQLite
    /// copy) and store the artifact on every destination.
    #[serde(rename_all = "camelCase")]
    RunBackup {
        record_id: i64,
        task_id: i64,
        task_name: String,
        /// The node's name in Stowage: a repository snapshot's host.
        #[serde(default)]
        node_name: String,
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
    Relay {
        relay_id: i64,
        source: StoredObject,
        /// Snapshots only: the file to send as it is, or the folder to send as a tar stream
        /// (an absolute path as the snapshot holds it; `/` is the whole snapshot).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entry: Option<String>,
    },
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
        /// Snapshots only: the absolute paths (files or folders) to restore; none means all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        selected_paths: Vec<String>,
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
    /// A snapshot in the restic repository at `path`, instead of an archive object there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRef>,
}

impl StoredObject {
    /// How a delete report names the object: its path, or `path#snapshot id` for a snapshot.
    pub fn key(&self) -> String {
        match &self.snapshot {
            Some(snapshot) => format!("{}#{}", self.path, snapshot.id),
            None => self.path.clone(),
        }
    }
}

/// A snapshot in a target's repository, with the repository's password (the command is sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRef {
    /// The full (64 hex digits) snapshot id.
    pub id: String,
    pub password: SecretString,
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

/// Where a run stores its artifact: a target's config (sealed with the command) and the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDestination {
    pub target_id: i64,
    pub storage_type: crate::storage::StorageType,
    pub config: serde_json::Value,
    /// The artifact's path, or the repository's directory for a repository task.
    pub path: String,
    /// A repository task's password for the target's repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_password: Option<SecretString>,
}

/// One destination's outcome in a run's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTargetReport {
    pub target_id: i64,
    /// Bytes stored, when the whole artifact landed (for a repository: bytes the run added).
    pub bytes: Option<u64>,
    pub error: Option<String>,
    /// The snapshot written into the target's repository (repository tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
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
    /// Repository runs: files new, changed and unmodified (`bytes` is then the bytes added to
    /// the repository, `sha256` empty: restic checks every blob by its own hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<SnapshotChanges>,
}

impl CommandSpec {
    pub fn kind(&self) -> CommandKind {
        match self {
            CommandSpec::ListDir { .. } => CommandKind::ListDir,
            CommandSpec::StorageTest { .. } => CommandKind::StorageTest,
            CommandSpec::StorageUsage { .. } => CommandKind::StorageUsage,
            CommandSpec::RcloneBackends => CommandKind::RcloneBackends,
            CommandSpec::PruneRepository { .. } => CommandKind::PruneRepository,
            CommandSpec::VerifyRepository { .. } | CommandSpec::VerifyArchive { .. } => {
                CommandKind::Verify
            }
            CommandSpec::ListSnapshot { .. } => CommandKind::ListSnapshot,
            CommandSpec::RunBackup { .. } => CommandKind::RunBackup,
            CommandSpec::DeleteArtifacts { .. } => CommandKind::DeleteArtifacts,
            CommandSpec::Restore { .. } | CommandSpec::RestoreDatabase { .. } => {
                CommandKind::Restore
            }
            CommandSpec::Relay { .. } => CommandKind::Relay,
            CommandSpec::DiscoverDatabases { .. } => CommandKind::DiscoverDatabases,
        }
    }
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

/// `POST /api/agent/commands/:id/result`: a command's outcome.
///
/// The agent sends `CommandResult<CommandReport>`. The report on the wire carries only its own
/// fields; which report it is follows from the command's kind, which the Worker holds in the
/// command's row. So the Worker first reads the body with the report still undecoded (the
/// default `R`, the only place the protocol holds a `serde_json::Value`) and then, knowing the
/// kind, turns it into a typed result with [`CommandResult::typed`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CommandResult<R = serde_json::Value> {
    Succeeded { result: R },
    Failed { error: CommandError },
}

/// A finished command's report: one type per command kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CommandReport {
    ListDir(FsListing),
    StorageTest(StorageProbe),
    StorageUsage(MeasuredUsage),
    RcloneBackends(Vec<RcloneBackend>),
    RunBackup(RunBackupReport),
    DeleteArtifacts(DeleteArtifactsReport),
    DiscoverDatabases(Vec<String>),
    Relay(RelayReport),
    Restore(RestoreReport),
    PruneRepository(PruneReport),
    Verify(VerifyReport),
    ListSnapshot(FsListing),
}

/// What a repository check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Snapshots whose trees (and data, as far as it was read) were checked.
    pub snapshots: u64,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Pack files found damaged (full ids).
    pub damaged_packs: Vec<String>,
    /// Snapshots (full ids) that need a damaged pack.
    pub affected_snapshots: Vec<String>,
}

/// What a prune did to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// Bytes of the repository's data packs before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Snapshots the repository holds (every task's and host's).
    pub snapshots: u64,
}

impl CommandReport {
    pub fn kind(&self) -> CommandKind {
        match self {
            CommandReport::ListDir(_) => CommandKind::ListDir,
            CommandReport::StorageTest(_) => CommandKind::StorageTest,
            CommandReport::StorageUsage(_) => CommandKind::StorageUsage,
            CommandReport::RcloneBackends(_) => CommandKind::RcloneBackends,
            CommandReport::RunBackup(_) => CommandKind::RunBackup,
            CommandReport::DeleteArtifacts(_) => CommandKind::DeleteArtifacts,
            CommandReport::DiscoverDatabases(_) => CommandKind::DiscoverDatabases,
            CommandReport::Relay(_) => CommandKind::Relay,
            CommandReport::Restore(_) => CommandKind::Restore,
            CommandReport::PruneRepository(_) => CommandKind::PruneRepository,
            CommandReport::Verify(_) => CommandKind::Verify,
            CommandReport::ListSnapshot(_) => CommandKind::ListSnapshot,
        }
    }

    /// Reads the report of a command of `kind`.
    pub fn parse(kind: CommandKind, json: serde_json::Value) -> Result<Self, serde_json::Error> {
        use serde_json::from_value as read;
        Ok(match kind {
            CommandKind::ListDir => CommandReport::ListDir(read(json)?),
            CommandKind::StorageTest => CommandReport::StorageTest(read(json)?),
            CommandKind::StorageUsage => CommandReport::StorageUsage(read(json)?),
            CommandKind::RcloneBackends => CommandReport::RcloneBackends(read(json)?),
            CommandKind::RunBackup => CommandReport::RunBackup(read(json)?),
            CommandKind::DeleteArtifacts => CommandReport::DeleteArtifacts(read(json)?),
            CommandKind::DiscoverDatabases => CommandReport::DiscoverDatabases(read(json)?),
            CommandKind::Relay => CommandReport::Relay(read(json)?),
            CommandKind::Restore => CommandReport::Restore(read(json)?),
            CommandKind::PruneRepository => CommandReport::PruneRepository(read(json)?),
            CommandKind::Verify => CommandReport::Verify(read(json)?),
            CommandKind::ListSnapshot => CommandReport::ListSnapshot(read(json)?),
        })
    }
}

impl CommandResult<serde_json::Value> {
    /// The typed outcome of a command of `kind`. A success whose report does not read as that
    /// kind's report is a failure (`AGENT_RESULT_INVALID`): nothing downstream sees a report it
    /// cannot trust.
    pub fn typed(self, kind: CommandKind) -> CommandResult<CommandReport> {
        match self {
            CommandResult::Succeeded { result } => match CommandReport::parse(kind, result) {
                Ok(result) => CommandResult::Succeeded { result },
                Err(e) => CommandResult::Failed {
                    error: CommandError {
                        code: crate::envelope::ErrorCode::AgentResultInvalid,
                        message: format!("the agent's {} report was unreadable: {e}", kind),
                    },
                },
            },
            CommandResult::Failed { error } => CommandResult::Failed { error },
        }
    }
}

impl<R> CommandResult<R> {
    /// The report, or why there is none.
    pub fn outcome(&self) -> Result<&R, &CommandError> {
        match self {
            CommandResult::Succeeded { result } => Ok(result),
            CommandResult::Failed { error } => Err(error),
        }
    }
}

/// What `storage_test` measured: the whole probe's round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageProbe {
    pub latency_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultAccepted {
    /// False when the same result had already been recorded (the report is idempotent).
    pub recorded: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn a_report_is_read_as_its_commands_kind_and_written_as_its_fields() {
        let relay = CommandResult::Succeeded {
            result: json!({"chunks": 2, "bytes": 10}),
        };
        let typed = relay.clone().typed(CommandKind::Relay);
        assert_eq!(
            typed,
            CommandResult::Succeeded {
                result: CommandReport::Relay(RelayReport {
                    chunks: 2,
                    bytes: 10
                })
            }
        );
        // The agent's form of it is the same JSON the Worker read.
        assert_eq!(
            serde_json::to_value(&typed).expect("json"),
            serde_json::to_value(&relay).expect("json")
        );
        // A report that is not its kind's is a failure with a code, not a guess.
        let CommandResult::Failed { error } = relay.typed(CommandKind::ListDir) else {
            panic!("a relay report is not a listing");
        };
        assert_eq!(error.code, crate::ErrorCode::AgentResultInvalid);
        for kind in CommandKind::ALL {
            let Ok(report) = CommandReport::parse(kind, json!([])) else {
                continue;
            };
            assert_eq!(report.kind(), kind);
        }
    }
}
