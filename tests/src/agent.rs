//! Real agents (`AgentProcess`), a scripted agent that speaks the protocol directly (`RawAgent`)
//! for what a real one cannot do on cue, and `Fleet` (more nodes with their own agents).

use crate::server::{Reply, Server, ServerOptions};
use crate::storage::rclone_binary;
use crate::{repo_root, wait_for_text};
use anyhow::{Context, Result, ensure};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Serialize;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stowage_shared::api::{self, routes};
use stowage_shared::protocol;

/// The agent binary `cargo build -p stowage-agent` made (`make test` builds it before the tests).
pub fn agent_binary() -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("debug/stowage-agent");
    ensure!(
        bin.exists(),
        "{} is missing: run `cargo build -p stowage-agent` (make test does it)",
        bin.display()
    );
    Ok(bin)
}

/// A real `stowage-agent run` process with its token in a file (never in its arguments), its own
/// process group and its log in a file. Dropping it kills it.
#[derive(Debug)]
pub struct AgentProcess {
    child: Child,
    dir: tempfile::TempDir,
}

impl AgentProcess {
    pub fn start(server_url: &str, token: &str) -> Result<Self> {
        Self::start_with(server_url, token, true, &[])
    }

    /// An agent on a machine without rclone: no `STOWAGE_RCLONE`, and an empty PATH.
    pub fn start_without_rclone(server_url: &str, token: &str) -> Result<Self> {
        Self::start_with(server_url, token, false, &[])
    }

    /// An agent with extra `run` arguments (`--allow-path /srv`, …).
    pub fn start_with_args(server_url: &str, token: &str, args: &[&str]) -> Result<Self> {
        Self::start_with(server_url, token, true, args)
    }

    fn start_with(
        server_url: &str,
        token: &str,
        with_rclone: bool,
        extra: &[&str],
    ) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("stowage-agent-")
            .tempdir()?;
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token)?;
        let log = std::fs::File::create(dir.path().join("agent.log"))?;
        let mut cmd = Command::new(agent_binary()?);
        cmd.env_remove("STOWAGE_RCLONE");
        if with_rclone {
            // The project's rclone, so rclone targets work (and are reported) like on a real node.
            cmd.env("STOWAGE_RCLONE", rclone_binary()?);
        } else {
            let empty = dir.path().join("empty-path");
            std::fs::create_dir(&empty)?;
            cmd.env("PATH", empty);
        }
        let child = cmd
            .args(["run", "--server", server_url, "--token-file"])
            .arg(&token_file)
            .args(extra)
            .env("RUST_LOG", "info,stowage_agent=debug")
            .env_remove("STOWAGE_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("spawning stowage-agent")?;
        Ok(Self { child, dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Sends a signal to the agent (SIGKILL to simulate a crash, SIGTERM to stop it).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pid = i32::try_from(self.child.id())?;
        nix::sys::signal::kill(Pid::from_raw(pid), signal)?;
        Ok(())
    }

    /// Waits for the agent to exit by itself and returns its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            ensure!(
                Instant::now() < deadline,
                "the agent did not exit within {timeout:?}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the agent's log contains `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        wait_for_text("the agent's log", || self.log(), needle, timeout).await
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Speaks the agent protocol directly, for the cases a real agent cannot be made to produce on
/// cue (a claim whose agent then falls silent, a report with another node's token).
#[derive(Debug, Clone)]
pub struct RawAgent {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl RawAgent {
    pub fn new(server: &Server, token: &str) -> Self {
        Self {
            http: server.http.clone(),
            base_url: server.base_url.clone(),
            token: token.to_owned(),
        }
    }

    pub async fn post<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<Reply> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(protocol::AGENT_TOKEN_HEADER, &self.token)
            .header(
                protocol::AGENT_PROTOCOL_HEADER,
                protocol::AGENT_PROTOCOL_VERSION.to_string(),
            )
            .json(body)
            .send()
            .await?;
        Reply::read(resp).await
    }

    pub async fn heartbeat(&self) -> Result<Reply> {
        let body = protocol::HeartbeatRequest {
            hostname: "raw-agent".into(),
            ip_address: "127.0.0.1".into(),
            os: "test".into(),
            arch: "test".into(),
            agent_version: "0.0.0".into(),
            capabilities: api::Capabilities::default(),
            running: Vec::new(),
        };
        self.post(routes::AGENT_HEARTBEAT, &body).await
    }

    /// One poll; a poll the server paces away (`429 AGENT_RATE_LIMITED`, as a real agent's
    /// would be if it came too soon) claims nothing, like an empty one.
    pub async fn poll(&self) -> Result<Option<protocol::ClaimedCommand>> {
        let reply = self
            .post(routes::AGENT_POLL, &serde_json::json!({}))
            .await?;
        if reply.status == 429 && reply.code() == "AGENT_RATE_LIMITED" {
            return Ok(None);
        }
        let resp: protocol::PollResponse = reply.expect_ok()?;
        Ok(resp.command)
    }

    pub async fn report(&self, id: i64, result: &protocol::CommandResult) -> Result<Reply> {
        self.post(&routes::agent_command_result(id), result).await
    }
}

/// A server with one-second agent timings, its administrator, and one enrolled node whose real
/// agent is online: the start of most tests that run backups.
#[derive(Debug)]
pub struct Fleet {
    /// Declared first, so it stops before the server it talks to.
    pub agent: AgentProcess,
    pub server: Server,
    pub admin: String,
    pub node: api::NodeWithToken,
}

impl Fleet {
    pub async fn start(node_name: &str) -> Result<Self> {
        let server = Server::start_with(
            ServerOptions::default()
                .var("HEARTBEAT_SECS", 1)
                .var("POLL_SECS", 1),
        )
        .await?;
        let admin = server.admin("admin", "correct horse battery").await?;
        let node: api::NodeWithToken = server
            .post(
                routes::NODES,
                Some(&admin),
                &serde_json::json!({ "name": node_name }),
            )
            .await?
            .expect_ok()?;
        let agent = AgentProcess::start(&server.base_url, node.token.expose())?;
        server.wait_online(&admin, node.node.id).await?;
        Ok(Self {
            agent,
            server,
            admin,
            node,
        })
    }

    /// Another node of the fleet, with its own real agent online.
    pub async fn enrol(&self, name: &str) -> Result<(api::NodeWithToken, AgentProcess)> {
        let node: api::NodeWithToken = self
            .server
            .post(
                routes::NODES,
                Some(&self.admin),
                &serde_json::json!({ "name": name }),
            )
            .await?
            .expect_ok()?;
        let agent = AgentProcess::start(&self.server.base_url, node.token.expose())?;
        self.server.wait_online(&self.admin, node.node.id).await?;
        Ok((node, agent))
    }
}
