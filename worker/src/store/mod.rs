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

pub(crate) async fn first<T: DeserializeOwned>(
    db: &D1Database,
    sql: &'static str,
    args: &[JsValue],
) -> Result<Option<T>, StoreError> {
    stmt(db, sql, args)?
        .first::<T>(None)
        .await
        .map_err(|e| d1_error(sql, e))
}

pub(crate) async fn all<T: DeserializeOwned>(
    db: &D1Database,
    sql: &'static str,
    args: &[JsValue],
) -> Result<Vec<T>, StoreError> {
    stmt(db, sql, args)?
        .all()
        .await
        .and_then(|r| r.results::<T>())
        .map_err(|e| d1_error(sql, e))
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
