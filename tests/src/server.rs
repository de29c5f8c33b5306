//! A real `wrangler dev` (workerd + local D1) per test: its own port, state, secrets and process
//! group; a typed client for the API, the cron trigger and D1 queries; server-sent events.

use crate::{check_prerequisites, eventually, random_hex, tool, wait_for_text};
use anyhow::{Context, Result, anyhow, bail, ensure};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use stowage_shared::Envelope;
use stowage_shared::api::{self, routes};

const START_TIMEOUT: Duration = Duration::from_secs(90);

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
    pub(crate) http: reqwest::Client,
    vars: Vec<(String, String)>,
}

/// Starts `wrangler dev` on `port` (0: any free one) in its own process group, its output
/// appended to `log_path`; the receiver gets the address from its "Ready on" line.
fn launch(
    state: &Path,
    env_file: &Path,
    vars: &[(String, String)],
    port: u16,
    log_path: &Path,
) -> Result<(Child, mpsc::Receiver<String>)> {
    let mut cmd = tool("wrangler");
    cmd.args(["dev", "--ip", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(["--inspector-port", "0"])
        .arg("--persist-to")
        .arg(state)
        .arg("--env-file")
        .arg(env_file)
        .arg("--show-interactive-dev-session=false")
        .env("WRANGLER_LOG_PATH", state.join("wrangler-logs"));
    for (key, value) in vars {
        cmd.arg("--var").arg(format!("{key}:{value}"));
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
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
    Ok((child, ready_rx))
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

        let http = reqwest::Client::builder()
            .user_agent("stowage-e2e")
            // Tests pause for seconds in blocking wrangler calls; a pooled connection the server
            // closed meanwhile would fail the next request, so every request dials afresh.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()?;
        let (child, ready_rx) = launch(state.path(), &env_file, &opts.vars, 0, &log_path)?;
        let mut server = Server {
            child,
            base_url: String::new(),
            state,
            log_path,
            jwt_secret,
            http,
            vars: opts.vars,
        };
        server.wait_ready(&ready_rx).await?;
        Ok(server)
    }

    /// Stops this `wrangler dev` (its whole process group, at once, as a crash would) and starts
    /// it again on the same port with the same state: every Durable Object and connection is gone,
    /// D1 is as it was.
    pub async fn restart(&mut self) -> Result<()> {
        let port: u16 = self
            .base_url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .context("the server's port")?;
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
        let env_file = self.state.path().join("secrets.env");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // The old workerd may hold the port for a moment after it died.
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break;
            }
            ensure!(Instant::now() < deadline, "port {port} stayed taken");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (child, ready_rx) = launch(
            self.state.path(),
            &env_file,
            &self.vars,
            port,
            &self.log_path,
        )?;
        self.child = child;
        self.wait_ready(&ready_rx).await
    }

    async fn wait_ready(&mut self, ready_rx: &mpsc::Receiver<String>) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        self.base_url = loop {
            match ready_rx.try_recv() {
                Ok(url) => break url,
                Err(mpsc::TryRecvError::Disconnected) => {
                    bail!(
                        "wrangler dev exited before it was ready:\n{}",
                        self.log_tail()
                    )
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("wrangler dev exited with {status}:\n{}", self.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "wrangler dev was not ready after {START_TIMEOUT:?}:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // "Ready" means the socket listens; wait until the Worker itself answers.
        loop {
            let health = self.http.get(self.url(routes::HEALTH)).send().await;
            if matches!(&health, Ok(r) if r.status() == StatusCode::OK) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the Worker never answered /api/health:\n{}",
                    self.log_tail()
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
