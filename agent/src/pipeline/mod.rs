//! The backup data path, in one streaming pass: the sources are walked into a tar stream, which
//! zstd compresses (on several threads), which is hashed (SHA-256) and handed in pieces to every
//! target's upload at once. Nothing is staged on disk and memory is bounded by a few pieces per
//! target, whatever the size of the data.
//!
//! Each source is stored under its absolute path without the leading `/` (`/srv/www/a` becomes
//! `srv/www/a`), so several sources never collide and a restore knows where each file came from.
//! Symlinks are stored as symlinks; modes, owners and modification times are kept; empty
//! directories are stored too.

pub mod dump;
pub mod sqlite;

use crate::report::Counters;
use crate::storage::{StorageError, Store};
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stowage_shared::databases::DumpSection;
use stowage_shared::tasks::{Compression, FileSource};
use tokio::sync::mpsc;

/// The size of the pieces handed to the uploads.
const PIECE: usize = 1 << 20;
/// The data one zstd worker compresses at a time.
const ZSTD_JOB: u32 = 2 << 20;
/// Pieces that may wait for one target's upload before the archive waits for it.
const QUEUE: usize = 4;

/// What a finished pass produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Bytes of the artifact (after compression).
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the artifact.
    pub sha256: String,
    pub files: u64,
    /// Bytes of file contents read from the sources.
    pub source_bytes: u64,
    /// Database dumps: where each database lies in the uncompressed artifact.
    pub sections: Vec<DumpSection>,
}

/// One target's share of a run.
#[derive(Debug)]
pub struct Destination<'a> {
    pub store: &'a Store,
    pub path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("reading the sources: {0}")]
    Source(String),
    #[error("every target failed: {0}")]
    AllTargetsFailed(String),
}

/// Excludes: a pattern without `/` matches a file or directory name anywhere (`*.log`,
/// `node_modules`); a pattern with `/` matches the whole absolute path (`/srv/www/cache/*`,
/// `**/tmp/**`).
#[derive(Debug, Clone)]
pub struct Excludes(Vec<glob::Pattern>);

impl Excludes {
    pub fn new(patterns: &[String]) -> Result<Self, BackupError> {
        patterns
            .iter()
            .map(|p| {
                glob::Pattern::new(p)
                    .map_err(|e| BackupError::Source(format!("exclude {p:?}: {}", e.msg)))
            })
            .collect::<Result<_, _>>()
            .map(Excludes)
    }

    pub fn excludes(&self, path: &Path) -> bool {
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let name = path.file_name().map(|n| n.to_string_lossy());
        self.0.iter().any(|p| {
            if p.as_str().contains('/') {
                p.matches_path_with(path, options)
            } else {
                name.as_deref().is_some_and(|n| p.matches_with(n, options))
            }
        })
    }
}

/// The archiver stopped because no target is left to receive its bytes (each upload's own error
/// says why), as opposed to the source failing.
#[derive(Debug, thiserror::Error)]
#[error("every target stopped receiving")]
struct TargetsGone;

impl TargetsGone {
    fn caused(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<TargetsGone>())
    }
}

/// Counts, hashes and hands on the compressed bytes in pieces, one copy per live target.
struct FanOut {
    senders: Vec<Option<mpsc::Sender<io::Result<bytes::Bytes>>>>,
    piece: Vec<u8>,
    hasher: Sha256,
    bytes: u64,
    counters: Arc<Counters>,
}

impl FanOut {
    fn flush_piece(&mut self) -> io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let piece = bytes::Bytes::from(std::mem::replace(
            &mut self.piece,
            Vec::with_capacity(PIECE),
        ));
        for slot in &mut self.senders {
            // A target whose upload ended early dropped its receiver; the others go on.
            if let Some(tx) = slot
                && tx.blocking_send(Ok(piece.clone())).is_err()
            {
                *slot = None;
            }
        }
        if self.senders.iter().all(Option::is_none) {
            return Err(io::Error::other(TargetsGone));
        }
        Ok(())
    }
}

impl Write for FanOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        self.counters.add_bytes(buf.len() as u64);
        let mut rest = buf;
        while !rest.is_empty() {
            let room = PIECE - self.piece.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.piece.extend_from_slice(now);
            rest = later;
            if self.piece.len() == PIECE {
                self.flush_piece()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file's contents as exactly the size its tar header states, counted as they are read. A file
/// that grows while it is read is cut at that size and one that shrinks is padded with zeros, so
/// the archive stays well-formed (tar has no way to say "this entry changed"), as GNU tar does.
struct Exact<'a> {
    inner: std::fs::File,
    left: u64,
    counters: &'a Counters,
}

impl io::Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        self.counters.add_source(n as u64);
        Ok(n)
    }
}

/// Walks the sources into `out` as a tar stream; returns (files, content bytes).
fn write_tar<W: Write>(
    spec: &FileSource,
    excludes: &Excludes,
    counters: &Counters,
    out: W,
) -> io::Result<(u64, u64, W)> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    let (mut files, mut bytes, mut entries) = (0u64, 0u64, 0u64);
    for source in &spec.sources {
        let given = PathBuf::from(source);
        // A source that is a symlink is backed up as what it points to, under the name given:
        // a link to a directory stands for the directory, not for a one-entry archive.
        let root = if std::fs::symlink_metadata(&given)?.file_type().is_symlink() {
            std::fs::canonicalize(&given)?
        } else {
            given.clone()
        };
        let mut stack = vec![root.clone()];
        while let Some(path) = stack.pop() {
            let shown = match path.strip_prefix(&root) {
                Ok(rel) if !rel.as_os_str().is_empty() => given.join(rel),
                _ => given.clone(),
            };
            if excludes.excludes(&shown) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path)?;
            let name = shown.strip_prefix("/").unwrap_or(&shown);
            if meta.is_dir() || meta.is_file() || meta.file_type().is_symlink() {
                entries += 1;
            }
            if meta.is_dir() {
                if !name.as_os_str().is_empty() {
                    tar.append_path_with_name(&path, name)?;
                }
                let mut children: Vec<PathBuf> = std::fs::read_dir(&path)?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<io::Result<_>>()?;
                // Reverse order on the stack gives sorted order in the archive.
                children.sort_unstable_by(|a, b| b.cmp(a));
                stack.extend(children);
            } else if meta.is_file() {
                let mut header = tar::Header::new_gnu();
                header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                let file = std::fs::File::open(&path)?;
                tar.append_data(
                    &mut header,
                    name,
                    Exact {
                        inner: file,
                        left: meta.len(),
                        counters,
                    },
                )?;
                files += 1;
                bytes += meta.len();
                counters.add_file(0);
            } else if meta.file_type().is_symlink() {
                tar.append_path_with_name(&path, name)?;
                files += 1;
                counters.add_file(0);
            }
            // Sockets, fifos and devices are not backup material.
        }
    }
    if entries == 0 {
        // Nothing at all is no backup: every path was excluded.
        return Err(io::Error::other(
            "the sources produced nothing to back up (every path is excluded)",
        ));
    }
    let out = tar.into_inner()?;
    Ok((files, bytes, out))
}

/// What a pass reads: a tree of files (as a tar stream), the output of dump programs, or a
/// consistent copy of an SQLite database.
#[derive(Debug)]
pub enum Source {
    Files {
        spec: FileSource,
        excludes: Excludes,
    },
    Dump(crate::pipeline::dump::Dump),
    Sqlite(std::path::PathBuf),
}

/// Where a producer writes several files one after another (the files of a repository
/// snapshot): each starts with `next_file`.
pub trait Files: Write {
    fn next_file(&mut self) -> io::Result<()>;
}

/// What a source wrote into the pass.
#[derive(Debug, Default)]
pub struct Produced {
    /// Files archived, or databases dumped.
    pub items: u64,
    pub bytes: u64,
    pub sections: Vec<DumpSection>,
}

impl Source {
    /// Writes the source's bytes to `out`.
    fn write(&mut self, counters: &Counters, out: &mut dyn Write) -> io::Result<Produced> {
        match self {
            Source::Files { spec, excludes } => {
                write_tar(spec, excludes, counters, out).map(|(items, bytes, _)| Produced {
                    items,
                    bytes,
                    sections: Vec::new(),
                })
            }
            Source::Dump(dump) => dump.write(counters, out),
            Source::Sqlite(path) => crate::pipeline::sqlite::snapshot_into(path, counters, out),
        }
    }
}

/// The producer's half, on a blocking thread: source → zstd → hash → pieces to every sender.
fn archive_into(
    source: &mut Source,
    compression: Compression,
    counters: Arc<Counters>,
    senders: Vec<Option<mpsc::Sender<io::Result<bytes::Bytes>>>>,
) -> io::Result<(Archive, FanOut)> {
    let mut fan = FanOut {
        senders,
        piece: Vec::with_capacity(PIECE),
        hasher: Sha256::new(),
        bytes: 0,
        counters: Arc::clone(&counters),
    };
    let (produced, mut fan) = match compression {
        Compression::None => {
            let produced = source.write(&counters, &mut fan)?;
            (produced, fan)
        }
        Compression::Zstd { level } => {
            let mut encoder = zstd::stream::Encoder::new(fan, level)?;
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            encoder.multithread(u32::try_from(threads).unwrap_or(1))?;
            // zstd's default job for these levels is 8 MiB per worker, with its input and output
            // buffers; 2 MiB jobs keep the whole compressor near 20 MiB for a small loss in ratio.
            encoder.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB))?;
            encoder.include_checksum(true)?;
            let produced = source.write(&counters, &mut encoder)?;
            (produced, encoder.finish()?)
        }
    };
    fan.flush_piece()?;
    let archive = Archive {
        bytes: fan.bytes,
        sha256: hex::encode(std::mem::take(&mut fan.hasher).finalize()),
        files: produced.items,
        source_bytes: produced.bytes,
        sections: produced.sections,
    };
    Ok((archive, fan))
}

/// Runs one pass over a file task's sources; see [`run_source`].
pub async fn run(
    files: &FileSource,
    compression: Compression,
    destinations: &[Destination<'_>],
    counters: Arc<Counters>,
) -> Result<(Archive, Vec<Result<u64, StorageError>>), BackupError> {
    let source = Source::Files {
        spec: files.clone(),
        excludes: Excludes::new(&files.excludes)?,
    };
    run_source(source, compression, destinations, counters).await
}

/// Runs one pass: read the source, compress, hash, and upload to every destination at once. Returns the
/// archive's figures and each destination's outcome (in the order given); fails only when the
/// sources cannot be read or no destination took the whole artifact.
pub async fn run_source(
    mut source: Source,
    compression: Compression,
    destinations: &[Destination<'_>],
    counters: Arc<Counters>,
) -> Result<(Archive, Vec<Result<u64, StorageError>>), BackupError> {
    let mut senders = Vec::new();
    let mut uploads = Vec::new();
    for dest in destinations {
        let (tx, rx) = mpsc::channel::<io::Result<bytes::Bytes>>(QUEUE);
        senders.push(Some(tx));
        uploads.push(async move {
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
            let mut reader = tokio_util::io::StreamReader::new(stream);
            dest.store.write_from(&dest.path, &mut reader).await
        });
    }
    // A second handle on every channel, to tell the uploads that the input broke: a channel that
    // merely closes would look like a complete artifact.
    let signal: Vec<_> = senders.iter().flatten().cloned().collect();
    let producer = tokio::task::spawn_blocking(move || -> io::Result<(Archive, FanOut)> {
        let outcome = archive_into(&mut source, compression, counters, senders);
        if let Err(e) = &outcome {
            for tx in &signal {
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
        outcome
    });
    let (produced, outcomes) = tokio::join!(
        async {
            let result = producer.await;
            // Dropping the senders ends every upload's input.
            result.map(|r| r.map(|(archive, _fan)| archive))
        },
        futures_util::future::join_all(uploads)
    );
    let archive = match produced {
        Ok(Ok(archive)) => archive,
        Ok(Err(e)) => {
            // The uploads saw their input end early or in an error and removed what they wrote.
            return Err(if TargetsGone::caused(&e) {
                BackupError::AllTargetsFailed(
                    outcomes
                        .iter()
                        .filter_map(|o| o.as_ref().err().map(ToString::to_string))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            } else {
                BackupError::Source(e.to_string())
            });
        }
        Err(e) => return Err(BackupError::Source(format!("the archiver stopped: {e}"))),
    };
    if outcomes.iter().all(Result::is_err) {
        return Err(BackupError::AllTargetsFailed(
            outcomes
                .iter()
                .filter_map(|o| o.as_ref().err().map(ToString::to_string))
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    Ok((archive, outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Tools;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use stowage_shared::storage::{LocalDiskConfig, StorageConfig};

    async fn local(dir: &Path) -> Store {
        let config = StorageConfig::LocalDisk(LocalDiskConfig {
            base_path: dir.to_string_lossy().into_owned(),
        });
        Store::open(&config, &Tools::default())
            .await
            .expect("local store")
    }

    fn spec(sources: Vec<String>, excludes: Vec<String>) -> FileSource {
        FileSource { sources, excludes }
    }

    const ZSTD: Compression = Compression::Zstd { level: 3 };

    /// Bytes zstd cannot shrink, so that pieces flow before the archive ends.
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[tokio::test]
    async fn a_tree_goes_to_every_target_and_comes_back_whole()
    -> Result<(), Box<dyn std::error::Error>> {
        let src = tempfile::tempdir()?;
        let root = src.path().join("site");
        std::fs::create_dir_all(root.join("empty"))?;
        std::fs::create_dir_all(root.join("docs/ünïcødé 文件"))?;
        std::fs::write(root.join("docs/ünïcødé 文件/readme.txt"), "hello")?;
        std::fs::write(root.join("run.sh"), "#!/bin/sh\n")?;
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o750))?;
        std::fs::write(root.join("big.bin"), noise(3 * PIECE))?;
        std::fs::write(root.join("debug.log"), "excluded")?;
        std::fs::create_dir_all(root.join("cache"))?;
        std::fs::write(root.join("cache/x"), "excluded too")?;
        std::os::unix::fs::symlink("docs", root.join("link"))?;
        let mtime =
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .write(true)
            .open(root.join("run.sh"))?
            .set_modified(mtime)?;

        let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let (store_a, store_b) = (local(a.path()).await, local(b.path()).await);
        let path = "task/2026/11/28/site-r1.tar.zst".to_owned();
        let dests = [
            Destination {
                store: &store_a,
                path: path.clone(),
            },
            Destination {
                store: &store_b,
                path: path.clone(),
            },
        ];
        let cache = format!("{}/cache", root.display());
        let (archive, outcomes) = run(
            &spec(
                vec![root.to_string_lossy().into_owned()],
                vec!["*.log".into(), cache],
            ),
            ZSTD,
            &dests,
            Arc::default(),
        )
        .await?;
        assert_eq!(
            archive.files, 4,
            "readme, run.sh, big.bin and link; the log and cache/ are excluded: {archive:?}"
        );
        for outcome in &outcomes {
            assert_eq!(outcome.as_ref().ok(), Some(&archive.bytes));
        }
        for store in [&store_a, &store_b] {
            let stored = store.read(&path).await?;
            assert_eq!(stored.len() as u64, archive.bytes);
            assert_eq!(hex::encode(Sha256::digest(&stored)), archive.sha256);
        }

        let out = tempfile::tempdir()?;
        let tar_bytes = zstd::decode_all(store_a.read(&path).await?.as_slice())?;
        tar::Archive::new(tar_bytes.as_slice()).unpack(out.path())?;
        let back = out.path().join(root.strip_prefix("/")?);
        assert_eq!(std::fs::read(back.join("big.bin"))?, noise(3 * PIECE));
        assert_eq!(
            std::fs::read_to_string(back.join("docs/ünïcødé 文件/readme.txt"))?,
            "hello"
        );
        assert!(back.join("empty").is_dir());
        assert_eq!(std::fs::read_link(back.join("link"))?, Path::new("docs"));
        let meta = std::fs::metadata(back.join("run.sh"))?;
        assert_eq!(meta.mode() & 0o777, 0o750);
        assert_eq!(meta.mtime(), 1_700_000_000);
        assert!(!back.join("debug.log").exists() && !back.join("cache").exists());
        Ok(())
    }

    #[tokio::test]
    async fn a_source_that_breaks_midway_leaves_no_artifact()
    -> Result<(), Box<dyn std::error::Error>> {
        let src = tempfile::tempdir()?;
        std::fs::write(src.path().join("big.bin"), noise(4 * PIECE))?;
        let target = tempfile::tempdir()?;
        let store = local(target.path()).await;
        let dests = [Destination {
            store: &store,
            path: "a.tar.zst".into(),
        }];
        let err = run(
            &spec(
                vec![
                    src.path().to_string_lossy().into_owned(),
                    "/nonexistent/stowage-test-source".into(),
                ],
                vec![],
            ),
            ZSTD,
            &dests,
            Arc::default(),
        )
        .await
        .expect_err("a missing source fails the run");
        assert!(matches!(err, BackupError::Source(_)), "{err}");
        assert!(
            store.stat("a.tar.zst").await.is_err(),
            "no artifact is left"
        );
        assert!(store.list("").await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn one_failing_target_does_not_stop_the_others() -> Result<(), Box<dyn std::error::Error>>
    {
        let src = tempfile::tempdir()?;
        std::fs::write(src.path().join("f"), noise(2 * PIECE))?;
        let (good, bad) = (tempfile::tempdir()?, tempfile::tempdir()?);
        // A file where the artifact's directory should be: that target cannot take the artifact.
        std::fs::write(bad.path().join("x"), "in the way")?;
        let (ok_store, bad_store) = (local(good.path()).await, local(bad.path()).await);
        let dests = [
            Destination {
                store: &bad_store,
                path: "x/a.tar.zst".into(),
            },
            Destination {
                store: &ok_store,
                path: "x/a.tar.zst".into(),
            },
        ];
        let (archive, outcomes) = run(
            &spec(vec![src.path().to_string_lossy().into_owned()], vec![]),
            ZSTD,
            &dests,
            Arc::default(),
        )
        .await?;
        assert!(
            outcomes[0].is_err(),
            "a base path under a regular file cannot be written"
        );
        assert_eq!(outcomes[1].as_ref().ok(), Some(&archive.bytes));
        assert_eq!(ok_store.stat("x/a.tar.zst").await?, archive.bytes);
        Ok(())
    }

    #[test]
    fn a_file_that_changes_while_read_keeps_its_stated_size() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789")?;
        let counters = Counters::default();
        for (stated, expected) in [(5u64, b"01234".to_vec()), (12, b"0123456789\0\0".to_vec())] {
            let mut out = Vec::new();
            io::Read::read_to_end(
                &mut Exact {
                    inner: std::fs::File::open(&path)?,
                    left: stated,
                    counters: &counters,
                },
                &mut out,
            )?;
            assert_eq!(out, expected);
        }
        Ok(())
    }

    #[test]
    fn a_source_that_is_a_symlink_is_backed_up_as_what_it_points_to() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let real = dir.path().join("real");
        std::fs::create_dir_all(real.join("sub"))?;
        std::fs::write(real.join("sub/a.txt"), "a")?;
        std::fs::write(real.join("b.txt"), "bb")?;
        let link = dir.path().join("current");
        std::os::unix::fs::symlink(&real, &link)?;
        let spec = spec(vec![link.to_string_lossy().into_owned()], vec![]);
        let counters = Counters::default();
        let excludes = Excludes::new(&[]).map_err(io::Error::other)?;
        let (files, bytes, out) = write_tar(&spec, &excludes, &counters, Vec::new())?;
        assert_eq!((files, bytes), (2, 3));
        let mut names: Vec<String> = tar::Archive::new(out.as_slice())
            .entries()?
            .map(|e| e.and_then(|e| Ok(e.path()?.to_string_lossy().into_owned())))
            .collect::<io::Result<_>>()?;
        names.sort();
        let base = link
            .strip_prefix("/")
            .unwrap_or(&link)
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            names,
            [
                base.clone(),
                format!("{base}/b.txt"),
                format!("{base}/sub"),
                format!("{base}/sub/a.txt")
            ]
        );
        Ok(())
    }

    #[test]
    fn sources_that_produce_nothing_are_an_error() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("only.log"), "x")?;
        let spec = spec(
            vec![dir.path().join("only.log").to_string_lossy().into_owned()],
            vec![],
        );
        let excludes = Excludes::new(&["*.log".to_owned()]).map_err(io::Error::other)?;
        let err = write_tar(&spec, &excludes, &Counters::default(), Vec::new())
            .expect_err("nothing to back up");
        assert!(err.to_string().contains("nothing to back up"), "{err}");
        Ok(())
    }

    #[test]
    fn excludes_match_names_anywhere_and_paths_whole() {
        let ex = Excludes::new(&[
            "*.log".into(),
            "/srv/www/cache/*".into(),
            "**/tmp/**".into(),
        ])
        .expect("valid");
        assert!(ex.excludes(Path::new("/srv/www/a/b.log")));
        assert!(ex.excludes(Path::new("/srv/www/cache/x")));
        assert!(!ex.excludes(Path::new("/srv/www/cache")));
        assert!(!ex.excludes(Path::new("/srv/www/cachex/y")));
        assert!(ex.excludes(Path::new("/srv/tmp/z")));
        assert!(!ex.excludes(Path::new("/srv/www/logs")));
    }
}
