//! Passwords, session tokens and the signed-in principal.
//!
//! Passwords are argon2id PHC strings. A token is an HS256 JWT whose `sid` names a row in `sessions`;
//! the signature proves the token is ours, the row proves it is still wanted, so logout and password
//! changes revoke tokens at once.

use crate::config::{Argon2Cost, Config};
use crate::error::ApiError;
use crate::store::{sessions, users::UserRow};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use stowage_shared::api::Role;
use stowage_shared::time::{self, Timestamp};
use stowage_shared::{ErrorCode, SecretString};
use worker::{D1Database, Request};

const ISSUER: &str = "stowage";

fn argon2(cost: Argon2Cost) -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| ApiError::Misconfigured(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password with a fresh random salt.
pub fn hash_password(cost: Argon2Cost, password: &SecretString) -> Result<String, ApiError> {
    argon2(cost)?
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::internal("argon2 hash", e))
}

/// Checks a password against a stored PHC string, with the parameters recorded in that string.
pub fn verify_password(cost: Argon2Cost, password: &SecretString, stored: &SecretString) -> bool {
    let Ok(hash) = PasswordHash::new(stored.expose()) else {
        return false;
    };
    argon2(cost).is_ok_and(|a| {
        a.verify_password(password.expose().as_bytes(), &hash)
            .is_ok()
    })
}

/// Spends the same work as a real verification, so that an unknown username answers in about the
/// same time as a wrong password.
pub fn burn_equivalent_work(cost: Argon2Cost, password: &SecretString) {
    let _ = hash_password(cost, password);
}

/// True when the stored hash was made with other parameters than the configured ones.
pub fn needs_rehash(cost: Argon2Cost, stored: &SecretString) -> bool {
    let Ok(hash) = PasswordHash::new(stored.expose()) else {
        return false;
    };
    match Params::try_from(&hash) {
        Ok(p) => {
            p.m_cost() != cost.memory_kib
                || p.t_cost() != cost.iterations
                || p.p_cost() != cost.parallelism
        }
        Err(_) => true,
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    /// The user id, as a decimal string (JWT convention).
    sub: String,
    /// The session id: a row in `sessions`.
    sid: String,
    iat: i64,
    exp: i64,
    /// Only on stream tickets: the one path the ticket opens. A session token has none, and a
    /// ticket is refused as a bearer token (its audience does not match), and the other way round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    /// Only on stream tickets: its id, spent at first use, so a ticket opens one stream once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

/// How long a stream ticket can be used: long enough to open the stream, short enough that a URL
/// seen in a log is worthless soon after.
pub const TICKET_SECS: i64 = 60;

fn ticket_audience(path: &str) -> String {
    format!("stowage-ticket:{path}")
}

/// A ticket that signs in a GET of `path` (only) for [`TICKET_SECS`], on the caller's session.
pub fn issue_ticket(
    config: &Config,
    principal: &Principal,
    path: &str,
    now: Timestamp,
) -> Result<(SecretString, Timestamp), ApiError> {
    let expires_at = now + chrono::Duration::seconds(TICKET_SECS);
    let claims = Claims {
        iss: ISSUER.to_owned(),
        sub: principal.user.id.to_string(),
        sid: principal.session_id.clone(),
        iat: now.timestamp(),
        exp: expires_at.timestamp(),
        aud: Some(ticket_audience(path)),
        jti: Some(crate::secrets::random_id()?),
    };
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(config.jwt_secret.expose().as_bytes()),
    )
    .map(|t| (SecretString::new(t), expires_at))
    .map_err(|e| ApiError::internal("sign ticket", e))
}

pub fn issue_token(
    config: &Config,
    user_id: i64,
    session_id: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<SecretString, ApiError> {
    let claims = Claims {
        iss: ISSUER.to_owned(),
        sub: user_id.to_string(),
        sid: session_id.to_owned(),
        iat: now.timestamp(),
        exp: expires_at.timestamp(),
        aud: None,
        jti: None,
    };
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(config.jwt_secret.expose().as_bytes()),
    )
    .map(SecretString::new)
    .map_err(|e| ApiError::internal("sign token", e))
}

/// A new node token: 32 random bytes, hex encoded behind a `stn_` prefix that secret scanners
/// can recognise. Only its hash is stored.
pub fn new_node_token() -> Result<SecretString, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("random node token", e))?;
    Ok(SecretString::new(format!("stn_{}", hex::encode(bytes))))
}

/// The stored form of a node token. A fast hash is right here: the token has 256 bits of
/// entropy, so there is nothing to brute-force, unlike a password.
pub fn node_token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Who is calling, once the token and its session have both been checked.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRow,
    pub session_id: String,
}

impl Principal {
    /// Refuses with `403 AUTH_FORBIDDEN` unless the user's role is at least `needed`
    /// (admin > operator > viewer).
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        let rank = |r: Role| match r {
            Role::Viewer => 0,
            Role::Operator => 1,
            Role::Admin => 2,
        };
        if rank(self.user.output().role) >= rank(needed) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::AuthForbidden,
                format!("this needs the {} role", needed.as_str()),
            ))
        }
    }
}

/// Checks `Authorization: Bearer <jwt>`: the signature (HS256 only — `alg: none` and every other
/// algorithm are refused), the expiry, and that the session row is live.
pub async fn authenticate(
    db: &D1Database,
    config: &Config,
    req: &Request,
    now: Timestamp,
) -> Result<Principal, ApiError> {
    let header = req.headers().get("Authorization")?.unwrap_or_default();
    let token = header.trim();
    if token.is_empty()
        && let Some(ticket) = ticket_of(req)?
    {
        return check(
            db,
            config,
            &ticket,
            Some(&ticket_audience(&req.path())),
            now,
        )
        .await;
    }
    if token.is_empty() {
        return Err(ApiError::new(
            ErrorCode::AuthRequired,
            "sign in first: send Authorization: Bearer <token>",
        ));
    }
    let invalid = || {
        ApiError::new(
            ErrorCode::AuthInvalidToken,
            "the token is invalid or has expired; sign in again",
        )
    };
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(invalid)?;
    check(db, config, token, None, now).await
}

/// The `ticket` query parameter, on the GET routes that accept one (streams and downloads).
fn ticket_of(req: &Request) -> Result<Option<String>, ApiError> {
    if req.method() != worker::Method::Get {
        return Ok(None);
    }
    let path = req.path();
    if !(path.ends_with("/logs/stream") || path.ends_with("/download")) {
        return Ok(None);
    }
    Ok(req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned()))
}

/// Checks a token's signature, expiry and audience (`None` for a session token) and that its
/// session is live.
async fn check(
    db: &D1Database,
    config: &Config,
    token: &str,
    audience: Option<&str>,
    now: Timestamp,
) -> Result<Principal, ApiError> {
    let invalid = || {
        ApiError::new(
            ErrorCode::AuthInvalidToken,
            "the token is invalid or has expired; sign in again",
        )
    };
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.leeway = 0;
    validation.set_issuer(&[ISSUER]);
    match audience {
        Some(aud) => {
            validation.set_audience(&[aud]);
            validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        }
        None => validation.set_required_spec_claims(&["exp", "iss", "sub"]),
    }
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(config.jwt_secret.expose().as_bytes()),
        &validation,
    )
    .map_err(|_| invalid())?
    .claims;
    if audience.is_none() && claims.aud.is_some() {
        return Err(invalid());
    }
    if claims.exp <= now.timestamp() {
        return Err(invalid());
    }
    if audience.is_some() {
        // A ticket opens its stream once; a second use (a replayed URL) is refused.
        let jti = claims.jti.as_deref().ok_or_else(invalid)?;
        let expires = time::from_unix_millis(claims.exp.saturating_mul(1000)).unwrap_or(now);
        if !sessions::spend_ticket(db, jti, &time::format(expires)).await? {
            return Err(ApiError::new(
                ErrorCode::AuthInvalidToken,
                "this stream ticket was used already; ask for a new one",
            ));
        }
    }
    let user_id: i64 = claims.sub.parse().map_err(|_| invalid())?;
    let user = sessions::find_live_user(db, &claims.sid, user_id, &time::format(now))
        .await?
        .ok_or_else(invalid)?;
    Ok(Principal {
        user,
        session_id: claims.sid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Cost = Argon2Cost {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn hash_then_verify() {
        let pw = SecretString::new("correct horse battery");
        let hash = SecretString::new(hash_password(CHEAP, &pw).expect("hash"));
        assert!(hash.expose().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(!hash.expose().contains("correct horse"));
        assert!(verify_password(CHEAP, &pw, &hash));
        assert!(!verify_password(
            CHEAP,
            &SecretString::new("wrong horse battery"),
            &hash
        ));
        assert!(!verify_password(
            CHEAP,
            &pw,
            &SecretString::new("not a phc string")
        ));
    }

    #[test]
    fn two_hashes_of_one_password_differ() {
        let pw = SecretString::new("correct horse battery");
        assert_ne!(
            hash_password(CHEAP, &pw).expect("hash"),
            hash_password(CHEAP, &pw).expect("hash")
        );
    }

    #[test]
    fn node_tokens_are_random_prefixed_and_hashed() {
        let a = new_node_token().expect("token");
        let b = new_node_token().expect("token");
        assert_ne!(a, b);
        assert!(a.expose().starts_with("stn_") && a.expose().len() == 68);
        let hash = node_token_hash(a.expose());
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&a.expose()[4..]));
        assert_eq!(hash, node_token_hash(a.expose()));
    }

    #[test]
    fn rehash_when_parameters_change() {
        let pw = SecretString::new("correct horse battery");
        let hash = SecretString::new(hash_password(CHEAP, &pw).expect("hash"));
        assert!(!needs_rehash(CHEAP, &hash));
        let stronger = Argon2Cost {
            iterations: 2,
            ..CHEAP
        };
        assert!(needs_rehash(stronger, &hash));
        assert!(
            verify_password(stronger, &pw, &hash),
            "old hashes keep working"
        );
    }
}
