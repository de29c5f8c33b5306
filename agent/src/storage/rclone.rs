//! `rclone` targets: any remote rclone can reach, driven through the `rclone` binary. The remote is
//! defined entirely by `RCLONE_CONFIG_STOWAGE_*` environment variables of the child process, so
//! credentials never appear in its arguments or in an rclone config file; options rclone marks as
//! passwords are obscured the way rclone expects (`rclone obscure -`, fed on stdin).

use super::StorageError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use stowage_shared::api::{DiskUsage, MeasuredUsage};
use stowage_shared::storage::RcloneConfig;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const REMOTE: &str = "STOWAGE";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Provider {
    name: String,
    options: Vec<ProviderOption>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProviderOption {
    name: String,
    #[serde(default)]
    is_password: bool,
}

#[derive(Debug, Clone)]
pub struct RcloneRemote {
    bin: PathBuf,
    env: Vec<(String, String)>,
    root: String,
}

async fn output(
    bin: &Path,
    args: &[&str],
    env: &[(String, String)],
    stdin: Option<&[u8]>,
) -> Result<Vec<u8>, StorageError> {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("RCLONE_CONFIG", "/dev/null")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        StorageError::Unsupported(format!("cannot run rclone at {}: {e}", bin.display()))
    })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data)
            .await
            .map_err(|e| StorageError::Rclone(format!("writing to rclone: {e}")))?;
        drop(pipe);
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| StorageError::Rclone(format!("waiting for rclone: {e}")))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    // rclone's last error line says why ("Failed to …: <reason>").
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("rclone failed without a message")
        .trim();
    let reason = reason.split_once(" ERROR : ").map_or(reason, |(_, r)| r);
    let reason = reason.split_once(" NOTICE: ").map_or(reason, |(_, r)| r);
    Err(StorageError::Rclone(reason.to_owned()))
}

impl RcloneRemote {
    pub async fn open(bin: &Path, config: &RcloneConfig) -> Result<Self, StorageError> {
        let providers: Vec<Provider> =
            serde_json::from_slice(&output(bin, &["config", "providers"], &[], None).await?)
                .map_err(|e| {
                    StorageError::Rclone(format!("unreadable `rclone config providers`: {e}"))
                })?;
        let provider = providers
            .iter()
            .find(|p| p.name == config.backend)
            .ok_or_else(|| {
                StorageError::Unsupported(format!(
                    "this agent's rclone has no backend named {:?}",
                    config.backend
                ))
            })?;
        let mut env = vec![(
            format!("RCLONE_CONFIG_{REMOTE}_TYPE"),
            config.backend.clone(),
        )];
        for (key, value) in &config.options {
            let is_password = provider
                .options
                .iter()
                .any(|o| o.name == *key && o.is_password);
            let value = if is_password {
                let obscured = output(bin, &["obscure", "-"], &[], Some(value.as_bytes())).await?;
                String::from_utf8_lossy(&obscured).trim().to_owned()
            } else {
                value.clone()
            };
            env.push((
                format!("RCLONE_CONFIG_{REMOTE}_{}", key.to_ascii_uppercase()),
                value,
            ));
        }
        Ok(Self {
            bin: bin.to_owned(),
            env,
            root: config.root.trim_matches('/').to_owned(),
        })
    }

    fn target(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        match (self.root.is_empty(), path.is_empty()) {
            (true, _) => format!("{REMOTE}:{path}"),
            (false, true) => format!("{REMOTE}:{}", self.root),
            (false, false) => format!("{REMOTE}:{}/{path}", self.root),
        }
    }

    async fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, StorageError> {
        output(&self.bin, args, &self.env, stdin).await
    }

    pub async fn write(&self, path: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.run(&["rcat", &self.target(path)], Some(bytes))
            .await
            .map(drop)
    }

    pub async fn read(&self, path: &str) -> Result<Vec<u8>, StorageError> {
        self.run(&["cat", &self.target(path)], None).await
    }

    pub async fn stat(&self, path: &str) -> Result<u64, StorageError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Item {
            size: i64,
        }
        let out = self
            .run(&["lsjson", "--stat", &self.target(path)], None)
            .await?;
        let item: Item = serde_json::from_slice(&out)
            .map_err(|e| StorageError::Rclone(format!("unreadable `rclone lsjson --stat`: {e}")))?;
        Ok(u64::try_from(item.size).unwrap_or_default())
    }

    pub async fn list(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let out = self
            .run(&["lsf", "--files-only", &self.target(dir)], None)
            .await?;
        let prefix = dir.trim_matches('/');
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(|name| {
                if prefix.is_empty() {
                    name.to_owned()
                } else {
                    format!("{prefix}/{name}")
                }
            })
            .collect())
    }

    pub async fn delete(&self, path: &str) -> Result<(), StorageError> {
        match self.run(&["deletefile", &self.target(path)], None).await {
            Err(StorageError::Rclone(reason)) if reason.contains("not found") => Ok(()),
            other => other.map(drop),
        }
    }
}

impl RcloneRemote {
    /// `rclone size` for what the root holds; `rclone about` for the account, where the backend
    /// supports it (many do not, which is not an error).
    pub async fn usage(&self) -> Result<MeasuredUsage, StorageError> {
        #[derive(Deserialize)]
        struct Size {
            count: u64,
            bytes: u64,
        }
        #[derive(Deserialize)]
        struct About {
            total: Option<u64>,
            used: Option<u64>,
            free: Option<u64>,
        }
        let root = self.target("");
        let size: Size = serde_json::from_slice(&self.run(&["size", "--json", &root], None).await?)
            .map_err(|e| StorageError::Rclone(format!("unreadable `rclone size`: {e}")))?;
        let disk = match self.run(&["about", "--json", &root], None).await {
            Ok(out) => serde_json::from_slice::<About>(&out)
                .ok()
                .map(|a| DiskUsage {
                    total: a.total,
                    used: a.used,
                    free: a.free,
                }),
            Err(_) => None,
        };
        Ok(MeasuredUsage {
            objects: size.count,
            total_bytes: size.bytes,
            truncated: false,
            disk,
        })
    }
}
