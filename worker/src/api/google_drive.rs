//! The Google Drive connect flow: `auth-url` stores a sealed draft under a one-time state and
//! answers Google's consent URL; `complete` takes the state back once, exchanges the code for a
//! refresh token and creates (or reconnects) the `google_drive` target with it sealed.

use super::Ctx;
use crate::auth;
use crate::config::AppState;
use crate::error::ApiError;
use crate::ops::targets::{Plain, detail, find, insert, name_exists, open_config, rewrite};
use crate::secrets::Identity;
use crate::secrets::Sealer;
use crate::store::oauth_sessions;
use crate::store::storage_targets as targets;
use crate::{google, http};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use stowage_shared::api::{GoogleDriveAuthRequest, GoogleDriveAuthUrl, GoogleDriveComplete, Role};
use stowage_shared::storage::{GoogleDriveConfig, MASK, StorageConfig, StorageType};
use stowage_shared::validate;
use stowage_shared::{ErrorCode, time};
use worker::Response;

const PROVIDER: &str = "google_drive";
/// How long a started connection can be completed.
const SESSION_MINUTES: i64 = 10;
/// The console page Google sends the browser back to.
const CALLBACK_PATH: &str = "/storage-targets/google-drive/callback";

/// What `auth-url` remembers for `complete`, sealed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Draft {
    target_id: Option<i64>,
    name: String,
    description: String,
    client_id: String,
    client_secret: String,
    folder_id: String,
    redirect_uri: String,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::StorageGoogleOauthInvalid, message.into())
}

/// A value the caller left empty or sent back masked keeps the stored one.
fn or_stored(sent: &str, stored: &str) -> String {
    let sent = sent.trim();
    if sent.is_empty() || sent == MASK {
        stored.to_owned()
    } else {
        sent.to_owned()
    }
}

fn stored_drive_config(
    sealer: &Sealer,
    row: &targets::TargetRow,
) -> Result<GoogleDriveConfig, ApiError> {
    match open_config(sealer, row)? {
        StorageConfig::GoogleDrive(c) => Ok(c),
        _ => Err(ApiError::new(
            ErrorCode::StorageGoogleDriveTypeMismatch,
            format!(
                "storage target {} is a {} target, not google_drive",
                row.id,
                row.kind.as_str()
            ),
        )),
    }
}

/// The redirect URI: the one sent, or the console's callback page on the caller's origin.
fn redirect_uri(ctx: &Ctx<'_>, sent: &str) -> Result<String, ApiError> {
    let uri = if sent.trim().is_empty() {
        let origin = match ctx.req.headers().get("Origin").ok().flatten() {
            Some(origin) if origin != "null" => origin,
            _ => {
                let url = ctx
                    .req
                    .url()
                    .map_err(|e| ApiError::internal("request url", e))?;
                url.origin().ascii_serialization()
            }
        };
        format!("{}{CALLBACK_PATH}", origin.trim_end_matches('/'))
    } else {
        sent.trim().to_owned()
    };
    match worker::Url::parse(&uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(uri),
        _ => Err(invalid("redirectUri: must be an http:// or https:// URL")),
    }
}

/// `POST /api/storage-targets/google-drive/auth-url`.
pub async fn auth_url(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, _) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let body: GoogleDriveAuthRequest = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::StorageGoogleOauthInvalid,
    )
    .await?;
    let mut draft = Draft {
        target_id: body.target_id,
        name: body.name.trim().to_owned(),
        description: body.description.trim().to_owned(),
        client_id: body.client_id.trim().to_owned(),
        client_secret: body.client_secret.trim().to_owned(),
        folder_id: body.folder_id.trim().to_owned(),
        redirect_uri: redirect_uri(&ctx, &body.redirect_uri)?,
    };
    if let Some(id) = body.target_id {
        let row = find(&db, id).await?;
        let stored = stored_drive_config(&sealer, &row)?;
        draft.client_id = or_stored(&draft.client_id, &stored.client_id);
        draft.client_secret = or_stored(&draft.client_secret, &stored.client_secret);
        if draft.folder_id.is_empty() {
            draft.folder_id = stored.folder_id;
        }
        draft.name = row.name;
        draft.description = row.description;
    } else {
        validate::name(&draft.name, 128).map_err(|e| invalid(e.to_string()))?;
        if draft.description.chars().count() > 255 {
            return Err(invalid("description: must be at most 255 characters"));
        }
        if targets::name_taken(&db, &draft.name, 0).await? {
            return Err(name_exists(&draft.name));
        }
    }
    for (field, value) in [
        ("clientId", &draft.client_id),
        ("clientSecret", &draft.client_secret),
    ] {
        if value.is_empty() || value == MASK || value.chars().any(char::is_control) {
            return Err(invalid(format!(
                "{field}: is required (from your Google Cloud OAuth client)"
            )));
        }
    }
    let state = format!(
        "{}{}",
        crate::secrets::random_id()?,
        crate::secrets::random_id()?
    );
    let state_hash = auth::node_token_hash(&state);
    let plain = serde_json::to_vec(&draft).map_err(|e| ApiError::internal("encode draft", e))?;
    let sealed = sealer.seal(Identity::OauthSession(&state_hash), &plain)?;
    let expires_at = time::format(ctx.now + Duration::minutes(SESSION_MINUTES));
    oauth_sessions::create(
        &db,
        &state_hash,
        PROVIDER,
        &sealed,
        &time::format(ctx.now),
        &expires_at,
    )
    .await?;
    http::ok(&GoogleDriveAuthUrl {
        auth_url: google::consent_url(
            &config.google,
            &draft.client_id,
            &draft.redirect_uri,
            &state,
        )?,
        redirect_uri: draft.redirect_uri,
        expires_at,
    })
}

/// `POST /api/storage-targets/google-drive/complete`.
pub async fn complete(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let body: GoogleDriveComplete = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::StorageGoogleOauthInvalid,
    )
    .await?;
    if body.state.trim().is_empty() || body.code.trim().is_empty() {
        return Err(invalid("state and code are both required"));
    }
    let state_hash = auth::node_token_hash(body.state.trim());
    let now = time::format(ctx.now);
    let sealed = oauth_sessions::take(&db, &state_hash, PROVIDER, &now)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::StorageGoogleOauthStateInvalid,
                format!(
                    "this authorization is unknown, was used already or is older than {SESSION_MINUTES} minutes; connect again"
                ),
            )
        })?;
    let draft: Draft =
        serde_json::from_slice(&sealer.open(Identity::OauthSession(&state_hash), &sealed)?)
            .map_err(|e| ApiError::internal("stored draft", e))?;
    let refresh_token = google::exchange_code(
        &config.google,
        &draft.client_id,
        &draft.client_secret,
        &draft.redirect_uri,
        body.code.trim(),
    )
    .await?;
    let drive = StorageConfig::parse(
        StorageType::GoogleDrive,
        &serde_json::to_value(GoogleDriveConfig {
            client_id: draft.client_id.clone(),
            client_secret: draft.client_secret.clone(),
            refresh_token,
            folder_id: draft.folder_id.clone(),
        })
        .map_err(|e| ApiError::internal("encode config", e))?,
    )
    .map_err(|e| invalid(e.to_string()))?;

    let (id, action) = match draft.target_id {
        Some(id) => {
            let row = find(&db, id).await?;
            stored_drive_config(&sealer, &row)?;
            let plain = Plain::of(&row);
            rewrite(&db, &sealer, ctx.now, &row, plain, &drive).await?;
            (id, "storage_target.update")
        }
        None => {
            let plain = Plain {
                name: &draft.name,
                description: &draft.description,
                enabled: true,
                quota_bytes: 0,
            };
            let id = insert(&db, &sealer, ctx.now, plain, &drive).await?;
            (id, "storage_target.create")
        }
    };
    ctx.audit_success(&db, &principal, action, ("storage_target", id))
        .await?;
    let answer = detail(&sealer, &find(&db, id).await?)?;
    if draft.target_id.is_some() {
        http::ok(&answer)
    } else {
        http::created(&answer)
    }
}
