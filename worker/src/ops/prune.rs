//! Prunes of each target's restic repository: started by the tick when due (the setting
//! `repositoryPruneDays`, weekly by default) or by an administrator, run by a node that uses the
//! target, and kept apart from every run that writes there by a lease in D1
//! ([`storage_targets::claim_prune`]): a prune starts only while no repository run or restore
//! touches the target, and no run is handed out into a target being pruned. The agent holds an
//! exclusive restic lock besides, which keeps out anyone else's restic.

use crate::config::Config;
use crate::error::ApiError;
use crate::ops::fleet::{Needs, choose_for_target};
use crate::ops::targets::{open_config, repository_password};
use crate::secrets::Sealer;
use crate::store::settings;
use crate::store::storage_targets::{self as targets, PruneEnd, TargetRow};
use chrono::Duration;
use stowage_shared::artifact::REPOSITORY_DIR;
use stowage_shared::protocol::{CommandError, CommandSpec, PruneReport};
use stowage_shared::time::{self, Timestamp};
use stowage_shared::{ErrorCode, api::PruneStarted};
use worker::D1Database;

/// A prune lease older than this is taken for abandoned (its node died mid-prune): the next
/// prune may start and runs may be handed out again.
const LEASE: Duration = Duration::hours(6);
/// After a prune that failed or could not start, the tick tries again this much later.
const RETRY_AFTER: Duration = Duration::days(1);

/// Leases started before this are stale.
pub fn stale_before(now: Timestamp) -> String {
    time::format(now - LEASE)
}

/// When a repository written now is next pruned by the tick (none: scheduled prunes are off).
pub async fn next_due(db: &D1Database, now: Timestamp) -> Result<Option<String>, ApiError> {
    let days = settings::load(db).await?.repository_prune_days;
    Ok((days > 0).then(|| time::format(now + Duration::days(i64::from(days)))))
}

/// Starts a prune of `row`'s repository on `node` (or a node whose tasks use the target).
pub async fn start(
    db: &D1Database,
    config: &Config,
    sealer: &Sealer,
    row: &TargetRow,
    node: Option<i64>,
    now: Timestamp,
) -> Result<PruneStarted, ApiError> {
    if row.repo_ready_at.is_none() {
        return Err(ApiError::new(
            ErrorCode::StorageRepositoryMissing,
            format!("storage target {:?} holds no repository to prune", row.name),
        ));
    }
    let target = open_config(sealer, row)?;
    let node_id =
        choose_for_target(db, config, now, node, row.id, Needs::storage(target.kind())).await?;
    let password = repository_password(db, sealer, row).await?;
    let started_at = time::format(now);
    if !targets::claim_prune(db, row.id, &started_at, &stale_before(now)).await? {
        return Err(ApiError::new(
            ErrorCode::StorageRepositoryBusy,
            format!(
                "the repository on {:?} is in use: a run or a restore is reading or writing it, or a prune is under way; try again when it ends",
                row.name
            ),
        ));
    }
    let spec = CommandSpec::PruneRepository {
        target_id: row.id,
        storage_type: target.kind(),
        config: target.to_json(),
        path: REPOSITORY_DIR.to_owned(),
        password,
    };
    match crate::ops::commands::enqueue(db, &config.links, sealer, node_id, &spec, now).await {
        Ok(command_id) => {
            targets::attach_prune(db, row.id, command_id).await?;
            Ok(PruneStarted {
                target_id: row.id,
                node_id,
                started_at,
            })
        }
        Err(e) => {
            targets::release_prune(db, row.id, &time::format(now + RETRY_AFTER)).await?;
            Err(e)
        }
    }
}

/// Settles the prune of command `command_id` from the agent's outcome.
pub async fn settle(
    db: &D1Database,
    command_id: i64,
    outcome: Result<&PruneReport, &CommandError>,
    at: Timestamp,
) -> Result<(), ApiError> {
    let now = time::format(at);
    let next_due = match outcome {
        Ok(_) => next_due(db, at).await?,
        Err(_) => Some(time::format(at + RETRY_AFTER)),
    };
    let freed = |r: &PruneReport| {
        i64::try_from(r.bytes_before.saturating_sub(r.bytes_after)).unwrap_or(i64::MAX)
    };
    let end = PruneEnd {
        outcome: outcome.map(freed).map_err(|e| e.message.as_str()),
        now: &now,
        next_due: next_due.as_deref(),
    };
    targets::finish_prune(db, command_id, &end).await?;
    Ok(())
}

/// Ends the prunes whose command expired (the node stopped answering): the lease goes back and
/// the prune is tried again a day later. Returns how many.
pub async fn fail_lost(db: &D1Database, now: Timestamp) -> Result<usize, ApiError> {
    Ok(targets::fail_lost_prunes(db, &time::format(now), &time::format(now + RETRY_AFTER)).await?)
}

/// The tick's part: starts the prunes that are due. A prune that cannot start now (a run is
/// writing there, no node is online) is tried again a day later. Returns the prunes started.
pub async fn start_due(
    db: &D1Database,
    config: &Config,
    now: Timestamp,
) -> Result<usize, ApiError> {
    let due = targets::due_prunes(db, &time::format(now), &stale_before(now)).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let sealer = config.sealer()?;
    let mut started = 0;
    for row in &due {
        match start(db, config, &sealer, row, None, now).await {
            Ok(_) => started += 1,
            Err(e) => {
                worker::console_warn!("prune of target {} not started: {e}", row.id);
                targets::postpone_prune(db, row.id, &time::format(now + RETRY_AFTER)).await?;
            }
        }
    }
    Ok(started)
}
