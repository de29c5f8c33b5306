//! rustic_core's backend traits over the agent's own storage layer: a restic repository on any
//! target type, with that layer's retries and partial-write rules (a local file appears only
//! when whole, an S3 upload that fails is aborted, ...).
//!
//! rustic_core is blocking and calls these methods from its own threads; they run the async
//! storage calls on the agent's runtime through its handle. Pack uploads run in the background,
//! a few at a time (rustic_core writes one pack at a time per blob type): every other write — an
//! index, a snapshot, the config, a key — and every removal first waits for the packs in flight,
//! and fails if any of them failed, so no index or snapshot ever names a pack that did not land.
//! The restic layout: `config`, `keys/<id>`, `snapshots/<id>`, `index/<id>`,
//! `data/<first two hex digits>/<id>`, all under the repository's directory on the target.

use crate::storage::Store;
use bytes::Bytes;
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Pack uploads in flight at once per repository: a few, to hide a remote store's latency; two
/// on a local disk, where a write is a copy into the page cache and each pack in flight is up
/// to 8 MiB more memory.
const UPLOADS_IN_FLIGHT: usize = 4;
const LOCAL_UPLOADS_IN_FLIGHT: usize = 2;

/// Packs kept whole in memory, the last ones read, where the storage reads ranges poorly (FTP,
/// rclone remotes): reading a file's blobs one by one would read their pack once per blob.
const PACKS_KEPT: usize = 2;

#[derive(Debug)]
pub struct StoreBackend {
    store: Arc<Store>,
    /// The repository's directory on the target, without slashes at either end.
    root: String,
    handle: Handle,
    uploads: Arc<Semaphore>,
    in_flight: Mutex<Vec<JoinHandle<Result<(), String>>>>,
    /// The last packs read whole, newest first (see [`PACKS_KEPT`]).
    packs: Mutex<std::collections::VecDeque<(Id, Bytes)>>,
}

fn backend_error(what: String, e: impl std::fmt::Display) -> Box<RusticError> {
    // The guidance is a template (`{name}` is a placeholder): the text goes in as the source.
    RusticError::with_source(
        ErrorKind::Backend,
        "The storage target refused an operation on the repository.",
        format!("{what}: {e}"),
    )
}

impl StoreBackend {
    pub fn new(store: Arc<Store>, root: &str, handle: Handle) -> Self {
        let uploads = if store.is_local() {
            LOCAL_UPLOADS_IN_FLIGHT
        } else {
            UPLOADS_IN_FLIGHT
        };
        Self {
            store,
            root: root.trim_matches('/').to_owned(),
            handle,
            uploads: Arc::new(Semaphore::new(uploads)),
            in_flight: Mutex::new(Vec::new()),
            packs: Mutex::default(),
        }
    }

    fn dir(&self, tpe: FileType) -> String {
        format!("{}/{}", self.root, tpe.dirname())
    }

    fn path(&self, tpe: FileType, id: &Id) -> String {
        let hex = id.to_hex();
        match tpe {
            FileType::Config => format!("{}/config", self.root),
            FileType::Pack => format!("{}/data/{}/{}", self.root, &hex[..2], &*hex),
            _ => format!("{}/{}", self.dir(tpe), &*hex),
        }
    }

    /// `rel` (a path inside the repository) as a path on the target.
    pub fn raw_path(&self, rel: &str) -> String {
        format!("{}/{}", self.root, rel.trim_matches('/'))
    }

    /// Files the repository has under `rel` that rustic_core does not know (restic's `locks/`),
    /// as paths on the target.
    pub fn list_raw(&self, rel: &str) -> Result<Vec<String>, super::RepoError> {
        let dir = self.raw_path(rel);
        self.handle
            .block_on(self.store.list_sized(&dir, false))
            .map(|listed| listed.into_iter().map(|(path, _)| path).collect())
            .map_err(|e| super::RepoError::Rustic(format!("listing {dir}: {e}")))
    }

    pub fn read_raw(&self, path: &str) -> Result<Vec<u8>, super::RepoError> {
        self.handle
            .block_on(self.store.read(path))
            .map_err(|e| super::RepoError::Rustic(format!("reading {path}: {e}")))
    }

    pub fn write_raw(&self, path: &str, bytes: Vec<u8>) -> Result<(), super::RepoError> {
        self.handle
            .block_on(self.store.write(path, &bytes))
            .map_err(|e| super::RepoError::Rustic(format!("writing {path}: {e}")))
    }

    pub fn delete_raw(&self, path: &str) -> Result<(), super::RepoError> {
        self.handle
            .block_on(self.store.delete(path))
            .map_err(|e| super::RepoError::Rustic(format!("removing {path}: {e}")))
    }

    /// See [`Store::reads_ranges_well`].
    pub fn reads_ranges_well(&self) -> bool {
        self.store.reads_ranges_well()
    }

    /// Pack `id` whole, from the packs kept or read now (and kept).
    fn whole_pack(&self, id: &Id) -> RusticResult<Bytes> {
        let kept = || {
            self.packs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((_, pack)) = kept().iter().find(|(kept, _)| kept == id) {
            return Ok(pack.clone());
        }
        let pack = self.read_full(FileType::Pack, id)?;
        let mut packs = kept();
        packs.push_front((*id, pack.clone()));
        packs.truncate(PACKS_KEPT);
        Ok(pack)
    }

    /// The bytes of every pack the repository holds.
    pub fn pack_bytes(&self) -> Result<u64, super::RepoError> {
        let dir = self.dir(FileType::Pack);
        self.handle
            .block_on(self.store.list_sized(&dir, true))
            .map(|listed| listed.iter().map(|(_, size)| size).sum())
            .map_err(|e| super::RepoError::Rustic(format!("listing {dir}: {e}")))
    }

    /// Waits for every pack upload in flight; the first failure among them is the answer.
    pub fn flush(&self) -> RusticResult<()> {
        let pending: Vec<_> = std::mem::take(
            &mut *self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut failure = None;
        for upload in pending {
            let outcome = self
                .handle
                .block_on(upload)
                .unwrap_or_else(|e| Err(format!("a pack upload stopped: {e}")));
            if let Err(why) = outcome {
                failure.get_or_insert(why);
            }
        }
        match failure {
            None => Ok(()),
            Some(why) => Err(backend_error("uploading a pack".to_owned(), why)),
        }
    }
}

impl ReadBackend for StoreBackend {
    fn location(&self) -> String {
        format!("stowage:{}", self.root)
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            let path = self.path(tpe, &Id::default());
            let listed = self
                .handle
                .block_on(self.store.list_sized(&self.root, false))
                .map_err(|e| backend_error(format!("listing {}", self.root), e))?;
            return Ok(listed
                .into_iter()
                .filter(|(p, _)| *p == path)
                .map(|(_, size)| (Id::default(), u32::try_from(size).unwrap_or(u32::MAX)))
                .collect());
        }
        let dir = self.dir(tpe);
        let listed = self
            .handle
            .block_on(self.store.list_sized(&dir, tpe == FileType::Pack))
            .map_err(|e| backend_error(format!("listing {dir}"), e))?;
        Ok(listed
            .into_iter()
            .filter_map(|(path, size)| {
                // Anything that is not named by an id (a stray file) is not the repository's.
                let name = path.rsplit('/').next()?;
                let id = name.parse::<Id>().ok()?;
                Some((id, u32::try_from(size).unwrap_or(u32::MAX)))
            })
            .collect())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        self.handle
            .block_on(self.store.read(&path))
            .map(Bytes::from)
            .map_err(|e| backend_error(format!("reading {path}"), e))
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        let bytes = if tpe == FileType::Pack && !self.store.reads_ranges_well() {
            let pack = self.whole_pack(id)?;
            let start = (offset as usize).min(pack.len());
            pack.slice(start..(start + length as usize).min(pack.len()))
        } else {
            self.handle
                .block_on(
                    self.store
                        .read_range(&path, u64::from(offset), u64::from(length)),
                )
                .map_err(|e| backend_error(format!("reading {path}"), e))?
        };
        if bytes.len() != length as usize {
            return Err(backend_error(
                format!("reading {path}"),
                format!(
                    "{} bytes at {offset} were asked for and {} came back (the file is short)",
                    length,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.path(tpe, id)
    }
}

impl WriteBackend for StoreBackend {
    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let path = self.path(tpe, id);
        let body: Vec<u8> = content.into_vec().concat();
        if tpe == FileType::Pack {
            let permit = self
                .handle
                .block_on(Arc::clone(&self.uploads).acquire_owned())
                .map_err(|e| backend_error(format!("writing {path}"), e))?;
            let store = Arc::clone(&self.store);
            let upload = self.handle.spawn(async move {
                let outcome = store
                    .write(&path, &body)
                    .await
                    .map_err(|e| format!("writing {path}: {e}"));
                drop(permit);
                outcome
            });
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Keep the list short: uploads already done are settled on the next flush anyway,
            // but a long backup would otherwise hold every finished handle until then.
            let (done, running): (Vec<_>, Vec<_>) =
                in_flight.drain(..).partition(JoinHandle::is_finished);
            *in_flight = running;
            drop(in_flight);
            for finished in done {
                if let Err(why) = self
                    .handle
                    .block_on(finished)
                    .unwrap_or_else(|e| Err(format!("a pack upload stopped: {e}")))
                {
                    return Err(backend_error("uploading a pack".to_owned(), why));
                }
            }
            self.in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(upload);
            return Ok(());
        }
        self.flush()?;
        self.handle
            .block_on(self.store.write(&path, &body))
            .map_err(|e| backend_error(format!("writing {path}"), e))
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        self.flush()?;
        if tpe == FileType::Pack {
            self.packs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|(kept, _)| kept != id);
        }
        let path = self.path(tpe, id);
        self.handle
            .block_on(self.store.delete(&path))
            .map_err(|e| backend_error(format!("removing {path}"), e))
    }
}
