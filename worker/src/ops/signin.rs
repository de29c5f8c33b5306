//! Sign-in throttling, shared by everything that checks a password: sign-in, a password change,
//! and actions that ask for the current password again (a repository's recovery kit). Each
//! failure counts against the account and the client address alike.

use crate::auth::{self, Principal};
use crate::config::Config;
use crate::error::ApiError;
use crate::store::throttle;
use stowage_shared::SecretString;
use stowage_shared::throttle::{Counter, Gate};
use stowage_shared::time::{self, Timestamp};
use worker::D1Database;

pub fn account_key(username: &str) -> String {
    format!("account:{}", username.to_lowercase())
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// Checks the signed-in user's current password again, under the sign-in throttle: a stolen
/// session must not become a way to guess it. `Ok(false)` is a wrong password (counted).
pub async fn confirm_password(
    db: &D1Database,
    config: &Config,
    principal: &Principal,
    ip: &str,
    password: &SecretString,
    now: Timestamp,
) -> Result<bool, ApiError> {
    let (account, ip) = (account_key(&principal.user.username), ip_key(ip));
    check_gates(db, config, [&account, &ip], now).await?;
    if auth::verify_password(config.argon2, password, &principal.user.password_hash) {
        return Ok(true);
    }
    count_failure(db, config, [&account, &ip], now).await?;
    Ok(false)
}

/// Refuses the attempt when the account or the address is locked out.
pub async fn check_gates(
    db: &D1Database,
    config: &Config,
    keys: [&str; 2],
    now: Timestamp,
) -> Result<(), ApiError> {
    let counters = throttle::get(db, keys).await?;
    let retry_after_secs = counters
        .iter()
        .filter_map(
            |(_, c): &(String, Counter)| match config.throttle.gate(Some(c), now) {
                Gate::Locked { retry_after_secs } => Some(retry_after_secs),
                Gate::Open => None,
            },
        )
        .max();
    match retry_after_secs {
        Some(retry_after_secs) => Err(ApiError::RateLimited { retry_after_secs }),
        None => Ok(()),
    }
}

pub async fn count_failure(
    db: &D1Database,
    config: &Config,
    keys: [&str; 2],
    now: Timestamp,
) -> Result<(), ApiError> {
    let now_text = time::format(now);
    let cutoff = time::format(config.throttle.window_cutoff(now));
    let [account, ip] = keys;
    let failures = throttle::count_failure(db, account, &now_text, &cutoff).await?;
    if let Some(until) = config.throttle.lock_after_failure(failures, now) {
        throttle::lock(db, account, &time::format(until), &now_text).await?;
    }
    let failures = throttle::count_failure(db, ip, &now_text, &cutoff).await?;
    let earlier =
        throttle::lockouts(db, ip, &time::format(now - chrono::Duration::days(1))).await?;
    if let Some(until) = config
        .throttle
        .ip_lock_after_failure(failures, earlier, now)
    {
        throttle::lock(db, ip, &time::format(until), &now_text).await?;
        throttle::count_lockout(
            db,
            ip,
            &now_text,
            &time::format(now - chrono::Duration::days(1)),
        )
        .await?;
    }
    Ok(())
}
