//! Restores of a backup record.

use super::records::{LogLine, Progress};
use crate::secret::SecretString;
use crate::status::RestoreStatus;
use serde::{Deserialize, Serialize};

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
    /// Repository (snapshot) records: the absolute paths of the files and folders to restore,
    /// each with everything under it; all of the snapshot when empty.
    #[serde(default)]
    pub selected_paths: Vec<String>,
}

/// Most paths one selective restore may name.
pub const SELECTED_PATHS_MAX: usize = 1_000;

/// The selected paths of a restore, checked: absolute, without `.` or `..` segments, each once.
pub fn check_selected_paths(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > SELECTED_PATHS_MAX {
        return Err(format!("selectedPaths: at most {SELECTED_PATHS_MAX} paths"));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for path in raw {
        let path = crate::validate::absolute_path(path.trim())
            .map_err(|e| format!("selectedPaths: {path:?} {}", e.reason))?;
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() || trimmed.split('/').any(|s| s == "." || s == "..") {
            return Err(format!(
                "selectedPaths: {path:?} must name a file or folder, without . or .. segments"
            ));
        }
        if !out.iter().any(|p| p == trimmed) {
            out.push(trimmed.to_owned());
        }
    }
    Ok(out)
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
    pub status: RestoreStatus,
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
