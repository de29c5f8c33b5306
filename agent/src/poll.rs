//! The agent's work loop. It holds a link to the server (`link`), on which it is woken when work
//! is queued, and claims commands over HTTP, each run in its own task and reported. While a link
//! cannot be held (an older server, a proxy that breaks WebSockets) it falls back to the two HTTP
//! loops of protocol 2: heartbeats (liveness, capabilities, lease renewal) and polling at the
//! server's interval, jittered. Each loop exposes one step — [`Agent::heartbeat_once`],
//! [`Agent::poll_once`] — so tests can drive them alone; shutdown is a parameter.

use crate::client::{Client, ClientError};
use crate::exec;
use crate::link::{Ended, Station};
use crate::storage::Tools;
use crate::system::Identity;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stowage_shared::api::Capabilities;
use stowage_shared::link;
use stowage_shared::protocol::{HeartbeatRequest, HeartbeatResponse};
use tokio::sync::{Notify, Semaphore, watch};
use tracing::{debug, error, info, warn};

/// How long shutdown waits for running commands to finish and report.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    pub heartbeat: Duration,
    pub poll: Duration,
}

/// What one poll step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing was waiting.
    Idle,
    /// A command was claimed and started in its own task.
    Started(i64),
    /// Every execution slot is busy; nothing was claimed.
    Full,
}

#[derive(Debug)]
pub struct Agent {
    client: Client,
    identity: Identity,
    capabilities: Capabilities,
    tools: Tools,
    max_concurrent: usize,
    slots: Arc<Semaphore>,
    running: Mutex<BTreeSet<i64>>,
    intervals: Mutex<Intervals>,
    /// Signalled when a command finishes, so that work left queued while every slot was busy
    /// is claimed.
    finished: Arc<Notify>,
}

/// A number in 0.0–1.0 from the OS's randomness, to spread a fleet's retries and polls.
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::getrandom(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

/// How long the agent polls over HTTP before trying a link again, once links failed or the
/// server offers none.
const FALLBACK_SPELL: Duration = Duration::from_secs(300);
/// Links that fail this many times in a row without ever answering send the agent to HTTP
/// polling for a spell.
const LINK_ATTEMPTS: u32 = 3;

impl Agent {
    pub fn new(
        client: Client,
        identity: Identity,
        capabilities: Capabilities,
        tools: Tools,
        max_concurrent: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            client,
            identity,
            capabilities,
            tools,
            max_concurrent,
            slots: Arc::new(Semaphore::new(max_concurrent)),
            running: Mutex::new(BTreeSet::new()),
            intervals: Mutex::new(Intervals {
                heartbeat: Duration::from_secs(10),
                poll: Duration::from_secs(2),
            }),
            finished: Arc::new(Notify::new()),
        })
    }

    pub fn intervals(&self) -> Intervals {
        *self.intervals.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn running(&self) -> Vec<i64> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    fn set_running(&self, id: i64, on: bool) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            running.insert(id);
        } else {
            running.remove(&id);
        }
    }

    /// One heartbeat over HTTP: reports the machine and the running commands (renewing their
    /// leases) and adopts the timings the server asks for.
    pub async fn heartbeat_once(&self) -> Result<HeartbeatResponse, ClientError> {
        let resp = self.client.heartbeat(&self.heartbeat_request()).await?;
        self.adopt(&resp);
        Ok(resp)
    }

    /// One poll: when a slot is free, claim at most one command and start it.
    pub async fn poll_once(self: &Arc<Self>) -> Result<Step, ClientError> {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return Ok(Step::Full);
        };
        let Some(command) = self.client.poll().await?.command else {
            return Ok(Step::Idle);
        };
        let id = command.id;
        info!(command = id, kind = command.spec.kind().as_str(), "claimed");
        self.set_running(id, true);
        let agent = Arc::clone(self);
        tokio::spawn(async move {
            let _slot = slot;
            let result = exec::execute(&command.spec, &agent.tools, Some(&agent.client)).await;
            agent.report(id, &result).await;
            agent.set_running(id, false);
            agent.finished.notify_one();
        });
        Ok(Step::Started(id))
    }

    /// Reports a result, retrying while the server is unreachable; a refusal is final.
    async fn report(
        &self,
        id: i64,
        result: &stowage_shared::protocol::CommandResult<stowage_shared::protocol::CommandReport>,
    ) {
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=8 {
            match self.client.report(id, result).await {
                Ok(_) => {
                    debug!(command = id, "reported");
                    return;
                }
                Err(e) if e.is_transient() => {
                    warn!(command = id, attempt, error = %e, "could not report the result; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    warn!(command = id, error = %e, "the server refused the result");
                    return;
                }
            }
        }
        error!(
            command = id,
            "gave up reporting the result; the server will expire the command"
        );
    }

    /// Heartbeats until the server answers. Returns the first answer, or the error that makes
    /// retrying pointless (a rejected token); stops early on shutdown.
    pub async fn connect(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<HeartbeatResponse>, ClientError> {
        let mut delay = Duration::from_secs(1);
        loop {
            match self.heartbeat_once().await {
                Ok(resp) => return Ok(Some(resp)),
                Err(e) if e.is_transient() || matches!(e, ClientError::Decode(_)) => {
                    warn!(server = self.client.server(), error = %e, "cannot reach the server; retrying in {}s", delay.as_secs());
                }
                Err(e) => return Err(e),
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return Ok(None),
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// Works until `shutdown` turns true or the server rejects the agent: on a link while one
    /// can be held, reconnecting with jittered backoff, else over HTTP for a spell. Then stops
    /// claiming, lets running commands finish (bounded, their leases kept by HTTP heartbeats)
    /// and returns.
    pub async fn run(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ClientError> {
        let mut failures = 0u32;
        let outcome = loop {
            if *shutdown.borrow() {
                break Ok(());
            }
            match crate::link::hold(&self, &mut shutdown).await {
                Ended::Shutdown => break Ok(()),
                Ended::Fatal(e) => break Err(e),
                Ended::Dropped { held, why } => {
                    failures = if held { 0 } else { failures + 1 };
                    warn!(reason = %why, "the link to the server is down; reconnecting");
                }
                Ended::Unsupported(why) => {
                    info!(reason = %why, "the server offers no link; polling over HTTP");
                    failures = LINK_ATTEMPTS;
                }
            }
            // Links keep failing while HTTP works (an older server, a proxy that breaks
            // WebSockets): poll over HTTP for a spell, then try a link again.
            if failures >= LINK_ATTEMPTS && self.heartbeat_once().await.is_ok() {
                match self.poll_over_http(&mut shutdown, FALLBACK_SPELL).await {
                    Ok(true) => break Ok(()),
                    Ok(false) => {
                        failures = 0;
                        continue;
                    }
                    Err(e) => break Err(e),
                }
            }
            let pause = link::reconnect_delay(failures, jitter());
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => break Ok(()),
            }
        };

        if outcome.is_ok() && !self.running().is_empty() {
            info!("shutting down: waiting for running commands to finish");
            let (stop_beats, beats_stopped) = watch::channel(false);
            let (fatal_tx, _fatal_rx) = tokio::sync::mpsc::channel::<ClientError>(1);
            let beats = {
                let agent = Arc::clone(&self);
                tokio::spawn(async move { agent.heartbeat_loop(beats_stopped, fatal_tx).await })
            };
            let all = u32::try_from(self.max_concurrent).unwrap_or(u32::MAX);
            match tokio::time::timeout(DRAIN_TIMEOUT, self.slots.acquire_many(all)).await {
                Ok(_) => info!("all commands finished"),
                Err(_) => {
                    warn!(running = ?self.running(), "commands still running after {DRAIN_TIMEOUT:?}; their leases will lapse")
                }
            }
            let _ = stop_beats.send(true);
            let _ = beats.await;
        }
        outcome
    }

    /// Protocol 2's two loops, heartbeats and polls over HTTP, for `spell`: true when shutdown
    /// was asked for, false when the spell is over.
    async fn poll_over_http(
        self: &Arc<Self>,
        shutdown: &mut watch::Receiver<bool>,
        spell: Duration,
    ) -> Result<bool, ClientError> {
        let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<ClientError>(1);
        let (stop_beats, beats_stopped) = watch::channel(false);
        let beats = {
            let agent = Arc::clone(self);
            tokio::spawn(async move { agent.heartbeat_loop(beats_stopped, fatal_tx).await })
        };
        let until = tokio::time::Instant::now() + spell;
        let mut backoff = Duration::from_secs(1);
        let outcome = loop {
            let pause = match self.poll_once().await {
                Ok(Step::Started(_)) => {
                    backoff = Duration::from_secs(1);
                    Duration::ZERO
                }
                Ok(Step::Idle | Step::Full) => {
                    backoff = Duration::from_secs(1);
                    link::jittered(self.intervals().poll, jitter())
                }
                Err(e) if e.is_transient() || matches!(e, ClientError::Decode(_)) => {
                    warn!(error = %e, "poll failed; retrying in {}s", backoff.as_secs());
                    let pause = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    pause
                }
                Err(e) => break Err(e),
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = tokio::time::sleep_until(until) => break Ok(false),
                _ = shutdown.changed() => break Ok(true),
                Some(e) = fatal_rx.recv() => break Err(e),
            }
        };
        let _ = stop_beats.send(true);
        let _ = beats.await;
        outcome
    }

    async fn heartbeat_loop(
        &self,
        mut stop: watch::Receiver<bool>,
        fatal: tokio::sync::mpsc::Sender<ClientError>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.intervals().heartbeat) => {}
                _ = stop.changed() => return,
            }
            match self.heartbeat_once().await {
                Ok(_) => {}
                Err(e) if e.is_transient() || matches!(e, ClientError::Decode(_)) => {
                    warn!(error = %e, "heartbeat failed; the next one follows on schedule");
                }
                Err(e) => {
                    let _ = fatal.send(e).await;
                    return;
                }
            }
        }
    }
}

impl Station for Agent {
    fn client(&self) -> &Client {
        &self.client
    }

    fn finished(&self) -> Arc<Notify> {
        Arc::clone(&self.finished)
    }

    fn heartbeat_interval(&self) -> Duration {
        self.intervals().heartbeat
    }

    fn running(&self) -> Vec<i64> {
        Agent::running(self)
    }

    /// What a heartbeat says: the machine, what it can do and the commands it runs.
    fn heartbeat_request(&self) -> HeartbeatRequest {
        HeartbeatRequest {
            hostname: self.identity.hostname.clone(),
            ip_address: self.identity.ip_address.clone(),
            os: self.identity.os.clone(),
            arch: self.identity.arch.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: self.capabilities.clone(),
            running: self.running(),
        }
    }

    /// Adopts the timings the server asks for and reports the commands it gave up.
    fn adopt(&self, resp: &HeartbeatResponse) {
        *self.intervals.lock().unwrap_or_else(|e| e.into_inner()) = Intervals {
            heartbeat: Duration::from_secs(resp.heartbeat_interval_secs.max(1)),
            poll: Duration::from_secs(resp.poll_interval_secs.max(1)),
        };
        for id in &resp.lost {
            warn!(
                command = id,
                "the server no longer holds this command's lease; its result will be refused"
            );
        }
    }

    /// Claims and starts commands until none is waiting or every slot is busy; false when a
    /// poll failed and claiming should be tried again.
    async fn claim_all(self: Arc<Self>) -> bool {
        loop {
            match self.poll_once().await {
                Ok(Step::Started(_)) => {}
                Ok(Step::Idle | Step::Full) => return true,
                Err(e) if e.is_transient() || matches!(e, ClientError::Decode(_)) => {
                    warn!(error = %e, "claiming work failed; trying again shortly");
                    return false;
                }
                Err(e) => {
                    warn!(error = %e, "the server refused the claim");
                    return true;
                }
            }
        }
    }
}
