//! The Worker's configuration, read once per request from its environment. Binding and variable
//! names are constants here and documented in the README and `wrangler.toml`.
//!
//! A value that is present but unusable fails closed (`SERVER_MISCONFIGURED`) instead of falling back
//! to a default silently: a typo in a lockout setting must not turn throttling off.

use crate::error::ApiError;
use chrono::Duration;
use stowage_shared::SecretString;
use stowage_shared::nodes::Timings;
use stowage_shared::throttle::ThrottlePolicy;
use worker::{D1Database, Env};

pub const DB_BINDING: &str = "DB";
/// HMAC key for session tokens (HS256). A Worker secret, at least 32 bytes.
pub const JWT_SECRET: &str = "JWT_SECRET";
/// AES-256-GCM key (64 hex digits) that seals stored secrets. A Worker secret.
pub const SEAL_KEY: &str = "SEAL_KEY";
pub const SESSION_TTL_SECS: &str = "SESSION_TTL_SECS";
pub const ARGON2_MEMORY_KIB: &str = "ARGON2_MEMORY_KIB";
pub const ARGON2_ITERATIONS: &str = "ARGON2_ITERATIONS";
pub const ARGON2_PARALLELISM: &str = "ARGON2_PARALLELISM";
pub const LOGIN_MAX_FAILURES: &str = "LOGIN_MAX_FAILURES";
pub const LOGIN_WINDOW_SECS: &str = "LOGIN_WINDOW_SECS";
pub const LOGIN_LOCKOUT_SECS: &str = "LOGIN_LOCKOUT_SECS";
pub const LOGIN_IP_LOCKOUT_SECS: &str = "LOGIN_IP_LOCKOUT_SECS";
pub const LOGIN_IP_LOCKOUT_MAX_SECS: &str = "LOGIN_IP_LOCKOUT_MAX_SECS";
pub const MAX_JSON_BODY_BYTES: &str = "MAX_JSON_BODY_BYTES";
pub const HEARTBEAT_SECS: &str = "HEARTBEAT_SECS";
pub const POLL_SECS: &str = "POLL_SECS";
pub const LEASE_SECS: &str = "LEASE_SECS";
pub const OFFLINE_AFTER_SECS: &str = "OFFLINE_AFTER_SECS";
pub const RPC_WAIT_SECS: &str = "RPC_WAIT_SECS";
/// Google's OAuth endpoints; overridable so the flow can run against a local stand-in in tests.
pub const GOOGLE_OAUTH_AUTH_URL: &str = "GOOGLE_OAUTH_AUTH_URL";
pub const GOOGLE_OAUTH_TOKEN_URL: &str = "GOOGLE_OAUTH_TOKEN_URL";

/// Where `GET /api/system/update-check` reads the latest release (GitHub's release JSON shape).
pub const RELEASES_URL: &str = "RELEASES_URL";
pub const DEFAULT_RELEASES_URL: &str =
    "https://api.github.com/repos/stowage/stowage/releases/latest";

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the Worker was built from (`make build` sets it; empty in other builds).
pub const BUILD: &str = match option_env!("STOWAGE_BUILD") {
    Some(b) => b,
    None => "",
};

/// argon2id cost. The defaults are OWASP's first recommendation (19 MiB, 2 passes, 1 lane), about
/// 30 ms of CPU per hash inside workerd — more than the Free plan's 10 ms per request allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub jwt_secret: SecretString,
    /// Absent means the routes that store secrets answer SERVER_MISCONFIGURED; sign-in still works.
    pub seal_key: Option<SecretString>,
    pub session_ttl: Duration,
    pub argon2: Argon2Cost,
    pub throttle: ThrottlePolicy,
    pub max_json_body: usize,
    pub timings: Timings,
    pub google: GoogleOauth,
    pub releases_url: String,
    /// The nodes' Durable Objects (agent links, liveness, wake-ups).
    pub links: crate::links::Links,
}

/// Where the Google Drive authorization goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleOauth {
    pub auth_url: String,
    pub token_url: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        let jwt_secret = env
            .secret(JWT_SECRET)
            .map(|s| s.to_string())
            .map_err(|_| ApiError::Misconfigured(format!("secret {JWT_SECRET} is not set")))?;
        if jwt_secret.len() < 32 {
            return Err(ApiError::Misconfigured(format!(
                "secret {JWT_SECRET} must be at least 32 bytes"
            )));
        }
        Ok(Self {
            jwt_secret: SecretString::new(jwt_secret),
            seal_key: env
                .secret(SEAL_KEY)
                .ok()
                .map(|s| SecretString::new(s.to_string())),
            session_ttl: Duration::seconds(number(env, SESSION_TTL_SECS, 86_400, 60..=31_536_000)?),
            argon2: Argon2Cost {
                memory_kib: number(env, ARGON2_MEMORY_KIB, 19_456, 1_024..=262_144)?,
                iterations: number(env, ARGON2_ITERATIONS, 2, 1..=16)?,
                parallelism: number(env, ARGON2_PARALLELISM, 1, 1..=8)?,
            },
            throttle: ThrottlePolicy {
                max_failures: number(env, LOGIN_MAX_FAILURES, 5, 1..=1_000)?,
                window: Duration::seconds(number(env, LOGIN_WINDOW_SECS, 900, 1..=86_400)?),
                lockout: Duration::seconds(number(env, LOGIN_LOCKOUT_SECS, 60, 1..=86_400)?),
                ip_lockout: Duration::seconds(number(env, LOGIN_IP_LOCKOUT_SECS, 60, 1..=86_400)?),
                ip_lockout_max: Duration::seconds(number(
                    env,
                    LOGIN_IP_LOCKOUT_MAX_SECS,
                    86_400,
                    1..=2_592_000,
                )?),
            },
            max_json_body: number(env, MAX_JSON_BODY_BYTES, 1_048_576, 1_024..=10_485_760)?,
            timings: timings(env)?,
            google: GoogleOauth {
                auth_url: http_url(
                    env,
                    GOOGLE_OAUTH_AUTH_URL,
                    "https://accounts.google.com/o/oauth2/v2/auth",
                )?,
                token_url: http_url(
                    env,
                    GOOGLE_OAUTH_TOKEN_URL,
                    "https://oauth2.googleapis.com/token",
                )?,
            },
            releases_url: http_url(env, RELEASES_URL, DEFAULT_RELEASES_URL)?,
            links: crate::links::Links::from_env(env)?,
        })
    }
}

fn timings(env: &Env) -> Result<Timings, ApiError> {
    let d = Timings::default();
    let secs = |name: &str, default: Duration| -> Result<Duration, ApiError> {
        number(env, name, default.num_seconds(), 1..=3_600).map(Duration::seconds)
    };
    let timings = Timings {
        heartbeat: secs(HEARTBEAT_SECS, d.heartbeat)?,
        poll: secs(POLL_SECS, d.poll)?,
        lease: secs(LEASE_SECS, d.lease)?,
        offline_after: secs(OFFLINE_AFTER_SECS, d.offline_after)?,
        rpc_wait: secs(RPC_WAIT_SECS, d.rpc_wait)?,
    };
    timings
        .check()
        .map_err(|why| ApiError::Misconfigured(format!("agent timings: {why}")))?;
    Ok(timings)
}

/// A URL variable: absent → `default`; present → must be an http(s) URL.
fn http_url(env: &Env, name: &str, default: &str) -> Result<String, ApiError> {
    let Ok(var) = env.var(name) else {
        return Ok(default.to_owned());
    };
    let text = var.to_string();
    match worker::Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(text.trim().to_owned()),
        _ => Err(ApiError::Misconfigured(format!(
            "variable {name}={text:?} must be an http(s) URL"
        ))),
    }
}

/// A numeric variable: absent → `default`; present → must parse and lie in `range`.
fn number<T>(
    env: &Env,
    name: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ApiError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Ok(var) = env.var(name) else {
        return Ok(default);
    };
    let text = var.to_string();
    match text.trim().parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(ApiError::Misconfigured(format!(
            "variable {name}={text:?} must be a number from {} to {}",
            range.start(),
            range.end()
        ))),
    }
}

impl Config {
    pub fn sealer(&self) -> Result<crate::secrets::Sealer, ApiError> {
        let key = self
            .seal_key
            .as_ref()
            .ok_or_else(|| ApiError::Misconfigured(format!("secret {SEAL_KEY} is not set")))?;
        crate::secrets::Sealer::new(key)
    }
}

/// What every handler gets: the database and the configuration.
#[derive(Debug)]
pub struct AppState {
    pub db: D1Database,
    pub config: Config,
}

impl AppState {
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        let db = env
            .d1(DB_BINDING)
            .map_err(|_| ApiError::Misconfigured(format!("D1 binding {DB_BINDING} is missing")))?;
        Ok(Self {
            db,
            config: Config::from_env(env)?,
        })
    }
}
