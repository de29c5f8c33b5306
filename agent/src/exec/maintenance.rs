//! `prune_repository`, `verify_repository` and `list_snapshot`: work on a target's repository. A prune
//! removes the data no snapshot uses any more, under an exclusive restic lock (refused while
//! anyone else holds a lock); a check reads the repository back under a shared one.

use crate::repository::{self, Location};
use crate::storage::{Store, Tools};
use std::sync::Arc;
use stowage_shared::ErrorCode;
use stowage_shared::SecretString;
use stowage_shared::artifact::REPOSITORY_DIR;
use stowage_shared::protocol::{CommandError, PruneReport, VerifyReport};
use stowage_shared::storage::{StorageConfig, StorageType};

/// Where a maintenance command's repository is.
#[derive(Debug)]
pub struct Repo<'a> {
    pub storage_type: StorageType,
    pub config: &'a serde_json::Value,
    pub path: &'a str,
    pub password: &'a SecretString,
}

/// Opens the repository a command names, on its target.
pub(crate) async fn open(
    repo: &Repo<'_>,
    tools: &Tools,
    failed: impl Fn(String) -> CommandError,
) -> Result<(Location, StorageConfig), CommandError> {
    let config = StorageConfig::parse(repo.storage_type, repo.config)
        .map_err(|e| failed(format!("the target's config: {e}")))?;
    if repo.path != REPOSITORY_DIR {
        return Err(failed(format!(
            "the repository must be at {REPOSITORY_DIR}/ on the target, not {:?}",
            repo.path
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
        password: repo.password.clone(),
    };
    Ok((at, config))
}

pub async fn prune(repo: &Repo<'_>, tools: &Tools) -> Result<PruneReport, CommandError> {
    let failed = |message: String| CommandError {
        code: ErrorCode::StorageRepositoryPruneFailed,
        message,
    };
    let (at, config) = open(repo, tools, failed).await?;
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

pub async fn verify(
    repo: &Repo<'_>,
    snapshot: Option<&str>,
    read_data_percent: u8,
    tools: &Tools,
) -> Result<VerifyReport, CommandError> {
    let failed = |message: String| CommandError {
        code: ErrorCode::BackupRunFailed,
        message,
    };
    let (at, config) = open(repo, tools, failed).await?;
    let checked = repository::check(&at, snapshot, read_data_percent.min(100))
        .await
        .map_err(|e| failed(config.scrub(&e.to_string())))?;
    let scrub = |list: Vec<String>| list.iter().map(|t| config.scrub(t)).collect();
    Ok(VerifyReport {
        snapshots: checked.snapshots,
        errors: scrub(checked.errors),
        warnings: scrub(checked.warnings),
        damaged_packs: checked.damaged_packs,
        affected_snapshots: checked.affected,
    })
}

/// One directory of a stored snapshot: a path the snapshot does not hold is `NODE_FS_NOT_FOUND`,
/// a repository or target that cannot be read `NODE_FS_READ_ERROR`.
pub async fn list_snapshot(
    source: &stowage_shared::protocol::StoredObject,
    path: &str,
    tools: &Tools,
) -> Result<stowage_shared::api::FsListing, CommandError> {
    let error = |code: ErrorCode| move |message: String| CommandError { code, message };
    let Some(snapshot) = &source.snapshot else {
        return Err(error(ErrorCode::NodeFsNotFound)(
            "an archive is one file, not a snapshot to browse".to_owned(),
        ));
    };
    let repo = Repo {
        storage_type: source.storage_type,
        config: &source.config,
        path: &source.path,
        password: &snapshot.password,
    };
    let (at, config) = open(&repo, tools, error(ErrorCode::NodeFsReadError)).await?;
    repository::list_dir(
        &at,
        &snapshot.id,
        path,
        stowage_shared::api::FS_LIST_MAX_ENTRIES,
    )
    .await
    .map_err(|e| {
        let code = match e {
            repository::RepoError::Refused(_) => ErrorCode::NodeFsNotFound,
            _ => ErrorCode::NodeFsReadError,
        };
        error(code)(config.scrub(&e.to_string()))
    })
}
