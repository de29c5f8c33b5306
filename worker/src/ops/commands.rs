//! Calls through an agent: seal a command's spec, queue it for a node, wait a bounded time for a
//! synchronous result, and hand a finished command's typed report to whatever waits on it.
//! Specs are sealed because some carry credentials.

use crate::error::ApiError;
use crate::links::Links;
use crate::secrets::Identity;
use crate::secrets::Sealer;
use crate::store::commands;
use serde_json::Value;
use stowage_shared::ErrorCode;
use stowage_shared::commands::CommandStatus;
use stowage_shared::protocol::CommandReport;
use stowage_shared::protocol::{CommandError, CommandSpec};
use stowage_shared::time::{self, Timestamp};
use worker::D1Database;

/// Queues `spec` for `node_id` and wakes the node's agent, which claims it at once when it holds
/// a link (without one, at its next poll).
pub async fn enqueue(
    db: &D1Database,
    links: &Links,
    sealer: &Sealer,
    node_id: i64,
    spec: &CommandSpec,
    now: Timestamp,
) -> Result<i64, ApiError> {
    let uid = crate::secrets::random_id()?;
    let plain = serde_json::to_vec(spec).map_err(|e| ApiError::internal("encode command", e))?;
    let sealed = sealer.seal(Identity::Command(&uid), &plain)?;
    let id = commands::enqueue(db, &uid, node_id, spec.kind(), &sealed, &time::format(now)).await?;
    links.wake(node_id).await;
    Ok(id)
}

/// Opens a claimed command's spec for the agent that claimed it.
pub fn open(sealer: &Sealer, uid: &str, sealed: &str) -> Result<CommandSpec, ApiError> {
    let plain = sealer.open(Identity::Command(uid), sealed)?;
    serde_json::from_slice(&plain).map_err(|e| ApiError::internal("decode stored command", e))
}

/// How a synchronous call answers an error the agent reported: codes in `passes` reach the caller
/// as they are, any other becomes `fallback`.
#[derive(Debug, Clone, Copy)]
pub struct ErrorPolicy {
    pub passes: &'static [ErrorCode],
    pub fallback: ErrorCode,
}

/// Queues `spec` for `node_id` and waits up to `wait` for its result. On timeout a command no agent
/// has claimed is given up, so no agent works on an answer nobody will read.
#[allow(clippy::too_many_arguments)]
pub async fn call(
    db: &D1Database,
    links: &Links,
    sealer: &Sealer,
    node_id: i64,
    spec: &CommandSpec,
    wait: chrono::Duration,
    now: Timestamp,
    errors: ErrorPolicy,
) -> Result<CommandReport, ApiError> {
    const STEP_MS: i64 = 200;
    let command_id = enqueue(db, links, sealer, node_id, spec, now).await?;
    let timeout = || {
        ApiError::new(
            ErrorCode::AgentCommandTimeout,
            format!("the agent did not answer within {} s", wait.num_seconds()),
        )
    };
    let mut waited_ms = 0;
    loop {
        worker::Delay::from(std::time::Duration::from_millis(STEP_MS.unsigned_abs())).await;
        waited_ms += STEP_MS;
        let row = commands::get(db, command_id)
            .await?
            .ok_or_else(|| ApiError::internal("wait for command", "command row vanished"))?;
        match Some(row.status) {
            Some(CommandStatus::Succeeded) => {
                let unreadable = |e: serde_json::Error| {
                    ApiError::new(
                        ErrorCode::AgentResultInvalid,
                        format!("the agent's answer was unreadable: {e}"),
                    )
                };
                let json: Value = serde_json::from_str(row.result.as_deref().unwrap_or("null"))
                    .map_err(unreadable)?;
                return CommandReport::parse(row.kind, json).map_err(unreadable);
            }
            Some(CommandStatus::Failed) => {
                let error = CommandError {
                    code: row
                        .error_code
                        .as_deref()
                        .and_then(ErrorCode::from_code)
                        .unwrap_or(errors.fallback),
                    message: row.error_message.unwrap_or_default(),
                };
                let code = if errors.passes.contains(&error.code) {
                    error.code
                } else {
                    errors.fallback
                };
                return Err(ApiError::new(code, error.message));
            }
            Some(CommandStatus::Expired) => return Err(timeout()),
            _ if waited_ms >= wait.num_milliseconds() => {
                commands::abandon(db, command_id, &time::format(crate::now())).await?;
                return Err(timeout());
            }
            _ => {}
        }
    }
}

/// A report that is not the one its command asked for. [`call`] reads each report as its
/// command's kind, so this does not happen; it is an error, not a panic, all the same.
pub fn unexpected(report: &CommandReport) -> ApiError {
    ApiError::new(
        ErrorCode::AgentResultInvalid,
        format!("the agent answered with a {} report", report.kind()),
    )
}
