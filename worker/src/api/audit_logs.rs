//! `GET /api/audit-logs`: who did what, newest first, filtered and paginated. Admins only: the
//! rows hold every user's addresses and browsers.

use super::Ctx;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::store::audit::{self, AuditRow, Filter};
use stowage_shared::ErrorCode;
use stowage_shared::api::{AuditLogEntry, Page, Role};
use worker::Response;

const INVALID: ErrorCode = ErrorCode::AuditFilterInvalid;

fn entry(r: AuditRow) -> AuditLogEntry {
    AuditLogEntry {
        id: r.id,
        created_at: r.created_at,
        user_id: r.actor_user_id,
        actor: r.actor,
        action: r.action,
        resource_type: r.resource_type,
        resource_id: r.resource_id,
        result: r.result,
        detail: r.detail,
        client_ip: r.client_ip,
        user_agent: r.user_agent,
    }
}

/// The first of `names` that the query has (BackupX's names are accepted beside Stowage's).
fn param(ctx: &Ctx<'_>, names: &[&str]) -> Result<Option<String>, ApiError> {
    for name in names {
        if let Some(v) = ctx.query(name)?.filter(|v| !v.trim().is_empty()) {
            if v.chars().count() > 200 {
                return Err(ApiError::new(
                    INVALID,
                    format!("{name} is longer than 200 characters"),
                ));
            }
            return Ok(Some(v.trim().to_owned()));
        }
    }
    Ok(None)
}

/// `?actor&action&resourceType&resourceId&result&dateFrom&dateTo&q&page&pageSize`.
pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Admin).await?;
    let result = param(&ctx, &["result"])?;
    if let Some(r) = result.as_deref()
        && !matches!(r, "success" | "failure")
    {
        return Err(ApiError::new(INVALID, "result must be success or failure"));
    }
    let (from, to) = (
        ctx.query_time("dateFrom", INVALID)?,
        ctx.query_time("dateTo", INVALID)?,
    );
    if let (Some(f), Some(t)) = (&from, &to)
        && f > t
    {
        return Err(ApiError::new(INVALID, "dateFrom is after dateTo"));
    }
    let (actor, action) = (
        param(&ctx, &["actor", "username"])?,
        param(&ctx, &["action"])?,
    );
    let resource_type = param(&ctx, &["resourceType", "resource", "category"])?;
    let resource_id = param(&ctx, &["resourceId", "targetId"])?;
    let text = param(&ctx, &["q", "keyword"])?;
    let paging = ctx.paging(200, INVALID)?;
    let filter = Filter {
        actor: actor.as_deref(),
        action: action.as_deref(),
        resource_type: resource_type.as_deref(),
        resource_id: resource_id.as_deref(),
        result: result.as_deref(),
        from: from.as_deref(),
        to: to.as_deref(),
        text: text.as_deref(),
    };
    let (rows, total) = audit::page(&db, &filter, paging.limit(), paging.offset()).await?;
    http::ok(&Page {
        items: rows.into_iter().map(entry).collect(),
        total,
        page: paging.page,
        page_size: paging.page_size,
    })
}
