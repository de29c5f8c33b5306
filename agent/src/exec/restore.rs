//! `restore`: reads the manifest beside the artifact (it names the sources, so an original-path
//! restore stages on their file system), then streams the artifact through
//! [`crate::restore::restore`] with live log and progress.

use crate::client::Client;
use crate::client::Kind;
use crate::report::Reporter;
use crate::repository::{self, Location};
use crate::restore::{self, Expected};
use crate::storage::{Store, Tools};
use std::path::{Path, PathBuf};
use stowage_shared::ErrorCode;
use stowage_shared::artifact::{BackupManifest, manifest_path};
use stowage_shared::protocol::SnapshotRef;
use stowage_shared::protocol::{CommandError, RestoreReport, StoredObject};
use stowage_shared::storage::StorageConfig;
use stowage_shared::tasks::Compression;

pub(crate) fn failed(message: impl Into<String>) -> CommandError {
    CommandError {
        code: ErrorCode::RestoreFailed,
        message: message.into(),
    }
}

/// What to restore, from the command.
#[derive(Debug)]
pub struct Job<'a> {
    pub restore_id: i64,
    pub source: &'a StoredObject,
    pub sha256: &'a str,
    pub bytes: u64,
    pub compression: Compression,
    pub destination: Option<&'a str>,
    /// Snapshots only: the paths to restore (none: all of it).
    pub selected_paths: &'a [String],
}

pub async fn run(
    job: &Job<'_>,
    tools: &Tools,
    client: Option<&Client>,
) -> Result<RestoreReport, CommandError> {
    let reporter = Reporter::start(
        client.cloned(),
        Kind::Restore,
        job.restore_id,
        Some(job.bytes),
    );
    let outcome = match &job.source.snapshot {
        Some(snapshot) => from_snapshot(job, snapshot, tools, &reporter).await,
        None => run_reported(job, tools, &reporter).await,
    };
    let snapshot = job.source.snapshot.is_some();
    reporter
        .conclude(outcome, |r| {
            format!(
                "restored {} files ({} bytes); {}",
                r.files,
                r.bytes,
                if snapshot {
                    "every blob matched its hash"
                } else {
                    "the artifact's sha256 matched"
                }
            )
        })
        .await
}

/// Opens the target that holds `source` and reads the manifest beside it, which must name the
/// record's checksum: a stored backup replaced since is never restored.
pub(crate) async fn open_checked(
    source: &StoredObject,
    sha256: &str,
    tools: &Tools,
) -> Result<(Store, BackupManifest, StorageConfig), CommandError> {
    let config = StorageConfig::parse(source.storage_type, &source.config)
        .map_err(|e| failed(format!("target {}: {e}", source.target_id)))?;
    let scrub = |e: &dyn std::fmt::Display| config.scrub(&e.to_string());
    let store = Store::open(&config, tools)
        .await
        .map_err(|e| failed(format!("opening the target: {}", scrub(&e))))?;
    let bytes = store
        .read(&manifest_path(&source.path))
        .await
        .map_err(|e| {
            failed(format!(
                "reading the manifest beside the artifact: {}",
                scrub(&e)
            ))
        })?;
    let manifest: BackupManifest = serde_json::from_slice(&bytes).map_err(|e| {
        failed(format!(
            "the manifest beside the artifact is unreadable: {e}"
        ))
    })?;
    if manifest.sha256 != sha256 {
        return Err(failed(format!(
            "the manifest names sha256 {} but the record {sha256}: the stored backup was replaced; nothing was restored",
            manifest.sha256
        )));
    }
    Ok((store, manifest, config))
}

/// Where a restore puts the files (`destination`, or `/` for the original paths) and where it
/// stages them: a fresh directory beside the destination or the first source, so that the final
/// moves are renames on one file system. Every path it will write is checked against the node's
/// policy first; a staging directory left by a killed restore is removed (nothing in it was ever
/// put in place).
async fn root_and_staging(
    destination: Option<&str>,
    sources: &[PathBuf],
    restore_id: i64,
    tools: &Tools,
) -> Result<(PathBuf, PathBuf), CommandError> {
    let (root, staging_parent) = match destination {
        Some(dest) => {
            tools.paths.check(Path::new(dest), "write to")?;
            (PathBuf::from(dest), PathBuf::from(dest))
        }
        None => {
            for source in sources {
                tools.paths.check(source, "write to")?;
            }
            let first = sources
                .first()
                .ok_or_else(|| failed("the backup names no source paths"))?;
            let parent = first
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
            (PathBuf::from("/"), parent)
        }
    };
    tokio::fs::create_dir_all(&staging_parent)
        .await
        .map_err(|e| failed(format!("creating {}: {e}", staging_parent.display())))?;
    let staging = staging_parent.join(format!(".stowage-restore-{restore_id}"));
    if tokio::fs::symlink_metadata(&staging).await.is_ok() {
        restore::remove_staging(&staging);
    }
    Ok((root, staging))
}

async fn run_reported(
    job: &Job<'_>,
    tools: &Tools,
    reporter: &Reporter,
) -> Result<RestoreReport, CommandError> {
    let (store, manifest, config) = open_checked(job.source, job.sha256, tools).await?;
    let scrub = |e: &dyn std::fmt::Display| config.scrub(&e.to_string());
    let sources: Vec<PathBuf> = manifest.sources.iter().map(PathBuf::from).collect();
    let (root, staging) =
        root_and_staging(job.destination, &sources, job.restore_id, tools).await?;
    reporter.info(format!(
        "restoring {} ({} bytes) from target {} to {}; staging in {}",
        job.source.path,
        job.bytes,
        job.source.target_id,
        match job.destination {
            Some(d) => format!("{d} (sources keep their full paths beneath it)"),
            None => format!("the original paths ({})", manifest.sources.join(", ")),
        },
        staging.display()
    ));
    let reader = store
        .reader(&job.source.path)
        .await
        .map_err(|e| failed(format!("opening the artifact: {}", scrub(&e))))?;
    let expected = Expected {
        sha256: job.sha256.to_owned(),
        bytes: job.bytes,
        compression: job.compression,
    };
    let restored = restore::restore(
        reader,
        expected,
        (root, tools.paths.clone()),
        staging,
        reporter.counters(),
    )
    .await
    .map_err(|e| failed(scrub(&e)))?;
    Ok(RestoreReport {
        files: restored.files,
        bytes: restored.bytes,
    })
}

/// The repository a stored snapshot is in, opened on its target.
pub(crate) async fn open_repository(
    source: &StoredObject,
    snapshot: &SnapshotRef,
    tools: &Tools,
) -> Result<(Location, StorageConfig), CommandError> {
    let repo = super::maintenance::Repo {
        storage_type: source.storage_type,
        config: &source.config,
        path: &source.path,
        password: &snapshot.password,
    };
    super::maintenance::open(&repo, tools, failed).await
}

/// Restores a repository snapshot (all of it, or the selected paths): rustic_core restores into
/// a staging directory on the destination's file system (every blob checked against its hash,
/// every path checked to stay inside), then the staged tree is put in place as an archive's is.
async fn from_snapshot(
    job: &Job<'_>,
    snapshot: &SnapshotRef,
    tools: &Tools,
    reporter: &Reporter,
) -> Result<RestoreReport, CommandError> {
    let selected = job
        .selected_paths
        .iter()
        .map(|p| repository::inside(p).map_err(|e| failed(e.to_string())))
        .collect::<Result<Vec<PathBuf>, _>>()?;
    let (at, config) = open_repository(job.source, snapshot, tools).await?;
    let scrub = |e: &dyn std::fmt::Display| config.scrub(&e.to_string());
    // What lands where: the selected paths, or everything the snapshot was taken of.
    let taken = if selected.is_empty() {
        repository::snapshot_paths(&at, &snapshot.id)
            .await
            .map_err(|e| failed(scrub(&e)))?
    } else {
        selected.iter().map(|p| Path::new("/").join(p)).collect()
    };
    let (root, staging) = root_and_staging(job.destination, &taken, job.restore_id, tools).await?;
    reporter.info(format!(
        "restoring {} of snapshot {} from target {} to {}; staging in {}",
        if selected.is_empty() {
            "everything".to_owned()
        } else {
            job.selected_paths.join(", ")
        },
        &snapshot.id[..8.min(snapshot.id.len())],
        job.source.target_id,
        match job.destination {
            Some(d) => format!("{d} (paths keep their full form beneath it)"),
            None => "the original paths".to_owned(),
        },
        staging.display()
    ));
    let restored = repository::restore(
        &at,
        &snapshot.id,
        selected,
        staging.clone(),
        reporter.counters(),
    )
    .await;
    let placed = match restored {
        Ok(r) => {
            let (staging, policy) = (staging.clone(), tools.paths.clone());
            let restored: Vec<PathBuf> = taken
                .iter()
                .filter_map(|p| p.strip_prefix("/").ok().map(Path::to_path_buf))
                .collect();
            tokio::task::spawn_blocking(move || {
                restore::put_in_place_with_dirs(&staging, &root, &restored, &policy)
            })
            .await
            .map_err(|e| failed(format!("the restore stopped: {e}")))
            .and_then(|placed| placed.map_err(|e| failed(e.to_string())))
            .map(|()| r)
        }
        Err(e) => Err(failed(format!("{}; nothing was restored", scrub(&e)))),
    };
    restore::remove_staging(&staging);
    let restored = placed?;
    Ok(RestoreReport {
        files: restored.files,
        bytes: restored.bytes,
    })
}
