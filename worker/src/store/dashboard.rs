//! The dashboard's figures, each one aggregate query: counts and sums are computed by D1, never by
//! loading records. Only the scheduled tasks (a catalogue, not a log) are read row by row, because
//! whether one is overdue is schedule maths that SQL cannot do.

use super::StoreError;
use super::{all, first, int, text};
use serde::Deserialize;
use stowage_shared::status::{ActivityKind, RunStatus};
use worker::D1Database;

#[derive(Debug, Default, Deserialize)]
pub struct TaskCounts {
    pub total: i64,
    pub enabled: Option<i64>,
}

pub async fn task_counts(db: &D1Database) -> Result<TaskCounts, StoreError> {
    Ok(first(
        db,
        "SELECT COUNT(*) AS total, SUM(enabled) AS enabled FROM backup_tasks",
        &[],
    )
    .await?
    .unwrap_or_default())
}

#[derive(Debug, Deserialize)]
pub struct StatusCount {
    pub status: RunStatus,
    pub n: i64,
}

/// Backup records started at or after `since`, by status.
pub async fn records_by_status(
    db: &D1Database,
    since: &str,
) -> Result<Vec<StatusCount>, StoreError> {
    all(
        db,
        "SELECT status, COUNT(*) AS n FROM backup_records WHERE started_at >= ?1 GROUP BY status",
        &[text(since)],
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
pub struct Totals {
    pub bytes_protected: Option<i64>,
    pub last_backup_at: Option<String>,
    pub nodes_online: Option<i64>,
    pub nodes_total: i64,
}

/// Bytes still stored, the newest success, and nodes online (marked so and heard from since
/// `seen_since`), in one round trip.
pub async fn totals(db: &D1Database, seen_since: &str) -> Result<Totals, StoreError> {
    Ok(first(
        db,
        "SELECT
            (SELECT SUM(bytes) FROM backup_records
             WHERE status IN ('success', 'partial') AND removed_at IS NULL AND removal = '') AS bytes_protected,
            (SELECT MAX(finished_at) FROM backup_records WHERE status = 'success') AS last_backup_at,
            (SELECT SUM(CASE WHEN status = 'online' AND last_seen_at > ?1 THEN 1 ELSE 0 END) FROM nodes) AS nodes_online,
            (SELECT COUNT(*) FROM nodes) AS nodes_total",
        &[text(seen_since)],
    )
    .await?
    .unwrap_or_default())
}

#[derive(Debug, Deserialize)]
pub struct UsageRow {
    pub target_id: i64,
    pub target_name: String,
    pub objects: i64,
    pub bytes: Option<i64>,
}

/// Stored copies per target (successful copies of records retention has not removed).
pub async fn usage_by_target(db: &D1Database) -> Result<Vec<UsageRow>, StoreError> {
    all(
        db,
        "SELECT t.target_id, COALESCE(s.name, MAX(t.target_name)) AS target_name,
                COUNT(*) AS objects, SUM(t.bytes) AS bytes
         FROM backup_record_targets t
         JOIN backup_records r ON r.id = t.record_id
         LEFT JOIN storage_targets s ON s.id = t.target_id
         WHERE t.status = 'success' AND r.removed_at IS NULL AND r.removal = ''
         GROUP BY t.target_id
         ORDER BY bytes DESC, t.target_id",
        &[],
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct TaskHealth {
    pub id: i64,
    pub name: String,
    pub node_id: i64,
    pub enabled: i64,
    pub cron_expr: String,
    pub time_zone: String,
    pub created_at: String,
    pub last_run_at: Option<String>,
    pub last_status: Option<RunStatus>,
    pub last_success_at: Option<String>,
}

/// Tasks that failed last or are scheduled, with their newest success (an indexed MAX per task).
pub async fn tasks_needing_a_look(db: &D1Database) -> Result<Vec<TaskHealth>, StoreError> {
    all(
        db,
        "SELECT t.id, t.name, t.node_id, t.enabled, t.cron_expr, t.time_zone, t.created_at,
                t.last_run_at, t.last_status,
                (SELECT MAX(r.finished_at) FROM backup_records r
                 WHERE r.task_id = t.id AND r.status = 'success') AS last_success_at
         FROM backup_tasks t
         WHERE t.last_status = 'failed' OR (t.enabled = 1 AND t.cron_expr <> '')
         ORDER BY t.name COLLATE NOCASE",
        &[],
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct DayRow {
    pub day: String,
    pub status: RunStatus,
    pub n: i64,
    pub bytes: Option<i64>,
}

/// Records started at or after `since`, by UTC day and status.
pub async fn by_day(db: &D1Database, since: &str) -> Result<Vec<DayRow>, StoreError> {
    all(
        db,
        "SELECT substr(started_at, 1, 10) AS day, status, COUNT(*) AS n, SUM(bytes) AS bytes
         FROM backup_records WHERE started_at >= ?1
         GROUP BY day, status ORDER BY day",
        &[text(since)],
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct ActivityRow {
    pub kind: ActivityKind,
    pub id: i64,
    pub task_name: String,
    pub node_id: i64,
    pub status: RunStatus,
    pub bytes: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// The newest backup runs and restores together.
pub async fn recent_activity(db: &D1Database, limit: i64) -> Result<Vec<ActivityRow>, StoreError> {
    all(
        db,
        "SELECT * FROM (
            SELECT 'backup' AS kind, id, task_name, node_id, status, bytes, started_at, finished_at
            FROM backup_records ORDER BY started_at DESC LIMIT ?1)
         UNION ALL
         SELECT * FROM (
            SELECT 'restore' AS kind, id, task_name, node_id, status, bytes, started_at, finished_at
            FROM restore_records ORDER BY started_at DESC LIMIT ?1)
         ORDER BY started_at DESC LIMIT ?1",
        &[int(limit)],
    )
    .await
}
