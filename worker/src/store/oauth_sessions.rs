//! The `oauth_sessions` table: authorizations in progress, keyed by the SHA-256 of their state.

use super::StoreError;
use super::{first, run, text};
use serde::Deserialize;
use worker::D1Database;

pub async fn create(
    db: &D1Database,
    state_hash: &str,
    provider: &str,
    draft_sealed: &str,
    now: &str,
    expires_at: &str,
) -> Result<(), StoreError> {
    run(
        db,
        "INSERT INTO oauth_sessions (state_hash, provider, draft_sealed, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            text(state_hash),
            text(provider),
            text(draft_sealed),
            text(now),
            text(expires_at),
        ],
    )
    .await
    .map(drop)
}

/// Marks the session used and returns its sealed draft, in one statement, so that a state can
/// complete at most once even when two requests race. `None` when it is unknown, used or expired.
pub async fn take(
    db: &D1Database,
    state_hash: &str,
    provider: &str,
    now: &str,
) -> Result<Option<String>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        draft_sealed: String,
    }
    let row: Option<Row> = first(
        db,
        "UPDATE oauth_sessions SET used_at = ?3
         WHERE state_hash = ?1 AND provider = ?2 AND used_at IS NULL AND expires_at > ?3
         RETURNING draft_sealed",
        &[text(state_hash), text(provider), text(now)],
    )
    .await?;
    Ok(row.map(|r| r.draft_sealed))
}

/// Deletes sessions that expired (used or not); returns how many.
pub async fn purge_expired(db: &D1Database, now: &str) -> Result<usize, StoreError> {
    run(
        db,
        "DELETE FROM oauth_sessions WHERE expires_at <= ?1",
        &[text(now)],
    )
    .await
}
