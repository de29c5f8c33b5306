//! `restore`: reads the manifest beside the artifact (it names the sources, so an original-path
//! restore stages on their file system), then streams the artifact through
//! [`crate::restore::restore`] with live log and progress.

use crate::client::Client;
use crate::client::Kind;
use crate::report::Reporter;
use crate::restore::{self, Expected};
use crate::storage::{Store, Tools};
use std::path::{Path, PathBuf};
use stowage_shared::ErrorCode;
use stowage_shared::artifact::{BackupManifest, manifest_path};
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
    let outcome = run_reported(job, tools, &reporter).await;
    reporter
        .conclude(outcome, |r| {
            format!(
                "restored {} files ({} bytes); the artifact's sha256 matched",
                r.files, r.bytes
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

async fn run_reported(
    job: &Job<'_>,
    tools: &Tools,
    reporter: &Reporter,
) -> Result<RestoreReport, CommandError> {
    let (store, manifest, config) = open_checked(job.source, job.sha256, tools).await?;
    let scrub = |e: &dyn std::fmt::Display| config.scrub(&e.to_string());
    match job.destination {
        Some(dest) => tools.paths.check(Path::new(dest), "write to")?,
        None => {
            for source in &manifest.sources {
                tools.paths.check(Path::new(source), "write to")?;
            }
        }
    }
    let (root, staging_parent) = match job.destination {
        Some(dest) => (PathBuf::from(dest), PathBuf::from(dest)),
        None => {
            let first = manifest
                .sources
                .first()
                .ok_or_else(|| failed("the manifest lists no sources"))?;
            let parent = Path::new(first)
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
            (PathBuf::from("/"), parent)
        }
    };
    tokio::fs::create_dir_all(&staging_parent)
        .await
        .map_err(|e| failed(format!("creating {}: {e}", staging_parent.display())))?;
    let staging = staging_parent.join(format!(".stowage-restore-{}", job.restore_id));
    if tokio::fs::symlink_metadata(&staging).await.is_ok() {
        // Left by a restore that was killed: nothing in it was ever put in place.
        let _ = tokio::fs::remove_dir_all(&staging).await;
    }
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
