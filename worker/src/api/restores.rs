//! Restores: `POST /api/backup/records/:id/restore` hands a `restore` command to a node; the
//! agent verifies the artifact's SHA-256 while unpacking into a staging directory and moves files
//! into place only after it matched. `GET /api/restore/records[/:id]` shows them.

use super::Ctx;
use crate::config::AppState;
use crate::error::ApiError;
use crate::http;
use crate::ops::runs::{LOG_TAIL, progress, sections};
use crate::ops::runs::{Purpose, StoredCopy, stored_copy};
use crate::secrets::Sealer;
use crate::store::logs;
use crate::store::records::RecordRow;
use crate::store::restores::{self, NewRestore, RestoreRow};
use crate::store::tasks;
use stowage_shared::api::restores::check_selected_paths;
use stowage_shared::api::{
    RestoreConnection, RestoreRecordOutput, RestoreRequest, RestoredDatabase, Role,
};
use stowage_shared::databases::{
    DbConnection, DbEngine, DbSource, RestoreStep, check_connection, plan_restore,
};
use stowage_shared::protocol::{CommandSpec, DbRestoreTarget, StoredObject};
use stowage_shared::status::RestoreStatus;
use stowage_shared::storage::StorageType;
use stowage_shared::tasks::{MASK, SourceSpec, TaskSpec, TaskType};
use stowage_shared::{ErrorCode, SecretString, time};
use worker::{D1Database, Response};

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

fn output(row: RestoreRow) -> RestoreRecordOutput {
    RestoreRecordOutput {
        id: row.id,
        backup_record_id: row.backup_record_id,
        task_id: row.task_id,
        task_name: row.task_name,
        node_id: row.node_id,
        storage_target_id: row.target_id,
        target_path: row.target_path,
        // Written only from a checked plan.
        target_databases: serde_json::from_str(&row.target_databases).unwrap_or_default(),
        progress: progress(row.status == RestoreStatus::Running, &row.progress),
        status: row.status,
        files: count(row.files),
        bytes: count(row.bytes),
        error: row.error,
        triggered_by: row.triggered_by,
        started_at: row.started_at,
        finished_at: row.finished_at,
        log_tail: Vec::new(),
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::RestoreRecordNotFound,
        format!("restore {id} does not exist"),
    )
}

async fn answer(db: &D1Database, id: i64) -> Result<RestoreRecordOutput, ApiError> {
    let row = restores::get(db, id).await?.ok_or_else(|| not_found(id))?;
    let mut out = output(row);
    out.log_tail = logs::tail(db, logs::Kind::Restore, id, LOG_TAIL).await?;
    Ok(out)
}

/// A restore destination: an absolute directory without `.` or `..` steps.
fn destination(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let invalid =
        |why: &str| ApiError::new(ErrorCode::RestoreTargetInvalid, format!("targetPath {why}"));
    if !raw.starts_with('/') {
        return Err(invalid("must be an absolute path"));
    }
    if raw.contains('\0') || raw.split('/').any(|step| step == ".." || step == ".") {
        return Err(invalid("must not contain `.` or `..` steps"));
    }
    let trimmed = raw.trim_end_matches('/');
    Ok(Some(
        if trimmed.is_empty() { "/" } else { trimmed }.to_owned(),
    ))
}

/// What a restore will do, decided before anything is recorded or queued.
enum Plan {
    /// Files, to their original paths (`None`) or beneath a directory.
    Files(Option<String>),
    /// An SQLite database, to this file.
    Sqlite(String),
    /// Sections of a dump into a server's databases.
    Server(DbConnection, Vec<RestoreStep>),
}

fn target_invalid(why: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::RestoreTargetInvalid, why)
}

/// Refuses the fields of a restore request that do not apply to a backup of this type.
fn refuse_unused(body: &RestoreRequest, kind: TaskType) -> Result<(), ApiError> {
    let server = matches!(kind, TaskType::Mysql | TaskType::Postgresql);
    let unused = [
        ("databases", !body.databases.is_empty() && !server),
        ("targetDatabase", body.target_database.is_some() && !server),
        (
            "restoreGlobals",
            body.restore_globals && kind != TaskType::Postgresql,
        ),
        ("connection", body.connection.is_some() && !server),
        (
            "selectedPaths",
            !body.selected_paths.is_empty() && kind != TaskType::File,
        ),
        (
            "targetPath",
            body.target_path
                .as_deref()
                .is_some_and(|p| !p.trim().is_empty())
                && server,
        ),
    ];
    match unused.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(target_invalid(format!(
            "{field} does not apply to a {} backup",
            kind.as_str()
        ))),
        None => Ok(()),
    }
}

/// The server a database restore connects to: the request's fields where given, else the ones
/// the backup was taken with; the password from the request, else the task's stored one.
async fn restore_connection(
    db: &D1Database,
    sealer: &Sealer,
    record: &RecordRow,
    engine: DbEngine,
    backed_up: &DbSource,
    given: Option<&RestoreConnection>,
) -> Result<DbConnection, ApiError> {
    let given = given.cloned().unwrap_or_default();
    let pick = |v: &str, backup: &str| {
        if v.trim().is_empty() {
            backup.to_owned()
        } else {
            v.to_owned()
        }
    };
    let host = pick(&given.host, &backed_up.host);
    let port = given.port.unwrap_or(backed_up.port);
    let password = match given
        .password
        .filter(|p| !p.expose().is_empty() && p.expose() != MASK)
    {
        Some(p) => p,
        // The task that made the backup may be gone (its records kept): then no password.
        None => match record.task_id {
            Some(task_id) => match tasks::get(db, task_id).await? {
                Some(task) => {
                    // Its stored password goes only to the server it was entered for.
                    let spec: TaskSpec = serde_json::from_str(&task.spec)
                        .map_err(|e| ApiError::internal("stored task spec", e))?;
                    if !task.password_sealed.is_empty()
                        && spec.source.server() != Some((host.as_str(), port))
                    {
                        return Err(target_invalid(
                            "connection.password: the task's stored password is only sent to its own server; give the password of the server to restore into".to_owned(),
                        ));
                    }
                    crate::ops::tasks::open_password(sealer, &task)?
                }
                None => SecretString::new(""),
            },
            None => SecretString::new(""),
        },
    };
    check_connection(
        engine,
        &host,
        Some(port),
        &pick(&given.user, &backed_up.user),
        &password,
    )
    .map_err(|e| target_invalid(format!("connection.{e}")))
}

/// `POST /api/backup/records/:id/restore` `{targetPath?, nodeId?, storageTargetId?}`, and for
/// database backups `{databases?, targetDatabase?, restoreGlobals?, connection?}`.
pub async fn start(mut ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, config }, principal) = ctx.signed_in(Role::Operator).await?;
    let sealer = config.sealer()?;
    let record_id = ctx.id()?;
    let body: RestoreRequest =
        http::read_optional_json(&mut ctx.req, config.max_json_body, ErrorCode::InvalidInput)
            .await?;
    let StoredCopy {
        record,
        copy: chosen,
        target,
    } = stored_copy(
        &db,
        &sealer,
        record_id,
        body.storage_target_id,
        Purpose::Restore,
    )
    .await?;
    let source_invalid = |why: String| ApiError::new(ErrorCode::RestoreSourceInvalid, why);
    let kind = TaskType::parse(&record.kind)
        .ok_or_else(|| ApiError::internal("record type", "a record has an unknown type"))?;
    refuse_unused(&body, kind)?;
    let source: Option<SourceSpec> = serde_json::from_str(&record.source).ok();
    let plan = match (kind, &source) {
        (TaskType::File, _) => Plan::Files(destination(body.target_path.as_deref())?),
        (TaskType::Sqlite, Some(SourceSpec::Sqlite(lite))) => {
            match destination(body.target_path.as_deref())? {
                Some(path) if path == "/" => {
                    return Err(target_invalid("targetPath must name the database file"));
                }
                Some(path) => Plan::Sqlite(path),
                None => Plan::Sqlite(lite.path.clone()),
            }
        }
        (TaskType::Mysql | TaskType::Postgresql, Some(spec)) => {
            let Some((engine, backed_up)) = spec.database() else {
                return Err(ApiError::internal(
                    "record source",
                    "a dump record without a server",
                ));
            };
            let steps = plan_restore(
                engine,
                &sections(&record),
                &body.databases,
                body.target_database.as_deref(),
                body.restore_globals,
            )
            .map_err(target_invalid)?;
            let connection = restore_connection(
                &db,
                &sealer,
                &record,
                engine,
                backed_up,
                body.connection.as_ref(),
            )
            .await?;
            Plan::Server(connection, steps)
        }
        _ => {
            return Err(ApiError::internal(
                "record source",
                "a database record without its source",
            ));
        }
    };
    let snapshot = crate::ops::runs::snapshot_of(&db, &sealer, &chosen).await?;
    let selected_paths = check_selected_paths(&body.selected_paths).map_err(target_invalid)?;
    if snapshot.is_none() && !selected_paths.is_empty() {
        return Err(target_invalid(
            "selectedPaths needs a repository backup; an archive restores whole".to_owned(),
        ));
    }
    let node_id = body.node_id.unwrap_or(record.node_id);
    if target.kind() == StorageType::LocalDisk && node_id != record.node_id {
        return Err(source_invalid(format!(
            "the copy on {:?} is on node {}'s own disk; restore on that node, or pick a copy on shared storage",
            chosen.target_name, record.node_id
        )));
    }
    let needs = crate::ops::fleet::Needs::storage(target.kind());
    crate::ops::fleet::choose_online(&db, &config, ctx.now, Some(node_id), needs).await?;
    if let Plan::Server(conn, _) = &plan {
        crate::ops::fleet::require_tools(
            &db,
            node_id,
            crate::ops::fleet::Needs::Tools(conn.engine.client_tools()),
        )
        .await?;
    }
    let (target_path, restored): (String, Vec<RestoredDatabase>) = match &plan {
        Plan::Files(dest) => (dest.clone().unwrap_or_default(), Vec::new()),
        Plan::Sqlite(path) => (path.clone(), Vec::new()),
        Plan::Server(_, steps) => (
            String::new(),
            steps
                .iter()
                .map(|s| RestoredDatabase {
                    from: s.section.database.clone(),
                    into: s.into.clone(),
                })
                .collect(),
        ),
    };
    let now = time::format(ctx.now);
    let triggered_by = principal.user.username.clone();
    let restore_id = restores::start(
        &db,
        &NewRestore {
            backup_record_id: record_id,
            task_id: record.task_id,
            task_name: &record.task_name,
            node_id,
            target_id: chosen.target_id,
            target_path: &target_path,
            target_databases: &serde_json::to_string(&restored)
                .map_err(|e| ApiError::internal("encode restore", e))?,
            triggered_by: &triggered_by,
        },
        &now,
    )
    .await?;
    let compression = stowage_shared::artifact::compression_of(&chosen.path);
    let source = StoredObject {
        target_id: chosen.target_id,
        storage_type: target.kind(),
        config: target.to_json(),
        path: chosen.path.clone(),
        snapshot,
    };
    let (sha256, bytes) = (record.checksum.clone(), count(record.bytes));
    let command = match plan {
        Plan::Files(destination) => CommandSpec::Restore {
            restore_id,
            source,
            sha256,
            bytes,
            compression,
            destination,
            selected_paths,
        },
        Plan::Sqlite(path) => CommandSpec::RestoreDatabase {
            restore_id,
            source,
            sha256,
            bytes,
            compression,
            target: DbRestoreTarget::Sqlite { path },
        },
        Plan::Server(connection, steps) => CommandSpec::RestoreDatabase {
            restore_id,
            source,
            sha256,
            bytes,
            compression,
            target: DbRestoreTarget::Server { connection, steps },
        },
    };
    let command_id =
        crate::ops::commands::enqueue(&db, &config.links, &sealer, node_id, &command, ctx.now)
            .await?;
    restores::attach(&db, restore_id, command_id).await?;
    ctx.audit_success(
        &db,
        &principal,
        "backup_record.restore",
        ("backup_record", record_id),
    )
    .await?;
    http::created(&answer(&db, restore_id).await?)
}

/// `GET /api/restore/records?backupRecordId=`: newest first.
pub async fn list(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    let record = match ctx.query("backupRecordId")? {
        Some(raw) => raw.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "backupRecordId must be a record's numeric id",
            )
        })?,
        None => 0,
    };
    let rows = restores::list(&db, record, 200).await?;
    http::ok(&rows.into_iter().map(output).collect::<Vec<_>>())
}

pub async fn get(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (AppState { db, .. }, _) = ctx.signed_in(Role::Viewer).await?;
    http::ok(&answer(&db, ctx.id()?).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_absolute_without_dot_steps() {
        assert_eq!(destination(None).ok(), Some(None));
        assert_eq!(destination(Some("  ")).ok(), Some(None));
        assert_eq!(
            destination(Some("/srv/restore/")).ok(),
            Some(Some("/srv/restore".to_owned()))
        );
        assert_eq!(destination(Some("/")).ok(), Some(Some("/".to_owned())));
        for bad in ["relative/dir", "/srv/../etc", "/srv/./x", "/a\0b"] {
            assert!(destination(Some(bad)).is_err(), "{bad:?} is refused");
        }
    }
}
