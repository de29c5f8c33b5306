//! A finished command's outcome, handed to whatever waits on it: the record, restore, removal or
//! download it belongs to. One match over every command kind, so that a new command must say
//! here what its outcome settles.

use super::{downloads, prune, restores, runs, verifies};
use crate::config::Config;
use crate::error::ApiError;
use stowage_shared::protocol::{CommandReport, CommandResult};
use stowage_shared::status::CommandKind;
use stowage_shared::time::{self, Timestamp};
use worker::D1Database;

/// Settles what waits on command `command_id`. True when that changed something people are
/// notified about.
pub async fn settle(
    db: &D1Database,
    config: &Config,
    command_id: i64,
    kind: CommandKind,
    result: &CommandResult<CommandReport>,
    at: Timestamp,
) -> Result<bool, ApiError> {
    use CommandReport as Report;
    let now = time::format(at);
    match (kind, result.outcome()) {
        (_, Ok(Report::RunBackup(report))) => {
            runs::settle(
                db,
                &config.links,
                &config.sealer()?,
                command_id,
                Ok(report),
                at,
            )
            .await?;
            Ok(true)
        }
        (CommandKind::RunBackup, Err(error)) => {
            runs::settle(
                db,
                &config.links,
                &config.sealer()?,
                command_id,
                Err(error),
                at,
            )
            .await?;
            Ok(true)
        }
        (_, Ok(Report::DeleteArtifacts(report))) => {
            runs::settle_removal(db, command_id, Ok(report), &now).await?;
            Ok(false)
        }
        (CommandKind::DeleteArtifacts, Err(error)) => {
            runs::settle_removal(db, command_id, Err(error), &now).await?;
            Ok(false)
        }
        (_, Ok(Report::Restore(report))) => {
            restores::settle(db, command_id, Ok(report), &now).await?;
            Ok(true)
        }
        (CommandKind::Restore, Err(error)) => {
            restores::settle(db, command_id, Err(error), &now).await?;
            Ok(true)
        }
        (_, Ok(Report::PruneRepository(report))) => {
            prune::settle(db, command_id, Ok(report), at).await?;
            Ok(false)
        }
        (CommandKind::PruneRepository, Err(error)) => {
            prune::settle(db, command_id, Err(error), at).await?;
            Ok(false)
        }
        (_, Ok(Report::Verify(report))) => {
            verifies::settle(db, command_id, Ok(report), at).await?;
            Ok(true)
        }
        (CommandKind::Verify, Err(error)) => {
            verifies::settle(db, command_id, Err(error), at).await?;
            Ok(true)
        }
        (_, Ok(Report::Relay(report))) => {
            downloads::settle(db, command_id, Ok(report)).await?;
            Ok(false)
        }
        (CommandKind::Relay, Err(error)) => {
            downloads::settle(db, command_id, Err(error)).await?;
            Ok(false)
        }
        // Their caller waits on the command row itself (`commands::call`).
        (
            _,
            Ok(
                Report::ListDir(_)
                | Report::ListSnapshot(_)
                | Report::StorageTest(_)
                | Report::StorageUsage(_)
                | Report::RcloneBackends(_)
                | Report::DiscoverDatabases(_),
            ),
        )
        | (
            CommandKind::ListDir
            | CommandKind::ListSnapshot
            | CommandKind::StorageTest
            | CommandKind::StorageUsage
            | CommandKind::RcloneBackends
            | CommandKind::DiscoverDatabases,
            Err(_),
        ) => Ok(false),
    }
}
