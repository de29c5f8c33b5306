//! `GET /api/backup/records/:id/download`: the artifact, streamed, whatever the target; for a
//! repository record `?path=/…` names a file of the snapshot (sent as it is) or a folder (sent
//! as a tar stream; `/` is the whole snapshot), always relayed by an agent that reads the
//! repository.
//!
//! - S3-compatible targets answer with a redirect to a presigned URL valid for five minutes, so
//!   the bytes go straight from the bucket to the browser.
//! - Every other target (a node's own disk, SFTP, FTP, WebDAV, Azure, rclone remotes, Google
//!   Drive) is relayed by an agent: it reads the object and posts it in chunks, which this request
//!   streams out in order. At most [`RELAY_MAX_WAITING`] chunks wait in D1 at a time, so a slow
//!   download slows the agent instead of filling the database. `?via=agent` forces the relay
//!   (for a bucket the browser cannot reach).
//!
//! Downloads need the operator role: a backup holds everything the sources held.

use super::Ctx;
use crate::config::AppState;
use crate::error::ApiError;
use crate::ops::runs::{Purpose, StoredCopy, stored_copy};
use crate::store::relays::{self};
use base64::Engine;
use stowage_shared::api::Role;
use stowage_shared::protocol::{CommandSpec, StoredObject};
use stowage_shared::status::{RelayKind, RelayStatus};
use stowage_shared::storage::{S3Config, StorageConfig};
use stowage_shared::{ErrorCode, time};
use worker::{D1Database, Headers, Response};

/// How long a presigned link works.
const PRESIGN_SECS: u64 = 300;
/// How long the download waits for the agent's first chunk before answering with an error.
const FIRST_CHUNK_WAIT_MS: u64 = 30_000;
/// How long the stream waits for a next chunk before giving up on the agent.
const STALL_MS: u64 = 60_000;
const STEP_MS: u64 = 100;

fn failed(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BackupRecordDownloadFailed, message)
}

/// A presigned GET for an object of an S3 target.
fn presigned(
    config: &S3Config,
    path: &str,
    file_name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, ApiError> {
    let address = config.address();
    let endpoint = address
        .endpoint
        .parse()
        .map_err(|e| failed(format!("the target's endpoint is not a URL: {e}")))?;
    let style = if address.virtual_host {
        rusty_s3::UrlStyle::VirtualHost
    } else {
        rusty_s3::UrlStyle::Path
    };
    let bucket = rusty_s3::Bucket::new(endpoint, style, config.bucket.clone(), address.region)
        .map_err(|e| failed(format!("the target's bucket address is unusable: {e}")))?;
    let credentials = rusty_s3::Credentials::new(&config.access_key_id, &config.secret_access_key);
    let key = config.key(path);
    let mut action = bucket.get_object(Some(&credentials), &key);
    action.query_mut().insert(
        "response-content-disposition",
        format!("attachment; filename=\"{file_name}\""),
    );
    let at = jiff::Timestamp::from_second(now.timestamp())
        .map_err(|e| ApiError::internal("presign time", e))?;
    use rusty_s3::S3Action;
    Ok(action
        .sign_with_time(std::time::Duration::from_secs(PRESIGN_SECS), &at)
        .to_string())
}

pub async fn download(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let id = ctx.id()?;
    let requested = match ctx.query("storageTargetId")? {
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "storageTargetId must be a target's numeric id",
            )
        })?),
        None => None,
    };
    let entry = match ctx.query("path")? {
        Some(raw) => Some(stowage_shared::validate::absolute_path(&raw).map_err(|e| {
            ApiError::new(ErrorCode::NodeFsPathInvalid, format!("path {}", e.reason))
        })?),
        None => None,
    };
    let purpose = if entry.is_some() {
        Purpose::Export
    } else {
        Purpose::Download
    };
    let StoredCopy {
        record,
        copy: chosen,
        target,
    } = stored_copy(&db, &sealer, id, requested, purpose).await?;
    let snapshot = match &entry {
        None => None,
        Some(_) => Some(
            crate::ops::runs::snapshot_of(&db, &sealer, &chosen)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::BackupRecordNotBrowsable,
                        format!("record {id} is an archive, one file: download it without a path"),
                    )
                })?,
        ),
    };
    let file_name = entry
        .as_deref()
        .unwrap_or(&chosen.path)
        .rsplit('/')
        .find(|part| !part.is_empty())
        .map_or_else(|| format!("record-{id}"), str::to_owned);
    let via_agent = ctx.query("via")?.as_deref() == Some("agent") || snapshot.is_some();
    ctx.audit_success(
        &db,
        &principal,
        "backup_record.download",
        ("backup_record", id),
    )
    .await?;
    if let (StorageConfig::S3(s3), false) = (&target, via_agent) {
        let url = presigned(s3, &chosen.path, &file_name, ctx.now)?;
        let headers = Headers::new();
        headers.set("Location", &url)?;
        headers.set("Cache-Control", "no-store")?;
        return Ok(Response::empty()?.with_status(302).with_headers(headers));
    }

    // Relay through the node that wrote the backup (the only one that can read its own disk),
    // or, for shared storage whose writer is away, any online node that can reach it.
    let needs = crate::ops::fleet::Needs::storage(target.kind());
    let writer =
        crate::ops::fleet::choose_online(&db, &config, ctx.now, Some(record.node_id), needs).await;
    let node_id = match writer {
        Ok(node) => node,
        Err(e) if target.kind() == stowage_shared::storage::StorageType::LocalDisk => {
            return Err(e);
        }
        Err(_) => {
            crate::ops::fleet::choose_for_target(
                &db,
                &config,
                ctx.now,
                None,
                chosen.target_id,
                needs,
            )
            .await?
        }
    };
    let now = time::format(ctx.now);
    let relay_id = relays::start(&db, id, node_id, &now).await?;
    let is_snapshot = snapshot.is_some();
    let command = CommandSpec::Relay {
        relay_id,
        source: StoredObject {
            target_id: chosen.target_id,
            storage_type: target.kind(),
            config: target.to_json(),
            path: chosen.path.clone(),
            snapshot,
        },
        entry,
    };
    let command_id =
        crate::ops::commands::enqueue(&db, &config.links, &sealer, node_id, &command, ctx.now)
            .await?;
    relays::attach(&db, relay_id, command_id).await?;

    // Answer with an error, not a broken 200, when the agent cannot even start.
    let mut waited = 0;
    let kind = loop {
        let relay = relays::get(&db, relay_id)
            .await?
            .ok_or_else(|| ApiError::internal("relay", "the relay row vanished"))?;
        match relay.status {
            RelayStatus::Failed => return Err(failed(relay.error)),
            RelayStatus::Done => break relay.kind,
            _ if relay.waiting > 0 => break relay.kind,
            _ if waited >= FIRST_CHUNK_WAIT_MS => {
                crate::store::commands::abandon(&db, command_id, &now).await?;
                relays::finish(&db, relay_id, Err("the download waited too long")).await?;
                return Err(ApiError::new(
                    ErrorCode::AgentCommandTimeout,
                    "the node did not start sending the backup within 30 s",
                ));
            }
            _ => {}
        }
        worker::Delay::from(std::time::Duration::from_millis(STEP_MS)).await;
        waited += STEP_MS;
    };
    let body = futures_util::stream::try_unfold(
        Relay {
            db,
            id: relay_id,
            next: 0,
        },
        |mut r| async move { Ok::<_, worker::Error>(r.next().await?.map(|bytes| (bytes, r))) },
    );
    let headers = Headers::new();
    let (content_type, file_name) = match kind {
        RelayKind::Tar => ("application/x-tar", format!("{file_name}.tar")),
        RelayKind::File => ("application/octet-stream", file_name),
    };
    headers.set("Content-Type", content_type)?;
    headers.set("Content-Disposition", &crate::http::attachment(&file_name))?;
    // A snapshot's file is read out of the repository blob by blob (each authenticated): its
    // length and hash are not known before it is sent.
    if !is_snapshot {
        headers.set("Content-Length", &record.bytes.to_string())?;
        headers.set("X-Checksum-Sha256", &record.checksum)?;
    }
    headers.set("Cache-Control", "no-store")?;
    Ok(Response::from_stream(body)?.with_headers(headers))
}

struct Relay {
    db: D1Database,
    id: i64,
    next: i64,
}

fn broken(message: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(format!("relayed download: {message}"))
}

impl Relay {
    /// The next chunk, `None` at the end; an error aborts the response, so the client sees a
    /// short download (its length is announced) rather than a silently cut file.
    async fn next(&mut self) -> Result<Option<Vec<u8>>, worker::Error> {
        let mut stalled = 0;
        loop {
            let now = stowage_shared::time::format(crate::now());
            if let Some(data) = relays::take_chunk(&self.db, self.id, self.next, &now)
                .await
                .map_err(broken)?
            {
                self.next += 1;
                return base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map(Some)
                    .map_err(broken);
            }
            let relay = relays::get(&self.db, self.id)
                .await
                .map_err(broken)?
                .ok_or_else(|| broken("the relay row vanished"))?;
            match relay.status {
                RelayStatus::Done if relay.waiting == 0 && self.next >= relay.chunks => {
                    return Ok(None);
                }
                RelayStatus::Failed => return Err(broken(relay.error)),
                _ if stalled >= STALL_MS => return Err(broken("the agent stopped sending")),
                _ => {}
            }
            worker::Delay::from(std::time::Duration::from_millis(STEP_MS)).await;
            stalled += STEP_MS;
        }
    }
}
