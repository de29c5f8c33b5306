//! `make loadtest`: the control plane under a fleet of simulated agents speaking the real
//! protocol (the agent's own client: an HTTP heartbeat and a claim at start, then the link with
//! pings at the server's interval, claims when woken, results reported), against `make dev`
//! (`scripts/dev.sh`: one workerd, local D1, the minute tick), one fresh server per fleet size.
//!
//! For each N it prints, for an idle minute and a loaded one: offered and served agent
//! requests per second, agent and console latency p50/p99, errors, D1 statements and rows
//! written per agent per minute (D1's own figures, from `GET /api/system/info`), and command start
//! latency (queued by the API → the agent holds the claimed command).
//!
//! Usage: loadtest [N ...]            (default 2000; IDLE_SECS=75, LOAD_SECS=60)

use anyhow::{Context, Result, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stowage_agent::client::Client;
use stowage_agent::poll::jitter;
use stowage_shared::api::{FsListing, NodeWithToken, SystemInfo, routes};
use stowage_shared::link::{self, Down, Up};
use stowage_shared::protocol::{CommandReport, CommandResult, CommandSpec, HeartbeatRequest};
use stowage_shared::{Envelope, SecretString};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "load test password";

/// Latencies and counts of one kind of call.
#[derive(Default)]
struct Calls {
    latencies: Mutex<Vec<Duration>>,
    offered: AtomicU64,
    errors: AtomicU64,
}

impl Calls {
    fn start(&self) -> Instant {
        self.offered.fetch_add(1, Ordering::Relaxed);
        Instant::now()
    }
    fn done(&self, started: Instant) {
        self.latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(started.elapsed());
    }
    fn failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    /// Offered, served, errors, p50, p99 since the last call; then starts over.
    fn take(&self) -> (u64, u64, u64, Duration, Duration) {
        let mut l = std::mem::take(&mut *self.latencies.lock().unwrap_or_else(|e| e.into_inner()));
        l.sort_unstable();
        let q = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        (
            self.offered.swap(0, Ordering::Relaxed),
            l.len() as u64,
            self.errors.swap(0, Ordering::Relaxed),
            q(0.50),
            q(0.99),
        )
    }
}

#[derive(Default)]
struct Stats {
    agent: Calls,
    console: Calls,
    /// Queued by the API → the agent holds the claimed command.
    start: Calls,
    /// HTTP requests the agents sent (Worker requests, as Cloudflare bills them).
    http_requests: AtomicU64,
    linked: AtomicU64,
    /// When each probe command was queued, by its unique path.
    queued: Mutex<HashMap<String, Instant>>,
}

/// The API as the administrator calls it.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    admin: String,
}

impl Api {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
    }
}

/// `scripts/dev.sh` in its own process group, stopped on drop.
struct Dev {
    child: Child,
    base: String,
    _state: tempfile::TempDir,
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    (40000..60000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .context("no free port")
}

async fn start_dev(http: &reqwest::Client) -> Result<Dev> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let state = tempfile::Builder::new().prefix("stowage-load-").tempdir()?;
    let port = free_port()?;
    let log = std::fs::File::create(state.path().join("dev.log"))?;
    let child = Command::new("bash")
        .arg(root.join("scripts/dev.sh"))
        .env("PORT", port.to_string())
        .env("STOWAGE_STATE_DIR", state.path().join("state"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting scripts/dev.sh")?;
    let dev = Dev {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _state: state,
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        if let Ok(r) = http
            .get(format!("{}{}", dev.base, routes::HEALTH))
            .send()
            .await
            && r.status().is_success()
        {
            return Ok(dev);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("make dev did not answer within 3 minutes")
}

async fn call<T: serde::de::DeserializeOwned>(req: reqwest::RequestBuilder) -> Result<T> {
    let resp = req.send().await?;
    let status = resp.status();
    let envelope: Envelope<T> = resp.json().await?;
    ensure!(
        status.is_success(),
        "HTTP {status} {}: {}",
        envelope.code,
        envelope.message
    );
    envelope.data.context("no data")
}

fn identity(i: usize) -> HeartbeatRequest {
    HeartbeatRequest {
        hostname: format!("sim-{i}"),
        ip_address: "127.0.0.1".to_owned(),
        os: "linux".to_owned(),
        arch: "x86_64".to_owned(),
        agent_version: "loadtest".to_owned(),
        capabilities: Default::default(),
        running: Vec::new(),
    }
}

/// One simulated agent: the real client's calls in the real agent's order, forever.
async fn agent(i: usize, base: String, token: String, stats: Arc<Stats>) {
    let Ok(client) = Client::new(&base, SecretString::new(token)) else {
        return;
    };
    let mut failures = 0u32;
    loop {
        if let Err(e) = hold(i, &client, &stats).await {
            stats.agent.failed();
            if failures == 0 {
                eprintln!("sim {i}: {e:#}");
            }
        }
        failures += 1;
        tokio::time::sleep(link::reconnect_delay(failures.min(6), jitter())).await;
    }
}

async fn hold(i: usize, client: &Client, stats: &Stats) -> Result<()> {
    let t = stats.agent.start();
    stats.http_requests.fetch_add(1, Ordering::Relaxed);
    let hello = client.heartbeat(&identity(i)).await?;
    stats.agent.done(t);
    let t = stats.agent.start();
    stats.http_requests.fetch_add(1, Ordering::Relaxed);
    let (socket, _) = tokio_tungstenite::connect_async(client.link_request()?).await?;
    stats.agent.done(t);
    let (mut tx, mut rx) = socket.split();
    let t = stats.agent.start();
    tx.send(Message::text(serde_json::to_string(&Up::Heartbeat(
        identity(i),
    ))?))
    .await?;
    loop {
        match rx.next().await.context("closed")?? {
            Message::Text(text)
                if matches!(serde_json::from_str(&text), Ok(Down::Heartbeat(_))) =>
            {
                break;
            }
            _ => {}
        }
    }
    stats.agent.done(t);
    stats.linked.fetch_add(1, Ordering::Relaxed);
    let result = async {
        claim(client, stats).await?;
        let interval = Duration::from_secs(hello.heartbeat_interval_secs.max(1));
        // A random phase, as agents that started at different times have.
        let first = tokio::time::Instant::now() + interval.mul_f64(jitter());
        let mut beat = tokio::time::interval_at(first, interval);
        let mut ping: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    if ping.is_some() {
                        stats.agent.failed();
                        bail!("no pong within {interval:?}");
                    }
                    ping = Some(stats.agent.start());
                    tx.send(Message::text(link::PING)).await?;
                }
                message = rx.next() => match message.context("closed")?? {
                    Message::Text(text) if text.as_str() == link::PONG => {
                        if let Some(t) = ping.take() {
                            stats.agent.done(t);
                        }
                    }
                    Message::Text(text) => {
                        if let Ok(Down::Work) = serde_json::from_str::<Down>(&text) {
                            claim(client, stats).await?;
                        }
                    }
                    Message::Close(_) => bail!("the server closed the link"),
                    _ => {}
                }
            }
        }
    }
    .await;
    stats.linked.fetch_sub(1, Ordering::Relaxed);
    result
}

/// Claims until nothing waits; answers each listing at once.
async fn claim(client: &Client, stats: &Stats) -> Result<()> {
    loop {
        let t = stats.agent.start();
        stats.http_requests.fetch_add(1, Ordering::Relaxed);
        let polled = client.poll().await;
        let Some(command) = polled?.command else {
            stats.agent.done(t);
            return Ok(());
        };
        stats.agent.done(t);
        if let CommandSpec::ListDir { path } = &command.spec {
            let queued = stats
                .queued
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(path);
            if let Some(at) = queued {
                stats.start.offered.fetch_add(1, Ordering::Relaxed);
                stats.start.done(at);
            }
        }
        let listing = CommandReport::ListDir(FsListing {
            path: "/".to_owned(),
            entries: Vec::new(),
            truncated: false,
        });
        let t = stats.agent.start();
        stats.http_requests.fetch_add(1, Ordering::Relaxed);
        client
            .report(command.id, &CommandResult::Succeeded { result: listing })
            .await?;
        stats.agent.done(t);
    }
}

async fn usage(api: &Api) -> Result<(u64, u64)> {
    let info: SystemInfo = call(api.get(routes::SYSTEM_INFO)).await?;
    Ok((info.d1_usage.statements, info.d1_usage.rows_written))
}

fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

async fn run(n: usize, idle: Duration, load: Duration) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    eprintln!("==> N = {n}: starting make dev");
    let dev = start_dev(&http).await?;
    let base = dev.base.clone();
    let body = serde_json::json!({"username": "admin", "password": PASSWORD});
    let _: serde_json::Value = call(
        http.post(format!("{base}{}", routes::AUTH_SETUP))
            .json(&body),
    )
    .await?;
    let login: serde_json::Value = call(
        http.post(format!("{base}{}", routes::AUTH_LOGIN))
            .json(&body),
    )
    .await?;
    let admin = login["token"].as_str().context("token")?.to_owned();
    let api = Api {
        http: http.clone(),
        base: base.clone(),
        admin: admin.clone(),
    };

    eprintln!("==> enrolling {n} nodes");
    let tokens: Vec<(i64, String)> = futures_util::stream::iter(0..n)
        .map(|i| {
            let (http, base, admin) = (http.clone(), base.clone(), admin.clone());
            async move {
                let node: NodeWithToken = call(
                    http.post(format!("{base}{}", routes::NODES))
                        .bearer_auth(&admin)
                        .json(&serde_json::json!({"name": format!("sim-{i:05}")})),
                )
                .await?;
                Ok::<_, anyhow::Error>((node.node.id, node.token.expose().to_owned()))
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;

    let stats = Arc::new(Stats::default());
    eprintln!("==> starting {n} agents");
    let mut fleet = Vec::with_capacity(n);
    for (i, (_, token)) in tokens.iter().enumerate() {
        fleet.push(tokio::spawn(agent(
            i,
            base.clone(),
            token.clone(),
            Arc::clone(&stats),
        )));
        // A fleet coming up over a few seconds, not in one burst.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while (stats.linked.load(Ordering::Relaxed) as usize) < n {
        ensure!(
            Instant::now() < deadline,
            "only {} of {n} agents linked within 5 minutes",
            stats.linked.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connect = stats.agent.take();
    eprintln!(
        "==> all {n} linked (connect calls p50 {} p99 {}, {} errors); idle for {}s",
        ms(connect.3),
        ms(connect.4),
        connect.2,
        idle.as_secs()
    );
    // Settle: the first flush of every object, then measure a steady state.
    tokio::time::sleep(Duration::from_secs(65)).await;
    stats.agent.take();
    stats.http_requests.swap(0, Ordering::Relaxed);

    let (s0, w0) = usage(&api).await?;
    tokio::time::sleep(idle).await;
    let (s1, w1) = usage(&api).await?;
    let idle_agent = stats.agent.take();
    let idle_http = stats.http_requests.swap(0, Ordering::Relaxed);
    let minutes = idle.as_secs_f64() / 60.0;
    let per = |v: u64| v as f64 / n as f64 / minutes;

    eprintln!(
        "==> loaded for {}s: console reads and commands",
        load.as_secs()
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for path in [
        format!("{}?page=1&pageSize=50", routes::NODES),
        routes::DASHBOARD_STATS.to_owned(),
    ] {
        let (api, stats, stop) = (api.clone(), Arc::clone(&stats), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let t = stats.console.start();
                match api.get(&path).send().await {
                    Ok(r) if r.status().is_success() => stats.console.done(t),
                    _ => stats.console.failed(),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    {
        let (api, stats, stop) = (api.clone(), Arc::clone(&stats), Arc::clone(&stop));
        let ids: Vec<i64> = tokens.iter().map(|(id, _)| *id).collect();
        tasks.push(tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let id = ids[(jitter() * (ids.len() - 1) as f64) as usize];
                let path = format!("/loadtest/{seq}");
                stats
                    .queued
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(path.clone(), Instant::now());
                let (api, stats) = (api.clone(), Arc::clone(&stats));
                tokio::spawn(async move {
                    let url = format!("{}?path={path}", routes::node_fs_list(id));
                    match api.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {}
                        _ => stats.start.failed(),
                    }
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    tokio::time::sleep(load).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded_agent = stats.agent.take();
    let console = stats.console.take();
    let start = stats.start.take();
    let lost = stats.queued.lock().unwrap_or_else(|e| e.into_inner()).len();

    let secs = load.as_secs_f64();
    println!();
    println!("N = {n} agents, default settings");
    println!(
        "| phase | offered req/s | served req/s | agent p50 / p99 | console p50 / p99 | errors |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| idle ({}s) | {:.0} | {:.0} | {} / {} | – | {} |",
        idle.as_secs(),
        idle_agent.0 as f64 / idle.as_secs_f64(),
        idle_agent.1 as f64 / idle.as_secs_f64(),
        ms(idle_agent.3),
        ms(idle_agent.4),
        idle_agent.2
    );
    println!(
        "| loaded ({}s) | {:.0} | {:.0} | {} / {} | {} / {} | {} |",
        load.as_secs(),
        loaded_agent.0 as f64 / secs,
        loaded_agent.1 as f64 / secs,
        ms(loaded_agent.3),
        ms(loaded_agent.4),
        ms(console.3),
        ms(console.4),
        loaded_agent.2 + console.2
    );
    println!(
        "idle, per agent: {:.3} D1 statements/min ({:.4}/s), {:.3} D1 rows written/min, {:.3} Worker requests/min",
        per(s1 - s0),
        per(s1 - s0) / 60.0,
        per(w1 - w0),
        per(idle_http)
    );
    println!(
        "idle, per agent per day: {:.0} D1 rows written, {:.0} Worker requests",
        per(w1 - w0) * 1440.0,
        per(idle_http) * 1440.0
    );
    println!(
        "command start (queued → agent holds it): {} commands, p50 {} / p99 {}, {} errors, {} never claimed",
        start.1,
        ms(start.3),
        ms(start.4),
        start.2,
        lost
    );
    for agent in fleet {
        agent.abort();
    }
    drop(dev);
    Ok(())
}

fn main() -> Result<()> {
    // Every agent holds a WebSocket and an HTTP connection; so does the server for each.
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().context("N must be a number"))
        .collect::<Result<_>>()?;
    let sizes = if sizes.is_empty() { vec![2000] } else { sizes };
    let secs = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(default), Duration::from_secs)
    };
    let (idle, load) = (secs("IDLE_SECS", 75), secs("LOAD_SECS", 60));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for n in sizes {
        runtime.block_on(run(n, idle, load))?;
    }
    Ok(())
}
