//! `/api/settings`: the typed, allow-listed system settings. Any signed-in user reads them (none is
//! a secret); only admins change them, and every change is audited with the keys it changed.

use super::{Caller, Ctx};
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::store::audit::{self, Outcome};
use crate::store::{notifications, settings};
use serde_json::Value;
use stowage_shared::api::Role;
use stowage_shared::{ErrorCode, time};
use worker::Response;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::SettingsInvalid, message)
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    http::ok(&settings::load(&db).await?)
}

/// `PUT /api/settings`: a JSON object of the settings to change. Unknown keys, wrong types and
/// values out of range are refused by name, and then nothing changes.
pub async fn update(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Admin).await?;
    let body: Value = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::SettingsInvalid,
    )
    .await?;
    let current = settings::load(&db).await?;
    let (next, changed) = current.patched(&body).map_err(|e| invalid(e.to_string()))?;
    let wanted = &next.default_notification_channels;
    if !wanted.is_empty() {
        let found = notifications::existing_ids(&db, wanted).await?;
        if let Some(missing) = wanted.iter().find(|id| !found.contains(id)) {
            return Err(invalid(format!(
                "defaultNotificationChannels: notification channel {missing} does not exist"
            )));
        }
    }
    next.timings(config.timings)
        .check()
        .map_err(|why| invalid(format!("agent timings: {why}")))?;
    if changed.is_empty() {
        return http::ok(&next);
    }
    let now = time::format(ctx.now);
    let keys: Vec<&str> = changed.iter().map(|(k, _)| *k).collect();
    let detail = keys.join(",");
    let caller = Caller::of(&ctx);
    let entry = caller.by(
        &principal,
        &now,
        "settings.update",
        ("settings", 1),
        Outcome::Success,
        &detail,
    );
    settings::save(&db, &changed, &now, audit::insert(&db, &entry)?).await?;
    if keys.contains(&"repositoryPruneDays") {
        // Every repository's next prune follows the new interval from now (none when off).
        let days = i64::from(next.repository_prune_days);
        let due = (days > 0).then(|| time::format(ctx.now + chrono::Duration::days(days)));
        crate::store::storage_targets::reschedule_prunes(&db, due.as_deref()).await?;
    }
    if keys.contains(&"repositoryCheckDays") {
        let days = i64::from(next.repository_check_days);
        let due = (days > 0).then(|| time::format(ctx.now + chrono::Duration::days(days)));
        crate::store::storage_targets::reschedule_checks(&db, due.as_deref()).await?;
    }
    http::ok(&next)
}
