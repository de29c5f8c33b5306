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
mod keyfile;
mod lock;
mod restorer;
pub mod streams;

use crate::pipeline::Excludes;
use crate::report::Counters;
use crate::storage::Store;
use backend::StoreBackend;
use bytesize::ByteSize;
use rustic_core::repofile::{MasterKey, SnapshotFile};
use rustic_core::{
    BackupOptions, ConfigOptions, Credentials, Id, KeyOptions, LocalDestination, LocalSource,
    LocalSourceFilterOptions, LocalSourceSaveOptions, LsOptions, OpenStatus, ParentOptions,
    Progress, ProgressBars, ProgressType, ReadSource, ReadSourceEntry, ReadSourceOpen, Repository,
    RepositoryBackends, RepositoryOptions, RestoreOptions, RusticProgress, RusticResult,
    SnapshotOptions,
};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use stowage_shared::SecretString;

/// The size data packs start at, and the most they grow to.
pub const PACK_SIZE: u64 = 4 * 1024 * 1024;
pub const PACK_SIZE_LIMIT: u64 = 8 * 1024 * 1024;

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

    fn snapshot_options(&self) -> Result<SnapshotOptions, RepoError> {
        Ok(SnapshotOptions::default()
            .host(self.host.clone())
            .label(self.label())
            .add_tags(&self.tags())?)
    }
}

/// What could not be read while a snapshot was taken. rustic_core warns and leaves such a file
/// out of the snapshot; Stowage instead discards the snapshot, as an archive run fails on a
/// file it cannot read: a backup is whole or it is not reported good.
#[derive(Debug, Clone, Default)]
struct Faults(Arc<Mutex<Vec<String>>>);

impl Faults {
    fn add(&self, what: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(what);
    }
    fn list(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The snapshot when nothing failed to be read; otherwise it is removed again (its data stays
/// until a prune, like any forgotten snapshot's) and the run fails on this target, naming
/// what could not be read.
fn whole_or_discarded(
    at: &Location,
    be: &Arc<StoreBackend>,
    snapshot: Result<SnapshotFile, RepoError>,
    faults: &Faults,
) -> Result<Snapshotted, RepoError> {
    let snap = snapshot?;
    let faults = faults.list();
    if faults.is_empty() {
        return Ok(snapshotted(&snap));
    }
    let discarded = open_existing(at, unopened_hidden(Arc::clone(be))?)
        .and_then(|repo| Ok(repo.delete_snapshots(&[snap.id])?))
        .and_then(|()| Ok(be.flush()?));
    let shown: Vec<&str> = faults.iter().take(5).map(String::as_str).collect();
    Err(RepoError::Refused(format!(
        "{} item(s) could not be read, so the snapshot {}: {}{}",
        faults.len(),
        match discarded {
            Ok(()) => "was discarded".to_owned(),
            Err(e) => format!("is incomplete and could not be removed ({e})"),
        },
        shown.join("; "),
        if faults.len() > shown.len() {
            "; …"
        } else {
            ""
        }
    )))
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

/// The repository on `backend`, not yet opened, reporting no progress.
fn unopened_hidden(backend: Arc<StoreBackend>) -> Result<Repository<()>, RepoError> {
    let backends = RepositoryBackends::new(backend, None);
    Ok(Repository::new(&RepositoryOptions::default(), &backends)?)
}

/// Opens the repository at `at`, creating it (with a key restic opens with the same password)
/// when the target has none yet.
fn open_or_init(
    at: &Location,
    be: &StoreBackend,
    repo: Repository<()>,
) -> Result<Repository<OpenStatus>, RepoError> {
    if repo.config_id()?.is_some() {
        return Ok(repo.open(&Credentials::password(at.password.expose()))?);
    }
    let config = ConfigOptions::default()
        .set_version(2u32)
        .set_datapack_size(ByteSize::b(PACK_SIZE))
        .set_datapack_size_limit(ByteSize::b(PACK_SIZE_LIMIT));
    // Created with the master key (rustic_core then writes no key file), and the key file for
    // the password written by Stowage, with a KDF cost that suits a random password.
    let master = MasterKey::new();
    let repo = repo.init(
        &Credentials::Masterkey(master.clone()),
        &KeyOptions::default(),
        &config,
    )?;
    keyfile::write(be, &master, &at.password)?;
    Ok(repo)
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
    faults: Faults,
}

struct FilteredIter {
    inner: <LocalSource as ReadSource>::Iter,
    excludes: Excludes,
    skipping: Option<PathBuf>,
    faults: Faults,
}

/// A file of the walk, opened when rustic_core reads it; what fails is noted in the faults.
struct Watched<O> {
    inner: O,
    path: PathBuf,
    faults: Faults,
}

struct WatchedReader<R> {
    inner: R,
    path: PathBuf,
    faults: Faults,
}

impl<O: ReadSourceOpen> ReadSourceOpen for Watched<O> {
    type Reader = WatchedReader<O::Reader>;

    fn open(self) -> RusticResult<Self::Reader> {
        match self.inner.open() {
            Ok(inner) => Ok(WatchedReader {
                inner,
                path: self.path,
                faults: self.faults,
            }),
            Err(e) => {
                self.faults.add(format!("{}: {e}", self.path.display()));
                Err(e)
            }
        }
    }
}

impl<R: Read> Read for WatchedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            self.faults.add(format!("{}: {e}", self.path.display()));
        })
    }
}

impl Iterator for FilteredIter {
    type Item = RusticResult<ReadSourceEntry<Watched<<LocalSource as ReadSource>::Open>>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.inner.next()? {
                Ok(entry) => entry,
                Err(e) => {
                    // The walker could not read a directory or an entry's metadata.
                    self.faults
                        .add(e.to_string().lines().next().unwrap_or_default().to_owned());
                    return Some(Err(e));
                }
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
            let ReadSourceEntry { path, node, open } = entry;
            let open = open.map(|inner| Watched {
                inner,
                path: path.clone(),
                faults: self.faults.clone(),
            });
            return Some(Ok(ReadSourceEntry { path, node, open }));
        }
    }
}

impl ReadSource for Filtered {
    type Open = Watched<<LocalSource as ReadSource>::Open>;
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
            faults: self.faults.clone(),
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
        let repo = open_or_init(&at, &backend, unopened(Arc::clone(&backend), &counters)?)?;
        let _lock = lock::acquire(&backend, &repo.key(), false)?;
        let repo = repo.to_indexed_ids()?;
        let snap = SnapshotFile::from_options(&labels.snapshot_options()?)?;
        let faults = Faults::default();
        let source = Filtered {
            inner: LocalSource::new(
                LocalSourceSaveOptions::default(),
                &rustic_core::Excludes::default(),
                &LocalSourceFilterOptions::default(),
                &paths,
            )?,
            excludes,
            faults: faults.clone(),
        };
        let opts = BackupOptions::default()
            .no_scan(true)
            .parent_opts(ParentOptions::default());
        let snap = repo
            .archive(&opts, &source, snap, &paths)
            .map_err(RepoError::from)
            .and_then(|snap| Ok(backend.flush().map(|()| snap)?));
        whole_or_discarded(&at, &backend, snap, &faults)
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

/// Snapshot `id` of `repo`, or why there is none.
fn snapshot_in<S: rustic_core::Open>(
    repo: &Repository<S>,
    id: rustic_core::repofile::SnapshotId,
) -> Result<SnapshotFile, RepoError> {
    repo.get_snapshots(&[id.to_hex().as_str()])?
        .pop()
        .ok_or_else(|| RepoError::Refused(format!("snapshot {id} is not in the repository")))
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
        let repo = open_existing(&at, unopened(Arc::clone(&backend), &counters)?)?;
        let _lock = lock::acquire(&backend, &repo.key(), false)?;
        let repo = repo.to_indexed()?;
        let snap = snapshot_in(&repo, id)?;
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
        restorer::write_contents(&repo, &backend, &entries, &staging, &counters)?;
        // rustic_core then makes the directories, links and special files and sets every
        // entry's metadata (modes, owners, times, extended attributes); the files written above
        // match the snapshot by size and time, so it reads none of their contents again.
        let dest = LocalDestination::new(&format!("{}/", staging.display()), true, false)?;
        let opts = RestoreOptions::default();
        let stream = || entries.iter().cloned().map(Ok);
        let plan = repo.prepare_restore(&opts, stream(), &dest, false)?;
        repo.restore(plan, &opts, stream(), &dest)?;
        Ok(RestoredSnapshot { files, bytes })
    })
    .await
}

/// Writes the files at `paths` (absolute, as the snapshot holds them) of snapshot `id` into
/// `out`, one after another, and returns `out` with each file's length. Every blob is
/// authenticated as it is read (a damaged pack fails the read, never passes wrong bytes on).
pub async fn read_files<W: std::io::Write + Send + 'static>(
    at: &Location,
    id: &str,
    paths: Vec<PathBuf>,
    out: W,
    counters: Arc<Counters>,
) -> Result<(W, Vec<u64>), RepoError> {
    let at = at.clone();
    let id = snapshot_id(id)?;
    let backend = backend(&at);
    run_blocking(move || {
        let repo = open_existing(&at, unopened_hidden(Arc::clone(&backend))?)?;
        let _lock = lock::acquire(&backend, &repo.key(), false)?;
        let repo = repo.to_indexed()?;
        let snap = snapshot_in(&repo, id)?;
        let mut out = Counted {
            inner: out,
            bytes: 0,
            counters,
        };
        let mut lengths = Vec::with_capacity(paths.len());
        for path in &paths {
            let node = repo
                .node_from_snapshot_and_path(&snap, &path.to_string_lossy())
                .map_err(|_| {
                    RepoError::Refused(format!("{} is not in the snapshot", path.display()))
                })?;
            if !node.is_file() {
                return Err(RepoError::Refused(format!(
                    "{} in the snapshot is not a file",
                    path.display()
                )));
            }
            let before = out.bytes;
            repo.dump(&node, &mut out)?;
            lengths.push(out.bytes - before);
        }
        std::io::Write::flush(&mut out).map_err(|e| RepoError::Refused(format!("writing: {e}")))?;
        Ok((out.inner, lengths))
    })
    .await
}

/// A writer that counts what passes, into the run's progress too.
struct Counted<W> {
    inner: W,
    bytes: u64,
    counters: Arc<Counters>,
}

impl<W: std::io::Write> std::io::Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.counters.add_source(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The paths snapshot `id` was taken of.
pub async fn snapshot_paths(at: &Location, id: &str) -> Result<Vec<PathBuf>, RepoError> {
    let at = at.clone();
    let id = snapshot_id(id)?;
    let backend = backend(&at);
    run_blocking(move || {
        let repo = open_existing(&at, unopened_hidden(backend)?)?;
        let snap = snapshot_in(&repo, id)?;
        Ok(snap.paths.iter().map(PathBuf::from).collect())
    })
    .await
}

/// Opens a repository that must exist (a restore or a forget never creates one).
fn open_existing(at: &Location, repo: Repository<()>) -> Result<Repository<OpenStatus>, RepoError> {
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
        let repo = open_existing(&at, unopened_hidden(Arc::clone(&backend))?)?;
        // Removing snapshot files cannot hurt a backup writing beside it: a shared lock.
        let _lock = lock::acquire(&backend, &repo.key(), false)?;
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

/// What a prune did: the bytes the repository's packs took before and after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub snapshots: u64,
}

/// Removes the data no snapshot uses any more (restic's `prune`), under an exclusive lock:
/// refused while anyone else holds a lock. Unused packs are deleted at once rather than after
/// rustic_core's 23-hour grace, which exists for writers that take no locks; Stowage's writers
/// take them and the control plane never hands out a run into a repository being pruned.
pub async fn prune(at: &Location) -> Result<Pruned, RepoError> {
    let at = at.clone();
    let backend = backend(&at);
    run_blocking(move || {
        let repo = open_existing(&at, unopened_hidden(Arc::clone(&backend))?)?;
        let _lock = lock::acquire(&backend, &repo.key(), true)?;
        let bytes_before = backend.pack_bytes()?;
        let opts = rustic_core::PruneOptions::default().instant_delete(true);
        let plan = repo.prune_plan(&opts)?;
        repo.prune(&opts, plan)?;
        backend.flush()?;
        let snapshots = repo.list::<rustic_core::repofile::SnapshotId>()?.count() as u64;
        Ok(Pruned {
            bytes_before,
            bytes_after: backend.pack_bytes()?,
            snapshots,
        })
    })
    .await
}

#[cfg(test)]
mod tests;

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Pack files named by an error (hex ids).
    pub damaged_packs: Vec<String>,
    /// Snapshots (full ids) that hold data in a damaged pack, or whose trees cannot be read.
    pub affected: Vec<String>,
    /// Snapshots checked.
    pub snapshots: u64,
}

/// Checks the repository (restic's `check`): the structure every time (index against pack
/// files, every tree of the snapshots checked), and with `read_percent` > 0 that share of the
/// snapshots' pack data read back and hashed (100: all of it). `snapshot` narrows the check to
/// one snapshot's trees and packs. When something is damaged, every snapshot of the repository
/// that needs a damaged pack is named.
pub async fn check(
    at: &Location,
    snapshot: Option<&str>,
    read_percent: u8,
) -> Result<Checked, RepoError> {
    let at = at.clone();
    let only = snapshot.map(snapshot_id).transpose()?;
    let backend = backend(&at);
    run_blocking(move || {
        let repo = open_existing(&at, unopened_hidden(Arc::clone(&backend))?)?;
        let _lock = lock::acquire(&backend, &repo.key(), false)?;
        let snaps = match only {
            Some(id) => repo.get_snapshots(&[id.to_hex().as_str()])?,
            None => repo.get_all_snapshots()?,
        };
        if let Some(id) = only
            && snaps.is_empty()
        {
            return Err(RepoError::Refused(format!(
                "snapshot {id} is not in the repository"
            )));
        }
        let subset = if read_percent >= 100 {
            rustic_core::ReadSubsetOption::All
        } else {
            rustic_core::ReadSubsetOption::Percentage(f64::from(read_percent))
        };
        let opts = rustic_core::CheckOptions::default()
            .read_data(read_percent > 0)
            .read_data_subset(subset);
        let results = repo.check_with_trees(opts, snaps.iter().map(|s| s.tree).collect())?;
        let mut checked = Checked {
            snapshots: snaps.len() as u64,
            ..Checked::default()
        };
        for (level, finding) in &results.0 {
            // rustic_core exports neither the level's nor the finding's type by name: the
            // level is told by its Debug form, the finding by its message.
            let text = finding_text(&finding.to_string());
            if format!("{level:?}") == "Warn" {
                checked.warnings.push(text);
            } else {
                checked.errors.push(text);
            }
        }
        if checked.errors.is_empty() {
            return Ok(checked);
        }
        let packs: std::collections::HashSet<String> = repo
            .list::<rustic_core::repofile::PackId>()?
            .map(|id| id.to_hex().as_str().to_owned())
            .collect();
        // Findings name packs by the first 8 digits of their id.
        let mut damaged: Vec<String> = checked
            .errors
            .iter()
            .flat_map(|e| hex_words(e))
            .filter_map(|word| {
                let mut matching = packs.iter().filter(|id| id.starts_with(&word));
                match (matching.next(), matching.next()) {
                    (Some(id), None) => Some(id.clone()),
                    _ => None,
                }
            })
            .collect();
        damaged.sort();
        damaged.dedup();
        checked.affected = affected_snapshots(repo, &damaged)?;
        checked.damaged_packs = damaged;
        Ok(checked)
    })
    .await
}

/// The words of `text` that could be (the start of) an id: 8 to 64 hex digits.
fn hex_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| (8..=64).contains(&w.len()))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// A check finding as one line: rustic_core's message without its backtrace and boilerplate.
fn finding_text(full: &str) -> String {
    let cut = [
        "Backtrace:",
        "Some additional details",
        "For more information",
    ]
    .iter()
    .filter_map(|marker| full.find(marker))
    .min()
    .unwrap_or(full.len());
    let text: Vec<&str> = full[..cut]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Message:")
        .collect();
    let mut line = text.join(" ");
    if line.len() > 400 {
        let mut end = 400;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

/// Every snapshot of the repository that needs one of the `damaged` packs (for a tree or a
/// file's content), or whose trees cannot be read at all.
fn affected_snapshots(
    repo: Repository<OpenStatus>,
    damaged: &[String],
) -> Result<Vec<String>, RepoError> {
    let repo = repo.to_indexed()?;
    let in_damaged = |pack: rustic_core::repofile::PackId| {
        damaged.iter().any(|d| d.as_str() == pack.to_hex().as_str())
    };
    let mut affected = Vec::new();
    for snap in repo.get_all_snapshots()? {
        let id = snap.id.to_hex().as_str().to_owned();
        let needs_damaged = (|| -> Result<bool, RepoError> {
            if in_damaged(repo.get_index_entry(&snap.tree)?.pack) {
                return Ok(true);
            }
            let root = repo.node_from_snapshot_and_path(&snap, "")?;
            for entry in repo.ls(&root, &LsOptions::default().recursive(true))? {
                let (_, node) = entry?;
                if let Some(tree) = node.subtree
                    && in_damaged(repo.get_index_entry(&tree)?.pack)
                {
                    return Ok(true);
                }
                for blob in node.content.iter().flatten() {
                    if in_damaged(repo.get_index_entry(blob)?.pack) {
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        })();
        // A snapshot whose trees cannot be read is damaged too.
        if needs_damaged.unwrap_or(true) {
            affected.push(id);
        }
    }
    Ok(affected)
}

/// The repository at `at`, opened, indexed and locked (shared, for as long as the lock is
/// kept), and the node at `path` of snapshot `id` (absolute, as the snapshot holds it; `/` is its
/// root).
fn node_at(
    at: &Location,
    id: rustic_core::repofile::SnapshotId,
    path: &str,
) -> Result<
    (
        Repository<rustic_core::IndexedFullStatus>,
        lock::Held,
        rustic_core::repofile::Node,
    ),
    RepoError,
> {
    let backend = backend(at);
    let repo = open_existing(at, unopened_hidden(Arc::clone(&backend))?)?;
    let held = lock::acquire(&backend, &repo.key(), false)?;
    let repo = repo.to_indexed()?;
    let snap = snapshot_in(&repo, id)?;
    let inside = path.trim_start_matches('/');
    if !inside.is_empty() && !plain(Path::new(inside)) {
        return Err(RepoError::Refused(format!("{path:?} is not a plain path")));
    }
    let node = repo
        .node_from_snapshot_and_path(&snap, inside)
        .map_err(|_| RepoError::Refused(format!("{path} is not in the snapshot")))?;
    Ok((repo, held, node))
}

/// One directory of snapshot `id` at `path` (absolute, as the snapshot holds it): directories
/// first, then by name, at most `max` entries. A stream's file (a dump) shows its real size,
/// summed from its content, where the tree records none.
pub async fn list_dir(
    at: &Location,
    id: &str,
    path: &str,
    max: usize,
) -> Result<stowage_shared::api::FsListing, RepoError> {
    use stowage_shared::api::{FsEntry, FsListing};
    let at = at.clone();
    let id = snapshot_id(id)?;
    let path = path.to_owned();
    run_blocking(move || {
        let (repo, _lock, dir) = node_at(&at, id, &path)?;
        let inside = path.trim_start_matches('/');
        let subtree = dir.subtree.ok_or_else(|| {
            RepoError::Refused(format!("{path} in the snapshot is not a directory"))
        })?;
        let tree = repo.get_tree(&subtree)?;
        let base = if inside.is_empty() {
            String::new()
        } else {
            format!("/{inside}")
        };
        let mut entries = Vec::with_capacity(tree.nodes.len().min(max));
        for node in &tree.nodes {
            let name = node.name().to_string_lossy().into_owned();
            let size = file_length(&repo, node)?;
            entries.push(FsEntry {
                path: format!("{base}/{name}"),
                name,
                is_dir: node.is_dir(),
                size,
                modified_at: node.meta.mtime.and_then(|t| {
                    chrono::DateTime::from_timestamp(
                        t.as_second(),
                        t.subsec_nanosecond().max(0) as u32,
                    )
                    .map(stowage_shared::time::format)
                }),
            });
        }
        entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
        let truncated = entries.len() > max;
        entries.truncate(max);
        Ok(FsListing {
            path: if base.is_empty() {
                "/".to_owned()
            } else {
                base
            },
            entries,
            truncated,
        })
    })
    .await
}

/// A file node's length: the recorded size, or for a stream's file (rustic_core records 0, the
/// size being unknown until the stream ended) the sum of its content's blobs in the index.
fn file_length<S: rustic_core::IndexedFull>(
    repo: &Repository<S>,
    node: &rustic_core::repofile::Node,
) -> Result<u64, RepoError> {
    if !node.is_file() || node.meta.size != 0 {
        return Ok(node.meta.size);
    }
    let mut sum = 0u64;
    for blob in node.content.iter().flatten() {
        sum += u64::from(repo.get_index_entry(blob)?.location.data_length());
    }
    Ok(sum)
}

/// A file's content from the repository, blob by blob (each authenticated as it is read), as a
/// `Read` — what `tar` needs to append an entry. It yields exactly `left` bytes, or fails: a tar
/// entry must hold the length its header announced.
struct BlobReader<'a, S> {
    repo: &'a Repository<S>,
    blobs: std::slice::Iter<'a, rustic_core::DataId>,
    current: bytes::Bytes,
    left: u64,
}

impl<'a, S: rustic_core::IndexedFull> BlobReader<'a, S> {
    fn new(
        repo: &'a Repository<S>,
        node: &'a rustic_core::repofile::Node,
    ) -> Result<Self, RepoError> {
        Ok(Self {
            repo,
            blobs: node.content.as_deref().unwrap_or_default().iter(),
            current: bytes::Bytes::new(),
            left: file_length(repo, node)?,
        })
    }
}

impl<S: rustic_core::IndexedFull> Read for BlobReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        while self.current.is_empty() {
            let Some(id) = self.blobs.next() else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the file's content ends {} bytes short", self.left),
                ));
            };
            self.current = self
                .repo
                .get_blob_cached(
                    &rustic_core::BlobId::from(*id),
                    rustic_core::repofile::BlobType::Data,
                )
                .map_err(std::io::Error::other)?;
        }
        let n = buf
            .len()
            .min(self.current.len())
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&self.current.split_to(n));
        self.left -= n as u64;
        Ok(n)
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    pub is_dir: bool,
    pub files: u64,
    /// The files' bytes (a folder's tar stream is longer by its headers).
    pub bytes: u64,
}

/// Writes the file at `path` of snapshot `id` (absolute, as the snapshot holds it; `/` is the
/// whole snapshot) into `out(false)` as it is, or the folder there (into `out(true)`) with everything under it as a tar
/// stream whose paths start with the folder's name. Directories, files and symbolic links go
/// into the tar with their modes and times; devices, FIFOs and sockets are left out (a restore
/// recreates them). Every blob is authenticated as it is read: a damaged pack fails the export,
/// never passes wrong bytes on.
pub async fn export<W: std::io::Write + Send + 'static>(
    at: &Location,
    id: &str,
    path: &str,
    out: impl FnOnce(bool) -> W + Send + 'static,
) -> Result<Exported, RepoError> {
    let at = at.clone();
    let id = snapshot_id(id)?;
    let path = path.to_owned();
    run_blocking(move || {
        let (repo, _lock, node) = node_at(&at, id, &path)?;
        let inside = path.trim_start_matches('/');
        let written = |e: std::io::Error| RepoError::Refused(format!("sending {path}: {e}"));
        if node.is_file() {
            let mut out = out(false);
            let mut reader = BlobReader::new(&repo, &node)?;
            let bytes = std::io::copy(&mut reader, &mut out).map_err(written)?;
            out.flush().map_err(written)?;
            return Ok(Exported {
                is_dir: false,
                files: 1,
                bytes,
            });
        }
        if !node.is_dir() {
            return Err(RepoError::Refused(format!(
                "{path} in the snapshot is neither a file nor a folder"
            )));
        }
        let top = Path::new(inside)
            .file_name()
            .map_or_else(|| PathBuf::from("snapshot"), PathBuf::from);
        let mut tar = tar::Builder::new(out(true));
        let mut done = Exported {
            is_dir: true,
            ..Exported::default()
        };
        let header = |node: &rustic_core::repofile::Node, kind: tar::EntryType, default: u32| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(node.meta.mode.map_or(default, |m| m & 0o777));
            h.set_mtime(
                node.meta
                    .mtime
                    .map_or(0, |t| t.as_second().max(0).unsigned_abs()),
            );
            h.set_size(0);
            h
        };
        let mut h = header(&node, tar::EntryType::Directory, 0o755);
        tar.append_data(&mut h, &top, std::io::empty())
            .map_err(written)?;
        for entry in repo.ls(&node, &LsOptions::default().recursive(true))? {
            let (rel, item) = entry?;
            if !plain(&rel) || item.name().to_string_lossy().contains('/') {
                return Err(RepoError::Refused(format!(
                    "the snapshot holds a path that would leave the folder: {}",
                    rel.display()
                )));
            }
            let name = top.join(&rel);
            if item.is_dir() {
                let mut h = header(&item, tar::EntryType::Directory, 0o755);
                tar.append_data(&mut h, &name, std::io::empty())
                    .map_err(written)?;
            } else if item.is_file() {
                let reader = BlobReader::new(&repo, &item)?;
                let len = reader.left;
                let mut h = header(&item, tar::EntryType::Regular, 0o644);
                h.set_size(len);
                tar.append_data(&mut h, &name, reader).map_err(written)?;
                done.files += 1;
                done.bytes += len;
            } else if item.is_symlink() {
                let mut h = header(&item, tar::EntryType::Symlink, 0o777);
                tar.append_link(&mut h, &name, item.node_type.to_link())
                    .map_err(written)?;
            }
        }
        let mut out = tar.into_inner().map_err(written)?;
        out.flush().map_err(written)?;
        Ok(done)
    })
    .await
}
