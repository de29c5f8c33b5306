//! The agent protocol: heartbeat, poll (claim one command with a lease) and result. Agents
//! authenticate with `X-Agent-Token`, which is matched by its hash, and state their protocol version.

use super::Ctx;
use crate::auth;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::links;
use crate::ops;
use crate::store::commands::{self, Outcome};
use crate::store::logs;
use crate::store::nodes::{self, AgentIdentity};
use crate::store::relays::{self, Put};
use base64::Engine;
use stowage_shared::api::NodeStatus;
use stowage_shared::commands::CommandStatus;
use stowage_shared::commands::{ReportDecision, Stored, judge_report, lease_until};
use stowage_shared::protocol::{
    AGENT_PROTOCOL_HEADER, AGENT_TOKEN_HEADER, ClaimedCommand, CommandResult, HeartbeatRequest,
    LOG_BATCH_MAX_LINES, LOG_LINE_MAX_CHARS, LogBatchAccepted, MIN_AGENT_PROTOCOL_VERSION,
    PollResponse, ResultAccepted, RunLogBatch,
};
use stowage_shared::protocol::{RELAY_CHUNK, RELAY_MAX_WAITING};
use stowage_shared::status::RelayKind;
use stowage_shared::time::Timestamp;
use stowage_shared::{ErrorCode, time};
use worker::{D1Database, Response};

pub async fn agent(ctx: &Ctx<'_>) -> Result<(AppState, AgentIdentity), ApiError> {
    let headers = ctx.req.headers();
    let version = headers
        .get(AGENT_PROTOCOL_HEADER)?
        .and_then(|v| v.trim().parse::<u32>().ok());
    match version {
        Some(v) if v >= MIN_AGENT_PROTOCOL_VERSION => {}
        _ => {
            return Err(ApiError::new(
                ErrorCode::AgentProtocolUnsupported,
                format!(
                    "this server needs agent protocol {MIN_AGENT_PROTOCOL_VERSION} or newer \
                     (header {AGENT_PROTOCOL_HEADER}); upgrade stowage-agent"
                ),
            ));
        }
    }
    let invalid = || {
        ApiError::new(
            ErrorCode::NodeInvalidToken,
            "the agent token is missing, wrong or was rotated; enrol the agent again",
        )
    };
    let token = headers.get(AGENT_TOKEN_HEADER)?.ok_or_else(invalid)?;
    let state = ctx.state()?;
    let node = nodes::by_token_hash(&state.db, &auth::node_token_hash(token.trim()))
        .await?
        .ok_or_else(invalid)?;
    Ok((state, node))
}

/// How many polls one node may make in [`PACE_WINDOW_SECS`]. An agent polls when woken, at each
/// (re)connect and, without a link, every second or two, a few times at once when it starts
/// several commands: anything far faster is a broken or hostile agent, refused before any other
/// work is done for it. (Heartbeats are paced by the node's object, in memory.)
const PACE_WINDOW_SECS: i64 = 10;
const MAX_POLLS: i64 = 100;

async fn paced(
    db: &D1Database,
    node_id: i64,
    kind: &str,
    now: Timestamp,
    most: i64,
) -> Result<(), ApiError> {
    let cutoff = time::format(now - chrono::Duration::seconds(PACE_WINDOW_SECS));
    if nodes::pace(db, node_id, kind, &time::format(now), &cutoff).await? <= most {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::AgentRateLimited,
            format!("this node sends {kind}s too often; at most {most} in {PACE_WINDOW_SECS} s"),
        ))
    }
}

/// The node as its object is told about it.
fn link_node(node: &AgentIdentity) -> links::Node<'_> {
    links::Node {
        id: node.id,
        name: &node.name,
        // Offline in D1 after having been seen: a heartbeat now means it came back.
        offline_since: (node.status == NodeStatus::Offline)
            .then_some(node.last_seen_at.as_deref())
            .flatten(),
    }
}

/// `POST /api/agent/heartbeat`: the heartbeat of an agent without a link (protocol 2, or one
/// whose link cannot be held). The node's object answers it, as it answers one on a link.
pub async fn heartbeat(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { config, .. }, node) = agent(&ctx).await?;
    let body: HeartbeatRequest =
        http::read_json(&mut ctx.req, config.max_json_body, ErrorCode::InvalidInput).await?;
    config.links.beat(&link_node(&node), &body).await
}

/// `GET /api/agent/link`: the agent's link, a WebSocket its node's object holds (`shared::link`).
pub async fn link(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { config, .. }, node) = agent(&ctx).await?;
    let upgrade = ctx.req.headers().get("Upgrade")?.unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "this route opens a WebSocket (send Upgrade: websocket)",
        ));
    }
    config.links.connect(&link_node(&node)).await
}

pub async fn poll(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, node) = agent(&ctx).await?;
    paced(&db, node.id, "poll", ctx.now, MAX_POLLS).await?;
    let sealer = config.sealer()?;
    let now = time::format(ctx.now);
    let until = time::format(lease_until(ctx.now, config.timings.lease));
    let Some(claimed) = commands::claim_next(&db, node.id, &now, &until).await? else {
        return http::ok(&PollResponse { command: None });
    };
    let spec = crate::ops::commands::open(&sealer, &claimed.uid, &claimed.spec_sealed)?;
    http::ok(&PollResponse {
        command: Some(ClaimedCommand {
            id: claimed.id,
            spec,
            lease_expires_at: claimed.lease_expires_at,
        }),
    })
}

pub async fn result(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, node) = agent(&ctx).await?;
    let id = ctx.id()?;
    let sent: CommandResult = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::AgentResultInvalid,
    )
    .await?;
    let ok = matches!(sent, CommandResult::Succeeded { .. });
    let now = time::format(ctx.now);
    // Read, decide, then write conditionally; if the row changed in between (the tick expired it),
    // decide again on what is stored now.
    for _ in 0..2 {
        let row = commands::get(&db, id).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::AgentCommandNotFound,
                format!("command {id} does not exist"),
            )
        })?;
        let stored = Stored {
            node_id: row.node_id,
            status: row.status,
            lease_expires_at: row.lease_expires_at.as_deref().and_then(time::parse),
        };
        match judge_report(stored, node.id, ok, ctx.now) {
            ReportDecision::Record(status) => {
                // The report is read as its command's kind; one that does not read so is
                // recorded as the failure it is, and the agent is told.
                let report = sent.clone().typed(row.kind);
                let (status, result, error) = match &report {
                    CommandResult::Succeeded { result } => (
                        status,
                        Some(
                            serde_json::to_string(result)
                                .map_err(|e| ApiError::internal("encode report", e))?,
                        ),
                        None,
                    ),
                    CommandResult::Failed { error } if ok => {
                        (CommandStatus::Failed, None, Some(error))
                    }
                    CommandResult::Failed { error } => (status, None, Some(error)),
                };
                let outcome = Outcome {
                    status,
                    result: result.as_deref(),
                    error_code: error.map(|e| e.code.as_str()),
                    error_message: error.map(|e| e.message.as_str()),
                };
                if commands::finish(&db, id, node.id, &outcome, &now).await? {
                    let notify =
                        ops::settle::settle(&db, &config, id, row.kind, &report, ctx.now).await?;
                    if notify {
                        ctx.notify_soon();
                    }
                    if let (true, Some(error)) = (ok, error) {
                        return Err(ApiError::new(error.code, error.message.clone()));
                    }
                    return http::ok(&ResultAccepted { recorded: true });
                }
            }
            ReportDecision::AlreadyRecorded => {
                return http::ok(&ResultAccepted { recorded: false });
            }
            ReportDecision::Forbidden => {
                return Err(ApiError::new(
                    ErrorCode::AgentCommandForbidden,
                    format!("command {id} belongs to another node"),
                ));
            }
            ReportDecision::LeaseExpired => {
                return Err(ApiError::new(
                    ErrorCode::AgentCommandLeaseExpired,
                    format!(
                        "the lease on command {id} expired before its result arrived; it was given up"
                    ),
                ));
            }
            ReportDecision::Invalid => {
                return Err(ApiError::new(
                    ErrorCode::AgentResultInvalid,
                    format!("command {id} is {}; this result cannot apply", row.status),
                ));
            }
        }
    }
    Err(ApiError::internal(
        "record result",
        "the command kept changing",
    ))
}

/// `POST /api/agent/records/:id` and `/api/agent/restores/:id`: new log lines and progress of a
/// run or restore this node is doing. Answers `live: false` once the record has ended.
pub async fn log_batch(mut ctx: Ctx<'_>, kind: logs::Kind) -> Result<Response, ApiError> {
    let (AppState { db, config }, node) = agent(&ctx).await?;
    let id = ctx.id()?;
    let mut batch: RunLogBatch =
        http::read_json(&mut ctx.req, config.max_json_body, ErrorCode::InvalidInput).await?;
    if batch.lines.len() > LOG_BATCH_MAX_LINES {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("lines: at most {LOG_BATCH_MAX_LINES} per batch"),
        ));
    }
    for line in &mut batch.lines {
        if line.seq == 0 {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "lines: seq counts from 1",
            ));
        }
        if line.message.chars().count() > LOG_LINE_MAX_CHARS {
            line.message = line.message.chars().take(LOG_LINE_MAX_CHARS).collect();
        }
        if time::parse(&line.at).is_none() {
            line.at = time::format(ctx.now);
        }
    }
    let lines =
        serde_json::to_string(&batch.lines).map_err(|e| ApiError::internal("log lines", e))?;
    let progress = batch
        .progress
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| ApiError::internal("progress", e))?;
    let live = logs::append(&db, kind, id, node.id, &lines, progress.as_deref()).await?;
    http::ok(&LogBatchAccepted { live })
}

/// `POST /api/agent/relays/:id?seq=N[&kind=tar]`: one chunk of a relayed download (raw bytes);
/// the first says what the download carries.
pub async fn chunk(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, node) = super::agent::agent(&ctx).await?;
    let id = ctx.id()?;
    let seq = ctx
        .query("seq")?
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|s| *s >= 0)
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidInput, "seq must be a chunk number"))?;
    let kind = match ctx.query("kind")? {
        None => RelayKind::File,
        Some(raw) => RelayKind::parse(&raw)
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidInput, "kind must be file or tar"))?,
    };
    let bytes = http::read_bytes(&mut ctx.req, RELAY_CHUNK).await?;
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    match relays::put_chunk(&db, id, node.id, (seq, kind), &data, RELAY_MAX_WAITING).await? {
        Put::Stored => http::ok(&serde_json::json!({ "stored": true })),
        Put::Busy => Err(ApiError::new(
            ErrorCode::RelayBusy,
            "chunks are waiting for the download; send this one again shortly",
        )),
        Put::Gone => Err(ApiError::new(
            ErrorCode::RelayGone,
            "this download has ended; stop sending",
        )),
    }
}
