//! The handle on the nodes' Durable Objects (`node_link::NodeLink`, one per node): what the rest
//! of the Worker asks of them. The objects are reachable only through this binding, never from
//! the internet, so the identity headers set here are trusted by the object.

use crate::error::ApiError;
use stowage_shared::protocol::HeartbeatRequest;
use worker::{Env, Headers, Method, ObjectNamespace, Request, RequestInit, Response, Stub};

/// The binding in wrangler.toml.
pub const BINDING: &str = "LINKS";

/// Headers the Worker sets on its requests to an object: the node it authenticated.
pub const NODE_ID: &str = "X-Link-Node";
pub const NODE_NAME: &str = "X-Link-Name";
/// The node's last sighting when D1 marks it offline (absent while online, or never seen): a
/// heartbeat then means it came back.
pub const OFFLINE_SINCE: &str = "X-Link-Offline-Since";

/// The object paths (the host is ignored).
pub const CONNECT: &str = "https://link/connect";
pub const BEAT: &str = "https://link/beat";
pub const WAKE: &str = "https://link/wake";
pub const CLOSE: &str = "https://link/close";

/// The object that holds node `id`.
pub fn object_name(id: i64) -> String {
    format!("node:{id}")
}

/// The node an object holds, from its name.
pub fn node_of(object_name: &str) -> Option<i64> {
    object_name.strip_prefix("node:")?.parse().ok()
}

/// Who an object is asked about.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub id: i64,
    pub name: &'a str,
    pub offline_since: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct Links(ObjectNamespace);

impl Links {
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        env.durable_object(BINDING).map(Links).map_err(|_| {
            ApiError::Misconfigured(format!("Durable Object binding {BINDING} is missing"))
        })
    }

    fn stub(&self, id: i64) -> Result<Stub, ApiError> {
        Ok(self.0.id_from_name(&object_name(id))?.get_stub()?)
    }

    fn request(
        url: &str,
        method: Method,
        node: &Node<'_>,
        body: Option<String>,
    ) -> Result<Request, ApiError> {
        let headers = Headers::new();
        headers.set(NODE_ID, &node.id.to_string())?;
        headers.set(NODE_NAME, node.name)?;
        if let Some(since) = node.offline_since {
            headers.set(OFFLINE_SINCE, since)?;
        }
        if method == Method::Get {
            headers.set("Upgrade", "websocket")?;
        }
        let mut init = RequestInit::new();
        init.with_method(method).with_headers(headers);
        if let Some(body) = body {
            init.with_body(Some(body.into()));
        }
        Ok(Request::new_with_init(url, &init)?)
    }

    /// Opens an agent's link: the object accepts the WebSocket and the 101 answer goes back to
    /// the agent as it is.
    pub async fn connect(&self, node: &Node<'_>) -> Result<Response, ApiError> {
        let req = Self::request(CONNECT, Method::Get, node, None)?;
        Ok(self.stub(node.id)?.fetch_with_request(req).await?)
    }

    /// An HTTP heartbeat (agents without a link): the object answers it as it answers one sent
    /// on a link.
    pub async fn beat(
        &self,
        node: &Node<'_>,
        heartbeat: &HeartbeatRequest,
    ) -> Result<Response, ApiError> {
        let body = serde_json::to_string(heartbeat)
            .map_err(|e| ApiError::internal("encode heartbeat", e))?;
        let req = Self::request(BEAT, Method::Post, node, Some(body))?;
        Ok(self.stub(node.id)?.fetch_with_request(req).await?)
    }

    /// Closes node `id`'s link: its token was rotated or the node deleted, and a link opened
    /// with the old token must not outlive it.
    pub async fn close(&self, id: i64) -> Result<(), ApiError> {
        let node = Node {
            id,
            name: "",
            offline_since: None,
        };
        let req = Self::request(CLOSE, Method::Post, &node, None)?;
        self.stub(id)?.fetch_with_request(req).await?;
        Ok(())
    }

    /// Tells node `id`'s agent that work is queued. A wake that does not arrive only delays the
    /// work: the object looks for queued commands at each flush and an agent claims at each
    /// (re)connect, so a failure is logged, not raised.
    pub async fn wake(&self, id: i64) {
        let woken = async {
            let node = Node {
                id,
                name: "",
                offline_since: None,
            };
            let req = Self::request(WAKE, Method::Post, &node, None)?;
            self.stub(id)?.fetch_with_request(req).await?;
            Ok::<(), ApiError>(())
        }
        .await;
        if let Err(err) = woken {
            worker::console_warn!("could not wake node {id}'s agent: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_round_trip() {
        assert_eq!(node_of(&object_name(42)), Some(42));
        assert_eq!(node_of("other:1"), None);
        assert_eq!(node_of("node:x"), None);
    }
}
