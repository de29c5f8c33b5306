//! Relayed downloads: settle a relay when its command ends.

use crate::error::ApiError;
use crate::store::relays::{self};
use stowage_shared::ErrorCode;
use stowage_shared::protocol::{CommandResult, RelayReport};
use worker::D1Database;

/// Ends the relay of a finished `relay` command.
pub async fn settle(
    db: &D1Database,
    command_id: i64,
    report: &CommandResult,
) -> Result<(), ApiError> {
    let Some(id) = relays::by_command(db, command_id).await? else {
        return Ok(());
    };
    match report {
        CommandResult::Succeeded { result } => {
            let r: RelayReport = serde_json::from_value(result.clone()).map_err(|e| {
                ApiError::new(
                    ErrorCode::AgentResultInvalid,
                    format!("the relay's report was unreadable: {e}"),
                )
            })?;
            relays::finish(db, id, Ok(i64::try_from(r.chunks).unwrap_or(i64::MAX))).await
        }
        CommandResult::Failed { error } => relays::finish(db, id, Err(&error.message)).await,
    }
}
