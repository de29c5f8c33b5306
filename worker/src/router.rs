//! Every route in one table. A path that exists with another method answers 405 with `Allow`; a
//! path that does not exist answers 404 `NOT_FOUND`. Both in the envelope, never as HTML.

use crate::api::{self, Caller, Ctx};
use crate::error::ApiError;
use crate::store::audit::{self, Entry, Outcome};
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
    Notifications,
    NotificationCreate,
    NotificationTestPending,
    Notification,
    NotificationUpdate,
    NotificationDelete,
    NotificationTest,
    NotificationDeliveries,
    DashboardStats,
    DashboardTimeline,
    AuditLogs,
    SystemInfo,
    SystemUpdateCheck,
    Settings,
    SettingsUpdate,
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
    (Method::Get,    routes::NOTIFICATIONS,               Route::Notifications),
    (Method::Post,   routes::NOTIFICATIONS,               Route::NotificationCreate),
    (Method::Post,   routes::NOTIFICATIONS_TEST,          Route::NotificationTestPending),
    (Method::Get,    "/api/notifications/:id",            Route::Notification),
    (Method::Put,    "/api/notifications/:id",            Route::NotificationUpdate),
    (Method::Delete, "/api/notifications/:id",            Route::NotificationDelete),
    (Method::Post,   "/api/notifications/:id/test",       Route::NotificationTest),
    (Method::Get,    "/api/notifications/:id/deliveries", Route::NotificationDeliveries),
    (Method::Get,    routes::DASHBOARD_STATS,             Route::DashboardStats),
    (Method::Get,    routes::DASHBOARD_TIMELINE,          Route::DashboardTimeline),
    (Method::Get,    routes::AUDIT_LOGS,                  Route::AuditLogs),
    (Method::Get,    routes::SYSTEM_INFO,                 Route::SystemInfo),
    (Method::Get,    routes::SYSTEM_UPDATE_CHECK,         Route::SystemUpdateCheck),
    (Method::Get,    routes::SETTINGS,                    Route::Settings),
    (Method::Put,    routes::SETTINGS,                    Route::SettingsUpdate),
];

/// How a route's calls reach the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audit {
    /// Reads, agent traffic and sign-in plumbing that changes nothing a user owns.
    None,
    /// The handler records successes and failures itself (sign-in, setup, password).
    Handler,
    /// The handler records its success (with the new resource's id); the router records a
    /// refused call as a failure with this action.
    Refusals(&'static str),
    /// The router records both outcomes with this action.
    Router(&'static str),
}

fn audit_of(route: Route) -> Audit {
    use Audit::{Handler, Refusals, Router};
    match route {
        Route::Setup | Route::Login | Route::Password => Handler,
        Route::Logout => Refusals("auth.logout"),
        Route::NodeCreate => Refusals("node.create"),
        Route::NodeUpdate => Refusals("node.update"),
        Route::NodeDelete => Refusals("node.delete"),
        Route::NodeRotateToken => Refusals("node.rotate_token"),
        Route::StorageTargetCreate => Refusals("storage_target.create"),
        Route::StorageTargetUpdate => Refusals("storage_target.update"),
        Route::StorageTargetDelete => Refusals("storage_target.delete"),
        Route::StorageTargetStar => Refusals("storage_target.star"),
        Route::StorageTargetTest => Router("storage_target.test"),
        Route::GoogleDriveComplete => Router("storage_target.google_drive_connect"),
        Route::BackupTaskCreate => Refusals("backup_task.create"),
        Route::BackupTaskUpdate => Refusals("backup_task.update"),
        Route::BackupTaskDelete => Refusals("backup_task.delete"),
        Route::BackupTaskToggle => Refusals("backup_task.toggle"),
        Route::BackupTaskRun => Refusals("backup_task.run"),
        Route::BackupRecordDelete | Route::BackupRecordsBatchDelete => {
            Refusals("backup_record.delete")
        }
        Route::BackupRecordRestore => Refusals("backup_record.restore"),
        Route::BackupRecordDownload => Refusals("backup_record.download"),
        Route::NotificationCreate => Refusals("notification.create"),
        Route::NotificationUpdate => Refusals("notification.update"),
        Route::NotificationDelete => Refusals("notification.delete"),
        Route::NotificationTestPending | Route::NotificationTest => Refusals("notification.test"),
        Route::SettingsUpdate => Refusals("settings.update"),
        _ => Audit::None,
    }
}

pub async fn handle(mut ctx: Ctx<'_>) -> Response {
    let path = ctx.req.path();
    let method = ctx.req.method();
    let (route, id) = match resolve(&method, &path) {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    ctx.id = id.clone();
    let audit = audit_of(route);
    let (env, now, actor) = (ctx.env, ctx.now, ctx.actor);
    let caller = Caller::of(&ctx);
    let result = dispatch(route, ctx).await;
    let action = match (audit, &result) {
        (Audit::Refusals(action), Err(_)) | (Audit::Router(action), _) => Some(action),
        _ => None,
    };
    // Only a signed-in caller's call is recorded here: anonymous requests to these routes are
    // refused before anything happens, and recording them would let anyone fill the log.
    let signed_in = actor.borrow().clone();
    if let (Some(action), Some((user_id, username))) = (action, signed_in) {
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Success, String::new()),
            Err(err) => (Outcome::Failure, err.code().as_str().to_owned()),
        };
        let now_text = stowage_shared::time::format(now);
        let entry = Entry {
            now: &now_text,
            actor_user_id: Some(user_id),
            actor: &username,
            action,
            resource_type: action.split('.').next().unwrap_or(action),
            resource_id: id,
            outcome,
            detail: &detail,
            client_ip: &caller.ip,
            user_agent: &caller.user_agent,
        };
        let recorded = match crate::config::AppState::from_env(env) {
            Ok(state) => audit::record(&state.db, &entry)
                .await
                .map_err(ApiError::from),
            Err(err) => Err(err),
        };
        if let Err(err) = recorded {
            // The call itself is answered as it went; a lost audit row is reported loudly.
            worker::console_error!("audit of {action} failed: {err}");
        }
    }
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
        Route::AgentRelayChunk => api::agent::chunk(ctx).await,
        Route::DatabaseDiscover => api::databases::discover(ctx).await,
        Route::Notifications => api::notifications::list(ctx).await,
        Route::NotificationCreate => api::notifications::create(ctx).await,
        Route::NotificationTestPending => api::notifications::test_pending(ctx).await,
        Route::Notification => api::notifications::get(ctx).await,
        Route::NotificationUpdate => api::notifications::update(ctx).await,
        Route::NotificationDelete => api::notifications::delete(ctx).await,
        Route::NotificationTest => api::notifications::test_saved(ctx).await,
        Route::NotificationDeliveries => api::notifications::deliveries(ctx).await,
        Route::DashboardStats => api::dashboard::stats(ctx).await,
        Route::DashboardTimeline => api::dashboard::timeline(ctx).await,
        Route::AuditLogs => api::audit_logs::list(ctx).await,
        Route::SystemInfo => api::system::info(ctx).await,
        Route::SystemUpdateCheck => api::system::update_check(ctx).await,
        Route::Settings => api::settings::get(ctx).await,
        Route::SettingsUpdate => api::settings::update(ctx).await,
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
    fn every_changing_route_reaches_the_audit_log() {
        for (m, p, route) in ROUTES {
            let changes = *m != Method::Get && !p.starts_with("/api/agent/");
            let plumbing = matches!(
                route,
                Route::StreamTicket
                    | Route::GoogleDriveAuthUrl
                    | Route::DatabaseDiscover
                    | Route::StorageTargetTestPending
            );
            if changes && !plumbing {
                assert_ne!(audit_of(*route), Audit::None, "{m} {p} is not audited");
            }
        }
        // Downloads take data away: a GET, audited all the same.
        assert_ne!(audit_of(Route::BackupRecordDownload), Audit::None);
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
