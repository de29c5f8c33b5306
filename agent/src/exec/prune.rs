//! `prune_repository`: removes the data no snapshot of a target's repository uses any more,
//! under an exclusive restic lock (refused while anyone else holds a lock).

use crate::repository::{self, Location};
use crate::storage::{Store, Tools};
use std::sync::Arc;
use stowage_shared::ErrorCode;
use stowage_shared::SecretString;
use stowage_shared::artifact::REPOSITORY_DIR;
use stowage_shared::protocol::{CommandError, PruneReport};
use stowage_shared::storage::{StorageConfig, StorageType};

fn failed(message: String) -> CommandError {
    CommandError {
        code: ErrorCode::StorageRepositoryPruneFailed,
        message,
    }
}

pub async fn prune(
    storage_type: StorageType,
    config: &serde_json::Value,
    path: &str,
    password: &SecretString,
    tools: &Tools,
) -> Result<PruneReport, CommandError> {
    let config = StorageConfig::parse(storage_type, config)
        .map_err(|e| failed(format!("the target's config: {e}")))?;
    if path != REPOSITORY_DIR {
        return Err(failed(format!(
            "the repository must be at {REPOSITORY_DIR}/ on the target, not {path:?}"
        )));
    }
    let store = Store::open(&config, tools).await.map_err(|e| {
        failed(format!(
            "opening the target: {}",
            config.scrub(&e.to_string())
        ))
    })?;
    let at = Location {
        store: Arc::new(store),
        root: REPOSITORY_DIR.to_owned(),
        password: password.clone(),
    };
    let pruned = repository::prune(&at)
        .await
        .map_err(|e| failed(config.scrub(&e.to_string())))?;
    tracing::info!(
        before = pruned.bytes_before,
        after = pruned.bytes_after,
        snapshots = pruned.snapshots,
        "pruned a repository"
    );
    Ok(PruneReport {
        bytes_before: pruned.bytes_before,
        bytes_after: pruned.bytes_after,
        snapshots: pruned.snapshots,
    })
}
