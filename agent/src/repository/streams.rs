//! Streams — database dumps, SQLite copies — stored as files of a snapshot, with no copy on the
//! node's disk. A stream is produced once and written into every target's repository at the same
//! time: one thread per repository runs rustic_core's archiver over a [`StreamSource`] whose files
//! read from bounded channels, and the producer ([`StreamWriter`]) hands each piece to all of
//! them. A slow target slows the producer (the channels are bounded); a target that fails drops
//! out and the others go on.
//!
//! rustic_core's `stdin_command` is not used: it reads its pipe a few bytes at a time (a 392 MB
//! `pg_dump` took 82 s through it against 3.7 s through a buffered source), and it has no way to
//! hold several files. Every stream is stored without a parent (`ParentOptions::force`): a stream
//! has no size or time that could tell an unchanged one apart, and rustic would otherwise reuse
//! the previous snapshot's content for it.
//!
//! A file is complete only when the producer says so ([`Piece::End`]); a producer that fails or
//! stops early makes every reader fail, never end, so a cut dump can never be stored as a whole
//! one.

use super::{
    Faults, Labels, Location, RepoError, Snapshotted, backend, open_or_init, run_blocking,
    unopened_hidden,
};
use rustic_core::repofile::{Metadata, Node, NodeType, SnapshotFile};
use rustic_core::{BackupOptions, ParentOptions, ReadSource, ReadSourceEntry, RusticResult};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Pieces waiting for a slow repository, per file (each piece is at most the producer's write).
const QUEUE: usize = 8;

/// What travels from the producer to one repository's reader of one file.
#[derive(Debug)]
enum Piece {
    Data(Arc<[u8]>),
    /// The file is complete.
    End,
    /// The producer failed: the file must not be stored.
    Failed(String),
}

/// One file of the snapshot as a repository thread reads it.
struct Incoming {
    rx: Receiver<Piece>,
    current: Arc<[u8]>,
    at: usize,
    ended: bool,
    path: PathBuf,
    faults: Faults,
}

impl Read for Incoming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at < self.current.len() {
                let n = buf.len().min(self.current.len() - self.at);
                buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            let why = match self.rx.recv() {
                Ok(Piece::Data(data)) => {
                    self.current = data;
                    self.at = 0;
                    continue;
                }
                Ok(Piece::End) => {
                    self.ended = true;
                    continue;
                }
                Ok(Piece::Failed(why)) => why,
                Err(_) => "the stream stopped before its end".to_owned(),
            };
            // rustic_core leaves a file that fails to read out of the snapshot and carries on;
            // the fault is what tells the run that the snapshot is not whole.
            self.faults.add(format!("{}: {why}", self.path.display()));
            return Err(io::Error::other(why));
        }
    }
}

/// The files of one repository's snapshot, each read from its channel.
struct StreamSource {
    files: Mutex<Vec<(PathBuf, Receiver<Piece>)>>,
    faults: Faults,
}

impl ReadSource for StreamSource {
    type Open = Incoming;
    type Iter = std::vec::IntoIter<RusticResult<ReadSourceEntry<Incoming>>>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        let files = std::mem::take(&mut *self.files.lock().unwrap_or_else(|e| e.into_inner()));
        let mtime = rustic_core::jiff::Timestamp::now();
        files
            .into_iter()
            .map(|(path, rx)| {
                let name = path.file_name().unwrap_or_default().to_owned();
                let meta = Metadata {
                    mode: Some(0o600),
                    mtime: Some(mtime),
                    ..Metadata::default()
                };
                Ok(ReadSourceEntry {
                    node: Node::new_node(&name, NodeType::File, meta),
                    open: Some(Incoming {
                        rx,
                        current: Arc::from(Vec::new()),
                        at: 0,
                        ended: false,
                        path: path.clone(),
                        faults: self.faults.clone(),
                    }),
                    path,
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
    }
}

/// Where a producer writes the files of a stream snapshot, one after another, in the order of
/// the paths given to [`backup_streams`]: [`StreamWriter::next_file`] starts each one.
#[derive(Debug)]
pub struct StreamWriter {
    /// Per repository, per file: the sending end (taken when the file ends or the repository
    /// dropped out).
    senders: Vec<Vec<Option<SyncSender<Piece>>>>,
    files: usize,
    current: Option<usize>,
}

impl crate::pipeline::Files for StreamWriter {
    /// Ends the file being written (if any) and starts the next one.
    fn next_file(&mut self) -> io::Result<()> {
        self.end_current(|| Piece::End);
        let next = self.current.map_or(0, |i| i + 1);
        if next >= self.files {
            return Err(io::Error::other(
                "the producer wrote more files than it announced",
            ));
        }
        self.current = Some(next);
        Ok(())
    }
}

impl StreamWriter {
    fn end_current(&mut self, piece: impl Fn() -> Piece) {
        if let Some(i) = self.current {
            for files in &mut self.senders {
                if let Some(tx) = files[i].take() {
                    let _ = tx.send(piece());
                }
            }
        }
    }

    /// Ends the last file; a file never started stays without an end (its readers fail).
    fn finish(&mut self) {
        self.end_current(|| Piece::End);
        self.current = None;
    }

    /// Makes every file not yet complete fail with `why`.
    fn fail(&mut self, why: &str) {
        for files in &mut self.senders {
            for tx in files.iter_mut().filter_map(Option::take) {
                let _ = tx.send(Piece::Failed(why.to_owned()));
            }
        }
    }
}

impl Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(i) = self.current else {
            return Err(io::Error::other("no file was started"));
        };
        let piece: Arc<[u8]> = Arc::from(buf);
        let mut live = 0;
        for files in &mut self.senders {
            if let Some(tx) = &files[i] {
                if tx.send(Piece::Data(Arc::clone(&piece))).is_ok() {
                    live += 1;
                } else {
                    // That repository's snapshot failed and stopped reading: it drops out.
                    files.iter_mut().for_each(|tx| *tx = None);
                }
            }
        }
        if live == 0 {
            return Err(io::Error::other("no repository is taking the stream"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Stores the files at `paths` (absolute, sorted as a snapshot's tree is) that `produce` writes,
/// as one snapshot in each repository of `targets`. Returns what the producer returned, and per
/// target the snapshot or why there is none. The producer's bytes are counted by the producer.
pub async fn backup_streams<T: Send + 'static>(
    targets: Vec<Location>,
    paths: Vec<PathBuf>,
    produce: impl FnOnce(&mut StreamWriter) -> io::Result<T> + Send + 'static,
    labels: &Labels,
) -> (Result<T, RepoError>, Vec<Result<Snapshotted, RepoError>>) {
    let count = targets.len();
    if paths.windows(2).any(|w| w[0] >= w[1]) || paths.iter().any(|p| !p.is_absolute()) {
        let why = || RepoError::Refused("stream paths must be absolute and sorted".to_owned());
        return (Err(why()), (0..count).map(|_| Err(why())).collect());
    }
    let labels = labels.clone();
    let backends: Vec<_> = targets.iter().map(backend).collect();
    let outcome = run_blocking(move || {
        let mut senders = Vec::with_capacity(targets.len());
        let mut sources = Vec::with_capacity(targets.len());
        for _ in &targets {
            let (txs, rxs): (Vec<_>, Vec<_>) = paths
                .iter()
                .map(|_| {
                    let (tx, rx) = sync_channel(QUEUE);
                    (Some(tx), rx)
                })
                .unzip();
            senders.push(txs);
            sources.push(StreamSource {
                files: Mutex::new(paths.iter().cloned().zip(rxs).collect()),
                faults: Faults::default(),
            });
        }
        let mut writer = StreamWriter {
            senders,
            files: paths.len(),
            current: None,
        };
        let (produced, snapshots) = std::thread::scope(|s| {
            let threads: Vec<_> = targets
                .iter()
                .zip(&backends)
                .zip(sources)
                .map(|((at, be), source)| {
                    let (labels, paths) = (&labels, &paths);
                    s.spawn(move || {
                        let snapshot = store_streams(at, be, &source, labels, paths);
                        (snapshot, source.faults)
                    })
                })
                .collect();
            let produced = produce(&mut writer);
            match &produced {
                Ok(_) => writer.finish(),
                Err(e) => writer.fail(&format!("the stream failed: {e}")),
            }
            // Whatever the producer left unsent fails now, so no thread waits on it.
            writer.fail("the stream stopped before its end");
            let snapshots: Vec<_> = threads
                .into_iter()
                .map(|t| {
                    t.join().unwrap_or_else(|_| {
                        (
                            Err(RepoError::Stopped(
                                "the repository thread panicked".to_owned(),
                            )),
                            Faults::default(),
                        )
                    })
                })
                .collect();
            (produced, snapshots)
        });
        let mut results = Vec::with_capacity(snapshots.len());
        for ((snapshot, faults), (at, be)) in
            snapshots.into_iter().zip(targets.iter().zip(&backends))
        {
            results.push(super::whole_or_discarded(at, be, snapshot, &faults));
        }
        Ok((
            produced.map_err(|e| RepoError::Refused(e.to_string())),
            results,
        ))
    })
    .await;
    match outcome {
        Ok(both) => both,
        Err(e) => {
            let why = e.to_string();
            (
                Err(RepoError::Stopped(why.clone())),
                (0..count)
                    .map(|_| Err(RepoError::Stopped(why.clone())))
                    .collect(),
            )
        }
    }
}

/// One repository's snapshot of the streams (on its own thread).
fn store_streams(
    at: &Location,
    be: &Arc<backend::StoreBackend>,
    source: &StreamSource,
    labels: &Labels,
    paths: &[PathBuf],
) -> Result<SnapshotFile, RepoError> {
    let repo = open_or_init(at, be, unopened_hidden(Arc::clone(be))?)?;
    let _lock = super::lock::acquire(be, &repo.key(), false)?;
    let repo = repo.to_indexed_ids()?;
    let snap = SnapshotFile::from_options(&labels.snapshot_options()?)?;
    let opts = BackupOptions::default()
        .no_scan(true)
        .parent_opts(ParentOptions::default().force(true));
    let snap = repo.archive(&opts, source, snap, paths)?;
    be.flush()?;
    Ok(snap)
}
