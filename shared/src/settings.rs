//! System settings: a fixed, typed list. `GET /api/settings` shows every one of them with its
//! current value; `PUT /api/settings` changes the keys it names and refuses any key not on the list
//! (or a value of the wrong type or range) with the key's name, so a typo is never stored silently.
//!
//! No secret is a setting: the Worker's keys live in Worker secrets, and notifier credentials are
//! sealed with their channel. Stored values that no longer parse (written by a later version, say)
//! fall back to the default instead of breaking every read.

use crate::nodes::Timings;
use crate::validate::FieldError;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The console's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Language {
    #[serde(rename = "en")]
    English,
    #[serde(rename = "zh-CN")]
    SimplifiedChinese,
}

/// Every setting, with its current value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Shown in the console and in every notification's title.
    pub site_name: String,
    /// The console's public address (`https://backups.example.com`), for links in notifications;
    /// empty means links are paths only.
    pub site_url: String,
    /// The time zone new tasks and the console start from (IANA name).
    pub time_zone: String,
    pub language: Language,
    /// Days live-log lines of finished runs and restores, and notification deliveries, are kept;
    /// 0 keeps them for ever.
    pub log_retention_days: u32,
    /// Days audit rows are kept; 0 keeps them for ever.
    pub audit_retention_days: u32,
    /// The channels tasks' events go to. Empty means every enabled channel subscribed to the
    /// event. Node and storage events always go to every subscribed channel.
    pub default_notification_channels: Vec<i64>,
    /// Agent timings; `null` keeps the deployment's value (`HEARTBEAT_SECS` and so on).
    pub agent_heartbeat_secs: Option<u32>,
    pub agent_poll_secs: Option<u32>,
    pub node_offline_after_secs: Option<u32>,
    /// Days between prunes of each repository (removing the data only forgotten snapshots
    /// used); 0 never prunes on a schedule.
    #[serde(default = "default_prune_days")]
    pub repository_prune_days: u32,
    /// Days between checks of each whole repository (structure, and a share of the data read
    /// back); 0 never checks on a schedule.
    #[serde(default = "default_check_days")]
    pub repository_check_days: u32,
    /// Percent of a repository's data a scheduled check reads back (0 to 100).
    #[serde(default = "default_check_read_percent")]
    pub repository_check_read_percent: u8,
}

fn default_prune_days() -> u32 {
    7
}

fn default_check_days() -> u32 {
    7
}

fn default_check_read_percent() -> u8 {
    10
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            site_name: "Stowage".to_owned(),
            site_url: String::new(),
            time_zone: "UTC".to_owned(),
            language: Language::English,
            log_retention_days: 90,
            audit_retention_days: 365,
            default_notification_channels: Vec::new(),
            agent_heartbeat_secs: None,
            agent_poll_secs: None,
            node_offline_after_secs: None,
            repository_prune_days: default_prune_days(),
            repository_check_days: default_check_days(),
            repository_check_read_percent: default_check_read_percent(),
        }
    }
}

/// The keys a change touched, with their new JSON values.
pub type Changed = Vec<(&'static str, Value)>;

/// The keys, as the API spells them.
pub const KEYS: &[&str] = &[
    "siteName",
    "siteUrl",
    "timeZone",
    "language",
    "logRetentionDays",
    "auditRetentionDays",
    "defaultNotificationChannels",
    "agentHeartbeatSecs",
    "agentPollSecs",
    "nodeOfflineAfterSecs",
    "repositoryPruneDays",
    "repositoryCheckDays",
    "repositoryCheckReadPercent",
];

fn decode<T: serde::de::DeserializeOwned>(
    key: &'static str,
    value: &Value,
) -> Result<T, FieldError> {
    serde_json::from_value(value.clone()).map_err(|e| {
        let text = e.to_string();
        // serde quotes the value it refused; keep only what it expected.
        let reason = match text.split_once(", expected ") {
            Some((_, expected)) => format!("wrong type, expected {expected}"),
            None => text,
        };
        FieldError::new(key, reason)
    })
}

fn days(key: &'static str, value: &Value) -> Result<u32, FieldError> {
    let n: u32 = decode(key, value)?;
    if n > 36_500 {
        return Err(FieldError::new(
            key,
            "must be 0 (keep for ever) to 36500 days",
        ));
    }
    Ok(n)
}

fn seconds(key: &'static str, value: &Value) -> Result<Option<u32>, FieldError> {
    let n: Option<u32> = decode(key, value)?;
    if n.is_some_and(|n| !(1..=3_600).contains(&n)) {
        return Err(FieldError::new(
            key,
            "must be 1 to 3600 seconds, or null for the deployment's value",
        ));
    }
    Ok(n)
}

fn site_url(value: &Value) -> Result<String, FieldError> {
    let url: String = decode("siteUrl", value)?;
    let url = url.trim().trim_end_matches('/').to_owned();
    let ok = url.is_empty()
        || ((url.starts_with("https://") || url.starts_with("http://"))
            && url.len() <= 512
            && !url.chars().any(|c| c.is_control() || c.is_whitespace()));
    if ok {
        Ok(url)
    } else {
        Err(FieldError::new(
            "siteUrl",
            "must be empty or an http(s) address such as https://backups.example.com",
        ))
    }
}

impl Settings {
    /// Sets one key from its JSON value, checked.
    fn set(&mut self, key: &str, value: &Value) -> Result<(), FieldError> {
        match key {
            "siteName" => {
                let name: String = decode("siteName", value)?;
                let name = name.trim().to_owned();
                if !(1..=64).contains(&name.chars().count()) || name.chars().any(char::is_control) {
                    return Err(FieldError::new(
                        "siteName",
                        "must be 1 to 64 characters without control characters",
                    ));
                }
                self.site_name = name;
            }
            "siteUrl" => self.site_url = site_url(value)?,
            "timeZone" => {
                let zone: String = decode("timeZone", value)?;
                if zone.trim().parse::<chrono_tz::Tz>().is_err() {
                    return Err(FieldError::new(
                        "timeZone",
                        "must be an IANA time zone such as Europe/Berlin, America/New_York or UTC",
                    ));
                }
                self.time_zone = zone.trim().to_owned();
            }
            "language" => {
                self.language = decode("language", value)
                    .map_err(|_| FieldError::new("language", "must be \"en\" or \"zh-CN\""))?;
            }
            "logRetentionDays" => self.log_retention_days = days("logRetentionDays", value)?,
            "auditRetentionDays" => self.audit_retention_days = days("auditRetentionDays", value)?,
            "defaultNotificationChannels" => {
                let mut ids: Vec<i64> = decode("defaultNotificationChannels", value)?;
                if ids.iter().any(|id| *id <= 0) || ids.len() > 50 {
                    return Err(FieldError::new(
                        "defaultNotificationChannels",
                        "must be a list of at most 50 notification channel ids",
                    ));
                }
                ids.sort_unstable();
                ids.dedup();
                self.default_notification_channels = ids;
            }
            "agentHeartbeatSecs" => {
                self.agent_heartbeat_secs = seconds("agentHeartbeatSecs", value)?
            }
            "agentPollSecs" => self.agent_poll_secs = seconds("agentPollSecs", value)?,
            "nodeOfflineAfterSecs" => {
                self.node_offline_after_secs = seconds("nodeOfflineAfterSecs", value)?;
            }
            "repositoryPruneDays" => {
                let n: u32 = decode("repositoryPruneDays", value)?;
                if n > 365 {
                    return Err(FieldError::new(
                        "repositoryPruneDays",
                        "must be 0 (never) to 365 days",
                    ));
                }
                self.repository_prune_days = n;
            }
            "repositoryCheckDays" => {
                let n: u32 = decode("repositoryCheckDays", value)?;
                if n > 365 {
                    return Err(FieldError::new(
                        "repositoryCheckDays",
                        "must be 0 (never) to 365 days",
                    ));
                }
                self.repository_check_days = n;
            }
            "repositoryCheckReadPercent" => {
                let n: u8 = decode("repositoryCheckReadPercent", value)?;
                if n > 100 {
                    return Err(FieldError::new(
                        "repositoryCheckReadPercent",
                        "must be 0 to 100 (percent of the data read back)",
                    ));
                }
                self.repository_check_read_percent = n;
            }
            _ => {
                return Err(FieldError::new(
                    "settings",
                    format!(
                        "unknown setting {key:?}; the settings are {}",
                        KEYS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The stored rows over the defaults. A row that no longer parses keeps the default.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Self {
        let mut settings = Self::default();
        for (key, value) in rows {
            let mut next = settings.clone();
            if next.set(key, value).is_ok() {
                settings = next;
            }
        }
        settings
    }

    /// Applies a `PUT` body: every key must be known and valid, or nothing changes. Returns the
    /// new settings and the keys whose value changed, with their new JSON values.
    pub fn patched(&self, body: &Value) -> Result<(Self, Changed), FieldError> {
        let Some(map) = body.as_object() else {
            return Err(FieldError::new(
                "settings",
                "the body must be a JSON object of settings to change",
            ));
        };
        let mut next = self.clone();
        for (key, value) in map {
            next.set(key, value)?;
        }
        let before = self.to_map();
        let after = next.to_map();
        let changed = KEYS
            .iter()
            .filter(|k| before.get(**k) != after.get(**k))
            .map(|k| (*k, after.get(*k).cloned().unwrap_or(Value::Null)))
            .collect();
        Ok((next, changed))
    }

    fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// The deployment's agent timings with these settings' overrides.
    pub fn timings(&self, base: Timings) -> Timings {
        let secs = |v: Option<u32>, d: Duration| v.map_or(d, |s| Duration::seconds(i64::from(s)));
        Timings {
            heartbeat: secs(self.agent_heartbeat_secs, base.heartbeat),
            poll: secs(self.agent_poll_secs, base.poll),
            offline_after: secs(self.node_offline_after_secs, base.offline_after),
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_key_is_listed_and_serialised() {
        let map = Settings::default().to_map();
        let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut listed = KEYS.to_vec();
        listed.sort_unstable();
        assert_eq!(keys, listed);
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_reports_it() {
        let (next, changed) = Settings::default()
            .patched(&json!({"siteName": " Fleet ", "auditRetentionDays": 30, "language": "en"}))
            .expect("valid");
        assert_eq!(next.site_name, "Fleet");
        assert_eq!(next.audit_retention_days, 30);
        assert_eq!(next.log_retention_days, 90);
        let keys: Vec<&str> = changed.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["siteName", "auditRetentionDays"]);
    }

    #[test]
    fn bad_keys_and_values_are_refused_by_name() {
        let cases = [
            (json!({"jwtSecret": "x"}), "settings"),
            (json!({"siteName": ""}), "siteName"),
            (json!({"siteName": 3}), "siteName"),
            (json!({"timeZone": "Mars/Olympus"}), "timeZone"),
            (json!({"language": "fr"}), "language"),
            (json!({"logRetentionDays": -1}), "logRetentionDays"),
            (json!({"auditRetentionDays": 40000}), "auditRetentionDays"),
            (json!({"siteUrl": "ftp://x"}), "siteUrl"),
            (
                json!({"defaultNotificationChannels": [0]}),
                "defaultNotificationChannels",
            ),
            (json!({"agentPollSecs": 0}), "agentPollSecs"),
            (json!([1]), "settings"),
        ];
        for (body, field) in cases {
            let err = Settings::default().patched(&body).expect_err("refused");
            assert_eq!(err.field, field, "{body}");
        }
        let err = Settings::default()
            .patched(&json!({"nope": 1}))
            .expect_err("unknown");
        assert!(err.reason.contains("siteName"), "{err}");
    }

    #[test]
    fn stored_rows_override_defaults_and_bad_rows_are_skipped() {
        let name = json!("Home");
        let bad = json!("not a number");
        let s = Settings::from_rows([("siteName", &name), ("logRetentionDays", &bad)]);
        assert_eq!(s.site_name, "Home");
        assert_eq!(s.log_retention_days, 90);
    }

    #[test]
    fn timing_overrides_apply_over_the_deployment() {
        let base = Timings::default();
        let s = Settings {
            agent_poll_secs: Some(7),
            ..Settings::default()
        };
        let t = s.timings(base);
        assert_eq!(t.poll, Duration::seconds(7));
        assert_eq!(t.heartbeat, base.heartbeat);
        assert_eq!(t.lease, base.lease);
    }
}
