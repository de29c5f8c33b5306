//! Every route in one table. A path that exists with another method answers 405 with `Allow`; a
//! path that does not exist answers 404 `NOT_FOUND`. Both in the envelope, never as HTML.

use crate::api::{self, Ctx};
use crate::error::ApiError;
use crate::store::logs::Kind;
use stowage_shared::ErrorCode;
use stowage_shared::api::routes;
use worker::{Method, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Health,
    Ready,
    SetupStatus,
    Setup,
    Login,
    Logout,
    Profile,
    Password,
    Nodes,
    NodeCreate,
    Node,
    NodeUpdate,
    NodeDelete,
    NodeFsList,
    NodeRotateToken,
    AgentHeartbeat,
    AgentPoll,
    AgentResult,
    StorageTargets,
    StorageTargetCreate,
    StorageTarget,
    StorageTargetUpdate,
    StorageTargetDelete,
    StorageTargetStar,
    StorageTargetTestPending,
    StorageTargetTest,
    StorageTargetUsage,
    RcloneBackends,
    GoogleDriveAuthUrl,
    GoogleDriveComplete,
    BackupTasks,
    BackupTaskCreate,
    BackupTask,
    BackupTaskUpdate,
    BackupTaskDelete,
    BackupTaskToggle,
    BackupTaskRun,
    BackupRecords,
    BackupRecord,
    BackupRecordDelete,
    BackupRecordsBatchDelete,
    BackupRecordLogs,
    BackupRecordRestore,
    RestoreRecords,
    RestoreRecord,
    RestoreRecordLogs,
    AgentRecordLog,
    AgentRestoreLog,
    StreamTicket,
    BackupRecordDownload,
    AgentRelayChunk,
    DatabaseDiscover,
}

// One line per route reads best as a table; rustfmt would break the long ones apart.
#[rustfmt::skip]
const ROUTES: &[(Method, &str, Route)] = &[
    (Method::Get,    routes::HEALTH,                      Route::Health),
    (Method::Get,    routes::HEALTH_READY,                Route::Ready),
    (Method::Get,    routes::AUTH_SETUP_STATUS,           Route::SetupStatus),
    (Method::Post,   routes::AUTH_SETUP,                  Route::Setup),
    (Method::Post,   routes::AUTH_LOGIN,                  Route::Login),
    (Method::Post,   routes::AUTH_LOGOUT,                 Route::Logout),
    (Method::Get,    routes::AUTH_PROFILE,                Route::Profile),
    (Method::Put,    routes::AUTH_PASSWORD,               Route::Password),
    (Method::Get,    routes::NODES,                       Route::Nodes),
    (Method::Post,   routes::NODES,                       Route::NodeCreate),
    (Method::Get,    "/api/nodes/:id",                    Route::Node),
    (Method::Put,    "/api/nodes/:id",                    Route::NodeUpdate),
    (Method::Delete, "/api/nodes/:id",                    Route::NodeDelete),
    (Method::Get,    "/api/nodes/:id/fs/list",            Route::NodeFsList),
    (Method::Post,   "/api/nodes/:id/rotate-token",       Route::NodeRotateToken),
    (Method::Post,   routes::AGENT_HEARTBEAT,             Route::AgentHeartbeat),
    (Method::Post,   routes::AGENT_POLL,                  Route::AgentPoll),
    (Method::Post,   "/api/agent/commands/:id/result",    Route::AgentResult),
    (Method::Get,    routes::STORAGE_TARGETS,             Route::StorageTargets),
    (Method::Get,    routes::RCLONE_BACKENDS,             Route::RcloneBackends),
    (Method::Post,   routes::GOOGLE_DRIVE_AUTH_URL,       Route::GoogleDriveAuthUrl),
    (Method::Post,   routes::GOOGLE_DRIVE_COMPLETE,       Route::GoogleDriveComplete),
    (Method::Get,    routes::BACKUP_TASKS,                Route::BackupTasks),
    (Method::Post,   routes::BACKUP_TASKS,                Route::BackupTaskCreate),
    (Method::Get,    "/api/backup/tasks/:id",             Route::BackupTask),
    (Method::Put,    "/api/backup/tasks/:id",             Route::BackupTaskUpdate),
    (Method::Delete, "/api/backup/tasks/:id",             Route::BackupTaskDelete),
    (Method::Put,    "/api/backup/tasks/:id/toggle",      Route::BackupTaskToggle),
    (Method::Post,   "/api/backup/tasks/:id/run",         Route::BackupTaskRun),
    (Method::Get,    routes::BACKUP_RECORDS,              Route::BackupRecords),
    (Method::Get,    "/api/backup/records/:id",           Route::BackupRecord),
    (Method::Delete, "/api/backup/records/:id",           Route::BackupRecordDelete),
    (Method::Post,   routes::BACKUP_RECORDS_BATCH_DELETE, Route::BackupRecordsBatchDelete),
    (Method::Get,    "/api/backup/records/:id/logs/stream", Route::BackupRecordLogs),
    (Method::Post,   "/api/backup/records/:id/restore",   Route::BackupRecordRestore),
    (Method::Get,    routes::RESTORE_RECORDS,             Route::RestoreRecords),
    (Method::Get,    "/api/restore/records/:id",          Route::RestoreRecord),
    (Method::Get,    "/api/restore/records/:id/logs/stream", Route::RestoreRecordLogs),
    (Method::Post,   "/api/agent/records/:id",            Route::AgentRecordLog),
    (Method::Post,   "/api/agent/restores/:id",           Route::AgentRestoreLog),
    (Method::Post,   routes::AUTH_STREAM_TICKET,          Route::StreamTicket),
    (Method::Get,    "/api/backup/records/:id/download",  Route::BackupRecordDownload),
    (Method::Post,   "/api/agent/relays/:id",             Route::AgentRelayChunk),
    (Method::Post,   routes::DATABASE_DISCOVER,           Route::DatabaseDiscover),
    (Method::Post,   routes::STORAGE_TARGETS,             Route::StorageTargetCreate),
    (Method::Get,    "/api/storage-targets/:id",          Route::StorageTarget),
    (Method::Put,    "/api/storage-targets/:id",          Route::StorageTargetUpdate),
    (Method::Delete, "/api/storage-targets/:id",          Route::StorageTargetDelete),
    (Method::Put,    "/api/storage-targets/:id/star",     Route::StorageTargetStar),
    (Method::Post,   routes::STORAGE_TARGETS_TEST,        Route::StorageTargetTestPending),
    (Method::Post,   "/api/storage-targets/:id/test",     Route::StorageTargetTest),
    (Method::Get,    "/api/storage-targets/:id/usage",    Route::StorageTargetUsage),
];

pub async fn handle(mut ctx: Ctx<'_>) -> Response {
    let path = ctx.req.path();
    let method = ctx.req.method();
    let result = match resolve(&method, &path) {
        Ok((route, id)) => {
            ctx.id = id;
            dispatch(route, ctx).await
        }
        Err(err) => Err(err),
    };
    result.unwrap_or_else(ApiError::into_response)
}

async fn dispatch(route: Route, ctx: Ctx<'_>) -> Result<Response, ApiError> {
    match route {
        Route::Health => api::health::get(ctx).await,
        Route::Ready => api::health::ready(ctx).await,
        Route::SetupStatus => api::auth::setup_status(ctx).await,
        Route::Setup => api::auth::setup(ctx).await,
        Route::Login => api::auth::login(ctx).await,
        Route::Logout => api::auth::logout(ctx).await,
        Route::Profile => api::auth::profile(ctx).await,
        Route::Password => api::auth::change_password(ctx).await,
        Route::Nodes => api::nodes::list(ctx).await,
        Route::NodeCreate => api::nodes::create(ctx).await,
        Route::Node => api::nodes::get(ctx).await,
        Route::NodeUpdate => api::nodes::update(ctx).await,
        Route::NodeDelete => api::nodes::delete(ctx).await,
        Route::NodeFsList => api::nodes::fs_list(ctx).await,
        Route::NodeRotateToken => api::nodes::rotate_token(ctx).await,
        Route::AgentHeartbeat => api::agent::heartbeat(ctx).await,
        Route::AgentPoll => api::agent::poll(ctx).await,
        Route::AgentResult => api::agent::result(ctx).await,
        Route::StorageTargets => api::storage_targets::list(ctx).await,
        Route::StorageTargetCreate => api::storage_targets::create(ctx).await,
        Route::StorageTarget => api::storage_targets::get(ctx).await,
        Route::StorageTargetUpdate => api::storage_targets::update(ctx).await,
        Route::StorageTargetDelete => api::storage_targets::delete(ctx).await,
        Route::StorageTargetStar => api::storage_targets::star(ctx).await,
        Route::StorageTargetTestPending => api::storage_targets::test_pending(ctx).await,
        Route::StorageTargetTest => api::storage_targets::test_saved(ctx).await,
        Route::StorageTargetUsage => api::storage_targets::usage(ctx).await,
        Route::RcloneBackends => api::rclone::backends(ctx).await,
        Route::GoogleDriveAuthUrl => api::google_drive::auth_url(ctx).await,
        Route::GoogleDriveComplete => api::google_drive::complete(ctx).await,
        Route::BackupTasks => api::tasks::list(ctx).await,
        Route::BackupTaskCreate => api::tasks::create(ctx).await,
        Route::BackupTask => api::tasks::get(ctx).await,
        Route::BackupTaskUpdate => api::tasks::update(ctx).await,
        Route::BackupTaskDelete => api::tasks::delete(ctx).await,
        Route::BackupTaskToggle => api::tasks::toggle(ctx).await,
        Route::BackupTaskRun => api::records::run_now(ctx).await,
        Route::BackupRecords => api::records::list(ctx).await,
        Route::BackupRecord => api::records::get(ctx).await,
        Route::BackupRecordDelete => api::records::delete(ctx).await,
        Route::BackupRecordsBatchDelete => api::records::batch_delete(ctx).await,
        Route::BackupRecordLogs => api::logs::stream(ctx, Kind::Backup).await,
        Route::BackupRecordRestore => api::restores::start(ctx).await,
        Route::RestoreRecords => api::restores::list(ctx).await,
        Route::RestoreRecord => api::restores::get(ctx).await,
        Route::RestoreRecordLogs => api::logs::stream(ctx, Kind::Restore).await,
        Route::AgentRecordLog => api::agent::log_batch(ctx, Kind::Backup).await,
        Route::AgentRestoreLog => api::agent::log_batch(ctx, Kind::Restore).await,
        Route::StreamTicket => api::logs::ticket(ctx).await,
        Route::BackupRecordDownload => api::download::download(ctx).await,
        Route::AgentRelayChunk => api::download::chunk(ctx).await,
        Route::DatabaseDiscover => api::databases::discover(ctx).await,
    }
}

/// Matches a path against a pattern whose `:id` segment matches any one segment, and returns that
/// segment (ids are parsed by the handler, so `/api/nodes/abc` is a `400 INVALID_ID`, not a 404).
fn match_pattern<'p>(pattern: &str, path: &'p str) -> Option<Option<&'p str>> {
    let mut id = None;
    let mut pattern_segments = pattern.split('/');
    let mut path_segments = path.split('/');
    loop {
        match (pattern_segments.next(), path_segments.next()) {
            (None, None) => return Some(id),
            (Some(":id"), Some(segment)) if !segment.is_empty() => id = Some(segment),
            (Some(p), Some(segment)) if p == segment => {}
            _ => return None,
        }
    }
}

fn resolve(method: &Method, path: &str) -> Result<(Route, Option<String>), ApiError> {
    // `/api/health/` and `/api/health` are the same resource.
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    let mut allowed = Vec::new();
    for (m, pattern, route) in ROUTES {
        if let Some(id) = match_pattern(pattern, path) {
            if m == method {
                return Ok((*route, id.map(str::to_owned)));
            }
            allowed.push(m.to_string());
        }
    }
    if allowed.is_empty() {
        Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no API route at {path}"),
        ))
    } else {
        Err(ApiError::MethodNotAllowed {
            allow: allowed.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_routes_and_trailing_slashes() {
        let route = |m: Method, p: &str| resolve(&m, p).ok();
        let cases = [
            (Method::Get, "/api/health", Some((Route::Health, None))),
            (Method::Get, "/api/health/", Some((Route::Health, None))),
            (
                Method::Put,
                "/api/auth/password",
                Some((Route::Password, None)),
            ),
            (
                Method::Get,
                "/api/nodes/12",
                Some((Route::Node, Some("12"))),
            ),
            (
                Method::Get,
                "/api/nodes/x/fs/list",
                Some((Route::NodeFsList, Some("x"))),
            ),
            (
                Method::Post,
                "/api/agent/commands/poll",
                Some((Route::AgentPoll, None)),
            ),
            (
                Method::Post,
                "/api/agent/commands/5/result",
                Some((Route::AgentResult, Some("5"))),
            ),
            (Method::Get, "/api/nodes//fs/list", None),
        ];
        for (method, path, want) in cases {
            let want = want.map(|(r, id)| (r, id.map(str::to_owned)));
            assert_eq!(route(method, path), want, "{path}");
        }
    }

    #[test]
    fn unknown_path_is_not_found_and_wrong_method_lists_allowed() {
        let err = resolve(&Method::Get, "/api/nope").expect_err("404");
        assert_eq!(err.code(), ErrorCode::NotFound);
        let err = resolve(&Method::Delete, "/api/auth/login").expect_err("405");
        assert_eq!(err.code(), ErrorCode::MethodNotAllowed);
        assert!(matches!(err, ApiError::MethodNotAllowed { ref allow } if allow == "POST"));
        let err = resolve(&Method::Post, "/api/nodes/3").expect_err("405");
        assert!(
            matches!(err, ApiError::MethodNotAllowed { ref allow } if allow == "GET, PUT, DELETE")
        );
    }

    #[test]
    fn every_route_is_listed_once() {
        for (i, (m, p, _)) in ROUTES.iter().enumerate() {
            assert!(p.starts_with("/api/"), "{p}");
            assert!(
                !ROUTES[i + 1..].iter().any(|(m2, p2, _)| m2 == m && p2 == p),
                "{m} {p} twice"
            );
        }
    }
}
