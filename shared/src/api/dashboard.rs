//! The dashboard's figures and timeline.

use crate::status::{ActivityKind, RunStatus};
use serde::{Deserialize, Serialize};

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
    pub kind: ActivityKind,
    pub id: i64,
    pub task_name: String,
    pub node_id: i64,
    /// A restore's status is one of a run's words.
    pub status: RunStatus,
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
