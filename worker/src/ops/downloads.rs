//! Relayed downloads: settle a relay when its command ends.

use crate::error::ApiError;
use crate::store::relays::{self};
use stowage_shared::protocol::CommandError;
use stowage_shared::protocol::RelayReport;
use worker::D1Database;

/// Ends the relay of a finished `relay` command.
pub async fn settle(
    db: &D1Database,
    command_id: i64,
    outcome: Result<&RelayReport, &CommandError>,
) -> Result<(), ApiError> {
    let Some(id) = relays::by_command(db, command_id).await? else {
        return Ok(());
    };
    match outcome {
        Ok(r) => relays::finish(db, id, Ok(i64::try_from(r.chunks).unwrap_or(i64::MAX)))
            .await
            .map_err(ApiError::from),
        Err(error) => relays::finish(db, id, Err(&error.message))
            .await
            .map_err(ApiError::from),
    }
}
