//! The `audit_logs` table. Writing is part of the request: an action that cannot be audited fails.

use super::{int, opt_text, stmt, text};
use crate::error::ApiError;
use worker::{D1Database, D1PreparedStatement};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One audit row. `detail` is a short reason code, never a secret or a request body.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub now: &'a str,
    pub actor_user_id: Option<i64>,
    pub actor: &'a str,
    pub action: &'static str,
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
    pub outcome: Outcome,
    pub detail: &'a str,
    pub client_ip: &'a str,
    pub user_agent: &'a str,
}

pub fn insert(db: &D1Database, e: &Entry<'_>) -> Result<D1PreparedStatement, ApiError> {
    stmt(
        db,
        "INSERT INTO audit_logs (created_at, actor_user_id, actor, action, resource_type, resource_id, result, detail, client_ip, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        &[
            text(e.now),
            e.actor_user_id.map_or(worker::wasm_bindgen::JsValue::NULL, int),
            text(e.actor),
            text(e.action),
            text(e.resource_type),
            opt_text(e.resource_id.as_deref()),
            text(e.outcome.as_str()),
            text(e.detail),
            text(e.client_ip),
            text(e.user_agent),
        ],
    )
}

pub async fn record(db: &D1Database, e: &Entry<'_>) -> Result<(), ApiError> {
    insert(db, e)?
        .run()
        .await
        .map_err(|err| ApiError::internal("audit insert", err))?;
    Ok(())
}
