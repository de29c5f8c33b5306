//! The `run_logs` table and the progress columns: what agents report while a run or restore goes.

use super::StoreError;
use super::{all, int, run, text};
use serde::Deserialize;
use stowage_shared::api::{LogLevel, LogLine};
use stowage_shared::protocol::LOG_RECORD_MAX_LINES;
use stowage_shared::status::RunStatus;
use worker::D1Database;

/// Whose log: a backup run's, a restore's or a check's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Backup,
    Restore,
    Verify,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Backup => "backup",
            Kind::Restore => "restore",
            Kind::Verify => "verify",
        }
    }
}

/// Stores new lines and the latest progress of a record that is running on `node_id`; false
/// when it is not (ended, or another node's), and then nothing is stored. Lines already stored
/// (a retried batch) are skipped.
pub async fn append(
    db: &D1Database,
    kind: Kind,
    record_id: i64,
    node_id: i64,
    lines_json: &str,
    progress_json: Option<&str>,
) -> Result<bool, StoreError> {
    // The progress update doubles as the check that the record is this node's and running.
    let live = match (kind, progress_json) {
        (Kind::Backup, Some(p)) => run(
            db,
            "UPDATE backup_records SET progress = ?3
             WHERE id = ?1 AND node_id = ?2 AND status = 'running'",
            &[int(record_id), int(node_id), text(p)],
        )
        .await?
        .min(1),
        (Kind::Restore, Some(p)) => run(
            db,
            "UPDATE restore_records SET progress = ?3
             WHERE id = ?1 AND node_id = ?2 AND status = 'running'",
            &[int(record_id), int(node_id), text(p)],
        )
        .await?
        .min(1),
        (Kind::Backup, None) => {
            count(
                db,
                "SELECT count(*) AS n FROM backup_records
             WHERE id = ?1 AND node_id = ?2 AND status = 'running'",
                record_id,
                node_id,
            )
            .await?
        }
        (Kind::Restore, None) => {
            count(
                db,
                "SELECT count(*) AS n FROM restore_records
             WHERE id = ?1 AND node_id = ?2 AND status = 'running'",
                record_id,
                node_id,
            )
            .await?
        }
        // A check reports lines only: its progress is not kept.
        (Kind::Verify, _) => {
            count(
                db,
                "SELECT count(*) AS n FROM verify_records
             WHERE id = ?1 AND node_id = ?2 AND status = 'running'",
                record_id,
                node_id,
            )
            .await?
        }
    };
    if live == 0 {
        return Ok(false);
    }
    run(
        db,
        "INSERT INTO run_logs (kind, record_id, seq, at, level, message)
         SELECT ?1, ?2, json_extract(value, '$.seq'), json_extract(value, '$.at'),
                CASE WHEN json_extract(value, '$.seq') = ?4 THEN 'warn'
                     ELSE json_extract(value, '$.level') END,
                CASE WHEN json_extract(value, '$.seq') = ?4 THEN ?5
                     ELSE json_extract(value, '$.message') END
         FROM json_each(?3) WHERE json_extract(value, '$.seq') <= ?4
         ON CONFLICT (kind, record_id, seq) DO NOTHING",
        &[
            text(kind.as_str()),
            int(record_id),
            text(lines_json),
            int(i64::try_from(LOG_RECORD_MAX_LINES).unwrap_or(i64::MAX)),
            text(&format!(
                "log truncated: a record keeps {LOG_RECORD_MAX_LINES} lines; the agent's own log has the rest"
            )),
        ],
    )
    .await?;
    Ok(true)
}

async fn count(
    db: &D1Database,
    sql: &'static str,
    record_id: i64,
    node_id: i64,
) -> Result<usize, StoreError> {
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    let row: Option<N> = super::first(db, sql, &[int(record_id), int(node_id)]).await?;
    Ok(row.map_or(0, |r| usize::try_from(r.n).unwrap_or(0)))
}

#[derive(Debug, Deserialize)]
struct Row {
    seq: i64,
    at: String,
    level: String,
    message: String,
}

fn lines(rows: Vec<Row>) -> Vec<LogLine> {
    rows.into_iter()
        .map(|r| LogLine {
            seq: u64::try_from(r.seq).unwrap_or_default(),
            at: r.at,
            level: LogLevel::parse(&r.level).unwrap_or(LogLevel::Info),
            message: r.message,
        })
        .collect()
}

/// Lines after `after`, oldest first, at most `limit`.
pub async fn after(
    db: &D1Database,
    kind: Kind,
    record_id: i64,
    after: u64,
    limit: i64,
) -> Result<Vec<LogLine>, StoreError> {
    let rows = all(
        db,
        "SELECT seq, at, level, message FROM run_logs
         WHERE kind = ?1 AND record_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
        &[
            text(kind.as_str()),
            int(record_id),
            int(i64::try_from(after).unwrap_or(i64::MAX)),
            int(limit),
        ],
    )
    .await?;
    Ok(lines(rows))
}

/// The last `limit` lines, oldest first.
pub async fn tail(
    db: &D1Database,
    kind: Kind,
    record_id: i64,
    limit: i64,
) -> Result<Vec<LogLine>, StoreError> {
    let rows = all(
        db,
        "SELECT seq, at, level, message FROM
           (SELECT seq, at, level, message FROM run_logs
            WHERE kind = ?1 AND record_id = ?2 ORDER BY seq DESC LIMIT ?3)
         ORDER BY seq",
        &[text(kind.as_str()), int(record_id), int(limit)],
    )
    .await?;
    Ok(lines(rows))
}

/// A record's status and stored progress.
#[derive(Debug, Clone, Deserialize)]
pub struct State {
    /// A restore's status is one of a run's words.
    pub status: RunStatus,
    pub progress: String,
}

pub async fn state(
    db: &D1Database,
    kind: Kind,
    record_id: i64,
) -> Result<Option<State>, StoreError> {
    match kind {
        Kind::Backup => {
            super::first(
                db,
                "SELECT status, progress FROM backup_records WHERE id = ?1",
                &[int(record_id)],
            )
            .await
        }
        Kind::Restore => {
            super::first(
                db,
                "SELECT status, progress FROM restore_records WHERE id = ?1",
                &[int(record_id)],
            )
            .await
        }
        Kind::Verify => {
            super::first(
                db,
                "SELECT status, '' AS progress FROM verify_records WHERE id = ?1",
                &[int(record_id)],
            )
            .await
        }
    }
}

/// Drops the log lines of up to 200 runs, 200 restores and 200 checks that finished before
/// `before` (a check's too when its record is gone with its target), a tick at a time, so one
/// statement never runs long; returns how many lines went.
pub async fn purge(db: &D1Database, before: &str) -> Result<usize, StoreError> {
    let changes = super::batch(
        db,
        vec![
            super::stmt(
                db,
                "DELETE FROM run_logs WHERE kind = 'backup' AND record_id IN (
                    SELECT DISTINCT l.record_id FROM run_logs l
                    JOIN backup_records r ON r.id = l.record_id
                    WHERE l.kind = 'backup' AND r.finished_at < ?1 LIMIT 200)",
                &[text(before)],
            )?,
            super::stmt(
                db,
                "DELETE FROM run_logs WHERE kind = 'restore' AND record_id IN (
                    SELECT DISTINCT l.record_id FROM run_logs l
                    JOIN restore_records r ON r.id = l.record_id
                    WHERE l.kind = 'restore' AND r.finished_at < ?1 LIMIT 200)",
                &[text(before)],
            )?,
            super::stmt(
                db,
                "DELETE FROM run_logs WHERE kind = 'verify' AND record_id IN (
                    SELECT DISTINCT l.record_id FROM run_logs l
                    LEFT JOIN verify_records v ON v.id = l.record_id
                    WHERE l.kind = 'verify' AND (v.id IS NULL OR v.finished_at < ?1) LIMIT 200)",
                &[text(before)],
            )?,
        ],
    )
    .await?;
    Ok(changes.iter().sum())
}
