//! Backup records (one per run), their targets, logs and progress.

use crate::status::{RunStatus, TargetStatus, Trigger};
use serde::{Deserialize, Serialize};

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

/// One target of a backup record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordTargetOutput {
    pub target_id: i64,
    pub target_name: String,
    pub status: TargetStatus,
    /// The artifact's path, or the repository's directory on the target.
    pub path: String,
    /// Bytes stored (repositories: bytes this run added).
    pub bytes: u64,
    pub error: String,
    /// The snapshot in the target's restic repository (repository records).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub snapshot_id: String,
}

/// What a repository run found changed since the task's previous snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotChanges {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
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
    /// `archive` or `repository`: how this run stored its backup.
    pub format: crate::status::BackupFormat,
    /// Database backups: the databases the artifact holds, in order.
    pub databases: Vec<String>,
    pub node_id: i64,
    /// `manual` or `schedule`.
    pub trigger: Trigger,
    /// The scheduled fire time a `schedule` run is for.
    pub fire_at: Option<String>,
    /// Earlier fire times this scheduled run stands for (missed while the control plane was down).
    pub coalesced_slots: u32,
    pub status: RunStatus,
    /// Bytes stored: the artifact's size, or for a repository run the bytes it added (summed
    /// over its targets).
    pub bytes: u64,
    pub files: u64,
    /// Bytes read from the sources (a repository run: the size of everything in the snapshot).
    pub source_bytes: u64,
    /// Lowercase hex SHA-256 of the artifact (empty for repository runs: restic checks every
    /// blob against its own hash).
    pub checksum: String,
    /// Repository runs: files new, changed and unmodified since the task's previous snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<SnapshotChanges>,
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
