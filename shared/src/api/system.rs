//! Health, system information, limits, settings-adjacent answers and the audit log.

use serde::{Deserialize, Serialize};

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

/// D1's cost of one isolate's statements (see [`SystemInfo::d1_usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct D1Usage {
    pub statements: u64,
    pub rows_read: u64,
    pub rows_written: u64,
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
    /// What the statements of the isolate that answered cost in D1 since it started (D1's own
    /// figures). Locally the whole control plane runs in one isolate; in production, one of many.
    #[serde(default)]
    pub d1_usage: D1Usage,
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
