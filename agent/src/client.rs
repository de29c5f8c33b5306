//! The agent side of the protocol: one typed call per endpoint, errors sorted into what the agent
//! must do about them (give up, retry later, or report).

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use stowage_shared::api::{self, routes};
use stowage_shared::protocol::{
    AGENT_PROTOCOL_HEADER, AGENT_PROTOCOL_VERSION, AGENT_TOKEN_HEADER, CommandReport,
    CommandResult, HeartbeatRequest, HeartbeatResponse, LogBatchAccepted, PollResponse,
    ResultAccepted, RunLogBatch,
};
use stowage_shared::{Envelope, ErrorCode, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused this agent for good: wrong or rotated token, or a protocol too old.
    /// Retrying cannot help.
    #[error("the server rejected this agent ({code}): {message}")]
    Rejected { code: ErrorCode, message: String },
    /// The server could not be reached or did not answer in time; try again later.
    #[error("the server is unreachable: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// The server answered with an error about this request.
    #[error("the server answered HTTP {status} {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the server's answer was unreadable: {0}")]
    Decode(String),
}

impl ClientError {
    /// Worth retrying after a pause (network trouble or a server-side failure).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable(_) => true,
            ClientError::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// What an error answer means for the agent: a rejected token or protocol is final.
pub fn refusal(status: u16, code: String, message: String) -> ClientError {
    match ErrorCode::from_code(&code) {
        Some(code @ (ErrorCode::NodeInvalidToken | ErrorCode::AgentProtocolUnsupported)) => {
            ClientError::Rejected { code, message }
        }
        _ => ClientError::Refused {
            status,
            code,
            message,
        },
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: SecretString,
}

impl Client {
    pub fn new(server: &str, token: SecretString) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("stowage-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // The API never redirects. Following one would carry X-Agent-Token (which reqwest
            // does not know to strip) to wherever the redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ClientError::Unreachable)?;
        Ok(Self {
            http,
            server: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let json = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.post_raw(path, json, "application/json").await
    }

    async fn post_raw<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<T, ClientError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.server))
            .header(AGENT_TOKEN_HEADER, self.token.expose())
            .header(AGENT_PROTOCOL_HEADER, AGENT_PROTOCOL_VERSION.to_string())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(ClientError::Unreachable)?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            let to = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("elsewhere")
                .to_owned();
            return Err(ClientError::Decode(format!(
                "HTTP {status}: the server redirects to {to}; the agent follows no redirect (it would carry the node's token): point --server at the final address"
            )));
        }
        let bytes = resp.bytes().await.map_err(ClientError::Unreachable)?;
        let envelope: Envelope<T> = serde_json::from_slice(&bytes).map_err(|e| {
            ClientError::Decode(format!(
                "HTTP {status}: {e}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ))
        })?;
        if (200..300).contains(&status) && envelope.is_ok() {
            return envelope
                .data
                .ok_or_else(|| ClientError::Decode("a success without data".to_owned()));
        }
        Err(refusal(status, envelope.code, envelope.message))
    }

    pub async fn heartbeat(
        &self,
        req: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, ClientError> {
        self.post(routes::AGENT_HEARTBEAT, req).await
    }

    /// The request that opens the agent's link: `ws://` or `wss://` as the server is `http://`
    /// or `https://`, with the node's token in a header (never in the URL, which logs keep).
    pub fn link_request(
        &self,
    ) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, ClientError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::HeaderValue;
        let url = match self.server.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}{}", routes::AGENT_LINK),
            Some(("http", rest)) => format!("ws://{rest}{}", routes::AGENT_LINK),
            _ => {
                return Err(ClientError::Decode(format!(
                    "not an http(s) server: {}",
                    self.server
                )));
            }
        };
        let mut req = url
            .into_client_request()
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let header =
            |v: &str| HeaderValue::from_str(v).map_err(|e| ClientError::Decode(e.to_string()));
        let headers = req.headers_mut();
        headers.insert(AGENT_TOKEN_HEADER, header(self.token.expose())?);
        headers.insert(
            AGENT_PROTOCOL_HEADER,
            header(&AGENT_PROTOCOL_VERSION.to_string())?,
        );
        headers.insert(
            "User-Agent",
            header(concat!("stowage-agent/", env!("CARGO_PKG_VERSION")))?,
        );
        Ok(req)
    }

    pub async fn poll(&self) -> Result<PollResponse, ClientError> {
        self.post(routes::AGENT_POLL, &serde_json::json!({})).await
    }

    pub async fn post_log(
        &self,
        kind: Kind,
        id: i64,
        batch: &RunLogBatch,
    ) -> Result<LogBatchAccepted, ClientError> {
        let path = match kind {
            Kind::Backup => routes::agent_record_log(id),
            Kind::Restore => routes::agent_restore_log(id),
            Kind::Verify => routes::agent_verify_log(id),
        };
        self.post(&path, batch).await
    }

    /// Posts chunk `seq` of a relayed download.
    /// Chunk `seq` of a relay; `tar` on the first one says it carries a tar stream.
    pub async fn post_relay_chunk(
        &self,
        relay_id: i64,
        (seq, tar): (u64, bool),
        bytes: Vec<u8>,
    ) -> Result<serde_json::Value, ClientError> {
        let route = if tar && seq == 0 {
            routes::agent_relay_tar_chunk(relay_id)
        } else {
            routes::agent_relay_chunk(relay_id, seq)
        };
        self.post_raw(&route, bytes, "application/octet-stream")
            .await
    }

    pub async fn report(
        &self,
        id: i64,
        result: &CommandResult<CommandReport>,
    ) -> Result<ResultAccepted, ClientError> {
        self.post(&api::routes::agent_command_result(id), result)
            .await
    }
}

/// Whose log this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Backup,
    Restore,
    Verify,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_the_token_goes_nowhere_else() {
        // The other origin: whatever connects to it would receive the token.
        let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        elsewhere.set_nonblocking(true).expect("nonblocking");
        let to = format!("http://{}/steal", elsewhere.local_addr().expect("addr"));
        let server = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", server.local_addr().expect("addr"));
        let answer = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = server.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        let client = Client::new(&url, SecretString::new("stn_secret")).expect("client");
        let err = client.poll().await.expect_err("a redirect is an error");
        assert!(err.to_string().contains("redirect"), "{err}");
        // Nothing ever dialled the other origin.
        assert!(
            matches!(elsewhere.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the agent followed the redirect"
        );
    }
}
