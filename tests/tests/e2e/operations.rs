//! The operator's view through the real Worker: dashboard figures equal what the test created, the
//! audit log holds a row for every change the test made (refusals included) and filters them,
//! settings round-trip and refuse unknown keys, retention is enforced by the tick, and system info
//! and the update check answer from a local releases feed.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use stowage_shared::api::{
    AuditLogEntry, BackupRecordOutput, BackupTaskOutput, DashboardStats, DashboardTimeline, Page,
    StorageTargetDetail, SystemInfo, UpdateCheck, routes,
};
use stowage_shared::settings::Settings;
use stowage_tests::{Fleet, Receivers, Server, ServerOptions};

/// Asserts that the calls the router refused for actions starting with `prefix` are in the audit
/// log, each with a real error code as its detail.
pub(crate) fn assert_refusals_audited(server: &Server, prefix: &str) -> Result<()> {
    let refused = server.query(&format!(
        "SELECT detail FROM audit_logs WHERE action LIKE '{prefix}%' AND result = 'failure'"
    ))?;
    assert!(!refused.is_empty(), "no refused {prefix} call was audited");
    for row in &refused {
        let code = row["detail"].as_str().unwrap_or_default();
        assert!(
            stowage_shared::ErrorCode::from_code(code).is_some(),
            "{row}"
        );
    }
    Ok(())
}

async fn audit(server: &Server, admin: &str, query: &str) -> Result<Page<AuditLogEntry>> {
    server
        .get(&format!("{}?{query}", routes::AUDIT_LOGS), Some(admin))
        .await?
        .expect_ok()
}

#[tokio::test]
async fn dashboard_figures_equal_what_was_created_and_the_audit_log_holds_every_change()
-> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent: _agent,
    } = Fleet::start("dash-node").await?;
    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("a.txt"), vec![b'a'; 50_000])?;
    let store = tempfile::tempdir()?;
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(&admin),
            &json!({"name": "disk", "type": "local_disk", "config": {"basePath": store.path()}}),
        )
        .await?
        .expect_ok()?;
    let t = target.summary.id;
    server
        .put(&routes::storage_target_star(t), Some(&admin), &json!({}))
        .await?
        .expect_ok::<Value>()?;
    let mut tasks = Vec::new();
    for (name, source) in [
        ("good", src.path().to_string_lossy().into_owned()),
        ("bad", "/nonexistent/stowage-dashboard-source".to_owned()),
        ("idle", src.path().to_string_lossy().into_owned()),
    ] {
        let task: BackupTaskOutput = server
            .post(
                routes::BACKUP_TASKS,
                Some(&admin),
                &json!({"name": name, "type": "file", "nodeId": node.node.id,
                        "sourcePaths": [source], "storageTargetIds": [t]}),
            )
            .await?
            .expect_ok()?;
        tasks.push(task.id);
    }
    server
        .put(
            &routes::backup_task_toggle(tasks[2]),
            Some(&admin),
            &json!({}),
        )
        .await?
        .expect_ok::<Value>()?;
    let mut done = Vec::new();
    for id in &tasks[..2] {
        let started: BackupRecordOutput = server
            .post(&routes::backup_task_run(*id), Some(&admin), &json!({}))
            .await?
            .expect_ok()?;
        done.push(server.settled(&admin, started.id, false).await?);
    }
    let (good, bad) = (&done[0], &done[1]);
    assert_eq!(
        (good.status.as_str(), bad.status.as_str()),
        ("success", "failed")
    );
    // A scheduled task that has not had a success for a whole interval is overdue.
    let overdue: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "hourly", "type": "file", "nodeId": node.node.id,
                    "sourcePaths": [src.path()], "storageTargetIds": [t], "cronExpr": "0 * * * *"}),
        )
        .await?
        .expect_ok()?;
    server.query(&format!(
        "UPDATE backup_tasks SET created_at = '2026-01-01T00:00:00.000Z' WHERE id = {}",
        overdue.id
    ))?;
    // A refused change is audited as a failure.
    server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "", "type": "file", "nodeId": node.node.id,
                    "sourcePaths": ["relative"], "storageTargetIds": [t]}),
        )
        .await?
        .expect_error(400, "BACKUP_TASK_INVALID")?;
    server
        .login("admin", "not the password")
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;

    let stats: DashboardStats = server
        .get(routes::DASHBOARD_STATS, Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!((stats.total_tasks, stats.enabled_tasks), (4, 3));
    assert_eq!(
        (
            stats.records.total,
            stats.records.success,
            stats.records.failed
        ),
        (2, 1, 1)
    );
    assert_eq!(stats.success_rate, Some(0.5));
    assert_eq!(stats.bytes_protected, good.bytes);
    assert_eq!(stats.storage_usage.len(), 1);
    assert_eq!(stats.storage_usage[0].storage_target_id, t);
    assert_eq!(
        (stats.storage_usage[0].objects, stats.storage_usage[0].bytes),
        (1, good.bytes)
    );
    assert_eq!((stats.nodes_online, stats.nodes_offline), (1, 0));
    assert_eq!(stats.last_backup_at, good.finished_at);
    let failing: Vec<&str> = stats
        .failing_tasks
        .iter()
        .map(|f| f.task_name.as_str())
        .collect();
    assert_eq!(failing, ["bad"]);
    let late: Vec<&str> = stats
        .overdue_tasks
        .iter()
        .map(|o| o.task_name.as_str())
        .collect();
    assert_eq!(late, ["hourly"]);
    assert!(stats.overdue_tasks[0].expected_by.is_some());

    let timeline: DashboardTimeline = server
        .get(
            &format!("{}?days=7", routes::DASHBOARD_TIMELINE),
            Some(&admin),
        )
        .await?
        .expect_ok()?;
    assert_eq!(timeline.days.len(), 7);
    let today = &timeline.days[6];
    assert_eq!(Some(today.date.as_str()), good.started_at.get(..10));
    assert_eq!((today.counts.success, today.counts.failed), (1, 1));
    assert_eq!(today.bytes, good.bytes);
    assert!(timeline.days[..6].iter().all(|d| d.counts.total == 0));
    let recent: Vec<i64> = timeline.recent_activity.iter().map(|a| a.id).collect();
    assert_eq!(recent, [bad.id, good.id]);
    for bad_days in ["abc", "0", "400", "-3", "1.5"] {
        server
            .get(
                &format!("{}?days={bad_days}", routes::DASHBOARD_TIMELINE),
                Some(&admin),
            )
            .await?
            .expect_error(400, "DASHBOARD_TIMELINE_INVALID")?;
    }

    // Every change the test made has its row, with who, from where and the outcome.
    let all = audit(&server, &admin, "pageSize=200").await?;
    let actions: BTreeSet<(&str, &str)> = all
        .items
        .iter()
        .map(|e| (e.action.as_str(), e.result.as_str()))
        .collect();
    for want in [
        ("auth.setup", "success"),
        ("auth.login", "failure"),
        ("node.create", "success"),
        ("storage_target.create", "success"),
        ("storage_target.star", "success"),
        ("backup_task.create", "success"),
        ("backup_task.create", "failure"),
        ("backup_task.disable", "success"),
        ("backup_task.run", "success"),
    ] {
        assert!(
            actions.contains(&want),
            "no audit row {want:?} in {actions:?}"
        );
    }
    let runs = all
        .items
        .iter()
        .filter(|e| e.action == "backup_task.run")
        .count();
    assert_eq!(runs, 2);
    let refused = all
        .items
        .iter()
        .find(|e| e.action == "backup_task.create" && e.result == "failure")
        .expect("found above");
    assert_eq!(refused.detail, "BACKUP_TASK_INVALID");
    assert_eq!(refused.actor, "admin");
    assert!(refused.user_agent.contains("reqwest") || !refused.user_agent.is_empty());
    assert!(!refused.client_ip.is_empty());

    // Filters and pages.
    let tasks_only = audit(&server, &admin, "action=backup_task").await?;
    assert!(
        tasks_only
            .items
            .iter()
            .all(|e| e.action.starts_with("backup_task."))
    );
    assert_eq!(tasks_only.total, tasks_only.items.len() as u64);
    let failures = audit(&server, &admin, "result=failure").await?;
    assert_eq!(failures.total, 2, "{:?}", failures.items);
    let one_task = audit(
        &server,
        &admin,
        &format!("resourceType=backup_task&resourceId={}", tasks[2]),
    )
    .await?;
    let verbs: Vec<&str> = one_task.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(verbs, ["backup_task.disable", "backup_task.create"]);
    let text = audit(&server, &admin, "q=INVALID_CREDENTIALS").await?;
    assert_eq!(text.total, 1);
    let page2 = audit(&server, &admin, "pageSize=3&page=2").await?;
    assert_eq!(page2.items.len(), 3);
    assert_eq!(page2.total, all.total);
    assert_eq!(page2.items[0].id, all.items[3].id);
    let future = audit(&server, &admin, "dateFrom=2999-01-01T00:00:00Z").await?;
    assert_eq!(future.total, 0);
    for bad in [
        "result=maybe",
        "dateFrom=yesterday",
        "pageSize=1000",
        "page=0",
    ] {
        server
            .get(&format!("{}?{bad}", routes::AUDIT_LOGS), Some(&admin))
            .await?
            .expect_error(400, "AUDIT_FILTER_INVALID")?;
    }
    Ok(())
}

#[tokio::test]
async fn settings_round_trip_refuse_unknown_keys_are_audited_and_drive_retention() -> Result<()> {
    let server = Server::start().await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let initial: Settings = server
        .get(routes::SETTINGS, Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(initial, Settings::default());
    let raw = server.get(routes::SETTINGS, Some(&admin)).await?.raw;
    for secret_word in ["jwt", "seal", "secret", "password"] {
        assert!(!raw.to_lowercase().contains(secret_word), "{raw}");
    }

    let changed: Settings = server
        .put(
            routes::SETTINGS,
            Some(&admin),
            &json!({"siteName": "Home Lab", "timeZone": "Europe/Berlin", "language": "zh-CN",
                    "siteUrl": "https://backups.example.com/", "logRetentionDays": 14}),
        )
        .await?
        .expect_ok()?;
    assert_eq!(changed.site_name, "Home Lab");
    assert_eq!(changed.site_url, "https://backups.example.com");
    assert_eq!(changed.log_retention_days, 14);
    let read: Settings = server
        .get(routes::SETTINGS, Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(read, changed);

    for (body, needle) in [
        (json!({"siteName": "x", "jwtSecret": "stolen"}), "jwtSecret"),
        (json!({"timeZone": "Mars/Olympus"}), "timeZone"),
        (json!({"auditRetentionDays": "many"}), "auditRetentionDays"),
        (json!({"defaultNotificationChannels": [4242]}), "4242"),
        (json!({"agentHeartbeatSecs": 60}), "heartbeat"),
        (json!(["siteName"]), "object"),
    ] {
        let reply = server.put(routes::SETTINGS, Some(&admin), &body).await?;
        reply.expect_error(400, "SETTINGS_INVALID")?;
        assert!(reply.raw.contains(needle), "{needle}: {}", reply.raw);
    }
    let after: Settings = server
        .get(routes::SETTINGS, Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(after, changed, "a refused change changes nothing");

    let rows = audit(&server, &admin, "action=settings.update").await?;
    let outcomes: Vec<(&str, &str)> = rows
        .items
        .iter()
        .map(|e| (e.result.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(outcomes.len(), 7, "{outcomes:?}");
    assert_eq!(
        outcomes.last().copied(),
        Some((
            "success",
            "siteName,siteUrl,timeZone,language,logRetentionDays"
        ))
    );
    assert!(
        outcomes[..6]
            .iter()
            .all(|(r, d)| *r == "failure" && *d == "SETTINGS_INVALID")
    );

    // Retention: rows older than the settings allow are gone after a tick; newer ones stay.
    server
        .put(
            routes::SETTINGS,
            Some(&admin),
            &json!({"auditRetentionDays": 1}),
        )
        .await?
        .expect_ok::<Value>()?;
    server.query(
        "INSERT INTO audit_logs (created_at, actor, action, resource_type, result, client_ip, user_agent)
         VALUES ('2020-01-01T00:00:00.000Z', 'ghost', 'old.thing', 'old', 'success', '', '')",
    )?;
    assert_eq!(audit(&server, &admin, "actor=ghost").await?.total, 1);
    server.trigger_cron().await?;
    assert_eq!(audit(&server, &admin, "actor=ghost").await?.total, 0);
    assert!(
        audit(&server, &admin, "action=settings.update")
            .await?
            .total
            >= 8
    );
    Ok(())
}

#[tokio::test]
async fn system_info_reports_the_deployment_and_the_update_check_reads_a_releases_feed()
-> Result<()> {
    let rx = Receivers::start()?;
    let server = Server::start_with(
        ServerOptions::default().var("RELEASES_URL", rx.url("/releases/v99.1.0")),
    )
    .await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    server.trigger_cron().await?;
    let reply = server.get(routes::SYSTEM_INFO, Some(&admin)).await?;
    let info: SystemInfo = reply
        .expect_ok()
        .map_err(|e| anyhow::anyhow!("{e}\n{}", server.log()))?;
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    // The newest migration in migrations/ is the one applied last.
    let newest = std::fs::read_dir(stowage_tests::repo_root().join("migrations"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".sql"))
        .max()
        .context("no migrations")?;
    assert_eq!(info.schema_migration.as_deref(), Some(newest.as_str()));
    assert!(
        info.cron.healthy && info.cron.last_tick_at.is_some(),
        "{:?}",
        info.cron
    );
    assert!(info.seal_key_configured);
    assert!(info.database_bytes.is_some_and(|b| b > 0), "{info:?}");
    let users = info
        .table_rows
        .iter()
        .find(|t| t.table == "users")
        .map(|t| t.rows);
    assert_eq!(users, Some(1));
    assert_eq!(info.limits.max_json_body_bytes, 1_048_576);

    let check: UpdateCheck = server
        .get(routes::SYSTEM_UPDATE_CHECK, Some(&admin))
        .await?
        .expect_ok()?;
    assert!(check.has_update, "{check:?}");
    assert_eq!(check.latest_version.as_deref(), Some("99.1.0"));
    assert_eq!(
        check.release_url.as_deref(),
        Some("https://example.invalid/v99.1.0")
    );
    assert_eq!(rx.requests("/releases/v99.1.0")?.len(), 1);

    // A feed that sends more than a release ever is, is read only so far (and is then no release).
    let huge = Server::start_with(
        ServerOptions::default().var("RELEASES_URL", rx.url("/huge-release/v99.2.0")),
    )
    .await?;
    let admin3 = huge.admin("admin", "correct horse battery").await?;
    let check: UpdateCheck = huge
        .get(routes::SYSTEM_UPDATE_CHECK, Some(&admin3))
        .await?
        .expect_ok()?;
    assert!(!check.has_update, "{check:?}");
    assert!(
        check
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not a release")),
        "{check:?}"
    );

    // A feed that fails, and one that is behind, are 200s with the reason.
    let down =
        Server::start_with(ServerOptions::default().var("RELEASES_URL", rx.url("/status/503")))
            .await?;
    let admin2 = down.admin("admin", "correct horse battery").await?;
    let check: UpdateCheck = down
        .get(routes::SYSTEM_UPDATE_CHECK, Some(&admin2))
        .await?
        .expect_ok()?;
    assert!(!check.has_update);
    assert!(
        check
            .error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 503")),
        "{check:?}"
    );
    Ok(())
}
