//! Restic-format repositories, written and read through `rustic_core` (pinned: its API is
//! pre-1.0) over the agent's storage layer ([`backend::StoreBackend`]), so that plain `restic`
//! can always list, check and restore what Stowage wrote.
//!
//! One repository per storage target, shared by every task and node writing there. rustic_core
//! is blocking (threads, rayon): every operation here runs on a blocking thread and drives the
//! async storage calls through the runtime's handle.
//!
//! The repository is version 2 (zstd) with data packs capped at [`PACK_SIZE_LIMIT`]: rustic_core
//! restores read whole packs on many threads, so unbounded packs (they grow with the square root
//! of the repository's size) would make restore memory grow with the repository.

pub mod backend;

use crate::pipeline::Excludes;
use crate::report::Counters;
use crate::storage::Store;
use backend::StoreBackend;
use bytesize::ByteSize;
use rustic_core::repofile::SnapshotFile;
use rustic_core::{
    BackupOptions, ConfigOptions, Credentials, Id, KeyOptions, LocalDestination, LocalSource,
    LocalSourceFilterOptions, LocalSourceSaveOptions, LsOptions, OpenStatus, ParentOptions,
    Progress, ProgressBars, ProgressType, ReadSource, ReadSourceEntry, Repository,
    RepositoryBackends, RepositoryOptions, RestoreOptions, RusticProgress, RusticResult,
    SnapshotOptions,
};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use stowage_shared::SecretString;

/// The size data packs start at, and the most they grow to.
pub const PACK_SIZE: u64 = 8 * 1024 * 1024;
pub const PACK_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{0}")]
    Rustic(String),
    #[error("{0}")]
    Refused(String),
    #[error("the repository operation stopped: {0}")]
    Stopped(String),
}

impl From<Box<rustic_core::RusticError>> for RepoError {
    fn from(e: Box<rustic_core::RusticError>) -> Self {
        // The display form carries rustic's guidance, context and source chain; the first
        // lines are the ones a log needs.
        let text = e.to_string();
        let short: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(6)
            .collect();
        RepoError::Rustic(short.join(" "))
    }
}

/// Where a repository lives: the opened store, the directory on it, and its password.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<Store>,
    pub root: String,
    pub password: SecretString,
}

/// How a snapshot is labelled: restic's host, the task's group and its tags.
#[derive(Debug, Clone)]
pub struct Labels {
    pub host: String,
    pub task_id: i64,
    pub record_id: i64,
}

impl Labels {
    /// The tags every Stowage snapshot carries (restic's `--tag` filters by them).
    pub fn tags(&self) -> String {
        format!("stowage,task-{},record-{}", self.task_id, self.record_id)
    }
    /// Snapshots of one task form one group: the parent of a run is the task's last snapshot
    /// from the same host and paths.
    pub fn label(&self) -> String {
        format!("stowage-task-{}", self.task_id)
    }
}

/// What a backup run added to the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshotted {
    pub snapshot_id: String,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub files: u64,
    pub dirs: u64,
    /// Bytes of the files the snapshot holds.
    pub total_bytes: u64,
    /// Bytes stored in the repository by this run (after dedup and compression).
    pub bytes_added: u64,
}

/// Progress reported into the run's counters: bytes read from the sources (backup) or written
/// to files (restore).
#[derive(Debug, Clone)]
struct CounterBars(Arc<Counters>);

#[derive(Debug)]
struct SourceBytes(Arc<Counters>);

impl RusticProgress for SourceBytes {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, _len: u64) {}
    fn set_title(&self, _title: &str) {}
    fn inc(&self, inc: u64) {
        self.0.add_source(inc);
    }
    fn finish(&self) {}
}

impl ProgressBars for CounterBars {
    fn progress(&self, progress_type: ProgressType, _prefix: &str) -> Progress {
        match progress_type {
            ProgressType::Bytes => Progress::new(SourceBytes(Arc::clone(&self.0))),
            ProgressType::Spinner | ProgressType::Counter => Progress::hidden(),
        }
    }
}

fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RepoError> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, RepoError>> {
    let task = tokio::task::spawn_blocking(work);
    async move { task.await.map_err(|e| RepoError::Stopped(e.to_string()))? }
}

/// The repository on `backend`, not yet opened, with progress into `counters`.
fn unopened(
    backend: Arc<StoreBackend>,
    counters: &Arc<Counters>,
) -> Result<Repository<()>, RepoError> {
    let backends = RepositoryBackends::new(backend, None);
    Ok(Repository::new_with_progress(
        &RepositoryOptions::default(),
        &backends,
        CounterBars(Arc::clone(counters)),
    )?)
}

/// Opens the repository at `at`, creating it (with a key restic opens with the same password)
/// when the target has none yet.
fn open_or_init(
    at: &Location,
    backend: Arc<StoreBackend>,
    counters: &Arc<Counters>,
) -> Result<Repository<OpenStatus>, RepoError> {
    let repo = unopened(backend, counters)?;
    let credentials = Credentials::password(at.password.expose());
    if repo.config_id()?.is_some() {
        return Ok(repo.open(&credentials)?);
    }
    let config = ConfigOptions::default()
        .set_version(2u32)
        .set_datapack_size(ByteSize::b(PACK_SIZE))
        .set_datapack_size_limit(ByteSize::b(PACK_SIZE_LIMIT));
    Ok(repo.init(&credentials, &KeyOptions::default(), &config)?)
}

fn backend(at: &Location) -> Arc<StoreBackend> {
    Arc::new(StoreBackend::new(
        Arc::clone(&at.store),
        &at.root,
        tokio::runtime::Handle::current(),
    ))
}

/// The local source with Stowage's own exclude rules (the same as archives'), applied on top of
/// rustic_core's walker: an excluded directory takes everything under it along.
struct Filtered {
    inner: LocalSource,
    excludes: Excludes,
}

struct FilteredIter {
    inner: <LocalSource as ReadSource>::Iter,
    excludes: Excludes,
    skipping: Option<PathBuf>,
}

impl Iterator for FilteredIter {
    type Item = RusticResult<ReadSourceEntry<<LocalSource as ReadSource>::Open>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.inner.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            // The walk is sorted by path: everything under a skipped directory comes right
            // after it.
            if let Some(dir) = &self.skipping {
                if entry.path.starts_with(dir) {
                    continue;
                }
                self.skipping = None;
            }
            if self.excludes.excludes(&entry.path) {
                if entry.node.is_dir() {
                    self.skipping = Some(entry.path.clone());
                }
                continue;
            }
            return Some(Ok(entry));
        }
    }
}

impl ReadSource for Filtered {
    type Open = <LocalSource as ReadSource>::Open;
    type Iter = FilteredIter;

    fn size(&self) -> RusticResult<Option<u64>> {
        // No scan ahead (it would walk everything twice); the progress has no total.
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        FilteredIter {
            inner: self.inner.entries(),
            excludes: self.excludes.clone(),
            skipping: None,
        }
    }
}

/// Backs up `sources` (absolute paths, checked against the node's policy by the caller) into the
/// repository as one snapshot.
pub async fn backup_files(
    at: &Location,
    sources: Vec<PathBuf>,
    excludes: Excludes,
    labels: &Labels,
    counters: Arc<Counters>,
) -> Result<Snapshotted, RepoError> {
    let at = at.clone();
    let labels = labels.clone();
    let backend = backend(&at);
    run_blocking(move || {
        // A source that is a symlink is backed up as what it points to, as archives do.
        let mut paths = Vec::with_capacity(sources.len());
        for source in sources {
            let meta = std::fs::symlink_metadata(&source).map_err(|e| {
                RepoError::Refused(format!(
                    "the source {} cannot be read: {e}",
                    source.display()
                ))
            })?;
            paths.push(if meta.file_type().is_symlink() {
                std::fs::canonicalize(&source).map_err(|e| {
                    RepoError::Refused(format!(
                        "the source {} points nowhere: {e}",
                        source.display()
                    ))
                })?
            } else {
                source
            });
        }
        paths.sort();
        paths.dedup();
        let repo = open_or_init(&at, Arc::clone(&backend), &counters)?.to_indexed_ids()?;
        let snap = SnapshotFile::from_options(
            &SnapshotOptions::default()
                .host(labels.host.clone())
                .label(labels.label())
                .add_tags(&labels.tags())?,
        )?;
        let source = Filtered {
            inner: LocalSource::new(
                LocalSourceSaveOptions::default(),
                &rustic_core::Excludes::default(),
                &LocalSourceFilterOptions::default(),
                &paths,
            )?,
            excludes,
        };
        let opts = BackupOptions::default()
            .no_scan(true)
            .parent_opts(ParentOptions::default());
        let snap = repo.archive(&opts, &source, snap, &paths)?;
        backend.flush()?;
        Ok(snapshotted(&snap))
    })
    .await
}

fn snapshotted(snap: &SnapshotFile) -> Snapshotted {
    let summary = snap.summary.clone().unwrap_or_default();
    Snapshotted {
        snapshot_id: snap.id.to_hex().as_str().to_owned(),
        files_new: summary.files_new,
        files_changed: summary.files_changed,
        files_unmodified: summary.files_unmodified,
        files: summary.total_files_processed,
        dirs: summary.total_dirs_processed,
        total_bytes: summary.total_bytes_processed,
        bytes_added: summary.data_added_packed,
    }
}

/// What a restore wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoredSnapshot {
    pub files: u64,
    pub bytes: u64,
}

fn snapshot_id(raw: &str) -> Result<rustic_core::repofile::SnapshotId, RepoError> {
    // A full id only: a prefix could name another snapshot than the record's.
    if raw.len() != 64 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RepoError::Refused(format!("{raw:?} is not a snapshot id")));
    }
    Ok(raw.parse::<Id>()?.into())
}

/// Whether `path` (from a snapshot's tree) is a plain relative path: no root, no `..`, no `.`.
fn plain(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// `path` (absolute or not, as a user names it) as a relative path inside a snapshot.
pub fn inside(path: &str) -> Result<PathBuf, RepoError> {
    let rel = PathBuf::from(path.trim_start_matches('/'));
    if rel.as_os_str().is_empty() || !plain(&rel) {
        return Err(RepoError::Refused(format!(
            "{path:?} is not a path inside the snapshot"
        )));
    }
    Ok(rel)
}

/// Restores snapshot `id` (all of it, or the `selected` paths with everything under them) into
/// `staging`, a new directory: the snapshot's absolute paths become paths under it. Every path
/// is checked to stay inside before anything is written.
pub async fn restore(
    at: &Location,
    id: &str,
    selected: Vec<PathBuf>,
    staging: PathBuf,
    counters: Arc<Counters>,
) -> Result<RestoredSnapshot, RepoError> {
    let at = at.clone();
    let id = snapshot_id(id)?;
    let backend = backend(&at);
    run_blocking(move || {
        let repo = open_existing(&at, backend, &counters)?.to_indexed()?;
        let snap = repo
            .get_snapshots(&[id.to_hex().as_str()])?
            .pop()
            .ok_or_else(|| RepoError::Refused(format!("snapshot {id} is not in the repository")))?;
        let root = repo.node_from_snapshot_and_path(&snap, "")?;
        let keep = |path: &Path| {
            selected.is_empty()
                || selected
                    .iter()
                    .any(|s| path.starts_with(s) || s.starts_with(path))
        };
        let mut entries = Vec::new();
        for entry in repo.ls(&root, &LsOptions::default().recursive(true))? {
            let (path, node) = entry?;
            if !plain(&path) || node.name().to_string_lossy().contains('/') {
                return Err(RepoError::Refused(format!(
                    "the snapshot holds a path that would leave the destination: {}",
                    path.display()
                )));
            }
            if keep(&path) {
                entries.push((path, node));
            }
        }
        for s in &selected {
            if !entries.iter().any(|(p, _)| p == s) {
                return Err(RepoError::Refused(format!(
                    "/{} is not in the snapshot",
                    s.display()
                )));
            }
        }
        if entries.is_empty() {
            return Err(RepoError::Refused(
                "nothing in the snapshot matches the selected paths".to_owned(),
            ));
        }
        let files = entries.iter().filter(|(_, n)| n.is_file()).count() as u64;
        let bytes = entries
            .iter()
            .filter(|(_, n)| n.is_file())
            .map(|(_, n)| n.meta.size)
            .sum();
        std::fs::create_dir_all(&staging)
            .map_err(|e| RepoError::Refused(format!("creating the staging directory: {e}")))?;
        let dest = LocalDestination::new(&format!("{}/", staging.display()), true, false)?;
        let opts = RestoreOptions::default();
        let stream = || entries.iter().cloned().map(Ok);
        let plan = repo.prepare_restore(&opts, stream(), &dest, false)?;
        repo.restore(plan, &opts, stream(), &dest)?;
        Ok(RestoredSnapshot { files, bytes })
    })
    .await
}

/// The paths snapshot `id` was taken of.
pub async fn snapshot_paths(at: &Location, id: &str) -> Result<Vec<PathBuf>, RepoError> {
    let at = at.clone();
    let id = snapshot_id(id)?;
    let backend = backend(&at);
    run_blocking(move || {
        let repo = open_existing(&at, backend, &Arc::default())?;
        let snap = repo
            .get_snapshots(&[id.to_hex().as_str()])?
            .pop()
            .ok_or_else(|| RepoError::Refused(format!("snapshot {id} is not in the repository")))?;
        Ok(snap.paths.iter().map(PathBuf::from).collect())
    })
    .await
}

/// Opens a repository that must exist (a restore or a forget never creates one).
fn open_existing(
    at: &Location,
    backend: Arc<StoreBackend>,
    counters: &Arc<Counters>,
) -> Result<Repository<OpenStatus>, RepoError> {
    let repo = unopened(backend, counters)?;
    if repo.config_id()?.is_none() {
        return Err(RepoError::Refused(format!(
            "there is no repository at {}/ on the target",
            at.root
        )));
    }
    Ok(repo.open(&Credentials::password(at.password.expose()))?)
}

/// Removes snapshots from the repository (restic's `forget`; the data they alone used stays
/// until a prune). Snapshots already gone count as removed.
pub async fn forget(at: &Location, ids: &[String]) -> Result<(), RepoError> {
    let at = at.clone();
    let mut ids = ids
        .iter()
        .map(|raw| snapshot_id(raw))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort();
    ids.dedup();
    let backend = backend(&at);
    run_blocking(move || {
        let counters = Arc::new(Counters::default());
        let repo = open_existing(&at, backend, &counters)?;
        let present: std::collections::HashSet<_> =
            repo.list::<rustic_core::repofile::SnapshotId>()?.collect();
        let gone: Vec<_> = ids.into_iter().filter(|id| present.contains(id)).collect();
        if !gone.is_empty() {
            repo.delete_snapshots(&gone)?;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests;
