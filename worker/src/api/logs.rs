//! Live logs as Server-Sent Events: `GET /api/backup/records/:id/logs/stream`,
//! `GET /api/restore/records/:id/logs/stream` and `GET /api/verify/records/:id/logs/stream`.
//!
//! The stream replays the stored lines after `Last-Event-ID` (each line's `id` is its sequence
//! number), then follows the record while it runs by reading D1 once a second — a Worker has no
//! shared memory between requests, and D1 is where the agent's lines land. Progress goes out as
//! `progress` events when it changes, a comment every 15 s keeps proxies from closing an idle
//! stream, and an `end` event with the final status closes it. Nothing is held in memory between
//! reads, so a slow reader can never block a writer.
//!
//! Browsers' `EventSource` cannot send headers: it signs in with a short-lived `?ticket=` from
//! `POST /api/auth/stream-ticket`.

use super::Ctx;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::store::logs::{self, Kind};
use futures_util::stream;
use stowage_shared::ErrorCode;
use stowage_shared::api::{Role, StreamTicket, StreamTicketRequest};
use stowage_shared::status::RunStatus;
use worker::{D1Database, Headers, Response};

/// How often a live stream reads D1 for new lines.
const POLL_MS: u64 = 1_000;
/// A comment goes out after this long without an event.
const HEARTBEAT_MS: u64 = 15_000;
/// A stream ends (without `end`) after this long; `EventSource` reconnects and resumes.
const MAX_LIFE_MS: u64 = 10 * 60 * 1_000;
/// Lines read per query.
const READ_BATCH: i64 = 200;

/// A stream cannot answer with an envelope once it has started; a failed read ends it (and the
/// client reconnects).
fn broken(e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

struct Follow {
    db: D1Database,
    kind: Kind,
    id: i64,
    after: u64,
    progress: String,
    since_event_ms: u64,
    lived_ms: u64,
    done: bool,
}

impl Follow {
    /// The next piece of the stream: stored lines, a progress change, a heartbeat, the end, or
    /// `None` when the stream is over.
    async fn next(&mut self) -> Result<Option<String>, worker::Error> {
        if self.done {
            return Ok(None);
        }
        loop {
            // Status first, then lines: lines stored before a record ended are all read below.
            let state = logs::state(&self.db, self.kind, self.id)
                .await
                .map_err(broken)?;
            let lines = logs::after(&self.db, self.kind, self.id, self.after, READ_BATCH)
                .await
                .map_err(broken)?;
            let mut out = String::new();
            for line in &lines {
                let data = serde_json::to_string(line).map_err(|e| e.to_string())?;
                out.push_str(&format!("id: {}\nevent: log\ndata: {data}\n\n", line.seq));
                self.after = line.seq;
            }
            let Some(state) = state else {
                self.done = true;
                out.push_str("event: end\ndata: {\"status\":\"deleted\"}\n\n");
                return Ok(Some(out));
            };
            let running = state.status == RunStatus::Running;
            if running && !state.progress.is_empty() && state.progress != self.progress {
                out.push_str(&format!("event: progress\ndata: {}\n\n", state.progress));
                self.progress = state.progress;
            }
            if !running && lines.len() < READ_BATCH as usize {
                self.done = true;
                out.push_str(&format!(
                    "event: end\ndata: {}\n\n",
                    serde_json::json!({ "status": state.status })
                ));
                return Ok(Some(out));
            }
            if !out.is_empty() {
                self.since_event_ms = 0;
                return Ok(Some(out));
            }
            if self.lived_ms >= MAX_LIFE_MS {
                self.done = true;
                return Ok(None);
            }
            worker::Delay::from(std::time::Duration::from_millis(POLL_MS)).await;
            self.lived_ms += POLL_MS;
            self.since_event_ms += POLL_MS;
            if self.since_event_ms >= HEARTBEAT_MS {
                self.since_event_ms = 0;
                return Ok(Some(": keep-alive\n\n".to_owned()));
            }
        }
    }
}

/// The stream of a backup record's or a restore's log.
pub async fn stream(ctx: Ctx<'_>, kind: Kind) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let id = ctx.id()?;
    if logs::state(&db, kind, id).await?.is_none() {
        return Err(match kind {
            Kind::Backup => ApiError::new(
                ErrorCode::BackupRecordNotFound,
                format!("backup record {id} does not exist"),
            ),
            Kind::Restore => ApiError::new(
                ErrorCode::RestoreRecordNotFound,
                format!("restore {id} does not exist"),
            ),
            Kind::Verify => ApiError::new(
                ErrorCode::VerifyRecordNotFound,
                format!("verification record {id} does not exist"),
            ),
        });
    }
    let last = match ctx.req.headers().get("Last-Event-ID")? {
        Some(v) => Some(v),
        None => ctx.query("lastEventId")?,
    };
    let after = match last.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(v) => v.parse::<u64>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "Last-Event-ID must be the id of an event this stream sent",
            )
        })?,
    };
    let follow = Follow {
        db,
        kind,
        id,
        after,
        progress: String::new(),
        since_event_ms: 0,
        lived_ms: 0,
        done: false,
    };
    let first = stream::once(async { Ok::<_, worker::Error>("retry: 2000\n\n".to_owned()) });
    let rest = stream::try_unfold(follow, |mut f| async move {
        Ok(f.next().await?.map(|chunk| (chunk, f)))
    });
    let headers = Headers::new();
    headers.set("Content-Type", "text/event-stream; charset=utf-8")?;
    headers.set("Cache-Control", "no-cache, no-transform")?;
    headers.set("X-Accel-Buffering", "no")?;
    Ok(Response::from_stream(futures_util::StreamExt::chain(first, rest))?.with_headers(headers))
}

/// The paths a stream ticket may open.
fn ticketable(path: &str) -> bool {
    let steps: Vec<&str> = path.split('/').collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match steps.as_slice() {
        ["", "api", "backup", "records", id, "logs", "stream"]
        | ["", "api", "restore", "records", id, "logs", "stream"]
        | ["", "api", "verify", "records", id, "logs", "stream"]
        | ["", "api", "backup", "records", id, "download"] => numeric(id),
        _ => false,
    }
}

/// `POST /api/auth/stream-ticket` `{path}`: a ticket for one GET of a log stream or download.
pub async fn ticket(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { config, .. }, principal) = ctx.signed_in(Role::Viewer).await?;
    let body: StreamTicketRequest =
        http::read_json(&mut ctx.req, config.max_json_body, ErrorCode::InvalidInput).await?;
    if !ticketable(&body.path) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "path: tickets open a record's logs/stream or download path only",
        ));
    }
    let (ticket, expires_at) = crate::auth::issue_ticket(&config, &principal, &body.path, ctx.now)?;
    http::ok(&StreamTicket {
        ticket: ticket.expose().to_owned(),
        expires_at: stowage_shared::time::format(expires_at),
    })
}

#[cfg(test)]
mod tests {
    use super::ticketable;

    #[test]
    fn tickets_open_streams_and_downloads_only() {
        assert!(ticketable("/api/backup/records/7/logs/stream"));
        assert!(ticketable("/api/restore/records/12/logs/stream"));
        assert!(ticketable("/api/verify/records/3/logs/stream"));
        assert!(ticketable("/api/backup/records/7/download"));
        for no in [
            "/api/backup/records/7",
            "/api/backup/records/x/download",
            "/api/backup/records//download",
            "/api/nodes/1/fs/list",
            "/api/backup/records/7/download/extra",
        ] {
            assert!(!ticketable(no), "{no}");
        }
    }
}
