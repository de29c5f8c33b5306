//! Notification delivery, from the Worker: events become queued deliveries (one per channel,
//! stored with their message), and deliveries are sent, retried with back-off and recorded.
//!
//! Handing out and sending are apart on purpose. A finished record is handed out once (the
//! record's `notified_at` and each delivery's unique event key see to that), in the same
//! transaction as its deliveries; sending happens right after the request that finished it
//! (`wait_until`) and again in every tick, so a delivery survives a Worker that stops midway.
//! Nothing here ever changes a backup's status: a notification that cannot be sent is a failed
//! delivery, not a failed backup.

use crate::config::AppState;
use crate::error::ApiError;
use crate::secrets::Identity;
use crate::secrets::Sealer;
use crate::store::notifications::{self as store, ChannelRow, NewDelivery, Notified};
use crate::store::settings;
use chrono::Duration;
use stowage_shared::notifications::{
    BackupFacts, ChannelConfig, Event, HttpSend, Message, RestoreFacts, Send, passes_threshold,
    render, retry_delay_secs,
};
use stowage_shared::settings::Settings;
use stowage_shared::time::{self, Timestamp};
use worker::D1Database;
use worker::{Env, Headers, Method, Request, RequestInit};

/// How long one attempt may take before it counts as failed.
const ATTEMPT_TIMEOUT_MS: u64 = 10_000;
/// Deliveries one pass sends at most (a tick has limited time).
const PASS_LIMIT: i64 = 25;
/// Finished records one pass hands out at most.
const SWEEP_LIMIT: i64 = 50;

/// Opens a stored channel config.
pub fn open_config(sealer: &Sealer, row: &ChannelRow) -> Result<ChannelConfig, ApiError> {
    let kind = row.kind;
    let plain = sealer.open(Identity::Channel(&row.uid), &row.config_sealed)?;
    let json: serde_json::Value =
        serde_json::from_slice(&plain).map_err(|e| ApiError::internal("stored config", e))?;
    ChannelConfig::parse(kind, &json).map_err(|e| ApiError::internal("stored config", e))
}

pub fn seal_config(sealer: &Sealer, uid: &str, config: &ChannelConfig) -> Result<String, ApiError> {
    let plain = serde_json::to_vec(&config.to_json())
        .map_err(|e| ApiError::internal("encode config", e))?;
    sealer.seal(Identity::Channel(uid), &plain)
}

/// The channels `message` goes to: subscribed and enabled; for task events, only the default
/// channels when some are set; for backup failures, only channels whose threshold is reached.
fn recipients<'a>(
    channels: &'a [ChannelRow],
    settings: &Settings,
    event: Event,
    failure_streak: u32,
) -> impl Iterator<Item = &'a ChannelRow> {
    let defaults = settings.default_notification_channels.clone();
    channels.iter().filter(move |c| {
        let allowed = !event.is_task_event() || defaults.is_empty() || defaults.contains(&c.id);
        let threshold = u32::try_from(c.failure_threshold).unwrap_or(1);
        allowed && passes_threshold(event, failure_streak, threshold)
    })
}

fn deliveries<'a>(
    channels: impl Iterator<Item = &'a ChannelRow>,
    event: Event,
    event_key: &'a str,
    message: &'a str,
) -> Vec<NewDelivery<'a>> {
    channels
        .map(|c| NewDelivery {
            channel_id: c.id,
            channel_name: &c.name,
            event: event.as_str(),
            event_key,
            message,
        })
        .collect()
}

fn encode(message: &Message) -> Result<String, ApiError> {
    serde_json::to_string(message).map_err(|e| ApiError::internal("encode message", e))
}

fn secs_between(from: &str, to: &str) -> i64 {
    match (time::parse(from), time::parse(to)) {
        (Some(a), Some(b)) => (b - a).num_seconds().max(0),
        _ => 0,
    }
}

/// Hands out the events of finished runs and restores not handed out yet; returns how many
/// records were handed out.
pub async fn sweep(
    state: &AppState,
    settings: &Settings,
    now: Timestamp,
) -> Result<usize, ApiError> {
    let db = &state.db;
    let now_text = time::format(now);
    let mut handed = 0;
    for run in store::unnotified_runs(db, SWEEP_LIMIT).await? {
        let facts = BackupFacts {
            record_id: run.id,
            task_id: run.task_id,
            task_name: &run.task_name,
            node_name: &run.node_name,
            status: run.status,
            bytes: run.bytes,
            duration_secs: secs_between(&run.started_at, &run.finished_at),
            error: &run.error,
            trigger: run.trigger,
            finished_at: &run.finished_at,
            failure_streak: u32::try_from(run.failure_streak).unwrap_or(u32::MAX),
        };
        let message = Message::backup(&settings.site_name, &settings.site_url, &facts);
        let channels = store::subscribed(db, message.event.as_str()).await?;
        let key = format!("backup_record:{}", run.id);
        let text = encode(&message)?;
        let list = deliveries(
            recipients(&channels, settings, message.event, facts.failure_streak),
            message.event,
            &key,
            &text,
        );
        store::hand_out(db, Notified::Backup, run.id, &list, &now_text).await?;
        handed += 1;
    }
    for restore in store::unnotified_restores(db, SWEEP_LIMIT).await? {
        let facts = RestoreFacts {
            restore_id: restore.id,
            backup_record_id: restore.backup_record_id,
            task_name: &restore.task_name,
            node_name: &restore.node_name,
            status: restore.status,
            duration_secs: secs_between(&restore.started_at, &restore.finished_at),
            error: &restore.error,
            finished_at: &restore.finished_at,
        };
        let message = Message::restore(&settings.site_name, &settings.site_url, &facts);
        let channels = store::subscribed(db, message.event.as_str()).await?;
        let key = format!("restore_record:{}", restore.id);
        let text = encode(&message)?;
        let list = deliveries(
            recipients(&channels, settings, message.event, 0),
            message.event,
            &key,
            &text,
        );
        store::hand_out(db, Notified::Restore, restore.id, &list, &now_text).await?;
        handed += 1;
    }
    Ok(handed)
}

/// Queues an event that is not a record's (a node went offline, a storage test failed) for every
/// subscribed channel. `event_key` identifies the occurrence, so noticing it twice sends once.
pub async fn emit(
    state: &AppState,
    message: &Message,
    event_key: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    emit_to(&state.db, message, event_key, now).await
}

/// [`emit`] with the database alone.
pub async fn emit_to(
    db: &D1Database,
    message: &Message,
    event_key: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    let channels = store::subscribed(db, message.event.as_str()).await?;
    let text = encode(message)?;
    let list = deliveries(channels.iter(), message.event, event_key, &text);
    store::enqueue(db, &list, &time::format(now))
        .await
        .map_err(ApiError::from)
}

/// What one delivery pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    pub sent: usize,
    pub retrying: usize,
    pub given_up: usize,
}

/// Sends the deliveries that are due; a failed attempt is retried later, the fifth is final.
pub async fn deliver_due(state: &AppState, now: Timestamp) -> Result<Delivered, ApiError> {
    let db = &state.db;
    let now_text = time::format(now);
    // A claim outlives the attempt's timeout, so a live attempt is never claimed twice.
    let until = time::format(now + Duration::minutes(2));
    let claimed = store::claim_due(db, &now_text, &until, PASS_LIMIT).await?;
    let mut report = Delivered::default();
    if claimed.is_empty() {
        return Ok(report);
    }
    let sealer = state.config.sealer()?;
    let settings = settings::load(db).await?;
    for d in claimed {
        let outcome = match store::get(db, d.channel_id).await? {
            None => Err("the channel was deleted".to_owned()),
            Some(row) => match (
                open_config(&sealer, &row),
                serde_json::from_str::<Message>(&d.message),
            ) {
                (Ok(config), Ok(message)) => {
                    let id = format!("{}", d.id);
                    attempt(&config, &message, &id, now, &settings).await
                }
                (Err(e), _) => Err(format!("the channel's config could not be opened: {e}")),
                (_, Err(e)) => Err(format!("the stored message is unreadable: {e}")),
            },
        };
        match outcome {
            Ok(()) => {
                store::mark_sent(db, d.id, &time::format(crate::now())).await?;
                report.sent += 1;
            }
            Err(error) => {
                let attempts = u32::try_from(d.attempts).unwrap_or(u32::MAX);
                let retry_at = retry_delay_secs(attempts)
                    .map(|secs| time::format(now + Duration::seconds(secs)));
                store::mark_failed(db, d.id, &error, retry_at.as_deref()).await?;
                if retry_at.is_some() {
                    report.retrying += 1;
                } else {
                    report.given_up += 1;
                }
            }
        }
    }
    Ok(report)
}

/// Hands out what just finished and sends what is due, after the response went out.
pub fn soon(env: &Env, worker_ctx: &worker::Context) {
    worker_ctx.wait_until(send_now(env.clone()));
}

/// Hands out what just finished and sends what is due; errors are logged (the tick retries).
pub async fn send_now(env: Env) {
    let now = crate::now();
    let result = async {
        let state = AppState::from_env(&env)?;
        let settings = settings::load(&state.db).await?;
        sweep(&state, &settings, now).await?;
        deliver_due(&state, now).await
    }
    .await;
    if let Err(err) = result {
        worker::console_error!("notification delivery failed: {err}");
    }
}

/// One attempt to send `message` through `config`. The error is what the receiver or the network
/// said, with the channel's secrets scrubbed out.
pub async fn attempt(
    config: &ChannelConfig,
    message: &Message,
    delivery_id: &str,
    now: Timestamp,
    settings: &Settings,
) -> Result<(), String> {
    let send = render(config, message, delivery_id, now.timestamp());
    let work = async {
        match &send {
            Send::Http(http) => post(http).await,
            Send::Email(email) => crate::mail::send(email, now, ehlo_name(settings)).await,
        }
    };
    let result = crate::http::within(ATTEMPT_TIMEOUT_MS, work)
        .await
        .unwrap_or_else(|| {
            Err(format!(
                "no answer within {} seconds",
                ATTEMPT_TIMEOUT_MS / 1000
            ))
        });
    result.map_err(|e| config.scrub(&e))
}

/// The name the Worker gives itself in SMTP's EHLO: the console's host, else `localhost`.
fn ehlo_name(settings: &Settings) -> String {
    worker::Url::parse(&settings.site_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned())
}

async fn post(send: &HttpSend) -> Result<(), String> {
    let headers = Headers::new();
    for (name, value) in &send.headers {
        headers
            .set(name, value)
            .map_err(|e| format!("header {name}: {e}"))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(
            worker::js_sys::Uint8Array::from(send.body.as_slice()).into(),
        ));
    let request = Request::new_with_init(&send.url, &init).map_err(|e| format!("{e}"))?;
    let mut response = worker::Fetch::Request(request)
        .send()
        .await
        .map_err(|e| format!("could not reach {}: {e}", origin(&send.url)))?;
    let status = response.status_code();
    if (200..300).contains(&status) {
        return Ok(());
    }
    // Only the start of a refusal is shown: read no more than that.
    let body = crate::http::read_bounded(&mut response, 4096)
        .await
        .unwrap_or_default();
    let excerpt: String = body.trim().chars().take(200).collect();
    Err(if excerpt.is_empty() {
        format!("{} answered HTTP {status}", origin(&send.url))
    } else {
        format!("{} answered HTTP {status}: {excerpt}", origin(&send.url))
    })
}

/// `scheme://host:port` of a URL, for messages: its path may hold a token.
fn origin(url: &str) -> String {
    worker::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "the receiver".to_owned())
}
