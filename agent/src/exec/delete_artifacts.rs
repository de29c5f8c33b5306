//! `delete_artifacts`: removes stored artifacts and their manifests, and forgets repository
//! snapshots (one `forget` per repository for all of its snapshots; the data goes at the next
//! prune). An object or snapshot that is already gone counts as removed, so a retried command
//! finishes what an interrupted one started.

use crate::repository::{self, Location};
use crate::storage::{Store, Tools};
use std::collections::BTreeMap;
use std::sync::Arc;
use stowage_shared::artifact::REPOSITORY_DIR;
use stowage_shared::artifact::manifest_path;
use stowage_shared::protocol::{DeleteArtifactsReport, DeleteFailure, StoredObject};
use stowage_shared::storage::StorageConfig;
use tracing::info;

pub async fn delete_artifacts(objects: &[StoredObject], tools: &Tools) -> DeleteArtifactsReport {
    // One open store per target, however many of its objects go.
    let mut stores: BTreeMap<i64, Result<(Store, StorageConfig), String>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut snapshots: BTreeMap<i64, Vec<&StoredObject>> = BTreeMap::new();
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
        if object.snapshot.is_some() {
            snapshots.entry(object.target_id).or_default().push(object);
            continue;
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
    for (target_id, forgotten) in snapshots {
        let outcome = match (&stores[&target_id], forgotten[0].snapshot.as_ref()) {
            (Err(reason), _) => Err(reason.clone()),
            (Ok(_), _) if forgotten.iter().any(|o| o.path != REPOSITORY_DIR) => Err(format!(
                "the repository must be at {REPOSITORY_DIR}/ on the target"
            )),
            (Ok((store, config)), Some(first)) => {
                let at = Location {
                    store: Arc::new(store.clone()),
                    root: REPOSITORY_DIR.to_owned(),
                    password: first.password.clone(),
                };
                let ids: Vec<String> = forgotten
                    .iter()
                    .filter_map(|o| Some(o.snapshot.as_ref()?.id.clone()))
                    .collect();
                repository::forget(&at, &ids)
                    .await
                    .map_err(|e| config.scrub(&e.to_string()))
            }
            (Ok(_), None) => Ok(()),
        };
        for object in forgotten {
            match &outcome {
                Ok(()) => info!(
                    target = target_id,
                    snapshot = object.key(),
                    "forgot a snapshot"
                ),
                Err(error) => failures.push(DeleteFailure {
                    target_id,
                    path: object.key(),
                    error: error.clone(),
                }),
            }
        }
    }
    DeleteArtifactsReport { failures }
}
