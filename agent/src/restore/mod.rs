//! The restore data path, in one streaming pass and with nothing touched before the artifact is
//! proven whole: the stored bytes are hashed (SHA-256) as they are read, decompressed and unpacked
//! into a staging directory on the destination's file system. Only when the hash and size match
//! the record are the staged files moved into place (a rename each); otherwise the staging
//! directory is removed and the destination is exactly as it was.
//!
//! Entries whose path would leave the staging directory (absolute, `..`, or through a symlink)
//! are refused, and the restore fails. Modes, modification times and symlinks come back as they
//! were archived; directories get their mode and time last, after their contents, on a handle
//! opened without following symlinks. Files that exist at the destination but not in the backup
//! are left alone.
//!
//! Putting the staged tree in place is planned before anything moves: a directory at the
//! destination where the backup holds a file or a link is never removed (the restore is refused,
//! naming it), and no step may land outside the node's `--allow-path`. The plan's steps then run
//! one by one, each replaced file first moved aside; if a step fails, the steps done are undone in
//! reverse, so a failed restore leaves the destination as it was.

pub mod database;

use crate::report::Counters;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use stowage_shared::tasks::Compression;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "the stored artifact does not match its record (sha256 {actual}, {actual_bytes} bytes; expected {expected}, {expected_bytes} bytes): it is damaged, so nothing was restored"
    )]
    Checksum {
        expected: String,
        expected_bytes: u64,
        actual: String,
        actual_bytes: u64,
    },
    #[error(
        "the archive holds an entry that would land outside the destination ({0}); nothing was restored"
    )]
    Escape(String),
    #[error("reading the artifact: {0}; nothing was restored")]
    Read(io::Error),
    #[error("moving the restored files into place: {0}")]
    Place(io::Error),
    #[error(
        "{0} is a directory at the destination but a file or link in the backup; Stowage never removes a directory to restore, so nothing was changed (move it away, or restore to another path)"
    )]
    DirectoryInTheWay(String),
    #[error("this node does not let Stowage write to {0} (--allow-path); nothing was changed")]
    NotAllowed(String),
}

/// What a finished restore put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub files: u64,
    pub bytes: u64,
}

/// What the artifact must be.
#[derive(Debug, Clone)]
pub struct Expected {
    pub sha256: String,
    pub bytes: u64,
    pub compression: Compression,
}

/// Hashes and counts every byte read through it.
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    counters: Arc<Counters>,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R, counters: Arc<Counters>) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            counters,
        }
    }

    /// Reads whatever is left (it is part of the artifact too), then gives the lowercase hex
    /// SHA-256 and size of everything read.
    pub(crate) fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((hex::encode(self.hasher.finalize()), self.bytes))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        self.counters.add_bytes(n as u64);
        Ok(n)
    }
}

/// What reading a stored archive from end to end found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveContents {
    /// The SHA-256 (lowercase hex) and size of the archive as stored.
    pub sha256: String,
    pub bytes: u64,
    /// Its length decompressed.
    pub plain_bytes: u64,
    /// A tar's entries other than directories (files and links, as a backup counts them), and
    /// the data bytes of its regular files.
    pub entries: u64,
    pub file_bytes: u64,
    /// Its first 16 bytes, decompressed.
    pub head: Vec<u8>,
}

/// Counts what passes through, and keeps the first 16 bytes.
struct Plain<R> {
    inner: R,
    bytes: u64,
    head: Vec<u8>,
}

impl<R: Read> Read for Plain<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let keep = (16 - self.head.len()).min(n);
        self.head.extend_from_slice(&buf[..keep]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Reads the archive from `source` to its end and writes nothing: hashed as stored,
/// decompressed, and (`tar`) walked entry by entry with every entry's data read. An error means
/// it cannot be read whole (it does not decompress, or the tar is cut short or malformed).
/// Blocking: run it on a blocking thread.
pub fn read_archive(
    source: impl Read,
    compression: Compression,
    tar: bool,
    counters: Arc<Counters>,
) -> io::Result<ArchiveContents> {
    let mut hashing = Hashing::new(source, counters);
    let mut found = ArchiveContents::default();
    {
        let decoded: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut hashing),
            Compression::Zstd { .. } => Box::new(zstd::stream::read::Decoder::new(&mut hashing)?),
        };
        let mut plain = Plain {
            inner: decoded,
            bytes: 0,
            head: Vec::with_capacity(16),
        };
        if tar {
            let mut archive = tar::Archive::new(&mut plain);
            for entry in archive.entries()? {
                let mut entry = entry?;
                let kind = entry.header().entry_type();
                if kind.is_dir() {
                    continue;
                }
                found.entries += 1;
                if kind.is_file() {
                    found.file_bytes += io::copy(&mut entry, &mut io::sink())?;
                }
            }
        }
        // The rest (a dump, or a tar's end blocks and padding).
        io::copy(&mut plain, &mut io::sink())?;
        (found.plain_bytes, found.head) = (plain.bytes, plain.head);
    }
    (found.sha256, found.bytes) = hashing.finish()?;
    Ok(found)
}

/// A directory of the archive: its mode and time are applied once its contents are in place.
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    mtime: u64,
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// An archive path as a relative path with normal steps only.
fn confined(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(step) => out.push(step),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Unpacks the artifact read from `source` into `staging` (which must not exist), hashing as it
/// goes. Blocking: run it on a blocking thread.
/// Decompressed pieces handed from the reading thread to the unpacking thread.
const PIECE: usize = 1 << 20;
/// Pieces in flight between the two.
const PIECES_IN_FLIGHT: usize = 4;

/// The reading half, on its own thread: the artifact is hashed and decompressed here while the
/// other thread unpacks, as `zstd -d | tar -x` do in two processes. Returns the hash and size
/// of everything read.
fn read_and_decode(
    source: impl Read,
    compression: Compression,
    counters: Arc<Counters>,
    out: std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<(String, u64)> {
    let mut hashing = Hashing::new(source, counters);
    let decoded = (|| -> io::Result<()> {
        let mut decoded: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut hashing),
            Compression::Zstd { .. } => Box::new(zstd::stream::read::Decoder::new(&mut hashing)?),
        };
        loop {
            let mut piece = vec![0u8; PIECE];
            let mut filled = 0;
            while filled < PIECE {
                match decoded.read(&mut piece[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            if filled == 0 {
                return Ok(());
            }
            piece.truncate(filled);
            if out.send(Ok(piece)).is_err() {
                // The unpacking side stopped (and says why); nothing more is needed.
                return Ok(());
            }
        }
    })();
    if let Err(e) = decoded {
        let _ = out.send(Err(io::Error::new(e.kind(), e.to_string())));
        return Err(e);
    }
    drop(out);
    // Whatever follows the compressed frame is part of the artifact too.
    hashing.finish()
}

/// The unpacking half's input: the pieces the reading half sends.
struct Pieces {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    piece: Vec<u8>,
    at: usize,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.piece.len() {
            match self.rx.recv() {
                Ok(piece) => {
                    self.piece = piece?;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Unpacks a tar stream into `staging`, refusing entries that would leave it.
fn extract(
    input: &mut Pieces,
    staging: &Path,
    counters: &Counters,
) -> Result<(Restored, BTreeMap<PathBuf, DirMeta>), RestoreError> {
    let mut dirs = BTreeMap::new();
    let mut restored = Restored { files: 0, bytes: 0 };
    let mut archive = tar::Archive::new(&mut *input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(running_as_root());
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(RestoreError::Read)? {
        let mut entry = entry.map_err(RestoreError::Read)?;
        let raw = entry.path().map_err(RestoreError::Read)?.into_owned();
        let Some(rel) = confined(&raw) else {
            return Err(RestoreError::Escape(raw.display().to_string()));
        };
        let kind = entry.header().entry_type();
        let size = entry.header().size().unwrap_or(0);
        let unpacked = entry.unpack_in(staging).map_err(|e| {
            // `tar` reports an entry that would land outside the directory only as the text of
            // an `io::Error` (its error type is private); `confined` above refuses such paths
            // first, so this only names what tar refused on its own (a link's target).
            if e.to_string().contains("outside of destination") {
                RestoreError::Escape(raw.display().to_string())
            } else {
                RestoreError::Read(e)
            }
        })?;
        if !unpacked {
            return Err(RestoreError::Escape(raw.display().to_string()));
        }
        if kind.is_dir() {
            let header = entry.header();
            let meta = DirMeta {
                mode: header.mode().unwrap_or(0o755),
                mtime: header.mtime().unwrap_or(0),
            };
            // Writable while its contents arrive; its own mode comes back at the end.
            let _ = std::fs::set_permissions(
                staging.join(&rel),
                std::fs::Permissions::from_mode(0o700 | meta.mode),
            );
            dirs.insert(rel, meta);
        } else {
            restored.files += 1;
            restored.bytes += size;
            counters.add_file(size);
        }
    }
    // tar's end blocks and padding: read them, so the reading half can finish.
    io::copy(input, &mut io::sink()).map_err(RestoreError::Read)?;
    Ok((restored, dirs))
}

/// Unpacks the artifact read from `source` into `staging` (which must not exist), hashing as it
/// goes; the hash and size are checked once everything was read.
fn unpack(
    source: impl Read + Send,
    expected: &Expected,
    staging: &Path,
    counters: &Arc<Counters>,
) -> Result<(Restored, BTreeMap<PathBuf, DirMeta>), RestoreError> {
    // A new directory of our own, private until the files move out of it (an existing path,
    // a link included, is an error rather than something to write through).
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(staging)
            .map_err(RestoreError::Read)?;
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(PIECES_IN_FLIGHT);
    let (hashed, extracted) = std::thread::scope(|scope| {
        let reader_counters = Arc::clone(counters);
        let compression = expected.compression;
        let reading =
            scope.spawn(move || read_and_decode(source, compression, reader_counters, tx));
        let mut input = Pieces {
            rx,
            piece: Vec::new(),
            at: 0,
        };
        let extracted = extract(&mut input, staging, counters);
        // Let the reading half finish even if unpacking stopped early.
        drop(input);
        let hashed = reading
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reading thread panicked")));
        (hashed, extracted)
    });
    // A read or decompression failure explains an unpacking failure that follows from it.
    let (actual, actual_bytes) = hashed.map_err(RestoreError::Read)?;
    let (restored, dirs) = extracted?;
    if actual != expected.sha256 || actual_bytes != expected.bytes {
        return Err(RestoreError::Checksum {
            expected: expected.sha256.clone(),
            expected_bytes: expected.bytes,
            actual,
            actual_bytes,
        });
    }
    Ok((restored, dirs))
}

/// Renames, or copies then removes when `from` and `to` are on different file systems.
fn move_entry(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            copy_tree(from, to)?;
            let meta = std::fs::symlink_metadata(from)?;
            if meta.is_dir() {
                std::fs::remove_dir_all(from)
            } else {
                std::fs::remove_file(from)
            }
        }
        other => other,
    }
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
    } else if meta.is_dir() {
        std::fs::create_dir(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        std::fs::set_permissions(to, meta.permissions())?;
        std::fs::File::open(to)?.set_modified(meta.modified()?)
    } else {
        std::fs::copy(from, to)?;
        std::fs::File::options()
            .write(true)
            .open(to)?
            .set_modified(meta.modified()?)
    }
}

/// One move of the plan that puts the staged tree in place.
#[derive(Debug)]
enum Step {
    /// Nothing is at `to`: move `from` there.
    Place { from: PathBuf, to: PathBuf },
    /// A file or link is at `to`: move it aside to `aside`, then `from` to `to`.
    Replace {
        from: PathBuf,
        to: PathBuf,
        aside: PathBuf,
    },
}

/// Plans moving the staged tree under `staged` into `target`: files and links replace what is
/// there (moved aside first), directories are merged, and a directory where the backup holds a
/// file or link stops the plan. Nothing is changed here.
fn plan_merge(
    staged: &Path,
    target: &Path,
    policy: &crate::paths::PathPolicy,
    aside_prefix: &str,
    steps: &mut Vec<Step>,
) -> Result<(), RestoreError> {
    let read = |e: io::Error| RestoreError::Place(e);
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(staged)
        .map_err(read)?
        .collect::<io::Result<_>>()
        .map_err(read)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let (from, to) = (entry.path(), target.join(entry.file_name()));
        if !policy.allows(&to) {
            return Err(RestoreError::NotAllowed(to.display().to_string()));
        }
        let is_dir = entry.file_type().map_err(read)?.is_dir();
        match std::fs::symlink_metadata(&to) {
            // A real directory (not a link to one) takes the staged directory's contents.
            Ok(there) if there.is_dir() && is_dir => {
                plan_merge(&from, &to, policy, aside_prefix, steps)?;
            }
            Ok(there) if there.is_dir() => {
                return Err(RestoreError::DirectoryInTheWay(to.display().to_string()));
            }
            Ok(_) => {
                let aside = to.with_file_name(format!("{aside_prefix}{}", steps.len()));
                steps.push(Step::Replace { from, to, aside });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => steps.push(Step::Place { from, to }),
            Err(e) => return Err(RestoreError::Place(e)),
        }
    }
    Ok(())
}

/// Runs the plan; on a failure, undoes the steps done (newest first) and returns the error.
fn apply(steps: &[Step]) -> Result<(), RestoreError> {
    for (done, step) in steps.iter().enumerate() {
        let outcome = match step {
            Step::Place { from, to } => move_entry(from, to),
            Step::Replace { from, to, aside } => std::fs::rename(to, aside).and_then(|()| {
                move_entry(from, to).inspect_err(|_| {
                    let _ = std::fs::rename(aside, to);
                })
            }),
        };
        if let Err(e) = outcome {
            for step in steps[..done].iter().rev() {
                undo(step);
            }
            return Err(RestoreError::Place(e));
        }
    }
    // Everything is in place: what was replaced can go.
    for step in steps {
        if let Step::Replace { aside, .. } = step {
            let _ = std::fs::remove_file(aside);
        }
    }
    Ok(())
}

/// Takes back one step that was done: what it placed goes, what it moved aside comes back.
fn undo(step: &Step) {
    let remove = |path: &Path| match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            make_removable(path);
            std::fs::remove_dir_all(path)
        }
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match step {
        Step::Place { to, .. } => {
            let _ = remove(to);
        }
        Step::Replace { to, aside, .. } => {
            let _ = remove(to);
            let _ = std::fs::rename(aside, to);
        }
    }
}

/// Gives the archive's directories their mode and time at `root`, deepest first, once every
/// entry is in place (a rename into a directory changes its time).
fn settle_dirs(root: &Path, dirs: &BTreeMap<PathBuf, DirMeta>) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    for (rel, meta) in dirs.iter().rev() {
        // On a handle opened without following a symlink: a link put where the directory was
        // never makes Stowage change what it points to.
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_DIRECTORY).bits())
            .open(root.join(rel))?;
        dir.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime))?;
        dir.set_permissions(std::fs::Permissions::from_mode(meta.mode))?;
    }
    Ok(())
}

/// Restores the artifact read from `source` under `root` (`/` for the original paths), staging
/// in `staging` (a new directory on the same file system as `root`, removed at the end).
pub fn restore_blocking(
    source: impl Read + Send,
    expected: &Expected,
    (root, policy): (&Path, &crate::paths::PathPolicy),
    staging: &Path,
    counters: &Arc<Counters>,
) -> Result<Restored, RestoreError> {
    let outcome = unpack(source, expected, staging, counters).and_then(|(restored, dirs)| {
        put_in_place(staging, root, policy)?;
        settle_dirs(root, &dirs).map_err(RestoreError::Place)?;
        Ok(restored)
    });
    remove_staging(staging);
    outcome
}

/// Moves the tree staged under `staging` into `root` by a plan made before anything moves (see
/// the module's description): all of it lands, or the destination is left as it was.
pub fn put_in_place(
    staging: &Path,
    root: &Path,
    policy: &crate::paths::PathPolicy,
) -> Result<(), RestoreError> {
    let mut steps = Vec::new();
    let prefix = format!(
        ".stowage-aside-{}-",
        staging
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    plan_merge(staging, root, policy, &prefix, &mut steps)?;
    apply(&steps)
}

/// [`put_in_place`] for a tree staged with its directories' modes and times already set (a
/// snapshot restore): those are read first and given again once everything is in place, since
/// moving entries into a directory changes its time. Only directories at or under `restored`
/// (the backed-up or selected paths, relative) get them: the directories above a source (`/srv`
/// above `/srv/www`, `/tmp` above a temporary source) belong to the host, not to the backup, and
/// are never changed.
pub fn put_in_place_with_dirs(
    staging: &Path,
    root: &Path,
    restored: &[PathBuf],
    policy: &crate::paths::PathPolicy,
) -> Result<(), RestoreError> {
    use std::os::unix::fs::MetadataExt;
    let mut dirs = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(staging.join(&rel)).map_err(RestoreError::Place)? {
            let entry = entry.map_err(RestoreError::Place)?;
            let meta = std::fs::symlink_metadata(entry.path()).map_err(RestoreError::Place)?;
            if meta.is_dir() {
                let child = rel.join(entry.file_name());
                stack.push(child.clone());
                if !restored.iter().any(|r| child.starts_with(r)) {
                    continue;
                }
                dirs.insert(
                    child.clone(),
                    DirMeta {
                        mode: meta.mode() & 0o7777,
                        mtime: u64::try_from(meta.mtime()).unwrap_or_default(),
                    },
                );
            }
        }
    }
    put_in_place(staging, root, policy)?;
    settle_dirs(root, &dirs).map_err(RestoreError::Place)
}

/// Removes a staging directory and whatever is left in it.
pub fn remove_staging(staging: &Path) {
    if staging.exists() {
        // Owner access first, so that read-only staged directories can be removed.
        make_removable(staging);
        let _ = std::fs::remove_dir_all(staging);
    }
}

fn make_removable(dir: &Path) {
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_removable(&entry.path());
            }
        }
    }
}

/// Restores from an async stream of the artifact (a store's reader), on a blocking thread.
pub async fn restore(
    source: crate::storage::ObjectReader,
    expected: Expected,
    (root, policy): (PathBuf, crate::paths::PathPolicy),
    staging: PathBuf,
    counters: Arc<Counters>,
) -> Result<Restored, RestoreError> {
    tokio::task::spawn_blocking(move || {
        let reader = tokio_util::io::SyncIoBridge::new(source);
        restore_blocking(
            io::BufReader::with_capacity(1 << 20, reader),
            &expected,
            (&root, &policy),
            &staging,
            &counters,
        )
    })
    .await
    .map_err(|e| RestoreError::Read(io::Error::other(format!("the restore stopped: {e}"))))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{self, Destination};
    use crate::storage::{Store, Tools};
    use std::os::unix::fs::MetadataExt;
    use stowage_shared::storage::{LocalDiskConfig, StorageConfig};
    use stowage_shared::tasks::FileSource;

    type Tree = BTreeMap<PathBuf, (String, u32, i64, Vec<u8>)>;

    /// Every entry under `root`: kind, mode, mtime and contents (or link target).
    fn snapshot(root: &Path) -> Tree {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
                let path = entry.path();
                let meta = std::fs::symlink_metadata(&path).expect("stat");
                let rel = path.strip_prefix(root).expect("under root").to_path_buf();
                let (kind, body) = if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path).expect("link");
                    ("link", target.to_string_lossy().as_bytes().to_vec())
                } else if meta.is_dir() {
                    stack.push(path.clone());
                    ("dir", Vec::new())
                } else {
                    ("file", std::fs::read(&path).expect("read"))
                };
                let mtime = if kind == "link" { 0 } else { meta.mtime() };
                out.insert(rel, (kind.to_owned(), meta.mode() & 0o7777, mtime, body));
            }
        }
        out
    }

    fn set_mtime(path: &Path, secs: u64) {
        std::fs::File::open(path)
            .expect("open")
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .expect("mtime");
    }

    /// A tree with what restores get wrong: modes, times, symlinks, unicode, empty directories.
    fn tree(root: &Path) {
        std::fs::create_dir_all(root.join("empty dir")).expect("dir");
        std::fs::create_dir_all(root.join("données/子目录")).expect("dir");
        std::fs::write(root.join("données/子目录/ファイル.txt"), "unicode").expect("file");
        std::fs::write(root.join("script.sh"), "#!/bin/sh\necho hi\n").expect("file");
        std::fs::set_permissions(
            root.join("script.sh"),
            std::fs::Permissions::from_mode(0o751),
        )
        .expect("chmod");
        std::fs::write(root.join("secret.key"), "k").expect("file");
        std::fs::set_permissions(
            root.join("secret.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        std::os::unix::fs::symlink("données/子目录", root.join("shortcut")).expect("link");
        std::os::unix::fs::symlink("/nonexistent/absolute", root.join("dangling")).expect("link");
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(root.join("big.bin"), big).expect("file");
        set_mtime(&root.join("script.sh"), 1_600_000_000);
        set_mtime(&root.join("données/子目录/ファイル.txt"), 1_500_000_000);
        set_mtime(&root.join("données/子目录"), 1_400_000_000);
        set_mtime(&root.join("empty dir"), 1_300_000_000);
    }

    async fn back_up(source: &Path, target: &Path) -> (Store, pipeline::Archive) {
        let config = StorageConfig::LocalDisk(LocalDiskConfig {
            base_path: target.to_string_lossy().into_owned(),
        });
        let store = Store::open(&config, &Tools::default())
            .await
            .expect("store");
        let spec = FileSource {
            sources: vec![source.to_string_lossy().into_owned()],
            excludes: vec![],
        };
        let dests = [Destination {
            store: &store,
            path: "a.tar.zst".into(),
        }];
        let (archive, outcomes) = pipeline::run(
            &spec,
            Compression::Zstd { level: 3 },
            &dests,
            Arc::default(),
        )
        .await
        .expect("backup");
        assert!(outcomes[0].is_ok());
        (store, archive)
    }

    fn expected(archive: &pipeline::Archive) -> Expected {
        Expected {
            sha256: archive.sha256.clone(),
            bytes: archive.bytes,
            compression: Compression::Zstd { level: 3 },
        }
    }

    #[tokio::test]
    async fn restores_the_original_tree_over_changed_sources() {
        let work = tempfile::tempdir().expect("tmp");
        let source = work.path().join("site");
        tree(&source);
        let before = snapshot(&source);
        let target = tempfile::tempdir().expect("tmp");
        let (store, archive) = back_up(&source, target.path()).await;

        // Change everything a restore must put back.
        std::fs::write(source.join("script.sh"), "changed").expect("write");
        std::fs::set_permissions(
            source.join("secret.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        std::fs::remove_dir_all(source.join("données")).expect("rm");
        std::fs::remove_dir(source.join("empty dir")).expect("rm");
        std::fs::remove_file(source.join("shortcut")).expect("rm");
        std::fs::write(source.join("shortcut"), "a file where a link was").expect("write");
        std::fs::write(source.join("big.bin"), "short").expect("write");
        assert_ne!(snapshot(&source), before);

        // To the original paths: the root is `/`, staging beside the source.
        let staging = work.path().join(".stowage-restore-1");
        let reader = store.reader("a.tar.zst").await.expect("reader");
        let restored = restore(
            reader,
            expected(&archive),
            (PathBuf::from("/"), crate::paths::PathPolicy::everything()),
            staging.clone(),
            Arc::default(),
        )
        .await
        .expect("restore");
        assert_eq!(restored.files, archive.files);
        assert_eq!(snapshot(&source), before, "the tree is back as it was");
        assert!(!staging.exists(), "the staging directory is gone");
    }

    #[tokio::test]
    async fn a_damaged_artifact_is_refused_and_touches_nothing() {
        let work = tempfile::tempdir().expect("tmp");
        let source = work.path().join("site");
        tree(&source);
        let target = tempfile::tempdir().expect("tmp");
        let (store, archive) = back_up(&source, target.path()).await;
        std::fs::write(source.join("script.sh"), "changed after the backup").expect("write");
        let before = snapshot(work.path());

        // One flipped byte in the middle of the artifact.
        let path = target.path().join("a.tar.zst");
        let mut bytes = std::fs::read(&path).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&path, &bytes).expect("write");

        let reader = store.reader("a.tar.zst").await.expect("reader");
        let err = restore(
            reader,
            expected(&archive),
            (PathBuf::from("/"), crate::paths::PathPolicy::everything()),
            work.path().join(".stowage-restore-2"),
            Arc::default(),
        )
        .await
        .expect_err("a damaged artifact is refused");
        assert!(
            matches!(err, RestoreError::Checksum { .. } | RestoreError::Read(_)),
            "{err}"
        );
        assert!(err.to_string().contains("nothing was restored"), "{err}");
        assert_eq!(snapshot(work.path()), before, "nothing changed");
    }

    /// An archive read whole: its hash and size as stored, its files and data as the backup
    /// counted them; cut short, it cannot be read to its end.
    #[tokio::test]
    async fn an_archive_is_read_whole_and_counted() {
        let work = tempfile::tempdir().expect("tmp");
        let source = work.path().join("site");
        tree(&source);
        let target = tempfile::tempdir().expect("tmp");
        let (_store, archive) = back_up(&source, target.path()).await;
        let stored = std::fs::read(target.path().join("a.tar.zst")).expect("read");
        let zstd = Compression::Zstd { level: 3 };
        let found = read_archive(&stored[..], zstd, true, Arc::default()).expect("read whole");
        assert_eq!(
            (found.sha256.as_str(), found.bytes),
            (archive.sha256.as_str(), archive.bytes)
        );
        assert_eq!(
            (found.entries, found.file_bytes),
            (archive.files, archive.source_bytes)
        );
        assert!(found.plain_bytes > found.file_bytes);
        assert_eq!(
            &found.head[..],
            &zstd::decode_all(&stored[..]).expect("zstd")[..16]
        );

        let cut = &stored[..stored.len() - 100];
        assert!(read_archive(cut, zstd, true, Arc::default()).is_err());
        let mut flipped = stored.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x01;
        // One flipped bit: it no longer decodes, or it hashes to something else.
        if let Ok(f) = read_archive(&flipped[..], zstd, true, Arc::default()) {
            assert_ne!(f.sha256, archive.sha256);
        }
    }

    #[tokio::test]
    async fn a_whole_artifact_with_another_checksum_is_refused() {
        let work = tempfile::tempdir().expect("tmp");
        let source = work.path().join("site");
        tree(&source);
        let target = tempfile::tempdir().expect("tmp");
        let (store, archive) = back_up(&source, target.path()).await;
        let dest = tempfile::tempdir().expect("tmp");
        let mut wrong = expected(&archive);
        wrong.sha256 = "0".repeat(64);
        let reader = store.reader("a.tar.zst").await.expect("reader");
        let err = restore(
            reader,
            wrong,
            (
                dest.path().to_path_buf(),
                crate::paths::PathPolicy::everything(),
            ),
            dest.path().join(".stowage-restore-3"),
            Arc::default(),
        )
        .await
        .expect_err("refused");
        assert!(matches!(err, RestoreError::Checksum { .. }), "{err}");
        assert!(snapshot(dest.path()).is_empty(), "nothing was written");
    }

    #[tokio::test]
    async fn a_directory_where_the_backup_holds_a_link_is_never_removed() {
        let work = tempfile::tempdir().expect("tmp");
        let source = work.path().join("site");
        tree(&source);
        let target = tempfile::tempdir().expect("tmp");
        let (store, archive) = back_up(&source, target.path()).await;
        std::fs::remove_file(source.join("shortcut")).expect("rm");
        std::fs::create_dir(source.join("shortcut")).expect("a dir where the link was");
        std::fs::write(source.join("shortcut/precious.txt"), "keep me").expect("write");
        std::fs::write(source.join("script.sh"), "changed").expect("write");
        let changed = snapshot(&source);
        let staging = work.path().join(".stowage-restore-2");
        let err = restore(
            store.reader("a.tar.zst").await.expect("reader"),
            expected(&archive),
            (PathBuf::from("/"), crate::paths::PathPolicy::everything()),
            staging.clone(),
            Arc::default(),
        )
        .await
        .expect_err("refused");
        assert!(
            matches!(err, RestoreError::DirectoryInTheWay(ref p) if p.ends_with("shortcut")),
            "{err}"
        );
        assert_eq!(
            snapshot(&source),
            changed,
            "nothing at the destination changed"
        );
        assert!(!staging.exists());
    }

    #[test]
    fn a_step_that_fails_undoes_the_steps_before_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let (staged, dest) = (dir.path().join("staged"), dir.path().join("dest"));
        std::fs::create_dir_all(staged.join("new-dir")).expect("mkdir");
        std::fs::create_dir_all(&dest).expect("mkdir");
        std::fs::write(staged.join("a.txt"), "restored").expect("write");
        std::fs::write(staged.join("new-dir/b.txt"), "restored").expect("write");
        std::fs::write(dest.join("a.txt"), "what was there").expect("write");
        let steps = [
            Step::Replace {
                from: staged.join("a.txt"),
                to: dest.join("a.txt"),
                aside: dest.join(".aside-0"),
            },
            Step::Place {
                from: staged.join("new-dir"),
                to: dest.join("new-dir"),
            },
            // The staged entry is gone: this step fails, after two that worked.
            Step::Place {
                from: staged.join("vanished"),
                to: dest.join("vanished"),
            },
        ];
        assert!(apply(&steps).is_err());
        let left: Vec<String> = std::fs::read_dir(&dest)
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["a.txt"], "only what was there");
        assert_eq!(
            std::fs::read_to_string(dest.join("a.txt")).expect("read"),
            "what was there"
        );
    }

    #[test]
    fn restores_never_leave_the_allowed_paths() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (staged, allowed, other) = (
            dir.path().join("staged"),
            dir.path().join("allowed"),
            dir.path().join("other"),
        );
        std::fs::create_dir_all(staged.join("allowed"))?;
        std::fs::create_dir_all(staged.join("other"))?;
        std::fs::write(staged.join("other/x"), "x")?;
        std::fs::create_dir_all(&allowed)?;
        let policy = crate::paths::PathPolicy::only(std::slice::from_ref(&allowed))?;
        let mut steps = Vec::new();
        let err = plan_merge(&staged, dir.path(), &policy, ".aside-", &mut steps)
            .expect_err("other is not allowed");
        assert!(
            matches!(err, RestoreError::NotAllowed(ref p) if p.ends_with("other")),
            "{err}"
        );
        assert!(!other.exists());
        Ok(())
    }

    #[test]
    fn entries_that_escape_are_refused() {
        for (name, link) in [
            ("../evil", None),
            ("ok/../../evil", None),
            ("link/evil", Some("/tmp")),
        ] {
            let mut builder = tar::Builder::new(Vec::new());
            if let Some(target) = link {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                header.set_uid(0);
                header.set_gid(0);
                header.set_mtime(0);
                builder
                    .append_link(&mut header, "link", target)
                    .expect("link");
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(4);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            // `append_data` refuses `..`; write the raw name the way a hostile archive would.
            let raw = name.as_bytes();
            header.as_old_mut().name[..raw.len()].copy_from_slice(raw);
            header.set_cksum();
            builder.append(&header, &b"evil"[..]).expect("entry");
            let bytes = builder.into_inner().expect("tar");
            let sha = hex::encode(Sha256::digest(&bytes));
            let dest = tempfile::tempdir().expect("tmp");
            let err = restore_blocking(
                bytes.as_slice(),
                &Expected {
                    sha256: sha,
                    bytes: bytes.len() as u64,
                    compression: Compression::None,
                },
                (dest.path(), &crate::paths::PathPolicy::everything()),
                &dest.path().join(".staging"),
                &Arc::default(),
            )
            .expect_err("refused");
            assert!(matches!(err, RestoreError::Escape(_)), "{name}: {err}");
            assert!(snapshot(dest.path()).is_empty(), "{name}: nothing written");
            assert!(!dest.path().parent().expect("parent").join("evil").exists());
        }
    }
}
