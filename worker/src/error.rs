//! One error type for every handler, and its one conversion into the envelope.
//!
//! Client mistakes carry a code and a message meant for the user. Internal causes are logged here
//! and never sent: a 500 body says only that something went wrong on our side.

use stowage_shared::{Envelope, ErrorCode};
use worker::{Headers, Response, console_error};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Any 4xx with a code and a human message.
    #[error("{code}: {message}")]
    Request { code: ErrorCode, message: String },
    #[error("rate limited for {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("method not allowed (allowed: {allow})")]
    MethodNotAllowed { allow: String },
    /// A secret or setting is missing or unusable. Named in the log, not in the response.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    #[error("internal error in {context}: {cause}")]
    Internal {
        context: &'static str,
        cause: String,
    },
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Request {
            code,
            message: message.into(),
        }
    }

    pub fn internal(context: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Internal {
            context,
            cause: cause.to_string(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Request { code, .. } => *code,
            Self::RateLimited { .. } => ErrorCode::AuthRateLimited,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::Misconfigured(_) => ErrorCode::ServerMisconfigured,
            Self::Internal { .. } => ErrorCode::InternalError,
        }
    }

    pub fn status(&self) -> u16 {
        self.code().status()
    }

    /// What a user may read about this error (internal causes stay in the log).
    pub fn public_message(&self) -> String {
        match self {
            Self::Request { message, .. } => message.clone(),
            Self::RateLimited { retry_after_secs } => {
                format!("too many failed sign-in attempts; try again in {retry_after_secs} s")
            }
            Self::MethodNotAllowed { allow } => {
                format!("this path does not accept that method (allowed: {allow})")
            }
            Self::Misconfigured(_) => {
                "the server is not configured correctly; its operator can see why in the logs"
                    .to_owned()
            }
            Self::Internal { .. } => "something went wrong on the server".to_owned(),
        }
    }

    pub fn into_response(self) -> Response {
        if matches!(self, Self::Misconfigured(_) | Self::Internal { .. }) {
            console_error!("{self}");
        }
        let headers = json_headers();
        match &self {
            Self::RateLimited { retry_after_secs } => {
                let _ = headers.set("Retry-After", &retry_after_secs.to_string());
            }
            Self::MethodNotAllowed { allow } => {
                let _ = headers.set("Allow", allow);
            }
            _ => {}
        }
        let body = Envelope::error(self.code(), self.public_message());
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        Response::builder()
            .with_status(self.status())
            .with_headers(headers)
            .fixed(bytes)
    }
}

impl From<worker::Error> for ApiError {
    fn from(err: worker::Error) -> Self {
        Self::internal("workers runtime", err)
    }
}

/// Headers every JSON response carries: API answers are never cached and never sniffed.
pub fn json_headers() -> Headers {
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "application/json; charset=utf-8");
    let _ = headers.set("Cache-Control", "no-store");
    let _ = headers.set("X-Content-Type-Options", "nosniff");
    headers
}

/// The one place a store failure becomes an API error: an internal one, logged, never shown.
impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        ApiError::Internal {
            context: err.context,
            cause: err.cause,
        }
    }
}
