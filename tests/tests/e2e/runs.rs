//! A backup run end to end: the real Worker hands the run to a real agent, which archives the
//! sources once and stores the artifact on a local directory and a real S3 server at the same
//! time; the record settles with the agent's figures, and the stored bytes are the backup.

use anyhow::{Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;
use stowage_shared::api::{
    BackupRecordOutput, BackupTaskOutput, NodeWithToken, Page, StorageTargetDetail, routes,
};
use stowage_tests::{Fleet, RcloneServer, Server, ServerOptions, eventually};

#[tokio::test]
async fn a_manual_run_stores_the_same_verified_artifact_on_every_target() -> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent: _agent,
    } = Fleet::start("web-1").await?;

    let src = tempfile::tempdir()?;
    std::fs::create_dir_all(src.path().join("site/img"))?;
    std::fs::write(src.path().join("site/index.html"), "<h1>hello</h1>")?;
    std::fs::write(src.path().join("site/img/logo.bin"), vec![7u8; 200_000])?;
    std::fs::write(src.path().join("site/app.log"), "excluded")?;

    let local = tempfile::tempdir()?;
    let s3 = RcloneServer::start("s3", &[("RCLONE_AUTH_KEY", "\"run-key,run-secret\"")]).await?;
    std::fs::create_dir(s3.data().join("bucket"))?;
    let mut ids = Vec::new();
    for (name, config) in [
        ("here", json!({"basePath": local.path()})),
        (
            "s3",
            json!({"endpoint": format!("http://127.0.0.1:{}", s3.port), "bucket": "bucket",
                      "accessKeyId": "run-key", "secretAccessKey": "run-secret",
                      "forcePathStyle": true, "prefix": "backups"}),
        ),
        (
            "s3-wrong-key",
            json!({"endpoint": format!("http://127.0.0.1:{}", s3.port), "bucket": "bucket",
                      "accessKeyId": "run-key", "secretAccessKey": "not-the-secret",
                      "forcePathStyle": true}),
        ),
    ] {
        let t: StorageTargetDetail = server
            .post(
                routes::STORAGE_TARGETS,
                Some(&admin),
                &json!({"name": name, "type": if name == "here" { "local_disk" } else { "s3" }, "config": config}),
            )
            .await?
            .expect_ok()?;
        ids.push(t.summary.id);
    }
    let source = src.path().join("site").to_string_lossy().into_owned();
    let task: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "Web Site", "type": "file", "nodeId": node.node.id,
                    "sourcePaths": [source], "excludePatterns": ["*.log"],
                    "storageTargetIds": [ids[0], ids[1]]}),
        )
        .await?
        .expect_ok()?;

    let started = server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?;
    assert_eq!(started.status, 201, "{}", started.raw);
    let record: BackupRecordOutput = started.expect_ok()?;
    assert_eq!(
        (record.status.as_str(), record.trigger.as_str()),
        ("running", "manual")
    );
    assert_eq!(record.targets.len(), 2);
    let path = record.targets[0].path.clone();
    assert!(
        path.starts_with("web-site/") && path.ends_with(&format!("-r{}.tar.zst", record.id)),
        "{path}"
    );

    let done = server.settled(&admin, record.id, false).await?;
    assert_eq!(done.status, "success", "{done:?}");
    assert_eq!((done.files, done.source_bytes), (2, 200_014));
    for t in &done.targets {
        assert_eq!(
            (t.status.as_str(), t.bytes),
            ("success", done.bytes),
            "{t:?}"
        );
    }
    // The stored bytes on both targets are the artifact the record describes.
    let on_disk = std::fs::read(local.path().join(&path))?;
    let on_s3 = std::fs::read(s3.data().join("bucket/backups").join(&path))?;
    for stored in [&on_disk, &on_s3] {
        assert_eq!(stored.len() as u64, done.bytes);
        assert_eq!(hex::encode(Sha256::digest(stored)), done.checksum);
    }
    // Beside each copy, a manifest that describes it without the control plane.
    for dir in [local.path().to_path_buf(), s3.data().join("bucket/backups")] {
        let text =
            std::fs::read_to_string(dir.join(stowage_shared::artifact::manifest_path(&path)))?;
        let m: stowage_shared::artifact::BackupManifest = serde_json::from_str(&text)?;
        assert_eq!(m.format, stowage_shared::artifact::MANIFEST_FORMAT);
        assert_eq!(
            (m.record_id, m.task_id, m.task_name.as_str()),
            (done.id, task.id, "Web Site")
        );
        assert_eq!(
            (m.bytes, m.sha256.as_str(), m.files),
            (done.bytes, done.checksum.as_str(), 2)
        );
        assert_eq!(m.artifact, path.rsplit('/').next().unwrap_or_default());
        assert_eq!(m.excludes, ["*.log"]);
    }
    let out = tempfile::tempdir()?;
    tar::Archive::new(zstd::decode_all(on_disk.as_slice())?.as_slice()).unpack(out.path())?;
    let back = out.path().join(source.trim_start_matches('/'));
    assert_eq!(
        std::fs::read_to_string(back.join("index.html"))?,
        "<h1>hello</h1>"
    );
    assert_eq!(
        std::fs::read(back.join("img/logo.bin"))?,
        vec![7u8; 200_000]
    );
    assert!(!back.join("app.log").exists());
    let after: BackupTaskOutput = server
        .get(&routes::backup_task(task.id), Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(after.last_status.map(|s| s.as_str()), Some("success"));

    // A target that refuses makes the run partial, with its reason, and the other copy whole.
    let partial_task: BackupTaskOutput = server
        .put(
            &routes::backup_task(task.id),
            Some(&admin),
            &json!({"name": "Web Site", "type": "file", "nodeId": node.node.id,
                    "sourcePaths": [source], "storageTargetIds": [ids[0], ids[2]]}),
        )
        .await?
        .expect_ok()?;
    let second: BackupRecordOutput = server
        .post(
            &routes::backup_task_run(partial_task.id),
            Some(&admin),
            &json!({}),
        )
        .await?
        .expect_ok()?;
    let second = server.settled(&admin, second.id, false).await?;
    assert_eq!(second.status, "partial", "{second:?}");
    let failed = second
        .targets
        .iter()
        .find(|t| t.target_id == ids[2])
        .context("the refusing target")?;
    assert_eq!(failed.status, "failed");
    assert!(failed.error.contains("SignatureDoesNotMatch"), "{failed:?}");
    assert!(!second.error.contains("not-the-secret"));
    assert!(local.path().join(&second.targets[0].path).exists());

    let list: Page<BackupRecordOutput> = server
        .get(
            &format!("{}?taskId={}", routes::BACKUP_RECORDS, task.id),
            Some(&admin),
        )
        .await?
        .expect_ok()?;
    assert_eq!(list.total, 2);
    assert_eq!(
        list.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [second.id, done.id]
    );
    Ok(())
}

#[tokio::test]
async fn a_run_whose_agent_dies_fails_with_the_reason_once_the_lease_lapses() -> Result<()> {
    use stowage_tests::RawAgent;
    let server = Server::start_with(
        ServerOptions::default()
            .var("HEARTBEAT_SECS", 1)
            .var("POLL_SECS", 1)
            .var("LEASE_SECS", 3)
            .var("OFFLINE_AFTER_SECS", 3),
    )
    .await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let node: NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "doomed"}))
        .await?
        .expect_ok()?;
    // A stand-in for an agent that takes the run and is then killed (-9): it never reports.
    let raw = RawAgent::new(&server, node.token.expose());
    raw.heartbeat().await?.expect_ok::<serde_json::Value>()?;
    let dir = tempfile::tempdir()?;
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(&admin),
            &json!({"name": "here", "type": "local_disk", "config": {"basePath": dir.path()}}),
        )
        .await?
        .expect_ok()?;
    let task: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "etc", "type": "file", "nodeId": node.node.id, "sourcePaths": ["/etc"],
                    "storageTargetIds": [target.summary.id]}),
        )
        .await?
        .expect_ok()?;
    let record: BackupRecordOutput = server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?
        .expect_ok()?;
    // A second run while this one is going is refused.
    server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?
        .expect_error(409, "BACKUP_TASK_RUNNING")?;
    let claimed = raw.poll().await?.context("the run is handed out")?;
    assert!(
        matches!(claimed.spec, stowage_shared::protocol::CommandSpec::RunBackup { record_id, .. } if record_id == record.id)
    );

    let failed = server.settled(&admin, record.id, true).await?;
    assert_eq!(failed.status, "failed");
    assert!(failed.error.contains("lease expired"), "{failed:?}");
    assert!(failed.finished_at.is_some());
    assert_eq!(failed.targets[0].status, "failed");
    let after: BackupTaskOutput = server
        .get(&routes::backup_task(task.id), Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(after.last_status.map(|s| s.as_str()), Some("failed"));
    // The silent node is offline by now: a run is refused rather than queued.
    eventually(
        "the node to be offline",
        Duration::from_secs(20),
        || async {
            server.trigger_cron().await?;
            let reply = server
                .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
                .await?;
            Ok((reply.envelope.code.as_str() == "NODE_OFFLINE").then_some(()))
        },
    )
    .await?;
    // A run queued while the node was up, whose node then goes away before taking it, fails too.
    raw.heartbeat().await?.expect_ok::<serde_json::Value>()?;
    let queued: BackupRecordOutput = server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?
        .expect_ok()?;
    let dropped = server.settled(&admin, queued.id, true).await?;
    assert_eq!(dropped.status, "failed");
    assert!(dropped.error.contains("went offline"), "{dropped:?}");
    assert!(
        raw.poll().await?.is_none(),
        "the expired run is not handed out later"
    );
    Ok(())
}

#[tokio::test]
async fn the_tick_starts_one_run_per_fire_time_and_skips_while_one_is_going() -> Result<()> {
    use stowage_tests::RawAgent;
    let server = Server::start_with(
        ServerOptions::default()
            .var("HEARTBEAT_SECS", 1)
            .var("POLL_SECS", 1),
    )
    .await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let node: NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "box"}))
        .await?
        .expect_ok()?;
    // An agent that takes nothing, so that a started run stays running.
    let raw = RawAgent::new(&server, node.token.expose());
    let dir = tempfile::tempdir()?;
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(&admin),
            &json!({"name": "here", "type": "local_disk", "config": {"basePath": dir.path()}}),
        )
        .await?
        .expect_ok()?;
    let body = |cron: &str| {
        json!({"name": "yearly", "type": "file", "nodeId": node.node.id, "sourcePaths": ["/etc"],
               "storageTargetIds": [target.summary.id], "cronExpr": cron, "timeZone": "UTC"})
    };
    let task: BackupTaskOutput = server
        .post(routes::BACKUP_TASKS, Some(&admin), &body("0 0 1 1 *"))
        .await?
        .expect_ok()?;
    let tick = || async {
        raw.heartbeat().await?.expect_ok::<serde_json::Value>()?;
        server.trigger_cron().await
    };
    let records = || async {
        server
            .get(
                &format!("{}?taskId={}", routes::BACKUP_RECORDS, task.id),
                Some(&admin),
            )
            .await?
            .expect_ok::<Page<BackupRecordOutput>>()
            .map(|page| page.items)
    };

    // A new schedule never fires for the past: nothing is due yet.
    tick().await?;
    assert!(records().await?.is_empty());

    // As if the control plane had been down since mid-2025: the latest fire time runs, once.
    server.query(&format!(
        "UPDATE backup_tasks SET schedule_cursor = '2025-06-01T00:00:00.000Z' WHERE id = {}",
        task.id
    ))?;
    tick().await?;
    tick().await?;
    let list = records().await?;
    assert_eq!(list.len(), 1, "{list:?}");
    let run = &list[0];
    assert_eq!(
        (
            run.trigger.as_str(),
            run.fire_at.as_deref(),
            run.status.as_str()
        ),
        ("schedule", Some("2026-01-01T00:00:00.000Z"), "running")
    );
    assert_eq!(run.coalesced_slots, 0);

    // A fire time that comes while that run is still going is skipped, and the task says why.
    let changed: BackupTaskOutput = server
        .put(
            &routes::backup_task(task.id),
            Some(&admin),
            &body("0 0 2 1 *"),
        )
        .await?
        .expect_ok()?;
    assert_eq!(changed.last_skip, "");
    server.query(&format!(
        "UPDATE backup_tasks SET schedule_cursor = '2025-06-01T00:00:00.000Z' WHERE id = {}",
        task.id
    ))?;
    tick().await?;
    let after: BackupTaskOutput = server
        .get(&routes::backup_task(task.id), Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(
        after.last_skip,
        "2026-01-02T00:00:00.000Z: skipped, the previous run was still going"
    );
    tick().await?;
    assert_eq!(
        records().await?.len(),
        1,
        "a skipped fire time starts nothing later"
    );
    Ok(())
}
