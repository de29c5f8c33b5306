//! What no operator, compromised control plane or bad input may make an agent do: run a program
//! through rclone's options, read or write outside the node's `--allow-path` list, or send a stored
//! secret to a destination it was not entered for.

use anyhow::{Context, Result};
use serde_json::json;
use std::time::Duration;
use stowage_shared::api::{
    BackupRecordOutput, BackupTaskOutput, NodeWithToken, RcloneBackendsOutput, RestoreRecordOutput,
    StorageTargetDetail, routes,
};
use stowage_tests::{AgentProcess, Fleet, RcloneServer, Receivers, eventually, fs_list_path};

/// A server, its administrator and a node spoken for by a `RawAgent` (which heartbeated once), with
/// a file task writing to a local-disk target of each name given: for what a real agent cannot be
/// made to say on cue.
struct Scripted {
    server: stowage_tests::Server,
    admin: String,
    raw: stowage_tests::RawAgent,
    targets: Vec<i64>,
    task: Option<BackupTaskOutput>,
}

async fn scripted(node_name: &str, targets: &[&str]) -> Result<Scripted> {
    let server = stowage_tests::Server::start().await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let node: NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": node_name}))
        .await?
        .expect_ok()?;
    let raw = stowage_tests::RawAgent::new(&server, node.token.expose());
    raw.heartbeat().await?.expect_ok::<serde_json::Value>()?;
    let mut ids = Vec::new();
    for name in targets {
        let t: StorageTargetDetail = server
            .post(
                routes::STORAGE_TARGETS,
                Some(&admin),
                &json!({"name": name, "type": "local_disk",
                        "config": {"basePath": format!("/tmp/stowage-{node_name}-{name}")}}),
            )
            .await?
            .expect_ok()?;
        ids.push(t.summary.id);
    }
    let task = if ids.is_empty() {
        None
    } else {
        Some(
            server
                .post(
                    routes::BACKUP_TASKS,
                    Some(&admin),
                    &json!({"name": node_name, "type": "file", "nodeId": node.node.id,
                            "sourcePaths": ["/srv"], "storageTargetIds": ids}),
                )
                .await?
                .expect_ok()?,
        )
    };
    Ok(Scripted {
        server,
        admin,
        raw,
        targets: ids,
        task,
    })
}

#[tokio::test]
async fn rclone_options_that_reach_the_host_are_refused_and_never_offered() -> Result<()> {
    let fleet = Fleet::start("rc-1").await?;
    let (server, admin) = (&fleet.server, fleet.admin.as_str());
    let marker = tempfile::tempdir()?;
    let ran = marker.path().join("ran");
    let command = format!("touch {}", ran.display());
    for (config, field) in [
        (
            json!({"backend": "webdav", "options": {"url": "http://127.0.0.1:1", "bearer_token_command": command}}),
            "options.bearer_token_command",
        ),
        (
            json!({"backend": "sftp", "options": {"host": "127.0.0.1", "ssh": command}}),
            "options.ssh",
        ),
        (
            json!({"backend": "s3", "options": {"provider": "AWS", "env_auth": "true"}}),
            "options.env_auth",
        ),
        (
            json!({"backend": "sftp", "options": {"host": "127.0.0.1", "key_file": "/root/.ssh/id_ed25519"}}),
            "options.key_file",
        ),
        (json!({"backend": "local", "root": "/etc"}), "backend"),
        (
            json!({"backend": "alias", "options": {"remote": "/etc"}}),
            "backend",
        ),
        (
            json!({"backend": "crypt", "options": {"remote": "x:"}}),
            "backend",
        ),
    ] {
        let body = json!({"name": "evil", "type": "rclone", "config": config});
        for path in [routes::STORAGE_TARGETS, routes::STORAGE_TARGETS_TEST] {
            let reply = server.post(path, Some(admin), &body).await?;
            reply.expect_error(400, "STORAGE_TARGET_INVALID_CONFIG")?;
            assert!(
                reply.envelope.message.contains(field),
                "{path}: {}",
                reply.raw
            );
        }
    }
    assert!(!ran.exists(), "rclone ran the operator's command");

    // The backends the console offers leave out the refused ones and their refused options.
    let listed: RcloneBackendsOutput = server
        .get(routes::RCLONE_BACKENDS, Some(admin))
        .await?
        .expect_ok()?;
    let backends = listed.backends;
    let names: Vec<&str> = backends.iter().map(|b| b.backend.name.as_str()).collect();
    for refused in ["local", "alias", "crypt", "union", "memory"] {
        assert!(!names.contains(&refused), "{refused} offered: {names:?}");
    }
    let webdav = backends
        .iter()
        .find(|b| b.backend.name == "webdav")
        .expect("webdav is offered");
    assert!(webdav.backend.options.iter().any(|o| o.name == "url"));
    assert!(
        webdav
            .backend
            .options
            .iter()
            .all(|o| o.name != "bearer_token_command" && o.name != "unix_socket")
    );
    Ok(())
}

#[tokio::test]
async fn an_agent_with_allowed_paths_refuses_every_other_path() -> Result<()> {
    let fleet = Fleet::start("paths-0").await?;
    let (server, admin) = (&fleet.server, fleet.admin.as_str());
    let allowed = tempfile::tempdir()?;
    let outside = tempfile::tempdir()?;
    std::fs::create_dir(allowed.path().join("site"))?;
    std::fs::write(allowed.path().join("site/index.html"), "<h1>allowed</h1>")?;
    std::fs::write(
        outside.path().join("secret.txt"),
        "not for the control plane",
    )?;
    // A link inside the allowed directory that points out of it widens nothing.
    std::os::unix::fs::symlink(outside.path(), allowed.path().join("escape"))?;

    let node: NodeWithToken = server
        .post(routes::NODES, Some(admin), &json!({"name": "fenced"}))
        .await?
        .expect_ok()?;
    let allow = allowed.path().to_string_lossy().into_owned();
    let agent = AgentProcess::start_with_args(
        &server.base_url,
        node.token.expose(),
        &["--allow-path", &allow],
    )?;
    server.wait_online(admin, node.node.id).await?;
    agent
        .wait_for_log(
            "the control plane may read and write only these paths",
            Duration::from_secs(5),
        )
        .await?;

    // Browsing: inside yes, outside and through the link no.
    server
        .get(&fs_list_path(node.node.id, allowed.path()), Some(admin))
        .await?
        .expect_ok::<serde_json::Value>()?;
    for path in [outside.path().to_path_buf(), allowed.path().join("escape")] {
        let reply = server
            .get(&fs_list_path(node.node.id, &path), Some(admin))
            .await?;
        reply.expect_error(403, "NODE_PATH_NOT_ALLOWED")?;
        assert!(
            reply.envelope.message.contains(&*path.to_string_lossy()),
            "{}",
            reply.raw
        );
    }

    // A local-disk target outside: its test fails on the agent, naming the path.
    let reply = server
        .post(
            routes::STORAGE_TARGETS_TEST,
            Some(admin),
            &json!({"name": "t", "type": "local_disk", "nodeId": node.node.id,
                    "config": {"basePath": outside.path().join("store")}}),
        )
        .await?;
    assert_eq!(reply.status, 400, "{}", reply.raw);
    assert!(reply.raw.contains("does not let Stowage"), "{}", reply.raw);
    assert!(!outside.path().join("store").exists());

    // A backup of a source outside fails, naming it; one inside succeeds.
    let store = allowed.path().join("store");
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(admin),
            &json!({"name": "inside", "type": "local_disk", "config": {"basePath": store}}),
        )
        .await?
        .expect_ok()?;
    let run = |sources: Vec<String>, name: &'static str| {
        let target_id = target.summary.id;
        async move {
            let task: BackupTaskOutput = server
                .post(
                    routes::BACKUP_TASKS,
                    Some(admin),
                    &json!({"name": name, "type": "file", "nodeId": node.node.id,
                            "sourcePaths": sources, "storageTargetIds": [target_id]}),
                )
                .await?
                .expect_ok()?;
            let started: BackupRecordOutput = server
                .post(&routes::backup_task_run(task.id), Some(admin), &json!({}))
                .await?
                .expect_ok()?;
            server.settled(admin, started.id, false).await
        }
    };
    let refused = run(
        vec![outside.path().to_string_lossy().into_owned()],
        "outside",
    )
    .await?;
    assert_eq!(refused.status, "failed", "{refused:?}");
    assert!(
        refused.error.contains(&*outside.path().to_string_lossy()),
        "{}",
        refused.error
    );
    let good = run(
        vec![allowed.path().join("site").to_string_lossy().into_owned()],
        "inside",
    )
    .await?;
    assert_eq!(good.status, "success", "{good:?}");

    // Restoring outside is refused; inside works.
    for (dest, ok) in [
        (outside.path().join("restored"), false),
        (allowed.path().join("restored"), true),
    ] {
        let started: RestoreRecordOutput = server
            .post(
                &routes::backup_record_restore(good.id),
                Some(admin),
                &json!({"targetPath": dest, "nodeId": node.node.id}),
            )
            .await?
            .expect_ok()?;
        let done = eventually("the restore to end", Duration::from_secs(60), || async {
            let r: RestoreRecordOutput = server
                .get(&routes::restore_record(started.id), Some(admin))
                .await?
                .expect_ok()?;
            Ok((r.status != "running").then_some(r))
        })
        .await?;
        if ok {
            assert_eq!(done.status, "success", "{done:?}");
        } else {
            assert_eq!(done.status, "failed", "{done:?}");
            assert!(
                done.error.contains("does not let Stowage write"),
                "{}",
                done.error
            );
            assert!(!dest.exists());
        }
    }
    assert!(
        std::fs::read_dir(outside.path())?.count() == 1,
        "nothing was written outside"
    );
    Ok(())
}

#[tokio::test]
async fn a_masked_secret_never_follows_a_new_destination() -> Result<()> {
    let fleet = Fleet::start("secrets-0").await?;
    let (server, admin) = (&fleet.server, fleet.admin.as_str());
    // Where an operator would like the stored password to go.
    let receivers = Receivers::start()?;
    let dav = RcloneServer::start(
        "webdav",
        &[("RCLONE_USER", "dav"), ("RCLONE_PASS", "dav-password")],
    )
    .await?;
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(admin),
            &json!({"name": "dav", "type": "webdav", "config": {
                "endpoint": format!("http://127.0.0.1:{}", dav.port),
                "username": "dav", "password": "dav-password"}}),
        )
        .await?
        .expect_ok()?;
    let id = target.summary.id;
    let moved = json!({"name": "dav", "type": "webdav", "config": {
        "endpoint": receivers.url("/steal"), "username": "dav", "password": "********"}});
    let reply = server
        .put(&routes::storage_target(id), Some(admin), &moved)
        .await?;
    reply.expect_error(400, "STORAGE_TARGET_INVALID_CONFIG")?;
    assert!(reply.envelope.message.contains("password"), "{}", reply.raw);
    // Renaming without moving keeps it; moving with the password again is accepted.
    server
        .put(
            &routes::storage_target(id),
            Some(admin),
            &json!({"name": "dav renamed", "type": "webdav", "config": {
                "endpoint": format!("http://127.0.0.1:{}", dav.port), "username": "dav", "password": "********"}}),
        )
        .await?
        .expect_ok::<serde_json::Value>()?;
    server
        .post(
            &format!(
                "{}?nodeId={}",
                routes::storage_target_test(id),
                fleet.node.node.id
            ),
            Some(admin),
            &json!({}),
        )
        .await?
        .expect_ok::<serde_json::Value>()?;

    // A notification channel's token stays with its server.
    let channel: serde_json::Value = server
        .post(
            routes::NOTIFICATIONS,
            Some(admin),
            &json!({"name": "tg", "type": "telegram", "events": ["backup_failed"],
                    "config": {"botToken": "123:stored-token", "chatId": "42",
                               "apiUrl": "https://api.telegram.org"}}),
        )
        .await?
        .expect_ok()?;
    let channel_id = channel["id"].as_i64().unwrap_or_default();
    let reply = server
        .put(
            &routes::notification(channel_id),
            Some(admin),
            &json!({"name": "tg", "type": "telegram", "events": ["backup_failed"],
                    "config": {"botToken": "********", "chatId": "42",
                               "apiUrl": receivers.url("/bot")}}),
        )
        .await?;
    reply.expect_error(400, "NOTIFICATION_INVALID")?;
    assert!(reply.envelope.message.contains("botToken"), "{}", reply.raw);

    // A database task's password stays with its server, and so does a restore's.
    let task: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(admin),
            &json!({"name": "db", "type": "mysql", "nodeId": fleet.node.node.id,
                    "dbHost": "127.0.0.1", "dbPort": 3306, "dbUser": "root",
                    "dbPassword": "stored-db-password", "dbNames": ["shop"],
                    "storageTargetIds": [id]}),
        )
        .await?
        .expect_ok()?;
    let reply = server
        .put(
            &routes::backup_task(task.id),
            Some(admin),
            &json!({"name": "db", "type": "mysql", "nodeId": fleet.node.node.id,
                    "dbHost": "127.0.0.2", "dbPort": 3306, "dbUser": "root",
                    "dbPassword": "********", "dbNames": ["shop"], "storageTargetIds": [id]}),
        )
        .await?;
    reply.expect_error(400, "BACKUP_TASK_INVALID")?;
    assert!(
        reply.envelope.message.contains("dbPassword"),
        "{}",
        reply.raw
    );
    assert!(
        receivers.requests("/steal")?.is_empty() && receivers.requests("/bot")?.is_empty(),
        "a secret reached the receiver"
    );
    Ok(())
}

#[tokio::test]
async fn a_stream_ticket_opens_once() -> Result<()> {
    let server = stowage_tests::Server::start().await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let path = routes::backup_record_logs(1);
    let ticket: stowage_shared::api::StreamTicket = server
        .post(
            routes::AUTH_STREAM_TICKET,
            Some(&admin),
            &json!({ "path": path }),
        )
        .await?
        .expect_ok()?;
    let url = format!("{}?ticket={}", server.url(&path), ticket.ticket);
    // Signed in the first time (the record does not exist), refused the second.
    let first = server.http().get(&url).send().await?;
    assert_eq!(first.status(), 404);
    let again = stowage_tests::Reply::read(server.http().get(&url).send().await?).await?;
    again.expect_error(401, "AUTH_INVALID_TOKEN")?;
    assert!(
        again.envelope.message.contains("used already"),
        "{}",
        again.raw
    );
    Ok(())
}

#[tokio::test]
async fn a_run_is_judged_by_the_targets_it_was_planned_for() -> Result<()> {
    use stowage_shared::protocol::CommandResult;
    let Scripted {
        server,
        admin,
        raw,
        targets,
        task,
        ..
    } = scripted("liar", &["one", "two"]).await?;
    let task = task.context("a task")?;
    // (what the agent claims it stored, the status the record must get, a word of its error)
    let cases = [
        (vec![(targets[0], 100)], "partial", "did not report"),
        (
            vec![(targets[0], 100), (targets[1], 99)],
            "partial",
            "stored 99 bytes",
        ),
        (vec![(999, 100)], "failed", "did not report"),
        (vec![(targets[0], 100), (targets[1], 100)], "success", ""),
    ];
    for (claimed, status, why) in cases {
        let record: BackupRecordOutput = server
            .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
            .await?
            .expect_ok()?;
        let command = eventually("the run to be claimable", Duration::from_secs(10), || {
            raw.poll()
        })
        .await?;
        let report = json!({
            "bytes": 100, "sha256": "ab".repeat(32), "files": 1, "sourceBytes": 100,
            "targets": claimed.iter().map(|(id, bytes)| json!({"targetId": id, "bytes": bytes}))
                .collect::<Vec<_>>(),
        });
        raw.report(command.id, &CommandResult::Succeeded { result: report })
            .await?
            .expect_ok::<serde_json::Value>()?;
        let done: BackupRecordOutput = server
            .get(&routes::backup_record(record.id), Some(&admin))
            .await?
            .expect_ok()?;
        assert_eq!(done.status, status, "{claimed:?}: {done:?}");
        assert!(done.error.contains(why), "{claimed:?}: {}", done.error);
    }
    Ok(())
}

#[tokio::test]
async fn retention_removes_a_copy_through_the_node_that_wrote_it() -> Result<()> {
    let fleet = Fleet::start("writer").await?;
    let (server, admin) = (&fleet.server, fleet.admin.as_str());
    let (other, _other_agent) = fleet.enrol("successor").await?;
    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("f.txt"), "x")?;
    let store = tempfile::tempdir()?;
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(admin),
            &json!({"name": "disk", "type": "local_disk", "config": {"basePath": store.path()}}),
        )
        .await?
        .expect_ok()?;
    let body = |node: i64| {
        json!({"name": "moved", "type": "file", "nodeId": node, "sourcePaths": [src.path()],
               "storageTargetIds": [target.summary.id], "retention": {"keepLast": 1}})
    };
    let task: BackupTaskOutput = server
        .post(routes::BACKUP_TASKS, Some(admin), &body(fleet.node.node.id))
        .await?
        .expect_ok()?;
    let run = |node_check: i64| async move {
        let started: BackupRecordOutput = server
            .post(&routes::backup_task_run(task.id), Some(admin), &json!({}))
            .await?
            .expect_ok()?;
        let done = server.settled(admin, started.id, false).await?;
        anyhow::ensure!(
            done.status == "success" && done.node_id == node_check,
            "{done:?}"
        );
        Ok::<_, anyhow::Error>(done)
    };
    let first = run(fleet.node.node.id).await?;
    // The task moves to another node; its next run's retention drops the first backup.
    server
        .put(
            &routes::backup_task(task.id),
            Some(admin),
            &body(other.node.id),
        )
        .await?
        .expect_ok::<BackupTaskOutput>()?;
    run(other.node.id).await?;
    let removed = eventually(
        "the first backup to be removed",
        Duration::from_secs(30),
        || async {
            let r: BackupRecordOutput = server
                .get(&routes::backup_record(first.id), Some(admin))
                .await?
                .expect_ok()?;
            Ok(r.removed_at.is_some().then_some(r))
        },
    )
    .await?;
    assert!(removed.removal.starts_with("retention"), "{removed:?}");
    let sent_to =
        server.query("SELECT node_id FROM agent_commands WHERE kind = 'delete_artifacts'")?;
    assert_eq!(sent_to.len(), 1, "{sent_to:?}");
    assert_eq!(
        sent_to[0]["node_id"], fleet.node.node.id,
        "the writer removes its own copy"
    );
    assert!(!store.path().join(&first.targets[0].path).exists());
    Ok(())
}

#[tokio::test]
async fn records_of_a_deleted_node_can_still_be_deleted() -> Result<()> {
    let fleet = Fleet::start("retired").await?;
    let (server, admin) = (&fleet.server, fleet.admin.as_str());
    let (heir, _heir_agent) = fleet.enrol("heir").await?;
    let s3 = RcloneServer::start("s3", &[("RCLONE_AUTH_KEY", "\"del-key,del-secret\"")]).await?;
    std::fs::create_dir(s3.data().join("bucket"))?;
    let disk = tempfile::tempdir()?;
    let mut targets = Vec::new();
    for (name, kind, config) in [
        ("disk", "local_disk", json!({"basePath": disk.path()})),
        (
            "s3",
            "s3",
            json!({"endpoint": format!("http://127.0.0.1:{}", s3.port), "bucket": "bucket",
                             "accessKeyId": "del-key", "secretAccessKey": "del-secret",
                             "forcePathStyle": true}),
        ),
    ] {
        let t: StorageTargetDetail = server
            .post(
                routes::STORAGE_TARGETS,
                Some(admin),
                &json!({"name": name, "type": kind, "config": config}),
            )
            .await?
            .expect_ok()?;
        targets.push(t.summary.id);
    }
    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("f.txt"), "x")?;
    let body = |node: i64| {
        json!({"name": "inherited", "type": "file", "nodeId": node, "sourcePaths": [src.path()],
               "storageTargetIds": targets})
    };
    let task: BackupTaskOutput = server
        .post(routes::BACKUP_TASKS, Some(admin), &body(fleet.node.node.id))
        .await?
        .expect_ok()?;
    let started: BackupRecordOutput = server
        .post(&routes::backup_task_run(task.id), Some(admin), &json!({}))
        .await?
        .expect_ok()?;
    let done = server.settled(admin, started.id, false).await?;
    assert_eq!(done.status, "success", "{done:?}");
    // The task moves to the heir and the old node is deleted.
    server
        .put(
            &routes::backup_task(task.id),
            Some(admin),
            &body(heir.node.id),
        )
        .await?
        .expect_ok::<BackupTaskOutput>()?;
    server
        .delete(&routes::node(fleet.node.node.id), Some(admin))
        .await?
        .expect_ok::<serde_json::Value>()?;
    // Its record still goes: the S3 copy through the heir, the local copy is out of reach.
    server
        .delete(&routes::backup_record(done.id), Some(admin))
        .await?
        .expect_ok::<serde_json::Value>()?;
    let path = &done.targets[0].path;
    assert!(
        !s3.data().join("bucket").join(path).exists(),
        "the S3 copy is removed"
    );
    assert!(
        disk.path().join(path).exists(),
        "the retired node's disk is out of reach"
    );
    server
        .get(&routes::backup_record(done.id), Some(admin))
        .await?
        .expect_error(404, "BACKUP_RECORD_NOT_FOUND")?;
    Ok(())
}

#[tokio::test]
async fn a_node_that_calls_too_often_is_slowed_down() -> Result<()> {
    let server = stowage_tests::Server::start().await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let node: NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "hammer"}))
        .await?
        .expect_ok()?;
    let raw = stowage_tests::RawAgent::new(&server, node.token.expose());
    // As fast as one connection allows: past a burst, refused before any work is done.
    let mut limited = (0, 0);
    for _ in 0..25 {
        let reply = raw.heartbeat().await?;
        if reply.status == 429 {
            reply.expect_error(429, "AGENT_RATE_LIMITED")?;
            limited.0 += 1;
        } else {
            reply.expect_ok::<serde_json::Value>()?;
        }
    }
    for _ in 0..110 {
        let reply = raw.post(routes::AGENT_POLL, &json!({})).await?;
        if reply.status == 429 {
            reply.expect_error(429, "AGENT_RATE_LIMITED")?;
            limited.1 += 1;
        } else {
            reply.expect_ok::<serde_json::Value>()?;
        }
    }
    assert!(limited.0 >= 5 && limited.1 >= 10, "{limited:?}");
    Ok(())
}

#[tokio::test]
async fn viewers_read_what_is_stored_and_start_no_work_on_agents() -> Result<()> {
    let fleet = Fleet::start("watched").await?;
    let (server, admin) = (&fleet.server, fleet.admin.as_str());
    let store = tempfile::tempdir()?;
    std::fs::write(store.path().join("a.bin"), vec![1u8; 1000])?;
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(admin),
            &json!({"name": "disk", "type": "local_disk", "config": {"basePath": store.path()}}),
        )
        .await?
        .expect_ok()?;
    let usage = routes::storage_target_usage(target.summary.id);
    let commands = || -> Result<serde_json::Value> {
        Ok(server.query("SELECT count(*) AS n FROM agent_commands")?[0]["n"].clone())
    };
    let as_role = |role: &str| server.query(&format!("UPDATE users SET role = '{role}'"));

    as_role("viewer")?;
    server
        .get(&usage, Some(admin))
        .await?
        .expect_error(404, "STORAGE_TARGET_USAGE_UNMEASURED")?;
    server
        .get(
            &format!("{}?refresh=true", routes::RCLONE_BACKENDS),
            Some(admin),
        )
        .await?
        .expect_error(403, "AUTH_FORBIDDEN")?;
    let before = commands()?;
    // A viewer's rclone list is what is kept: nothing kept, nothing asked.
    let listed: RcloneBackendsOutput = server
        .get(routes::RCLONE_BACKENDS, Some(admin))
        .await?
        .expect_ok()?;
    assert!(listed.backends.is_empty(), "{listed:?}");
    assert_eq!(commands()?, before, "a viewer started work on an agent");

    // An operator measures (on the node named: no task uses the target yet)...
    as_role("operator")?;
    let measured: stowage_shared::api::StorageUsageOutput = server
        .get(
            &format!("{usage}?nodeId={}", fleet.node.node.id),
            Some(admin),
        )
        .await?
        .expect_ok()?;
    assert_eq!(measured.usage.total_bytes, 1000);
    // ...and a viewer reads that measurement, without a new one.
    as_role("viewer")?;
    let before = commands()?;
    let read: stowage_shared::api::StorageUsageOutput =
        server.get(&usage, Some(admin)).await?.expect_ok()?;
    assert_eq!(read.usage, measured.usage);
    assert_eq!(read.measured_at, measured.measured_at);
    assert_eq!(commands()?, before);
    Ok(())
}

#[tokio::test]
async fn an_agent_cannot_fill_a_record_with_log_lines() -> Result<()> {
    use stowage_shared::api::{LogLevel, LogLine};
    use stowage_shared::protocol::{LOG_RECORD_MAX_LINES, RunLogBatch};
    let Scripted {
        server,
        admin,
        raw,
        task,
        ..
    } = scripted("chatty", &["t"]).await?;
    let task = task.context("a task")?;
    let record: BackupRecordOutput = server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?
        .expect_ok()?;
    eventually("the run to be claimed", Duration::from_secs(10), || {
        raw.poll()
    })
    .await?;
    // Lines around the cap, and far past it.
    let lines = (LOG_RECORD_MAX_LINES - 2..=LOG_RECORD_MAX_LINES + 2)
        .chain([LOG_RECORD_MAX_LINES * 100])
        .map(|seq| LogLine {
            seq,
            at: "2026-12-03T00:00:00.000Z".into(),
            level: LogLevel::Info,
            message: format!("line {seq}"),
        })
        .collect();
    raw.post(
        &routes::agent_record_log(record.id),
        &RunLogBatch {
            lines,
            progress: None,
        },
    )
    .await?
    .expect_ok::<serde_json::Value>()?;
    let stored = server.query(&format!(
        "SELECT seq, level, message FROM run_logs WHERE record_id = {} ORDER BY seq",
        record.id
    ))?;
    let seqs: Vec<u64> = stored.iter().filter_map(|r| r["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        [
            LOG_RECORD_MAX_LINES - 2,
            LOG_RECORD_MAX_LINES - 1,
            LOG_RECORD_MAX_LINES
        ]
    );
    let last = &stored[2];
    assert_eq!(last["level"], "warn");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("log truncated")),
        "{last}"
    );
    Ok(())
}

#[tokio::test]
async fn a_lying_agent_cannot_offer_what_the_allow_list_refuses() -> Result<()> {
    use stowage_shared::protocol::CommandResult;
    let Scripted {
        server, admin, raw, ..
    } = scripted("liar", &[]).await?;
    // (The heartbeat made by `scripted` comes first; this one reports an rclone.)
    raw.post(
        routes::AGENT_HEARTBEAT,
        &json!({"hostname": "liar", "ipAddress": "127.0.0.1", "os": "test", "arch": "test",
                "agentVersion": "0.0.0", "capabilities": {"rclone": "rclone v9.9.9"}, "running": []}),
    )
    .await?
    .expect_ok::<serde_json::Value>()?;
    // An operator's list asks the node, which answers with what no target may use.
    let listing = server.spawn_get(routes::RCLONE_BACKENDS, &admin);
    let command = eventually("the list to be asked", Duration::from_secs(10), || {
        raw.poll()
    })
    .await?;
    let option = |name: &str| {
        json!({"name": name, "help": "", "required": false, "secret": false, "sensitive": false,
               "advanced": false, "default": "", "examples": []})
    };
    let poisoned = json!([
        {"name": "local", "description": "the host's disk", "options": [option("nounc")]},
        {"name": "webdav", "description": "WebDAV", "options": [
            option("url"), option("bearer_token_command"), option("unix_socket")]},
    ]);
    raw.report(command.id, &CommandResult::Succeeded { result: poisoned })
        .await?
        .expect_ok::<serde_json::Value>()?;
    let listed: RcloneBackendsOutput = listing.await??.expect_ok()?;
    let names: Vec<&str> = listed
        .backends
        .iter()
        .map(|b| b.backend.name.as_str())
        .collect();
    assert_eq!(names, ["webdav"]);
    let options: Vec<&str> = listed.backends[0]
        .backend
        .options
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(options, ["url"], "only allowed options are kept");
    Ok(())
}
