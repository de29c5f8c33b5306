//! The `nodes` table. `token_hash` is read only to authenticate an agent and never selected
//! into a row that could reach a response.

use super::StoreError;
use super::{all, first, int, opt_text, run, text};
use serde::Deserialize;
use stowage_shared::api::NodeStatus;
use worker::D1Database;

#[derive(Debug, Clone, Deserialize)]
pub struct NodeRow {
    pub id: i64,
    pub name: String,
    pub status: NodeStatus,
    pub hostname: String,
    pub ip_address: String,
    pub os: String,
    pub arch: String,
    pub agent_version: String,
    pub capabilities: String,
    pub last_seen_at: Option<String>,
    pub created_at: String,
    pub queue_depth: i64,
}

/// Every query that returns a [`NodeRow`] selects exactly these columns.
macro_rules! node_select {
    ($($tail:expr),*) => {
        concat!(
            "SELECT n.id, n.name, n.status, n.hostname, n.ip_address, n.os, n.arch, n.agent_version,
                    n.capabilities, n.last_seen_at, n.created_at,
                    (SELECT COUNT(*) FROM agent_commands c
                     WHERE c.node_id = n.id AND c.status IN ('pending', 'claimed')) AS queue_depth
             FROM nodes n ",
            $($tail),*
        )
    };
}

pub async fn list(db: &D1Database) -> Result<Vec<NodeRow>, StoreError> {
    all(db, node_select!("ORDER BY n.name COLLATE NOCASE"), &[]).await
}

/// What a page of nodes is filtered by; `None` matches everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// As marked in the row (the nodes' objects keep it current).
    pub status: Option<NodeStatus>,
    /// A case-insensitive substring of the name, hostname or address.
    pub text: Option<&'a str>,
}

macro_rules! node_where {
    () => {
        "WHERE (?1 IS NULL OR n.status = ?1)
           AND (?2 IS NULL OR instr(lower(n.name || ' ' || n.hostname || ' ' || n.ip_address),
                                    lower(?2)) > 0) "
    };
}

/// One page of nodes by name, and how many match in all. The queue depth is counted for the
/// page's rows only, through the queue's index.
pub async fn page(
    db: &D1Database,
    f: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<NodeRow>, u64), StoreError> {
    let args = [
        opt_text(f.status.map(|s| s.as_str())),
        opt_text(f.text),
        int(limit),
        int(offset),
    ];
    let rows: Vec<NodeRow> = all(
        db,
        node_select!(
            node_where!(),
            "ORDER BY n.name COLLATE NOCASE LIMIT ?3 OFFSET ?4"
        ),
        &args,
    )
    .await?;
    #[derive(Deserialize)]
    struct Count {
        n: i64,
    }
    let count: Option<Count> = first(
        db,
        concat!("SELECT COUNT(*) AS n FROM nodes n ", node_where!()),
        &args[..2],
    )
    .await?;
    Ok((rows, count.map_or(0, |c| c.n.unsigned_abs())))
}

pub async fn get(db: &D1Database, id: i64) -> Result<Option<NodeRow>, StoreError> {
    first(db, node_select!("WHERE n.id = ?1"), &[int(id)]).await
}

/// Creates a node; `None` when the name is taken.
pub async fn create(
    db: &D1Database,
    name: &str,
    token_hash: &str,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "INSERT INTO nodes (name, token_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT DO NOTHING RETURNING id",
        &[text(name), text(token_hash), text(now)],
    )
    .await?;
    Ok(row.map(|r| r.id))
}

/// Is `name` used by a node other than `except`?
pub async fn name_taken(db: &D1Database, name: &str, except: i64) -> Result<bool, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        taken: i64,
    }
    let row: Option<Row> = first(
        db,
        "SELECT EXISTS (SELECT 1 FROM nodes WHERE name = ?1 AND id <> ?2) AS taken",
        &[text(name), int(except)],
    )
    .await?;
    Ok(row.is_some_and(|r| r.taken != 0))
}

/// Renames a node; false when it does not exist or the name was taken meanwhile.
pub async fn rename(db: &D1Database, id: i64, name: &str, now: &str) -> Result<bool, StoreError> {
    let changed = run(
        db,
        "UPDATE OR IGNORE nodes SET name = ?2, updated_at = ?3 WHERE id = ?1",
        &[int(id), text(name), text(now)],
    )
    .await?;
    Ok(changed > 0)
}

/// Replaces the token hash: the old token stops working with this statement.
pub async fn set_token_hash(
    db: &D1Database,
    id: i64,
    token_hash: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let changed = run(
        db,
        "UPDATE nodes SET token_hash = ?2, updated_at = ?3 WHERE id = ?1",
        &[int(id), text(token_hash), text(now)],
    )
    .await?;
    Ok(changed > 0)
}

/// Deletes a node and, by cascade, its commands. Tasks (a later table) will block this with
/// `NODE_HAS_TASKS` through their foreign key check in the handler.
/// Deletes a node that no task runs on; false when it is gone or still has tasks.
pub async fn delete_unused(db: &D1Database, id: i64) -> Result<bool, StoreError> {
    Ok(run(
        db,
        "DELETE FROM nodes WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM backup_tasks WHERE node_id = ?1)",
        &[int(id)],
    )
    .await?
        > 0)
}

#[derive(Debug, Clone, Deserialize)]
pub struct AgentIdentity {
    pub id: i64,
    pub name: String,
    /// As marked before this request: a heartbeat from an `offline` node that was seen before
    /// means it came back.
    pub status: NodeStatus,
    pub last_seen_at: Option<String>,
}

pub async fn by_token_hash(
    db: &D1Database,
    token_hash: &str,
) -> Result<Option<AgentIdentity>, StoreError> {
    first(
        db,
        "SELECT id, name, status, last_seen_at FROM nodes WHERE token_hash = ?1",
        &[text(token_hash)],
    )
    .await
}

#[derive(Debug)]
pub struct Heartbeat<'a> {
    pub hostname: &'a str,
    pub ip_address: &'a str,
    pub os: &'a str,
    pub arch: &'a str,
    pub agent_version: &'a str,
    pub capabilities: &'a str,
}

/// Records a heartbeat and marks the node online.
pub async fn heartbeat(
    db: &D1Database,
    id: i64,
    hb: &Heartbeat<'_>,
    now: &str,
) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE nodes SET status = 'online', hostname = ?2, ip_address = ?3, os = ?4, arch = ?5,
                agent_version = ?6, capabilities = ?7, last_seen_at = ?8, updated_at = ?8
         WHERE id = ?1",
        &[
            int(id),
            text(hb.hostname),
            text(hb.ip_address),
            text(hb.os),
            text(hb.arch),
            text(hb.agent_version),
            text(hb.capabilities),
            text(now),
        ],
    )
    .await?;
    Ok(())
}

/// A node the tick marked offline.
#[derive(Debug, Clone, Deserialize)]
pub struct WentOffline {
    pub id: i64,
    pub name: String,
    pub last_seen_at: Option<String>,
}

/// Marks at most `limit` nodes silent since before `cutoff` offline; returns the ones that
/// changed.
pub async fn mark_silent_offline(
    db: &D1Database,
    cutoff: &str,
    now: &str,
    limit: i64,
) -> Result<Vec<WentOffline>, StoreError> {
    all(
        db,
        "UPDATE nodes SET status = 'offline', updated_at = ?2
         WHERE id IN (SELECT id FROM nodes
                      WHERE status = 'online' AND (last_seen_at IS NULL OR last_seen_at <= ?1)
                      ORDER BY last_seen_at LIMIT ?3)
         RETURNING id, name, last_seen_at",
        &[text(cutoff), text(now), int(limit)],
    )
    .await
}

/// Counts a node's call of `kind` in its current window (one that began after `window_cutoff`, or
/// a new one from `now`) and returns the count, this call included.
pub async fn pace(
    db: &D1Database,
    node_id: i64,
    kind: &str,
    now: &str,
    window_cutoff: &str,
) -> Result<i64, StoreError> {
    #[derive(Deserialize)]
    struct Calls {
        calls: i64,
    }
    let row: Option<Calls> = first(
        db,
        "INSERT INTO agent_pace (node_id, kind, window_start, calls) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (node_id, kind) DO UPDATE SET
             calls        = CASE WHEN window_start <= ?4 THEN 1  ELSE calls + 1 END,
             window_start = CASE WHEN window_start <= ?4 THEN ?3 ELSE window_start END
         RETURNING calls",
        &[int(node_id), text(kind), text(now), text(window_cutoff)],
    )
    .await?;
    Ok(row.map_or(1, |r| r.calls))
}

/// Writes a live node's `lastSeenAt` (the object's batched flush) and says how many commands
/// wait for it; `None` when the row is not marked online (the tick's backstop marked it
/// offline meanwhile, or it was deleted): the caller then marks it back online itself.
pub async fn flush_seen(db: &D1Database, id: i64, seen: &str) -> Result<Option<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Pending {
        pending: i64,
    }
    let row: Option<Pending> = first(
        db,
        "UPDATE nodes SET last_seen_at = ?2
         WHERE id = ?1 AND status = 'online'
         RETURNING (SELECT COUNT(*) FROM agent_commands
                    WHERE node_id = ?1 AND status = 'pending') AS pending",
        &[int(id), text(seen)],
    )
    .await?;
    Ok(row.map(|r| r.pending))
}

/// Marks a node online again after the tick's backstop marked it offline; false when it was
/// not offline (or is gone).
pub async fn mark_online(db: &D1Database, id: i64, seen: &str) -> Result<bool, StoreError> {
    let changed = run(
        db,
        "UPDATE nodes SET status = 'online', last_seen_at = ?2, updated_at = ?2
         WHERE id = ?1 AND status = 'offline'",
        &[int(id), text(seen)],
    )
    .await?;
    Ok(changed > 0)
}

/// Marks one node offline (its object heard nothing for the threshold); `None` when it was not
/// online.
pub async fn mark_offline(
    db: &D1Database,
    id: i64,
    seen: &str,
    now: &str,
) -> Result<Option<WentOffline>, StoreError> {
    first(
        db,
        "UPDATE nodes SET status = 'offline', last_seen_at = MAX(COALESCE(last_seen_at, ''), ?2),
                updated_at = ?3
         WHERE id = ?1 AND status = 'online'
         RETURNING id, name, last_seen_at",
        &[int(id), text(seen), text(now)],
    )
    .await
}
