//! The `agent_commands` table: the leased queue between the Worker and agents. Every state change
//! is one conditional statement, so concurrent agents and ticks cannot both win.

use super::StoreError;
use super::{all, first, int, opt_text, run, text};
use serde::Deserialize;
use stowage_shared::commands::CommandStatus;
use stowage_shared::status::CommandKind;
use worker::D1Database;

/// Queues a command whose spec the caller has sealed under `uid`.
pub async fn enqueue(
    db: &D1Database,
    uid: &str,
    node_id: i64,
    kind: CommandKind,
    spec_sealed: &str,
    now: &str,
) -> Result<i64, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "INSERT INTO agent_commands (uid, node_id, kind, spec_sealed, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        &[text(uid), int(node_id), text(kind.as_str()), text(spec_sealed), text(now)],
    )
    .await?;
    row.map(|r| r.id)
        .ok_or_else(|| StoreError::new("enqueue command", "insert returned no id"))
}

#[derive(Debug, Clone, Deserialize)]
pub struct Claimed {
    pub id: i64,
    pub uid: String,
    pub spec_sealed: String,
    pub lease_expires_at: String,
}

/// Claims the oldest pending command of the node, atomically: the single UPDATE both picks and
/// takes the row, so two agents polling at once can never get the same command.
pub async fn claim_next(
    db: &D1Database,
    node_id: i64,
    now: &str,
    lease_until: &str,
) -> Result<Option<Claimed>, StoreError> {
    first(
        db,
        "UPDATE agent_commands
         SET status = 'claimed', claimed_at = ?2, lease_expires_at = ?3, attempts = attempts + 1
         WHERE id = (SELECT id FROM agent_commands WHERE node_id = ?1 AND status = 'pending'
                     ORDER BY id LIMIT 1)
           AND status = 'pending'
         RETURNING id, uid, spec_sealed, lease_expires_at",
        &[int(node_id), text(now), text(lease_until)],
    )
    .await
}

/// Extends the leases of the node's live claims among `ids`; returns the ids renewed.
pub async fn renew(
    db: &D1Database,
    node_id: i64,
    ids: &[i64],
    now: &str,
    lease_until: &str,
) -> Result<Vec<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids_json = serde_json::to_string(ids).map_err(|e| StoreError::new("renew", e))?;
    let rows: Vec<Id> = all(
        db,
        "UPDATE agent_commands SET lease_expires_at = ?4
         WHERE node_id = ?1 AND status = 'claimed' AND lease_expires_at > ?3
           AND id IN (SELECT value FROM json_each(?2))
         RETURNING id",
        &[int(node_id), text(&ids_json), text(now), text(lease_until)],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommandRow {
    pub node_id: i64,
    /// What the command does (`CommandSpec::kind`).
    pub kind: CommandKind,
    pub status: CommandStatus,
    pub lease_expires_at: Option<String>,
    pub result: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

pub async fn get(db: &D1Database, id: i64) -> Result<Option<CommandRow>, StoreError> {
    first(
        db,
        "SELECT node_id, kind, status, lease_expires_at, result, error_code, error_message
         FROM agent_commands WHERE id = ?1",
        &[int(id)],
    )
    .await
}

/// The outcome to store for a claimed command.
#[derive(Debug)]
pub struct Outcome<'a> {
    pub status: CommandStatus,
    pub result: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
}

/// Stores the outcome if the command is still claimed by `node_id` with a live lease; false
/// when that stopped being true since it was read.
pub async fn finish(
    db: &D1Database,
    id: i64,
    node_id: i64,
    outcome: &Outcome<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let changed = run(
        db,
        "UPDATE agent_commands
         SET status = ?3, result = ?4, error_code = ?5, error_message = ?6, finished_at = ?7
         WHERE id = ?1 AND node_id = ?2 AND status = 'claimed' AND lease_expires_at > ?7",
        &[
            int(id),
            int(node_id),
            text(outcome.status.as_str()),
            opt_text(outcome.result),
            opt_text(outcome.error_code),
            opt_text(outcome.error_message),
            text(now),
        ],
    )
    .await?;
    Ok(changed > 0)
}

/// Gives up a command nobody claimed (its caller stopped waiting).
pub async fn abandon(db: &D1Database, id: i64, now: &str) -> Result<bool, StoreError> {
    let changed = run(
        db,
        "UPDATE agent_commands
         SET status = 'expired', finished_at = ?2, error_message = 'the caller stopped waiting before an agent claimed it'
         WHERE id = ?1 AND status = 'pending'",
        &[int(id), text(now)],
    )
    .await?;
    Ok(changed > 0)
}

/// Expires runs still waiting for a node that went offline, so that they fail now instead of
/// starting whenever the node comes back; returns how many.
pub async fn expire_runs_of_offline_nodes(db: &D1Database, now: &str) -> Result<usize, StoreError> {
    run(
        db,
        "UPDATE agent_commands
         SET status = 'expired', finished_at = ?1,
             error_message = 'the node went offline before the work started'
         WHERE status = 'pending' AND kind IN ('run_backup', 'restore')
           AND node_id IN (SELECT id FROM nodes WHERE status = 'offline')",
        &[text(now)],
    )
    .await
}

/// Expires every claim whose lease has lapsed; returns how many.
pub async fn expire_lapsed(db: &D1Database, now: &str) -> Result<usize, StoreError> {
    run(
        db,
        "UPDATE agent_commands
         SET status = 'expired', finished_at = ?1,
             error_message = 'lease expired: the agent stopped reporting (crashed, killed or cut off)'
         WHERE status = 'claimed' AND lease_expires_at <= ?1",
        &[text(now)],
    )
    .await
}
