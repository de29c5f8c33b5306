//! `relay`: reads a stored artifact and posts it to the Worker in chunks, for a download waiting
//! there. The Worker holds a few chunks at most; when it says it is busy, the agent waits, so the
//! download's pace sets the agent's.

use crate::client::Client;
use crate::storage::{Store, Tools};
use std::time::{Duration, Instant};
use stowage_shared::ErrorCode;
use stowage_shared::protocol::{CommandError, RELAY_CHUNK, RelayReport, StoredObject};
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
    tools: &Tools,
    client: Option<&Client>,
) -> Result<RelayReport, CommandError> {
    let client = client.ok_or_else(|| failed("no server to relay to"))?;
    if source.snapshot.is_some() {
        return Err(failed(
            "this agent cannot relay a repository snapshot; restore it, or use restic",
        ));
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
        send(client, relay_id, seq, chunk).await?;
        seq += 1;
        bytes += len as u64;
        if len < RELAY_CHUNK {
            break;
        }
    }
    Ok(RelayReport { chunks: seq, bytes })
}

async fn send(
    client: &Client,
    relay_id: i64,
    seq: u64,
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
