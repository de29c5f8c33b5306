//! `storage_test`: prove a storage target works end to end — write a probe object, stat it, read it
//! back, list it and delete it — and report the backend's own words when it does not.

use crate::storage::{Store, Tools};
use serde_json::Value;
use std::time::Instant;
use stowage_shared::ErrorCode;
use stowage_shared::protocol::CommandError;
use stowage_shared::storage::{StorageConfig, StorageType};

fn failed(message: impl Into<String>) -> CommandError {
    CommandError {
        code: ErrorCode::StorageTargetTestFailed,
        message: message.into(),
    }
}

/// Returns the probe's round-trip time in milliseconds.
pub async fn storage_test(
    kind: StorageType,
    config: &Value,
    tools: &Tools,
) -> Result<u64, CommandError> {
    let config = StorageConfig::parse(kind, config).map_err(|e| CommandError {
        code: ErrorCode::StorageTargetInvalidConfig,
        message: e.to_string(),
    })?;
    probe(&config, tools).await.map_err(|e| CommandError {
        message: config.scrub(&e.message),
        ..e
    })
}

async fn probe(config: &StorageConfig, tools: &Tools) -> Result<u64, CommandError> {
    let started = Instant::now();
    let store = Store::open(config, tools)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let probe = format!(
        ".stowage-probe-{}",
        std::process::id() as u64 * 1_000_003 + started.elapsed().as_nanos() as u64
    );
    let body = format!("stowage storage test {probe}").into_bytes();
    store
        .write(&probe, &body)
        .await
        .map_err(|e| failed(format!("write failed: {e}")))?;
    let outcome = async {
        let size = store
            .stat(&probe)
            .await
            .map_err(|e| failed(format!("stat failed: {e}")))?;
        if size != body.len() as u64 {
            return Err(failed(format!(
                "stat reported {size} bytes for a {}-byte probe",
                body.len()
            )));
        }
        let back = store
            .read(&probe)
            .await
            .map_err(|e| failed(format!("read failed: {e}")))?;
        if back != body {
            return Err(failed("the probe read back differs from what was written"));
        }
        let listed = store
            .list("")
            .await
            .map_err(|e| failed(format!("list failed: {e}")))?;
        if !listed.iter().any(|p| p.trim_start_matches('/') == probe) {
            return Err(failed(
                "the probe was written but is missing from the listing",
            ));
        }
        Ok(())
    }
    .await;
    // Clean up even when a later step failed.
    let deleted = store.delete(&probe).await;
    outcome?;
    deleted.map_err(|e| failed(format!("delete failed: {e}")))?;
    Ok(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX))
}
