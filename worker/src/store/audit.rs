//! The `audit_logs` table. Writing is part of the request: an action that cannot be audited fails.

use super::StoreError;
use super::{all, first, int, opt_text, run, stmt, text};
use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One audit row. `detail` is a short reason code, never a secret or a request body.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub now: &'a str,
    pub actor_user_id: Option<i64>,
    pub actor: &'a str,
    pub action: &'static str,
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
    pub outcome: Outcome,
    pub detail: &'a str,
    pub client_ip: &'a str,
    pub user_agent: &'a str,
}

pub fn insert(db: &D1Database, e: &Entry<'_>) -> Result<D1PreparedStatement, StoreError> {
    stmt(
        db,
        "INSERT INTO audit_logs (created_at, actor_user_id, actor, action, resource_type, resource_id, result, detail, client_ip, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        &[
            text(e.now),
            e.actor_user_id.map_or(worker::wasm_bindgen::JsValue::NULL, int),
            text(e.actor),
            text(e.action),
            text(e.resource_type),
            opt_text(e.resource_id.as_deref()),
            text(e.outcome.as_str()),
            text(e.detail),
            text(e.client_ip),
            text(e.user_agent),
        ],
    )
}

pub async fn record(db: &D1Database, e: &Entry<'_>) -> Result<(), StoreError> {
    let result = insert(db, e)?
        .run()
        .await
        .map_err(|err| StoreError::new("audit insert", err))?;
    super::counted(&result);
    Ok(())
}

/// A refusal that is counted rather than written each time: the first of a window (ending at
/// `until`) writes its audit row; later ones of the same `key` before then only count, and the
/// row's detail says how many (`rate_limited (12 refused)`).
pub async fn record_counted(
    db: &D1Database,
    e: &Entry<'_>,
    key: &str,
    until: &str,
) -> Result<(), StoreError> {
    #[derive(Deserialize)]
    struct Counted {
        audit_id: i64,
        refused: i64,
    }
    let counted: Option<Counted> = first(
        db,
        "UPDATE audit_summaries SET refused = refused + 1 WHERE key = ?1 AND until > ?2
         RETURNING audit_id, refused",
        &[text(key), text(e.now)],
    )
    .await?;
    if let Some(c) = counted {
        run(
            db,
            "UPDATE audit_logs SET detail = ?2 WHERE id = ?1",
            &[
                int(c.audit_id),
                text(&format!("{} ({} refused)", e.detail, c.refused)),
            ],
        )
        .await?;
        return Ok(());
    }
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let result = insert(db, e)?
        .all()
        .await
        .map_err(|err| StoreError::new("audit insert", err))?;
    super::counted(&result);
    let row: Option<Id> = result
        .results::<Id>()
        .map_err(|err| StoreError::new("audit insert", err))?
        .into_iter()
        .next();
    let audit_id = row.map_or(0, |r| r.id);
    run(
        db,
        "INSERT INTO audit_summaries (key, audit_id, refused, until) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (key) DO UPDATE SET audit_id = excluded.audit_id, refused = 1,
             until = excluded.until",
        &[text(key), int(audit_id), text(until)],
    )
    .await?;
    Ok(())
}

/// The filters of `GET /api/audit-logs`; `None` means "any".
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub actor: Option<&'a str>,
    /// An exact action (`backup_task.create`) or a resource's every action (`backup_task`).
    pub action: Option<&'a str>,
    pub resource_type: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub result: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    /// Case-insensitive text anywhere in the row (no wildcards: `instr`, not `LIKE`).
    pub text: Option<&'a str>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub created_at: String,
    pub actor_user_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub result: String,
    pub detail: String,
    pub client_ip: String,
    pub user_agent: String,
}

macro_rules! audit_where {
    () => {
        "WHERE (?1 IS NULL OR actor = ?1 COLLATE NOCASE)
           AND (?2 IS NULL OR action = ?2 OR substr(action, 1, length(?2) + 1) = ?2 || '.')
           AND (?3 IS NULL OR resource_type = ?3)
           AND (?4 IS NULL OR resource_id = ?4)
           AND (?5 IS NULL OR result = ?5)
           AND (?6 IS NULL OR created_at >= ?6)
           AND (?7 IS NULL OR created_at <= ?7)
           AND (?8 IS NULL OR instr(lower(actor || ' ' || action || ' ' || resource_type || ' '
                                          || COALESCE(resource_id, '') || ' ' || detail || ' '
                                          || client_ip || ' ' || user_agent), lower(?8)) > 0) "
    };
}

/// One page of rows, newest first, and how many match in all.
pub async fn page(
    db: &D1Database,
    f: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AuditRow>, u64), StoreError> {
    let args = [
        opt_text(f.actor),
        opt_text(f.action),
        opt_text(f.resource_type),
        opt_text(f.resource_id),
        opt_text(f.result),
        opt_text(f.from),
        opt_text(f.to),
        opt_text(f.text),
        int(limit),
        int(offset),
    ];
    let rows: Vec<AuditRow> = all(
        db,
        concat!(
            "SELECT id, created_at, actor_user_id, actor, action, resource_type, resource_id, result,
                    detail, client_ip, user_agent
             FROM audit_logs ",
            audit_where!(),
            "ORDER BY id DESC LIMIT ?9 OFFSET ?10"
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
        concat!("SELECT COUNT(*) AS n FROM audit_logs ", audit_where!()),
        &args[..8],
    )
    .await?;
    Ok((rows, count.map_or(0, |c| c.n.unsigned_abs())))
}

/// Rows older than `before`; returns how many went.
pub async fn purge_summaries(db: &D1Database, now: &str) -> Result<usize, StoreError> {
    run(
        db,
        "DELETE FROM audit_summaries WHERE until <= ?1",
        &[text(now)],
    )
    .await
}

pub async fn purge(db: &D1Database, before: &str) -> Result<usize, StoreError> {
    run(
        db,
        "DELETE FROM audit_logs WHERE created_at < ?1",
        &[text(before)],
    )
    .await
}
