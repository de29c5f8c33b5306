//! Storage targets at rest: their configs are sealed to their identity; opening, inserting and
//! rewriting them happens here for every handler that needs a target.

use crate::error::ApiError;
use crate::secrets::Identity;
use crate::secrets::Sealer;
use crate::store::storage_targets::{self as targets, Fields, TargetRow};
use serde_json::Value;
use stowage_shared::SecretString;
use stowage_shared::api::{RepositoryState, StorageTargetDetail, StorageTargetSummary};
use stowage_shared::storage::StorageConfig;
use stowage_shared::time::Timestamp;
use stowage_shared::{ErrorCode, time};
use worker::D1Database;

/// Opens a stored config (the agent path will use this too).
pub fn open_config(sealer: &Sealer, row: &TargetRow) -> Result<StorageConfig, ApiError> {
    let kind = row.kind;
    let plain = sealer.open(Identity::StorageTarget(&row.uid), &row.config_sealed)?;
    let json: Value =
        serde_json::from_slice(&plain).map_err(|e| ApiError::internal("stored config", e))?;
    StorageConfig::parse(kind, &json).map_err(|e| ApiError::internal("stored config", e))
}

/// The target's repository password: the stored one, or (at the target's first repository run)
/// a new random one, 256 bits as 64 hex digits, sealed and stored once.
pub async fn repository_password(
    db: &D1Database,
    sealer: &Sealer,
    row: &TargetRow,
) -> Result<SecretString, ApiError> {
    let open = |sealed: &str| -> Result<SecretString, ApiError> {
        let plain = sealer.open(Identity::RepositoryPassword(&row.uid), sealed)?;
        String::from_utf8(plain)
            .map(SecretString::new)
            .map_err(|e| ApiError::internal("stored repository password", e))
    };
    if let Some(sealed) = &row.repo_password_sealed {
        return open(sealed);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("random password", e))?;
    let sealed = sealer.seal(
        Identity::RepositoryPassword(&row.uid),
        hex::encode(bytes).as_bytes(),
    )?;
    targets::set_repo_password_once(db, row.id, &sealed).await?;
    // Whichever first run stored its password first, every run uses that one.
    let stored = targets::get(db, row.id)
        .await?
        .and_then(|r| r.repo_password_sealed)
        .ok_or_else(|| ApiError::internal("repository password", "the target is gone"))?;
    open(&stored)
}

pub fn detail(sealer: &Sealer, row: &TargetRow) -> Result<StorageTargetDetail, ApiError> {
    let (config, masked_fields) = open_config(sealer, row)?.masked();
    Ok(StorageTargetDetail {
        summary: summary(row),
        config,
        masked_fields,
    })
}

pub fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::StorageTargetNotFound,
        format!("storage target {id} does not exist"),
    )
}

pub fn name_exists(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::StorageTargetNameExists,
        format!("a storage target named {name:?} already exists"),
    )
}

pub async fn find(db: &D1Database, id: i64) -> Result<TargetRow, ApiError> {
    targets::get(db, id).await?.ok_or_else(|| not_found(id))
}

/// A target's fields besides its config.
pub struct Plain<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub enabled: bool,
    pub quota_bytes: i64,
}

/// Seals `config` for a new target and inserts it; its id, or `STORAGE_TARGET_NAME_EXISTS`.
pub async fn insert(
    db: &D1Database,
    sealer: &Sealer,
    now: Timestamp,
    plain: Plain<'_>,
    config: &StorageConfig,
) -> Result<i64, ApiError> {
    let uid = crate::secrets::random_id()?;
    let sealed = seal_config(sealer, &uid, config)?;
    let fields = plain.with(&sealed);
    targets::create(
        db,
        &uid,
        config.kind().as_str(),
        &fields,
        &time::format(now),
    )
    .await?
    .ok_or_else(|| name_exists(plain.name))
}

/// Seals `config` for the existing target `row` and writes it with `plain` (the config version
/// grows when the config changed).
pub async fn rewrite(
    db: &D1Database,
    sealer: &Sealer,
    now: Timestamp,
    row: &TargetRow,
    plain: Plain<'_>,
    config: &StorageConfig,
) -> Result<(), ApiError> {
    let config_changed = open_config(sealer, row).map_or(true, |stored| stored != *config);
    let sealed = seal_config(sealer, &row.uid, config)?;
    let fields = plain.with(&sealed);
    if !targets::update(db, row.id, &fields, config_changed, &time::format(now)).await? {
        find(db, row.id).await?;
        return Err(name_exists(plain.name));
    }
    Ok(())
}

fn seal_config(sealer: &Sealer, uid: &str, config: &StorageConfig) -> Result<String, ApiError> {
    let plain = serde_json::to_vec(&config.to_json())
        .map_err(|e| ApiError::internal("encode config", e))?;
    sealer.seal(Identity::StorageTarget(uid), &plain)
}

impl<'a> Plain<'a> {
    /// The row's fields: these, with the sealed config.
    fn with(&self, config_sealed: &'a str) -> Fields<'a> {
        Fields {
            name: self.name,
            description: self.description,
            enabled: self.enabled,
            config_sealed,
            quota_bytes: self.quota_bytes,
        }
    }

    pub fn of(row: &TargetRow) -> Plain<'_> {
        Plain {
            name: &row.name,
            description: &row.description,
            enabled: row.enabled != 0,
            quota_bytes: row.quota_bytes,
        }
    }
}

pub fn summary(row: &TargetRow) -> StorageTargetSummary {
    StorageTargetSummary {
        id: row.id,
        name: row.name.clone(),
        kind: row.kind.as_str().to_owned(),
        description: row.description.clone(),
        enabled: row.enabled != 0,
        starred: row.starred != 0,
        config_version: row.config_version,
        quota_bytes: row.quota_bytes,
        last_tested_at: row.last_tested_at.clone(),
        last_test_status: row.last_test_status,
        last_test_message: row.last_test_message.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
        repository: row.repo_ready_at.as_ref().map(|ready_at| RepositoryState {
            ready_at: ready_at.clone(),
            // A lease older than the prune lease is an abandoned one, not a prune.
            pruning: row.prune_started_at.is_some() && row.prune_command_id.is_some(),
            prune_due_at: row.prune_due_at.clone(),
            pruned_at: row.pruned_at.clone(),
            prune_freed_bytes: u64::try_from(row.prune_freed_bytes).unwrap_or(0),
            prune_error: row.prune_error.clone(),
            check_due_at: row.check_due_at.clone(),
            recovery_kit_at: row.recovery_kit_at.clone(),
        }),
    }
}
