//! The `sessions` table: one row per issued token.

use super::StoreError;
use super::users::UserRow;
use super::{first, int, run, stmt, text};
use worker::{D1Database, D1PreparedStatement};

pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub now: &'a str,
    pub expires_at: &'a str,
    pub client_ip: &'a str,
    pub user_agent: &'a str,
}

pub async fn create(db: &D1Database, s: &NewSession<'_>) -> Result<(), StoreError> {
    run(
        db,
        "INSERT INTO sessions (id, user_id, created_at, expires_at, client_ip, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            text(s.id),
            int(s.user_id),
            text(s.now),
            text(s.expires_at),
            text(s.client_ip),
            text(s.user_agent),
        ],
    )
    .await?;
    Ok(())
}

/// The user behind a live session: not revoked, not expired, belonging to `user_id`.
pub async fn find_live_user(
    db: &D1Database,
    session_id: &str,
    user_id: i64,
    now: &str,
) -> Result<Option<UserRow>, StoreError> {
    first(
        db,
        "SELECT u.id, u.username, u.display_name, u.role, u.password_hash, u.password_changed_at, u.created_at
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND s.expires_at > ?3",
        &[text(session_id), int(user_id), text(now)],
    )
    .await
}

pub async fn revoke(db: &D1Database, session_id: &str, now: &str) -> Result<bool, StoreError> {
    let changed = run(
        db,
        "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        &[text(session_id), text(now)],
    )
    .await?;
    Ok(changed > 0)
}

/// Revokes every live session of the user except `keep`, for use inside a batch.
pub fn revoke_others(
    db: &D1Database,
    user_id: i64,
    keep: &str,
    now: &str,
) -> Result<D1PreparedStatement, StoreError> {
    stmt(
        db,
        "UPDATE sessions SET revoked_at = ?3
         WHERE user_id = ?1 AND id <> ?2 AND revoked_at IS NULL AND expires_at > ?3",
        &[int(user_id), text(keep), text(now)],
    )
}

/// Deletes sessions that can no longer be used: expired, or revoked before `revoked_before`.
pub async fn purge(db: &D1Database, now: &str, revoked_before: &str) -> Result<usize, StoreError> {
    let tickets = run(
        db,
        "DELETE FROM spent_tickets WHERE expires_at <= ?1",
        &[text(now)],
    )
    .await?;
    let sessions = run(
        db,
        "DELETE FROM sessions WHERE expires_at <= ?1 OR revoked_at <= ?2",
        &[text(now), text(revoked_before)],
    )
    .await?;
    Ok(sessions + tickets)
}

/// Marks a stream ticket used; `false` when it was used before.
pub async fn spend_ticket(
    db: &D1Database,
    jti: &str,
    expires_at: &str,
) -> Result<bool, StoreError> {
    let inserted = run(
        db,
        "INSERT INTO spent_tickets (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
        &[text(jti), text(expires_at)],
    )
    .await?;
    Ok(inserted == 1)
}
