//! The six `/api/auth` routes: first-run setup, login, logout, profile and password change.

use super::{Caller, Ctx};
use crate::auth;
use crate::config::{AppState, Config};
use crate::error::ApiError;
use crate::http;
use crate::ops::signin::{account_key, check_gates, count_failure, ip_key};
use crate::store::audit::{self, Entry, Outcome};
use crate::store::{self, sessions, throttle, users};
use stowage_shared::api::{
    AuthPayload, ChangePasswordRequest, LoggedOut, LoginRequest, PasswordChanged, SetupRequest,
    SetupStatus,
};
use stowage_shared::time::{self, Timestamp};
use stowage_shared::{ErrorCode, SecretString};
use worker::{D1Database, Response};

pub async fn setup_status(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let AppState { db, .. } = ctx.state()?;
    http::ok(&SetupStatus {
        initialized: users::any_exists(&db).await?,
    })
}

pub async fn setup(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let AppState { db, config } = ctx.state()?;
    let body: SetupRequest = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::AuthSetupInvalid,
    )
    .await?;
    let valid = body
        .validate()
        .map_err(|e| ApiError::new(ErrorCode::AuthSetupInvalid, e.to_string()))?;
    let caller = Caller::of(&ctx);
    let now = time::format(ctx.now);
    let closed = || {
        ApiError::new(
            ErrorCode::AuthSetupDisabled,
            "setup is already complete; sign in instead",
        )
    };
    // Cheap early answer; the insert below is what makes the race safe.
    let created = if users::any_exists(&db).await? {
        None
    } else {
        let hash = auth::hash_password(config.argon2, valid.password.secret())?;
        users::create_first_admin(
            &db,
            valid.username.as_str(),
            valid.display_name.as_str(),
            &hash,
            &now,
        )
        .await?
    };
    let Some(user) = created else {
        let entry = caller.entry(
            &now,
            valid.username.as_str(),
            "auth.setup",
            Outcome::Failure,
            "setup_disabled",
        );
        // Counted per address and quarter of an hour, so a flood adds one row, not one each.
        let until = time::format(ctx.now + chrono::Duration::minutes(15));
        audit::record_counted(&db, &entry, &format!("setup:{}", caller.ip), &until).await?;
        return Err(closed());
    };
    let payload = start_session(&db, &config, &user, ctx.now, &caller).await?;
    let entry = Entry {
        actor_user_id: Some(user.id),
        resource_id: Some(user.id.to_string()),
        ..caller.entry(&now, &user.username, "auth.setup", Outcome::Success, "")
    };
    audit::record(&db, &entry).await?;
    http::created(&payload)
}

pub async fn login(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let AppState { db, config } = ctx.state()?;
    let body: LoginRequest = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::AuthLoginInvalid,
    )
    .await?;
    let valid = body
        .validate()
        .map_err(|e| ApiError::new(ErrorCode::AuthLoginInvalid, e.to_string()))?;
    let caller = Caller::of(&ctx);
    let now = time::format(ctx.now);
    let account = account_key(&valid.username);
    let ip = ip_key(&caller.ip);

    if let Err(limited) = check_gates(&db, &config, [&account, &ip], ctx.now).await {
        let entry = caller.entry(
            &now,
            &valid.username,
            "auth.login",
            Outcome::Failure,
            "rate_limited",
        );
        // One row per address for as long as the lock lasts, counting the refusals.
        let retry = match &limited {
            ApiError::RateLimited { retry_after_secs } => *retry_after_secs,
            _ => 60,
        };
        let until = ctx.now
            + chrono::Duration::seconds(i64::try_from(retry).unwrap_or(i64::MAX).min(86_400));
        audit::record_counted(
            &db,
            &entry,
            &format!("login:{}", caller.ip),
            &time::format(until),
        )
        .await?;
        return Err(limited);
    }

    let user = users::find_by_username(&db, &valid.username).await?;
    let verified = match &user {
        Some(user) => auth::verify_password(config.argon2, &valid.password, &user.password_hash),
        None => {
            auth::burn_equivalent_work(config.argon2, &valid.password);
            false
        }
    };
    let user = match user {
        Some(user) if verified => user,
        _ => {
            count_failure(&db, &config, [&account, &ip], ctx.now).await?;
            let entry = caller.entry(
                &now,
                &valid.username,
                "auth.login",
                Outcome::Failure,
                "invalid_credentials",
            );
            audit::record(&db, &entry).await?;
            return Err(ApiError::new(
                ErrorCode::AuthInvalidCredentials,
                "wrong username or password",
            ));
        }
    };

    // Only the account counter is cleared: one good password must not reset an address that is
    // guessing at other accounts.
    throttle::clear(&db, &account).await?;
    if auth::needs_rehash(config.argon2, &user.password_hash) {
        let hash = auth::hash_password(config.argon2, &valid.password)?;
        users::rehash(&db, user.id, &hash, &now).await?;
    }
    let payload = start_session(&db, &config, &user, ctx.now, &caller).await?;
    let entry = Entry {
        actor_user_id: Some(user.id),
        resource_id: Some(user.id.to_string()),
        ..caller.entry(&now, &user.username, "auth.login", Outcome::Success, "")
    };
    audit::record(&db, &entry).await?;
    http::ok(&payload)
}

pub async fn logout(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let AppState { db, config } = ctx.state()?;
    let principal = auth::authenticate(&db, &config, &ctx.req, ctx.now).await?;
    let caller = Caller::of(&ctx);
    let now = time::format(ctx.now);
    sessions::revoke(&db, &principal.session_id, &now).await?;
    audit::record(
        &db,
        &caller.by(
            &principal,
            &now,
            "auth.logout",
            ("user", principal.user.id),
            Outcome::Success,
            "",
        ),
    )
    .await?;
    http::ok(&LoggedOut { logged_out: true })
}

pub async fn profile(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let AppState { db, config } = ctx.state()?;
    let principal = auth::authenticate(&db, &config, &ctx.req, ctx.now).await?;
    http::ok(&principal.user.output())
}

pub async fn change_password(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let AppState { db, config } = ctx.state()?;
    let principal = auth::authenticate(&db, &config, &ctx.req, ctx.now).await?;
    let body: ChangePasswordRequest = http::read_json(
        &mut ctx.req,
        config.max_json_body,
        ErrorCode::AuthPasswordInvalid,
    )
    .await?;
    let valid = body
        .validate()
        .map_err(|e| ApiError::new(ErrorCode::AuthPasswordInvalid, e.to_string()))?;
    let caller = Caller::of(&ctx);
    let now = time::format(ctx.now);
    let user = &principal.user;
    // A stolen token must not become a way to guess the password: the old-password check shares
    // the account's sign-in throttle.
    let account = account_key(&user.username);
    let ip = ip_key(&caller.ip);
    check_gates(&db, &config, [&account, &ip], ctx.now).await?;
    if !auth::verify_password(config.argon2, &valid.old_password, &user.password_hash) {
        count_failure(&db, &config, [&account, &ip], ctx.now).await?;
        let entry = caller.by(
            &principal,
            &now,
            "auth.password_change",
            ("user", principal.user.id),
            Outcome::Failure,
            "wrong_password",
        );
        audit::record(&db, &entry).await?;
        return Err(ApiError::new(
            ErrorCode::AuthWrongPassword,
            "the current password is not correct",
        ));
    }
    let hash = auth::hash_password(config.argon2, valid.new_password.secret())?;
    let entry = caller.by(
        &principal,
        &now,
        "auth.password_change",
        ("user", principal.user.id),
        Outcome::Success,
        "",
    );
    // One transaction: the new hash, the revocation of every other session and the audit row.
    let changes = store::batch(
        &db,
        vec![
            users::set_password(&db, user.id, &hash, &now)?,
            sessions::revoke_others(&db, user.id, &principal.session_id, &now)?,
            audit::insert(&db, &entry)?,
        ],
    )
    .await?;
    let revoked = changes.get(1).copied().unwrap_or(0);
    http::ok(&PasswordChanged {
        changed: true,
        revoked_sessions: u32::try_from(revoked).unwrap_or(u32::MAX),
    })
}

async fn start_session(
    db: &D1Database,
    config: &Config,
    user: &users::UserRow,
    now: Timestamp,
    caller: &Caller,
) -> Result<AuthPayload, ApiError> {
    let session_id = crate::secrets::random_id()?;
    let expires_at = now + config.session_ttl;
    let now_text = time::format(now);
    let expires_text = time::format(expires_at);
    sessions::create(
        db,
        &sessions::NewSession {
            id: &session_id,
            user_id: user.id,
            now: &now_text,
            expires_at: &expires_text,
            client_ip: &caller.ip,
            user_agent: &caller.user_agent,
        },
    )
    .await?;
    let token: SecretString = auth::issue_token(config, user.id, &session_id, now, expires_at)?;
    Ok(AuthPayload {
        token,
        expires_at: expires_text,
        user: user.output(),
    })
}
