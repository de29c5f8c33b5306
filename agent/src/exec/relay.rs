//! `relay`: reads a stored artifact — or a file or folder (as a tar stream) of a repository
//! snapshot — and posts it to the Worker in chunks, for a download waiting there. The Worker
//! holds a few chunks at most; when it says it is busy, the agent waits, so the download's pace
//! sets the agent's.

use super::maintenance::{self, Repo};
use crate::client::Client;
use crate::repository;
use crate::storage::{Store, Tools};
use std::time::{Duration, Instant};
use stowage_shared::ErrorCode;
use stowage_shared::protocol::{CommandError, RELAY_CHUNK, RelayReport, SnapshotRef, StoredObject};
use stowage_shared::storage::StorageConfig;
use tokio::io::AsyncReadExt;

/// How long the agent keeps a chunk the Worker will not take before giving the download up.
const STALL: Duration = Duration::from_secs(120);

fn failed(message: impl Into<String>) -> CommandError {
    CommandError {
        code: ErrorCode::BackupRecordDownloadFailed,
        message: message.into(),
    }
}

pub async fn relay(
    relay_id: i64,
    source: &StoredObject,
    entry: Option<&str>,
    tools: &Tools,
    client: Option<&Client>,
) -> Result<RelayReport, CommandError> {
    let client = client.ok_or_else(|| failed("no server to relay to"))?;
    if let Some(snapshot) = &source.snapshot {
        let entry = entry.ok_or_else(|| failed("name the file or folder of the snapshot"))?;
        return relay_from_snapshot(relay_id, source, snapshot, entry, tools, client).await;
    }
    let config = StorageConfig::parse(source.storage_type, &source.config)
        .map_err(|e| failed(format!("target {}: {e}", source.target_id)))?;
    let store = Store::open(&config, tools)
        .await
        .map_err(|e| failed(config.scrub(&e.to_string())))?;
    let mut reader = store
        .reader(&source.path)
        .await
        .map_err(|e| failed(config.scrub(&e.to_string())))?;
    let (mut seq, mut bytes) = (0u64, 0u64);
    loop {
        let mut chunk = Vec::with_capacity(RELAY_CHUNK);
        while chunk.len() < RELAY_CHUNK {
            let n = (&mut reader)
                .take((RELAY_CHUNK - chunk.len()) as u64)
                .read_to_end(&mut chunk)
                .await
                .map_err(|e| {
                    failed(format!(
                        "reading the backup: {}",
                        config.scrub(&e.to_string())
                    ))
                })?;
            if n == 0 {
                break;
            }
        }
        if chunk.is_empty() && seq > 0 {
            break;
        }
        let len = chunk.len();
        send(client, relay_id, (seq, false), chunk).await?;
        seq += 1;
        bytes += len as u64;
        if len < RELAY_CHUNK {
            break;
        }
    }
    Ok(RelayReport { chunks: seq, bytes })
}

/// A file or folder of a snapshot: rustic_core writes it on a blocking thread into a channel of
/// chunks, which this task posts in order. A failed post drops the channel, which stops the
/// export; a failed export fails the command after the chunks sent, so the download is cut
/// short, never completed with wrong bytes.
async fn relay_from_snapshot(
    relay_id: i64,
    source: &StoredObject,
    snapshot: &SnapshotRef,
    entry: &str,
    tools: &Tools,
    client: &Client,
) -> Result<RelayReport, CommandError> {
    let repo = Repo {
        storage_type: source.storage_type,
        config: &source.config,
        path: &source.path,
        password: &snapshot.password,
    };
    let (at, config) = maintenance::open(&repo, tools, failed).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let export = tokio::spawn({
        let (at, id, entry) = (at.clone(), snapshot.id.clone(), entry.to_owned());
        async move { repository::export(&at, &id, &entry, move |tar| Chunks::new(tx, tar)).await }
    });
    let (mut seq, mut bytes) = (0u64, 0u64);
    while let Some((chunk, tar)) = rx.recv().await {
        let len = chunk.len() as u64;
        if let Err(e) = send(client, relay_id, (seq, tar), chunk).await {
            export.abort();
            return Err(e);
        }
        seq += 1;
        bytes += len;
    }
    match export.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(failed(config.scrub(&e.to_string()))),
        Err(e) => return Err(failed(format!("the export stopped: {e}"))),
    }
    // An empty file still answers the download: one empty chunk.
    if seq == 0 {
        send(client, relay_id, (0, false), Vec::new()).await?;
        seq = 1;
    }
    Ok(RelayReport { chunks: seq, bytes })
}

/// A blocking writer that cuts what it is given into [`RELAY_CHUNK`] pieces for the channel,
/// each marked with whether the download is a tar stream.
struct Chunks {
    tx: tokio::sync::mpsc::Sender<(Vec<u8>, bool)>,
    tar: bool,
    buf: Vec<u8>,
}

impl Chunks {
    fn new(tx: tokio::sync::mpsc::Sender<(Vec<u8>, bool)>, tar: bool) -> Self {
        Self {
            tx,
            tar,
            buf: Vec::with_capacity(RELAY_CHUNK),
        }
    }
    fn pass(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(RELAY_CHUNK));
        self.tx
            .blocking_send((chunk, self.tar))
            .map_err(|_| std::io::Error::other("the download was given up"))
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(RELAY_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == RELAY_CHUNK {
            self.pass()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.pass()
        }
    }
}

async fn send(
    client: &Client,
    relay_id: i64,
    seq: (u64, bool),
    chunk: Vec<u8>,
) -> Result<(), CommandError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match client.post_relay_chunk(relay_id, seq, chunk.clone()).await {
            Ok(_) => return Ok(()),
            // RELAY_BUSY is a 429: transient, like a network hiccup; anything else ends it.
            Err(e) if !e.is_transient() => {
                return Err(failed(format!("the server stopped the download: {e}")));
            }
            Err(e) if started.elapsed() > STALL => {
                return Err(failed(format!(
                    "the download took nothing for {}s ({e}); giving up",
                    STALL.as_secs()
                )));
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
    }
}
