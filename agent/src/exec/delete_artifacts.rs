//! `delete_artifacts`: removes stored artifacts and their manifests. An object that is already
//! gone counts as removed, so a retried command finishes what an interrupted one started.

use crate::storage::{Store, Tools};
use std::collections::BTreeMap;
use stowage_shared::artifact::manifest_path;
use stowage_shared::protocol::{DeleteArtifactsReport, DeleteFailure, StoredObject};
use stowage_shared::storage::StorageConfig;
use tracing::info;

pub async fn delete_artifacts(objects: &[StoredObject], tools: &Tools) -> DeleteArtifactsReport {
    // One open store per target, however many of its objects go.
    let mut stores: BTreeMap<i64, Result<(Store, StorageConfig), String>> = BTreeMap::new();
    let mut failures = Vec::new();
    for object in objects {
        if let std::collections::btree_map::Entry::Vacant(slot) = stores.entry(object.target_id) {
            let opened = match StorageConfig::parse(object.storage_type, &object.config) {
                Ok(config) => Store::open(&config, tools)
                    .await
                    .map(|store| (store, config.clone()))
                    .map_err(|e| config.scrub(&e.to_string())),
                Err(e) => Err(e.to_string()),
            };
            slot.insert(opened);
        }
        let outcome = match &stores[&object.target_id] {
            Err(reason) => Err(reason.clone()),
            Ok((store, config)) => {
                // The manifest last: while it exists, the target still describes the artifact.
                match store.delete(&object.path).await {
                    Ok(()) => store
                        .delete(&manifest_path(&object.path))
                        .await
                        .map_err(|e| config.scrub(&e.to_string())),
                    Err(e) => Err(config.scrub(&e.to_string())),
                }
            }
        };
        match outcome {
            Ok(()) => info!(
                target = object.target_id,
                path = object.path,
                "removed a stored backup"
            ),
            Err(error) => failures.push(DeleteFailure {
                target_id: object.target_id,
                path: object.path.clone(),
                error,
            }),
        }
    }
    DeleteArtifactsReport { failures }
}
