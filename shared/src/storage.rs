//! Storage targets: the typed, validated configuration of each backend type, and which of its fields
//! are secrets (masked in every response, kept when an update sends the mask back).
//!
//! The API carries a target as `{type, config}` with `config` a JSON object; [`StorageConfig::parse`]
//! turns that into one typed variant exactly once, naming the offending field when it cannot.

use crate::validate::FieldError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a masked secret looks like in a response; sending it back means "keep the stored value".
pub const MASK: &str = "********";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageType {
    LocalDisk,
    S3,
    Webdav,
    Sftp,
    Ftp,
    GoogleDrive,
    AzureBlob,
    Rclone,
}

impl StorageType {
    pub const ALL: [StorageType; 8] = [
        StorageType::LocalDisk,
        StorageType::S3,
        StorageType::Webdav,
        StorageType::Sftp,
        StorageType::Ftp,
        StorageType::GoogleDrive,
        StorageType::AzureBlob,
        StorageType::Rclone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::LocalDisk => "local_disk",
            StorageType::S3 => "s3",
            StorageType::Webdav => "webdav",
            StorageType::Sftp => "sftp",
            StorageType::Ftp => "ftp",
            StorageType::GoogleDrive => "google_drive",
            StorageType::AzureBlob => "azure_blob",
            StorageType::Rclone => "rclone",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Targets of this type are run by the `rclone` binary on the agent (Google Drive goes through
    /// rclone's `drive` backend, whose resumable uploads stream), so only nodes with rclone can.
    pub fn needs_rclone(self) -> bool {
        matches!(self, StorageType::Rclone | StorageType::GoogleDrive)
    }

    /// The config keys that hold secrets. For `rclone`, option names are checked with
    /// [`is_secret_rclone_option`] instead, since its keys are open-ended.
    pub fn secret_fields(self) -> &'static [&'static str] {
        match self {
            StorageType::LocalDisk | StorageType::Rclone => &[],
            StorageType::S3 => &["accessKeyId", "secretAccessKey"],
            StorageType::Webdav | StorageType::Ftp => &["password"],
            StorageType::Sftp => &["password", "privateKey", "privateKeyPassphrase"],
            StorageType::GoogleDrive => &["clientSecret", "refreshToken"],
            StorageType::AzureBlob => &["accountKey"],
        }
    }
}

/// rclone option names that carry secrets: rclone marks them `IsPassword` or `Sensitive`, and their
/// names follow these patterns across backends (`pass`, `password`, `secret_access_key`, `token`,
/// `client_secret`, `key`, `sas_url`, …).
pub fn is_secret_rclone_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "pass",
        "secret",
        "token",
        "key",
        "sas_url",
        "bearer",
        "credentials",
    ]
    .iter()
    .any(|p| k.contains(p))
        && !matches!(
            k.as_str(),
            "key_use_agent" | "pubkey_file" | "known_hosts_file"
        )
}

/// S3-compatible services with their usual endpoint shape, so users pick a name, not a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum S3Preset {
    Aws,
    CloudflareR2,
    Minio,
    BackblazeB2,
    Wasabi,
    AlibabaOss,
    TencentCos,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalDiskConfig {
    /// A directory on the node that runs the work.
    pub base_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Config {
    #[serde(default)]
    pub preset: Option<S3Preset>,
    /// Required except for AWS, where it follows from the region.
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default)]
    pub force_path_style: bool,
    /// Key prefix inside the bucket.
    #[serde(default)]
    pub prefix: String,
}

/// Where an S3 target's requests go: one answer for the agent's client and the Worker's
/// presigned links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Address {
    pub endpoint: String,
    pub region: String,
    /// `https://<bucket>.<host>/key` instead of `https://<host>/<bucket>/key`.
    pub virtual_host: bool,
}

impl S3Config {
    pub fn address(&self) -> S3Address {
        let region = if self.region.is_empty() {
            "us-east-1".to_owned()
        } else {
            self.region.clone()
        };
        let endpoint = match (self.preset, self.endpoint.is_empty()) {
            (Some(S3Preset::Aws), true) => format!("https://s3.{region}.amazonaws.com"),
            _ => self.endpoint.clone(),
        };
        let virtual_host = !self.force_path_style
            && matches!(
                self.preset,
                Some(S3Preset::Aws | S3Preset::AlibabaOss | S3Preset::TencentCos)
            );
        S3Address {
            endpoint,
            region,
            virtual_host,
        }
    }

    /// The object key of a path inside the target (under its prefix).
    pub fn key(&self, path: &str) -> String {
        let prefix = self.prefix.trim_matches('/');
        let path = path.trim_start_matches('/');
        if prefix.is_empty() {
            path.to_owned()
        } else {
            format!("{prefix}/{path}")
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebdavConfig {
    pub endpoint: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub base_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SftpConfig {
    pub host: String,
    #[serde(default = "default_sftp_port")]
    pub port: u16,
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// An OpenSSH private key (PEM). One of password or private key is required.
    #[serde(default)]
    pub private_key: String,
    #[serde(default)]
    pub private_key_passphrase: String,
    /// The server's public host key (`ssh-ed25519 AAAA…`); required unless host-key checking is
    /// turned off explicitly.
    #[serde(default)]
    pub host_key: String,
    #[serde(default)]
    pub insecure_skip_host_key_check: bool,
    #[serde(default)]
    pub base_path: String,
}

fn default_sftp_port() -> u16 {
    22
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FtpConfig {
    pub host: String,
    #[serde(default = "default_ftp_port")]
    pub port: u16,
    #[serde(default = "default_ftp_user")]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub base_path: String,
    /// Explicit FTPS (AUTH TLS).
    #[serde(default, rename = "useTLS")]
    pub use_tls: bool,
}

fn default_ftp_port() -> u16 {
    21
}

fn default_ftp_user() -> String {
    "anonymous".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GoogleDriveConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Filled in by the OAuth flow (`google-drive/complete`), not typed by users.
    #[serde(default)]
    pub refresh_token: String,
    #[serde(default)]
    pub folder_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureBlobConfig {
    pub account: String,
    pub account_key: String,
    pub container: String,
    /// Defaults to `https://<account>.blob.core.windows.net`.
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RcloneConfig {
    /// An rclone backend name as `rclone help backends` lists it (`sftp`, `b2`, `onedrive`, …).
    pub backend: String,
    /// Backend options by rclone's own names (`host`, `user`, `pass`, …).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Path inside the remote.
    #[serde(default)]
    pub root: String,
}

/// One storage target's configuration, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    LocalDisk(LocalDiskConfig),
    S3(S3Config),
    Webdav(WebdavConfig),
    Sftp(SftpConfig),
    Ftp(FtpConfig),
    GoogleDrive(GoogleDriveConfig),
    AzureBlob(AzureBlobConfig),
    Rclone(RcloneConfig),
}

/// A problem with one key of a `config` object (storage targets and notification channels).
pub(crate) fn field(name: &str, reason: impl Into<String>) -> FieldError {
    FieldError::new("config", format!("{name}: {}", reason.into()))
}

/// Decodes a `config` object into its typed struct, naming the key that is wrong and never
/// quoting the value (it may be a secret).
pub(crate) fn decode<T: DeserializeOwned>(config: &Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(config).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        // serde's text for a wrong type quotes the value sent; only the expectation is kept.
        let reason = match inner.split_once(", expected ") {
            Some((_, expected)) if inner.starts_with("invalid") => {
                format!("wrong type, expected {expected}")
            }
            _ => inner,
        };
        if path == "." {
            FieldError::new("config", reason)
        } else {
            field(&path, reason)
        }
    })
}

fn required(name: &str, value: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        Err(field(name, "is required"))
    } else {
        Ok(())
    }
}

fn url(name: &str, value: &str) -> Result<(), FieldError> {
    required(name, value)?;
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(())
    } else {
        Err(field(name, "must be an http:// or https:// URL"))
    }
}

/// A host key as `ssh-keyscan`, `known_hosts` or `ssh-keygen -l` show it: an algorithm name followed
/// by base64 (optionally after host names), or `SHA256:` and 43 base64 characters. The agent checks
/// the key itself when it connects; this catches pasting the wrong thing.
fn is_host_key(text: &str) -> bool {
    let base64 = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    };
    let text = text.trim();
    if let Some(fingerprint) = text.strip_prefix("SHA256:") {
        return fingerprint.trim_end_matches('=').len() == 43 && base64(fingerprint);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    words.windows(2).any(|pair| {
        (pair[0].starts_with("ssh-") || pair[0].starts_with("ecdsa-sha2-")) && base64(pair[1])
    })
}

fn no_controls(name: &str, value: &str) -> Result<(), FieldError> {
    if value.chars().any(char::is_control) {
        Err(field(name, "must not contain control characters"))
    } else {
        Ok(())
    }
}

impl StorageConfig {
    /// Parses and checks the config of a target of type `kind`.
    pub fn parse(kind: StorageType, config: &Value) -> Result<Self, FieldError> {
        if !config.is_object() {
            return Err(FieldError::new("config", "must be a JSON object"));
        }
        let parsed = match kind {
            StorageType::LocalDisk => {
                let c: LocalDiskConfig = decode(config)?;
                if !c.base_path.starts_with('/') {
                    return Err(field("basePath", "must be an absolute path on the node"));
                }
                no_controls("basePath", &c.base_path)?;
                StorageConfig::LocalDisk(c)
            }
            StorageType::S3 => {
                let c: S3Config = decode(config)?;
                required("bucket", &c.bucket)?;
                required("accessKeyId", &c.access_key_id)?;
                required("secretAccessKey", &c.secret_access_key)?;
                match c.preset {
                    Some(S3Preset::Aws) if c.endpoint.is_empty() => required("region", &c.region)?,
                    _ => url("endpoint", &c.endpoint)?,
                }
                StorageConfig::S3(c)
            }
            StorageType::Webdav => {
                let c: WebdavConfig = decode(config)?;
                url("endpoint", &c.endpoint)?;
                StorageConfig::Webdav(c)
            }
            StorageType::Sftp => {
                let c: SftpConfig = decode(config)?;
                required("host", &c.host)?;
                required("username", &c.username)?;
                if c.password.is_empty() && c.private_key.is_empty() {
                    return Err(field("password", "a password or a privateKey is required"));
                }
                if c.host_key.trim().is_empty() && !c.insecure_skip_host_key_check {
                    return Err(field(
                        "hostKey",
                        "is required to check the server's identity (or set insecureSkipHostKeyCheck)",
                    ));
                }
                if !c.host_key.trim().is_empty() && !is_host_key(&c.host_key) {
                    return Err(field(
                        "hostKey",
                        "must be the server's public key (`ssh-ed25519 AAAA…`, as in known_hosts or ssh-keyscan) or its SHA256: fingerprint",
                    ));
                }
                if c.port == 0 {
                    return Err(field("port", "must be 1 to 65535"));
                }
                StorageConfig::Sftp(c)
            }
            StorageType::Ftp => {
                let c: FtpConfig = decode(config)?;
                required("host", &c.host)?;
                if c.port == 0 {
                    return Err(field("port", "must be 1 to 65535"));
                }
                StorageConfig::Ftp(c)
            }
            StorageType::GoogleDrive => {
                let c: GoogleDriveConfig = decode(config)?;
                required("clientId", &c.client_id)?;
                required("clientSecret", &c.client_secret)?;
                required("refreshToken", &c.refresh_token)?;
                StorageConfig::GoogleDrive(c)
            }
            StorageType::AzureBlob => {
                let c: AzureBlobConfig = decode(config)?;
                required("account", &c.account)?;
                required("accountKey", &c.account_key)?;
                required("container", &c.container)?;
                if !c.endpoint.is_empty() {
                    url("endpoint", &c.endpoint)?;
                }
                StorageConfig::AzureBlob(c)
            }
            StorageType::Rclone => {
                let c: RcloneConfig = decode(config)?;
                required("backend", &c.backend)?;
                if !c
                    .backend
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
                {
                    return Err(field("backend", "must be an rclone backend name"));
                }
                for (key, value) in &c.options {
                    if !key
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                    {
                        return Err(field(
                            &format!("options.{key}"),
                            "is not an rclone option name",
                        ));
                    }
                    no_controls(&format!("options.{key}"), value)?;
                }
                crate::rclone::check_remote(&c.backend, &c.options)
                    .map_err(|(name, reason)| field(&name, reason))?;
                StorageConfig::Rclone(c)
            }
        };
        Ok(parsed)
    }

    pub fn kind(&self) -> StorageType {
        match self {
            StorageConfig::LocalDisk(_) => StorageType::LocalDisk,
            StorageConfig::S3(_) => StorageType::S3,
            StorageConfig::Webdav(_) => StorageType::Webdav,
            StorageConfig::Sftp(_) => StorageType::Sftp,
            StorageConfig::Ftp(_) => StorageType::Ftp,
            StorageConfig::GoogleDrive(_) => StorageType::GoogleDrive,
            StorageConfig::AzureBlob(_) => StorageType::AzureBlob,
            StorageConfig::Rclone(_) => StorageType::Rclone,
        }
    }

    /// The config as JSON, secrets included (for sealing and for the agent that runs the work).
    pub fn to_json(&self) -> Value {
        let value = match self {
            StorageConfig::LocalDisk(c) => serde_json::to_value(c),
            StorageConfig::S3(c) => serde_json::to_value(c),
            StorageConfig::Webdav(c) => serde_json::to_value(c),
            StorageConfig::Sftp(c) => serde_json::to_value(c),
            StorageConfig::Ftp(c) => serde_json::to_value(c),
            StorageConfig::GoogleDrive(c) => serde_json::to_value(c),
            StorageConfig::AzureBlob(c) => serde_json::to_value(c),
            StorageConfig::Rclone(c) => serde_json::to_value(c),
        };
        // Plain structs of strings, numbers and booleans always serialise.
        value.unwrap_or(Value::Null)
    }

    /// The config as a response shows it, with every non-empty secret replaced by [`MASK`], and
    /// the names of the fields that are secrets for this type.
    pub fn masked(&self) -> (Value, Vec<String>) {
        let mut value = self.to_json();
        let mut fields = Vec::new();
        if let StorageConfig::Rclone(c) = self {
            for key in c.options.keys().filter(|k| is_secret_rclone_option(k)) {
                fields.push(format!("options.{key}"));
                if let Some(v) = value.pointer_mut(&format!("/options/{key}")) {
                    mask_value(v);
                }
            }
        } else if let Some(obj) = value.as_object_mut() {
            for key in self.kind().secret_fields() {
                fields.push((*key).to_owned());
                if let Some(v) = obj.get_mut(*key) {
                    mask_value(v);
                }
            }
        }
        (value, fields)
    }
}

impl StorageConfig {
    /// The non-empty secret values of this config.
    pub fn secret_values(&self) -> Vec<String> {
        let json = self.to_json();
        let pointers: Vec<String> = match self {
            StorageConfig::Rclone(c) => c
                .options
                .keys()
                .filter(|k| is_secret_rclone_option(k))
                .map(|k| format!("/options/{k}"))
                .collect(),
            _ => self
                .kind()
                .secret_fields()
                .iter()
                .map(|k| format!("/{k}"))
                .collect(),
        };
        pointers
            .iter()
            .filter_map(|p| json.pointer(p).and_then(Value::as_str))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// `text` with every secret of this config replaced by [`MASK`]: backends like to quote the
    /// credentials they refused (an S3 error names the access key it did not know).
    pub fn scrub(&self, text: &str) -> String {
        let mut secrets = self.secret_values();
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.iter().fold(text.to_owned(), |acc, secret| {
            acc.replace(secret.as_str(), MASK)
        })
    }
}

fn mask_value(v: &mut Value) {
    if v.as_str().is_some_and(|s| !s.is_empty()) {
        *v = Value::String(MASK.to_owned());
    }
}

/// Where a stored secret may go without being sent again: the fields that decide which server
/// receives it (or whether it travels in the clear). Changing any of them while keeping a masked
/// secret would hand the secret to a server it was never entered for.
pub(crate) fn destination_fields(kind: StorageType) -> &'static [&'static str] {
    match kind {
        StorageType::LocalDisk | StorageType::GoogleDrive => &[],
        StorageType::S3 => &["preset", "endpoint", "region", "bucket"],
        StorageType::Webdav => &["endpoint"],
        StorageType::Sftp => &["host", "port", "hostKey", "insecureSkipHostKeyCheck"],
        StorageType::Ftp => &["host", "port", "useTLS"],
        StorageType::AzureBlob => &["account", "endpoint", "container"],
        // Open-ended: see `StorageConfig::rclone_destination`.
        StorageType::Rclone => &[],
    }
}

/// Which of `fields` (JSON keys) differ between two configs as JSON.
pub(crate) fn changed_fields<'a>(new: &Value, old: &Value, fields: &[&'a str]) -> Vec<&'a str> {
    fields
        .iter()
        .copied()
        .filter(|f| new.get(*f) != old.get(*f))
        .collect()
}

/// The refusal of an update that keeps `secret` while `changed` moves where it would go.
pub(crate) fn secret_bound(secret: &str, changed: &[&str]) -> FieldError {
    field(
        secret,
        format!(
            "is kept only for the destination it was entered for; {} changed, so send the secret again",
            changed.join(", ")
        ),
    )
}

impl StorageConfig {
    /// The non-secret parts of an rclone remote (its backend and every other option): for an
    /// open-ended backend any of them may decide where its secrets go.
    fn rclone_destination(&self) -> Option<(String, BTreeMap<String, String>)> {
        match self {
            StorageConfig::Rclone(c) => Some((
                c.backend.clone(),
                c.options
                    .iter()
                    .filter(|(k, _)| !is_secret_rclone_option(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )),
            _ => None,
        }
    }

    /// An update of `stored` with `incoming` (a `config` object): secrets left empty or masked
    /// keep their stored values, but only while the destination they were entered for stays the
    /// same; otherwise the update is refused, naming the secret to send again.
    pub fn parse_update(
        kind: StorageType,
        incoming: &Value,
        stored: &StorageConfig,
    ) -> Result<Self, FieldError> {
        let kept = kept_secrets(incoming, stored);
        let parsed = Self::parse(kind, &keep_stored_secrets(incoming, stored))?;
        let Some(secret) = kept.first() else {
            return Ok(parsed);
        };
        let changed = match (parsed.rclone_destination(), stored.rclone_destination()) {
            (Some((new_backend, new)), Some((old_backend, old))) => {
                let mut changed: Vec<String> = Vec::new();
                if new_backend != old_backend {
                    changed.push("backend".to_owned());
                }
                let keys: std::collections::BTreeSet<&String> =
                    new.keys().chain(old.keys()).collect();
                changed.extend(
                    keys.into_iter()
                        .filter(|k| new.get(*k) != old.get(*k))
                        .map(|k| format!("options.{k}")),
                );
                changed
            }
            _ => changed_fields(
                &parsed.to_json(),
                &stored.to_json(),
                destination_fields(kind),
            )
            .into_iter()
            .map(str::to_owned)
            .collect(),
        };
        if changed.is_empty() {
            Ok(parsed)
        } else {
            let changed: Vec<&str> = changed.iter().map(String::as_str).collect();
            Err(secret_bound(secret, &changed))
        }
    }
}

/// The secrets (as config paths: `password`, `options.pass`) an update would take from `stored`
/// because `incoming` left them empty, masked or out.
fn kept_secrets(incoming: &Value, stored: &StorageConfig) -> Vec<String> {
    let is_kept = |sent: Option<&Value>| {
        sent.is_none_or(|v| v.is_null() || v.as_str().is_some_and(|s| s.is_empty() || s == MASK))
    };
    let stored_json = stored.to_json();
    let non_empty = |pointer: &str| {
        stored_json
            .pointer(pointer)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    match stored {
        StorageConfig::Rclone(c) => c
            .options
            .keys()
            .filter(|k| is_secret_rclone_option(k))
            .filter(|k| {
                let pointer = format!("/options/{k}");
                non_empty(&pointer)
                    && incoming.pointer(&pointer).is_some()
                    && is_kept(incoming.pointer(&pointer))
            })
            .map(|k| format!("options.{k}"))
            .collect(),
        _ => stored
            .kind()
            .secret_fields()
            .iter()
            .filter(|k| non_empty(&format!("/{k}")) && is_kept(incoming.get(**k)))
            .map(|k| (*k).to_owned())
            .collect(),
    }
}

/// For an update: every secret the client left empty or sent back as [`MASK`] takes the stored
/// value, so editing a name never needs the password again.
fn keep_stored_secrets(incoming: &Value, stored: &StorageConfig) -> Value {
    let mut merged = incoming.clone();
    let stored_json = stored.to_json();
    let keep = |slot: Option<&mut Value>, old: Option<&Value>| {
        if let (Some(slot), Some(old)) = (slot, old)
            && slot.as_str().is_none_or(|s| s.is_empty() || s == MASK)
        {
            *slot = old.clone();
        }
    };
    match stored {
        StorageConfig::Rclone(c) => {
            for key in c.options.keys().filter(|k| is_secret_rclone_option(k)) {
                let pointer = format!("/options/{key}");
                if merged.pointer(&pointer).is_some() {
                    keep(merged.pointer_mut(&pointer), stored_json.pointer(&pointer));
                }
            }
        }
        _ => {
            let Some(obj) = merged.as_object_mut() else {
                return merged;
            };
            for key in stored.kind().secret_fields() {
                let slot = obj
                    .entry((*key).to_owned())
                    .or_insert(Value::String(String::new()));
                keep(Some(slot), stored_json.get(*key));
            }
        }
    }
    merged
}

/// Removes the keys of a JSON object whose value is null (clients often send `null` for "unset").
pub fn drop_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3() -> Value {
        json!({
            "preset": "minio", "endpoint": "http://127.0.0.1:9000", "bucket": "backups",
            "accessKeyId": "AKIA123", "secretAccessKey": "s3cr3t", "forcePathStyle": true
        })
    }

    #[test]
    fn types_round_trip() {
        for t in StorageType::ALL {
            assert_eq!(StorageType::parse(t.as_str()), Some(t));
        }
        assert_eq!(StorageType::parse("dropbox"), None);
    }

    #[test]
    fn valid_configs_parse() {
        let cases = [
            (StorageType::LocalDisk, json!({"basePath": "/srv/backups"})),
            (StorageType::S3, s3()),
            (
                StorageType::S3,
                json!({"preset": "aws", "region": "eu-west-1", "bucket": "b", "accessKeyId": "a", "secretAccessKey": "s"}),
            ),
            (
                StorageType::Webdav,
                json!({"endpoint": "https://dav.example/remote.php", "username": "u", "password": "p"}),
            ),
            (
                StorageType::Sftp,
                json!({"host": "h", "username": "u", "password": "p", "hostKey": "ssh-ed25519 AAAA"}),
            ),
            (
                StorageType::Sftp,
                json!({"host": "h", "username": "u", "privateKey": "k",
                       "hostKey": "[h]:2222 ecdsa-sha2-nistp256 AAAAE2VjZHNh"}),
            ),
            (
                StorageType::Sftp,
                json!({"host": "h", "username": "u", "password": "p",
                       "hostKey": "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"}),
            ),
            (
                StorageType::Sftp,
                json!({"host": "h", "username": "u", "password": "p", "insecureSkipHostKeyCheck": true}),
            ),
            (
                StorageType::Ftp,
                json!({"host": "ftp.example", "useTLS": true}),
            ),
            (
                StorageType::GoogleDrive,
                json!({"clientId": "id", "clientSecret": "cs", "refreshToken": "rt", "folderId": "f"}),
            ),
            (
                StorageType::AzureBlob,
                json!({"account": "acct", "accountKey": "k", "container": "c"}),
            ),
            (
                StorageType::Rclone,
                json!({"backend": "b2", "options": {"account": "a", "key": "k"}, "root": "bucket/x"}),
            ),
        ];
        for (kind, config) in cases {
            let parsed =
                StorageConfig::parse(kind, &config).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(parsed.kind(), kind);
        }
        let ftp = StorageConfig::parse(StorageType::Ftp, &json!({"host": "h"})).expect("ftp");
        assert_eq!(ftp.to_json()["port"], 21);
        assert_eq!(ftp.to_json()["username"], "anonymous");
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let cases = [
            (
                StorageType::LocalDisk,
                json!({"basePath": "relative"}),
                "config: basePath: must be an absolute path on the node",
            ),
            (
                StorageType::LocalDisk,
                json!({}),
                "config: missing field `basePath`",
            ),
            (
                StorageType::S3,
                json!({"endpoint": "http://x", "bucket": "", "accessKeyId": "a", "secretAccessKey": "s"}),
                "config: bucket: is required",
            ),
            (
                StorageType::S3,
                json!({"endpoint": "ftp://x", "bucket": "b", "accessKeyId": "a", "secretAccessKey": "s"}),
                "config: endpoint: must be an http:// or https:// URL",
            ),
            (
                StorageType::S3,
                json!({"endpoint": "http://x", "bucket": "b", "accessKeyId": "a", "secretAccessKey": 5}),
                "config: secretAccessKey: wrong type, expected a string",
            ),
            (
                StorageType::Sftp,
                json!({"host": "h", "username": "u"}),
                "config: password: a password or a privateKey is required",
            ),
            (
                StorageType::Sftp,
                json!({"host": "h", "username": "u", "password": "p"}),
                "config: hostKey: is required to check the server's identity (or set insecureSkipHostKeyCheck)",
            ),
            (
                StorageType::Sftp,
                json!({"host": "h", "username": "u", "password": "p", "hostKey": "SHA256:short"}),
                "config: hostKey: must be the server's public key (`ssh-ed25519 AAAA…`, as in known_hosts or ssh-keyscan) or its SHA256: fingerprint",
            ),
            (
                StorageType::Sftp,
                json!({"host": "h", "username": "u", "password": "p", "hostKey": "-----BEGIN OPENSSH PRIVATE KEY-----"}),
                "config: hostKey: must be the server's public key (`ssh-ed25519 AAAA…`, as in known_hosts or ssh-keyscan) or its SHA256: fingerprint",
            ),
            (
                StorageType::GoogleDrive,
                json!({"clientId": "id", "clientSecret": "cs"}),
                "config: refreshToken: is required",
            ),
            (
                StorageType::Webdav,
                json!({"endpoint": "http://x", "passwrd": "typo"}),
                "config: passwrd: unknown field `passwrd`, expected one of `endpoint`, `username`, `password`, `basePath`",
            ),
            (
                StorageType::Rclone,
                json!({"backend": "s3; rm -rf"}),
                "config: backend: must be an rclone backend name",
            ),
            (
                StorageType::Ftp,
                json!([1]),
                "config: must be a JSON object",
            ),
        ];
        for (kind, config, want) in cases {
            let err = StorageConfig::parse(kind, &config).expect_err("invalid");
            assert_eq!(err.to_string(), want, "{kind:?} {config}");
        }
    }

    #[test]
    fn wrong_types_never_echo_the_secret() {
        let err = StorageConfig::parse(
            StorageType::Webdav,
            &json!({"endpoint": "http://x", "password": ["hunter2"]}),
        )
        .expect_err("wrong type");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn secrets_are_masked_and_listed() {
        let c = StorageConfig::parse(StorageType::S3, &s3()).expect("s3");
        let (masked, fields) = c.masked();
        assert_eq!(masked["accessKeyId"], MASK);
        assert_eq!(masked["secretAccessKey"], MASK);
        assert_eq!(masked["bucket"], "backups");
        assert_eq!(fields, ["accessKeyId", "secretAccessKey"]);
        assert!(!masked.to_string().contains("s3cr3t"));

        let rc = StorageConfig::parse(
            StorageType::Rclone,
            &json!({"backend": "sftp", "options": {"host": "h", "user": "u", "pass": "obscured"}}),
        )
        .expect("rclone");
        let (masked, fields) = rc.masked();
        assert_eq!(masked["options"]["pass"], MASK);
        assert_eq!(masked["options"]["host"], "h");
        assert_eq!(fields, ["options.pass"]);
    }

    #[test]
    fn empty_secrets_stay_empty_when_masked() {
        let c = StorageConfig::parse(StorageType::Webdav, &json!({"endpoint": "http://x"}))
            .expect("dav");
        assert_eq!(c.masked().0["password"], "");
    }

    #[test]
    fn update_with_mask_or_blank_keeps_stored_secrets() {
        let stored = StorageConfig::parse(StorageType::S3, &s3()).expect("s3");
        let mut incoming = s3();
        incoming["accessKeyId"] = json!(MASK);
        incoming["secretAccessKey"] = json!("");
        incoming["bucket"] = json!("renamed");
        let merged = keep_stored_secrets(&incoming, &stored);
        assert_eq!(merged["accessKeyId"], "AKIA123");
        assert_eq!(merged["secretAccessKey"], "s3cr3t");
        assert_eq!(merged["bucket"], "renamed");

        let mut replaced = s3();
        replaced["secretAccessKey"] = json!("new-secret");
        assert_eq!(
            keep_stored_secrets(&replaced, &stored)["secretAccessKey"],
            "new-secret"
        );

        let mut omitted = s3();
        omitted
            .as_object_mut()
            .expect("object")
            .remove("secretAccessKey");
        assert_eq!(
            keep_stored_secrets(&omitted, &stored)["secretAccessKey"],
            "s3cr3t"
        );
    }

    #[test]
    fn scrub_removes_every_secret_from_a_message() {
        let c = StorageConfig::parse(StorageType::S3, &s3()).expect("s3");
        let message = "InvalidAccessKeyId: AKIA123 is unknown (secret s3cr3t) for bucket backups";
        assert_eq!(
            c.scrub(message),
            "InvalidAccessKeyId: ******** is unknown (secret ********) for bucket backups"
        );
    }

    #[test]
    fn rclone_secret_option_names() {
        for key in [
            "pass",
            "password",
            "secret_access_key",
            "client_secret",
            "token",
            "key",
            "sas_url",
        ] {
            assert!(is_secret_rclone_option(key), "{key}");
        }
        for key in [
            "host",
            "user",
            "port",
            "region",
            "key_use_agent",
            "known_hosts_file",
        ] {
            assert!(!is_secret_rclone_option(key), "{key}");
        }
    }

    #[test]
    fn a_kept_secret_stays_bound_to_its_destination_for_every_type() {
        // (type, stored config, a change that moves the secret, a change that does not)
        let cases = [
            (
                StorageType::S3,
                s3(),
                ("endpoint", json!("http://attacker.example:9000")),
                ("prefix", json!("elsewhere")),
            ),
            (
                StorageType::S3,
                s3(),
                ("bucket", json!("theirs")),
                ("forcePathStyle", json!(false)),
            ),
            (
                StorageType::Webdav,
                json!({"endpoint": "https://dav.example", "username": "u", "password": "p"}),
                ("endpoint", json!("https://attacker.example")),
                ("basePath", json!("/other")),
            ),
            (
                StorageType::Sftp,
                json!({"host": "nas", "username": "u", "password": "p", "insecureSkipHostKeyCheck": true}),
                ("host", json!("attacker.example")),
                ("basePath", json!("/other")),
            ),
            (
                StorageType::Sftp,
                json!({"host": "nas", "username": "u", "password": "p", "hostKey": "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"}),
                ("insecureSkipHostKeyCheck", json!(true)),
                ("username", json!("other")),
            ),
            (
                StorageType::Ftp,
                json!({"host": "ftp.example", "username": "u", "password": "p", "useTLS": true}),
                ("useTLS", json!(false)),
                ("basePath", json!("/other")),
            ),
            (
                StorageType::Ftp,
                json!({"host": "ftp.example", "username": "u", "password": "p"}),
                ("port", json!(2121)),
                ("username", json!("other")),
            ),
            (
                StorageType::AzureBlob,
                json!({"account": "acct", "accountKey": "k", "container": "c"}),
                ("endpoint", json!("http://attacker.example")),
                ("prefix", json!("p")),
            ),
            (
                StorageType::Rclone,
                json!({"backend": "webdav", "options": {"url": "https://dav.example", "pass": "p"}}),
                (
                    "options",
                    json!({"url": "https://attacker.example", "pass": MASK}),
                ),
                ("root", json!("other")),
            ),
        ];
        for (kind, stored, moved, harmless) in cases {
            let stored_config = StorageConfig::parse(kind, &stored).expect("stored");
            let masked = stored_config.masked().0;
            // Unchanged, or changed only where the secret does not go: kept.
            let mut same = masked.clone();
            same[harmless.0] = harmless.1.clone();
            let kept = StorageConfig::parse_update(kind, &same, &stored_config)
                .unwrap_or_else(|e| panic!("{kind:?} {}: {e}", harmless.0));
            assert_eq!(
                kept.secret_values(),
                stored_config.secret_values(),
                "{kind:?}"
            );
            // Moved with the mask: refused, naming a secret.
            let mut elsewhere = masked.clone();
            elsewhere[moved.0] = moved.1.clone();
            let err = StorageConfig::parse_update(kind, &elsewhere, &stored_config)
                .expect_err(&format!("{kind:?} {} keeps the secret", moved.0));
            assert!(err.reason.contains("send the secret again"), "{err}");
            let (_, secret_fields) = stored_config.masked();
            assert!(
                secret_fields
                    .iter()
                    .any(|f| err.reason.starts_with(f.as_str())),
                "{kind:?}: {err}"
            );
            // Moved with the secret sent again: accepted.
            let mut resent = stored.clone();
            if moved.0 == "options" {
                resent["options"] = json!({"url": "https://attacker.example", "pass": "new"});
            } else {
                resent[moved.0] = moved.1.clone();
            }
            assert!(
                StorageConfig::parse_update(kind, &resent, &stored_config).is_ok(),
                "{kind:?} with the secret again"
            );
        }
    }
}
