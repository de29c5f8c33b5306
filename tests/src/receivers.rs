//! Notification receivers: an HTTP receiver that records every request beside a real SMTP server.

use crate::repo_root;
use crate::storage::rclone_binary;
use anyhow::{Context, Result, ensure};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// The receivers notifications reach (`tests/fixtures/notify_receivers.py`): an HTTP server that
/// records every request, and a real SMTP server (aiosmtpd, installed by `make install` into the
/// tools venv) that records every message.
#[derive(Debug)]
pub struct Receivers {
    child: Child,
    dir: tempfile::TempDir,
    pub http_port: u16,
    pub smtp_port: u16,
}

/// One request the HTTP receiver got.
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
}

/// One message the SMTP receiver accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub data: String,
}

impl Receivers {
    pub fn start() -> Result<Self> {
        let python = rclone_binary()?
            .parent()
            .map(|bin| bin.join("python"))
            .context("the tools venv")?;
        let dir = tempfile::Builder::new()
            .prefix("stowage-receivers-")
            .tempdir()?;
        let mut child = Command::new(&python)
            .arg(repo_root().join("tests/fixtures/notify_receivers.py"))
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!(
                    "the notification receivers need {} with aiosmtpd: run `make install`",
                    python.display()
                )
            })?;
        let stdout = child.stdout.take().context("the receivers' output")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let ports: Vec<u16> = line
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        ensure!(
            ports.len() == 2,
            "the receivers printed {line:?} instead of their ports (is aiosmtpd installed? run `make install`)"
        );
        Ok(Self {
            child,
            dir,
            http_port: ports[0],
            smtp_port: ports[1],
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    fn lines<T: DeserializeOwned>(&self, file: &str) -> Result<Vec<T>> {
        let text = std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).context("a receiver log line"))
            .collect()
    }

    /// HTTP requests to `path`, oldest first.
    pub fn requests(&self, path: &str) -> Result<Vec<Received>> {
        Ok(self
            .lines::<Received>("http.jsonl")?
            .into_iter()
            .filter(|r| r.path == path)
            .collect())
    }

    pub fn mails(&self) -> Result<Vec<Mail>> {
        self.lines("smtp.jsonl")
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
