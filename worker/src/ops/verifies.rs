//! Checks run by a node: of a repository (restic's `check`) for one record's snapshot (its trees
//! and all of its data by default) or a whole target (its structure and a share of its data),
//! and of a record's archive (read whole: its SHA-256, every byte decompressed, its contents
//! against its manifest). Each check is a verification record; one that finds damage names the
//! records that need the damaged data and raises `verify_failed`.

use crate::config::Config;
use crate::error::ApiError;
use crate::ops::fleet::{Needs, choose_for_target};
use crate::ops::targets::{open_config, repository_password};
use crate::secrets::Sealer;
use crate::store::records::{RecordRow, RecordTargetRow};
use crate::store::storage_targets::TargetRow;
use crate::store::verifies::{self, Found, NewVerify, VerifyRow};
use stowage_shared::ErrorCode;
use stowage_shared::api::VerifyRecordOutput;
use stowage_shared::artifact::REPOSITORY_DIR;
use stowage_shared::notifications::{Message, VerifyFacts};
use stowage_shared::protocol::{CommandError, CommandSpec, VerifyReport};
use stowage_shared::status::RunStatus;
use stowage_shared::time::{self, Timestamp};
use worker::D1Database;

/// What to check.
#[derive(Debug)]
pub struct Check<'a> {
    pub target: &'a TargetRow,
    pub what: What<'a>,
    pub read_data_percent: u8,
    pub node: Option<i64>,
    pub triggered_by: &'a str,
}

/// The subject of a check.
#[derive(Debug, Clone, Copy)]
pub enum What<'a> {
    /// The target's whole repository.
    Repository,
    /// A record's snapshot in the target's repository.
    Snapshot(&'a RecordRow, &'a str),
    /// A record's archive on the target (always read whole).
    Archive(&'a RecordRow, &'a RecordTargetRow),
}

/// Starts a check on a node that uses the target. Returns the verification record's id.
pub async fn start(
    db: &D1Database,
    config: &Config,
    sealer: &Sealer,
    check: &Check<'_>,
    now: Timestamp,
) -> Result<i64, ApiError> {
    let row = check.target;
    let archive = matches!(check.what, What::Archive(..));
    if row.repo_ready_at.is_none() && !archive {
        return Err(ApiError::new(
            ErrorCode::StorageRepositoryMissing,
            format!("storage target {:?} holds no repository to check", row.name),
        ));
    }
    if check.read_data_percent > 100 {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "readDataPercent must be 0 to 100",
        ));
    }
    let target = open_config(sealer, row)?;
    let node_id = choose_for_target(
        db,
        config,
        now,
        check.node,
        row.id,
        Needs::storage(target.kind()),
    )
    .await?;
    let record = match check.what {
        What::Repository => None,
        What::Snapshot(record, _) | What::Archive(record, _) => Some(record),
    };
    let verify_id = verifies::start(
        db,
        &NewVerify {
            backup_record_id: record.map(|r| r.id),
            task_id: record.and_then(|r| r.task_id),
            task_name: record.map_or("", |r| &r.task_name),
            target_id: row.id,
            target_name: &row.name,
            node_id,
            read_data_percent: if archive {
                100
            } else {
                check.read_data_percent
            },
            triggered_by: check.triggered_by,
        },
        &time::format(now),
    )
    .await?;
    let spec = match check.what {
        What::Archive(record, copy) => CommandSpec::VerifyArchive {
            verify_id,
            source: crate::ops::runs::stored_object(db, sealer, row, copy).await?,
            sha256: record.checksum.clone(),
            bytes: u64::try_from(record.bytes).unwrap_or(0),
            compression: stowage_shared::artifact::compression_of(&copy.path),
        },
        What::Repository | What::Snapshot(..) => CommandSpec::VerifyRepository {
            verify_id,
            storage_type: target.kind(),
            config: target.to_json(),
            path: REPOSITORY_DIR.to_owned(),
            password: repository_password(db, sealer, row).await?,
            snapshot_id: match check.what {
                What::Snapshot(_, snapshot) => Some(snapshot.to_owned()),
                _ => None,
            },
            read_data_percent: check.read_data_percent,
        },
    };
    let command_id =
        crate::ops::commands::enqueue(db, &config.links, sealer, node_id, &spec, now).await?;
    verifies::attach(db, verify_id, command_id).await?;
    Ok(verify_id)
}

fn json_list<T: serde::Serialize>(list: &[T]) -> Result<String, ApiError> {
    serde_json::to_string(list).map_err(|e| ApiError::internal("encode check findings", e))
}

/// Settles the check of command `command_id`; on damage (or a check that could not run), the
/// channels subscribed to `verify_failed` hear of it.
pub async fn settle(
    db: &D1Database,
    command_id: i64,
    outcome: Result<&VerifyReport, &CommandError>,
    at: Timestamp,
) -> Result<(), ApiError> {
    let Some(row) = verifies::by_command(db, command_id).await? else {
        return Ok(());
    };
    let now = time::format(at);
    let empty: &[String] = &[];
    let (status, report_error, snapshots, errors, warnings, damaged, affected) = match outcome {
        Ok(r) if r.errors.is_empty() => (
            RunStatus::Success,
            String::new(),
            r.snapshots,
            empty,
            &r.warnings[..],
            empty,
            empty,
        ),
        Ok(r) => (
            RunStatus::Failed,
            format!(
                "{} problem(s) found{}: {}",
                r.errors.len(),
                if r.damaged_packs.is_empty() {
                    String::new()
                } else {
                    format!(" in {} pack(s)", r.damaged_packs.len())
                },
                r.errors.first().cloned().unwrap_or_default()
            ),
            r.snapshots,
            &r.errors[..],
            &r.warnings[..],
            &r.damaged_packs[..],
            &r.affected_snapshots[..],
        ),
        Err(e) => (
            RunStatus::Failed,
            e.message.clone(),
            0,
            empty,
            empty,
            empty,
            empty,
        ),
    };
    let affected_json = json_list(affected)?;
    let records = match (affected.is_empty(), outcome, row.backup_record_id) {
        (false, ..) => verifies::records_of_snapshots(db, row.target_id, &affected_json).await?,
        // A record's check that found problems beyond packs (an archive's): that record.
        (true, Ok(r), Some(record)) if !r.errors.is_empty() => vec![record],
        _ => Vec::new(),
    };
    let ended = verifies::finish(
        db,
        row.id,
        &Found {
            status,
            snapshots: i64::try_from(snapshots).unwrap_or(i64::MAX),
            errors: &json_list(errors)?,
            warnings: &json_list(warnings)?,
            damaged_packs: &json_list(damaged)?,
            affected_snapshots: &affected_json,
            affected_records: &json_list(&records)?,
            error: &report_error,
        },
        &now,
    )
    .await?;
    if ended && status == RunStatus::Failed {
        let settings = crate::store::settings::load(db).await?;
        let message = Message::verify_failed(
            &settings.site_name,
            &settings.site_url,
            &VerifyFacts {
                verify_id: row.id,
                target_name: &row.target_name,
                task_name: &row.task_name,
                error: &report_error,
                affected: affected.len(),
                finished_at: &now,
            },
        );
        crate::notify::emit_to(db, &message, &format!("verify:{}", row.id), at).await?;
    }
    Ok(())
}

fn list_of<T: serde::de::DeserializeOwned>(json: &str) -> Vec<T> {
    // Written only from encoded lists.
    serde_json::from_str(json).unwrap_or_default()
}

pub fn output(row: &VerifyRow) -> VerifyRecordOutput {
    VerifyRecordOutput {
        id: row.id,
        backup_record_id: row.backup_record_id,
        task_id: row.task_id,
        task_name: row.task_name.clone(),
        storage_target_id: row.target_id,
        storage_target_name: row.target_name.clone(),
        node_id: row.node_id,
        status: row.status,
        read_data_percent: u8::try_from(row.read_data_percent).unwrap_or(100),
        snapshots: u64::try_from(row.snapshots).unwrap_or(0),
        errors: list_of(&row.errors),
        warnings: list_of(&row.warnings),
        damaged_packs: list_of(&row.damaged_packs),
        affected_snapshots: list_of(&row.affected_snapshots),
        affected_records: list_of(&row.affected_records),
        error: row.error.clone(),
        triggered_by: row.triggered_by.clone(),
        started_at: row.started_at.clone(),
        finished_at: row.finished_at.clone(),
    }
}

/// The tick's part: starts the scheduled checks of whole repositories that are due (the
/// setting `repositoryCheckDays`, reading `repositoryCheckReadPercent` of the data). A check
/// that cannot start now is tried again a day later. Returns the checks started.
pub async fn start_due(
    db: &D1Database,
    config: &Config,
    now: Timestamp,
) -> Result<usize, ApiError> {
    let due = crate::store::storage_targets::due_checks(
        db,
        &time::format(now),
        &crate::ops::prune::stale_before(now),
    )
    .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let settings = crate::store::settings::load(db).await?;
    let sealer = config.sealer()?;
    let mut started = 0;
    for row in &due {
        let check = Check {
            target: row,
            what: What::Repository,
            read_data_percent: settings.repository_check_read_percent.min(100),
            node: None,
            triggered_by: "schedule",
        };
        let next = match start(db, config, &sealer, &check, now).await {
            Ok(_) => {
                started += 1;
                let days = i64::from(settings.repository_check_days.max(1));
                now + chrono::Duration::days(days)
            }
            Err(e) => {
                worker::console_warn!("check of target {} not started: {e}", row.id);
                now + chrono::Duration::days(1)
            }
        };
        crate::store::storage_targets::set_check_due(db, row.id, Some(&time::format(next))).await?;
    }
    Ok(started)
}
