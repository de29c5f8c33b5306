//! Stowage's control plane: a Cloudflare Worker serving `/api` on D1, with a cron tick.
//!
//! This file holds the entry points only. Routing is in `router`, handlers in `api`, what the
//! control plane does in `ops`, SQL in `store`, secrets at rest in `secrets` (ARCHITECTURE.md
//! says which may call which). The Worker never moves backup data; agents do.

mod api;
mod auth;
mod config;
mod cron;
mod error;
mod google;
mod http;
mod links;
mod mail;
mod node_link;
mod notify;
mod ops;
mod router;
mod scheduler;
mod secrets;
mod store;

use stowage_shared::time::{self, Timestamp};
use worker::{Context, Date, Env, Request, Response, ScheduleContext, ScheduledEvent, event};

/// The current time, read from the runtime once per use.
pub(crate) fn now() -> Timestamp {
    let ms = i64::try_from(Date::now().as_millis()).unwrap_or(i64::MAX);
    time::from_unix_millis(ms).unwrap_or_default()
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, worker_ctx: Context) -> worker::Result<Response> {
    console_error_panic_hook::set_once();
    let actor = api::Actor::default();
    let ctx = api::Ctx {
        req,
        env: &env,
        now: now(),
        id: None,
        worker_ctx: &worker_ctx,
        actor: &actor,
    };
    Ok(router::handle(ctx).await)
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    let result = match config::AppState::from_env(&env) {
        Ok(state) => cron::tick(&state, now()).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(report) => worker::console_log!("tick: {report:?}"),
        Err(err) => worker::console_error!("tick failed: {err}"),
    }
}
