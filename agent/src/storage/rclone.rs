//! `rclone` targets: any remote rclone can reach, driven through the `rclone` binary. The remote is
//! defined entirely by `RCLONE_CONFIG_STOWAGE_*` environment variables of the child process, so
//! credentials never appear in its arguments or in an rclone config file; options rclone marks as
//! passwords are obscured the way rclone expects (`rclone obscure -`, fed on stdin).
//!
//! Nothing the control plane sends reaches more of rclone than a remote can: the backend and every
//! option must be on `stowage_shared::rclone`'s allow-list (checked again here, whatever the Worker
//! said), and the child runs with a clean environment, so neither the agent's own `RCLONE_*`
//! variables nor its cloud credentials reach it.

use super::{ObjectReader, StorageError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use stowage_shared::api::{DiskUsage, MeasuredUsage, RcloneBackend, RcloneOption};
use stowage_shared::rclone as allow;
use stowage_shared::storage::{GoogleDriveConfig, RcloneConfig};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::process::{Child, ChildStdout, Command};

const REMOTE: &str = "STOWAGE";

/// One entry of `rclone config providers`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Provider {
    name: String,
    /// The name a remote's `type` takes (`gcs` for "google cloud storage").
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    options: Vec<ProviderOption>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProviderOption {
    name: String,
    #[serde(default)]
    help: String,
    #[serde(default)]
    default: serde_json::Value,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    is_password: bool,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    advanced: bool,
    /// Non-zero for options rclone keeps out of its own configuration dialogue.
    #[serde(default)]
    hide: u8,
    #[serde(default)]
    examples: Option<Vec<ProviderExample>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProviderExample {
    value: String,
}

async fn providers(bin: &Path) -> Result<Vec<Provider>, StorageError> {
    serde_json::from_slice(&output(bin, &["config", "providers"], &[], None).await?)
        .map_err(|e| StorageError::Rclone(format!("unreadable `rclone config providers`: {e}")))
}

/// `rclone config providers` takes a second or so and its answer only changes with the binary:
/// kept per binary path and modification time.
type ProviderCache = std::collections::HashMap<
    (std::path::PathBuf, Option<std::time::SystemTime>),
    std::sync::Arc<Vec<Provider>>,
>;

async fn providers_cached(bin: &Path) -> Result<std::sync::Arc<Vec<Provider>>, StorageError> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<ProviderCache>> = std::sync::OnceLock::new();
    let modified = tokio::fs::metadata(bin)
        .await
        .ok()
        .and_then(|m| m.modified().ok());
    let key = (bin.to_owned(), modified);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(std::sync::Arc::clone(hit));
    }
    let fresh = std::sync::Arc::new(providers(bin).await?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, std::sync::Arc::clone(&fresh));
    Ok(fresh)
}

impl Provider {
    fn type_name(&self) -> &str {
        if self.prefix.is_empty() {
            &self.name
        } else {
            &self.prefix
        }
    }
}

/// The backends this rclone has that a target may use, as rclone describes them, with the options
/// the allow-list passes on and rclone itself does not hide.
pub async fn backends(bin: &Path) -> Result<Vec<RcloneBackend>, StorageError> {
    Ok(providers(bin)
        .await?
        .into_iter()
        .filter(|p| allow::backend_allowed(p.type_name()))
        .map(|p| {
            let name = p.type_name().to_owned();
            RcloneBackend {
                description: p.description,
                options: p
                    .options
                    .into_iter()
                    .filter(|o| o.hide == 0 && o.name != "description")
                    .filter(|o| allow::option_allowed(&name, &o.name))
                    .map(|o| RcloneOption {
                        help: o.help.lines().next().unwrap_or_default().to_owned(),
                        required: o.required,
                        secret: o.is_password,
                        sensitive: o.sensitive,
                        advanced: o.advanced,
                        default: match o.default {
                            serde_json::Value::String(s) => s,
                            serde_json::Value::Null => String::new(),
                            other => other.to_string(),
                        },
                        examples: o
                            .examples
                            .unwrap_or_default()
                            .into_iter()
                            .map(|e| e.value)
                            .collect(),
                        name: o.name,
                    })
                    .collect(),
                name,
            }
        })
        .collect())
}

#[derive(Debug, Clone)]
pub struct RcloneRemote {
    bin: PathBuf,
    env: Vec<(String, String)>,
    root: String,
}

/// Variables of the agent's own environment an rclone child keeps: where programs and the home
/// directory are, the locale, and the host's proxy settings. Nothing else: `RCLONE_*` variables
/// would set options the allow-list refuses, and cloud credentials (`AWS_*`, …) would lend the
/// host's identity to a remote that asks for it.
const KEPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "TZ",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

fn command(bin: &Path, args: &[&str], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args).env_clear();
    for name in KEPT_ENV {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    // An empty configuration: the remote comes only from the variables below, never from a file
    // on the host.
    cmd.env("RCLONE_CONFIG", "/dev/null")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

fn spawn(mut cmd: Command, bin: &Path) -> Result<Child, StorageError> {
    cmd.spawn().map_err(|e| {
        StorageError::MissingTool(format!("cannot run rclone at {}: {e}", bin.display()))
    })
}

/// rclone's last error line says why ("Failed to …: <reason>").
fn reason(stderr: &[u8]) -> StorageError {
    let stderr = String::from_utf8_lossy(stderr);
    let reason = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("rclone failed without a message")
        .trim();
    let reason = reason.split_once(" ERROR : ").map_or(reason, |(_, r)| r);
    let reason = reason.split_once(" NOTICE: ").map_or(reason, |(_, r)| r);
    StorageError::Rclone(reason.to_owned())
}

async fn output(
    bin: &Path,
    args: &[&str],
    env: &[(String, String)],
    stdin: Option<&[u8]>,
) -> Result<Vec<u8>, StorageError> {
    let mut cmd = command(bin, args, env);
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = spawn(cmd, bin)?;
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
        Ok(out.stdout)
    } else {
        Err(reason(&out.stderr))
    }
}

/// A Google Drive target as an rclone `drive` remote: rclone uploads in resumable chunks, so large
/// backups stream, and it refreshes the access token from the stored refresh token (the synthetic
/// token below is expired on purpose so that the first call refreshes it).
pub fn google_drive(c: &GoogleDriveConfig) -> RcloneConfig {
    let token = serde_json::json!({
        "access_token": "",
        "token_type": "Bearer",
        "refresh_token": c.refresh_token,
        "expiry": "2000-01-01T00:00:00Z",
    });
    let mut options = BTreeMap::from([
        ("client_id".to_owned(), c.client_id.clone()),
        ("client_secret".to_owned(), c.client_secret.clone()),
        ("scope".to_owned(), "drive".to_owned()),
        ("token".to_owned(), token.to_string()),
    ]);
    if !c.folder_id.is_empty() {
        options.insert("root_folder_id".to_owned(), c.folder_id.clone());
    }
    RcloneConfig {
        backend: "drive".to_owned(),
        options,
        root: String::new(),
    }
}

impl RcloneRemote {
    pub async fn open(bin: &Path, config: &RcloneConfig) -> Result<Self, StorageError> {
        // Again here, whatever the control plane checked: this is the agent's own rule.
        allow::check_remote(&config.backend, &config.options).map_err(|(field, reason)| {
            StorageError::Refused(format!("rclone target refused: {field} {reason}"))
        })?;
        let providers = providers_cached(bin).await?;
        let provider = providers
            .iter()
            .find(|p| p.type_name() == config.backend)
            .ok_or_else(|| {
                StorageError::MissingTool(format!(
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

    /// `rclone rcat`, fed from `reader` through a pipe: rclone uploads as the bytes arrive (in
    /// chunks, for backends that support it) and stores nothing when its input ends in an error.
    pub async fn write_from(
        &self,
        path: &str,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64, StorageError> {
        let mut cmd = command(&self.bin, &["rcat", &self.target(path)], &self.env);
        cmd.stdin(Stdio::piped());
        let mut child = spawn(cmd, &self.bin)?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| StorageError::Rclone("rclone's input could not be opened".to_owned()))?;
        let copied = tokio::io::copy(reader, &mut stdin).await;
        drop(stdin);
        match copied {
            Ok(n) => {
                let out = child
                    .wait_with_output()
                    .await
                    .map_err(|e| StorageError::Rclone(format!("waiting for rclone: {e}")))?;
                if out.status.success() {
                    Ok(n)
                } else {
                    Err(reason(&out.stderr))
                }
            }
            Err(e) => {
                // Stop rclone before it commits a truncated object.
                let _ = child.kill().await;
                let _ = self.delete(path).await;
                match e.kind() {
                    std::io::ErrorKind::BrokenPipe => {
                        let out = child.wait_with_output().await.ok();
                        Err(out.map_or_else(
                            || StorageError::Rclone("rclone stopped reading".to_owned()),
                            |o| reason(&o.stderr),
                        ))
                    }
                    _ => Err(StorageError::Source(e)),
                }
            }
        }
    }

    /// `rclone cat`, streamed from its output. The stream ends in an error when rclone fails.
    pub async fn reader(&self, path: &str) -> Result<ObjectReader, StorageError> {
        let mut child = spawn(
            command(&self.bin, &["cat", &self.target(path)], &self.env),
            &self.bin,
        )?;
        let stdout = child.stdout.take().ok_or_else(|| {
            StorageError::Rclone("rclone's output could not be opened".to_owned())
        })?;
        Ok(Box::new(CatReader {
            stdout,
            child: Some(child),
            finishing: None,
        }))
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

    /// `rclone lsjson --files-only`: the files under `dir` with their sizes.
    pub async fn list_sized(
        &self,
        dir: &str,
        recursive: bool,
    ) -> Result<Vec<(String, u64)>, StorageError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Item {
            path: String,
            size: i64,
        }
        let target = self.target(dir);
        let mut args = vec!["lsjson", "--files-only", "--no-mimetype", "--no-modtime"];
        if recursive {
            args.push("--recursive");
        }
        args.push(&target);
        let out = match self.run(&args, None).await {
            Err(StorageError::Rclone(reason)) if reason.contains("not found") => {
                return Ok(Vec::new());
            }
            other => other?,
        };
        let items: Vec<Item> = serde_json::from_slice(&out)
            .map_err(|e| StorageError::Rclone(format!("unreadable `rclone lsjson`: {e}")))?;
        let prefix = dir.trim_matches('/');
        Ok(items
            .into_iter()
            .map(|i| {
                let path = if prefix.is_empty() {
                    i.path
                } else {
                    format!("{prefix}/{}", i.path)
                };
                (path, u64::try_from(i.size).unwrap_or_default())
            })
            .collect())
    }

    /// `rclone cat --offset --count`.
    pub async fn read_range(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> Result<bytes::Bytes, StorageError> {
        let (offset, count) = (offset.to_string(), len.to_string());
        let target = self.target(path);
        let args = ["cat", "--offset", &offset, "--count", &count, &target];
        Ok(self.run(&args, None).await?.into())
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

type Exit = Pin<Box<dyn Future<Output = std::io::Result<std::process::Output>> + Send>>;

/// `rclone cat`'s output, which reports rclone's failure at its end instead of a short read that
/// would look like a complete object.
struct CatReader {
    stdout: ChildStdout,
    child: Option<Child>,
    finishing: Option<Exit>,
}

impl AsyncRead for CatReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.finishing.is_none() {
            let before = buf.filled().len();
            match Pin::new(&mut this.stdout).poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() == before => {
                    // End of output: the exit status decides whether it was the whole object.
                    let Some(child) = this.child.take() else {
                        return Poll::Ready(Ok(()));
                    };
                    this.finishing = Some(Box::pin(child.wait_with_output()));
                }
                other => return other,
            }
        }
        let Some(finishing) = this.finishing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        match finishing.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(out)) if out.status.success() => Poll::Ready(Ok(())),
            Poll::Ready(Ok(out)) => {
                Poll::Ready(Err(std::io::Error::other(reason(&out.stderr).to_string())))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for the rclone binary: a script that records how it was started.
    fn fake_rclone(dir: &Path, body: &str) -> PathBuf {
        let bin = dir.join("rclone");
        std::fs::write(&bin, format!("#!/bin/sh\n{body}\n")).expect("write the script");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        bin
    }

    #[tokio::test]
    async fn the_agent_refuses_what_the_allow_list_refuses_before_rclone_starts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let started = dir.path().join("started");
        let bin = fake_rclone(dir.path(), &format!("touch {}", started.display()));
        // As a compromised control plane would send it: never parsed by the Worker's checks.
        for (backend, option) in [
            ("webdav", "bearer_token_command"),
            ("sftp", "ssh"),
            ("s3", "env_auth"),
            ("local", "nounc"),
        ] {
            let config = RcloneConfig {
                backend: backend.to_owned(),
                options: BTreeMap::from([(option.to_owned(), "touch /tmp/pwned".to_owned())]),
                root: String::new(),
            };
            match RcloneRemote::open(&bin, &config).await {
                Err(StorageError::Refused(why)) => assert!(why.contains("refused"), "{why}"),
                other => panic!("{backend}.{option} was not refused: {other:?}"),
            }
        }
        assert!(!started.exists(), "rclone was started");
    }

    #[tokio::test]
    async fn rclone_starts_with_a_clean_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dump = dir.path().join("environ");
        // The shell's own initial environment is exactly what the agent passed to it.
        let bin = fake_rclone(
            dir.path(),
            &format!("tr '\\0' '\\n' < /proc/$$/environ > {}", dump.display()),
        );
        let env = vec![("RCLONE_CONFIG_STOWAGE_TYPE".to_owned(), "webdav".to_owned())];
        output(&bin, &["version"], &env, None).await.expect("ran");
        let seen = std::fs::read_to_string(&dump).expect("the dump");
        let names: Vec<&str> = seen
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        assert!(seen.contains("RCLONE_CONFIG=/dev/null\n"), "{seen}");
        assert!(
            seen.contains("RCLONE_CONFIG_STOWAGE_TYPE=webdav\n"),
            "{seen}"
        );
        for name in &names {
            assert!(
                KEPT_ENV.contains(name) || name.starts_with("RCLONE_CONFIG"),
                "{name} leaked into rclone's environment"
            );
        }
        // The test runner's own variables (cargo sets several) did not reach it.
        assert!(std::env::vars().count() > names.len());
    }
}
