//! The `users` table.

use super::StoreError;
use super::{first, int, run, stmt, text};
use serde::Deserialize;
use stowage_shared::SecretString;
use stowage_shared::api::{Role, UserOutput};
use worker::{D1Database, D1PreparedStatement};

#[derive(Debug, Clone, Deserialize)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    /// PHC string; redacted in `Debug` like every secret.
    pub password_hash: SecretString,
    pub password_changed_at: String,
    pub created_at: String,
}

impl UserRow {
    pub fn output(&self) -> UserOutput {
        UserOutput {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            // The column has a CHECK constraint; an unknown value would be a bug, and the least
            // privileged role is the safe reading of it.
            role: Role::parse(&self.role).unwrap_or(Role::Viewer),
            created_at: self.created_at.clone(),
            password_changed_at: self.password_changed_at.clone(),
        }
    }
}

pub async fn any_exists(db: &D1Database) -> Result<bool, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        present: i64,
    }
    let row: Option<Row> = first(db, "SELECT EXISTS (SELECT 1 FROM users) AS present", &[]).await?;
    Ok(row.is_some_and(|r| r.present != 0))
}

/// Creates the first administrator, or nothing when any user exists. One statement, so two
/// concurrent setups cannot both succeed: D1 runs statements one at a time.
pub async fn create_first_admin(
    db: &D1Database,
    username: &str,
    display_name: &str,
    password_hash: &str,
    now: &str,
) -> Result<Option<UserRow>, StoreError> {
    const SQL: &str = "INSERT INTO users (username, display_name, role, password_hash, password_changed_at, created_at, updated_at)
         SELECT ?1, ?2, 'admin', ?3, ?4, ?4, ?4
         WHERE NOT EXISTS (SELECT 1 FROM users)
         RETURNING id, username, display_name, role, password_hash, password_changed_at, created_at";
    first(
        db,
        SQL,
        &[
            text(username),
            text(display_name),
            text(password_hash),
            text(now),
        ],
    )
    .await
}

pub async fn find_by_username(
    db: &D1Database,
    username: &str,
) -> Result<Option<UserRow>, StoreError> {
    const SQL: &str =
        "SELECT id, username, display_name, role, password_hash, password_changed_at, created_at
         FROM users WHERE username = ?1";
    first(db, SQL, &[text(username)]).await
}

/// The statement that sets a new password hash, for use inside a batch.
pub fn set_password(
    db: &D1Database,
    user_id: i64,
    password_hash: &str,
    now: &str,
) -> Result<D1PreparedStatement, StoreError> {
    stmt(
        db,
        "UPDATE users SET password_hash = ?2, password_changed_at = ?3, updated_at = ?3 WHERE id = ?1",
        &[int(user_id), text(password_hash), text(now)],
    )
}

/// Replaces a hash made with outdated argon2 parameters after a successful sign-in.
pub async fn rehash(
    db: &D1Database,
    user_id: i64,
    password_hash: &str,
    now: &str,
) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        &[int(user_id), text(password_hash), text(now)],
    )
    .await?;
    Ok(())
}
