//! Restores: settle a restore record from the agent's report.

use crate::error::ApiError;
use crate::store::restores::{self};
use stowage_shared::protocol::CommandError;
use stowage_shared::protocol::RestoreReport;
use worker::D1Database;

/// Settles the restore of a finished `restore` command.
pub async fn settle(
    db: &D1Database,
    command_id: i64,
    outcome: Result<&RestoreReport, &CommandError>,
    now: &str,
) -> Result<(), ApiError> {
    let Some(id) = restores::by_command(db, command_id).await? else {
        return Ok(());
    };
    match outcome {
        Ok(r) => {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            restores::finish(db, id, true, n(r.files), n(r.bytes), "", now)
                .await
                .map_err(ApiError::from)
        }
        Err(error) => restores::finish(db, id, false, 0, 0, &error.message, now)
            .await
            .map_err(ApiError::from),
    }
}
