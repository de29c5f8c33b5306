//! Following a run's or a restore's log as it is written: the API's Server-Sent Events stream,
//! opened with a short-lived ticket (a browser's `EventSource` cannot send the bearer header).
//!
//! The stream replays the stored lines after `lastEventId` and then follows the record; it sends
//! `log`, `progress` and a final `end` event. When it drops (the server ends streams after ten
//! minutes, a ticket expires, the network blinks), a new ticket is fetched and the stream resumes
//! after the last line received, so no line is shown twice or lost.

use crate::api::{self, Failure};
use leptos::prelude::*;
use stowage_shared::api::{LogLine, Progress};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{EventSource, MessageEvent};

/// Reconnections in a row without a single event before the page gives up and says so.
const MAX_RETRIES: u32 = 5;
const RETRY_MS: i32 = 2_000;

/// What a followed stream has delivered so far.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    pub lines: RwSignal<Vec<LogLine>>,
    pub progress: RwSignal<Option<Progress>>,
    /// The record's final status, once the stream has said it.
    pub end: RwSignal<Option<String>>,
    pub failure: RwSignal<Option<Failure>>,
}

impl Live {
    pub fn new() -> Self {
        Self {
            lines: RwSignal::new(Vec::new()),
            progress: RwSignal::new(None),
            end: RwSignal::new(None),
            failure: RwSignal::new(None),
        }
    }

    /// Forgets what was delivered, for a stream of another record.
    pub fn reset(&self) {
        self.lines.set(Vec::new());
        self.progress.set(None);
        self.end.set(None);
        self.failure.set(None);
    }

    fn after(&self) -> u64 {
        self.lines
            .with_untracked(|l| l.last().map_or(0, |line| line.seq))
    }
}

/// An open stream and the handlers it calls (dropped with it).
struct Open {
    source: EventSource,
    _handlers: Vec<Closure<dyn FnMut(MessageEvent)>>,
}

/// Follows the stream at `path` into `live` until it ends or the calling component goes away.
pub fn follow(path: String, live: Live) {
    let held = StoredValue::new_local(None::<Open>);
    let retries = StoredValue::new(0_u32);
    on_cleanup(move || {
        held.try_update_value(|open| {
            if let Some(open) = open.take() {
                open.source.close();
            }
        });
    });
    connect(path, live, held, retries);
}

fn connect(
    path: String,
    live: Live,
    held: StoredValue<Option<Open>, LocalStorage>,
    retries: StoredValue<u32>,
) {
    leptos::task::spawn_local(async move {
        let url = match api::ticketed(&path).await {
            Ok(url) => format!("{url}&lastEventId={}", live.after()),
            Err(failure) => {
                let _ = live.failure.try_set(Some(failure));
                return;
            }
        };
        let Ok(source) = EventSource::new(&url) else {
            return;
        };
        let on_log = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let line = e
                .data()
                .as_string()
                .and_then(|d| serde_json::from_str::<LogLine>(&d).ok());
            if let Some(line) = line {
                retries.try_set_value(0);
                let _ = live.lines.try_update(|lines| {
                    if lines.last().is_none_or(|l| l.seq < line.seq) {
                        lines.push(line);
                    }
                });
            }
        });
        let on_progress = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let progress = e
                .data()
                .as_string()
                .and_then(|d| serde_json::from_str::<Progress>(&d).ok());
            if progress.is_some() {
                retries.try_set_value(0);
                let _ = live.progress.try_set(progress);
            }
        });
        let closer = source.clone();
        let on_end = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            closer.close();
            let status = e
                .data()
                .as_string()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                .and_then(|v| v["status"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = live.end.try_set(Some(status));
        });
        let watched = source.clone();
        let again = path.clone();
        let on_error = Closure::<dyn FnMut(MessageEvent)>::new(move |_: MessageEvent| {
            // CONNECTING: the browser reconnects by itself. CLOSED: it gave up (a refused
            // ticket, say); a new ticket resumes the stream, a few times at most.
            if watched.ready_state() != EventSource::CLOSED
                || live.end.try_get_untracked().flatten().is_some()
            {
                return;
            }
            let tried = retries.try_get_value().unwrap_or(MAX_RETRIES);
            if tried >= MAX_RETRIES {
                let _ = live.failure.try_set(Some(Failure {
                    status: 0,
                    code: "NETWORK".to_owned(),
                    message: "the live log stopped; reload the page to follow it again".to_owned(),
                }));
                return;
            }
            retries.try_set_value(tried + 1);
            let path = again.clone();
            let later = Closure::once_into_js(move || connect(path, live, held, retries));
            if let Some(window) = web_sys::window() {
                let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                    later.unchecked_ref(),
                    RETRY_MS,
                );
            }
        });
        for (event, handler) in [
            ("log", &on_log),
            ("progress", &on_progress),
            ("end", &on_end),
            ("error", &on_error),
        ] {
            let _ =
                source.add_event_listener_with_callback(event, handler.as_ref().unchecked_ref());
        }
        let open = Open {
            source: source.clone(),
            _handlers: vec![on_log, on_progress, on_end, on_error],
        };
        // The component may have gone while the ticket was on its way.
        if held.try_update_value(|slot| *slot = Some(open)).is_none() {
            source.close();
        }
    });
}
