//! The API from the browser: `fetch` with the session's bearer token, answers read as the shared
//! envelope. The token lives in `sessionStorage` (gone with the tab) and is revoked server-side at
//! sign-out.

use serde::Serialize;
use serde::de::DeserializeOwned;
use stowage_shared::Envelope;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

const TOKEN_KEY: &str = "stowage.token";

thread_local! {
    /// What the app does when the server says the session is over.
    static SESSION_ENDED: std::cell::RefCell<Option<Box<dyn Fn()>>> = const { std::cell::RefCell::new(None) };
}

/// Registers what happens when an answer says the session is over (the app signs the user out).
pub fn on_session_ended(f: impl Fn() + 'static) {
    SESSION_ENDED.with(|s| *s.borrow_mut() = Some(Box::new(f)));
}

/// Why a call failed: the API's code and message, or `NETWORK` when no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Failure {
    fn network(message: impl Into<String>) -> Self {
        Self {
            status: 0,
            code: "NETWORK".to_owned(),
            message: message.into(),
        }
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

pub fn token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok()?
}

pub fn set_token(token: Option<&str>) {
    if let Some(s) = storage() {
        let _ = match token {
            Some(t) => s.set_item(TOKEN_KEY, t),
            None => s.remove_item(TOKEN_KEY),
        };
    }
}

async fn send(method: &str, path: &str, body: Option<String>) -> Result<(u16, String), Failure> {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = &body {
        init.set_body(&wasm_bindgen::JsValue::from_str(body));
    }
    let request = Request::new_with_str_and_init(path, &init)
        .map_err(|e| Failure::network(format!("{e:?}")))?;
    let headers = request.headers();
    let _ = headers.set("Accept", "application/json");
    if body.is_some() {
        let _ = headers.set("Content-Type", "application/json");
    }
    if let Some(token) = token() {
        let _ = headers.set("Authorization", &format!("Bearer {token}"));
    }
    let window = web_sys::window().ok_or_else(|| Failure::network("no window"))?;
    let answer = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|e| Failure::network(format!("{e:?}")))?;
    let response: Response = answer
        .dyn_into()
        .map_err(|_| Failure::network("not a response"))?;
    let text = JsFuture::from(
        response
            .text()
            .map_err(|e| Failure::network(format!("{e:?}")))?,
    )
    .await
    .map_err(|e| Failure::network(format!("{e:?}")))?
    .as_string()
    .unwrap_or_default();
    Ok((response.status(), text))
}

/// One call; the answer's `data` as `T`, or the API's error.
pub async fn call<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<&impl Serialize>,
) -> Result<T, Failure> {
    let body = body
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Failure::network(e.to_string()))?;
    let (status, text) = send(method, path, body).await?;
    let envelope: Envelope<T> = serde_json::from_str(&text).map_err(|e| Failure {
        status,
        code: "BAD_ANSWER".to_owned(),
        message: e.to_string(),
    })?;
    // A wrong password (AUTH_INVALID_CREDENTIALS) is not the end of the session.
    let ended = ["AUTH_REQUIRED", "AUTH_INVALID_TOKEN"].contains(&envelope.code.as_str());
    if status == 401 && ended && token().is_some() {
        set_token(None);
        SESSION_ENDED.with(|s| {
            if let Some(f) = s.borrow().as_ref() {
                f();
            }
        });
    }
    match envelope.data {
        Some(data) if envelope.is_ok() => Ok(data),
        _ => Err(Failure {
            status,
            code: envelope.code,
            message: envelope.message,
        }),
    }
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, Failure> {
    call::<T>("GET", path, None::<&()>).await
}

pub async fn post<T: DeserializeOwned>(path: &str, body: &impl Serialize) -> Result<T, Failure> {
    call("POST", path, Some(body)).await
}

/// `path` with a fresh stream ticket (`?ticket=…`), for what cannot send the bearer header: a
/// browser's `EventSource` and download links.
pub async fn ticketed(path: &str) -> Result<String, Failure> {
    let request = stowage_shared::api::StreamTicketRequest {
        path: path.to_owned(),
    };
    let ticket: stowage_shared::api::StreamTicket =
        post(stowage_shared::api::routes::AUTH_STREAM_TICKET, &request).await?;
    Ok(format!(
        "{path}?ticket={}",
        js_sys::encode_uri_component(&ticket.ticket)
    ))
}
