//! The `notification_channels` and `notification_deliveries` tables, and the reads that turn
//! finished records, node changes and storage tests into deliveries. Channel configs travel sealed;
//! delivery messages hold no secret.

use super::StoreError;
use super::{all, batch, first, int, run, stmt, text};
use serde::Deserialize;
use stowage_shared::notifications::ChannelType;
use stowage_shared::status::{DeliveryStatus, RestoreStatus, RunStatus, Trigger};
use worker::D1Database;

#[derive(Debug, Clone, Deserialize)]
pub struct ChannelRow {
    pub id: i64,
    pub uid: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ChannelType,
    pub enabled: i64,
    /// JSON array of event names.
    pub events: String,
    pub failure_threshold: i64,
    pub config_sealed: String,
    pub created_at: String,
    pub updated_at: String,
    pub last_status: Option<DeliveryStatus>,
    pub last_at: Option<String>,
    pub last_error: Option<String>,
}

macro_rules! channel_select {
    ($tail:literal) => {
        concat!(
            "SELECT c.id, c.uid, c.name, c.type, c.enabled, c.events, c.failure_threshold,
                    c.config_sealed, c.created_at, c.updated_at,
                    d.status AS last_status, COALESCE(d.sent_at, d.created_at) AS last_at,
                    d.last_error AS last_error
             FROM notification_channels c
             LEFT JOIN notification_deliveries d
               ON d.id = (SELECT MAX(id) FROM notification_deliveries WHERE channel_id = c.id) ",
            $tail
        )
    };
}

pub async fn list(db: &D1Database) -> Result<Vec<ChannelRow>, StoreError> {
    all(
        db,
        channel_select!("ORDER BY c.updated_at DESC, c.id DESC"),
        &[],
    )
    .await
}

pub async fn get(db: &D1Database, id: i64) -> Result<Option<ChannelRow>, StoreError> {
    first(db, channel_select!("WHERE c.id = ?1"), &[int(id)]).await
}

/// Enabled channels subscribed to `event` (a JSON-array membership test in SQL).
pub async fn subscribed(db: &D1Database, event: &str) -> Result<Vec<ChannelRow>, StoreError> {
    all(
        db,
        channel_select!(
            "WHERE c.enabled = 1
               AND EXISTS (SELECT 1 FROM json_each(c.events) WHERE json_each.value = ?1)
             ORDER BY c.id"
        ),
        &[text(event)],
    )
    .await
}

pub async fn existing_ids(db: &D1Database, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let json = serde_json::to_string(ids).map_err(|e| StoreError::new("encode ids", e))?;
    let rows: Vec<Id> = all(
        db,
        "SELECT id FROM notification_channels WHERE id IN (SELECT value FROM json_each(?1))",
        &[text(&json)],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

#[derive(Debug)]
pub struct Fields<'a> {
    pub name: &'a str,
    pub enabled: bool,
    pub events: &'a str,
    pub failure_threshold: u32,
    pub config_sealed: &'a str,
}

/// Inserts a channel; `None` when the name is taken.
pub async fn create(
    db: &D1Database,
    uid: &str,
    kind: &str,
    f: &Fields<'_>,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "INSERT INTO notification_channels (uid, name, type, enabled, events, failure_threshold, config_sealed, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT DO NOTHING RETURNING id",
        &[
            text(uid),
            text(f.name),
            text(kind),
            int(i64::from(f.enabled)),
            text(f.events),
            int(i64::from(f.failure_threshold)),
            text(f.config_sealed),
            text(now),
        ],
    )
    .await?;
    Ok(row.map(|r| r.id))
}

/// Updates a channel; false when the name is taken by another channel (or the row is gone).
pub async fn update(
    db: &D1Database,
    id: i64,
    f: &Fields<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let changed = run(
        db,
        "UPDATE OR IGNORE notification_channels
         SET name = ?2, enabled = ?3, events = ?4, failure_threshold = ?5, config_sealed = ?6,
             updated_at = ?7
         WHERE id = ?1",
        &[
            int(id),
            text(f.name),
            int(i64::from(f.enabled)),
            text(f.events),
            int(i64::from(f.failure_threshold)),
            text(f.config_sealed),
            text(now),
        ],
    )
    .await?;
    Ok(changed > 0)
}

pub async fn name_taken(db: &D1Database, name: &str, except: i64) -> Result<bool, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        taken: i64,
    }
    let row: Option<Row> = first(
        db,
        "SELECT EXISTS (SELECT 1 FROM notification_channels WHERE name = ?1 AND id <> ?2) AS taken",
        &[text(name), int(except)],
    )
    .await?;
    Ok(row.is_some_and(|r| r.taken != 0))
}

pub async fn delete(db: &D1Database, id: i64) -> Result<bool, StoreError> {
    // Deliveries go with the channel (ON DELETE CASCADE needs foreign keys, which D1 enforces).
    Ok(run(
        db,
        "DELETE FROM notification_channels WHERE id = ?1",
        &[int(id)],
    )
    .await?
        > 0)
}

/// A message queued for one channel.
#[derive(Debug)]
pub struct NewDelivery<'a> {
    pub channel_id: i64,
    pub channel_name: &'a str,
    pub event: &'a str,
    pub event_key: &'a str,
    pub message: &'a str,
}

pub fn enqueue_stmt(
    db: &D1Database,
    d: &NewDelivery<'_>,
    now: &str,
) -> Result<worker::D1PreparedStatement, StoreError> {
    stmt(
        db,
        "INSERT INTO notification_deliveries (channel_id, channel_name, event, event_key, message, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (channel_id, event_key) DO NOTHING",
        &[
            int(d.channel_id),
            text(d.channel_name),
            text(d.event),
            text(d.event_key),
            text(d.message),
            text(now),
        ],
    )
}

pub async fn enqueue(
    db: &D1Database,
    deliveries: &[NewDelivery<'_>],
    now: &str,
) -> Result<(), StoreError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let statements = deliveries
        .iter()
        .map(|d| enqueue_stmt(db, d, now))
        .collect::<Result<Vec<_>, _>>()?;
    batch(db, statements).await.map(drop)
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub channel_id: i64,
    pub channel_name: String,
    pub event: String,
    pub message: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: String,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// Claims up to `limit` deliveries that are due (and any whose claim lapsed), for `until`.
pub async fn claim_due(
    db: &D1Database,
    now: &str,
    until: &str,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StoreError> {
    all(
        db,
        "UPDATE notification_deliveries
         SET status = 'sending', claimed_until = ?2, attempts = attempts + 1
         WHERE id IN (SELECT id FROM notification_deliveries
                      WHERE (status = 'pending' AND next_attempt_at <= ?1)
                         OR (status = 'sending' AND claimed_until <= ?1)
                      ORDER BY id LIMIT ?3)
         RETURNING id, channel_id, channel_name, event, message, status, attempts, next_attempt_at,
                   last_error, created_at, sent_at",
        &[text(now), text(until), int(limit)],
    )
    .await
}

pub async fn mark_sent(db: &D1Database, id: i64, now: &str) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE notification_deliveries
         SET status = 'sent', sent_at = ?2, claimed_until = NULL, last_error = ''
         WHERE id = ?1",
        &[int(id), text(now)],
    )
    .await
    .map(drop)
}

/// A failed attempt: tried again at `retry_at`, or given up when that is `None`.
pub async fn mark_failed(
    db: &D1Database,
    id: i64,
    error: &str,
    retry_at: Option<&str>,
) -> Result<(), StoreError> {
    match retry_at {
        Some(at) => run(
            db,
            "UPDATE notification_deliveries
             SET status = 'pending', next_attempt_at = ?3, claimed_until = NULL, last_error = ?2
             WHERE id = ?1",
            &[int(id), text(error), text(at)],
        )
        .await
        .map(drop),
        None => run(
            db,
            "UPDATE notification_deliveries
             SET status = 'failed', claimed_until = NULL, last_error = ?2
             WHERE id = ?1",
            &[int(id), text(error)],
        )
        .await
        .map(drop),
    }
}

pub async fn deliveries_of(
    db: &D1Database,
    channel_id: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StoreError> {
    all(
        db,
        "SELECT id, channel_id, channel_name, event, message, status, attempts, next_attempt_at,
                last_error, created_at, sent_at
         FROM notification_deliveries WHERE channel_id = ?1 ORDER BY id DESC LIMIT ?2",
        &[int(channel_id), int(limit)],
    )
    .await
}

/// Deliveries that ended (sent or given up) before `before`; returns how many went.
pub async fn purge(db: &D1Database, before: &str) -> Result<usize, StoreError> {
    run(
        db,
        "DELETE FROM notification_deliveries
         WHERE status IN ('sent', 'failed') AND created_at < ?1",
        &[text(before)],
    )
    .await
}

/// A finished backup run whose events were not handed out yet, with what its message needs.
#[derive(Debug, Clone, Deserialize)]
pub struct FinishedRun {
    pub id: i64,
    pub task_id: Option<i64>,
    pub task_name: String,
    pub node_name: String,
    pub status: RunStatus,
    pub bytes: i64,
    pub error: String,
    pub trigger: Trigger,
    pub started_at: String,
    pub finished_at: String,
    /// Finished runs of the task in a row that failed, newest first, this one included.
    pub failure_streak: i64,
}

pub async fn unnotified_runs(db: &D1Database, limit: i64) -> Result<Vec<FinishedRun>, StoreError> {
    all(
        db,
        "SELECT r.id, r.task_id, r.task_name, COALESCE(n.name, '') AS node_name, r.status, r.bytes,
                r.error, r.trigger, r.started_at, r.finished_at,
                CASE WHEN r.status <> 'failed' THEN 0 ELSE (
                    SELECT COUNT(*) FROM backup_records f
                    WHERE f.task_id = r.task_id AND f.status = 'failed' AND f.id <= r.id
                      AND f.id > COALESCE((SELECT MAX(s.id) FROM backup_records s
                                           WHERE s.task_id = r.task_id AND s.id < r.id
                                             AND s.status IN ('success', 'partial')), 0)
                ) END AS failure_streak
         FROM backup_records r LEFT JOIN nodes n ON n.id = r.node_id
         WHERE r.notified_at IS NULL AND r.status <> 'running'
         ORDER BY r.id LIMIT ?1",
        &[int(limit)],
    )
    .await
}

#[derive(Debug, Clone, Deserialize)]
pub struct FinishedRestore {
    pub id: i64,
    pub backup_record_id: i64,
    pub task_name: String,
    pub node_name: String,
    pub status: RestoreStatus,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

pub async fn unnotified_restores(
    db: &D1Database,
    limit: i64,
) -> Result<Vec<FinishedRestore>, StoreError> {
    all(
        db,
        "SELECT r.id, r.backup_record_id, r.task_name, COALESCE(n.name, '') AS node_name, r.status,
                r.error, r.started_at, r.finished_at
         FROM restore_records r LEFT JOIN nodes n ON n.id = r.node_id
         WHERE r.notified_at IS NULL AND r.status <> 'running'
         ORDER BY r.id LIMIT ?1",
        &[int(limit)],
    )
    .await
}

/// Which table a notified record is in.
#[derive(Debug, Clone, Copy)]
pub enum Notified {
    Backup,
    Restore,
}

/// Queues `deliveries` and marks the record notified, in one transaction: an event is handed out
/// exactly once even when the tick and a request look at the same record.
pub async fn hand_out(
    db: &D1Database,
    which: Notified,
    record_id: i64,
    deliveries: &[NewDelivery<'_>],
    now: &str,
) -> Result<(), StoreError> {
    let mark = match which {
        Notified::Backup => stmt(
            db,
            "UPDATE backup_records SET notified_at = ?2 WHERE id = ?1 AND notified_at IS NULL",
            &[int(record_id), text(now)],
        )?,
        Notified::Restore => stmt(
            db,
            "UPDATE restore_records SET notified_at = ?2 WHERE id = ?1 AND notified_at IS NULL",
            &[int(record_id), text(now)],
        )?,
    };
    let mut statements = vec![mark];
    for d in deliveries {
        statements.push(enqueue_stmt(db, d, now)?);
    }
    batch(db, statements).await.map(drop)
}
