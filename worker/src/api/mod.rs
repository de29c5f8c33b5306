//! Thin handlers grouped by resource: extract, call the store or domain, respond.

pub mod agent;
pub mod audit_logs;
pub mod auth;
pub mod dashboard;
pub mod databases;
pub mod download;
pub mod google_drive;
pub mod health;
pub mod logs;
pub mod nodes;
pub mod notifications;
pub mod rclone;
pub mod records;
pub mod restores;
pub mod settings;
pub mod storage_targets;
pub mod system;
pub mod tasks;
pub mod verifies;

use crate::auth::Principal;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::store::audit::{Entry, Outcome};
use std::cell::RefCell;
use stowage_shared::ErrorCode;
use stowage_shared::api::Role;
use stowage_shared::time::Timestamp;
use worker::D1Database;
use worker::{Env, Request};

/// The signed-in user of a request, once known: the router audits a refused change with it.
pub type Actor = RefCell<Option<(i64, String)>>;

/// Everything a handler needs for one request.
pub struct Ctx<'a> {
    pub req: Request,
    pub env: &'a Env,
    pub now: Timestamp,
    /// The `:id` of the route, as it appeared in the path.
    pub id: Option<String>,
    /// For work that goes on after the response (notification delivery).
    pub worker_ctx: &'a worker::Context,
    pub actor: &'a Actor,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("path", &self.req.path())
            .field("now", &self.now)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Ctx<'_> {
    pub fn state(&self) -> Result<AppState, ApiError> {
        AppState::from_env(self.env)
    }

    /// The signed-in user, who must hold at least the `needed` role, with the app state.
    /// The agent timings in the state are the deployment's with the settings' overrides, so
    /// that every answer judges a node online or offline as the tick does.
    pub async fn signed_in(&self, needed: Role) -> Result<(AppState, Principal), ApiError> {
        let mut state = self.state()?;
        let principal =
            crate::auth::authenticate(&state.db, &state.config, &self.req, self.now).await?;
        self.actor
            .replace(Some((principal.user.id, principal.user.username.clone())));
        principal.require(needed)?;
        let settings = crate::store::settings::load(&state.db).await?;
        state.config.timings = settings.timings(state.config.timings);
        Ok((state, principal))
    }

    /// Records a successful action of `principal` on `resource` (type and id) in the audit log.
    pub async fn audit_success(
        &self,
        db: &D1Database,
        principal: &Principal,
        action: &'static str,
        resource: (&'static str, i64),
    ) -> Result<(), ApiError> {
        let now = stowage_shared::time::format(self.now);
        let caller = Caller::of(self);
        let entry = caller.by(principal, &now, action, resource, Outcome::Success, "");
        crate::store::audit::record(db, &entry)
            .await
            .map_err(ApiError::from)
    }

    /// The route's `:id`: a positive integer, or `400 INVALID_ID`.
    pub fn id(&self) -> Result<i64, ApiError> {
        self.id
            .as_deref()
            .and_then(|raw| raw.parse::<i64>().ok())
            .filter(|id| *id > 0)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidId,
                    "the id in the path must be a positive integer",
                )
            })
    }

    /// Sends due notifications (and hands out finished records) after the response.
    pub fn notify_soon(&self) {
        crate::notify::soon(self.env, self.worker_ctx);
    }

    /// A positive integer query parameter; anything else is `invalid` naming it.
    pub fn query_positive(&self, name: &str, invalid: ErrorCode) -> Result<Option<i64>, ApiError> {
        self.query(name)?
            .map(|raw| {
                raw.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                    ApiError::new(invalid, format!("{name} must be a positive integer"))
                })
            })
            .transpose()
    }

    /// An RFC 3339 time query parameter, in the stored form; anything else is `invalid`.
    pub fn query_time(&self, name: &str, invalid: ErrorCode) -> Result<Option<String>, ApiError> {
        self.query(name)?
            .map(|raw| {
                stowage_shared::time::parse(&raw)
                    .map(stowage_shared::time::format)
                    .ok_or_else(|| {
                        ApiError::new(
                            invalid,
                            format!("{name} must be an RFC 3339 time such as 2026-11-28T00:00:00Z"),
                        )
                    })
            })
            .transpose()
    }

    /// `page` (from 1) and `pageSize` (1 to `max`, default 50) as a limit and an offset.
    pub fn paging(&self, max: u64, invalid: ErrorCode) -> Result<Paging, ApiError> {
        let page = self
            .query_positive("page", invalid)?
            .map_or(1, i64::unsigned_abs);
        let page_size = self
            .query_positive("pageSize", invalid)?
            .map_or(50, i64::unsigned_abs);
        if page_size > max {
            return Err(ApiError::new(invalid, format!("pageSize is at most {max}")));
        }
        Ok(Paging { page, page_size })
    }

    /// A query-string parameter, decoded.
    pub fn query(&self, name: &str) -> Result<Option<String>, ApiError> {
        let url = self.req.url()?;
        Ok(url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned()))
    }
}

/// Which page of a list a request asked for.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page: u64,
    pub page_size: u64,
}

impl Paging {
    pub fn limit(self) -> i64 {
        i64::try_from(self.page_size).unwrap_or(50)
    }

    pub fn offset(self) -> i64 {
        i64::try_from((self.page - 1).saturating_mul(self.page_size)).unwrap_or(i64::MAX)
    }
}

/// Who made a request, for audit rows and throttling keys.
#[derive(Debug)]
pub struct Caller {
    pub ip: String,
    pub user_agent: String,
}

impl Caller {
    pub fn of(ctx: &Ctx<'_>) -> Self {
        Self {
            ip: http::client_ip(&ctx.req),
            user_agent: http::user_agent(&ctx.req),
        }
    }

    /// An audit row for an actor known only by name (a sign-in attempt).
    pub fn entry<'a>(
        &'a self,
        now: &'a str,
        actor: &'a str,
        action: &'static str,
        outcome: Outcome,
        detail: &'a str,
    ) -> Entry<'a> {
        Entry {
            now,
            actor_user_id: None,
            actor,
            action,
            resource_type: "user",
            resource_id: None,
            outcome,
            detail,
            client_ip: &self.ip,
            user_agent: &self.user_agent,
        }
    }

    /// An audit row for a signed-in user acting on a resource.
    pub fn by<'a>(
        &'a self,
        principal: &'a Principal,
        now: &'a str,
        action: &'static str,
        resource: (&'static str, i64),
        outcome: Outcome,
        detail: &'a str,
    ) -> Entry<'a> {
        Entry {
            actor_user_id: Some(principal.user.id),
            resource_type: resource.0,
            resource_id: Some(resource.1.to_string()),
            ..self.entry(now, &principal.user.username, action, outcome, detail)
        }
    }
}
