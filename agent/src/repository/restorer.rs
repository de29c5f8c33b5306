//! Writes the contents of a restore's files pack by pack, the way restic's restorer does: every
//! pack holding a needed blob is read once (in a few ranged reads), each blob in it is
//! authenticated, decompressed, checked against its id and written at every place the restored
//! files hold it.
//!
//! rustic_core's own content restore reads with 20 threads (a constant) and queues every blob it
//! has read for writing without a bound (about 300 MiB of memory on two cores whatever the pack
//! size, `make bench`); reading blob by blob through its blob cache held 32 MiB of cache, and
//! on FTP (no sound ranged reads) and rclone remotes (a process per read) a pack is best read
//! whole, once. Here memory is [`READERS`] times one read (at most [`SPAN`] where the storage
//! reads ranges well, a pack where not) plus one decompressed blob each.

use super::RepoError;
use super::backend::StoreBackend;
use crate::report::Counters;
use aes256ctr_poly1305aes::Aes256CtrPoly1305Aes;
use aes256ctr_poly1305aes::aead::AeadInPlace as _;
use rustic_core::repofile::Node;
use rustic_core::{FileType, Id, IndexedFull, ReadBackend as _, Repository};
use sha2::Digest as _;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::SystemTime;

/// Packs read at once.
const READERS: usize = 4;

/// The most bytes one ranged read of a pack asks for (more only for a single larger blob), where
/// the storage reads ranges well; needed blobs further apart than [`GAP`] are read separately.
const SPAN: u32 = 2 << 20;
const GAP: u32 = 256 << 10;

/// A file to restore: its place under the staging directory, and the blobs still to write.
struct Target {
    path: PathBuf,
    mtime: SystemTime,
    left: AtomicUsize,
}

/// A blob as a pack holds it, and where the restored files hold it.
struct Needed {
    id: Id,
    offset: u32,
    length: u32,
    uncompressed: Option<u32>,
    /// (file, offset in the file)
    uses: Vec<(usize, u64)>,
}

/// Writes every regular file among `entries` whose length the snapshot records (a stream's file,
/// recorded with size 0, is left to rustic_core) under `staging`, and gives each the snapshot's
/// modification time once its last byte is written.
pub(super) fn write_contents<S: IndexedFull + Sync>(
    repo: &Repository<S>,
    backend: &StoreBackend,
    entries: &[(PathBuf, Node)],
    staging: &Path,
    counters: &Counters,
) -> Result<(), RepoError> {
    let mut targets = Vec::new();
    let mut packs: Vec<(Id, Vec<Needed>)> = Vec::new();
    let mut at: HashMap<Id, usize> = HashMap::new();
    let mut blobs: HashMap<Id, (usize, usize)> = HashMap::new();
    for (path, node) in entries {
        let Some(mtime) = node.meta.mtime.filter(|_| node.is_file()) else {
            continue;
        };
        if super::file_length(repo, node)? != node.meta.size {
            continue;
        }
        let file = targets.len();
        let mut offset = 0u64;
        let mut uses = 0;
        for id in node.content.iter().flatten() {
            let entry = repo.get_index_entry(id)?;
            let (p, b) = match blobs.entry(**id) {
                Entry::Occupied(seen) => *seen.get(),
                Entry::Vacant(new) => {
                    let p = *at.entry(*entry.pack).or_insert_with(|| {
                        packs.push((*entry.pack, Vec::new()));
                        packs.len() - 1
                    });
                    let loc = entry.location;
                    packs[p].1.push(Needed {
                        id: **id,
                        offset: loc.offset,
                        length: loc.length,
                        uncompressed: loc.uncompressed_length.map(std::num::NonZeroU32::get),
                        uses: Vec::new(),
                    });
                    *new.insert((p, packs[p].1.len() - 1))
                }
            };
            let blob = &mut packs[p].1[b];
            blob.uses.push((file, offset));
            offset += u64::from(blob.uncompressed.unwrap_or(blob.length - OVERHEAD));
            uses += 1;
        }
        let dest = staging.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| failed(&dest, &e))?;
        }
        let created = File::create(&dest).map_err(|e| failed(&dest, &e))?;
        if uses == 0 {
            created
                .set_modified(mtime.into())
                .map_err(|e| failed(&dest, &e))?;
        }
        targets.push(Target {
            path: dest,
            mtime: mtime.into(),
            left: AtomicUsize::new(uses),
        });
    }
    drop((at, blobs));
    for (_, needed) in &mut packs {
        needed.sort_unstable_by_key(|n| n.offset);
    }

    let cipher = super::lock::cipher(&repo.key())?;
    let whole = !backend.reads_ranges_well();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let read_packs = || {
        let unzstd = zstd::bulk::Decompressor::new()
            .map_err(|e| RepoError::Stopped(format!("no zstd decompressor: {e}")))?;
        let mut reader = PackReader {
            backend,
            cipher: &cipher,
            targets: &targets,
            counters,
            plain: Vec::new(),
            unzstd,
            open: None,
        };
        while !stop.load(Ordering::Relaxed) {
            let Some((pack, needed)) = packs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            if let Err(e) = reader.restore_pack(pack, needed, whole) {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS).map(|_| scope.spawn(read_packs)).collect();
        let mut first = Ok(());
        for reader in readers {
            let outcome = reader
                .join()
                .unwrap_or_else(|_| Err(RepoError::Stopped("a restore reader stopped".into())));
            if first.is_ok() {
                first = outcome;
            }
        }
        first
    })
}

/// restic's sealing adds a 16-byte nonce before and a 16-byte tag after a blob.
const OVERHEAD: u32 = 32;

fn failed(path: &Path, e: &std::io::Error) -> RepoError {
    RepoError::Refused(format!("writing {}: {e}", path.display()))
}

struct PackReader<'a> {
    backend: &'a StoreBackend,
    cipher: &'a Aes256CtrPoly1305Aes,
    targets: &'a [Target],
    counters: &'a Counters,
    /// The decompressed blob (kept to reuse its allocation), and the decompressor's context.
    plain: Vec<u8>,
    unzstd: zstd::bulk::Decompressor<'static>,
    /// The file written last, still open: a file's blobs mostly lie together in a pack.
    open: Option<(usize, File)>,
}

impl PackReader<'_> {
    fn restore_pack(&mut self, pack: &Id, needed: &[Needed], whole: bool) -> Result<(), RepoError> {
        let mut rest = needed;
        while let Some(first) = rest.first() {
            // The run of blobs one read fetches.
            let mut end = first.offset + first.length;
            let mut n = 1;
            while let Some(next) = rest.get(n) {
                let next_end = next.offset + next.length;
                if !whole && (next.offset - end > GAP || next_end - first.offset > SPAN) {
                    break;
                }
                end = next_end;
                n += 1;
            }
            let (run, later) = rest.split_at(n);
            rest = later;
            let bytes = self
                .backend
                .read_partial(
                    FileType::Pack,
                    pack,
                    false,
                    first.offset,
                    end - first.offset,
                )
                .map_err(|e| RepoError::Rustic(e.to_string()))?;
            self.counters.add_bytes(bytes.len() as u64);
            let mut bytes = bytes
                .try_into_mut()
                .unwrap_or_else(|shared| bytes::BytesMut::from(&shared[..]));
            for blob in run {
                let at = (blob.offset - first.offset) as usize;
                let sealed = bytes
                    .get_mut(at..at + blob.length as usize)
                    .ok_or_else(|| damaged(pack, blob, "it is cut short"))?;
                self.write_blob(pack, blob, sealed)?;
            }
        }
        Ok(())
    }

    fn write_blob(&mut self, pack: &Id, blob: &Needed, sealed: &mut [u8]) -> Result<(), RepoError> {
        if sealed.len() < OVERHEAD as usize {
            return Err(damaged(pack, blob, "it is cut short"));
        }
        let (nonce, rest) = sealed.split_at_mut(16);
        let (data, tag) = rest.split_at_mut(rest.len() - 16);
        self.cipher
            .decrypt_in_place_detached((&*nonce).into(), b"", data, (&*tag).into())
            .map_err(|_| damaged(pack, blob, "it fails authentication"))?;
        let plain: &[u8] = match blob.uncompressed {
            None => data,
            Some(len) => {
                self.plain.clear();
                self.plain.reserve(len as usize);
                self.unzstd
                    .decompress_to_buffer(data, &mut self.plain)
                    .map_err(|_| damaged(pack, blob, "it does not decompress"))?;
                &self.plain
            }
        };
        if blob
            .uncompressed
            .is_some_and(|len| plain.len() != len as usize)
            || Id::new(sha2::Sha256::digest(plain).into()) != blob.id
        {
            return Err(damaged(pack, blob, "its content does not match its id"));
        }
        for &(file, offset) in &blob.uses {
            let target = &self.targets[file];
            let handle = match &self.open {
                Some((open, handle)) if *open == file => handle,
                _ => {
                    let handle = File::options()
                        .write(true)
                        .open(&target.path)
                        .map_err(|e| failed(&target.path, &e))?;
                    &self.open.insert((file, handle)).1
                }
            };
            handle
                .write_all_at(plain, offset)
                .map_err(|e| failed(&target.path, &e))?;
            self.counters.add_source(plain.len() as u64);
            if target.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                handle
                    .set_modified(target.mtime)
                    .map_err(|e| failed(&target.path, &e))?;
            }
        }
        Ok(())
    }
}

fn damaged(pack: &Id, blob: &Needed, why: &str) -> RepoError {
    RepoError::Rustic(format!(
        "blob {} in pack {} is damaged: {why}",
        blob.id.to_hex().as_str(),
        pack.to_hex().as_str()
    ))
}
