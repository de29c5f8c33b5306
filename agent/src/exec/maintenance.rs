//! `prune_repository`, `verify_repository` and `list_snapshot`: work on a target's repository. A prune
//! removes the data no snapshot uses any more, under an exclusive restic lock (refused while
//! anyone else holds a lock); a check reads the repository back under a shared one.

use crate::client::{Client, Kind};
use crate::report::Reporter;
use crate::repository::{self, Location};
use crate::restore;
use crate::storage::{Store, Tools};
use std::sync::Arc;
use stowage_shared::ErrorCode;
use stowage_shared::SecretString;
use stowage_shared::artifact::{BackupManifest, REPOSITORY_DIR, manifest_path};
use stowage_shared::protocol::{CommandError, PruneReport, StoredObject, VerifyReport};
use stowage_shared::storage::{StorageConfig, StorageType};
use stowage_shared::tasks::{Compression, TaskType};

/// Where a maintenance command's repository is.
#[derive(Debug)]
pub struct Repo<'a> {
    pub storage_type: StorageType,
    pub config: &'a serde_json::Value,
    pub path: &'a str,
    pub password: &'a SecretString,
}

/// Opens the repository a command names, on its target.
pub(crate) async fn open(
    repo: &Repo<'_>,
    tools: &Tools,
    failed: impl Fn(String) -> CommandError,
) -> Result<(Location, StorageConfig), CommandError> {
    let config = StorageConfig::parse(repo.storage_type, repo.config)
        .map_err(|e| failed(format!("the target's config: {e}")))?;
    if repo.path != REPOSITORY_DIR {
        return Err(failed(format!(
            "the repository must be at {REPOSITORY_DIR}/ on the target, not {:?}",
            repo.path
        )));
    }
    let store = Store::open(&config, tools).await.map_err(|e| {
        failed(format!(
            "opening the target: {}",
            config.scrub(&e.to_string())
        ))
    })?;
    let at = Location {
        store: Arc::new(store),
        root: REPOSITORY_DIR.to_owned(),
        password: repo.password.clone(),
    };
    Ok((at, config))
}

pub async fn prune(repo: &Repo<'_>, tools: &Tools) -> Result<PruneReport, CommandError> {
    let failed = |message: String| CommandError {
        code: ErrorCode::StorageRepositoryPruneFailed,
        message,
    };
    let (at, config) = open(repo, tools, failed).await?;
    let pruned = repository::prune(&at)
        .await
        .map_err(|e| failed(config.scrub(&e.to_string())))?;
    tracing::info!(
        before = pruned.bytes_before,
        after = pruned.bytes_after,
        snapshots = pruned.snapshots,
        "pruned a repository"
    );
    Ok(PruneReport {
        bytes_before: pruned.bytes_before,
        bytes_after: pruned.bytes_after,
        snapshots: pruned.snapshots,
    })
}

/// Checks a repository (or one snapshot of it) for verification record `verify_id`, with a
/// live log: what is checked, each problem found, and the verdict.
pub async fn verify(
    repo: &Repo<'_>,
    (verify_id, snapshot, read_data_percent): (i64, Option<&str>, u8),
    tools: &Tools,
    client: Option<&Client>,
) -> Result<VerifyReport, CommandError> {
    let reporter = Reporter::start(client.cloned(), Kind::Verify, verify_id, None);
    let percent = read_data_percent.min(100);
    reporter.info(match snapshot {
        Some(id) => format!(
            "checking snapshot {} and the repository structure it needs, reading all of its data",
            &id[..id.len().min(8)]
        ),
        None => format!("checking the repository's structure and reading {percent}% of its data"),
    });
    let outcome = check_reported(repo, snapshot, percent, tools, &reporter).await;
    reporter
        .conclude(outcome, |r| {
            if r.errors.is_empty() {
                format!(
                    "{} snapshot(s) checked: the repository is whole",
                    r.snapshots
                )
            } else {
                format!(
                    "{} snapshot(s) checked: {} problem(s), {} damaged pack(s), {} snapshot(s) affected",
                    r.snapshots,
                    r.errors.len(),
                    r.damaged_packs.len(),
                    r.affected_snapshots.len()
                )
            }
        })
        .await
}

/// A check that could not run (as opposed to one that found damage).
fn check_failed(message: String) -> CommandError {
    CommandError {
        code: ErrorCode::BackupRunFailed,
        message,
    }
}

async fn check_reported(
    repo: &Repo<'_>,
    snapshot: Option<&str>,
    percent: u8,
    tools: &Tools,
    reporter: &Reporter,
) -> Result<VerifyReport, CommandError> {
    let failed = check_failed;
    let (at, config) = open(repo, tools, failed).await?;
    let checked = repository::check(&at, snapshot, percent)
        .await
        .map_err(|e| failed(config.scrub(&e.to_string())))?;
    let scrub =
        |list: Vec<String>| -> Vec<String> { list.iter().map(|t| config.scrub(t)).collect() };
    let report = VerifyReport {
        snapshots: checked.snapshots,
        errors: scrub(checked.errors),
        warnings: scrub(checked.warnings),
        damaged_packs: checked.damaged_packs,
        affected_snapshots: checked.affected,
    };
    for warning in &report.warnings {
        reporter.warn(warning.clone());
    }
    for error in &report.errors {
        reporter.error(error.clone());
    }
    for pack in &report.damaged_packs {
        reporter.error(format!("damaged pack {pack}"));
    }
    if !report.affected_snapshots.is_empty() {
        reporter.error(format!(
            "snapshots that need the damaged data: {}",
            report.affected_snapshots.join(", ")
        ));
    }
    Ok(report)
}

/// One directory of a stored snapshot: a path the snapshot does not hold is `NODE_FS_NOT_FOUND`,
/// a repository or target that cannot be read `NODE_FS_READ_ERROR`.
pub async fn list_snapshot(
    source: &stowage_shared::protocol::StoredObject,
    path: &str,
    tools: &Tools,
) -> Result<stowage_shared::api::FsListing, CommandError> {
    let error = |code: ErrorCode| move |message: String| CommandError { code, message };
    let Some(snapshot) = &source.snapshot else {
        return Err(error(ErrorCode::NodeFsNotFound)(
            "an archive is one file, not a snapshot to browse".to_owned(),
        ));
    };
    let repo = Repo {
        storage_type: source.storage_type,
        config: &source.config,
        path: &source.path,
        password: &snapshot.password,
    };
    let (at, config) = open(&repo, tools, error(ErrorCode::NodeFsReadError)).await?;
    repository::list_dir(
        &at,
        &snapshot.id,
        path,
        stowage_shared::api::FS_LIST_MAX_ENTRIES,
    )
    .await
    .map_err(|e| {
        let code = match e {
            repository::RepoError::Refused(_) => ErrorCode::NodeFsNotFound,
            _ => ErrorCode::NodeFsReadError,
        };
        error(code)(config.scrub(&e.to_string()))
    })
}

/// A stored archive to check end to end, and what its record says it is.
#[derive(Debug)]
pub struct ArchiveCheck<'a> {
    pub verify_id: i64,
    pub source: &'a StoredObject,
    pub sha256: &'a str,
    pub bytes: u64,
    pub compression: Compression,
}

/// Checks a stored archive for verification record `verify_id`, with a live log. What the
/// archive is found to be (its hash, size, contents and manifest against the record) are
/// findings of a finished check; only a target that cannot be opened fails the command.
pub async fn verify_archive(
    job: &ArchiveCheck<'_>,
    tools: &Tools,
    client: Option<&Client>,
) -> Result<VerifyReport, CommandError> {
    let reporter = Reporter::start(client.cloned(), Kind::Verify, job.verify_id, None);
    reporter.info(format!(
        "reading the archive {} ({} bytes) on target {} to its end: its SHA-256, every byte decompressed, its contents against its manifest",
        job.source.path, job.bytes, job.source.target_id
    ));
    let outcome = archive_findings(job, tools, &reporter).await;
    if let Ok(report) = &outcome {
        for error in &report.errors {
            reporter.error(error.clone());
        }
    }
    reporter
        .conclude(outcome, |r| {
            if r.errors.is_empty() {
                "the archive is whole".to_owned()
            } else {
                format!(
                    "{} problem(s) found: the archive is damaged",
                    r.errors.len()
                )
            }
        })
        .await
}

async fn archive_findings(
    job: &ArchiveCheck<'_>,
    tools: &Tools,
    reporter: &Reporter,
) -> Result<VerifyReport, CommandError> {
    let failed = check_failed;
    let config = StorageConfig::parse(job.source.storage_type, &job.source.config)
        .map_err(|e| failed(format!("the target's config: {e}")))?;
    let scrub = |e: &dyn std::fmt::Display| config.scrub(&e.to_string());
    let store = Store::open(&config, tools)
        .await
        .map_err(|e| failed(format!("opening the target: {}", scrub(&e))))?;
    let mut errors = Vec::new();
    let manifest = match store.read(&manifest_path(&job.source.path)).await {
        Ok(bytes) => serde_json::from_slice::<BackupManifest>(&bytes)
            .map_err(|e| {
                errors.push(format!(
                    "the manifest beside the archive is unreadable: {e}"
                ))
            })
            .ok(),
        Err(e) => {
            errors.push(format!(
                "the manifest beside the archive cannot be read: {}",
                scrub(&e)
            ));
            None
        }
    };
    if let Some(m) = manifest.as_ref().filter(|m| m.sha256 != job.sha256) {
        errors.push(format!(
            "the manifest names SHA-256 {} but the record {}: the stored backup was replaced",
            m.sha256, job.sha256
        ));
    }
    let reader = match store.reader(&job.source.path).await {
        Ok(reader) => reader,
        Err(e) => {
            errors.push(format!("the archive cannot be opened: {}", scrub(&e)));
            return Ok(archive_report(errors));
        }
    };
    // The manifest's type (a file archive when unknown: the first manifests were of those).
    let kind = manifest
        .as_ref()
        .and_then(|m| TaskType::parse(&m.kind))
        .unwrap_or(TaskType::File);
    let tar = kind == TaskType::File;
    let (compression, counters) = (job.compression, reporter.counters());
    let read = tokio::task::spawn_blocking(move || {
        let reader = tokio_util::io::SyncIoBridge::new(reader);
        restore::read_archive(
            std::io::BufReader::with_capacity(1 << 20, reader),
            compression,
            tar,
            counters,
        )
    })
    .await
    .map_err(|e| failed(format!("the check stopped: {e}")))?;
    let found = match read {
        Ok(found) => found,
        Err(e) => {
            errors.push(format!(
                "the archive cannot be read to its end: {}",
                scrub(&e)
            ));
            return Ok(archive_report(errors));
        }
    };
    if found.sha256 != job.sha256 || found.bytes != job.bytes {
        errors.push(format!(
            "the stored archive does not match its record: SHA-256 {}, {} bytes; the record says {}, {} bytes",
            found.sha256, found.bytes, job.sha256, job.bytes
        ));
    }
    if let Some(m) = &manifest {
        errors.extend(contents_problems(m, kind, &found));
    }
    reporter.info(format!(
        "read {} bytes ({} decompressed){}",
        found.bytes,
        found.plain_bytes,
        if tar {
            format!(
                ": {} files and links, {} bytes of file data",
                found.entries, found.file_bytes
            )
        } else {
            String::new()
        }
    ));
    Ok(archive_report(errors))
}

/// How an archive's contents disagree with its manifest.
fn contents_problems(
    m: &BackupManifest,
    kind: TaskType,
    found: &restore::ArchiveContents,
) -> Vec<String> {
    let mut problems = Vec::new();
    match kind {
        TaskType::File if found.entries != m.files || found.file_bytes != m.source_bytes => {
            problems.push(format!(
                "it holds {} files and links with {} bytes of data; its manifest says {} and {}",
                found.entries, found.file_bytes, m.files, m.source_bytes
            ));
        }
        TaskType::Sqlite if found.head != b"SQLite format 3\0" => {
            problems.push("it does not begin as an SQLite database does".to_owned());
        }
        _ => {}
    }
    if let Some(end) = m
        .sections
        .iter()
        .map(|s| s.offset + s.preamble + s.bytes)
        .max()
        && end != found.plain_bytes
    {
        problems.push(format!(
            "its dumps come to {} bytes; its manifest's sections to {end}",
            found.plain_bytes
        ));
    }
    problems
}

fn archive_report(errors: Vec<String>) -> VerifyReport {
    VerifyReport {
        snapshots: 0,
        errors,
        warnings: Vec::new(),
        damaged_packs: Vec::new(),
        affected_snapshots: Vec::new(),
    }
}
