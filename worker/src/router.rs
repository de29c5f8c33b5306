//! Every route in one table. A path that exists with another method answers 405 with `Allow`; a
//! path that does not exist answers 404 `NOT_FOUND`. Both in the envelope, never as HTML.

use crate::api::{self, Caller, Ctx};
use crate::error::ApiError;
use crate::store::audit::{self, Entry, Outcome};
use crate::store::logs::Kind;
use stowage_shared::ErrorCode;
use stowage_shared::api::routes;
use worker::{Method, Response};

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

/// Declares every route once: its name, method, path, how its calls reach the audit log, and its
/// handler. From that one list come the `Route` enum, the table `resolve` matches, `audit_of` and
/// `dispatch`, so a route cannot be matched without a handler or an audit mode. (Who may call a
/// route is the handler's first line, `ctx.signed_in(Role::…)` or `agent(&ctx)`, because the
/// role decides what the handler can see too.)
macro_rules! routes {
    ($($route:ident: $method:ident $path:expr, $audit:expr => $handler:expr;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Route {
            $($route,)+
        }

        const ROUTES: &[(Method, &str, Route)] = &[$((Method::$method, $path, Route::$route),)+];

        fn audit_of(route: Route) -> Audit {
            #[allow(unused_imports)]
            use Audit::{Handler, None, Refusals, Router};
            match route {
                $(Route::$route => $audit,)+
            }
        }

        async fn dispatch(route: Route, ctx: Ctx<'_>) -> Result<Response, ApiError> {
            match route {
                $(Route::$route => ($handler)(ctx).await,)+
            }
        }
    };
}

routes! {
    Health: Get routes::HEALTH, None => api::health::get;
    Ready: Get routes::HEALTH_READY, None => api::health::ready;
    SetupStatus: Get routes::AUTH_SETUP_STATUS, None => api::auth::setup_status;
    Setup: Post routes::AUTH_SETUP, Handler => api::auth::setup;
    Login: Post routes::AUTH_LOGIN, Handler => api::auth::login;
    Logout: Post routes::AUTH_LOGOUT, Refusals("auth.logout") => api::auth::logout;
    Profile: Get routes::AUTH_PROFILE, None => api::auth::profile;
    Password: Put routes::AUTH_PASSWORD, Handler => api::auth::change_password;
    Nodes: Get routes::NODES, None => api::nodes::list;
    NodeCreate: Post routes::NODES, Refusals("node.create") => api::nodes::create;
    Node: Get routes::NODE, None => api::nodes::get;
    NodeUpdate: Put routes::NODE, Refusals("node.update") => api::nodes::update;
    NodeDelete: Delete routes::NODE, Refusals("node.delete") => api::nodes::delete;
    NodeFsList: Get routes::NODE_FS_LIST, None => api::nodes::fs_list;
    NodeRotateToken: Post routes::NODE_ROTATE_TOKEN, Refusals("node.rotate_token") => api::nodes::rotate_token;
    AgentHeartbeat: Post routes::AGENT_HEARTBEAT, None => api::agent::heartbeat;
    AgentLink: Get routes::AGENT_LINK, None => api::agent::link;
    AgentPoll: Post routes::AGENT_POLL, None => api::agent::poll;
    AgentResult: Post routes::AGENT_COMMAND_RESULT, None => api::agent::result;
    StorageTargets: Get routes::STORAGE_TARGETS, None => api::storage_targets::list;
    RcloneBackends: Get routes::RCLONE_BACKENDS, None => api::rclone::backends;
    GoogleDriveAuthUrl: Post routes::GOOGLE_DRIVE_AUTH_URL, None => api::google_drive::auth_url;
    GoogleDriveComplete: Post routes::GOOGLE_DRIVE_COMPLETE, Router("storage_target.google_drive_connect") => api::google_drive::complete;
    BackupTasks: Get routes::BACKUP_TASKS, None => api::tasks::list;
    BackupTaskCreate: Post routes::BACKUP_TASKS, Refusals("backup_task.create") => api::tasks::create;
    BackupTask: Get routes::BACKUP_TASK, None => api::tasks::get;
    BackupTaskUpdate: Put routes::BACKUP_TASK, Refusals("backup_task.update") => api::tasks::update;
    BackupTaskDelete: Delete routes::BACKUP_TASK, Refusals("backup_task.delete") => api::tasks::delete;
    BackupTaskToggle: Put routes::BACKUP_TASK_TOGGLE, Refusals("backup_task.toggle") => api::tasks::toggle;
    BackupTaskRun: Post routes::BACKUP_TASK_RUN, Refusals("backup_task.run") => api::records::run_now;
    BackupRecords: Get routes::BACKUP_RECORDS, None => api::records::list;
    BackupRecord: Get routes::BACKUP_RECORD, None => api::records::get;
    BackupRecordDelete: Delete routes::BACKUP_RECORD, Refusals("backup_record.delete") => api::records::delete;
    BackupRecordsBatchDelete: Post routes::BACKUP_RECORDS_BATCH_DELETE, Refusals("backup_record.delete") => api::records::batch_delete;
    BackupRecordLogs: Get routes::BACKUP_RECORD_LOGS, None => |ctx| api::logs::stream(ctx, Kind::Backup);
    BackupRecordRestore: Post routes::BACKUP_RECORD_RESTORE, Refusals("backup_record.restore") => api::restores::start;
    BackupRecordVerify: Post routes::BACKUP_RECORD_VERIFY, Refusals("backup_record.verify") => api::verifies::record;
    BackupRecordFiles: Get routes::BACKUP_RECORD_FILES, None => api::verifies::files;
    VerifyRecords: Get routes::VERIFY_RECORDS, None => api::verifies::list;
    VerifyRecord: Get routes::VERIFY_RECORD, None => api::verifies::get;
    VerifyRecordLogs: Get routes::VERIFY_RECORD_LOGS, None => |ctx| api::logs::stream(ctx, Kind::Verify);
    RestoreRecords: Get routes::RESTORE_RECORDS, None => api::restores::list;
    RestoreRecord: Get routes::RESTORE_RECORD, None => api::restores::get;
    RestoreRecordLogs: Get routes::RESTORE_RECORD_LOGS, None => |ctx| api::logs::stream(ctx, Kind::Restore);
    AgentRecordLog: Post routes::AGENT_RECORD_LOG, None => |ctx| api::agent::log_batch(ctx, Kind::Backup);
    AgentRestoreLog: Post routes::AGENT_RESTORE_LOG, None => |ctx| api::agent::log_batch(ctx, Kind::Restore);
    AgentVerifyLog: Post routes::AGENT_VERIFY_LOG, None => |ctx| api::agent::log_batch(ctx, Kind::Verify);
    StreamTicket: Post routes::AUTH_STREAM_TICKET, None => api::logs::ticket;
    BackupRecordDownload: Get routes::BACKUP_RECORD_DOWNLOAD, Refusals("backup_record.download") => api::download::download;
    AgentRelayChunk: Post routes::AGENT_RELAY_CHUNK, None => api::agent::chunk;
    DatabaseDiscover: Post routes::DATABASE_DISCOVER, None => api::databases::discover;
    StorageTargetCreate: Post routes::STORAGE_TARGETS, Refusals("storage_target.create") => api::storage_targets::create;
    StorageTarget: Get routes::STORAGE_TARGET, None => api::storage_targets::get;
    StorageTargetUpdate: Put routes::STORAGE_TARGET, Refusals("storage_target.update") => api::storage_targets::update;
    StorageTargetDelete: Delete routes::STORAGE_TARGET, Refusals("storage_target.delete") => api::storage_targets::delete;
    StorageTargetStar: Put routes::STORAGE_TARGET_STAR, Refusals("storage_target.star") => api::storage_targets::star;
    StorageTargetTestPending: Post routes::STORAGE_TARGETS_TEST, None => api::storage_targets::test_pending;
    StorageTargetTest: Post routes::STORAGE_TARGET_TEST, Router("storage_target.test") => api::storage_targets::test_saved;
    StorageTargetUsage: Get routes::STORAGE_TARGET_USAGE, None => api::storage_targets::usage;
    StorageTargetRecoveryKit: Post routes::STORAGE_TARGET_RECOVERY_KIT, Refusals("storage_target.recovery_kit") => api::storage_targets::recovery_kit;
    StorageTargetPrune: Post routes::STORAGE_TARGET_PRUNE, Refusals("storage_target.prune") => api::storage_targets::prune;
    StorageTargetVerify: Post routes::STORAGE_TARGET_VERIFY, Refusals("storage_target.verify") => api::verifies::target;
    Notifications: Get routes::NOTIFICATIONS, None => api::notifications::list;
    NotificationCreate: Post routes::NOTIFICATIONS, Refusals("notification.create") => api::notifications::create;
    NotificationTestPending: Post routes::NOTIFICATIONS_TEST, Refusals("notification.test") => api::notifications::test_pending;
    Notification: Get routes::NOTIFICATION, None => api::notifications::get;
    NotificationUpdate: Put routes::NOTIFICATION, Refusals("notification.update") => api::notifications::update;
    NotificationDelete: Delete routes::NOTIFICATION, Refusals("notification.delete") => api::notifications::delete;
    NotificationTest: Post routes::NOTIFICATION_TEST, Refusals("notification.test") => api::notifications::test_saved;
    NotificationDeliveries: Get routes::NOTIFICATION_DELIVERIES, None => api::notifications::deliveries;
    DashboardStats: Get routes::DASHBOARD_STATS, None => api::dashboard::stats;
    DashboardTimeline: Get routes::DASHBOARD_TIMELINE, None => api::dashboard::timeline;
    AuditLogs: Get routes::AUDIT_LOGS, None => api::audit_logs::list;
    SystemInfo: Get routes::SYSTEM_INFO, None => api::system::info;
    SystemUpdateCheck: Get routes::SYSTEM_UPDATE_CHECK, None => api::system::update_check;
    Settings: Get routes::SETTINGS, None => api::settings::get;
    SettingsUpdate: Put routes::SETTINGS, Refusals("settings.update") => api::settings::update;
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
