//! End-to-end harness: real `wrangler dev` servers (workerd + local D1) on free ports, each with its
//! own temporary state, secrets and process group, and a typed client for the API.
//!
//! `make test` builds the Worker and installs wrangler before the tests run; the harness never
//! builds anything, so many servers can start in parallel in about a second each.
//!
//! By concern: `server` (wrangler dev and the API client), `agent` (real and scripted agents),
//! `storage` (storage servers and stand-ins), `receivers` (notification receivers), `trees`
//! (directory snapshots). This file keeps the helpers they share.

mod agent;
mod receivers;
mod server;
mod storage;
mod trees;

pub use agent::*;
pub use receivers::*;
pub use server::*;
pub use storage::*;
pub use trees::*;

use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// A `Command` for a tool of the project, with the pinned Node first on PATH and wrangler offline.
fn tool(name: &str) -> Command {
    let root = repo_root();
    let bin = root.join("node_modules/.bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(bin.join(name));
    cmd.current_dir(&root)
        .env("PATH", path)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "0")
        .stdin(Stdio::null());
    cmd
}

fn check_prerequisites() -> Result<()> {
    let root = repo_root();
    ensure!(
        root.join("node_modules/.bin/wrangler").exists(),
        "wrangler is not installed in {}: run `make install` (make test does it)",
        root.display()
    );
    ensure!(
        root.join("worker/build/index.js").exists(),
        "the Worker is not built: run `make build` (make test does it)"
    );
    Ok(())
}

/// 32 random bytes, hex encoded, for a per-server JWT secret.
fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Waits until `read()` contains `needle`; on timeout the error shows the end of what was read.
async fn wait_for_text(
    what: &str,
    read: impl Fn() -> String,
    needle: &str,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = read();
        if text.contains(needle) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("{what} never showed {needle:?}:\n{}", tail.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it returns `Some`, or fails after `timeout` saying what was awaited.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        ensure!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
