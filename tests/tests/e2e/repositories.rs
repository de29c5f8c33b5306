//! Repository tasks end to end: the real Worker hands runs to a real agent, which writes
//! snapshots into each target's restic repository (a local directory and a real S3 server);
//! Debian's `restic`, given only the recovery kit, lists, checks and restores them. Then Stowage's
//! own restores (selected paths, original paths), retention and deletes (forget), and the rule
//! that the repository password shows up nowhere but in the kit.

use anyhow::{Context, Result, ensure};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use stowage_shared::api::{
    BackupRecordOutput, BackupTaskOutput, RestoreRecordOutput, StorageTargetDetail, routes,
};
use stowage_shared::recovery::RecoveryKit;
use stowage_tests::{Fleet, RcloneServer, Server, eventually, snapshot};

const ADMIN_PASSWORD: &str = "correct horse battery";

/// `restic` on a repository directory, with the password in a 0600 file (never an argument).
fn restic(repo: &Path, password: &str, args: &[&str]) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pass");
    std::fs::write(&file, password)?;
    let out = Command::new("restic")
        .arg("--repo")
        .arg(repo)
        .arg("--password-file")
        .arg(&file)
        .arg("--no-cache")
        .args(args)
        .output()
        .context("restic is not installed (scripts/install.sh installs Debian's restic)")?;
    ensure!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn snapshot_ids(repo: &Path, password: &str) -> Result<Vec<String>> {
    let listed: serde_json::Value =
        serde_json::from_str(&restic(repo, password, &["snapshots", "--json"])?)?;
    Ok(listed
        .as_array()
        .context("snapshots")?
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect())
}

async fn run(server: &Server, admin: &str, task: i64) -> Result<BackupRecordOutput> {
    let started = server
        .post(&routes::backup_task_run(task), Some(admin), &json!({}))
        .await?;
    ensure!(started.status == 201, "{}", started.raw);
    let record: BackupRecordOutput = started.expect_ok()?;
    server.settled(admin, record.id, false).await
}

async fn restore(
    server: &Server,
    admin: &str,
    record: i64,
    body: serde_json::Value,
) -> Result<RestoreRecordOutput> {
    let started = server
        .post(&routes::backup_record_restore(record), Some(admin), &body)
        .await?;
    ensure!(started.status == 201, "{}", started.raw);
    let r: RestoreRecordOutput = started.expect_ok()?;
    eventually("the restore to end", Duration::from_secs(60), || async {
        let r: RestoreRecordOutput = server
            .get(&routes::restore_record(r.id), Some(admin))
            .await?
            .expect_ok()?;
        Ok((r.status != "running").then_some(r))
    })
    .await
}

fn write_tree(root: &Path) -> Result<()> {
    std::fs::create_dir_all(root.join("docs/reports"))?;
    std::fs::create_dir_all(root.join("media"))?;
    std::fs::write(root.join("docs/readme.txt"), "hello\n")?;
    std::fs::write(root.join("docs/reports/q1.csv"), "a,b\n1,2\n")?;
    // Incompressible, so that dedup (not compression) is what keeps the second run small.
    let mut noise = vec![0u8; 3 << 20];
    let mut x = 0x9e37_79b9_u32;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(root.join("media/big.bin"), &noise)?;
    std::fs::write(root.join("media/cache.tmp"), "left out")?;
    Ok(())
}

/// A file or folder of record `record`'s snapshot through `GET …/download?path=…` (from
/// `target` when given): the status, the attachment header and the body.
async fn export(
    server: &Server,
    admin: &str,
    record: i64,
    (path, target): (&str, Option<i64>),
) -> Result<(u16, String, Vec<u8>)> {
    let mut query = vec![("path", path.to_owned())];
    query.extend(target.map(|t| ("storageTargetId", t.to_string())));
    let resp = reqwest::Client::new()
        .get(server.url(&routes::backup_record_download(record)))
        .query(&query)
        .bearer_auth(admin)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let name = resp
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((status, name, resp.bytes().await?.to_vec()))
}

/// Two trees are the same, or the error names the entries that differ (not their bytes).
fn same_tree(
    got: &std::collections::BTreeMap<PathBuf, stowage_tests::TreeEntry>,
    want: &std::collections::BTreeMap<PathBuf, stowage_tests::TreeEntry>,
) -> Result<()> {
    let differ: Vec<String> = got
        .keys()
        .chain(want.keys())
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| {
            let show = |e: Option<&stowage_tests::TreeEntry>| {
                e.map(|e| format!("{} {:o} {} {}B", e.kind, e.mode, e.mtime, e.body.len()))
            };
            format!(
                "{}: got {:?}, want {:?}",
                k.display(),
                show(got.get(k)),
                show(want.get(k))
            )
        })
        .collect();
    ensure!(differ.is_empty(), "the trees differ: {differ:#?}");
    Ok(())
}

#[tokio::test]
async fn repository_runs_dedup_and_plain_restic_reads_them() -> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent,
    } = Fleet::start("nas-1").await?;
    let work = tempfile::tempdir()?;
    let src = work.path().join("data");
    write_tree(&src)?;
    let local = work.path().join("local-target");
    let s3 = RcloneServer::start("s3", &[("RCLONE_AUTH_KEY", "\"repo-key,repo-secret\"")]).await?;
    std::fs::create_dir(s3.data().join("bucket"))?;
    let mut targets = Vec::new();
    for (name, kind, config) in [
        ("nas-disk", "local_disk", json!({"basePath": local})),
        (
            "s3",
            "s3",
            json!({"endpoint": format!("http://127.0.0.1:{}", s3.port), "bucket": "bucket",
                   "accessKeyId": "repo-key", "secretAccessKey": "repo-secret",
                   "forcePathStyle": true, "prefix": "nightly"}),
        ),
    ] {
        let t: StorageTargetDetail = server
            .post(
                routes::STORAGE_TARGETS,
                Some(&admin),
                &json!({"name": name, "type": kind, "config": config}),
            )
            .await?
            .expect_ok()?;
        targets.push(t.summary.id);
    }
    // Where plain restic finds each repository: the S3 server keeps objects as files.
    let repos = [
        local.join("restic"),
        s3.data().join("bucket/nightly/restic"),
    ];

    // No kit before the first repository run: there is nothing to open yet.
    server
        .post(
            &routes::storage_target_recovery_kit(targets[0]),
            Some(&admin),
            &json!({"currentPassword": ADMIN_PASSWORD}),
        )
        .await?
        .expect_error(409, "STORAGE_REPOSITORY_MISSING")?;

    // The format is checked.
    server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "bad", "type": "file", "nodeId": node.node.id, "format": "zip",
                    "sourcePaths": [src], "storageTargetIds": [targets[0]]}),
        )
        .await?
        .expect_error(400, "BACKUP_TASK_INVALID")?;
    let task: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "NAS data", "type": "file", "nodeId": node.node.id,
                    "format": "repository", "sourcePaths": [src], "excludePatterns": ["*.tmp"],
                    "storageTargetIds": targets}),
        )
        .await?
        .expect_ok()?;
    assert_eq!(task.format, "repository");

    let first = run(&server, &admin, task.id).await?;
    assert_eq!(first.status, "success", "{first:?}");
    assert_eq!(first.format, "repository");
    assert_eq!(first.files, 3, "{first:?}");
    assert!(first.checksum.is_empty());
    let changes = first
        .changes
        .context("a repository run reports its changes")?;
    assert_eq!((changes.files_new, changes.files_changed), (3, 0));
    for t in &first.targets {
        assert_eq!(t.path, "restic");
        assert_eq!(t.snapshot_id.len(), 64, "{t:?}");
        // Encrypted and compressed: the random 3 MiB file is most of it.
        assert!(t.bytes > 3_000_000, "{t:?}");
    }

    // Change one small file: the second run adds next to nothing.
    std::fs::write(src.join("docs/readme.txt"), "hello again\n")?;
    let second = run(&server, &admin, task.id).await?;
    let changes = second.changes.context("changes")?;
    assert_eq!(
        (
            changes.files_new,
            changes.files_changed,
            changes.files_unmodified
        ),
        (0, 1, 2),
        "{second:?}"
    );
    for t in &second.targets {
        assert!(
            t.bytes < 50_000,
            "a one-line change added {} bytes",
            t.bytes
        );
    }
    std::fs::write(src.join("docs/reports/q2.csv"), "c,d\n3,4\n")?;
    // A name that is not ASCII, which a download's header must carry all the same.
    std::fs::write(src.join("docs/Übersicht – 2026.txt"), "ü\n")?;
    let third = run(&server, &admin, task.id).await?;
    assert_eq!(third.status, "success", "{third:?}");

    // The recovery kit: the current password is required (and checked), and it is audited.
    server
        .post(
            &routes::storage_target_recovery_kit(targets[1]),
            Some(&admin),
            &json!({"currentPassword": "not my password"}),
        )
        .await?
        .expect_error(400, "AUTH_WRONG_PASSWORD")?;
    let kits: Vec<RecoveryKit> = {
        let mut kits = Vec::new();
        for id in &targets {
            kits.push(
                server
                    .post(
                        &routes::storage_target_recovery_kit(*id),
                        Some(&admin),
                        &json!({"currentPassword": ADMIN_PASSWORD}),
                    )
                    .await?
                    .expect_ok()?,
            );
        }
        kits
    };
    assert_eq!(kits[0].repository, repos[0].display().to_string());
    assert_eq!(
        kits[1].repository,
        format!("s3:http://127.0.0.1:{}/bucket/nightly/restic", s3.port)
    );
    assert_ne!(kits[0].password.expose(), kits[1].password.expose());
    assert!(!serde_json::to_string(&kits[1])?.contains("repo-secret"));

    // Plain restic: three snapshots on each target, with Stowage's tags, a clean check with
    // every byte read, and the latest restored equal to the source (without the excluded file).
    for (repo, kit) in repos.iter().zip(&kits) {
        let ids = snapshot_ids(repo, kit.password.expose())?;
        assert_eq!(ids.len(), 3, "{}", repo.display());
        let tagged = restic(
            repo,
            kit.password.expose(),
            &["snapshots", "--tag", &format!("task-{}", task.id), "--json"],
        )?;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&tagged)?
                .as_array()
                .map(Vec::len),
            Some(3)
        );
        restic(repo, kit.password.expose(), &["check", "--read-data"])?;
    }
    let by_restic = work.path().join("by-restic");
    let latest = &third.targets[1].snapshot_id;
    restic(
        &repos[1],
        kits[1].password.expose(),
        &[
            "restore",
            latest,
            "--target",
            &by_restic.display().to_string(),
        ],
    )?;
    let mut expected = snapshot(&src)?;
    expected.remove(Path::new("media/cache.tmp"));
    let relative = src.strip_prefix("/")?;
    same_tree(&snapshot(&by_restic.join(relative))?, &expected)?;

    // Browsing the snapshot through the agent: the source's folders, a file's size, and the
    // errors of a path that is not there or not absolute.
    let listing: stowage_shared::api::FsListing = server
        .get(
            &format!(
                "{}?path={}",
                routes::backup_record_files(third.id),
                src.display()
            ),
            Some(&admin),
        )
        .await?
        .expect_ok()?;
    let names: Vec<(&str, bool)> = listing
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.is_dir))
        .collect();
    assert_eq!(names, [("docs", true), ("media", true)], "{listing:?}");
    let media: stowage_shared::api::FsListing = server
        .get(
            &format!(
                "{}?path={}/media&storageTargetId={}",
                routes::backup_record_files(third.id),
                src.display(),
                targets[1]
            ),
            Some(&admin),
        )
        .await?
        .expect_ok()?;
    assert_eq!(
        media.entries.len(),
        1,
        "the excluded file is not there: {media:?}"
    );
    assert_eq!(
        (media.entries[0].name.as_str(), media.entries[0].size),
        ("big.bin", 3 << 20)
    );
    server
        .get(
            &format!(
                "{}?path={}/nowhere",
                routes::backup_record_files(third.id),
                src.display()
            ),
            Some(&admin),
        )
        .await?
        .expect_error(404, "NODE_FS_NOT_FOUND")?;
    server
        .get(
            &format!(
                "{}?path=relative/path",
                routes::backup_record_files(third.id)
            ),
            Some(&admin),
        )
        .await?
        .expect_error(400, "NODE_FS_PATH_INVALID")?;

    // Stowage's selective restore of one folder into a chosen directory, from the S3 copy.
    let chosen = work.path().join("chosen");
    std::fs::create_dir(&chosen)?;
    let part = restore(
        &server,
        &admin,
        third.id,
        json!({"targetPath": chosen, "storageTargetId": targets[1],
               "selectedPaths": [src.join("docs/reports")]}),
    )
    .await?;
    assert_eq!(part.status, "success", "{part:?}");
    let got = snapshot(&chosen.join(relative))?;
    let want: Vec<PathBuf> = vec![
        "docs".into(),
        "docs/reports".into(),
        "docs/reports/q1.csv".into(),
        "docs/reports/q2.csv".into(),
    ];
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), want);
    assert_eq!(got[Path::new("docs/reports/q2.csv")].body, b"c,d\n3,4\n");

    // An archive cannot restore selected paths; a path outside the snapshot fails the restore.
    let outside = restore(
        &server,
        &admin,
        third.id,
        json!({"targetPath": chosen, "selectedPaths": ["/not/in/it"]}),
    )
    .await?;
    assert_eq!(outside.status, "failed");
    assert!(
        outside.error.contains("is not in the snapshot"),
        "{outside:?}"
    );
    server
        .post(
            &routes::backup_record_restore(third.id),
            Some(&admin),
            &json!({"selectedPaths": ["relative/path"]}),
        )
        .await?
        .expect_error(400, "RESTORE_TARGET_INVALID")?;
    // A snapshot is not one file to download...
    server
        .get(&routes::backup_record_download(third.id), Some(&admin))
        .await?
        .expect_error(400, "BACKUP_RECORD_NOT_DOWNLOADABLE")?;
    // ...but a file of it downloads as it is, and a folder as a tar that plain `tar` unpacks,
    // read out of the repository by the agent and relayed (from the S3 copy: never a
    // presigned link, the bucket holds only encrypted packs).
    let (status, name, body) = export(
        &server,
        &admin,
        third.id,
        (
            &format!("{}/media/big.bin", src.display()),
            Some(targets[1]),
        ),
    )
    .await?;
    assert_eq!(status, 200);
    assert!(
        name.starts_with("attachment; filename=\"big.bin\""),
        "{name}"
    );
    assert!(
        body == expected[Path::new("media/big.bin")].body,
        "the downloaded file differs from the source ({} bytes)",
        body.len()
    );
    let (status, name, body) = export(
        &server,
        &admin,
        third.id,
        (
            &format!("{}/docs/Übersicht – 2026.txt", src.display()),
            None,
        ),
    )
    .await?;
    assert_eq!((status, body.as_slice()), (200, "ü\n".as_bytes()));
    assert!(
        name.ends_with("filename*=UTF-8''%C3%9Cbersicht%20%E2%80%93%202026%2Etxt"),
        "{name}"
    );
    let (status, name, body) = export(
        &server,
        &admin,
        third.id,
        (&format!("{}/docs", src.display()), None),
    )
    .await?;
    assert_eq!(status, 200);
    assert!(
        name.starts_with("attachment; filename=\"docs.tar\""),
        "{name}"
    );
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked)?;
    let mut tar = std::process::Command::new("tar")
        .args(["-x", "-f", "-", "-C"])
        .arg(&unpacked)
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(tar.stdin.as_mut().context("stdin")?, &body)?;
    drop(tar.stdin.take());
    assert!(tar.wait()?.success(), "tar could not unpack the folder");
    let docs: std::collections::BTreeMap<PathBuf, stowage_tests::TreeEntry> = expected
        .iter()
        .filter(|(k, _)| k.starts_with("docs"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    same_tree(&snapshot(&unpacked)?, &docs)?;
    let (status, _, body) = export(
        &server,
        &admin,
        third.id,
        (&format!("{}/nowhere", src.display()), None),
    )
    .await?;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("is not in the snapshot"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, _) = export(&server, &admin, third.id, ("docs", None)).await?;
    assert_eq!(status, 400, "a relative path is refused");

    // Whole restore to the original paths, after the source was damaged: back as it was.
    std::fs::remove_dir_all(src.join("docs"))?;
    std::fs::write(src.join("media/big.bin"), "ransomed")?;
    use std::os::unix::fs::MetadataExt;
    let host_dirs = |p: &Path| -> Result<(u32, i64)> {
        let m = std::fs::metadata(p)?;
        Ok((m.mode() & 0o7777, m.mtime()))
    };
    let (tmp_before, parent_before) = (host_dirs(Path::new("/tmp"))?, host_dirs(work.path())?);
    let back = restore(&server, &admin, third.id, json!({})).await?;
    assert_eq!(back.status, "success", "{back:?}");
    // The directories above the source are the host's, not the backup's: untouched.
    assert_eq!(
        host_dirs(Path::new("/tmp"))?.0,
        tmp_before.0,
        "/tmp's mode changed"
    );
    assert_eq!(
        host_dirs(work.path())?.0,
        parent_before.0,
        "the source's parent changed"
    );
    let mut now = snapshot(&src)?;
    now.remove(Path::new("media/cache.tmp"));
    same_tree(&now, &expected)?;

    // Retention keeps the newest run: the older two snapshots are forgotten on both targets.
    let body = json!({"name": task.name, "type": "file", "nodeId": node.node.id,
        "format": "repository", "sourcePaths": [src], "excludePatterns": ["*.tmp"],
        "storageTargetIds": targets, "retention": {"keepLast": 1}});
    server
        .put(&routes::backup_task(task.id), Some(&admin), &body)
        .await?
        .expect_ok::<BackupTaskOutput>()?;
    let fourth = run(&server, &admin, task.id).await?;
    assert_eq!(fourth.status, "success");
    eventually(
        "retention to forget the older snapshots",
        Duration::from_secs(60),
        || async {
            let left: Vec<Vec<String>> = repos
                .iter()
                .zip(&kits)
                .map(|(r, k)| snapshot_ids(r, k.password.expose()))
                .collect::<Result<_>>()?;
            Ok(left.iter().all(|ids| ids.len() == 1).then_some(left))
        },
    )
    .await?;
    for (i, (repo, kit)) in repos.iter().zip(&kits).enumerate() {
        assert_eq!(
            snapshot_ids(repo, kit.password.expose())?,
            [fourth.targets[i].snapshot_id.clone()]
        );
        restic(repo, kit.password.expose(), &["check"])?;
    }
    // Deleting the kept record forgets its snapshots too.
    server
        .delete(&routes::backup_record(fourth.id), Some(&admin))
        .await?
        .expect_ok::<serde_json::Value>()?;
    for (repo, kit) in repos.iter().zip(&kits) {
        assert!(snapshot_ids(repo, kit.password.expose())?.is_empty());
    }

    // The repository passwords: in no answer but the kit, no log, no process's arguments or
    // environment, and not in D1 in the clear.
    let mut seen = String::new();
    for path in [
        routes::backup_task(task.id),
        routes::backup_record(third.id),
        routes::storage_target(targets[0]),
        routes::storage_target(targets[1]),
        routes::restore_record(back.id),
    ] {
        seen.push_str(&server.get(&path, Some(&admin)).await?.raw);
    }
    seen.push_str(&server.log());
    seen.push_str(&agent.log());
    for table in [
        "storage_targets",
        "agent_commands",
        "backup_records",
        "backup_record_targets",
        "run_logs",
        "audit_logs",
    ] {
        seen.push_str(&serde_json::to_string(
            &server.query(&format!("SELECT * FROM {table}"))?,
        )?);
    }
    let pid = agent.pid();
    seen.push_str(&String::from_utf8_lossy(&std::fs::read(format!(
        "/proc/{pid}/cmdline"
    ))?));
    seen.push_str(&String::from_utf8_lossy(&std::fs::read(format!(
        "/proc/{pid}/environ"
    ))?));
    for kit in &kits {
        assert!(
            !seen.contains(kit.password.expose()),
            "a repository password leaked"
        );
    }
    let audited = server.query(
        "SELECT count(*) AS n FROM audit_logs WHERE action = 'storage_target.recovery_kit' AND result = 'success'",
    )?;
    assert_eq!(audited[0]["n"], 2, "{audited:?}");
    Ok(())
}

#[tokio::test]
async fn two_nodes_back_up_into_one_repository_at_once() -> Result<()> {
    let fleet = Fleet::start("node-a").await?;
    let (node_b, _agent_b) = fleet.enrol("node-b").await?;
    let (server, admin) = (&fleet.server, fleet.admin.as_str());
    let s3 = RcloneServer::start("s3", &[("RCLONE_AUTH_KEY", "\"two-key,two-secret\"")]).await?;
    std::fs::create_dir(s3.data().join("bucket"))?;
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(admin),
            &json!({"name": "shared", "type": "s3", "config": {
                "endpoint": format!("http://127.0.0.1:{}", s3.port), "bucket": "bucket",
                "accessKeyId": "two-key", "secretAccessKey": "two-secret", "forcePathStyle": true}}),
        )
        .await?
        .expect_ok()?;
    // The same large file on both hosts: stored once.
    let work = tempfile::tempdir()?;
    let mut tasks = Vec::new();
    for (name, node) in [("a", fleet.node.node.id), ("b", node_b.node.id)] {
        let src = work.path().join(name);
        write_tree(&src)?;
        std::fs::write(src.join(format!("only-on-{name}.txt")), name)?;
        let task: BackupTaskOutput = server
            .post(
                routes::BACKUP_TASKS,
                Some(admin),
                &json!({"name": format!("host {name}"), "type": "file", "nodeId": node,
                        "format": "repository", "sourcePaths": [src],
                        "storageTargetIds": [target.summary.id]}),
            )
            .await?
            .expect_ok()?;
        tasks.push(task.id);
    }

    // While the repository does not exist yet, the first run creates it alone.
    let first = server
        .post(&routes::backup_task_run(tasks[0]), Some(admin), &json!({}))
        .await?;
    ensure!(first.status == 201, "{}", first.raw);
    let first: BackupRecordOutput = first.expect_ok()?;
    server
        .post(&routes::backup_task_run(tasks[1]), Some(admin), &json!({}))
        .await?
        .expect_error(409, "STORAGE_REPOSITORY_BUSY")?;
    let first = server.settled(admin, first.id, false).await?;
    assert_eq!(first.status, "success", "{first:?}");

    // Then both nodes write at once, and both runs succeed.
    let mut started = Vec::new();
    for task in &tasks {
        let r = server
            .post(&routes::backup_task_run(*task), Some(admin), &json!({}))
            .await?;
        ensure!(r.status == 201, "{}", r.raw);
        started.push(r.expect_ok::<BackupRecordOutput>()?.id);
    }
    let mut done = Vec::new();
    for id in started {
        done.push(server.settled(admin, id, false).await?);
    }
    for r in &done {
        assert_eq!(r.status, "success", "{r:?}");
    }
    // Node b's first run found node a's data already there.
    assert!(
        done[1].targets[0].bytes < 100_000,
        "the shared 3 MiB file was stored again: {:?}",
        done[1].targets[0]
    );

    let kit: RecoveryKit = server
        .post(
            &routes::storage_target_recovery_kit(target.summary.id),
            Some(admin),
            &json!({"currentPassword": ADMIN_PASSWORD}),
        )
        .await?
        .expect_ok()?;
    let repo = s3.data().join("bucket/restic");
    let listed: serde_json::Value = serde_json::from_str(&restic(
        &repo,
        kit.password.expose(),
        &["snapshots", "--json"],
    )?)?;
    let mut hosts: Vec<&str> = listed
        .as_array()
        .context("snapshots")?
        .iter()
        .filter_map(|s| s["hostname"].as_str())
        .collect();
    hosts.sort_unstable();
    // Each snapshot names the node that took it (both agents run on this one machine).
    assert_eq!(hosts, ["node-a", "node-a", "node-b"]);
    restic(&repo, kit.password.expose(), &["check", "--read-data"])?;
    Ok(())
}

/// A local-disk target named "disk" at `dir`.
async fn disk_target(server: &Server, admin: &str, dir: &Path) -> Result<i64> {
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(admin),
            &json!({"name": "disk", "type": "local_disk", "config": {"basePath": dir}}),
        )
        .await?
        .expect_ok()?;
    Ok(target.summary.id)
}

/// Incompressible bytes from `seed`, so that each run's file is new data to the repository.
fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32 ^ seed.wrapping_mul(0x85eb_ca6b);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn retention_and_prune_keep_exactly_the_kept_snapshots_and_free_the_rest() -> Result<()> {
    use nix::sys::signal::Signal;
    let Fleet {
        server,
        admin,
        node,
        agent,
    } = Fleet::start("prune-1").await?;
    let work = tempfile::tempdir()?;
    let src = work.path().join("data");
    std::fs::create_dir_all(&src)?;
    std::fs::write(src.join("steady.txt"), "the same every run\n")?;
    let local = work.path().join("target");
    let target_id = disk_target(&server, &admin, &local).await?;
    server
        .post(
            &routes::storage_target_prune(target_id),
            Some(&admin),
            &json!({}),
        )
        .await?
        .expect_error(409, "STORAGE_REPOSITORY_MISSING")?;
    let task: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "rotating", "type": "file", "nodeId": node.node.id,
                    "format": "repository", "sourcePaths": [src],
                    "storageTargetIds": [target_id], "retention": {"keepLast": 1}}),
        )
        .await?
        .expect_ok()?;
    // Each run a new 2 MiB file: once retention forgets a snapshot, its file is garbage.
    let mut last = None;
    for seed in 0..3 {
        std::fs::write(src.join("big.bin"), noise(seed, 2 << 20))?;
        let record = run(&server, &admin, task.id).await?;
        ensure!(record.status == "success", "{record:?}");
        last = Some(record);
    }
    let last = last.context("runs")?;
    let kit: RecoveryKit = server
        .post(
            &routes::storage_target_recovery_kit(target_id),
            Some(&admin),
            &json!({"currentPassword": ADMIN_PASSWORD}),
        )
        .await?
        .expect_ok()?;
    let repo = local.join("restic");
    let password = kit.password.expose();
    eventually(
        "retention to forget the older snapshots",
        Duration::from_secs(60),
        || async { Ok((snapshot_ids(&repo, password)?.len() == 1).then_some(())) },
    )
    .await?;
    let target: StorageTargetDetail = server
        .get(&routes::storage_target(target_id), Some(&admin))
        .await?
        .expect_ok()?;
    let state = target
        .summary
        .repository
        .context("the repository's state")?;
    ensure!(!state.pruning && state.pruned_at.is_none(), "{state:?}");
    ensure!(
        state.prune_due_at.is_some(),
        "a weekly prune is scheduled: {state:?}"
    );

    // The lease, with the agent held still: no prune while a run is under way ...
    agent.signal(Signal::SIGSTOP)?;
    let held = server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?
        .expect_ok::<BackupRecordOutput>()?;
    let refused = server
        .post(
            &routes::storage_target_prune(target_id),
            Some(&admin),
            &json!({}),
        )
        .await?;
    agent.signal(Signal::SIGCONT)?;
    refused.expect_error(409, "STORAGE_REPOSITORY_BUSY")?;
    let held = server.settled(&admin, held.id, false).await?;
    ensure!(held.status == "success", "{held:?}");
    eventually(
        "retention after the held run",
        Duration::from_secs(60),
        || async { Ok((snapshot_ids(&repo, password)?.len() == 1).then_some(())) },
    )
    .await?;

    // ... and no run while a prune is under way.
    agent.signal(Signal::SIGSTOP)?;
    let started = server
        .post(
            &routes::storage_target_prune(target_id),
            Some(&admin),
            &json!({}),
        )
        .await?;
    let blocked = server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?;
    let during: StorageTargetDetail = server
        .get(&routes::storage_target(target_id), Some(&admin))
        .await?
        .expect_ok()?;
    agent.signal(Signal::SIGCONT)?;
    ensure!(started.status == 202, "{}", started.raw);
    blocked.expect_error(409, "STORAGE_REPOSITORY_BUSY")?;
    ensure!(
        during
            .summary
            .repository
            .as_ref()
            .is_some_and(|r| r.pruning),
        "{during:?}"
    );
    let pruned = eventually("the prune to end", Duration::from_secs(90), || async {
        let t: StorageTargetDetail = server
            .get(&routes::storage_target(target_id), Some(&admin))
            .await?
            .expect_ok()?;
        let state = t.summary.repository.context("state")?;
        Ok((!state.pruning).then_some(state))
    })
    .await?;
    ensure!(pruned.prune_error.is_empty(), "{pruned:?}");
    ensure!(pruned.pruned_at.is_some(), "{pruned:?}");
    // The first two runs' files (2 MiB each, incompressible) are gone; the third run's file is
    // the held run's too, which is kept.
    ensure!(
        pruned.prune_freed_bytes >= 4 << 20,
        "freed only {} bytes",
        pruned.prune_freed_bytes
    );
    let kept = snapshot_ids(&repo, password)?;
    ensure!(
        kept == [held.targets[0].snapshot_id.clone()],
        "{kept:?} after {last:?}"
    );
    restic(&repo, password, &["check", "--read-data"])?;
    let by_restic = work.path().join("by-restic");
    restic(
        &repo,
        password,
        &[
            "restore",
            &kept[0],
            "--target",
            &by_restic.display().to_string(),
        ],
    )?;
    same_tree(
        &snapshot(&by_restic.join(src.strip_prefix("/")?))?,
        &snapshot(&src)?,
    )?;
    ensure!(
        restic(&repo, password, &["list", "locks"])?
            .trim()
            .is_empty(),
        "a lock was left behind"
    );
    // The repository takes runs again.
    let after = run(&server, &admin, task.id).await?;
    ensure!(after.status == "success", "{after:?}");
    Ok(())
}

#[tokio::test]
async fn a_killed_agent_fails_its_run_and_leaves_the_repository_sound() -> Result<()> {
    use nix::sys::signal::Signal;
    use stowage_tests::{AgentProcess, ServerOptions};
    let server = Server::start_with(
        ServerOptions::default()
            .var("HEARTBEAT_SECS", 1)
            .var("POLL_SECS", 1)
            .var("LEASE_SECS", 3)
            .var("OFFLINE_AFTER_SECS", 3),
    )
    .await?;
    let admin = server.admin("admin", ADMIN_PASSWORD).await?;
    let node: stowage_shared::api::NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "doomed"}))
        .await?
        .expect_ok()?;
    let agent = AgentProcess::start(&server.base_url, node.token.expose())?;
    server.wait_online(&admin, node.node.id).await?;
    let work = tempfile::tempdir()?;
    let src = work.path().join("data");
    write_tree(&src)?;
    let local = work.path().join("target");
    let target_id = disk_target(&server, &admin, &local).await?;
    let task: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "big", "type": "file", "nodeId": node.node.id,
                    "format": "repository", "sourcePaths": [src],
                    "storageTargetIds": [target_id]}),
        )
        .await?
        .expect_ok()?;
    let first = run(&server, &admin, task.id).await?;
    ensure!(first.status == "success", "{first:?}");
    let packs = |dir: &Path| -> usize {
        walk(dir)
            .iter()
            .filter(|p| p.starts_with(dir.join("data")))
            .count()
    };
    let repo = local.join("restic");
    let before = packs(&repo);

    // 256 MiB of new data: the agent is killed once packs of it have landed, mid-run.
    std::fs::write(src.join("media/huge.bin"), noise(7, 256 << 20))?;
    let started: BackupRecordOutput = server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?
        .expect_ok()?;
    eventually(
        "packs of the run to land",
        Duration::from_secs(60),
        || async {
            let r: BackupRecordOutput = server
                .get(&routes::backup_record(started.id), Some(&admin))
                .await?
                .expect_ok()?;
            ensure!(
                r.status == "running",
                "the run ended before the kill: {r:?}"
            );
            Ok((packs(&repo) > before).then_some(()))
        },
    )
    .await?;
    let mut agent = agent;
    agent.signal(Signal::SIGKILL)?;
    agent.wait_exit(Duration::from_secs(10)).await?;
    let killed = server.settled(&admin, started.id, true).await?;
    ensure!(killed.status == "failed", "{killed:?}");

    // What the killed run wrote is unreferenced data, nothing worse: restic's check is clean,
    // and only the first snapshot exists. (Its lock stays behind until it is removed as
    // stale: the check reads without taking one.)
    let kit: RecoveryKit = server
        .post(
            &routes::storage_target_recovery_kit(target_id),
            Some(&admin),
            &json!({"currentPassword": ADMIN_PASSWORD}),
        )
        .await?
        .expect_ok()?;
    let password = kit.password.expose();
    ensure!(
        restic(&repo, password, &["list", "locks", "--no-lock"])?
            .lines()
            .count()
            == 1,
        "the killed agent's lock"
    );
    restic(&repo, password, &["--no-lock", "check", "--read-data"])?;
    ensure!(
        restic(&repo, password, &["--no-lock", "snapshots", "--json"])?
            .contains(&first.targets[0].snapshot_id)
    );
    ensure!(
        restic(&repo, password, &["--no-lock", "list", "snapshots"])?
            .lines()
            .count()
            == 1,
        "the killed run left a snapshot"
    );

    // The agent comes back; the next run removes the stale lock, succeeds, and restic (taking
    // its own exclusive lock now) reads it whole.
    let _agent = AgentProcess::start(&server.base_url, node.token.expose())?;
    server.wait_online(&admin, node.node.id).await?;
    let next = run(&server, &admin, task.id).await?;
    ensure!(next.status == "success", "{next:?}");
    restic(&repo, password, &["check", "--read-data"])?;
    let by_restic = work.path().join("by-restic");
    restic(
        &repo,
        password,
        &[
            "restore",
            &next.targets[0].snapshot_id,
            "--target",
            &by_restic.display().to_string(),
        ],
    )?;
    ensure!(
        std::fs::read(
            by_restic
                .join(src.strip_prefix("/")?)
                .join("media/huge.bin")
        )? == std::fs::read(src.join("media/huge.bin"))?,
        "the large file restored differs"
    );
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

async fn verified(
    server: &Server,
    admin: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<stowage_shared::api::VerifyRecordOutput> {
    let started = server.post(path, Some(admin), &body).await?;
    ensure!(started.status == 201, "{}", started.raw);
    let v: stowage_shared::api::VerifyRecordOutput = started.expect_ok()?;
    eventually("the check to end", Duration::from_secs(60), || async {
        let v: stowage_shared::api::VerifyRecordOutput = server
            .get(&routes::verify_record(v.id), Some(admin))
            .await?
            .expect_ok()?;
        Ok((v.status != "running").then_some(v))
    })
    .await
}

#[tokio::test]
async fn a_damaged_pack_fails_the_check_and_names_the_records_that_need_it() -> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent: _agent,
    } = Fleet::start("checked").await?;
    let rx = stowage_tests::Receivers::start()?;
    let channel = server
        .post(
            routes::NOTIFICATIONS,
            Some(&admin),
            &json!({"name": "checks", "type": "webhook", "events": ["verify_failed"],
                    "config": {"url": rx.url("/checks")}}),
        )
        .await?;
    ensure!(channel.status == 201, "{}", channel.raw);
    let work = tempfile::tempdir()?;
    let src = work.path().join("data");
    std::fs::create_dir_all(&src)?;
    let local = work.path().join("target");
    let target_id = disk_target(&server, &admin, &local).await?;
    let task: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "checked", "type": "file", "nodeId": node.node.id,
                    "format": "repository", "sourcePaths": [src],
                    "storageTargetIds": [target_id]}),
        )
        .await?
        .expect_ok()?;
    let packs = |dir: &Path| -> Vec<PathBuf> {
        let mut p: Vec<PathBuf> = walk(dir)
            .into_iter()
            .filter(|p| p.starts_with(dir.join("data")))
            .collect();
        p.sort();
        p
    };
    let repo = local.join("restic");
    std::fs::write(src.join("first.bin"), noise(1, 3 << 20))?;
    let first = run(&server, &admin, task.id).await?;
    let after_first = packs(&repo);
    std::fs::write(src.join("second.bin"), noise(2, 3 << 20))?;
    let second = run(&server, &admin, task.id).await?;
    ensure!(first.status == "success" && second.status == "success");

    // Whole: a record's check reads all of its data; a target's check its structure and a share.
    let ok = verified(
        &server,
        &admin,
        &routes::backup_record_verify(second.id),
        json!({}),
    )
    .await?;
    ensure!(
        ok.status == "success" && ok.read_data_percent == 100,
        "{ok:?}"
    );
    ensure!(ok.snapshots == 1 && ok.errors.is_empty(), "{ok:?}");
    // Its live log says what was checked and the verdict, and ends with the status.
    let (_, _, events) = server
        .read_log_stream(&routes::verify_record_logs(ok.id), &admin, None)
        .await?;
    let said: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    ensure!(
        said.iter().any(|l| l.contains("reading all of its data"))
            && said.iter().any(|l| l.contains("the repository is whole"))
            && said.last() == Some(&r#"{"status":"success"}"#),
        "{said:#?}"
    );
    let whole = verified(
        &server,
        &admin,
        &routes::storage_target_verify(target_id),
        json!({"readDataPercent": 100}),
    )
    .await?;
    ensure!(
        whole.status == "success" && whole.snapshots == 2,
        "{whole:?}"
    );

    // The largest pack the second run added loses 64 bytes to damage.
    let victim = packs(&repo)
        .into_iter()
        .filter(|p| !after_first.contains(p))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .context("a pack of the second run")?;
    let mut bytes = std::fs::read(&victim)?;
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&victim, bytes)?;
    let name = victim
        .file_name()
        .context("name")?
        .to_string_lossy()
        .into_owned();

    let bad = verified(
        &server,
        &admin,
        &routes::backup_record_verify(second.id),
        json!({}),
    )
    .await?;
    ensure!(bad.status == "failed", "{bad:?}");
    ensure!(bad.damaged_packs == [name.clone()], "{bad:?}");
    ensure!(bad.affected_records == [second.id], "{bad:?}");
    ensure!(!bad.error.is_empty() && !bad.errors.is_empty(), "{bad:?}");
    let (_, _, events) = server
        .read_log_stream(&routes::verify_record_logs(bad.id), &admin, None)
        .await?;
    ensure!(
        events
            .iter()
            .any(|e| e.data.contains(&format!("damaged pack {name}")) && e.data.contains("error")),
        "the damaged pack is named in the check's log at error level: {events:?}"
    );
    ensure!(
        events.last().map(|e| e.data.as_str()) == Some(r#"{"status":"failed"}"#),
        "{events:?}"
    );
    let fine = verified(
        &server,
        &admin,
        &routes::backup_record_verify(first.id),
        json!({}),
    )
    .await?;
    ensure!(
        fine.status == "success",
        "the first run's data is intact: {fine:?}"
    );
    let target_check = verified(
        &server,
        &admin,
        &routes::storage_target_verify(target_id),
        json!({"readDataPercent": 100}),
    )
    .await?;
    ensure!(target_check.status == "failed", "{target_check:?}");
    ensure!(
        target_check.affected_records == [second.id],
        "{target_check:?}"
    );

    // The scheduled check of the whole repository (due in a week; made due now) finds it too.
    let t: StorageTargetDetail = server
        .get(&routes::storage_target(target_id), Some(&admin))
        .await?
        .expect_ok()?;
    ensure!(
        t.summary
            .repository
            .as_ref()
            .and_then(|r| r.check_due_at.as_ref())
            .is_some(),
        "{t:?}"
    );
    server
        .put(
            routes::SETTINGS,
            Some(&admin),
            &json!({"repositoryCheckReadPercent": 100}),
        )
        .await?
        .expect_ok::<serde_json::Value>()?;
    server.query(&format!(
        "UPDATE storage_targets SET check_due_at = '2000-01-01T00:00:00.000Z' WHERE id = {target_id}"
    ))?;
    let scheduled = eventually("the scheduled check", Duration::from_secs(60), || async {
        server.trigger_cron().await?;
        let all: Vec<stowage_shared::api::VerifyRecordOutput> = server
            .get(routes::VERIFY_RECORDS, Some(&admin))
            .await?
            .expect_ok()?;
        Ok(all
            .into_iter()
            .find(|v| v.triggered_by == "schedule" && v.status != "running"))
    })
    .await?;
    ensure!(
        scheduled.status == "failed" && scheduled.affected_records == [second.id],
        "{scheduled:?}"
    );

    // The list filters; the channel heard of the failures.
    let failed: Vec<stowage_shared::api::VerifyRecordOutput> = server
        .get(
            &format!(
                "{}?taskId={}&status=failed",
                routes::VERIFY_RECORDS,
                task.id
            ),
            Some(&admin),
        )
        .await?
        .expect_ok()?;
    ensure!(failed.len() == 1 && failed[0].id == bad.id, "{failed:?}");
    let for_first: Vec<stowage_shared::api::VerifyRecordOutput> = server
        .get(
            &format!("{}?backupRecordId={}", routes::VERIFY_RECORDS, first.id),
            Some(&admin),
        )
        .await?
        .expect_ok()?;
    ensure!(
        for_first.len() == 1 && for_first[0].id == fine.id,
        "{for_first:?}"
    );
    server
        .get(
            &format!("{}?status=partial", routes::VERIFY_RECORDS),
            Some(&admin),
        )
        .await?
        .expect_error(400, "INVALID_INPUT")?;
    let told = eventually(
        "the channel to hear of the damage",
        Duration::from_secs(30),
        || async {
            server.trigger_cron().await?;
            let got = rx.requests("/checks")?;
            Ok((got.len() >= 2).then_some(got))
        },
    )
    .await?;
    let msg: serde_json::Value = serde_json::from_str(&told[0].body)?;
    ensure!(msg["event"] == "verify_failed", "{msg}");
    ensure!(msg["fields"]["snapshotsAffected"] == 1, "{msg}");

    // An archive record is read whole: whole, then damaged.
    let archive: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "tarball", "type": "file", "nodeId": node.node.id,
                    "sourcePaths": [src], "storageTargetIds": [target_id]}),
        )
        .await?
        .expect_ok()?;
    let tarball = run(&server, &admin, archive.id).await?;
    ensure!(tarball.status == "success", "{tarball:?}");
    let whole = verified(
        &server,
        &admin,
        &routes::backup_record_verify(tarball.id),
        json!({}),
    )
    .await?;
    ensure!(
        whole.status == "success" && whole.errors.is_empty() && whole.snapshots == 0,
        "{whole:?}"
    );
    let (_, _, events) = server
        .read_log_stream(&routes::verify_record_logs(whole.id), &admin, None)
        .await?;
    ensure!(
        events.iter().any(|e| e.data.contains("2 files and links"))
            && events
                .iter()
                .any(|e| e.data.contains("the archive is whole")),
        "{events:?}"
    );
    // Damage it in place: same size, other bytes.
    let stored = local.join(&tarball.targets[0].path);
    let mut bytes = std::fs::read(&stored)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&stored, bytes)?;
    let damaged = verified(
        &server,
        &admin,
        &routes::backup_record_verify(tarball.id),
        json!({}),
    )
    .await?;
    ensure!(damaged.status == "failed", "{damaged:?}");
    ensure!(damaged.affected_records == [tarball.id], "{damaged:?}");
    ensure!(
        damaged
            .errors
            .iter()
            .any(|e| e.contains("does not match its record") || e.contains("cannot be read")),
        "{damaged:?}"
    );

    // The target goes, its backups stay: not before the repository's password was saved.
    for id in [task.id, archive.id] {
        server
            .delete(
                &format!("{}?keepBackups=true", routes::backup_task(id)),
                Some(&admin),
            )
            .await?
            .expect_ok::<serde_json::Value>()?;
    }
    let target = routes::storage_target(target_id);
    server
        .delete(&target, Some(&admin))
        .await?
        .expect_error(409, "STORAGE_TARGET_HAS_BACKUPS")?;
    let keep = format!("{target}?deleteBackups=false");
    server
        .delete(&keep, Some(&admin))
        .await?
        .expect_error(409, "STORAGE_RECOVERY_KIT_REQUIRED")?;
    let kit: RecoveryKit = server
        .post(
            &routes::storage_target_recovery_kit(target_id),
            Some(&admin),
            &json!({"currentPassword": ADMIN_PASSWORD}),
        )
        .await?
        .expect_ok()?;
    server
        .delete(&keep, Some(&admin))
        .await?
        .expect_ok::<serde_json::Value>()?;
    server
        .get(&target, Some(&admin))
        .await?
        .expect_error(404, "STORAGE_TARGET_NOT_FOUND")?;
    ensure!(
        snapshot_ids(&repo, kit.password.expose())?.len() == 2,
        "the repository stays, and opens with the kit's password"
    );
    Ok(())
}
