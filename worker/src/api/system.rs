//! `/api/system`: what is deployed and how it is doing (admins), and whether a newer release
//! exists.

use super::Ctx;
use crate::config::{AppState, BUILD, VERSION};
use crate::error::ApiError;
use crate::http;
use crate::store::system;
use serde::Deserialize;
use stowage_shared::api::{
    CronStatus, D1Usage, Role, SystemInfo, SystemLimits, TableRows, UpdateCheck,
};
use stowage_shared::protocol::{AGENT_PROTOCOL_VERSION, MIN_AGENT_PROTOCOL_VERSION};
use stowage_shared::time;
use worker::{Headers, Method, Request, RequestInit, Response};

fn secs(d: chrono::Duration) -> u64 {
    d.num_seconds().unsigned_abs()
}

pub async fn info(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (statements, rows_read, rows_written) = crate::store::usage::totals();
    let (AppState { db, config }, _) = ctx.signed_in(Role::Admin).await?;
    let timings = config.timings;
    let last_tick_at = system::last_tick_at(&db).await?;
    let healthy = last_tick_at
        .as_deref()
        .and_then(time::parse)
        .is_some_and(|t| ctx.now - t < chrono::Duration::minutes(3));
    http::ok(&SystemInfo {
        version: VERSION.to_owned(),
        build: BUILD.to_owned(),
        agent_protocol: AGENT_PROTOCOL_VERSION,
        min_agent_protocol: MIN_AGENT_PROTOCOL_VERSION,
        schema_migration: system::latest_migration(&db).await?,
        database_bytes: system::database_bytes(&db).await?,
        table_rows: system::COUNTED_TABLES
            .iter()
            .zip(system::table_rows(&db).await?)
            .map(|(table, n)| TableRows {
                table: (*table).to_owned(),
                rows: n.unsigned_abs(),
            })
            .collect(),
        limits: SystemLimits {
            max_json_body_bytes: config.max_json_body as u64,
            session_ttl_secs: secs(config.session_ttl),
            login_max_failures: config.throttle.max_failures,
            login_window_secs: secs(config.throttle.window),
            login_lockout_secs: secs(config.throttle.lockout),
            heartbeat_secs: secs(timings.heartbeat),
            poll_secs: secs(timings.poll),
            lease_secs: secs(timings.lease),
            offline_after_secs: secs(timings.offline_after),
            rpc_wait_secs: secs(timings.rpc_wait),
        },
        cron: CronStatus {
            last_tick_at,
            healthy,
        },
        seal_key_configured: config.seal_key.is_some(),
        d1_usage: D1Usage {
            statements,
            rows_read,
            rows_written,
        },
    })
}

/// GitHub's release JSON, the fields read.
#[derive(Deserialize)]
struct Release {
    tag_name: String,
    html_url: Option<String>,
    body: Option<String>,
    published_at: Option<String>,
}

fn version_of(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(tag.trim().trim_start_matches('v')).ok()
}

async fn latest(url: &str) -> Result<Release, String> {
    let headers = Headers::new();
    for (k, v) in [
        ("Accept", "application/vnd.github+json"),
        ("User-Agent", "Stowage-Update-Check/1"),
    ] {
        headers.set(k, v).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let request = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
    let mut response = http::within(10_000, worker::Fetch::Request(request).send())
        .await
        .ok_or("the releases URL did not answer within 10 seconds")?
        .map_err(|e| format!("the releases URL could not be reached: {e}"))?;
    let status = response.status_code();
    if !(200..300).contains(&status) {
        return Err(format!("the releases URL answered HTTP {status}"));
    }
    // A release's JSON is a few kilobytes; a feed that sends more is cut (and then unreadable).
    let text = http::read_bounded(&mut response, 1 << 20).await?;
    serde_json::from_str(&text)
        .map_err(|e| format!("the releases URL's answer is not a release: {e}"))
}

/// `GET /api/system/update-check`: always 200; when the latest release cannot be had, says why.
pub async fn update_check(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { config, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let url = config.releases_url.clone();
    let mut answer = UpdateCheck {
        current_version: VERSION.to_owned(),
        latest_version: None,
        has_update: false,
        release_url: None,
        published_at: None,
        release_notes: None,
        error: None,
        checked_url: url.clone(),
    };
    match latest(&url).await {
        Ok(release) => {
            let current = version_of(VERSION);
            match version_of(&release.tag_name) {
                Some(latest) => {
                    answer.has_update = current.is_some_and(|c| latest > c);
                    answer.latest_version = Some(latest.to_string());
                }
                None => {
                    answer.error = Some(format!(
                        "the latest release's tag {:?} is not a version",
                        release.tag_name
                    ));
                }
            }
            answer.release_url = release.html_url;
            answer.published_at = release.published_at;
            answer.release_notes = release.body.map(|b| b.chars().take(4_000).collect());
        }
        Err(why) => answer.error = Some(why),
    }
    http::ok(&answer)
}
