//! The `login_throttle` table: failed sign-in counters per account and per client IP, and per
//! client IP the number of its lockouts in the last day (key `lockouts:<ip key>`, the count in
//! `failures`, the first of the day's lockouts in `window_start`), which doubles its next lock.

use super::StoreError;
use super::{all, run, text};
use serde::Deserialize;
use stowage_shared::throttle::Counter;
use stowage_shared::time;
use worker::D1Database;

#[derive(Deserialize)]
struct Row {
    key: String,
    failures: i64,
    window_start: String,
    locked_until: Option<String>,
}

/// The counters that exist among `keys` (at most two: account and IP).
pub async fn get(db: &D1Database, keys: [&str; 2]) -> Result<Vec<(String, Counter)>, StoreError> {
    let rows: Vec<Row> = all(
        db,
        "SELECT key, failures, window_start, locked_until FROM login_throttle WHERE key IN (?1, ?2)",
        &[text(keys[0]), text(keys[1])],
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let counter = Counter {
                failures: u32::try_from(r.failures).unwrap_or(u32::MAX),
                window_start: time::parse(&r.window_start)?,
                locked_until: r.locked_until.as_deref().and_then(time::parse),
            };
            Some((r.key, counter))
        })
        .collect())
}

/// Counts one failure atomically and returns the count in the current window. A window that began
/// before `cutoff` starts over at 1.
pub async fn count_failure(
    db: &D1Database,
    key: &str,
    now: &str,
    cutoff: &str,
) -> Result<u32, StoreError> {
    #[derive(Deserialize)]
    struct Count {
        failures: i64,
    }
    let row: Option<Count> = super::first(
        db,
        "INSERT INTO login_throttle (key, failures, window_start) VALUES (?1, 1, ?2)
         ON CONFLICT (key) DO UPDATE SET
             failures     = CASE WHEN window_start <= ?3 THEN 1  ELSE failures + 1 END,
             window_start = CASE WHEN window_start <= ?3 THEN ?2 ELSE window_start END
         RETURNING failures",
        &[text(key), text(now), text(cutoff)],
    )
    .await?;
    Ok(row.map_or(1, |r| u32::try_from(r.failures).unwrap_or(u32::MAX)))
}

/// Locks a key until `until` (never shortens an existing lock) and starts its count over, so
/// that once the lock lifts the key has its full number of attempts again (a lock is the whole
/// penalty; the next one comes after as many failures as the first).
pub async fn lock(db: &D1Database, key: &str, until: &str, now: &str) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE login_throttle SET locked_until = MAX(COALESCE(locked_until, ''), ?2),
                failures = 0, window_start = ?3
         WHERE key = ?1",
        &[text(key), text(until), text(now)],
    )
    .await?;
    Ok(())
}

pub async fn clear(db: &D1Database, key: &str) -> Result<(), StoreError> {
    run(
        db,
        "DELETE FROM login_throttle WHERE key = ?1",
        &[text(key)],
    )
    .await?;
    Ok(())
}

/// Deletes counters whose window and lock are both over, and lockout counts older than a day.
pub async fn purge(
    db: &D1Database,
    now: &str,
    cutoff: &str,
    day_ago: &str,
) -> Result<usize, StoreError> {
    run(
        db,
        "DELETE FROM login_throttle
         WHERE (key NOT LIKE 'lockouts:%' AND window_start <= ?2
                AND (locked_until IS NULL OR locked_until <= ?1))
            OR (key LIKE 'lockouts:%' AND window_start <= ?3)",
        &[text(now), text(cutoff), text(day_ago)],
    )
    .await
}

/// How often `key` was locked out since `day_ago`.
pub async fn lockouts(db: &D1Database, key: &str, day_ago: &str) -> Result<u32, StoreError> {
    #[derive(Deserialize)]
    struct Count {
        failures: i64,
    }
    let row: Option<Count> = super::first(
        db,
        "SELECT failures FROM login_throttle WHERE key = ?1 AND window_start > ?2",
        &[text(&format!("lockouts:{key}")), text(day_ago)],
    )
    .await?;
    Ok(row.map_or(0, |r| u32::try_from(r.failures).unwrap_or(u32::MAX)))
}

/// Counts one more lockout of `key` (a day's count starts over after a day).
pub async fn count_lockout(
    db: &D1Database,
    key: &str,
    now: &str,
    day_ago: &str,
) -> Result<(), StoreError> {
    count_failure(db, &format!("lockouts:{key}"), now, day_ago)
        .await
        .map(drop)
}
