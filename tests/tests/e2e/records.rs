//! What happens to a backup after its run, end to end through the real Worker, a real agent, a
//! local directory and a real S3 server: its live log as Server-Sent Events, retention removing
//! what the policy drops from every target, restores (to the original paths over changed sources,
//! to a chosen directory, and refused for a damaged artifact), and deletes.

use anyhow::{Context, Result, ensure};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use stowage_shared::api::{
    BackupRecordOutput, BackupTaskOutput, BatchDeleted, NodeWithToken, Page, RestoreRecordOutput,
    StorageTargetDetail, routes,
};
use stowage_shared::artifact::manifest_path;
use stowage_tests::{
    AgentProcess, Fleet, RcloneServer, Server, ServerOptions, eventually, snapshot,
};

async fn restored(server: &Server, admin: &str, id: i64) -> Result<RestoreRecordOutput> {
    eventually("the restore to end", Duration::from_secs(60), || async {
        let r: RestoreRecordOutput = server
            .get(&routes::restore_record(id), Some(admin))
            .await?
            .expect_ok()?;
        Ok((r.status != "running").then_some(r))
    })
    .await
}

fn set_mtime(path: &Path, secs: u64) -> Result<()> {
    std::fs::File::open(path)?.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))?;
    Ok(())
}

/// Sources with what restores get wrong: modes, times, symlinks, unicode names, empty dirs.
fn make_sources(root: &Path) -> Result<()> {
    std::fs::create_dir_all(root.join("empty"))?;
    std::fs::create_dir_all(root.join("Dokumente/報告"))?;
    std::fs::write(root.join("Dokumente/報告/überblick.txt"), "quarterly")?;
    std::fs::write(root.join("run.sh"), "#!/bin/sh\n")?;
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o750))?;
    std::fs::write(root.join("private.key"), "k")?;
    std::fs::set_permissions(
        root.join("private.key"),
        std::fs::Permissions::from_mode(0o600),
    )?;
    std::os::unix::fs::symlink("Dokumente/報告", root.join("latest"))?;
    std::fs::write(root.join("data.bin"), vec![42u8; 300_000])?;
    set_mtime(&root.join("run.sh"), 1_600_000_000)?;
    set_mtime(&root.join("Dokumente/報告"), 1_500_000_000)?;
    set_mtime(&root.join("empty"), 1_400_000_000)?;
    Ok(())
}

/// Changes every kind of thing a restore must put back.
fn damage_sources(root: &Path) -> Result<()> {
    std::fs::write(root.join("run.sh"), "rm -rf /")?;
    std::fs::set_permissions(
        root.join("private.key"),
        std::fs::Permissions::from_mode(0o666),
    )?;
    std::fs::remove_dir_all(root.join("Dokumente"))?;
    std::fs::remove_dir(root.join("empty"))?;
    std::fs::remove_file(root.join("latest"))?;
    std::fs::write(root.join("latest"), "a file where the link was")?;
    std::fs::write(root.join("data.bin"), "truncated")?;
    Ok(())
}

struct Setup {
    server: Server,
    admin: String,
    _agent: AgentProcess,
    node_id: i64,
    local: tempfile::TempDir,
    s3: RcloneServer,
    targets: [i64; 2],
}

impl Setup {
    async fn start() -> Result<Self> {
        let Fleet {
            server,
            admin,
            node,
            agent,
        } = Fleet::start("files").await?;
        let local = tempfile::tempdir()?;
        let s3 =
            RcloneServer::start("s3", &[("RCLONE_AUTH_KEY", "\"rec-key,rec-secret\"")]).await?;
        std::fs::create_dir(s3.data().join("bucket"))?;
        let mut targets = [0; 2];
        for (i, (kind, config)) in [
            ("local_disk", json!({"basePath": local.path()})),
            (
                "s3",
                json!({"endpoint": format!("http://127.0.0.1:{}", s3.port), "bucket": "bucket",
                       "accessKeyId": "rec-key", "secretAccessKey": "rec-secret",
                       "forcePathStyle": true}),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let t: StorageTargetDetail = server
                .post(
                    routes::STORAGE_TARGETS,
                    Some(&admin),
                    &json!({"name": kind, "type": kind, "config": config}),
                )
                .await?
                .expect_ok()?;
            targets[i] = t.summary.id;
        }
        Ok(Self {
            server,
            admin,
            _agent: agent,
            node_id: node.node.id,
            local,
            s3,
            targets,
        })
    }

    /// Where each target keeps an object.
    fn stored(&self, path: &str) -> [PathBuf; 2] {
        [
            self.local.path().join(path),
            self.s3.data().join("bucket").join(path),
        ]
    }

    async fn task(&self, name: &str, source: &Path, retention: serde_json::Value) -> Result<i64> {
        let task: BackupTaskOutput = self
            .server
            .post(
                routes::BACKUP_TASKS,
                Some(&self.admin),
                &json!({"name": name, "type": "file", "nodeId": self.node_id,
                        "sourcePaths": [source], "storageTargetIds": self.targets,
                        "retention": retention}),
            )
            .await?
            .expect_ok()?;
        Ok(task.id)
    }

    async fn run(&self, task: i64) -> Result<BackupRecordOutput> {
        let record: BackupRecordOutput = self
            .server
            .post(
                &routes::backup_task_run(task),
                Some(&self.admin),
                &json!({}),
            )
            .await?
            .expect_ok()?;
        let done = self.server.settled(&self.admin, record.id, false).await?;
        ensure!(done.status == "success", "{done:?}");
        Ok(done)
    }

    async fn restore(&self, record: i64, body: serde_json::Value) -> Result<RestoreRecordOutput> {
        let started = self
            .server
            .post(
                &routes::backup_record_restore(record),
                Some(&self.admin),
                &body,
            )
            .await?;
        ensure!(started.status == 201, "{}", started.raw);
        let r: RestoreRecordOutput = started.expect_ok()?;
        restored(&self.server, &self.admin, r.id).await
    }
}

#[tokio::test]
async fn live_logs_stream_in_order_and_end_with_the_status() -> Result<()> {
    let s = Setup::start().await?;
    let src = tempfile::tempdir()?;
    make_sources(&src.path().join("site"))?;
    let task = s
        .task("logged", &src.path().join("site"), json!({}))
        .await?;
    let done = s.run(task).await?;
    assert!(
        done.progress.is_none(),
        "a finished record shows no progress"
    );
    let detail_tail: Vec<String> = done.log_tail.iter().map(|l| l.message.clone()).collect();
    assert!(
        detail_tail.iter().any(|m| m.starts_with("finished: ")),
        "{detail_tail:?}"
    );

    let path = routes::backup_record_logs(done.id);
    let (status, kind, events) = s.server.read_log_stream(&path, &s.admin, None).await?;
    assert_eq!(status, 200);
    assert!(kind.is_some_and(|k| k.starts_with("text/event-stream")));
    let (logs, rest): (Vec<_>, Vec<_>) = events.iter().partition(|e| e.event == "log");
    let ids: Vec<u64> = logs.iter().filter_map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "in order, none missing"
    );
    assert!(ids.len() >= 4, "{events:?}");
    let first: stowage_shared::api::LogLine = serde_json::from_str(&logs[0].data)?;
    assert!(first.message.starts_with("backing up "), "{first:?}");
    let last = rest.last().context("an end event")?;
    assert_eq!(last.event, "end");
    assert_eq!(last.data, r#"{"status":"success"}"#);

    // A reconnect resumes after the last event it saw.
    let (_, _, resumed) = s.server.read_log_stream(&path, &s.admin, Some(2)).await?;
    assert_eq!(resumed.iter().find_map(|e| e.id), Some(3));
    assert_eq!(resumed.last().map(|e| e.event.as_str()), Some("end"));

    // A ticket opens only its own path, only for a GET, and is no bearer token.
    let ticket: stowage_shared::api::StreamTicket = s
        .server
        .post(
            routes::AUTH_STREAM_TICKET,
            Some(&s.admin),
            &json!({"path": path}),
        )
        .await?
        .expect_ok()?;
    let other = s
        .server
        .http()
        .get(format!(
            "{}?ticket={}",
            s.server.url(&routes::backup_record_logs(done.id + 1)),
            ticket.ticket
        ))
        .send()
        .await?;
    assert_eq!(other.status(), 401);
    s.server
        .get(&routes::backup_record(done.id), Some(&ticket.ticket))
        .await?
        .expect_error(401, "AUTH_INVALID_TOKEN")?;
    s.server
        .post(
            routes::AUTH_STREAM_TICKET,
            Some(&s.admin),
            &json!({"path": "/api/nodes"}),
        )
        .await?
        .expect_error(400, "INVALID_INPUT")?;
    s.server
        .get(&routes::backup_record_logs(done.id), None)
        .await?
        .expect_error(401, "AUTH_REQUIRED")?;

    // Live: a stream opened while a run goes shows its progress and ends when it does.
    let big = tempfile::tempdir()?;
    std::fs::File::create(big.path().join("disk.img"))?.set_len(4 << 30)?;
    let slow = s.task("slow", big.path(), json!({})).await?;
    let record: BackupRecordOutput = s
        .server
        .post(&routes::backup_task_run(slow), Some(&s.admin), &json!({}))
        .await?
        .expect_ok()?;
    let (_, _, live) = s
        .server
        .read_log_stream(&routes::backup_record_logs(record.id), &s.admin, None)
        .await?;
    let progress: Vec<stowage_shared::api::Progress> = live
        .iter()
        .filter(|e| e.event == "progress")
        .map(|e| serde_json::from_str(&e.data))
        .collect::<Result<_, _>>()?;
    assert!(!progress.is_empty(), "progress while it ran: {live:?}");
    assert!(
        progress
            .windows(2)
            .all(|w| w[0].source_bytes <= w[1].source_bytes),
        "{progress:?}"
    );
    assert_eq!(
        live.last().map(|e| e.data.as_str()),
        Some(r#"{"status":"success"}"#)
    );
    let ids: Vec<u64> = live.iter().filter_map(|e| e.id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn restores_put_back_the_tree_and_refuse_a_damaged_artifact() -> Result<()> {
    let s = Setup::start().await?;
    let src = tempfile::tempdir()?;
    let site = src.path().join("site");
    make_sources(&site)?;
    let original = snapshot(&site)?;
    let task = s.task("site", &site, json!({})).await?;
    let done = s.run(task).await?;

    // To the original paths, over sources changed in every way.
    damage_sources(&site)?;
    std::fs::write(
        site.join("added-later.txt"),
        "kept: a restore adds, never deletes",
    )?;
    let r = s.restore(done.id, json!({})).await?;
    assert_eq!(r.status, "success", "{r:?}");
    assert_eq!((r.files, r.target_path.as_str()), (done.files, ""));
    let mut back = snapshot(&site)?;
    assert!(back.remove(Path::new("added-later.txt")).is_some());
    assert_eq!(back, original, "the original tree is back");
    assert!(
        std::fs::read_dir(src.path())?.count() == 1,
        "no staging directory is left beside the source"
    );
    let (_, _, events) = s
        .server
        .read_log_stream(&routes::restore_record_logs(r.id), &s.admin, None)
        .await?;
    assert_eq!(
        events.last().map(|e| e.data.as_str()),
        Some(r#"{"status":"success"}"#)
    );
    assert!(events.iter().any(|e| e.data.contains("sha256 matched")));

    // To a chosen directory, from the S3 copy: the sources keep their full paths beneath it.
    let elsewhere = tempfile::tempdir()?;
    let r = s
        .restore(
            done.id,
            json!({"targetPath": elsewhere.path(), "storageTargetId": s.targets[1]}),
        )
        .await?;
    assert_eq!(r.status, "success", "{r:?}");
    let there = elsewhere.path().join(site.strip_prefix("/")?);
    assert_eq!(snapshot(&there)?, original);

    // On another node, from the shared S3 copy.
    let other: NodeWithToken = s
        .server
        .post(routes::NODES, Some(&s.admin), &json!({"name": "other"}))
        .await?
        .expect_ok()?;
    let _other_agent = AgentProcess::start(&s.server.base_url, other.token.expose())?;
    s.server.wait_online(&s.admin, other.node.id).await?;
    let third = tempfile::tempdir()?;
    let r = s
        .restore(
            done.id,
            json!({"targetPath": third.path(), "storageTargetId": s.targets[1],
                   "nodeId": other.node.id}),
        )
        .await?;
    assert_eq!(
        (r.status.as_str(), r.node_id),
        ("success", other.node.id),
        "{r:?}"
    );
    assert_eq!(
        snapshot(&third.path().join(site.strip_prefix("/")?))?,
        original
    );

    // A damaged copy is refused and the destination is left exactly as it was.
    damage_sources(&site)?;
    let before = snapshot(src.path())?;
    let [on_disk, _] = s.stored(&done.targets[0].path);
    let mut bytes = std::fs::read(&on_disk)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&on_disk, &bytes)?;
    let r = s
        .restore(done.id, json!({"storageTargetId": s.targets[0]}))
        .await?;
    assert_eq!(r.status, "failed");
    assert!(r.error.contains("nothing was restored"), "{r:?}");
    assert_eq!(
        snapshot(src.path())?,
        before,
        "the destination is untouched"
    );

    // Bad requests say what is wrong.
    for (body, status, code) in [
        (
            json!({"targetPath": "relative/dir"}),
            400,
            "RESTORE_TARGET_INVALID",
        ),
        (
            json!({"targetPath": "/srv/../etc"}),
            400,
            "RESTORE_TARGET_INVALID",
        ),
        (
            json!({"storageTargetId": 999}),
            400,
            "RESTORE_SOURCE_INVALID",
        ),
        (
            json!({"nodeId": 999, "storageTargetId": s.targets[1]}),
            404,
            "NODE_NOT_FOUND",
        ),
        (json!({"nodeId": 999}), 400, "RESTORE_SOURCE_INVALID"),
        (json!({"surprise": 1}), 400, "INVALID_INPUT"),
    ] {
        s.server
            .post(
                &routes::backup_record_restore(done.id),
                Some(&s.admin),
                &body,
            )
            .await?
            .expect_error(status, code)?;
    }
    s.server
        .post(
            &routes::backup_record_restore(9999),
            Some(&s.admin),
            &json!({}),
        )
        .await?
        .expect_error(404, "BACKUP_RECORD_NOT_FOUND")?;
    let list: Vec<RestoreRecordOutput> = s
        .server
        .get(
            &format!("{}?backupRecordId={}", routes::RESTORE_RECORDS, done.id),
            Some(&s.admin),
        )
        .await?
        .expect_ok()?;
    assert_eq!(
        list.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ["failed", "success", "success", "success"]
    );
    Ok(())
}

#[tokio::test]
async fn retention_and_deletes_remove_objects_from_every_target() -> Result<()> {
    let s = Setup::start().await?;
    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("f.txt"), "x")?;
    let task = s.task("kept", src.path(), json!({"keepLast": 2})).await?;
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(s.run(task).await?);
    }
    // The third run's retention drops the first backup on both targets, and marks its record.
    let first = eventually(
        "retention to remove run 1",
        Duration::from_secs(30),
        || async {
            let r: BackupRecordOutput = s
                .server
                .get(&routes::backup_record(runs[0].id), Some(&s.admin))
                .await?
                .expect_ok()?;
            Ok(r.removed_at.is_some().then_some(r))
        },
    )
    .await?;
    assert!(first.removal.starts_with("retention: "), "{first:?}");
    for copy in s.stored(&runs[0].targets[0].path) {
        assert!(!copy.exists(), "{copy:?} is gone");
        assert!(!PathBuf::from(manifest_path(&copy.to_string_lossy())).exists());
    }
    for run in &runs[1..] {
        for copy in s.stored(&run.targets[0].path) {
            assert!(copy.exists(), "{copy:?} is kept");
        }
    }
    s.server
        .post(
            &routes::backup_record_restore(runs[0].id),
            Some(&s.admin),
            &json!({}),
        )
        .await?
        .expect_error(400, "RESTORE_SOURCE_INVALID")?;

    // Filters and pages.
    let page: Page<BackupRecordOutput> = s
        .server
        .get(
            &format!(
                "{}?taskId={task}&status=success&pageSize=2&page=2",
                routes::BACKUP_RECORDS
            ),
            Some(&s.admin),
        )
        .await?
        .expect_ok()?;
    assert_eq!((page.total, page.items.len()), (3, 1));
    assert_eq!(page.items[0].id, runs[0].id, "newest first");
    let none: Page<BackupRecordOutput> = s
        .server
        .get(
            &format!(
                "{}?nodeId={}&dateFrom=2099-01-01T00:00:00Z",
                routes::BACKUP_RECORDS,
                s.node_id
            ),
            Some(&s.admin),
        )
        .await?
        .expect_ok()?;
    assert_eq!(none.total, 0);
    for bad in [
        "status=done",
        "dateFrom=yesterday",
        "pageSize=1000",
        "taskId=x",
    ] {
        s.server
            .get(&format!("{}?{bad}", routes::BACKUP_RECORDS), Some(&s.admin))
            .await?
            .expect_error(400, "BACKUP_RECORD_FILTER_INVALID")?;
    }

    // Delete one record: its objects go from both targets, then the record.
    let gone = s
        .server
        .delete(&routes::backup_record(runs[1].id), Some(&s.admin))
        .await?;
    assert_eq!(gone.status, 200, "{}", gone.raw);
    for copy in s.stored(&runs[1].targets[0].path) {
        assert!(!copy.exists(), "{copy:?} is gone");
    }
    s.server
        .get(&routes::backup_record(runs[1].id), Some(&s.admin))
        .await?
        .expect_error(404, "BACKUP_RECORD_NOT_FOUND")?;

    // A batch naming a record that does not exist deletes nothing.
    s.server
        .post(
            routes::BACKUP_RECORDS_BATCH_DELETE,
            Some(&s.admin),
            &json!({"ids": [runs[2].id, 99_999]}),
        )
        .await?
        .expect_error(404, "BACKUP_RECORD_NOT_FOUND")?;
    assert!(s.stored(&runs[2].targets[0].path)[0].exists());
    let batch: BatchDeleted = s
        .server
        .post(
            routes::BACKUP_RECORDS_BATCH_DELETE,
            Some(&s.admin),
            &json!({"ids": [runs[0].id, runs[2].id]}),
        )
        .await?
        .expect_ok()?;
    assert_eq!(batch.deleted, 2);
    for copy in s.stored(&runs[2].targets[0].path) {
        assert!(!copy.exists(), "{copy:?} is gone");
    }

    // Deleting the task with keepBackups=false removes its stored backups too.
    let last = s.run(task).await?;
    assert!(s.stored(&last.targets[0].path).iter().all(|p| p.exists()));
    s.server
        .delete(&routes::backup_task(task), Some(&s.admin))
        .await?
        .expect_error(400, "BACKUP_TASK_INVALID")?;
    let deleted = s
        .server
        .delete(
            &format!("{}?keepBackups=false", routes::backup_task(task)),
            Some(&s.admin),
        )
        .await?;
    assert_eq!(deleted.status, 200, "{}", deleted.raw);
    assert!(s.stored(&last.targets[0].path).iter().all(|p| !p.exists()));
    let left: Page<BackupRecordOutput> = s
        .server
        .get(routes::BACKUP_RECORDS, Some(&s.admin))
        .await?
        .expect_ok()?;
    assert_eq!(left.total, 0);
    Ok(())
}

#[tokio::test]
async fn a_run_whose_real_agent_is_killed_fails_after_the_lease_and_leaves_no_artifact()
-> Result<()> {
    let server = Server::start_with(
        ServerOptions::default()
            .var("HEARTBEAT_SECS", 1)
            .var("POLL_SECS", 1)
            .var("LEASE_SECS", 4)
            .var("OFFLINE_AFTER_SECS", 4),
    )
    .await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let node: NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "doomed"}))
        .await?
        .expect_ok()?;
    let agent = AgentProcess::start(&server.base_url, node.token.expose())?;
    server.wait_online(&admin, node.node.id).await?;
    // A large sparse file: minutes of work, so the run is surely going when the agent dies.
    let src = tempfile::tempdir()?;
    std::fs::File::create(src.path().join("huge.img"))?.set_len(200 << 30)?;
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
            &json!({"name": "huge", "type": "file", "nodeId": node.node.id,
                    "sourcePaths": [src.path()], "storageTargetIds": [target.summary.id]}),
        )
        .await?
        .expect_ok()?;
    let record: BackupRecordOutput = server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?
        .expect_ok()?;
    // Kill it once the record shows data flowing.
    let progress = eventually(
        "progress from the agent",
        Duration::from_secs(60),
        || async {
            let r: BackupRecordOutput = server
                .get(&routes::backup_record(record.id), Some(&admin))
                .await?
                .expect_ok()?;
            Ok(r.progress.filter(|p| p.source_bytes > 0 || p.bytes > 0))
        },
    )
    .await?;
    assert!(progress.elapsed_ms > 0);
    agent.signal(nix::sys::signal::Signal::SIGKILL)?;

    let failed = server.settled(&admin, record.id, true).await?;
    assert_eq!(failed.status, "failed");
    assert!(failed.error.contains("lease expired"), "{failed:?}");
    assert!(
        !dir.path().join(&record.targets[0].path).exists(),
        "no artifact is left where a whole one would be"
    );
    Ok(())
}

/// Bytes zstd cannot shrink, so the artifact spans many relay chunks.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn downloads_stream_the_artifact_from_every_kind_of_target() -> Result<()> {
    use sha2::{Digest, Sha256};
    let s = Setup::start().await?;
    let dav =
        RcloneServer::start("webdav", &[("RCLONE_USER", "u"), ("RCLONE_PASS", "dav-pw")]).await?;
    let webdav: StorageTargetDetail = s
        .server
        .post(
            routes::STORAGE_TARGETS,
            Some(&s.admin),
            &json!({"name": "dav", "type": "webdav", "config": {
                "endpoint": format!("http://127.0.0.1:{}", dav.port),
                "username": "u", "password": "dav-pw"}}),
        )
        .await?
        .expect_ok()?;
    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("noise.bin"), noise(9 << 20))?;
    let task: BackupTaskOutput = s
        .server
        .post(
            routes::BACKUP_TASKS,
            Some(&s.admin),
            &json!({"name": "dl", "type": "file", "nodeId": s.node_id, "sourcePaths": [src.path()],
                    "storageTargetIds": [s.targets[0], s.targets[1], webdav.summary.id]}),
        )
        .await?
        .expect_ok()?;
    let done = s.run(task.id).await?;
    assert!(done.bytes > 9 << 20, "{done:?}");

    // Like a browser link: no header, a ticket for this one path, no redirects followed.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let fetch = |query: String| {
        let browser = browser.clone();
        let server = &s.server;
        let admin = s.admin.clone();
        async move {
            let path = routes::backup_record_download(done.id);
            let ticket: stowage_shared::api::StreamTicket = server
                .post(
                    routes::AUTH_STREAM_TICKET,
                    Some(&admin),
                    &json!({"path": path}),
                )
                .await?
                .expect_ok()?;
            let url = format!("{}?ticket={}{query}", server.url(&path), ticket.ticket);
            anyhow::Ok(browser.get(url).send().await?)
        }
    };
    let check = |bytes: &[u8]| -> Result<()> {
        ensure!(bytes.len() as u64 == done.bytes, "{} bytes", bytes.len());
        ensure!(
            hex::encode(Sha256::digest(bytes)) == done.checksum,
            "checksum"
        );
        let out = tempfile::tempdir()?;
        tar::Archive::new(zstd::decode_all(bytes)?.as_slice()).unpack(out.path())?;
        let back = out
            .path()
            .join(src.path().strip_prefix("/")?)
            .join("noise.bin");
        ensure!(std::fs::read(back)? == noise(9 << 20), "contents");
        Ok(())
    };

    // A node's own disk and WebDAV are relayed by the agent, in order and whole.
    for (target, query) in [
        (s.targets[0], String::new()),
        (
            webdav.summary.id,
            format!("&storageTargetId={}", webdav.summary.id),
        ),
        (
            s.targets[1],
            format!("&storageTargetId={}&via=agent", s.targets[1]),
        ),
    ] {
        let resp = fetch(query).await?;
        assert_eq!(resp.status(), 200, "target {target}");
        let disposition = resp
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(disposition.contains(".tar.zst"), "{disposition}");
        check(&resp.bytes().await?).with_context(|| format!("target {target}"))?;
    }

    // S3 answers with a presigned link straight to the bucket.
    let resp = fetch(format!("&storageTargetId={}", s.targets[1])).await?;
    assert_eq!(resp.status(), 302);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("a Location")?
        .to_owned();
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert!(!location.contains("rec-secret"));
    let from_bucket = browser.get(&location).send().await?;
    assert_eq!(from_bucket.status(), 200, "{location}");
    check(&from_bucket.bytes().await?)?;

    // An unknown copy is a clear 400, and viewers may not take the backups away.
    let wrong = s
        .server
        .get(
            &format!(
                "{}?storageTargetId=999",
                routes::backup_record_download(done.id)
            ),
            Some(&s.admin),
        )
        .await?;
    wrong.expect_error(400, "RESTORE_SOURCE_INVALID")?;
    s.server.query("UPDATE users SET role = 'viewer'")?;
    s.server
        .get(&routes::backup_record_download(done.id), Some(&s.admin))
        .await?
        .expect_error(403, "AUTH_FORBIDDEN")?;
    Ok(())
}

#[tokio::test]
async fn partial_runs_never_push_out_the_last_complete_copy() -> Result<()> {
    let s = Setup::start().await?;
    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("f.txt"), "x")?;
    let task = s
        .task("partial", src.path(), json!({"keepLast": 2}))
        .await?;
    let complete = s.run(task).await?;
    // From now on S3 refuses every upload (a wrong key, sent again as the binding rule wants).
    s.server
        .put(
            &routes::storage_target(s.targets[1]),
            Some(&s.admin),
            &json!({"name": "s3", "type": "s3", "config": {
                "endpoint": format!("http://127.0.0.1:{}", s.s3.port), "bucket": "bucket",
                "accessKeyId": "rec-key", "secretAccessKey": "not-the-secret",
                "forcePathStyle": true}}),
        )
        .await?
        .expect_ok::<StorageTargetDetail>()?;
    let mut partial = Vec::new();
    for _ in 0..3 {
        let started: BackupRecordOutput = s
            .server
            .post(&routes::backup_task_run(task), Some(&s.admin), &json!({}))
            .await?
            .expect_ok()?;
        let done = s.server.settled(&s.admin, started.id, false).await?;
        assert_eq!(done.status, "partial", "{done:?}");
        partial.push(done);
    }
    // The oldest partial run goes (partial runs do not pile up)...
    eventually(
        "retention to remove the oldest partial run",
        Duration::from_secs(30),
        || async {
            let r: BackupRecordOutput = s
                .server
                .get(&routes::backup_record(partial[0].id), Some(&s.admin))
                .await?
                .expect_ok()?;
            Ok(r.removed_at.is_some().then_some(r))
        },
    )
    .await?;
    // ...but the complete run, the only copy on S3, stays on both targets.
    let first: BackupRecordOutput = s
        .server
        .get(&routes::backup_record(complete.id), Some(&s.admin))
        .await?
        .expect_ok()?;
    assert!(
        first.removal.is_empty() && first.removed_at.is_none(),
        "{first:?}"
    );
    for copy in s.stored(&complete.targets[0].path) {
        assert!(copy.exists(), "{copy:?} is kept");
    }
    Ok(())
}

#[tokio::test]
async fn a_target_holding_backups_is_deleted_only_when_told_what_happens_to_them() -> Result<()> {
    let s = Setup::start().await?;
    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("f.txt"), "x")?;
    let task = s.task("held", src.path(), json!({})).await?;
    let run = s.run(task).await?;
    s.server
        .delete(
            &format!("{}?keepBackups=true", routes::backup_task(task)),
            Some(&s.admin),
        )
        .await?
        .expect_ok::<serde_json::Value>()?;
    let [on_disk, on_s3] = s.stored(&run.targets[0].path);
    // Unsaid: refused, with the count.
    let refused = s
        .server
        .delete(&routes::storage_target(s.targets[1]), Some(&s.admin))
        .await?;
    refused.expect_error(409, "STORAGE_TARGET_HAS_BACKUPS")?;
    assert!(
        refused.envelope.message.starts_with("1 backup"),
        "{}",
        refused.raw
    );
    assert!(on_s3.exists());
    // Said: the copies on that target go first, the record keeps its other copy.
    s.server
        .delete(
            &format!(
                "{}?deleteBackups=true",
                routes::storage_target(s.targets[1])
            ),
            Some(&s.admin),
        )
        .await?
        .expect_ok::<serde_json::Value>()?;
    assert!(!on_s3.exists() && on_disk.exists());
    let after: BackupRecordOutput = s
        .server
        .get(&routes::backup_record(run.id), Some(&s.admin))
        .await?
        .expect_ok()?;
    assert_eq!(after.targets.len(), 1, "{after:?}");
    assert!(after.removed_at.is_none());
    // The last copy's target too: the record says it has nothing stored any more.
    s.server
        .delete(
            &format!(
                "{}?deleteBackups=true",
                routes::storage_target(s.targets[0])
            ),
            Some(&s.admin),
        )
        .await?
        .expect_ok::<serde_json::Value>()?;
    assert!(!on_disk.exists());
    let gone: BackupRecordOutput = s
        .server
        .get(&routes::backup_record(run.id), Some(&s.admin))
        .await?
        .expect_ok()?;
    assert!(gone.removed_at.is_some(), "{gone:?}");
    assert!(
        gone.removal.contains("storage target was deleted"),
        "{gone:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_relayed_download_that_is_still_read_is_never_purged() -> Result<()> {
    use sha2::{Digest, Sha256};
    let s = Setup::start().await?;
    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("noise.bin"), noise(9 << 20))?;
    let task: BackupTaskOutput = s
        .server
        .post(
            routes::BACKUP_TASKS,
            Some(&s.admin),
            &json!({"name": "slow", "type": "file", "nodeId": s.node_id, "sourcePaths": [src.path()],
                    "storageTargetIds": [s.targets[0]]}),
        )
        .await?
        .expect_ok()?;
    let done = s.run(task.id).await?;
    // The node's own disk: relayed through the agent, chunk by chunk.
    let mut resp = s
        .server
        .http()
        .get(s.server.url(&routes::backup_record_download(done.id)))
        .bearer_auth(&s.admin)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let mut body = resp.chunk().await?.context("a first piece")?.to_vec();
    // The download is older than the purge age now, but it is being read: the tick keeps it.
    s.server
        .query("UPDATE relays SET created_at = '2000-01-01T00:00:00.000Z'")?;
    s.server.trigger_cron().await?;
    while let Some(piece) = resp.chunk().await? {
        body.extend_from_slice(&piece);
    }
    assert_eq!(body.len() as u64, done.bytes, "the whole artifact arrived");
    assert_eq!(hex::encode(Sha256::digest(&body)), done.checksum);
    // Once it is over, its chunks are gone at once.
    assert_eq!(
        s.server.query("SELECT count(*) AS n FROM relay_chunks")?[0]["n"],
        0
    );
    Ok(())
}
