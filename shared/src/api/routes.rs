//! Route paths, each spelled once. The Worker's router matches the patterns (`:id` is a path
//! segment); the console, the agent and the tests build URLs with the functions beside them.

/// A pattern with its `:id` filled in.
fn with_id(pattern: &str, id: i64) -> String {
    pattern.replacen(":id", &id.to_string(), 1)
}

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
/// The agent's link: a WebSocket held by its node's Durable Object (`shared::link`).
pub const AGENT_LINK: &str = "/api/agent/link";

pub const NODE: &str = "/api/nodes/:id";
pub fn node(id: i64) -> String {
    with_id(NODE, id)
}
pub const NODE_FS_LIST: &str = "/api/nodes/:id/fs/list";
pub fn node_fs_list(id: i64) -> String {
    with_id(NODE_FS_LIST, id)
}
pub const NODE_ROTATE_TOKEN: &str = "/api/nodes/:id/rotate-token";
pub fn node_rotate_token(id: i64) -> String {
    with_id(NODE_ROTATE_TOKEN, id)
}
pub const STORAGE_TARGETS: &str = "/api/storage-targets";
pub const STORAGE_TARGET: &str = "/api/storage-targets/:id";
pub fn storage_target(id: i64) -> String {
    with_id(STORAGE_TARGET, id)
}
pub const STORAGE_TARGETS_TEST: &str = "/api/storage-targets/test";
pub const RCLONE_BACKENDS: &str = "/api/storage-targets/rclone/backends";
pub const GOOGLE_DRIVE_AUTH_URL: &str = "/api/storage-targets/google-drive/auth-url";
pub const GOOGLE_DRIVE_COMPLETE: &str = "/api/storage-targets/google-drive/complete";
pub const BACKUP_TASKS: &str = "/api/backup/tasks";
pub const BACKUP_TASK: &str = "/api/backup/tasks/:id";
pub fn backup_task(id: i64) -> String {
    with_id(BACKUP_TASK, id)
}
pub const BACKUP_TASK_TOGGLE: &str = "/api/backup/tasks/:id/toggle";
pub fn backup_task_toggle(id: i64) -> String {
    with_id(BACKUP_TASK_TOGGLE, id)
}
pub const BACKUP_TASK_RUN: &str = "/api/backup/tasks/:id/run";
pub fn backup_task_run(id: i64) -> String {
    with_id(BACKUP_TASK_RUN, id)
}
pub const BACKUP_RECORDS: &str = "/api/backup/records";
pub const BACKUP_RECORD: &str = "/api/backup/records/:id";
pub fn backup_record(id: i64) -> String {
    with_id(BACKUP_RECORD, id)
}
pub const BACKUP_RECORD_LOGS: &str = "/api/backup/records/:id/logs/stream";
pub fn backup_record_logs(id: i64) -> String {
    with_id(BACKUP_RECORD_LOGS, id)
}
pub const BACKUP_RECORD_DOWNLOAD: &str = "/api/backup/records/:id/download";
pub fn backup_record_download(id: i64) -> String {
    with_id(BACKUP_RECORD_DOWNLOAD, id)
}
pub const BACKUP_RECORD_RESTORE: &str = "/api/backup/records/:id/restore";
pub fn backup_record_restore(id: i64) -> String {
    with_id(BACKUP_RECORD_RESTORE, id)
}
pub const BACKUP_RECORDS_BATCH_DELETE: &str = "/api/backup/records/batch-delete";
pub const RESTORE_RECORDS: &str = "/api/restore/records";
pub const DATABASE_DISCOVER: &str = "/api/database/discover";
pub const RESTORE_RECORD: &str = "/api/restore/records/:id";
pub fn restore_record(id: i64) -> String {
    with_id(RESTORE_RECORD, id)
}
pub const RESTORE_RECORD_LOGS: &str = "/api/restore/records/:id/logs/stream";
pub fn restore_record_logs(id: i64) -> String {
    with_id(RESTORE_RECORD_LOGS, id)
}
/// A short-lived ticket that signs in one GET of one path, for clients that cannot send
/// headers (a browser's `EventSource`, a download link).
pub const AUTH_STREAM_TICKET: &str = "/api/auth/stream-ticket";
/// Where an agent posts a run's log lines and progress.
pub const AGENT_RECORD_LOG: &str = "/api/agent/records/:id";
pub fn agent_record_log(id: i64) -> String {
    with_id(AGENT_RECORD_LOG, id)
}
/// Where an agent posts a restore's log lines and progress.
pub const AGENT_RESTORE_LOG: &str = "/api/agent/restores/:id";
pub fn agent_restore_log(id: i64) -> String {
    with_id(AGENT_RESTORE_LOG, id)
}
/// Where an agent posts a check's log lines.
pub const AGENT_VERIFY_LOG: &str = "/api/agent/verifies/:id";
pub fn agent_verify_log(id: i64) -> String {
    with_id(AGENT_VERIFY_LOG, id)
}
/// Where an agent posts chunk `seq` of a relayed download (the body is the raw bytes).
pub const AGENT_RELAY_CHUNK: &str = "/api/agent/relays/:id";
pub fn agent_relay_chunk(id: i64, seq: u64) -> String {
    format!("{}?seq={seq}", with_id(AGENT_RELAY_CHUNK, id))
}
/// The first chunk of a relay that carries a snapshot's folder as a tar stream.
pub fn agent_relay_tar_chunk(id: i64) -> String {
    format!("{}&kind=tar", agent_relay_chunk(id, 0))
}
pub const STORAGE_TARGET_TEST: &str = "/api/storage-targets/:id/test";
pub fn storage_target_test(id: i64) -> String {
    with_id(STORAGE_TARGET_TEST, id)
}
pub const STORAGE_TARGET_RECOVERY_KIT: &str = "/api/storage-targets/:id/recovery-kit";
pub fn storage_target_recovery_kit(id: i64) -> String {
    with_id(STORAGE_TARGET_RECOVERY_KIT, id)
}
pub const STORAGE_TARGET_VERIFY: &str = "/api/storage-targets/:id/verify";
pub fn storage_target_verify(id: i64) -> String {
    with_id(STORAGE_TARGET_VERIFY, id)
}
pub const BACKUP_RECORD_FILES: &str = "/api/backup/records/:id/files";
pub fn backup_record_files(id: i64) -> String {
    with_id(BACKUP_RECORD_FILES, id)
}
pub const BACKUP_RECORD_VERIFY: &str = "/api/backup/records/:id/verify";
pub fn backup_record_verify(id: i64) -> String {
    with_id(BACKUP_RECORD_VERIFY, id)
}
pub const VERIFY_RECORDS: &str = "/api/verify/records";
pub const VERIFY_RECORD: &str = "/api/verify/records/:id";
pub fn verify_record(id: i64) -> String {
    with_id(VERIFY_RECORD, id)
}
pub const VERIFY_RECORD_LOGS: &str = "/api/verify/records/:id/logs/stream";
pub fn verify_record_logs(id: i64) -> String {
    with_id(VERIFY_RECORD_LOGS, id)
}
pub const STORAGE_TARGET_PRUNE: &str = "/api/storage-targets/:id/prune";
pub fn storage_target_prune(id: i64) -> String {
    with_id(STORAGE_TARGET_PRUNE, id)
}
pub const STORAGE_TARGET_USAGE: &str = "/api/storage-targets/:id/usage";
pub fn storage_target_usage(id: i64) -> String {
    with_id(STORAGE_TARGET_USAGE, id)
}
pub const STORAGE_TARGET_STAR: &str = "/api/storage-targets/:id/star";
pub fn storage_target_star(id: i64) -> String {
    with_id(STORAGE_TARGET_STAR, id)
}
pub const AGENT_COMMAND_RESULT: &str = "/api/agent/commands/:id/result";
pub fn agent_command_result(id: i64) -> String {
    with_id(AGENT_COMMAND_RESULT, id)
}
pub const NOTIFICATIONS: &str = "/api/notifications";
pub const NOTIFICATIONS_TEST: &str = "/api/notifications/test";
pub const NOTIFICATION: &str = "/api/notifications/:id";
pub fn notification(id: i64) -> String {
    with_id(NOTIFICATION, id)
}
pub const NOTIFICATION_TEST: &str = "/api/notifications/:id/test";
pub fn notification_test(id: i64) -> String {
    with_id(NOTIFICATION_TEST, id)
}
pub const NOTIFICATION_DELIVERIES: &str = "/api/notifications/:id/deliveries";
pub fn notification_deliveries(id: i64) -> String {
    with_id(NOTIFICATION_DELIVERIES, id)
}
pub const DASHBOARD_STATS: &str = "/api/dashboard/stats";
pub const DASHBOARD_TIMELINE: &str = "/api/dashboard/timeline";
pub const AUDIT_LOGS: &str = "/api/audit-logs";
pub const SYSTEM_INFO: &str = "/api/system/info";
pub const SYSTEM_UPDATE_CHECK: &str = "/api/system/update-check";
pub const SETTINGS: &str = "/api/settings";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_fill_the_patterns_the_router_matches() {
        assert_eq!(node(7), "/api/nodes/7");
        assert_eq!(backup_record_logs(3), "/api/backup/records/3/logs/stream");
        assert_eq!(agent_relay_chunk(2, 5), "/api/agent/relays/2?seq=5");
        assert_eq!(
            agent_relay_tar_chunk(2),
            "/api/agent/relays/2?seq=0&kind=tar"
        );
    }
}
