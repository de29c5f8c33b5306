//! `GET /api/health` (liveness) and `GET /api/health/ready` (readiness: D1 answers and is migrated).

use super::Ctx;
use crate::config::{AppState, VERSION};
use crate::error::ApiError;
use crate::http;
use crate::store::system;
use stowage_shared::ErrorCode;
use stowage_shared::api::{Health, Readiness};
use worker::Response;

pub async fn get(_ctx: Ctx<'_>) -> Result<Response, ApiError> {
    http::ok(&Health {
        status: "ok".to_owned(),
        version: VERSION.to_owned(),
    })
}

pub async fn ready(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let AppState { db, .. } = ctx.state()?;
    let not_ready = |why: String| ApiError::new(ErrorCode::NotReady, why);
    let migration = system::latest_migration(&db)
        .await
        .map_err(|e| {
            worker::console_error!("readiness: {e}");
            not_ready("the database is unreachable or not migrated".to_owned())
        })?
        .ok_or_else(|| not_ready("no migration has been applied to the database".to_owned()))?;
    let last_tick_at = system::last_tick_at(&db).await?;
    http::ok(&Readiness {
        ready: true,
        version: VERSION.to_owned(),
        schema_migration: migration,
        last_tick_at,
    })
}
