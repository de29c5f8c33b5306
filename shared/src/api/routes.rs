//! Route paths. The Worker's router, the console and the tests build URLs from these.

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
