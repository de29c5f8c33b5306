//! The `settings` table: one JSON value per key that was ever set. Which keys exist and what they
//! may hold is `shared::settings`; this file only reads and writes rows.

use super::StoreError;
use super::{all, batch, stmt, text};
use serde::Deserialize;
use serde_json::Value;
use stowage_shared::settings::Settings;
use worker::{D1Database, D1PreparedStatement};

pub async fn load(db: &D1Database) -> Result<Settings, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        key: String,
        value: String,
    }
    let rows: Vec<Row> = all(db, "SELECT key, value FROM settings", &[]).await?;
    let parsed: Vec<(String, Value)> = rows
        .into_iter()
        .filter_map(|r| serde_json::from_str(&r.value).ok().map(|v| (r.key, v)))
        .collect();
    Ok(Settings::from_rows(
        parsed.iter().map(|(k, v)| (k.as_str(), v)),
    ))
}

/// Writes the changed keys and the audit row of the change in one transaction.
pub async fn save(
    db: &D1Database,
    changed: &[(&'static str, Value)],
    now: &str,
    audit: D1PreparedStatement,
) -> Result<(), StoreError> {
    let mut statements = Vec::with_capacity(changed.len() + 1);
    for (key, value) in changed {
        statements.push(stmt(
            db,
            "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            &[text(key), text(&value.to_string()), text(now)],
        )?);
    }
    statements.push(audit);
    batch(db, statements).await.map(drop)
}
