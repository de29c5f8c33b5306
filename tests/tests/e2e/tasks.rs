//! Backup tasks through the real Worker: checked requests, one-transaction writes with their
//! targets, toggling, and the references that protect nodes and targets in use.

use anyhow::Result;
use serde_json::{Value, json};
use stowage_shared::api::{BackupTaskOutput, NodeWithToken, StorageTargetDetail, routes};
use stowage_tests::Server;

fn count(server: &Server, sql: &str) -> Result<i64> {
    Ok(server.query(sql)?[0]["n"].as_i64().unwrap_or(-1))
}

#[tokio::test]
async fn tasks_are_checked_written_whole_and_guard_what_they_use() -> Result<()> {
    let server = Server::start().await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let node: NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "web-1"}))
        .await?
        .expect_ok()?;
    let mut targets = Vec::new();
    for name in ["disk-a", "disk-b"] {
        let t: StorageTargetDetail = server
            .post(
                routes::STORAGE_TARGETS,
                Some(&admin),
                &json!({"name": name, "type": "local_disk", "config": {"basePath": format!("/backups/{name}")}}),
            )
            .await?
            .expect_ok()?;
        targets.push(t.summary.id);
    }
    let (a, b) = (targets[0], targets[1]);
    let task = |patch: Value| {
        let mut body = json!({
            "name": "web files", "type": "file", "nodeId": node.node.id,
            "sourcePaths": ["/srv/www", "/etc/nginx"], "excludePatterns": ["*.log"],
            "storageTargetIds": [b, a], "cronExpr": "30 2 * * *", "timeZone": "Europe/Berlin",
            "retention": {"keepLast": 7, "keepMonthly": 6}, "tags": ["web"]
        });
        if let (Some(body), Some(patch)) = (body.as_object_mut(), patch.as_object()) {
            for (k, v) in patch {
                body.insert(k.clone(), v.clone());
            }
        }
        body
    };

    // Bad requests: a 400 naming the field, and nothing written.
    for (patch, field) in [
        (json!({"cronExpr": "every night"}), "cronExpr"),
        (json!({"cronExpr": "0 0 30 2 *"}), "never fires"),
        (json!({"timeZone": "Berlin"}), "timeZone"),
        (json!({"sourcePaths": ["/srv", "/srv/www"]}), "overlap"),
        (json!({"storageTargetIds": [a, 999]}), "999"),
        (json!({"nodeId": 999}), "nodeId 999"),
        (json!({"excludePatterns": ["[oops"]}), "excludePatterns"),
        (json!({"compression": "gzip"}), "compression"),
        (json!({"retention": {"keepForever": 1}}), "keepForever"),
    ] {
        let reply = server
            .post(routes::BACKUP_TASKS, Some(&admin), &task(patch.clone()))
            .await?;
        reply.expect_error(400, "BACKUP_TASK_INVALID")?;
        assert!(
            reply.envelope.message.contains(field),
            "{patch}: {}",
            reply.raw
        );
    }
    assert_eq!(count(&server, "SELECT count(*) AS n FROM backup_tasks")?, 0);
    assert_eq!(
        count(&server, "SELECT count(*) AS n FROM backup_task_targets")?,
        0
    );

    let created = server
        .post(routes::BACKUP_TASKS, Some(&admin), &task(json!({})))
        .await?;
    assert_eq!(created.status, 201, "{}", created.raw);
    let t: BackupTaskOutput = created.expect_ok()?;
    assert_eq!((t.node_id, t.node_name.as_str()), (node.node.id, "web-1"));
    assert_eq!(t.storage_target_ids, [b, a], "the order given is kept");
    assert_eq!(t.storage_targets[0].name, "disk-b");
    assert_eq!(t.source_paths, ["/srv/www", "/etc/nginx"]);
    assert_eq!(
        (t.compression.as_str(), t.compression_level),
        ("zstd", Some(3))
    );
    assert_eq!((t.retention.keep_last, t.retention.keep_monthly), (7, 6));
    // 02:30 in Berlin is 00:30 or 01:30 UTC, depending on the season.
    let next = t.next_run_at.clone().expect("scheduled and enabled");
    assert!(
        next.ends_with(":30:00.000Z") && (next.contains("T00:") || next.contains("T01:")),
        "{next}"
    );
    let cursor = server.query("SELECT schedule_cursor, created_at FROM backup_tasks")?;
    assert_eq!(
        cursor[0]["schedule_cursor"], cursor[0]["created_at"],
        "a new schedule starts now"
    );

    server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &task(json!({"name": "WEB FILES"})),
        )
        .await?
        .expect_error(409, "BACKUP_TASK_NAME_EXISTS")?;

    // Update: targets replaced, schedule kept (so the scheduler's cursor stays).
    let updated: BackupTaskOutput = server
        .put(
            &routes::backup_task(t.id),
            Some(&admin),
            &task(json!({"storageTargetIds": [a], "description": "nightly"})),
        )
        .await?
        .expect_ok()?;
    assert_eq!(updated.storage_target_ids, [a]);
    assert_eq!(updated.description, "nightly");
    assert_eq!(
        count(&server, "SELECT count(*) AS n FROM backup_task_targets")?,
        1
    );
    let after = server.query("SELECT schedule_cursor FROM backup_tasks")?;
    assert_eq!(after[0]["schedule_cursor"], cursor[0]["schedule_cursor"]);
    // A refused update changes nothing.
    server
        .put(
            &routes::backup_task(t.id),
            Some(&admin),
            &task(json!({"storageTargetIds": [b, 12345]})),
        )
        .await?
        .expect_error(400, "BACKUP_TASK_INVALID")?;
    let same: BackupTaskOutput = server
        .get(&routes::backup_task(t.id), Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(same.storage_target_ids, [a]);
    server
        .get(&routes::backup_task(9999), Some(&admin))
        .await?
        .expect_error(404, "BACKUP_TASK_NOT_FOUND")?;

    // Toggle: without `enabled` it flips, with it it sets.
    let flipped: BackupTaskOutput = server
        .put(&routes::backup_task_toggle(t.id), Some(&admin), &json!({}))
        .await?
        .expect_ok()?;
    assert!(!flipped.enabled);
    let on: BackupTaskOutput = server
        .put(
            &routes::backup_task_toggle(t.id),
            Some(&admin),
            &json!({"enabled": true}),
        )
        .await?
        .expect_ok()?;
    assert!(on.enabled && on.next_run_at.is_some());
    let off: BackupTaskOutput = server
        .put(
            &routes::backup_task_toggle(t.id),
            Some(&admin),
            &json!({"enabled": false}),
        )
        .await?
        .expect_ok()?;
    assert!(
        !off.enabled && off.next_run_at.is_none(),
        "a disabled task has no next run"
    );
    let list: Vec<BackupTaskOutput> = server
        .get(routes::BACKUP_TASKS, Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].storage_targets.len(), 1);

    // What a task uses cannot be deleted from under it.
    let in_use = server
        .delete(&routes::storage_target(a), Some(&admin))
        .await?;
    in_use.expect_error(409, "STORAGE_TARGET_IN_USE")?;
    assert!(
        in_use.envelope.message.contains("web files"),
        "{}",
        in_use.raw
    );
    server
        .delete(&routes::storage_target(b), Some(&admin))
        .await?
        .expect_ok::<Value>()?;
    let has_tasks = server
        .delete(&routes::node(node.node.id), Some(&admin))
        .await?;
    has_tasks.expect_error(409, "NODE_HAS_TASKS")?;

    // Deleting a task needs an answer about its backups.
    server
        .delete(&routes::backup_task(t.id), Some(&admin))
        .await?
        .expect_error(400, "BACKUP_TASK_INVALID")?;
    server
        .delete(
            &format!("{}?keepBackups=true", routes::backup_task(t.id)),
            Some(&admin),
        )
        .await?
        .expect_ok::<Value>()?;
    assert_eq!(
        count(&server, "SELECT count(*) AS n FROM backup_task_targets")?,
        0
    );
    server
        .delete(&routes::storage_target(a), Some(&admin))
        .await?
        .expect_ok::<Value>()?;
    server
        .delete(&routes::node(node.node.id), Some(&admin))
        .await?
        .expect_ok::<Value>()?;

    let audit = server
        .query("SELECT action FROM audit_logs WHERE action LIKE 'backup_task.%' AND result = 'success' ORDER BY id")?;
    let actions: Vec<&str> = audit.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "backup_task.create",
            "backup_task.update",
            "backup_task.disable",
            "backup_task.enable",
            "backup_task.disable",
            "backup_task.delete"
        ]
    );
    // The refused calls above are in the log too, each with its error code.
    crate::operations::assert_refusals_audited(&server, "backup_task.")?;
    Ok(())
}
