//! `restore_database`: fetches a database backup, proves it whole (SHA-256 and size against the
//! record) and only then applies it, through [`crate::restore::database`], with live log and progress.

use super::restore::{failed, open_checked};
use crate::client::Client;
use crate::client::Kind;
use crate::report::Reporter;
use crate::repository;
use crate::restore::database;
use crate::storage::Tools;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use stowage_shared::databases::{DumpSection, RestoreStep, snapshot_file};
use stowage_shared::databases::{check_connection, check_database_name};
use stowage_shared::protocol::{
    CommandError, DbRestoreTarget, RestoreReport, SnapshotRef, StoredObject,
};
use stowage_shared::tasks::Compression;

/// What to restore, from the command.
#[derive(Debug)]
pub struct Job<'a> {
    pub restore_id: i64,
    pub source: &'a StoredObject,
    pub sha256: &'a str,
    pub bytes: u64,
    pub compression: Compression,
    pub target: &'a DbRestoreTarget,
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
                "restored {} part(s) ({} bytes); {} before anything was applied",
                r.files,
                r.bytes,
                if job.source.snapshot.is_some() {
                    "every blob read from the repository was authenticated"
                } else {
                    "the artifact's sha256 matched"
                }
            )
        })
        .await
}

/// Removes a file when dropped (a staged database the restore did not move into place).
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn run_reported(
    job: &Job<'_>,
    tools: &Tools,
    reporter: &Reporter,
) -> Result<RestoreReport, CommandError> {
    // Checked again here: the agent trusts no spec.
    match job.target {
        DbRestoreTarget::Sqlite { path } => {
            stowage_shared::validate::absolute_path(path)
                .map_err(|e| failed(format!("the database file {}", e.reason)))?;
            tools.paths.check(Path::new(path), "write to")?;
        }
        DbRestoreTarget::Server { connection, steps } => {
            check_connection(
                connection.engine,
                &connection.host,
                Some(connection.port),
                &connection.user,
                &connection.password,
            )
            .map_err(|e| failed(format!("the connection's {e}")))?;
            for step in steps.iter().filter(|s| !s.section.globals) {
                check_database_name(connection.engine, &step.into).map_err(failed)?;
            }
        }
    }
    if let Some(snapshot) = &job.source.snapshot {
        return from_snapshot(job, snapshot, tools, reporter).await;
    }
    let (store, _manifest, config) = open_checked(job.source, job.sha256, tools).await?;
    let scrub = |e: &dyn std::fmt::Display| config.scrub(&e.to_string());
    let reader = store
        .reader(&job.source.path)
        .await
        .map_err(|e| failed(format!("opening the artifact: {}", scrub(&e))))?;
    // An SQLite database is decompressed straight into a staging file beside its destination
    // (the same file system, so putting it in place is a rename); a server's dump stays
    // compressed in a private temporary file until it is applied.
    let (staging, decompress) = match job.target {
        DbRestoreTarget::Sqlite { path } => {
            let dir = Path::new(path)
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| failed(format!("creating {}: {e}", dir.display())))?;
            (
                dir.join(format!(".stowage-restore-{}.sqlite", job.restore_id)),
                true,
            )
        }
        DbRestoreTarget::Server { .. } => (
            std::env::temp_dir().join(format!(".stowage-restore-{}.sql.part", job.restore_id)),
            false,
        ),
    };
    let staged = Staged(staging);
    reporter.info(format!(
        "fetching {} ({} bytes) from target {} and checking its sha256 before anything is applied",
        job.source.path, job.bytes, job.source.target_id
    ));
    let (compression, counters) = (job.compression, reporter.counters());
    let into = staged.0.clone();
    let (actual, actual_bytes) = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            // As private as the database it holds.
            .mode(0o600)
            .open(&into)?;
        database::fetch(
            tokio_util::io::SyncIoBridge::new(reader),
            compression,
            decompress,
            &mut file,
            counters,
        )
    })
    .await
    .map_err(|e| failed(format!("the fetch stopped: {e}")))?
    .map_err(|e| {
        failed(format!(
            "reading the artifact: {}; nothing was restored",
            scrub(&e)
        ))
    })?;
    if actual != job.sha256 || actual_bytes != job.bytes {
        return Err(failed(
            crate::restore::RestoreError::Checksum {
                expected: job.sha256.to_owned(),
                expected_bytes: job.bytes,
                actual,
                actual_bytes,
            }
            .to_string(),
        ));
    }
    reporter.info("the artifact is whole (sha256 and size match the record)");
    let counters = reporter.counters();
    let sink = reporter.sink();
    let target = job.target.clone();
    let staged_path = staged.0.clone();
    let applied = tokio::task::spawn_blocking(move || match &target {
        DbRestoreTarget::Sqlite { path } => {
            sink.log(
                stowage_shared::api::LogLevel::Info,
                format!("checking the restored database and putting it at {path}"),
            );
            crate::pipeline::sqlite::restore_file(&staged_path, Path::new(path))
                .map(|()| (1, std::fs::metadata(path).map_or(0, |m| m.len())))
        }
        DbRestoreTarget::Server { connection, steps } => database::apply_steps(
            connection,
            steps,
            &staged_path,
            compression,
            &counters,
            &sink,
        ),
    })
    .await
    .map_err(|e| failed(format!("the restore stopped: {e}")))?
    .map_err(|e| failed(e.to_string()))?;
    drop(staged);
    Ok(RestoreReport {
        files: applied.0,
        bytes: applied.1,
    })
}

/// Opens a private file for restore data (0600: it holds a database).
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// A database restore from a repository snapshot. As from an archive, nothing reaches a database
/// before every byte it needs was read (each blob authenticated as it is read, each file's length
/// checked against the record): the dumps are first read into a private compressed file (an
/// SQLite database into a staging file beside its destination), then applied.
async fn from_snapshot(
    job: &Job<'_>,
    snapshot: &SnapshotRef,
    tools: &Tools,
    reporter: &Reporter,
) -> Result<RestoreReport, CommandError> {
    let (at, config) = super::restore::open_repository(job.source, snapshot, tools).await?;
    let scrub = |e: &dyn std::fmt::Display| config.scrub(&e.to_string());
    let short = &snapshot.id[..8.min(snapshot.id.len())];
    match job.target {
        DbRestoreTarget::Sqlite { path } => {
            let taken = repository::snapshot_paths(&at, &snapshot.id)
                .await
                .map_err(|e| failed(scrub(&e)))?;
            let [file] = taken.as_slice() else {
                return Err(failed(format!(
                    "snapshot {short} holds {} paths; an SQLite backup holds one",
                    taken.len()
                )));
            };
            let dir = Path::new(path)
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| failed(format!("creating {}: {e}", dir.display())))?;
            let staged = Staged(dir.join(format!(".stowage-restore-{}.sqlite", job.restore_id)));
            reporter.info(format!(
                "reading {} from snapshot {short} on target {}",
                file.display(),
                job.source.target_id
            ));
            let into = private_file(&staged.0).map_err(|e| failed(format!("staging: {e}")))?;
            let (into, _) = repository::read_files(
                &at,
                &snapshot.id,
                vec![file.clone()],
                into,
                reporter.counters(),
            )
            .await
            .map_err(|e| failed(format!("{}; nothing was restored", scrub(&e))))?;
            into.sync_all()
                .map_err(|e| failed(format!("staging: {e}")))?;
            let (staged_path, dest) = (staged.0.clone(), PathBuf::from(path));
            reporter.info(format!(
                "checking the restored database and putting it at {path}"
            ));
            tokio::task::spawn_blocking(move || {
                crate::pipeline::sqlite::restore_file(&staged_path, &dest)
            })
            .await
            .map_err(|e| failed(format!("the restore stopped: {e}")))?
            .map_err(|e| failed(e.to_string()))?;
            drop(staged);
            let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
            Ok(RestoreReport { files: 1, bytes })
        }
        DbRestoreTarget::Server { connection, steps } => {
            // The roles first (a database's grants name them), then the databases.
            let mut steps = steps.clone();
            steps.sort_by_key(|s| (!s.section.globals, s.section.offset));
            let files: Vec<PathBuf> = steps
                .iter()
                .map(|s| snapshot_file(connection.engine, &s.section).into())
                .collect();
            reporter.info(format!(
                "reading {} from snapshot {short} on target {} before anything is applied",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                job.source.target_id
            ));
            let staged = Staged(
                std::env::temp_dir().join(format!(".stowage-restore-{}.sql.zst", job.restore_id)),
            );
            let file = private_file(&staged.0).map_err(|e| failed(format!("staging: {e}")))?;
            let encoder = zstd::stream::write::Encoder::new(file, 1)
                .map_err(|e| failed(format!("staging: {e}")))?;
            let (encoder, lengths) = repository::read_files(
                &at,
                &snapshot.id,
                files.clone(),
                encoder,
                reporter.counters(),
            )
            .await
            .map_err(|e| failed(format!("{}; nothing was restored", scrub(&e))))?;
            encoder
                .finish()
                .and_then(|f| f.sync_all())
                .map_err(|e| failed(format!("staging: {e}")))?;
            // The staged file lays the dumps end to end; each step's section says where.
            let mut offset = 0;
            let mut laid = Vec::with_capacity(steps.len());
            for ((step, file), bytes) in steps.iter().zip(&files).zip(lengths) {
                if bytes != step.section.bytes {
                    return Err(failed(format!(
                        "{} in the snapshot is {bytes} bytes where the record says {}; nothing was restored",
                        file.display(),
                        step.section.bytes
                    )));
                }
                laid.push(RestoreStep {
                    section: DumpSection {
                        offset,
                        preamble: 0,
                        ..step.section.clone()
                    },
                    into: step.into.clone(),
                });
                offset += bytes;
            }
            reporter.info("every dump was read whole from the repository");
            let (counters, sink) = (reporter.counters(), reporter.sink());
            let (connection, staged_path) = (connection.clone(), staged.0.clone());
            let applied = tokio::task::spawn_blocking(move || {
                database::apply_steps(
                    &connection,
                    &laid,
                    &staged_path,
                    Compression::Zstd { level: 1 },
                    &counters,
                    &sink,
                )
            })
            .await
            .map_err(|e| failed(format!("the restore stopped: {e}")))?
            .map_err(|e| failed(e.to_string()))?;
            drop(staged);
            Ok(RestoreReport {
                files: applied.0,
                bytes: applied.1,
            })
        }
    }
}
