//! Backup runs: hand a run to its node, settle its record from the agent's report, apply the
//! task's retention, delete records with their stored objects, and find a stored copy to
//! download or restore.

use crate::error::ApiError;
use crate::links::Links;
use crate::ops::targets::open_config;
use crate::secrets::Sealer;
use crate::store::records::{
    self, Finished, PlannedTarget, RecordRow, RecordTargetRow, TargetOutcome,
};
use crate::store::tasks::TaskRow;
use crate::store::{storage_targets, tasks};
use stowage_shared::api::Progress;
use stowage_shared::artifact::{REPOSITORY_DIR, artifact_path};
use stowage_shared::databases::DumpSection;
use stowage_shared::protocol::CommandError;
use stowage_shared::protocol::CommandReport;
use stowage_shared::protocol::SnapshotRef;
use stowage_shared::protocol::{
    CommandSpec, DeleteArtifactsReport, RunBackupReport, RunDestination, StoredObject,
};
use stowage_shared::retention::{Backup, plan_runs};
use stowage_shared::status::BackupFormat;
use stowage_shared::status::{RunStatus, TargetStatus};
use stowage_shared::tasks::TaskType;
use stowage_shared::time::Timestamp;
use stowage_shared::{ErrorCode, time};
use worker::D1Database;

/// Where each database lies in a dump record's artifact (none for other records).
pub fn sections(row: &RecordRow) -> Vec<DumpSection> {
    // Written only from a parsed report.
    serde_json::from_str(&row.sections).unwrap_or_default()
}

/// The stored progress of a running record or restore.
pub fn progress(running: bool, stored: &str) -> Option<Progress> {
    running.then(|| serde_json::from_str(stored).ok()).flatten()
}

/// Log lines the detail of a record or restore shows.
pub const LOG_TAIL: i64 = 100;

/// What a task's node needs to run it.
pub fn needs(task: &TaskRow) -> Result<crate::ops::fleet::Needs, ApiError> {
    Ok(
        match crate::ops::tasks::stored_spec(task)?.source.database() {
            Some((engine, db)) => {
                crate::ops::fleet::Needs::Tools(engine.backup_tools(db.include_globals))
            }
            None => crate::ops::fleet::Needs::Nothing,
        },
    )
}

/// Gives a started record's run to the task's node: a sealed `run_backup` command with the
/// targets' configs, the artifact path and a database task's password, linked to the record
/// with its destinations. (Callers have checked that the node has the task's programs.)
pub async fn hand_out(
    db: &D1Database,
    links: &Links,
    sealer: &Sealer,
    task: &TaskRow,
    record_id: i64,
    now: Timestamp,
) -> Result<(), ApiError> {
    let spec = crate::ops::tasks::stored_spec(task)?;
    let kind = spec.source.kind();
    let repository = spec.format == BackupFormat::Repository;
    let path = if repository {
        REPOSITORY_DIR.to_owned()
    } else {
        artifact_path(&task.name, record_id, now, kind, spec.compression)
    };
    let db_password = match kind {
        TaskType::Mysql | TaskType::Postgresql => {
            Some(crate::ops::tasks::open_password(sealer, task)?)
        }
        TaskType::File | TaskType::Sqlite => None,
    };
    let mut destinations = Vec::new();
    let mut names = Vec::new();
    for t in tasks::targets(db, task.id).await? {
        let row = storage_targets::get(db, t.target_id)
            .await?
            .ok_or_else(|| ApiError::internal("task target", "a task's target is missing"))?;
        let target = open_config(sealer, &row)?;
        if repository && row.repo_ready_at.is_none() {
            // Until a snapshot has landed there, the first run creates the repository: a second
            // run at the same time would create another one in the same place.
            if let Some(earlier) = records::earlier_repository_run_on(db, record_id, row.id).await?
            {
                let why = format!(
                    "the repository on {:?} is being created by run {earlier}; one run at a time writes there until it exists, so this run did not start",
                    row.name
                );
                fail_unstarted(db, record_id, &why, now).await?;
                return Err(ApiError::new(ErrorCode::StorageRepositoryBusy, why));
            }
        }
        if repository && storage_targets::pruning(&row, &crate::ops::prune::stale_before(now)) {
            let why = format!(
                "the repository on {:?} is being pruned; no run writes there until the prune ends, so this run did not start",
                row.name
            );
            fail_unstarted(db, record_id, &why, now).await?;
            return Err(ApiError::new(ErrorCode::StorageRepositoryBusy, why));
        }
        let repository_password = if repository {
            Some(crate::ops::targets::repository_password(db, sealer, &row).await?)
        } else {
            None
        };
        destinations.push(RunDestination {
            target_id: t.target_id,
            storage_type: target.kind(),
            config: target.to_json(),
            path: path.clone(),
            repository_password,
        });
        names.push(t.name);
    }
    let planned: Vec<(i64, String)> = destinations
        .iter()
        .zip(names)
        .map(|(d, name)| (d.target_id, name))
        .collect();
    let command = CommandSpec::RunBackup {
        record_id,
        task_id: task.id,
        task_name: task.name.clone(),
        node_name: task.node_name.clone().unwrap_or_default(),
        spec,
        db_password,
        destinations,
    };
    let command_id =
        crate::ops::commands::enqueue(db, links, sealer, task.node_id, &command, now).await?;
    let planned: Vec<PlannedTarget<'_>> = planned
        .iter()
        .map(|(target_id, name)| PlannedTarget {
            target_id: *target_id,
            target_name: name,
            path: &path,
        })
        .collect();
    records::attach(db, record_id, command_id, &planned)
        .await
        .map_err(ApiError::from)
}

/// Fails a started record at once (its run could not be handed out), with the reason.
pub async fn fail_unstarted(
    db: &D1Database,
    record_id: i64,
    reason: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    records::finish(
        db,
        record_id,
        &Finished::failed(reason),
        &[],
        &time::format(now),
    )
    .await
    .map_err(ApiError::from)
}

/// Settles the record of a finished `run_backup` command from the agent's report, then applies
/// the task's retention when the run stored its backup.
pub async fn settle(
    db: &D1Database,
    links: &Links,
    sealer: &Sealer,
    command_id: i64,
    outcome: Result<&RunBackupReport, &CommandError>,
    at: Timestamp,
) -> Result<(), ApiError> {
    let Some(record_id) = records::by_command(db, command_id).await? else {
        return Ok(());
    };
    let now = &time::format(at);
    match outcome {
        Ok(report) => {
            // Judged against the targets the run was handed out for, not the report's own list.
            let planned: Vec<i64> = records::targets(db, record_id)
                .await?
                .iter()
                .map(|t| t.target_id)
                .collect();
            let verdict = stowage_shared::runs::judge(&planned, report);
            let (status, error) = (verdict.status, verdict.error.clone());
            let outcomes: Vec<TargetOutcome<'_>> = verdict
                .targets
                .iter()
                .map(|t| TargetOutcome {
                    target_id: t.target_id,
                    ok: t.stored.is_some(),
                    bytes: t.stored.map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)),
                    error: &t.error,
                    snapshot_id: t.snapshot_id.as_deref().unwrap_or_default(),
                })
                .collect();
            let sections = serde_json::to_string(&report.sections)
                .map_err(|e| ApiError::internal("encode sections", e))?;
            let changes = match &report.changes {
                Some(changes) => serde_json::to_string(changes)
                    .map_err(|e| ApiError::internal("encode changes", e))?,
                None => String::new(),
            };
            let figures = Finished {
                status,
                bytes: i64::try_from(report.bytes).unwrap_or(i64::MAX),
                files: i64::try_from(report.files).unwrap_or(i64::MAX),
                source_bytes: i64::try_from(report.source_bytes).unwrap_or(i64::MAX),
                checksum: &report.sha256,
                error: &error,
                sections: &sections,
                changes: &changes,
            };
            records::finish(db, record_id, &figures, &outcomes, now).await?;
            if verdict.targets.iter().any(|t| t.snapshot_id.is_some()) {
                let settings = crate::store::settings::load(db).await?;
                let after = |days: u32| {
                    (days > 0).then(|| time::format(at + chrono::Duration::days(i64::from(days))))
                };
                let prune_due = after(settings.repository_prune_days);
                let check_due = after(settings.repository_check_days);
                for t in verdict.targets.iter().filter(|t| t.snapshot_id.is_some()) {
                    storage_targets::mark_repository_ready(
                        db,
                        t.target_id,
                        now,
                        prune_due.as_deref(),
                        check_due.as_deref(),
                    )
                    .await?;
                }
            }
            if status != RunStatus::Failed
                && let Some(task_id) = records::get(db, record_id).await?.and_then(|r| r.task_id)
            {
                apply_retention(db, links, sealer, task_id, at).await?;
            }
            Ok(())
        }
        Err(error) => {
            let targets = records::targets(db, record_id).await?;
            let outcomes: Vec<TargetOutcome<'_>> = targets
                .iter()
                .map(|t| TargetOutcome {
                    target_id: t.target_id,
                    ok: false,
                    bytes: 0,
                    error: "the run failed",
                    snapshot_id: "",
                })
                .collect();
            records::finish(
                db,
                record_id,
                &Finished::failed(&error.message),
                &outcomes,
                now,
            )
            .await
            .map_err(ApiError::from)
        }
    }
}

/// The stored objects of records' targets that hold an artifact, with their targets' configs. A
/// target deleted since has nothing left to remove.
async fn stored_objects(
    db: &D1Database,
    sealer: &Sealer,
    targets: &[RecordTargetRow],
) -> Result<Vec<StoredObject>, ApiError> {
    let mut objects = Vec::new();
    for t in targets.iter().filter(|t| t.status == TargetStatus::Success) {
        let Some(row) = storage_targets::get(db, t.target_id).await? else {
            continue;
        };
        objects.push(stored_object(db, sealer, &row, t).await?);
    }
    Ok(objects)
}

/// A record target's stored copy as an agent finds it: the archive at its path, or its snapshot
/// in the target's repository (with the repository's password).
pub async fn stored_object(
    db: &D1Database,
    sealer: &Sealer,
    row: &crate::store::storage_targets::TargetRow,
    t: &RecordTargetRow,
) -> Result<StoredObject, ApiError> {
    let target = open_config(sealer, row)?;
    let snapshot = if t.snapshot_id.is_empty() {
        None
    } else {
        Some(SnapshotRef {
            id: t.snapshot_id.clone(),
            password: crate::ops::targets::repository_password(db, sealer, row).await?,
        })
    };
    Ok(StoredObject {
        target_id: t.target_id,
        storage_type: target.kind(),
        config: target.to_json(),
        path: t.path.clone(),
        snapshot,
    })
}

/// The snapshot a record target holds, with its repository's password (none for an archive).
pub async fn snapshot_of(
    db: &D1Database,
    sealer: &Sealer,
    copy: &RecordTargetRow,
) -> Result<Option<SnapshotRef>, ApiError> {
    if copy.snapshot_id.is_empty() {
        return Ok(None);
    }
    let row = storage_targets::get(db, copy.target_id)
        .await?
        .ok_or_else(|| ApiError::internal("snapshot target", "the target is gone"))?;
    Ok(Some(SnapshotRef {
        id: copy.snapshot_id.clone(),
        password: crate::ops::targets::repository_password(db, sealer, &row).await?,
    }))
}

/// How a record's run stored its backup: the task's format when the run started (the record
/// keeps the spec it ran with).
pub fn format(row: &RecordRow) -> BackupFormat {
    #[derive(serde::Deserialize)]
    struct Ran {
        #[serde(default)]
        format: BackupFormat,
    }
    serde_json::from_str::<Ran>(&row.source)
        .map(|r| r.format)
        .unwrap_or_default()
}

/// A record's file changes (repository runs).
pub fn changes(row: &RecordRow) -> Option<stowage_shared::api::records::SnapshotChanges> {
    // Written only from a parsed report.
    serde_json::from_str(&row.changes).ok()
}

/// Deletes records and, first, their stored objects on every target, through the node that wrote
/// them. A record whose objects could not all be removed is kept, and the answer says why.
/// Records removed by retention have no objects left, and records that are running are refused.
pub async fn delete_with_objects(
    db: &D1Database,
    config: &crate::config::Config,
    now: Timestamp,
    rows: &[RecordRow],
) -> Result<u64, ApiError> {
    if let Some(running) = rows.iter().find(|r| r.status == RunStatus::Running) {
        return Err(ApiError::new(
            ErrorCode::BackupRecordRunning,
            format!(
                "record {} is still running; wait for it to end before deleting it",
                running.id
            ),
        ));
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let targets = records::targets_of(db, &ids).await?;
    remove_objects(db, config, now, rows, &targets).await?;
    records::delete(db, &ids).await.map_err(ApiError::from)
}

/// Removes the stored objects of `targets` (copies of `rows`) through the node that wrote each
/// record; fails, naming every copy that stayed, unless all are gone.
pub async fn remove_objects(
    db: &D1Database,
    config: &crate::config::Config,
    now: Timestamp,
    rows: &[RecordRow],
    targets: &[RecordTargetRow],
) -> Result<(), ApiError> {
    let sealer = config.sealer()?;
    let mut nodes: Vec<i64> = rows
        .iter()
        .filter(|r| r.removed_at.is_none())
        .map(|r| r.node_id)
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    for node_id in nodes {
        let of_node: Vec<RecordTargetRow> = targets
            .iter()
            .filter(|t| {
                rows.iter()
                    .any(|r| r.id == t.record_id && r.node_id == node_id && r.removed_at.is_none())
            })
            .cloned()
            .collect();
        let objects = stored_objects(db, &sealer, &of_node).await?;
        if objects.is_empty() {
            continue;
        }
        // The writer is gone (its node was deleted): copies on its own disk cannot be reached
        // by anyone any more and are left; the others go through a node that uses their target.
        let mut batches: Vec<(i64, Vec<StoredObject>)> = Vec::new();
        if crate::store::nodes::get(db, node_id).await?.is_some() {
            let node = crate::ops::fleet::choose_online(
                db,
                config,
                now,
                Some(node_id),
                crate::ops::fleet::Needs::Nothing,
            )
            .await?;
            batches.push((node, objects));
        } else {
            for object in objects {
                if object.storage_type == stowage_shared::storage::StorageType::LocalDisk {
                    worker::console_log!(
                        "record copy on target {} at {} was on the disk of deleted node {node_id}: left there",
                        object.target_id,
                        object.path
                    );
                    continue;
                }
                let needs = crate::ops::fleet::Needs::storage(object.storage_type);
                let node = crate::ops::fleet::choose_for_target(
                    db,
                    config,
                    now,
                    None,
                    object.target_id,
                    needs,
                )
                .await?;
                match batches.iter_mut().find(|(n, _)| *n == node) {
                    Some((_, list)) => list.push(object),
                    None => batches.push((node, vec![object])),
                }
            }
        }
        for (node, objects) in batches {
            remove_batch(db, config, &sealer, now, node, objects).await?;
        }
    }
    Ok(())
}

/// One `delete_artifacts` command on `node`; an error names every object that stayed.
async fn remove_batch(
    db: &D1Database,
    config: &crate::config::Config,
    sealer: &Sealer,
    now: Timestamp,
    node: i64,
    objects: Vec<StoredObject>,
) -> Result<(), ApiError> {
    let answer = crate::ops::commands::call(
        db,
        &config.links,
        sealer,
        node,
        &CommandSpec::DeleteArtifacts { objects },
        config.timings.rpc_wait,
        now,
        crate::ops::commands::ErrorPolicy {
            passes: &[],
            fallback: ErrorCode::BackupRecordDeleteFailed,
        },
    )
    .await?;
    let report = match answer {
        CommandReport::DeleteArtifacts(report) => report,
        other => return Err(crate::ops::commands::unexpected(&other)),
    };
    if !report.failures.is_empty() {
        let reasons: Vec<String> = report
            .failures
            .iter()
            .map(|f| format!("target {} {}: {}", f.target_id, f.path, f.error))
            .collect();
        return Err(ApiError::new(
            ErrorCode::BackupRecordDeleteFailed,
            format!(
                "some stored backups could not be removed, so their records were kept: {}",
                reasons.join("; ")
            ),
        ));
    }
    Ok(())
}

/// Applies the task's retention after a successful run: the plan from `shared::retention`, then
/// one `delete_artifacts` command to the task's node for the backups it drops. The records are
/// marked with the rule's reason now and as removed when the agent reports the objects gone.
async fn apply_retention(
    db: &D1Database,
    links: &Links,
    sealer: &Sealer,
    task_id: i64,
    now: Timestamp,
) -> Result<(), ApiError> {
    let Some(task) = tasks::get(db, task_id).await? else {
        return Ok(());
    };
    let spec = crate::ops::tasks::stored_spec(&task)?;
    if spec.retention.keeps_everything() {
        return Ok(());
    }
    let candidates = records::retention_candidates(db, task_id).await?;
    let backups = |status: RunStatus| -> Vec<Backup> {
        candidates
            .iter()
            .filter(|c| c.status == status)
            .filter_map(|c| {
                time::parse(&c.finished_at).map(|finished_at| Backup {
                    record_id: c.id,
                    finished_at,
                })
            })
            .collect()
    };
    let zone = stowage_shared::retention::zone(&task.time_zone);
    let (complete, partial) = (backups(RunStatus::Success), backups(RunStatus::Partial));
    let dropped: Vec<(i64, String)> = plan_runs(&complete, &partial, &spec.retention, zone, now)
        .into_iter()
        .filter(|d| !d.keep)
        .filter(|d| {
            candidates
                .iter()
                .any(|c| c.id == d.record_id && c.removing == 0)
        })
        .map(|d| (d.record_id, format!("retention: {}", d.reasons.join(", "))))
        .collect();
    if dropped.is_empty() {
        return Ok(());
    }
    // Each record's objects are removed by the node that wrote them (its local disk is only
    // reachable from there), whichever node the task runs on now.
    let mut writers: Vec<i64> = candidates
        .iter()
        .filter(|c| dropped.iter().any(|(id, _)| *id == c.id))
        .map(|c| c.node_id)
        .collect();
    writers.sort_unstable();
    writers.dedup();
    for writer in writers {
        let of_writer: Vec<(i64, String)> = dropped
            .iter()
            .filter(|(id, _)| {
                candidates
                    .iter()
                    .any(|c| c.id == *id && c.node_id == writer)
            })
            .cloned()
            .collect();
        let ids: Vec<i64> = of_writer.iter().map(|(id, _)| *id).collect();
        let objects = stored_objects(db, sealer, &records::targets_of(db, &ids).await?).await?;
        let command_id = crate::ops::commands::enqueue(
            db,
            links,
            sealer,
            writer,
            &CommandSpec::DeleteArtifacts { objects },
            now,
        )
        .await?;
        records::mark_removal(db, &of_writer, command_id).await?;
    }
    Ok(())
}

/// Marks the records a retention command removed, from its report.
pub async fn settle_removal(
    db: &D1Database,
    command_id: i64,
    outcome: Result<&DeleteArtifactsReport, &CommandError>,
    now: &str,
) -> Result<(), ApiError> {
    if !records::removal_of_command(db, command_id).await? {
        return Ok(());
    }
    let failed: Vec<String> = match outcome {
        Ok(report) => report.failures.iter().map(|f| f.path.clone()).collect(),
        // Nothing is known to be gone: every record stays for the next attempt.
        Err(_) => {
            return records::release_removal(db, command_id)
                .await
                .map_err(ApiError::from);
        }
    };
    records::removal_done(db, command_id, &failed, now)
        .await
        .map_err(ApiError::from)
        .map(drop)
}

/// What a stored copy is wanted for: it names the action in messages, and a target deleted
/// since the run is a bad request for a restore but a failed fetch for a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Restore,
    Download,
    /// A file or folder of a snapshot, downloaded (archives are refused by the caller).
    Export,
}

/// One stored copy of a finished record, with its target's config.
#[derive(Debug)]
pub struct StoredCopy {
    pub record: RecordRow,
    pub copy: RecordTargetRow,
    pub target: stowage_shared::storage::StorageConfig,
}

/// The copy of record `id` on `requested` (or its first), refused while the record runs, after
/// retention removed it, or when no target holds the whole artifact.
pub async fn stored_copy(
    db: &D1Database,
    sealer: &Sealer,
    id: i64,
    requested: Option<i64>,
    purpose: Purpose,
) -> Result<StoredCopy, ApiError> {
    let verb = match purpose {
        Purpose::Restore => "restore",
        Purpose::Download | Purpose::Export => "download",
    };
    let record = records::get(db, id).await?.ok_or_else(|| not_found(id))?;
    let invalid = |why: String| ApiError::new(ErrorCode::RestoreSourceInvalid, why);
    if record.status == RunStatus::Running {
        return Err(ApiError::new(
            ErrorCode::BackupRecordRunning,
            format!("record {id} is still running; {verb} it once it has ended"),
        ));
    }
    if let Some(at) = &record.removed_at {
        return Err(invalid(format!(
            "record {id}'s backup was removed at {at} ({})",
            record.removal
        )));
    }
    let mut held: Vec<RecordTargetRow> = records::targets(db, id)
        .await?
        .into_iter()
        .filter(|t| t.status == TargetStatus::Success)
        .collect();
    let is_snapshot = held.iter().any(|t| !t.snapshot_id.is_empty());
    if held.is_empty() || (record.checksum.is_empty() && !is_snapshot) {
        return Err(invalid(format!(
            "record {id} ({}) stored no backup to {verb}",
            record.status
        )));
    }
    if is_snapshot && purpose == Purpose::Download {
        return Err(ApiError::new(
            ErrorCode::BackupRecordNotDownloadable,
            format!(
                "record {id} is a snapshot in a restic repository, not one file: download a file or folder of it (?path=/…), restore it (all of it or selected paths), or read it with restic using the target's recovery kit"
            ),
        ));
    }
    let copy = match requested {
        Some(t) => held
            .into_iter()
            .find(|h| h.target_id == t)
            .ok_or_else(|| invalid(format!("storage target {t} holds no copy of record {id}")))?,
        None => held.swap_remove(0),
    };
    let gone = format!("storage target {} no longer exists", copy.target_name);
    let row = storage_targets::get(db, copy.target_id)
        .await?
        .ok_or_else(|| match purpose {
            Purpose::Restore => invalid(gone.clone()),
            Purpose::Download | Purpose::Export => {
                ApiError::new(ErrorCode::BackupRecordDownloadFailed, gone.clone())
            }
        })?;
    let target = open_config(sealer, &row)?;
    Ok(StoredCopy {
        record,
        copy,
        target,
    })
}

pub fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::BackupRecordNotFound,
        format!("backup record {id} does not exist"),
    )
}
