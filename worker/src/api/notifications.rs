//! `/api/notifications`: the channels events go to. Configs are checked per type, sealed whole and
//! masked in every response; an update that sends a mask back keeps the stored secret. Tests send
//! one message at once and answer with the receiver's or the network's reason when it fails.

use super::Ctx;
use crate::auth::Principal;
use crate::config::{AppState, Config};
use crate::error::ApiError;
use crate::http;
use crate::notify;
use crate::secrets::Sealer;
use crate::store::notifications::{self as store, ChannelRow, Fields};
use crate::store::settings;
use serde_json::Value;
use stowage_shared::api::{
    Deleted, NotificationDelivery, NotificationDetail, NotificationRequest, NotificationSummary,
    NotificationTestResult, Role,
};
use stowage_shared::notifications::{ChannelConfig, ChannelType, Event, Message, parse_events};
use stowage_shared::status::DeliveryStatus;
use stowage_shared::storage::{MASK, drop_nulls};
use stowage_shared::validate;
use stowage_shared::{ErrorCode, time};
use worker::{D1Database, Response};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::NotificationInvalid, message)
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::NotificationNotFound,
        format!("notification channel {id} does not exist"),
    )
}

fn name_exists(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotificationNameExists,
        format!("a notification channel named {name:?} already exists"),
    )
}

fn summary(row: &ChannelRow) -> NotificationSummary {
    NotificationSummary {
        id: row.id,
        name: row.name.clone(),
        kind: row.kind.as_str().to_owned(),
        enabled: row.enabled != 0,
        events: serde_json::from_str(&row.events).unwrap_or_default(),
        failure_threshold: u32::try_from(row.failure_threshold).unwrap_or(1),
        last_delivery_status: row.last_status,
        last_delivery_at: row.last_at.clone(),
        last_delivery_error: row.last_error.clone().filter(|e| !e.is_empty()),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    }
}

fn detail(config: &Config, row: &ChannelRow) -> Result<NotificationDetail, ApiError> {
    let (config, masked_fields) = notify::open_config(&config.sealer()?, row)?.masked();
    Ok(NotificationDetail {
        summary: summary(row),
        config,
        masked_fields,
    })
}

async fn find(db: &D1Database, id: i64) -> Result<ChannelRow, ApiError> {
    store::get(db, id).await?.ok_or_else(|| not_found(id))
}

/// A request's fields, checked; the config is checked once its stored secrets are merged in.
struct Checked {
    name: String,
    kind: ChannelType,
    enabled: bool,
    events: Vec<Event>,
    failure_threshold: u32,
    config: Value,
}

async fn read_request(ctx: &mut Ctx<'_>, config: &Config) -> Result<Checked, ApiError> {
    let body: NotificationRequest = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::NotificationInvalid,
    )
    .await?;
    let name = validate::name(&body.name, 100).map_err(|e| invalid(e.to_string()))?;
    let kind = ChannelType::parse(&body.kind).ok_or_else(|| {
        let known: Vec<&str> = ChannelType::ALL.iter().map(|t| t.as_str()).collect();
        invalid(format!(
            "type: {:?} is not a channel type; use one of {}",
            body.kind,
            known.join(", ")
        ))
    })?;
    let events = parse_events(&body.events).map_err(|e| invalid(e.to_string()))?;
    if !(1..=100).contains(&body.failure_threshold) {
        return Err(invalid(
            "failureThreshold: must be 1 (every failure) to 100 failures in a row",
        ));
    }
    Ok(Checked {
        name,
        kind,
        enabled: body.enabled,
        events,
        failure_threshold: body.failure_threshold,
        config: drop_nulls(&body.config),
    })
}

fn parse_config(kind: ChannelType, json: &Value) -> Result<ChannelConfig, ApiError> {
    ChannelConfig::parse(kind, json).map_err(|e| invalid(e.to_string()))
}

/// What a checked request stores besides its plain fields.
struct Stored {
    events: String,
    config_sealed: String,
}

impl Checked {
    /// The events as JSON and `config` sealed for the channel `uid`.
    fn stored(
        &self,
        sealer: &Sealer,
        uid: &str,
        config: &ChannelConfig,
    ) -> Result<Stored, ApiError> {
        let names: Vec<&str> = self.events.iter().map(|e| e.as_str()).collect();
        Ok(Stored {
            events: serde_json::to_string(&names)
                .map_err(|e| ApiError::internal("encode events", e))?,
            config_sealed: notify::seal_config(sealer, uid, config)?,
        })
    }

    fn fields<'a>(&'a self, stored: &'a Stored) -> Fields<'a> {
        Fields {
            name: &self.name,
            enabled: self.enabled,
            events: &stored.events,
            failure_threshold: self.failure_threshold,
            config_sealed: &stored.config_sealed,
        }
    }
}

pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let rows = store::list(&db).await?;
    http::ok(&rows.iter().map(summary).collect::<Vec<_>>())
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Viewer).await?;
    let row = find(&db, ctx.id()?).await?;
    http::ok(&detail(&config, &row)?)
}

pub async fn create(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let req = read_request(&mut ctx, &config).await?;
    let parsed = parse_config(req.kind, &req.config)?;
    let uid = crate::secrets::random_id()?;
    let stored = req.stored(&sealer, &uid, &parsed)?;
    let now = time::format(ctx.now);
    let id = store::create(&db, &uid, req.kind.as_str(), &req.fields(&stored), &now)
        .await?
        .ok_or_else(|| name_exists(&req.name))?;
    ctx.audit_success(&db, &principal, "notification.create", ("notification", id))
        .await?;
    http::created(&detail(&config, &find(&db, id).await?)?)
}

pub async fn update(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let id = ctx.id()?;
    let req = read_request(&mut ctx, &config).await?;
    let row = find(&db, id).await?;
    if req.kind != row.kind {
        return Err(invalid(format!(
            "type: a channel's type cannot change (it is {}); create a new channel instead",
            row.kind.as_str()
        )));
    }
    let stored = notify::open_config(&sealer, &row)?;
    let parsed = ChannelConfig::parse_update(req.kind, &req.config, &stored)
        .map_err(|e| invalid(e.to_string()))?;
    if store::name_taken(&db, &req.name, id).await? {
        return Err(name_exists(&req.name));
    }
    let stored = req.stored(&sealer, &row.uid, &parsed)?;
    if !store::update(&db, id, &req.fields(&stored), &time::format(ctx.now)).await? {
        find(&db, id).await?;
        return Err(name_exists(&req.name));
    }
    ctx.audit_success(&db, &principal, "notification.update", ("notification", id))
        .await?;
    http::ok(&detail(&config, &find(&db, id).await?)?)
}

pub async fn delete(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, principal) = ctx.signed_in(Role::Operator).await?;
    let id = ctx.id()?;
    if !store::delete(&db, id).await? {
        return Err(not_found(id));
    }
    ctx.audit_success(&db, &principal, "notification.delete", ("notification", id))
        .await?;
    http::ok(&Deleted { deleted: true })
}

/// Sends a test message through `config` now and answers with the outcome.
async fn send_test(
    ctx: &Ctx<'_>,
    db: &D1Database,
    config: &ChannelConfig,
    channel_name: &str,
) -> Result<NotificationTestResult, ApiError> {
    let settings = settings::load(db).await?;
    let now = time::format(ctx.now);
    let message = Message::test(&settings.site_name, channel_name, &now);
    let delivery_id = format!("test-{}", ctx.now.timestamp_millis());
    notify::attempt(config, &message, &delivery_id, ctx.now, &settings)
        .await
        .map_err(|why| {
            ApiError::new(
                ErrorCode::NotificationTestFailed,
                format!("the test message was not delivered: {why}"),
            )
        })?;
    Ok(NotificationTestResult {
        success: true,
        message: format!("a test message was sent through {}", config.kind().as_str()),
    })
}

async fn audit_test(
    ctx: &Ctx<'_>,
    db: &D1Database,
    principal: &Principal,
    id: i64,
) -> Result<(), ApiError> {
    ctx.audit_success(db, principal, "notification.test", ("notification", id))
        .await
}

/// `POST /api/notifications/test`: a config that is not saved yet. Its secrets must be given in
/// full (a mask has nothing to stand for).
pub async fn test_pending(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let req = read_request(&mut ctx, &config).await?;
    for field in req.kind.secret_fields() {
        if req.config.get(*field).and_then(Value::as_str) == Some(MASK) {
            return Err(invalid(format!(
                "config.{field}: give the secret itself to test an unsaved config, or test the saved channel"
            )));
        }
    }
    let parsed = parse_config(req.kind, &req.config)?;
    let result = send_test(&ctx, &db, &parsed, &req.name).await?;
    audit_test(&ctx, &db, &principal, 0).await?;
    http::ok(&result)
}

/// `POST /api/notifications/:id/test`: the saved channel, enabled or not.
pub async fn test_saved(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let row = find(&db, ctx.id()?).await?;
    let parsed = notify::open_config(&config.sealer()?, &row)?;
    let result = send_test(&ctx, &db, &parsed, &row.name).await?;
    audit_test(&ctx, &db, &principal, row.id).await?;
    http::ok(&result)
}

/// `GET /api/notifications/:id/deliveries`: the channel's newest 100 deliveries and their outcome.
pub async fn deliveries(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let row = find(&db, ctx.id()?).await?;
    let rows = store::deliveries_of(&db, row.id, 100).await?;
    let items: Vec<NotificationDelivery> = rows
        .into_iter()
        .map(|d| NotificationDelivery {
            title: serde_json::from_str::<Message>(&d.message)
                .map(|m| m.title)
                .unwrap_or_default(),
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            id: d.id,
            channel_id: d.channel_id,
            channel_name: d.channel_name,
            event: d.event,
            status: d.status,
            attempts: u32::try_from(d.attempts).unwrap_or(0),
            last_error: d.last_error,
            created_at: d.created_at,
            sent_at: d.sent_at,
        })
        .collect();
    http::ok(&items)
}
