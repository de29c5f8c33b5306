//! All SQL lives under this module, one file per table, with bound parameters only. Functions take
//! and return plain Rust values; handlers never see a statement.

pub mod audit;
pub mod commands;
pub mod dashboard;
pub mod logs;
pub mod nodes;
pub mod notifications;
pub mod oauth_sessions;
pub mod rclone_backends;
pub mod records;
pub mod relays;
pub mod restores;
pub mod sessions;
pub mod settings;
pub mod storage_targets;
pub mod system;
pub mod tasks;
pub mod throttle;
pub mod users;
pub mod verifies;

use serde::de::DeserializeOwned;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

/// A statement failed, or a stored value could not be encoded. Handlers see it only as an
/// internal error (the one conversion is in `crate::error`); the cause goes to the log.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {cause}")]
pub struct StoreError {
    pub context: &'static str,
    pub cause: String,
}

impl StoreError {
    pub fn new(context: &'static str, cause: impl std::fmt::Display) -> Self {
        Self {
            context,
            cause: cause.to_string(),
        }
    }
}

pub(crate) fn text(value: &str) -> JsValue {
    JsValue::from_str(value)
}

pub(crate) fn opt_text(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::NULL, JsValue::from_str)
}

/// D1 numbers are JavaScript doubles: ids and counts stay far below 2^53.
pub(crate) fn int(value: i64) -> JsValue {
    JsValue::from_f64(value as f64)
}

pub(crate) fn stmt(
    db: &D1Database,
    sql: &'static str,
    args: &[JsValue],
) -> Result<D1PreparedStatement, StoreError> {
    db.prepare(sql).bind(args).map_err(|e| d1_error(sql, e))
}

/// What this isolate's statements have cost in D1, from D1's own figures for each (`meta`).
/// Locally every request and Durable Object of `wrangler dev` runs in one isolate, so these are
/// the whole control plane's (`make loadtest` reads them); in production, one isolate's share.
pub mod usage {
    use std::sync::atomic::{AtomicU64, Ordering};

    static STATEMENTS: AtomicU64 = AtomicU64::new(0);
    static ROWS_READ: AtomicU64 = AtomicU64::new(0);
    static ROWS_WRITTEN: AtomicU64 = AtomicU64::new(0);

    pub(crate) fn count(meta: Option<&worker::D1ResultMeta>) {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = meta {
            let n = |v: Option<usize>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
            ROWS_READ.fetch_add(n(m.rows_read), Ordering::Relaxed);
            ROWS_WRITTEN.fetch_add(n(m.rows_written), Ordering::Relaxed);
        }
    }

    /// Statements, rows read and rows written so far.
    pub fn totals() -> (u64, u64, u64) {
        (
            STATEMENTS.load(Ordering::Relaxed),
            ROWS_READ.load(Ordering::Relaxed),
            ROWS_WRITTEN.load(Ordering::Relaxed),
        )
    }
}

pub(crate) fn counted(result: &worker::D1Result) {
    usage::count(result.meta().ok().flatten().as_ref());
}

pub(crate) async fn first<T: DeserializeOwned>(
    db: &D1Database,
    sql: &'static str,
    args: &[JsValue],
) -> Result<Option<T>, StoreError> {
    Ok(all(db, sql, args).await?.into_iter().next())
}

pub(crate) async fn all<T: DeserializeOwned>(
    db: &D1Database,
    sql: &'static str,
    args: &[JsValue],
) -> Result<Vec<T>, StoreError> {
    let result = stmt(db, sql, args)?
        .all()
        .await
        .map_err(|e| d1_error(sql, e))?;
    counted(&result);
    result.results::<T>().map_err(|e| d1_error(sql, e))
}

/// Runs a statement and returns how many rows it changed.
pub(crate) async fn run(
    db: &D1Database,
    sql: &'static str,
    args: &[JsValue],
) -> Result<usize, StoreError> {
    let result = stmt(db, sql, args)?
        .run()
        .await
        .map_err(|e| d1_error(sql, e))?;
    counted(&result);
    Ok(result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0))
}

/// Runs statements in one transaction (D1 batches are atomic) and returns each one's change count.
pub(crate) async fn batch(
    db: &D1Database,
    statements: Vec<D1PreparedStatement>,
) -> Result<Vec<usize>, StoreError> {
    let results = db
        .batch(statements)
        .await
        .map_err(|e| StoreError::new("d1 batch", e))?;
    results.iter().for_each(counted);
    Ok(results
        .iter()
        .map(|r| r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0))
        .collect())
}

/// The statement text helps the operator; bound values are never part of it.
fn d1_error(sql: &str, err: worker::Error) -> StoreError {
    let first_line = sql.trim().lines().next().unwrap_or_default();
    StoreError::new("d1", format!("{err} (in `{first_line}`)"))
}
