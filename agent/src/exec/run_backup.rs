//! `run_backup`: one backup run of a task of any type (a tar of files, dumps of databases, a
//! snapshot of an SQLite file) through [`crate::pipeline::run_source`], then a manifest beside the
//! artifact on every target that took it. A target whose manifest cannot be written counts as
//! failed, and its artifact is removed, so every stored artifact describes itself.

use crate::client::Client;
use crate::client::Kind;
use crate::pipeline::{self, Destination, Excludes, Source};
use crate::report::Reporter;
use crate::repository::{self, Labels, Location, Snapshotted};
use crate::storage::{Store, Tools};
use std::sync::Arc;
use stowage_shared::ErrorCode;
use stowage_shared::SecretString;
use stowage_shared::api::records::SnapshotChanges;
use stowage_shared::artifact::REPOSITORY_DIR;
use stowage_shared::artifact::{BackupManifest, MANIFEST_FORMAT, manifest_path};
use stowage_shared::databases::{check_connection, check_database_name, check_dump_options};
use stowage_shared::protocol::{CommandError, RunBackupReport, RunDestination, RunTargetReport};
use stowage_shared::status::BackupFormat;
use stowage_shared::storage::StorageConfig;
use stowage_shared::tasks::{SourceSpec, TaskSpec};

fn failed(message: impl Into<String>) -> CommandError {
    CommandError {
        code: ErrorCode::BackupRunFailed,
        message: message.into(),
    }
}

/// What the run is, for the manifest.
#[derive(Debug)]
pub struct Run<'a> {
    pub record_id: i64,
    pub task_id: i64,
    pub task_name: &'a str,
    /// The node's name in Stowage (empty from an older control plane).
    pub node_name: &'a str,
    pub spec: &'a TaskSpec,
    pub db_password: Option<&'a SecretString>,
}

/// What a run reads, checked again here (the agent trusts no spec), and how the manifest
/// names it.
struct Reading {
    source: Source,
    sources: Vec<String>,
    excludes: Vec<String>,
    what: String,
}

async fn reading(
    run: &Run<'_>,
    tools: &Tools,
    reporter: &Reporter,
) -> Result<Reading, CommandError> {
    match &run.spec.source {
        SourceSpec::File(files) => {
            for source in &files.sources {
                tools.paths.check(std::path::Path::new(source), "read")?;
            }
            Ok(Reading {
                source: Source::Files {
                    spec: files.clone(),
                    excludes: Excludes::new(&files.excludes).map_err(|e| failed(e.to_string()))?,
                },
                sources: files.sources.clone(),
                excludes: files.excludes.clone(),
                what: files.sources.join(", "),
            })
        }
        SourceSpec::Sqlite(lite) => {
            let path = stowage_shared::validate::absolute_path(&lite.path)
                .map_err(|e| failed(format!("dbPath {}", e.reason)))?;
            tools.paths.check(std::path::Path::new(&path), "read")?;
            Ok(Reading {
                source: Source::Sqlite(path.clone().into()),
                what: format!(
                    "the SQLite database {path} (a consistent copy through SQLite's backup API)"
                ),
                sources: vec![path],
                excludes: Vec::new(),
            })
        }
        SourceSpec::Mysql(db) | SourceSpec::Postgresql(db) => {
            let engine = run
                .spec
                .source
                .database()
                .map(|(engine, _)| engine)
                .ok_or_else(|| failed("a database task without an engine"))?;
            let password = run
                .db_password
                .cloned()
                .unwrap_or_else(|| SecretString::new(""));
            let conn = check_connection(engine, &db.host, Some(db.port), &db.user, &password)
                .map_err(|e| failed(format!("the connection's {e}")))?;
            let options = check_dump_options(engine, &db.options)
                .map_err(|e| failed(format!("dbOptions: {e}")))?;
            let databases = if db.databases.is_empty() {
                reporter.info(format!(
                    "listing the databases {}:{} as {} can see",
                    conn.host, conn.port, conn.user
                ));
                let system = engine.system_databases();
                super::discover::discover(&conn)
                    .await?
                    .into_iter()
                    .filter(|d| !system.contains(&d.as_str()))
                    .collect()
            } else {
                db.databases.clone()
            };
            for name in &databases {
                check_database_name(engine, name).map_err(|why| {
                    failed(format!(
                        "cannot dump {why}; name the databases to back up instead"
                    ))
                })?;
            }
            let dump =
                crate::pipeline::dump::Dump::new(&conn, &databases, &options, db.include_globals)?
                    .with_log(reporter.sink());
            let scheme = run.spec.source.kind().as_str();
            Ok(Reading {
                source: Source::Dump(dump),
                what: format!(
                    "{scheme} {}:{} as {}: {}{}",
                    conn.host,
                    conn.port,
                    conn.user,
                    databases.join(", "),
                    if db.include_globals {
                        " and the globals"
                    } else {
                        ""
                    }
                ),
                sources: databases
                    .iter()
                    .map(|d| format!("{scheme}://{}@{}:{}/{d}", conn.user, conn.host, conn.port))
                    .collect(),
                excludes: Vec::new(),
            })
        }
    }
}

pub async fn run_backup(
    run: &Run<'_>,
    destinations: &[RunDestination],
    tools: &Tools,
    client: Option<&Client>,
) -> Result<RunBackupReport, CommandError> {
    let reporter = Reporter::start(client.cloned(), Kind::Backup, run.record_id, None);
    let outcome = run_reported(run, destinations, tools, &reporter).await;
    reporter
        .conclude(outcome, |report| {
            let stored = report.targets.iter().filter(|t| t.bytes.is_some()).count();
            if report.changes.is_some() {
                return format!(
                    "finished: {} {}, {} bytes read, {} bytes added to the repositories, a snapshot on {stored} of {} targets",
                    report.files,
                    if report.sections.is_empty() { "files" } else { "database files" },
                    report.source_bytes,
                    report.bytes,
                    report.targets.len()
                );
            }
            format!(
                "finished: {} {}, {} bytes read, artifact {} bytes (sha256 {}), stored on {stored} of {} targets",
                report.files,
                if report.sections.is_empty() { "files" } else { "databases" },
                report.source_bytes,
                report.bytes,
                report.sha256,
                report.targets.len()
            )
        })
        .await
}

/// One destination of a run, from its config to what it ended with.
struct Target<'a> {
    dest: &'a RunDestination,
    config: StorageConfig,
    /// The opened store, or why it could not be opened (a failed target, not a failed run).
    store: Result<Store, String>,
    /// Bytes stored with the manifest, or why not; `None` until the run wrote to it.
    outcome: Option<Result<u64, String>>,
    /// The snapshot a repository run wrote there.
    snapshot_id: Option<String>,
}

impl Target<'_> {
    fn report(&self) -> RunTargetReport {
        let (bytes, error) = match (&self.store, &self.outcome) {
            (Err(reason), _) => (None, Some(reason.clone())),
            (Ok(_), Some(Ok(bytes))) => (Some(*bytes), None),
            (Ok(_), Some(Err(why))) => (None, Some(why.clone())),
            (Ok(_), None) => (None, Some("no outcome was reported".to_owned())),
        };
        RunTargetReport {
            target_id: self.dest.target_id,
            bytes,
            error,
            snapshot_id: self.snapshot_id.clone(),
        }
    }
}

async fn run_reported(
    run: &Run<'_>,
    destinations: &[RunDestination],
    tools: &Tools,
    reporter: &Reporter,
) -> Result<RunBackupReport, CommandError> {
    let spec = run.spec;
    let read = reading(run, tools, reporter).await?;
    reporter.info(format!(
        "backing up {} to {} target(s) as {}",
        read.what,
        destinations.len(),
        destinations
            .first()
            .map(|d| d.path.as_str())
            .unwrap_or_default()
    ));
    let started_at = stowage_shared::time::format(chrono::Utc::now());
    let mut targets = Vec::with_capacity(destinations.len());
    for dest in destinations {
        let config = StorageConfig::parse(dest.storage_type, &dest.config)
            .map_err(|e| failed(format!("target {}: {e}", dest.target_id)))?;
        let store = Store::open(&config, tools)
            .await
            .map_err(|e| config.scrub(&e.to_string()));
        if let Err(reason) = &store {
            reporter.error(format!(
                "target {} cannot be opened: {reason}",
                dest.target_id
            ));
        }
        targets.push(Target {
            dest,
            config,
            store,
            outcome: None,
            snapshot_id: None,
        });
    }
    let scrub_all = |text: &str| {
        targets
            .iter()
            .fold(text.to_owned(), |t, x| x.config.scrub(&t))
    };
    // The targets that opened, in order: the pipeline's outcomes come back in this order.
    let open: Vec<(usize, Destination<'_>)> = targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let store = t.store.as_ref().ok()?;
            Some((
                i,
                Destination {
                    store,
                    path: t.dest.path.clone(),
                },
            ))
        })
        .collect();
    if open.is_empty() {
        let reasons: Vec<String> = targets
            .iter()
            .filter_map(|t| t.store.as_ref().err().cloned())
            .collect();
        return Err(failed(format!(
            "no target could be opened: {}",
            reasons.join("; ")
        )));
    }
    if spec.format == BackupFormat::Repository {
        drop(open);
        return into_repositories(run, read, &mut targets, reporter).await;
    }
    let (indices, open): (Vec<usize>, Vec<Destination<'_>>) = open.into_iter().unzip();
    let (archive, outcomes) =
        pipeline::run_source(read.source, spec.compression, &open, reporter.counters())
            .await
            .map_err(|e| failed(scrub_all(&e.to_string())))?;
    reporter.info(match spec.source {
        SourceSpec::File(_) => format!(
            "archived {} files ({} bytes) into {} bytes",
            archive.files, archive.source_bytes, archive.bytes
        ),
        _ => format!(
            "dumped {} bytes into {} bytes",
            archive.source_bytes, archive.bytes
        ),
    });
    // Every destination has the same path, so one manifest serves them all.
    let manifest = BackupManifest {
        format: MANIFEST_FORMAT.to_owned(),
        task_id: run.task_id,
        task_name: run.task_name.to_owned(),
        kind: spec.source.kind().as_str().to_owned(),
        record_id: run.record_id,
        host: crate::system::hostname(),
        sources: read.sources,
        excludes: read.excludes,
        compression: spec.compression,
        artifact: open[0]
            .path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned(),
        bytes: archive.bytes,
        sha256: archive.sha256.clone(),
        files: archive.files,
        source_bytes: archive.source_bytes,
        started_at,
        finished_at: stowage_shared::time::format(chrono::Utc::now()),
        sections: archive.sections.clone(),
    };
    let manifest = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| failed(format!("encoding the manifest: {e}")))?;
    let mut settled = Vec::with_capacity(open.len());
    for ((i, dest), outcome) in indices.iter().zip(&open).zip(outcomes) {
        let outcome = match outcome {
            Ok(bytes) => match dest
                .store
                .write(&manifest_path(&dest.path), &manifest)
                .await
            {
                Ok(()) => Ok(bytes),
                Err(e) => {
                    let _ = dest.store.delete(&dest.path).await;
                    Err(format!(
                        "the artifact was stored but its manifest could not be, so it was removed: {e}"
                    ))
                }
            },
            Err(e) => Err(e.to_string()),
        };
        settled.push((*i, outcome.map_err(|why| scrub_all(&why))));
    }
    drop(open);
    for (i, outcome) in settled {
        let id = targets[i].dest.target_id;
        match &outcome {
            Ok(bytes) => reporter.info(format!(
                "target {id}: stored {bytes} bytes and the manifest"
            )),
            Err(why) => reporter.error(format!("target {id}: {why}")),
        }
        targets[i].outcome = Some(outcome);
    }
    Ok(RunBackupReport {
        bytes: archive.bytes,
        sha256: archive.sha256,
        files: archive.files,
        source_bytes: archive.source_bytes,
        targets: targets.iter().map(Target::report).collect(),
        sections: archive.sections,
        changes: None,
    })
}

/// A repository run: one snapshot into each target's repository. Files are read once per target,
/// one target after the other (with the task's previous snapshot as parent, unchanged files are
/// recognised by size and time and not read again); a dump or an SQLite copy is made once and
/// written into every repository at the same time ([`repository::streams`]).
async fn into_repositories(
    run: &Run<'_>,
    read: Reading,
    targets: &mut [Target<'_>],
    reporter: &Reporter,
) -> Result<RunBackupReport, CommandError> {
    let labels = Labels {
        host: if run.node_name.is_empty() {
            crate::system::hostname()
        } else {
            run.node_name.to_owned()
        },
        task_id: run.task_id,
        record_id: run.record_id,
    };
    // Where each target's repository is, or why it cannot be written.
    let mut places: Vec<(usize, Location)> = Vec::new();
    for (i, target) in targets.iter_mut().enumerate() {
        let Ok(store) = &target.store else { continue };
        match (&target.dest.repository_password, target.dest.path.as_str()) {
            (None, _) => {
                target.outcome = Some(Err(
                    "no repository password was sent for this target".to_owned()
                ));
            }
            (Some(_), path) if path != REPOSITORY_DIR => {
                target.outcome = Some(Err(format!(
                    "the repository must be at {REPOSITORY_DIR}/ on the target, not {path:?}"
                )));
            }
            (Some(password), _) => places.push((
                i,
                Location {
                    store: Arc::new(store.clone()),
                    root: REPOSITORY_DIR.to_owned(),
                    password: password.clone(),
                },
            )),
        }
    }
    let counters = reporter.counters();
    let mut sections = Vec::new();
    let outcomes: Vec<Result<Snapshotted, String>> = match read.source {
        Source::Files { spec, excludes } => {
            let sources: Vec<std::path::PathBuf> = spec.sources.iter().map(Into::into).collect();
            let mut outcomes = Vec::with_capacity(places.len());
            for (i, at) in &places {
                outcomes.push(
                    repository::backup_files(
                        at,
                        sources.clone(),
                        excludes.clone(),
                        &labels,
                        Arc::clone(&counters),
                    )
                    .await
                    .map_err(|e| targets[*i].config.scrub(&e.to_string())),
                );
            }
            outcomes
        }
        Source::Dump(mut dump) => {
            let paths = dump.snapshot_files().into_iter().map(Into::into).collect();
            let locations = places.iter().map(|(_, at)| at.clone()).collect();
            let (produced, outcomes) = repository::streams::backup_streams(
                locations,
                paths,
                move |out| dump.write_files(&counters, out),
                &labels,
            )
            .await;
            if let Ok(produced) = &produced {
                sections = produced.sections.clone();
            }
            stream_outcomes(produced.map(drop), outcomes, &places, targets)
        }
        Source::Sqlite(path) => {
            let locations = places.iter().map(|(_, at)| at.clone()).collect();
            let (produced, outcomes) = repository::streams::backup_streams(
                locations,
                vec![path.clone()],
                move |out| {
                    crate::pipeline::Files::next_file(out)?;
                    crate::pipeline::sqlite::snapshot_into(&path, &counters, out)
                },
                &labels,
            )
            .await;
            stream_outcomes(produced.map(drop), outcomes, &places, targets)
        }
    };
    let mut first: Option<Snapshotted> = None;
    for ((i, _), outcome) in places.iter().zip(outcomes) {
        let target = &mut targets[*i];
        let id = target.dest.target_id;
        match outcome {
            Ok(snap) => {
                reporter.info(format!(
                    "target {id}: snapshot {} — {} files ({} new, {} changed, {} unmodified), {} bytes, {} bytes added to the repository",
                    &snap.snapshot_id[..8],
                    snap.files,
                    snap.files_new,
                    snap.files_changed,
                    snap.files_unmodified,
                    snap.total_bytes,
                    snap.bytes_added
                ));
                target.outcome = Some(Ok(snap.bytes_added));
                target.snapshot_id = Some(snap.snapshot_id.clone());
                first.get_or_insert(snap);
            }
            Err(why) => {
                reporter.error(format!("target {id}: {why}"));
                target.outcome = Some(Err(why));
            }
        }
    }
    let Some(snap) = first else {
        let reasons: Vec<String> = targets
            .iter()
            .filter_map(|t| match (&t.store, &t.outcome) {
                (Err(why), _) | (Ok(_), Some(Err(why))) => {
                    Some(format!("target {}: {why}", t.dest.target_id))
                }
                _ => None,
            })
            .collect();
        return Err(failed(format!(
            "no repository took the snapshot: {}",
            reasons.join("; ")
        )));
    };
    let added = targets
        .iter()
        .filter_map(|t| t.outcome.as_ref()?.as_ref().ok())
        .sum();
    Ok(RunBackupReport {
        bytes: added,
        sha256: String::new(),
        files: snap.files,
        source_bytes: snap.total_bytes,
        targets: targets.iter().map(Target::report).collect(),
        sections,
        changes: Some(SnapshotChanges {
            files_new: snap.files_new,
            files_changed: snap.files_changed,
            files_unmodified: snap.files_unmodified,
        }),
    })
}

/// Each target's outcome of a stream snapshot. A failed producer (a dump program that failed)
/// fails every target: a repository's own failure names it (the file it could not finish), and a
/// snapshot that came through anyway is not taken for a good one.
fn stream_outcomes(
    produced: Result<(), repository::RepoError>,
    outcomes: Vec<Result<Snapshotted, repository::RepoError>>,
    places: &[(usize, Location)],
    targets: &[Target<'_>],
) -> Vec<Result<Snapshotted, String>> {
    let scrub = |i: usize, text: String| targets[i].config.scrub(&text);
    places
        .iter()
        .zip(outcomes)
        .map(|((i, _), outcome)| match (outcome, &produced) {
            (Err(e), _) => Err(scrub(*i, e.to_string())),
            (Ok(_), Err(why)) => Err(scrub(*i, why.to_string())),
            (Ok(snap), Ok(())) => Ok(snap),
        })
        .collect()
}
