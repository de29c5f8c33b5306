//! Backup tasks.

use crate::status::RunStatus;
pub use crate::tasks::BackupTaskRequest;
use serde::{Deserialize, Serialize};

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
    /// `archive` or `repository`.
    pub format: crate::status::BackupFormat,
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
    pub last_status: Option<RunStatus>,
    /// The last fire time the scheduler could not run, and why (empty when none).
    pub last_skip: String,
    pub created_at: String,
    pub updated_at: String,
}
