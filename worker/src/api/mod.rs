//! Thin handlers grouped by resource: extract, call the store or domain, respond.

pub mod agent;
pub mod auth;
pub mod databases;
pub mod download;
pub mod google_drive;
pub mod health;
pub mod logs;
pub mod nodes;
pub mod rclone;
pub mod records;
pub mod restores;
pub mod rpc;
pub mod storage_targets;
pub mod tasks;

use crate::auth::Principal;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::store::audit::{Entry, Outcome};
use stowage_shared::ErrorCode;
use stowage_shared::api::Role;
use stowage_shared::time::Timestamp;
use worker::D1Database;
use worker::{Env, Request};

/// Everything a handler needs for one request.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub req: Request,
    pub env: &'a Env,
    pub now: Timestamp,
    /// The `:id` of the route, as it appeared in the path.
    pub id: Option<String>,
}

impl Ctx<'_> {
    pub fn state(&self) -> Result<AppState, ApiError> {
        AppState::from_env(self.env)
    }

    /// The signed-in user, who must hold at least the `needed` role, with the app state.
    pub async fn signed_in(&self, needed: Role) -> Result<(AppState, Principal), ApiError> {
        let state = self.state()?;
        let principal =
            crate::auth::authenticate(&state.db, &state.config, &self.req, self.now).await?;
        principal.require(needed)?;
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
        crate::store::audit::record(db, &entry).await
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

    /// A query-string parameter, decoded.
    pub fn query(&self, name: &str) -> Result<Option<String>, ApiError> {
        let url = self.req.url()?;
        Ok(url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned()))
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
