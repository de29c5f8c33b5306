//! The agent's link to the control plane (`shared::link`): one WebSocket, held by its node's
//! Durable Object, on which the agent is woken the moment work is queued and proves it is alive
//! with pings the server's runtime answers without waking anything. Commands are still claimed
//! and reported over HTTP; the link only says when.
//!
//! [`hold`] keeps one link until it drops; `poll::Agent::run` reconnects with backoff and falls
//! back to HTTP heartbeats and polling while a link cannot be held.

use crate::client::{Client, ClientError, refusal};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stowage_shared::Envelope;
use stowage_shared::link::{self, Down, Up};
use stowage_shared::protocol::{HeartbeatRequest, HeartbeatResponse};
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::{debug, info, warn};

/// How long opening a link, and the first answer on it, may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// Pongs missed for this many heartbeat intervals mean the link is dead (a half-open TCP
/// connection can look open for minutes).
const MISSED_PONGS: u32 = 3;

/// What holds a link: the agent (`poll::Agent`), seen only through what the link needs.
pub trait Station: Send + Sync {
    fn client(&self) -> &Client;
    /// A full heartbeat: the machine, what it can do, what it runs.
    fn heartbeat_request(&self) -> HeartbeatRequest;
    /// Adopts the server's timings from a heartbeat's answer.
    fn adopt(&self, response: &HeartbeatResponse);
    fn heartbeat_interval(&self) -> Duration;
    /// The commands running now.
    fn running(&self) -> Vec<i64>;
    /// Signalled when a command finishes and a slot is free.
    fn finished(&self) -> Arc<Notify>;
    /// Claims and starts queued commands; false when claiming should be tried again.
    fn claim_all(self: Arc<Self>) -> impl Future<Output = bool> + Send;
}

/// How a link ended.
#[derive(Debug)]
pub enum Ended {
    /// Shutdown was asked for.
    Shutdown,
    /// The server rejected the agent (token, protocol): retrying is pointless.
    Fatal(ClientError),
    /// The link could not be opened or broke; `held` says it was up and answered first.
    Dropped { held: bool, why: String },
    /// The server does not offer links (an older control plane): poll over HTTP.
    Unsupported(String),
}

/// Opens the link and serves it until it ends.
pub async fn hold<S: Station>(agent: &Arc<S>, shutdown: &mut watch::Receiver<bool>) -> Ended {
    let request = match agent.client().link_request() {
        Ok(r) => r,
        Err(e) => return Ended::Fatal(e),
    };
    let opened = tokio::time::timeout(OPEN_TIMEOUT, tokio_tungstenite::connect_async(request));
    let socket = match opened.await {
        Err(_) => {
            return Ended::Dropped {
                held: false,
                why: "no answer to the link request".to_owned(),
            };
        }
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            let body = response.body().clone().unwrap_or_default();
            return match serde_json::from_slice::<Envelope<serde_json::Value>>(&body) {
                Ok(envelope) => match refusal(status, envelope.code, envelope.message) {
                    e @ ClientError::Rejected { .. } => Ended::Fatal(e),
                    e if status == 404 || status == 405 => Ended::Unsupported(e.to_string()),
                    e => Ended::Dropped {
                        held: false,
                        why: e.to_string(),
                    },
                },
                Err(_) if status == 404 || status == 405 => {
                    Ended::Unsupported(format!("HTTP {status}"))
                }
                Err(_) => Ended::Dropped {
                    held: false,
                    why: format!("HTTP {status}"),
                },
            };
        }
        Ok(Err(e)) => {
            return Ended::Dropped {
                held: false,
                why: e.to_string(),
            };
        }
        Ok(Ok((socket, _))) => socket,
    };
    let (mut tx, mut rx) = socket.split();
    let send = |up: &Up| Message::text(serde_json::to_string(up).unwrap_or_default());

    // The link opens with a full heartbeat, answered with the node's timings.
    if let Err(e) = tx
        .send(send(&Up::Heartbeat(agent.heartbeat_request())))
        .await
    {
        return Ended::Dropped {
            held: false,
            why: e.to_string(),
        };
    }
    let first = tokio::time::timeout(OPEN_TIMEOUT, async {
        while let Some(message) = rx.next().await {
            if let Ok(Message::Text(text)) = message
                && let Ok(Down::Heartbeat(response)) = serde_json::from_str::<Down>(&text)
            {
                return Some(response);
            }
        }
        None
    })
    .await;
    let Ok(Some(response)) = first else {
        return Ended::Dropped {
            held: false,
            why: "the link closed before the server answered its first heartbeat".to_owned(),
        };
    };
    agent.adopt(&response);
    info!(node = response.node_name, "linked to the server");

    // Whatever was queued while the agent was away is claimed now.
    let mut claim = true;
    let mut heard = Instant::now();
    let mut beat = tokio::time::interval(agent.heartbeat_interval());
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    beat.tick().await;
    let finished = agent.finished();
    loop {
        if claim {
            claim = !Arc::clone(agent).claim_all().await;
        }
        tokio::select! {
            _ = beat.tick() => {
                let interval = agent.heartbeat_interval();
                if heard.elapsed() > interval * MISSED_PONGS {
                    return Ended::Dropped { held: true, why: format!("no answer for {:?}", heard.elapsed()) };
                }
                // Idle: a ping the runtime answers. Running: a heartbeat that keeps the leases.
                let running = agent.running();
                let message = if running.is_empty() {
                    Message::text(link::PING)
                } else {
                    send(&Up::Heartbeat(agent.heartbeat_request()))
                };
                if let Err(e) = tx.send(message).await {
                    return Ended::Dropped { held: true, why: e.to_string() };
                }
            }
            message = rx.next() => {
                heard = Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) if text.as_str() == link::PONG => {}
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Down>(&text) {
                        Ok(Down::Work) => {
                            debug!("woken: work is queued");
                            claim = true;
                        }
                        Ok(Down::Heartbeat(response)) => {
                            if response.heartbeat_interval_secs != beat.period().as_secs() {
                                beat = tokio::time::interval(agent.heartbeat_interval());
                                beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                            }
                            agent.adopt(&response);
                        }
                        Err(e) => warn!(error = %e, "unreadable message on the link"),
                    },
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map_or_else(|| "closed".to_owned(), |f| format!("{} {}", f.code, f.reason));
                        return Ended::Dropped { held: true, why };
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Ended::Dropped { held: true, why: e.to_string() },
                    None => return Ended::Dropped { held: true, why: "closed".to_owned() },
                }
            }
            // A command finished: a slot is free for anything still queued.
            _ = finished.notified() => claim = true,
            _ = shutdown.changed() => {
                let _ = tx.send(Message::Close(None)).await;
                return Ended::Shutdown;
            }
        }
    }
}
