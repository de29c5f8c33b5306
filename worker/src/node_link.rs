//! `NodeLink`: the Durable Object of one node (named `node:<id>`, see `links`). It holds the
//! agent's link (a WebSocket accepted with the hibernation API), answers its heartbeats, sent on
//! the link or over HTTP, wakes it when work is queued, and owns the node's liveness:
//!
//! - an idle agent's pings are answered by the runtime without waking the object, and its
//!   alarm reads when the last one came; D1 gets `lastSeenAt` at most once a minute
//!   (`shared::link::at_alarm`) and the node's status only when it changes;
//! - a running command's lease is renewed in D1 once half of it is gone, not at every heartbeat;
//! - what it knows lives in memory and, so that it survives hibernation, in the link's
//!   attachment (or the object's storage when no link is left); an object that lost it all
//!   (evicted, restarted) rebuilds from the next heartbeat and from D1, where leases and
//!   statuses are kept: nothing is claimed twice (claims are D1's conditional updates) and a
//!   lease it does not know is simply renewed.

use crate::error::ApiError;
use crate::links::{self, NODE_ID, NODE_NAME, OFFLINE_SINCE};
use crate::ops::fleet;
use crate::store::{commands, nodes};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use stowage_shared::ErrorCode;
use stowage_shared::commands::lease_until;
use stowage_shared::link::{self, Alarm, Down, Liveness, Up};
use stowage_shared::nodes::Timings;
use stowage_shared::protocol::{HeartbeatRequest, HeartbeatResponse};
use stowage_shared::time::{self, Timestamp};
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys;
use worker::{
    DurableObject, Env, Request, Response, State, WebSocket, WebSocketIncomingMessage,
    WebSocketPair, durable_object,
};

/// The tag of agent links among the object's WebSockets.
const AGENT: &str = "agent";
/// Where the memory goes when no link is left to carry it.
const MEMORY_KEY: &str = "memory";
/// The deployment's timings (with the settings' overrides) are read again after this long.
const TIMINGS_TTL_MS: i64 = 10 * 60 * 1000;
/// HTTP heartbeats allowed per window; an agent sends one every few seconds at the shortest
/// setting, so anything far faster is a broken or hostile agent.
const PACE_WINDOW_MS: i64 = 10_000;
const MAX_HEARTBEATS: usize = 20;

/// What the object knows of its node, in milliseconds since the epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Memory {
    node: i64,
    name: String,
    heard: i64,
    flushed: Option<i64>,
    /// D1 marks the node online as far as this object knows (it wrote so itself).
    online: bool,
    /// D1 marked the node offline when its agent connected: the sighting it was offline since,
    /// for the "back online" notification.
    offline_since: Option<String>,
    /// A digest of what the last heartbeat said about the machine: written to D1 on change.
    machine: String,
    /// Running commands' lease ends, as last written to D1 by this object.
    leases: Vec<(i64, i64)>,
    timings: Option<CachedTimings>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct CachedTimings {
    heartbeat: i64,
    poll: i64,
    lease: i64,
    offline_after: i64,
    read_at: i64,
}

impl CachedTimings {
    fn secs(&self, v: i64) -> chrono::Duration {
        chrono::Duration::seconds(v)
    }
}

/// An error for the runtime, from an event handler that cannot answer with a response.
fn js(err: ApiError) -> worker::Error {
    worker::Error::RustError(err.to_string())
}

fn ms(at: Timestamp) -> i64 {
    at.timestamp_millis()
}

fn at(ms: i64) -> Timestamp {
    time::from_unix_millis(ms).unwrap_or_default()
}

#[durable_object]
#[derive(Debug)]
pub struct NodeLink {
    state: State,
    env: Env,
    memory: RefCell<Option<Memory>>,
    /// When this instance began: an object that lost its memory gives its agent this long to
    /// be heard before judging it silent.
    started: Timestamp,
    alarm_set: Cell<bool>,
    beats: RefCell<VecDeque<i64>>,
}

impl DurableObject for NodeLink {
    fn new(state: State, env: Env) -> Self {
        match worker::worker_sys::WebSocketRequestResponsePair::new(link::PING, link::PONG) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => worker::console_error!("auto-response not set: {e:?}"),
        }
        Self {
            state,
            env,
            memory: RefCell::new(None),
            started: crate::now(),
            alarm_set: Cell::new(false),
            beats: RefCell::new(VecDeque::new()),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let result = match req.path().as_str() {
            "/connect" => self.accept_link(&req).await,
            "/beat" => self.http_beat(req).await,
            "/wake" => self.wake(),
            "/close" => self.close_links(4003, "the node's token was rotated or the node deleted"),
            _ => Err(ApiError::new(ErrorCode::NotFound, "no such link call")),
        };
        Ok(result.unwrap_or_else(ApiError::into_response))
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(err) = self.on_alarm().await {
            worker::console_error!("node link alarm failed: {err}");
            // Try again shortly; the tick's backstop covers an object that keeps failing.
            let retry = crate::now() + chrono::Duration::seconds(30);
            self.state.storage().set_alarm(retry).await?;
        }
        Response::ok("")
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let now = crate::now();
        let text = match message {
            WebSocketIncomingMessage::String(text) => text,
            WebSocketIncomingMessage::Binary(_) => {
                let _ = ws.close(Some(1003), Some("text frames only"));
                return Ok(());
            }
        };
        let Some(mut memory) = self.load().await.map_err(js)? else {
            let _ = ws.close(Some(1011), Some("link state lost; reconnect"));
            return Ok(());
        };
        if text == link::PING {
            // The runtime answers pings itself; one that reached here is still a sign of life.
            memory.heard = memory.heard.max(ms(now));
            self.save(memory).map_err(js)?;
            let _ = ws.send_with_str(link::PONG);
            return Ok(());
        }
        match serde_json::from_str::<Up>(&text) {
            Ok(Up::Heartbeat(_)) if self.paced(now).is_err() => {
                // A flood is a broken or hostile agent: its link goes, and it must reconnect.
                let _ = ws.close(Some(4008), Some("heartbeats too often"));
            }
            Ok(Up::Heartbeat(heartbeat)) => match self.beat(memory, &heartbeat, now).await {
                Ok(response) => ws.send(&Down::Heartbeat(response))?,
                Err(err) => worker::console_error!("link heartbeat failed: {err}"),
            },
            Err(e) => {
                let _ = ws.close(Some(1003), Some(format!("unreadable message: {e}")));
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        self.link_gone(&ws).await
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.link_gone(&ws).await
    }
}

impl NodeLink {
    fn db(&self) -> Result<worker::D1Database, ApiError> {
        Ok(crate::config::AppState::from_env(&self.env)?.db)
    }

    fn links(&self) -> Vec<WebSocket> {
        self.state.get_websockets_with_tag(AGENT)
    }

    /// The last ping the runtime answered on `ws`, if any.
    /// (`getWebSocketAutoResponseTimestamp`: workers-rs 0.8 binds the rest of the hibernation
    /// API but not this, so it is called through `Reflect`.)
    fn pinged(&self, ws: &WebSocket) -> Option<i64> {
        let state: &JsValue = self.state.as_raw().as_ref();
        let getter = js_sys::Reflect::get(state, &"getWebSocketAutoResponseTimestamp".into())
            .ok()?
            .dyn_into::<js_sys::Function>()
            .ok()?;
        let socket: &JsValue = ws.as_ref().as_ref();
        let date = getter
            .call1(state, socket)
            .ok()?
            .dyn_into::<js_sys::Date>()
            .ok()?;
        let ms = date.get_time();
        ms.is_finite().then_some(ms as i64)
    }

    /// The memory: this instance's, else the link's attachment, else the object's storage.
    async fn load(&self) -> Result<Option<Memory>, ApiError> {
        if let Some(memory) = self.memory.borrow().clone() {
            return Ok(Some(memory));
        }
        let attached = self
            .links()
            .iter()
            .find_map(|ws| ws.deserialize_attachment::<Memory>().ok().flatten());
        let memory = match attached {
            Some(memory) => Some(memory),
            None => self.state.storage().get::<Memory>(MEMORY_KEY).await?,
        };
        self.memory.borrow_mut().clone_from(&memory);
        Ok(memory)
    }

    /// Keeps `memory` in this instance and on every link, which carries it through hibernation.
    fn save(&self, memory: Memory) -> Result<(), ApiError> {
        for ws in self.links() {
            ws.serialize_attachment(&memory)?;
        }
        *self.memory.borrow_mut() = Some(memory);
        Ok(())
    }

    /// The node's identity as the Worker authenticated it.
    fn identity(req: &Request) -> Result<(i64, String, Option<String>), ApiError> {
        let headers = req.headers();
        let id = headers
            .get(NODE_ID)?
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| ApiError::internal("node link", "no node id"))?;
        let name = headers.get(NODE_NAME)?.unwrap_or_default();
        Ok((id, name, headers.get(OFFLINE_SINCE)?))
    }

    /// The memory for a call the Worker authenticated: what is known, with the identity it
    /// brings, or a fresh start.
    async fn memory_for(&self, req: &Request) -> Result<Memory, ApiError> {
        let (id, name, offline_since) = Self::identity(req)?;
        let mut memory = match self.load().await? {
            Some(m) if m.node == id => m,
            _ => Memory {
                node: id,
                name: String::new(),
                heard: ms(self.started),
                flushed: None,
                online: false,
                offline_since: None,
                machine: String::new(),
                leases: Vec::new(),
                timings: None,
            },
        };
        memory.name = name;
        if offline_since.is_some() {
            // D1 says offline: whatever this object believed, the next heartbeat marks it online.
            memory.online = false;
            memory.offline_since = offline_since;
        }
        Ok(memory)
    }

    /// The deployment's timings with the settings' overrides, read from D1 at most every ten
    /// minutes.
    async fn timings(&self, memory: &mut Memory, now: Timestamp) -> Result<Timings, ApiError> {
        let fresh = memory
            .timings
            .filter(|t| ms(now) - t.read_at < TIMINGS_TTL_MS);
        let cached = match fresh {
            Some(t) => t,
            None => {
                let state = crate::config::AppState::from_env(&self.env)?;
                let settings = crate::store::settings::load(&state.db).await?;
                let t = settings.timings(state.config.timings);
                let cached = CachedTimings {
                    heartbeat: t.heartbeat.num_seconds(),
                    poll: t.poll.num_seconds(),
                    lease: t.lease.num_seconds(),
                    offline_after: t.offline_after.num_seconds(),
                    read_at: ms(now),
                };
                memory.timings = Some(cached);
                cached
            }
        };
        Ok(Timings {
            heartbeat: cached.secs(cached.heartbeat),
            poll: cached.secs(cached.poll),
            lease: cached.secs(cached.lease),
            offline_after: cached.secs(cached.offline_after),
            ..Timings::default()
        })
    }

    async fn ensure_alarm(&self, memory: &Memory, timings: &Timings) -> Result<(), ApiError> {
        if self.alarm_set.get() {
            return Ok(());
        }
        let storage = self.state.storage();
        if storage.get_alarm().await?.is_none() {
            let first = at(memory.heard) + timings.offline_after.min(link::last_seen_flush());
            storage.set_alarm(first.max(crate::now())).await?;
        }
        self.alarm_set.set(true);
        Ok(())
    }

    /// `GET /connect`: accepts the agent's link. One link per node: a reconnecting agent
    /// replaces the link it left behind.
    async fn accept_link(&self, req: &Request) -> Result<Response, ApiError> {
        let now = crate::now();
        let mut memory = self.memory_for(req).await?;
        for old in self.links() {
            let _ = old.close(Some(4001), Some("replaced by a newer link"));
        }
        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &[AGENT]);
        memory.heard = ms(now);
        let timings = self.timings(&mut memory, now).await?;
        self.save(memory.clone())?;
        self.ensure_alarm(&memory, &timings).await?;
        Ok(Response::from_websocket(pair.client)?)
    }

    /// `POST /beat`: a heartbeat over HTTP, paced here rather than with a D1 write per call.
    async fn http_beat(&self, mut req: Request) -> Result<Response, ApiError> {
        let now = crate::now();
        self.paced(now)?;
        let memory = self.memory_for(&req).await?;
        let heartbeat: HeartbeatRequest = req
            .json()
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("heartbeat: {e}")))?;
        let response = self.beat(memory, &heartbeat, now).await?;
        crate::http::ok(&response)
    }

    /// Counts a heartbeat (either transport) in this instance's window; refuses one past the
    /// limit before anything else is done for it.
    fn paced(&self, now: Timestamp) -> Result<(), ApiError> {
        let mut beats = self.beats.borrow_mut();
        while beats.front().is_some_and(|t| ms(now) - t >= PACE_WINDOW_MS) {
            beats.pop_front();
        }
        if beats.len() >= MAX_HEARTBEATS {
            return Err(ApiError::new(
                ErrorCode::AgentRateLimited,
                format!(
                    "this node sends heartbeats too often; at most {MAX_HEARTBEATS} in {} s",
                    PACE_WINDOW_MS / 1000
                ),
            ));
        }
        beats.push_back(ms(now));
        Ok(())
    }

    /// A heartbeat, from either transport: the node row is written when it was not marked
    /// online or the machine changed, leases when half of them is gone.
    async fn beat(
        &self,
        mut memory: Memory,
        heartbeat: &HeartbeatRequest,
        now: Timestamp,
    ) -> Result<HeartbeatResponse, ApiError> {
        let db = self.db()?;
        let timings = self.timings(&mut memory, now).await?;
        let now_text = time::format(now);
        memory.heard = ms(now);
        let machine = fleet::machine_digest(heartbeat);
        if !memory.online || memory.machine != machine {
            fleet::record_heartbeat(&db, memory.node, heartbeat, &now_text).await?;
            if let Some(since) = memory.offline_since.take() {
                fleet::announce(&db, memory.node, &memory.name, true, &since, now).await?;
                self.send_notifications();
            }
            memory.online = true;
            memory.flushed = Some(ms(now));
            memory.machine = machine;
        }
        let known = |id: i64| {
            memory
                .leases
                .iter()
                .find(|(c, _)| *c == id)
                .map(|(_, until)| at(*until))
        };
        let due: Vec<i64> = heartbeat
            .running
            .iter()
            .copied()
            .filter(|id| link::lease_due(known(*id), now, timings.lease, timings.heartbeat))
            .collect();
        let mut lost = Vec::new();
        if !due.is_empty() {
            let until = lease_until(now, timings.lease);
            let renewed =
                commands::renew(&db, memory.node, &due, &now_text, &time::format(until)).await?;
            for id in due {
                memory.leases.retain(|(c, _)| *c != id);
                if renewed.contains(&id) {
                    memory.leases.push((id, ms(until)));
                } else {
                    lost.push(id);
                }
            }
        }
        memory
            .leases
            .retain(|(c, _)| heartbeat.running.contains(c) && !lost.contains(c));
        let response = HeartbeatResponse {
            node_id: memory.node,
            node_name: memory.name.clone(),
            heartbeat_interval_secs: timings.heartbeat.num_seconds().unsigned_abs(),
            poll_interval_secs: timings.poll.num_seconds().unsigned_abs(),
            lease_secs: timings.lease.num_seconds().unsigned_abs(),
            lost,
        };
        self.save(memory.clone())?;
        self.ensure_alarm(&memory, &timings).await?;
        Ok(response)
    }

    /// `POST /wake`: work was queued; the agent claims it over HTTP.
    fn wake(&self) -> Result<Response, ApiError> {
        let links = self.links();
        for ws in &links {
            let _ = ws.send(&Down::Work);
        }
        crate::http::ok(&serde_json::json!({ "linked": links.len() }))
    }

    /// `POST /close`: the node's token stopped being valid; its links go now.
    fn close_links(&self, code: u16, reason: &str) -> Result<Response, ApiError> {
        for ws in self.links() {
            let _ = ws.close(Some(code), Some(reason));
        }
        *self.memory.borrow_mut() = None;
        crate::http::ok(&serde_json::json!({ "closed": true }))
    }

    /// A link closed or failed: what it proved of the agent's life is kept for the alarm.
    async fn link_gone(&self, ws: &WebSocket) -> worker::Result<()> {
        let _ = ws.close(Some(1000), Some("closed"));
        let memory = self.load().await.map_err(js)?;
        if let Some(mut memory) = memory {
            if let Some(pinged) = self.pinged(ws) {
                memory.heard = memory.heard.max(pinged);
            }
            let gone: &JsValue = ws.as_ref().as_ref();
            let others = self.links().iter().any(|other| {
                let other: &JsValue = other.as_ref().as_ref();
                other != gone
            });
            if !others {
                // The agent may be gone for good: judge it by the threshold in force now (read
                // again, a setting may have changed since), from its last sign of life.
                let cached = memory.timings.take();
                let timings = match self.timings(&mut memory, crate::now()).await {
                    Ok(t) => t,
                    Err(err) => {
                        worker::console_warn!("offline threshold not read again: {err}");
                        memory.timings = cached;
                        self.timings(&mut memory, crate::now()).await.map_err(js)?
                    }
                };
                let silent_at = at(memory.heard) + timings.offline_after;
                let storage = self.state.storage();
                let sooner = match storage.get_alarm().await? {
                    Some(alarm) => silent_at.timestamp_millis() < alarm,
                    None => true,
                };
                if sooner {
                    storage.set_alarm(silent_at.max(crate::now())).await?;
                    self.alarm_set.set(true);
                }
                storage.put(MEMORY_KEY, &memory).await?;
            }
            *self.memory.borrow_mut() = Some(memory);
        }
        Ok(())
    }

    /// Sends what was just queued, after this event: the object's own `waitUntil`.
    fn send_notifications(&self) {
        let env = self.env.clone();
        self.state.wait_until(crate::notify::send_now(env));
    }

    async fn on_alarm(&self) -> Result<(), ApiError> {
        let now = crate::now();
        let memory = match self.load().await? {
            Some(memory) => memory,
            None => {
                // Memory lost with no link left: the node from the object's name, and no
                // evidence of life yet (heard = flushed = this instance's start).
                let Some(id) = self.state.id().name().and_then(|n| links::node_of(&n)) else {
                    return Ok(());
                };
                Memory {
                    node: id,
                    name: String::new(),
                    heard: ms(self.started),
                    flushed: Some(ms(self.started)),
                    online: false,
                    offline_since: None,
                    machine: String::new(),
                    leases: Vec::new(),
                    timings: None,
                }
            }
        };
        let mut memory = memory;
        let links = self.links();
        for ws in &links {
            if let Some(pinged) = self.pinged(ws) {
                memory.heard = memory.heard.max(pinged);
            }
        }
        let timings = self.timings(&mut memory, now).await?;
        let db = self.db()?;
        let live = Liveness {
            heard: at(memory.heard),
            flushed: memory.flushed.map(at),
        };
        let heard_text = time::format(at(memory.heard));
        let storage = self.state.storage();
        match link::at_alarm(live, now, timings.offline_after, !links.is_empty()) {
            Alarm::Offline => {
                let seen = if memory.heard > ms(self.started) || memory.online {
                    heard_text.as_str()
                } else {
                    ""
                };
                if let Some(went) =
                    nodes::mark_offline(&db, memory.node, seen, &time::format(now)).await?
                {
                    let last_seen = went.last_seen_at.unwrap_or_else(|| "never".to_owned());
                    fleet::announce(&db, went.id, &went.name, false, &last_seen, now).await?;
                    self.send_notifications();
                }
                for ws in &links {
                    let _ = ws.close(Some(4002), Some("silent past the offline threshold"));
                }
                memory.online = false;
                memory.flushed = None;
                memory.leases.clear();
                storage.put(MEMORY_KEY, &memory).await?;
                *self.memory.borrow_mut() = Some(memory);
                self.alarm_set.set(false);
            }
            Alarm::Alive { flush, next } => {
                // Until its first heartbeat writes the row, a link's node is not flushed.
                if flush && memory.online {
                    match nodes::flush_seen(&db, memory.node, &heard_text).await? {
                        Some(pending) if pending > 0 => {
                            for ws in &links {
                                let _ = ws.send(&Down::Work);
                            }
                        }
                        Some(_) => {}
                        None if nodes::mark_online(&db, memory.node, &heard_text).await? => {
                            // The tick's backstop marked it offline while it was alive here.
                            let name = match nodes::get(&db, memory.node).await? {
                                Some(row) => row.name,
                                None => memory.name.clone(),
                            };
                            fleet::announce(&db, memory.node, &name, true, &heard_text, now)
                                .await?;
                            self.send_notifications();
                        }
                        None => {
                            // The node is gone: so is its link.
                            for ws in &links {
                                let _ = ws.close(Some(4003), Some("the node was deleted"));
                            }
                            storage.delete_all().await?;
                            *self.memory.borrow_mut() = None;
                            return Ok(());
                        }
                    }
                    memory.online = true;
                    memory.flushed = Some(ms(now));
                }
                storage.set_alarm(next).await?;
                self.alarm_set.set(true);
                if links.is_empty() {
                    *self.memory.borrow_mut() = Some(memory);
                } else {
                    self.save(memory)?;
                }
            }
        }
        Ok(())
    }
}
