//! `storage_usage`: what a storage target holds, and the space left where the backend can tell.

use crate::storage::{Store, Tools};
use serde_json::Value;
use stowage_shared::ErrorCode;
use stowage_shared::api::MeasuredUsage;
use stowage_shared::protocol::CommandError;
use stowage_shared::storage::{StorageConfig, StorageType};

pub async fn storage_usage(
    kind: StorageType,
    config: &Value,
    tools: &Tools,
) -> Result<MeasuredUsage, CommandError> {
    let config = StorageConfig::parse(kind, config).map_err(|e| CommandError {
        code: ErrorCode::StorageTargetInvalidConfig,
        message: e.to_string(),
    })?;
    let failed = |e: crate::storage::StorageError| CommandError {
        code: ErrorCode::StorageTargetTestFailed,
        message: config.scrub(&format!("usage failed: {e}")),
    };
    let store = Store::open(&config, tools).await.map_err(failed)?;
    store.usage().await.map_err(failed)
}
