//! Notifications: the channel types and their checked configs, the events, the message an event
//! becomes, and the exact request each channel sends. Pure: the Worker carries the request out
//! (HTTP with `fetch`, email over a TCP socket) and records what happened.
//!
//! A channel's config is sealed whole, because for Slack, Discord and Telegram the URL or token
//! *is* the credential. Responses mask the secret fields; an update that sends the mask back keeps
//! the stored value.

use crate::status::{RestoreStatus, RunStatus, Trigger};
use crate::storage::{MASK, changed_fields, decode, field, secret_bound};
use crate::validate::FieldError;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    Webhook,
    Email,
    Telegram,
    Slack,
    Discord,
    Ntfy,
}

impl ChannelType {
    pub const ALL: [ChannelType; 6] = [
        ChannelType::Webhook,
        ChannelType::Email,
        ChannelType::Telegram,
        ChannelType::Slack,
        ChannelType::Discord,
        ChannelType::Ntfy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Webhook => "webhook",
            ChannelType::Email => "email",
            ChannelType::Telegram => "telegram",
            ChannelType::Slack => "slack",
            ChannelType::Discord => "discord",
            ChannelType::Ntfy => "ntfy",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// The config keys that hold secrets.
    pub fn secret_fields(self) -> &'static [&'static str] {
        match self {
            ChannelType::Webhook => &["secret"],
            ChannelType::Email => &["password"],
            ChannelType::Telegram => &["botToken"],
            ChannelType::Slack | ChannelType::Discord => &["webhookUrl"],
            ChannelType::Ntfy => &["token"],
        }
    }
}

/// What a channel can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    BackupSuccess,
    BackupFailed,
    /// Some targets got the backup, others did not.
    BackupPartial,
    RestoreSuccess,
    RestoreFailed,
    NodeOffline,
    NodeOnline,
    StorageTestFailed,
    /// A repository check (of one record's snapshot, or of a whole target) found damage.
    VerifyFailed,
    /// A test message from `POST /api/notifications/test`.
    Test,
}

impl Event {
    /// The events a channel can subscribe to (not `test`, which goes to the one channel tested).
    pub const SUBSCRIBABLE: [Event; 9] = [
        Event::BackupSuccess,
        Event::BackupFailed,
        Event::BackupPartial,
        Event::RestoreSuccess,
        Event::RestoreFailed,
        Event::NodeOffline,
        Event::NodeOnline,
        Event::StorageTestFailed,
        Event::VerifyFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::BackupSuccess => "backup_success",
            Event::BackupFailed => "backup_failed",
            Event::BackupPartial => "backup_partial",
            Event::RestoreSuccess => "restore_success",
            Event::RestoreFailed => "restore_failed",
            Event::NodeOffline => "node_offline",
            Event::NodeOnline => "node_online",
            Event::StorageTestFailed => "storage_test_failed",
            Event::VerifyFailed => "verify_failed",
            Event::Test => "test",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::SUBSCRIBABLE
            .into_iter()
            .chain([Event::Test])
            .find(|e| e.as_str() == text)
    }

    /// Bad news: failures are sent with a higher priority where the channel has one.
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            Event::BackupFailed
                | Event::BackupPartial
                | Event::RestoreFailed
                | Event::NodeOffline
                | Event::StorageTestFailed
                | Event::VerifyFailed
        )
    }

    /// Events about a task's runs, which go to the default channels when those are set.
    pub fn is_task_event(self) -> bool {
        matches!(
            self,
            Event::BackupSuccess
                | Event::BackupFailed
                | Event::BackupPartial
                | Event::RestoreSuccess
                | Event::RestoreFailed
        )
    }
}

/// The events of a channel request: known names, at least one, each once.
pub fn parse_events(names: &[String]) -> Result<Vec<Event>, FieldError> {
    if names.is_empty() {
        return Err(FieldError::new("events", "choose at least one event"));
    }
    let mut events = Vec::with_capacity(names.len());
    for name in names {
        let event = Event::parse(name)
            .filter(|e| *e != Event::Test)
            .ok_or_else(|| {
                let known: Vec<&str> = Event::SUBSCRIBABLE.iter().map(|e| e.as_str()).collect();
                FieldError::new(
                    "events",
                    format!("unknown event {name:?}; use {}", known.join(", ")),
                )
            })?;
        events.push(event);
    }
    events.sort_unstable();
    events.dedup();
    Ok(events)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// When set, every request carries `X-Stowage-Signature` (see [`sign`]).
    #[serde(default)]
    pub secret: String,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on a trusted network. Passwords are refused with it.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    pub from: String,
    pub to: Vec<String>,
}

fn default_smtp_port() -> u16 {
    587
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelegramConfig {
    pub bot_token: String,
    pub chat_id: String,
    /// The Bot API's address; only a self-hosted Bot API server changes it.
    #[serde(default = "default_telegram_api")]
    pub api_url: String,
}

fn default_telegram_api() -> String {
    "https://api.telegram.org".to_owned()
}

/// Slack's and Discord's incoming webhooks: the URL is the credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatWebhookConfig {
    pub webhook_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NtfyConfig {
    #[serde(default = "default_ntfy_server")]
    pub server_url: String,
    pub topic: String,
    /// An access token for a protected topic.
    #[serde(default)]
    pub token: String,
}

fn default_ntfy_server() -> String {
    "https://ntfy.sh".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelConfig {
    Webhook(WebhookConfig),
    Email(EmailConfig),
    Telegram(TelegramConfig),
    Slack(ChatWebhookConfig),
    Discord(ChatWebhookConfig),
    Ntfy(NtfyConfig),
}

fn http_url(name: &str, value: &str) -> Result<(), FieldError> {
    let v = value.trim();
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty() && !v.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(())
        }
        _ => Err(field(name, "must be an http:// or https:// URL")),
    }
}

fn required(name: &str, value: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        Err(field(name, "is required"))
    } else if value.chars().any(char::is_control) {
        Err(field(name, "must not contain control characters"))
    } else {
        Ok(())
    }
}

/// A mailbox as SMTP carries it: `local@domain`, nothing that could end a header or a command.
fn address(name: &str, value: &str) -> Result<(), FieldError> {
    let ok = value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && (domain.contains('.') || domain == "localhost")
    }) && !value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if ok {
        Ok(())
    } else {
        Err(field(name, format!("{value:?} is not an email address")))
    }
}

impl ChannelConfig {
    pub fn parse(kind: ChannelType, config: &Value) -> Result<Self, FieldError> {
        if !config.is_object() {
            return Err(FieldError::new("config", "must be a JSON object"));
        }
        Ok(match kind {
            ChannelType::Webhook => {
                let c: WebhookConfig = decode(config)?;
                http_url("url", &c.url)?;
                ChannelConfig::Webhook(c)
            }
            ChannelType::Email => {
                let c: EmailConfig = decode(config)?;
                required("host", &c.host)?;
                if c.port == 0 {
                    return Err(field("port", "must be 1 to 65535"));
                }
                address("from", &c.from)?;
                if c.to.is_empty() || c.to.len() > 50 {
                    return Err(field("to", "must list 1 to 50 recipients"));
                }
                for to in &c.to {
                    address("to", to)?;
                }
                if c.username.chars().any(char::is_control) {
                    return Err(field("username", "must not contain control characters"));
                }
                if c.security == SmtpSecurity::None && !c.password.is_empty() {
                    return Err(field(
                        "password",
                        "is never sent without TLS; use security \"starttls\" or \"tls\"",
                    ));
                }
                ChannelConfig::Email(c)
            }
            ChannelType::Telegram => {
                let c: TelegramConfig = decode(config)?;
                required("botToken", &c.bot_token)?;
                if c.bot_token.contains('/') || c.bot_token.chars().any(char::is_whitespace) {
                    return Err(field("botToken", "is not a bot token (123456:ABC…)"));
                }
                required("chatId", &c.chat_id)?;
                http_url("apiUrl", &c.api_url)?;
                ChannelConfig::Telegram(c)
            }
            ChannelType::Slack => {
                let c: ChatWebhookConfig = decode(config)?;
                http_url("webhookUrl", &c.webhook_url)?;
                ChannelConfig::Slack(c)
            }
            ChannelType::Discord => {
                let c: ChatWebhookConfig = decode(config)?;
                http_url("webhookUrl", &c.webhook_url)?;
                ChannelConfig::Discord(c)
            }
            ChannelType::Ntfy => {
                let c: NtfyConfig = decode(config)?;
                http_url("serverUrl", &c.server_url)?;
                required("topic", &c.topic)?;
                if !c
                    .topic
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
                    || c.topic.len() > 64
                {
                    return Err(field("topic", "must be 1 to 64 letters, digits, - or _"));
                }
                ChannelConfig::Ntfy(c)
            }
        })
    }

    pub fn kind(&self) -> ChannelType {
        match self {
            ChannelConfig::Webhook(_) => ChannelType::Webhook,
            ChannelConfig::Email(_) => ChannelType::Email,
            ChannelConfig::Telegram(_) => ChannelType::Telegram,
            ChannelConfig::Slack(_) => ChannelType::Slack,
            ChannelConfig::Discord(_) => ChannelType::Discord,
            ChannelConfig::Ntfy(_) => ChannelType::Ntfy,
        }
    }

    /// The config as JSON, secrets included (for sealing).
    pub fn to_json(&self) -> Value {
        let value = match self {
            ChannelConfig::Webhook(c) => serde_json::to_value(c),
            ChannelConfig::Email(c) => serde_json::to_value(c),
            ChannelConfig::Telegram(c) => serde_json::to_value(c),
            ChannelConfig::Slack(c) | ChannelConfig::Discord(c) => serde_json::to_value(c),
            ChannelConfig::Ntfy(c) => serde_json::to_value(c),
        };
        value.unwrap_or(Value::Null)
    }

    /// The config as a response shows it, and the names of its secret fields.
    pub fn masked(&self) -> (Value, Vec<String>) {
        let mut value = self.to_json();
        let fields = self.kind().secret_fields();
        if let Some(obj) = value.as_object_mut() {
            for key in fields {
                if let Some(v) = obj.get_mut(*key)
                    && v.as_str().is_some_and(|s| !s.is_empty())
                {
                    *v = Value::String(MASK.to_owned());
                }
            }
        }
        (value, fields.iter().map(|f| (*f).to_owned()).collect())
    }

    /// The non-empty secrets, to scrub from error messages (a failing URL names its token).
    pub fn secret_values(&self) -> Vec<String> {
        let json = self.to_json();
        self.kind()
            .secret_fields()
            .iter()
            .filter_map(|k| json.get(*k).and_then(Value::as_str))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut secrets = self.secret_values();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets
            .iter()
            .fold(text.to_owned(), |acc, s| acc.replace(s.as_str(), MASK))
    }
}

impl ChannelType {
    /// The fields that decide where a channel's secret goes (or whether it travels in the clear):
    /// a masked secret is kept only while they stay the same.
    fn destination_fields(self) -> &'static [&'static str] {
        match self {
            ChannelType::Webhook => &["url"],
            ChannelType::Email => &["host", "port", "security"],
            ChannelType::Telegram => &["apiUrl"],
            // The secret is the address itself.
            ChannelType::Slack | ChannelType::Discord => &[],
            ChannelType::Ntfy => &["serverUrl"],
        }
    }
}

impl ChannelConfig {
    /// An update of `stored` with `incoming`: secrets sent back masked or left out keep their
    /// stored values, but only while the destination they were entered for stays the same.
    pub fn parse_update(
        kind: ChannelType,
        incoming: &Value,
        stored: &ChannelConfig,
    ) -> Result<Self, FieldError> {
        let stored_json = stored.to_json();
        let kept: Vec<&str> = stored
            .kind()
            .secret_fields()
            .iter()
            .copied()
            .filter(|k| {
                stored_json
                    .get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
                    && incoming
                        .get(*k)
                        .is_none_or(|v| v.is_null() || v.as_str() == Some(MASK))
            })
            .collect();
        let parsed = Self::parse(kind, &keep_stored_secrets(incoming, stored))?;
        if let Some(secret) = kept.first() {
            let changed =
                changed_fields(&parsed.to_json(), &stored_json, kind.destination_fields());
            if !changed.is_empty() {
                return Err(secret_bound(secret, &changed));
            }
        }
        Ok(parsed)
    }
}

/// For an update: every secret sent back as [`MASK`] or left out takes the stored value.
fn keep_stored_secrets(incoming: &Value, stored: &ChannelConfig) -> Value {
    let mut merged = incoming.clone();
    let stored_json = stored.to_json();
    if let Some(obj) = merged.as_object_mut() {
        for key in stored.kind().secret_fields() {
            let keep = obj
                .get(*key)
                .is_none_or(|v| v.is_null() || v.as_str() == Some(MASK));
            if keep && let Some(old) = stored_json.get(*key) {
                obj.insert((*key).to_owned(), old.clone());
            }
        }
    }
    merged
}

/// What an event says, before any channel formats it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub event: Event,
    pub title: String,
    /// Plain text, one fact per line.
    pub body: String,
    /// The same facts for machines (webhook receivers).
    pub fields: BTreeMap<String, Value>,
    /// Where to look in the console (absolute when the site URL is set).
    pub link: Option<String>,
    /// When the event happened (RFC 3339).
    pub occurred_at: String,
}

/// The facts of a finished backup run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFacts<'a> {
    pub record_id: i64,
    pub task_id: Option<i64>,
    pub task_name: &'a str,
    pub node_name: &'a str,
    pub status: RunStatus,
    pub bytes: i64,
    pub duration_secs: i64,
    pub error: &'a str,
    pub trigger: Trigger,
    pub finished_at: &'a str,
    /// How many runs of the task in a row have failed, this one included.
    pub failure_streak: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreFacts<'a> {
    pub restore_id: i64,
    pub backup_record_id: i64,
    pub task_name: &'a str,
    pub node_name: &'a str,
    pub status: RestoreStatus,
    pub duration_secs: i64,
    pub error: &'a str,
    pub finished_at: &'a str,
}

/// `1.5 GiB`, for people; the exact byte count goes in the fields.
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, (secs % 3600) / 60),
    }
}

fn link(site_url: &str, path: String) -> Option<String> {
    Some(format!("{site_url}{path}"))
}

fn fields_of<const N: usize>(pairs: [(&str, Value); N]) -> BTreeMap<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn body_of(lines: &[(&str, String)]) -> String {
    lines
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a `verify_failed` message says.
#[derive(Debug, Clone)]
pub struct VerifyFacts<'a> {
    pub verify_id: i64,
    pub target_name: &'a str,
    /// Empty for a check of a whole target.
    pub task_name: &'a str,
    pub error: &'a str,
    pub affected: usize,
    pub finished_at: &'a str,
}

impl Message {
    pub fn backup(site_name: &str, site_url: &str, f: &BackupFacts<'_>) -> Self {
        let event = match f.status {
            RunStatus::Success => Event::BackupSuccess,
            RunStatus::Partial => Event::BackupPartial,
            RunStatus::Failed | RunStatus::Running => Event::BackupFailed,
        };
        let verb = match event {
            Event::BackupSuccess => "Backup succeeded",
            Event::BackupPartial => "Backup reached only some targets",
            _ => "Backup failed",
        };
        let streak = if f.failure_streak > 1 {
            format!("{} runs in a row", f.failure_streak)
        } else {
            String::new()
        };
        let path = format!("/backup/records/{}", f.record_id);
        let link = link(site_url, path);
        let body = body_of(&[
            ("Task", f.task_name.to_owned()),
            ("Node", f.node_name.to_owned()),
            ("Status", f.status.to_string()),
            ("Size", human_bytes(f.bytes)),
            ("Duration", human_duration(f.duration_secs)),
            ("Trigger", f.trigger.to_string()),
            ("Error", f.error.to_owned()),
            ("Failed", streak),
            ("Record", link.clone().unwrap_or_default()),
        ]);
        let fields = fields_of([
            ("recordId", json!(f.record_id)),
            ("taskId", json!(f.task_id)),
            ("taskName", json!(f.task_name)),
            ("nodeName", json!(f.node_name)),
            ("status", json!(f.status)),
            ("bytes", json!(f.bytes)),
            ("durationSecs", json!(f.duration_secs)),
            ("trigger", json!(f.trigger)),
            ("error", json!(f.error)),
            ("consecutiveFailures", json!(f.failure_streak)),
        ]);
        Self {
            event,
            title: format!("[{site_name}] {verb}: {}", f.task_name),
            body,
            fields,
            link,
            occurred_at: f.finished_at.to_owned(),
        }
    }

    pub fn restore(site_name: &str, site_url: &str, f: &RestoreFacts<'_>) -> Self {
        let ok = f.status == RestoreStatus::Success;
        let event = if ok {
            Event::RestoreSuccess
        } else {
            Event::RestoreFailed
        };
        let verb = if ok {
            "Restore succeeded"
        } else {
            "Restore failed"
        };
        let link = link(site_url, format!("/restore/records/{}", f.restore_id));
        let body = body_of(&[
            ("Task", f.task_name.to_owned()),
            ("Node", f.node_name.to_owned()),
            ("Status", f.status.to_string()),
            ("Duration", human_duration(f.duration_secs)),
            ("Error", f.error.to_owned()),
            ("Restore", link.clone().unwrap_or_default()),
        ]);
        let fields = fields_of([
            ("restoreId", json!(f.restore_id)),
            ("backupRecordId", json!(f.backup_record_id)),
            ("taskName", json!(f.task_name)),
            ("nodeName", json!(f.node_name)),
            ("status", json!(f.status)),
            ("durationSecs", json!(f.duration_secs)),
            ("error", json!(f.error)),
        ]);
        Self {
            event,
            title: format!("[{site_name}] {verb}: {}", f.task_name),
            body,
            fields,
            link,
            occurred_at: f.finished_at.to_owned(),
        }
    }

    /// A node stopped (or resumed) sending heartbeats.
    pub fn node(
        site_name: &str,
        site_url: &str,
        online: bool,
        node_id: i64,
        node_name: &str,
        last_seen_at: &str,
        now: &str,
    ) -> Self {
        let (event, verb) = if online {
            (Event::NodeOnline, "Node is back online")
        } else {
            (Event::NodeOffline, "Node went offline")
        };
        let link = link(site_url, format!("/nodes/{node_id}"));
        let body = body_of(&[
            ("Node", node_name.to_owned()),
            ("Last heartbeat", last_seen_at.to_owned()),
            ("Node page", link.clone().unwrap_or_default()),
        ]);
        let fields = fields_of([
            ("nodeId", json!(node_id)),
            ("nodeName", json!(node_name)),
            ("lastSeenAt", json!(last_seen_at)),
        ]);
        Self {
            event,
            title: format!("[{site_name}] {verb}: {node_name}"),
            body,
            fields,
            link,
            occurred_at: now.to_owned(),
        }
    }

    pub fn storage_test_failed(
        site_name: &str,
        site_url: &str,
        target_id: i64,
        target_name: &str,
        error: &str,
        now: &str,
    ) -> Self {
        let link = link(site_url, format!("/storage-targets/{target_id}"));
        let body = body_of(&[
            ("Storage target", target_name.to_owned()),
            ("Error", error.to_owned()),
            ("Target page", link.clone().unwrap_or_default()),
        ]);
        let fields = fields_of([
            ("storageTargetId", json!(target_id)),
            ("storageTargetName", json!(target_name)),
            ("error", json!(error)),
        ]);
        Self {
            event: Event::StorageTestFailed,
            title: format!("[{site_name}] Storage test failed: {target_name}"),
            body,
            fields,
            link,
            occurred_at: now.to_owned(),
        }
    }

    /// A check found damage in a target's repository.
    pub fn verify_failed(site_name: &str, site_url: &str, f: &VerifyFacts<'_>) -> Self {
        let link = link(site_url, format!("/verify/records/{}", f.verify_id));
        let body = body_of(&[
            ("Storage target", f.target_name.to_owned()),
            ("Task", f.task_name.to_owned()),
            ("Problem", f.error.to_owned()),
            ("Snapshots affected", f.affected.to_string()),
            ("Check", link.clone().unwrap_or_default()),
        ]);
        let fields = fields_of([
            ("verifyId", json!(f.verify_id)),
            ("storageTargetName", json!(f.target_name)),
            ("taskName", json!(f.task_name)),
            ("error", json!(f.error)),
            ("snapshotsAffected", json!(f.affected)),
        ]);
        Self {
            event: Event::VerifyFailed,
            title: format!("[{site_name}] Backup check failed: {}", f.target_name),
            body,
            fields,
            link,
            occurred_at: f.finished_at.to_owned(),
        }
    }

    pub fn test(site_name: &str, channel_name: &str, now: &str) -> Self {
        let fields = fields_of([("channelName", json!(channel_name))]);
        Self {
            event: Event::Test,
            title: format!("[{site_name}] Test notification"),
            body: format!(
                "Channel: {channel_name}\nIf you can read this, {site_name} can reach you here."
            ),
            fields,
            link: None,
            occurred_at: now.to_owned(),
        }
    }
}

/// The header that carries a webhook's signature.
pub const SIGNATURE_HEADER: &str = "X-Stowage-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Stowage-Timestamp";
pub const EVENT_HEADER: &str = "X-Stowage-Event";
pub const DELIVERY_HEADER: &str = "X-Stowage-Delivery";

/// `sha256=<hex HMAC-SHA256(secret, "<unix seconds>.<body>")>`. The timestamp is signed with the
/// body so that a receiver can refuse replays of old messages; it is sent in
/// [`TIMESTAMP_HEADER`].
pub fn sign(secret: &str, unix_secs: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// An HTTP request a channel sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSend {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An email a channel sends: the envelope and the parts the Worker builds the message from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSend {
    pub config: EmailConfig,
    pub subject: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Send {
    Http(HttpSend),
    Email(EmailSend),
}

fn chat_text(m: &Message, limit: usize) -> String {
    let text = format!("{}\n{}", m.title, m.body);
    if text.chars().count() <= limit {
        text
    } else {
        let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn json_post(url: String, body: &Value) -> HttpSend {
    HttpSend {
        url,
        headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
        body: body.to_string().into_bytes(),
    }
}

/// What `config` sends for `message`. `delivery_id` names the attempt for the receiver (webhooks
/// can deduplicate on it); `unix_secs` is the signing time.
pub fn render(
    config: &ChannelConfig,
    message: &Message,
    delivery_id: &str,
    unix_secs: i64,
) -> Send {
    match config {
        ChannelConfig::Webhook(c) => {
            let body = json!({
                "event": message.event.as_str(),
                "title": message.title,
                "body": message.body,
                "fields": message.fields,
                "link": message.link,
                "occurredAt": message.occurred_at,
                "deliveryId": delivery_id,
            })
            .to_string()
            .into_bytes();
            let mut headers = vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("User-Agent".to_owned(), "Stowage-Webhook/1".to_owned()),
                (EVENT_HEADER.to_owned(), message.event.as_str().to_owned()),
                (DELIVERY_HEADER.to_owned(), delivery_id.to_owned()),
                (TIMESTAMP_HEADER.to_owned(), unix_secs.to_string()),
            ];
            if !c.secret.is_empty() {
                headers.push((
                    SIGNATURE_HEADER.to_owned(),
                    sign(&c.secret, unix_secs, &body),
                ));
            }
            Send::Http(HttpSend {
                url: c.url.trim().to_owned(),
                headers,
                body,
            })
        }
        ChannelConfig::Slack(c) => Send::Http(json_post(
            c.webhook_url.trim().to_owned(),
            &json!({ "text": chat_text(message, 3_000) }),
        )),
        ChannelConfig::Discord(c) => Send::Http(json_post(
            c.webhook_url.trim().to_owned(),
            // Discord refuses content over 2000 characters.
            &json!({ "content": chat_text(message, 2_000), "allowed_mentions": { "parse": [] } }),
        )),
        ChannelConfig::Telegram(c) => Send::Http(json_post(
            format!(
                "{}/bot{}/sendMessage",
                c.api_url.trim().trim_end_matches('/'),
                c.bot_token.trim()
            ),
            &json!({
                "chat_id": c.chat_id.trim(),
                "text": chat_text(message, 4_096),
                "disable_web_page_preview": true,
            }),
        )),
        ChannelConfig::Ntfy(c) => {
            let mut send = json_post(
                c.server_url.trim().trim_end_matches('/').to_owned(),
                &json!({
                    "topic": c.topic,
                    "title": message.title,
                    "message": message.body,
                    "priority": if message.event.is_bad() { 4 } else { 3 },
                    "tags": [if message.event.is_bad() { "warning" } else { "white_check_mark" }],
                    "click": message.link.as_deref().filter(|l| l.starts_with("http")),
                }),
            );
            if !c.token.is_empty() {
                send.headers
                    .push(("Authorization".to_owned(), format!("Bearer {}", c.token)));
            }
            Send::Http(send)
        }
        ChannelConfig::Email(c) => Send::Email(EmailSend {
            config: c.clone(),
            subject: message.title.clone(),
            text: format!("{}\n\n— {}\n", message.body, message.occurred_at),
        }),
    }
}

/// When a failed attempt is tried again: 1, 5, 15 and 60 minutes after attempts 1 to 4; `None`
/// after the fifth, when the delivery is given up.
pub fn retry_delay_secs(attempts: u32) -> Option<i64> {
    match attempts {
        0 | 1 => Some(60),
        2 => Some(300),
        3 => Some(900),
        4 => Some(3_600),
        _ => None,
    }
}

/// Whether a backup-failure message goes to a channel that wants `threshold` failures in a row.
pub fn passes_threshold(event: Event, failure_streak: u32, threshold: u32) -> bool {
    event != Event::BackupFailed || failure_streak >= threshold.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: &'static str) -> BackupFacts<'static> {
        BackupFacts {
            record_id: 12,
            task_id: Some(3),
            task_name: "etc",
            node_name: "nas",
            status: RunStatus::parse(status).expect("a run status"),
            bytes: 3 * 1024 * 1024,
            duration_secs: 75,
            error: if status == "success" { "" } else { "disk full" },
            trigger: Trigger::Schedule,
            finished_at: "2026-12-01T10:00:00.000Z",
            failure_streak: if status == "failed" { 2 } else { 0 },
        }
    }

    #[test]
    fn a_backup_message_carries_task_node_size_duration_error_and_link() {
        let m = Message::backup("Stowage", "https://b.example", &facts("failed"));
        assert_eq!(m.event, Event::BackupFailed);
        assert_eq!(m.title, "[Stowage] Backup failed: etc");
        for part in [
            "Task: etc",
            "Node: nas",
            "Size: 3.0 MiB",
            "Duration: 1m 15s",
            "Error: disk full",
            "Failed: 2 runs in a row",
            "Record: https://b.example/backup/records/12",
        ] {
            assert!(m.body.contains(part), "{part} in {}", m.body);
        }
        assert_eq!(m.fields["bytes"], json!(3 * 1024 * 1024));
        let ok = Message::backup("Stowage", "", &facts("success"));
        assert_eq!(ok.event, Event::BackupSuccess);
        assert!(!ok.body.contains("Error"), "{}", ok.body);
        assert_eq!(ok.link.as_deref(), Some("/backup/records/12"));
        assert_eq!(
            Message::backup("S", "", &facts("partial")).event,
            Event::BackupPartial
        );
    }

    #[test]
    fn webhook_signature_covers_timestamp_and_body() {
        let config = ChannelConfig::Webhook(WebhookConfig {
            url: "http://127.0.0.1:9/hook".to_owned(),
            secret: "s3cret".to_owned(),
        });
        let m = Message::test("Stowage", "hook", "2026-12-01T00:00:00.000Z");
        let Send::Http(send) = render(&config, &m, "d1", 1_700_000_000) else {
            panic!("webhooks send HTTP");
        };
        let header = |name: &str| {
            send.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let signature = header(SIGNATURE_HEADER).expect("signed");
        assert_eq!(signature, sign("s3cret", 1_700_000_000, &send.body));
        assert_ne!(signature, sign("s3cret", 1_700_000_001, &send.body));
        assert_ne!(signature, sign("other", 1_700_000_000, &send.body));
        assert_eq!(header(TIMESTAMP_HEADER).as_deref(), Some("1700000000"));
        // RFC 4231 test case 2 checks the HMAC itself: key "Jefe".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let unsigned = ChannelConfig::Webhook(WebhookConfig {
            url: "http://x/".to_owned(),
            secret: String::new(),
        });
        let Send::Http(send) = render(&unsigned, &m, "d1", 1) else {
            panic!("http");
        };
        assert!(send.headers.iter().all(|(k, _)| k != SIGNATURE_HEADER));
    }

    #[test]
    fn configs_are_checked_per_type_and_secrets_masked() {
        let bad = [
            (ChannelType::Webhook, json!({"url": "ftp://x"})),
            (ChannelType::Webhook, json!({"url": "http://x", "extra": 1})),
            (
                ChannelType::Email,
                json!({"host": "h", "from": "a@b.c", "to": []}),
            ),
            (
                ChannelType::Email,
                json!({"host": "h", "from": "nope", "to": ["a@b.c"]}),
            ),
            (
                ChannelType::Email,
                json!({"host": "h", "from": "a@b.c", "to": ["x@y.z\r\nBcc: e@f.g"]}),
            ),
            (
                ChannelType::Email,
                json!({"host": "h", "security": "none", "password": "p", "from": "a@b.c", "to": ["a@b.c"]}),
            ),
            (
                ChannelType::Telegram,
                json!({"botToken": "a/b", "chatId": "1"}),
            ),
            (ChannelType::Ntfy, json!({"topic": "has space"})),
            (ChannelType::Slack, json!({})),
        ];
        for (kind, config) in bad {
            assert!(ChannelConfig::parse(kind, &config).is_err(), "{config}");
        }
        let slack = ChannelConfig::parse(
            ChannelType::Slack,
            &json!({"webhookUrl": "https://hooks.slack.com/services/T/B/xyz"}),
        )
        .expect("valid");
        let (masked, fields) = slack.masked();
        assert_eq!(masked["webhookUrl"], MASK);
        assert_eq!(fields, ["webhookUrl"]);
        assert_eq!(
            slack.scrub("POST https://hooks.slack.com/services/T/B/xyz: 404"),
            format!("POST {MASK}: 404")
        );
        let kept = keep_stored_secrets(&json!({"webhookUrl": MASK}), &slack);
        assert_eq!(
            ChannelConfig::parse(ChannelType::Slack, &kept).expect("kept"),
            slack
        );
    }

    #[test]
    fn chat_channels_put_title_and_body_in_their_own_shapes() {
        let m = Message::backup("S", "", &facts("success"));
        let tg = ChannelConfig::parse(
            ChannelType::Telegram,
            &json!({"botToken": "123:abc", "chatId": "-100"}),
        )
        .expect("valid");
        let Send::Http(send) = render(&tg, &m, "d", 0) else {
            panic!("http");
        };
        assert_eq!(send.url, "https://api.telegram.org/bot123:abc/sendMessage");
        let body: Value = serde_json::from_slice(&send.body).expect("json");
        assert_eq!(body["chat_id"], "-100");
        assert!(
            body["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("[S] Backup succeeded"))
        );
        let ntfy = ChannelConfig::parse(ChannelType::Ntfy, &json!({"topic": "ops", "token": "tk"}))
            .expect("valid");
        let Send::Http(send) = render(&ntfy, &Message::backup("S", "", &facts("failed")), "d", 0)
        else {
            panic!("http");
        };
        let body: Value = serde_json::from_slice(&send.body).expect("json");
        assert_eq!(
            (body["topic"].as_str(), body["priority"].as_i64()),
            (Some("ops"), Some(4))
        );
        assert!(
            send.headers
                .contains(&("Authorization".to_owned(), "Bearer tk".to_owned()))
        );
        let long = Message {
            body: "x".repeat(5_000),
            ..m
        };
        let discord = ChannelConfig::parse(
            ChannelType::Discord,
            &json!({"webhookUrl": "https://discord.com/api/webhooks/1/t"}),
        )
        .expect("valid");
        let Send::Http(send) = render(&discord, &long, "d", 0) else {
            panic!("http");
        };
        let body: Value = serde_json::from_slice(&send.body).expect("json");
        assert_eq!(
            body["content"].as_str().map(|c| c.chars().count()),
            Some(2_000)
        );
    }

    #[test]
    fn thresholds_and_retries() {
        assert!(!passes_threshold(Event::BackupFailed, 1, 2));
        assert!(passes_threshold(Event::BackupFailed, 2, 2));
        assert!(passes_threshold(Event::BackupFailed, 3, 2));
        assert!(passes_threshold(Event::BackupSuccess, 0, 3));
        assert!(passes_threshold(Event::BackupFailed, 1, 0));
        let delays: Vec<Option<i64>> = (1..=5).map(retry_delay_secs).collect();
        assert_eq!(delays, [Some(60), Some(300), Some(900), Some(3_600), None]);
    }

    #[test]
    fn events_parse_and_refuse_unknown_names() {
        let events = parse_events(&[
            "backup_failed".into(),
            "node_offline".into(),
            "backup_failed".into(),
        ])
        .expect("valid");
        assert_eq!(events, [Event::BackupFailed, Event::NodeOffline]);
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&["test".into()]).is_err());
        assert!(parse_events(&["backup_done".into()]).is_err());
    }

    #[test]
    fn a_kept_channel_secret_stays_bound_to_its_destination() {
        let cases = [
            (
                ChannelType::Telegram,
                json!({"botToken": "123:abc", "chatId": "42"}),
                ("apiUrl", json!("https://attacker.example")),
                ("chatId", json!("43")),
            ),
            (
                ChannelType::Ntfy,
                json!({"topic": "backups", "token": "tk_1"}),
                ("serverUrl", json!("https://attacker.example")),
                ("topic", json!("other")),
            ),
            (
                ChannelType::Email,
                json!({"host": "smtp.example", "username": "u", "password": "p", "from": "a@example.com", "to": ["b@example.com"]}),
                ("host", json!("attacker.example")),
                ("to", json!(["c@example.com"])),
            ),
            (
                ChannelType::Email,
                json!({"host": "smtp.example", "username": "u", "password": "p", "from": "a@example.com", "to": ["b@example.com"]}),
                ("security", json!("tls")),
                ("from", json!("x@example.com")),
            ),
            (
                ChannelType::Webhook,
                json!({"url": "https://hooks.example/x", "secret": "signing"}),
                ("url", json!("https://attacker.example/x")),
                ("url", json!("https://hooks.example/x")),
            ),
        ];
        for (kind, stored, moved, harmless) in cases {
            let stored_config = ChannelConfig::parse(kind, &stored).expect("stored");
            let masked = stored_config.masked().0;
            let mut same = masked.clone();
            same[harmless.0] = harmless.1.clone();
            let kept = ChannelConfig::parse_update(kind, &same, &stored_config)
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(kept.secret_values(), stored_config.secret_values());
            let mut elsewhere = masked.clone();
            elsewhere[moved.0] = moved.1.clone();
            let err = ChannelConfig::parse_update(kind, &elsewhere, &stored_config)
                .expect_err(&format!("{kind:?} {}", moved.0));
            assert!(err.reason.contains("send the secret again"), "{err}");
            let mut resent = stored.clone();
            resent[moved.0] = moved.1.clone();
            assert!(ChannelConfig::parse_update(kind, &resent, &stored_config).is_ok());
        }
    }
}
