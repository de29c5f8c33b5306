//! Storage targets through the real Worker: per-type validation, sealing at rest, masking.

use anyhow::Result;
use serde_json::{Value, json};
use stowage_shared::api::{StorageTargetDetail, StorageTargetSummary, routes};
use stowage_shared::storage::MASK;
use stowage_tests::Server;

const ACCESS_KEY: &str = "AKIASTOWAGETEST0001";
const SECRET_KEY: &str = "wJalrXUtnFEMI-stowage-secret-key";
const DAV_PASSWORD: &str = "dav-password-never-shown";

fn s3_target(name: &str) -> Value {
    json!({
        "name": name, "type": "s3", "description": "MinIO in the basement",
        "config": {
            "preset": "minio", "endpoint": "http://127.0.0.1:9000", "region": "us-east-1",
            "bucket": "backups", "accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY,
            "forcePathStyle": true, "prefix": "stowage"
        }
    })
}

/// Every file of the server's local D1, as one lossy string, for grepping.
/// The files of the server's state that hold `needle`, for saying where a leak is.
pub fn files_holding(server: &Server, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![server.state_dir().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for path in std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
        {
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle))
            {
                found.push(path);
            }
        }
    }
    found
}

/// Every byte the server keeps on disk, but its logs and its runtime's trace store: miniflare
/// records each outbound request's URL there (as Workers observability does when it is turned on),
/// and for Slack, Discord and Telegram the URL is the credential. README, "Notifications".
pub fn d1_bytes(server: &Server) -> Result<String> {
    let mut all = Vec::new();
    let mut stack = vec![server.state_dir().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() && path.file_name().is_some_and(|n| n == "observability") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if !path.extension().is_some_and(|e| e == "log" || e == "env") {
                all.extend(std::fs::read(&path)?);
            }
        }
    }
    Ok(String::from_utf8_lossy(&all).into_owned())
}

#[tokio::test]
async fn targets_are_validated_sealed_at_rest_and_masked_in_every_answer() -> Result<()> {
    let server = Server::start().await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let mut replies = Vec::new();

    let created = server
        .post(routes::STORAGE_TARGETS, Some(&admin), &s3_target("minio"))
        .await?;
    assert_eq!(created.status, 201);
    let detail: StorageTargetDetail = created.expect_ok()?;
    assert_eq!(detail.summary.kind, "s3");
    assert_eq!(detail.summary.last_test_status, "unknown");
    assert_eq!(detail.summary.config_version, 1);
    assert_eq!(detail.config["accessKeyId"], MASK);
    assert_eq!(detail.config["secretAccessKey"], MASK);
    assert_eq!(detail.config["bucket"], "backups");
    assert_eq!(detail.masked_fields, ["accessKeyId", "secretAccessKey"]);
    let id = detail.summary.id;
    replies.push(created);

    let dav = json!({"name": "nextcloud", "type": "webdav", "config": {
        "endpoint": "https://cloud.example/remote.php/dav", "username": "ada", "password": DAV_PASSWORD}});
    replies.push(
        server
            .post(routes::STORAGE_TARGETS, Some(&admin), &dav)
            .await?,
    );

    // Bad input: a clear 4xx naming the problem.
    let cases = [
        (
            json!({"name": "x", "type": "dropbox", "config": {}}),
            400,
            "STORAGE_PROVIDER_UNSUPPORTED",
            "dropbox",
        ),
        (
            json!({"name": "x", "type": "s3", "config": {"endpoint": "http://e", "accessKeyId": "a", "secretAccessKey": "s"}}),
            400,
            "STORAGE_TARGET_INVALID_CONFIG",
            "bucket",
        ),
        (
            json!({"name": "x", "type": "local_disk", "config": {"basePath": "backups"}}),
            400,
            "STORAGE_TARGET_INVALID_CONFIG",
            "basePath",
        ),
        (
            json!({"name": "x", "type": "sftp", "config": {"host": "h", "username": "u", "password": "p"}}),
            400,
            "STORAGE_TARGET_INVALID_CONFIG",
            "hostKey",
        ),
        (
            json!({"name": "", "type": "local_disk", "config": {"basePath": "/b"}}),
            400,
            "STORAGE_TARGET_INVALID",
            "name",
        ),
        (
            json!({"name": "x", "type": "local_disk"}),
            400,
            "STORAGE_TARGET_INVALID",
            "config",
        ),
        (
            json!({"name": "x", "type": "local_disk", "config": {"basePath": "/b"}, "quotaBytes": -1}),
            400,
            "STORAGE_TARGET_INVALID",
            "quotaBytes",
        ),
        (
            s3_target("MINIO"),
            409,
            "STORAGE_TARGET_NAME_EXISTS",
            "MINIO",
        ),
    ];
    for (body, status, code, mentions) in cases {
        let reply = server
            .post(routes::STORAGE_TARGETS, Some(&admin), &body)
            .await?;
        reply.expect_error(status, code)?;
        assert!(
            reply.envelope.message.contains(mentions),
            "{code} should mention {mentions}: {}",
            reply.raw
        );
    }

    // Lists carry no config at all; details are masked.
    let list = server.get(routes::STORAGE_TARGETS, Some(&admin)).await?;
    let summaries: Vec<StorageTargetSummary> = list.expect_ok()?;
    assert_eq!(summaries.len(), 2);
    assert!(!list.raw.contains("config\""));
    replies.push(list);
    replies.push(
        server
            .get(&routes::storage_target(id), Some(&admin))
            .await?,
    );

    // Sending the masks back keeps the secrets: the config is unchanged, so its version stays.
    let mut edit = s3_target("minio (basement)");
    edit["config"]["accessKeyId"] = json!(MASK);
    edit["config"]["secretAccessKey"] = json!("");
    let kept: StorageTargetDetail = server
        .put(&routes::storage_target(id), Some(&admin), &edit)
        .await?
        .expect_ok()?;
    assert_eq!(kept.summary.name, "minio (basement)");
    assert_eq!(
        kept.summary.config_version, 1,
        "masks sent back change nothing"
    );
    let mut rotate = edit.clone();
    rotate["config"]["secretAccessKey"] = json!("a-brand-new-secret");
    let rotated: StorageTargetDetail = server
        .put(&routes::storage_target(id), Some(&admin), &rotate)
        .await?
        .expect_ok()?;
    assert_eq!(rotated.summary.config_version, 2);
    assert_eq!(rotated.config["secretAccessKey"], MASK);

    let mut retype = edit.clone();
    retype["type"] = json!("webdav");
    server
        .put(&routes::storage_target(id), Some(&admin), &retype)
        .await?
        .expect_error(400, "STORAGE_TARGET_TYPE_IMMUTABLE")?;
    let mut clash = edit.clone();
    clash["name"] = json!("NextCloud");
    server
        .put(&routes::storage_target(id), Some(&admin), &clash)
        .await?
        .expect_error(409, "STORAGE_TARGET_NAME_EXISTS")?;

    let starred: StorageTargetSummary = server
        .put(&routes::storage_target_star(id), Some(&admin), &json!({}))
        .await?
        .expect_ok()?;
    assert!(starred.starred);
    let first: Vec<StorageTargetSummary> = server
        .get(routes::STORAGE_TARGETS, Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(first[0].id, id, "starred targets list first");

    for reply in &replies {
        for secret in [ACCESS_KEY, SECRET_KEY, DAV_PASSWORD, "a-brand-new-secret"] {
            assert!(
                !reply.raw.contains(secret),
                "a response leaks {secret}: {}",
                reply.raw
            );
        }
    }
    let d1 = d1_bytes(&server)?;
    for secret in [ACCESS_KEY, SECRET_KEY, DAV_PASSWORD, "a-brand-new-secret"] {
        assert!(
            !d1.contains(secret),
            "the local D1 holds {secret} in the clear"
        );
    }
    assert!(
        d1.contains("backups") || d1.contains("minio"),
        "the grep reads the real database files"
    );

    server
        .call::<()>(
            reqwest::Method::DELETE,
            &routes::storage_target(id),
            Some(&admin),
            None,
        )
        .await?
        .expect_ok::<Value>()?;
    server
        .get(&routes::storage_target(id), Some(&admin))
        .await?
        .expect_error(404, "STORAGE_TARGET_NOT_FOUND")?;
    let audit = server.query(
        "SELECT action FROM audit_logs WHERE resource_type = 'storage_target' AND result = 'success' ORDER BY id",
    )?;
    let actions: Vec<&str> = audit.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "storage_target.create",
            "storage_target.create",
            "storage_target.update",
            "storage_target.update",
            "storage_target.star",
            "storage_target.delete"
        ]
    );
    // The refused calls above are in the log too, each with its error code.
    crate::operations::assert_refusals_audited(&server, "storage_target.")?;
    Ok(())
}

#[tokio::test]
async fn a_sealed_config_moved_to_another_row_does_not_open() -> Result<()> {
    let server = Server::start().await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let a: StorageTargetDetail = server
        .post(routes::STORAGE_TARGETS, Some(&admin), &s3_target("a"))
        .await?
        .expect_ok()?;
    let b: StorageTargetDetail = server
        .post(routes::STORAGE_TARGETS, Some(&admin), &s3_target("b"))
        .await?
        .expect_ok()?;
    server.query(&format!(
        "UPDATE storage_targets SET config_sealed = (SELECT config_sealed FROM storage_targets WHERE id = {}) WHERE id = {}",
        a.summary.id, b.summary.id
    ))?;
    let reply = server
        .get(&routes::storage_target(b.summary.id), Some(&admin))
        .await?;
    reply.expect_error(500, "INTERNAL_ERROR")?;
    assert!(
        !reply.raw.contains("SEAL_KEY"),
        "the response says nothing about keys"
    );
    server
        .wait_for_log("tampered row", std::time::Duration::from_secs(10))
        .await?;
    server
        .get(&routes::storage_target(a.summary.id), Some(&admin))
        .await?
        .expect_ok::<StorageTargetDetail>()?;
    Ok(())
}

fn assert_no_probe_left(dir: &std::path::Path) -> Result<()> {
    for entry in walk(dir)? {
        assert!(
            !entry.contains(".stowage-probe-"),
            "a probe object was left behind: {entry}"
        );
    }
    Ok(())
}

fn walk(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        }
        out.push(path.to_string_lossy().into_owned());
    }
    Ok(out)
}

#[tokio::test]
async fn connection_tests_run_on_an_agent_against_real_servers() -> Result<()> {
    use stowage_shared::api::{NodeWithToken, StorageTestResult};
    use stowage_tests::{AgentProcess, RcloneServer, ServerOptions};

    let server = Server::start_with(
        ServerOptions::default()
            .var("HEARTBEAT_SECS", 1)
            .var("POLL_SECS", 1)
            .var("RPC_WAIT_SECS", 30),
    )
    .await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let local = tempfile::tempdir()?;
    let local_target =
        json!({"name": "here", "type": "local_disk", "config": {"basePath": local.path()}});

    // A config under test goes only to a node the caller names, which must exist.
    server
        .post(routes::STORAGE_TARGETS_TEST, Some(&admin), &local_target)
        .await?
        .expect_error(400, "NODE_REQUIRED")?;
    let mut on_nobody = local_target.clone();
    on_nobody["nodeId"] = json!(999);
    server
        .post(routes::STORAGE_TARGETS_TEST, Some(&admin), &on_nobody)
        .await?
        .expect_error(404, "NODE_NOT_FOUND")?;

    let node: NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "box"}))
        .await?
        .expect_ok()?;
    let _agent = AgentProcess::start(&server.base_url, node.token.expose())?;
    let n = server.wait_online(&admin, node.node.id).await?;
    // The heartbeat reports the rclone the agent will use.
    assert!(
        n.capabilities
            .rclone
            .as_deref()
            .is_some_and(|v| v.starts_with("rclone v")),
        "rclone is reported: {:?}",
        n.capabilities
    );

    let s3 = RcloneServer::start(
        "s3",
        // rclone reads this variable as CSV, so the one "key,secret" pair is quoted.
        &[("RCLONE_AUTH_KEY", &format!("\"{ACCESS_KEY},{SECRET_KEY}\""))],
    )
    .await?;
    std::fs::create_dir(s3.data().join("backups"))?;
    let dav = RcloneServer::start(
        "webdav",
        &[("RCLONE_USER", "ada"), ("RCLONE_PASS", DAV_PASSWORD)],
    )
    .await?;
    let s3_config = |secret: &str| {
        json!({"name": "minio", "type": "s3", "config": {
            "preset": "minio", "endpoint": format!("http://127.0.0.1:{}", s3.port), "bucket": "backups",
            "accessKeyId": ACCESS_KEY, "secretAccessKey": secret, "forcePathStyle": true, "prefix": "stowage"}})
    };
    let ftp = RcloneServer::start(
        "ftp",
        &[("RCLONE_USER", "ftpuser"), ("RCLONE_PASS", "ftp-secret")],
    )
    .await?;
    let ftp_config = |password: &str| {
        json!({"name": "ftp", "type": "ftp", "config": {
            "host": "127.0.0.1", "port": ftp.port, "username": "ftpuser", "password": password,
            "basePath": "stowage"}})
    };
    let keys = tempfile::tempdir()?;
    let host_key = super::ssh::Key::new(9);
    let host_key_file = host_key.write_private(keys.path(), "host_ed25519")?;
    let sftp = RcloneServer::start(
        "sftp",
        &[
            ("RCLONE_USER", "sftpuser"),
            ("RCLONE_PASS", "sftp-secret"),
            ("RCLONE_KEY", &host_key_file.to_string_lossy()),
        ],
    )
    .await?;
    // Stowage's own SFTP client, with the server's host key pinned.
    let sftp_config = |pass: &str, pinned: &str| {
        json!({"name": "sftp", "type": "sftp", "config": {
            "host": "127.0.0.1", "port": sftp.port, "username": "sftpuser", "password": pass,
            "hostKey": pinned, "basePath": "native"}})
    };
    let pinned = host_key.public_line()?;
    // Any rclone remote, here rclone's own SFTP client; the agent obscures `pass` for rclone.
    let rclone_config = |pass: &str| {
        json!({"name": "via-rclone", "type": "rclone", "config": {
            "backend": "sftp", "root": "stowage",
            "options": {"host": "127.0.0.1", "port": sftp.port.to_string(), "user": "sftpuser", "pass": pass}}})
    };
    let dav_config = |password: &str| {
        json!({"name": "dav", "type": "webdav", "config": {
            "endpoint": format!("http://127.0.0.1:{}", dav.port), "username": "ada", "password": password,
            "basePath": "stowage"}})
    };

    let mut replies = Vec::new();
    for body in [
        local_target.clone(),
        s3_config(SECRET_KEY),
        dav_config(DAV_PASSWORD),
        ftp_config("ftp-secret"),
        rclone_config("sftp-secret"),
        sftp_config("sftp-secret", &pinned),
    ] {
        let mut body = body;
        body["nodeId"] = json!(node.node.id);
        let reply = server
            .post(routes::STORAGE_TARGETS_TEST, Some(&admin), &body)
            .await?;
        let result: StorageTestResult = reply.expect_ok()?;
        assert!(result.success, "{}", reply.raw);
        assert_eq!(result.node_id, node.node.id);
        replies.push(reply);
    }
    // Wrong credentials: a 400 with the backend's reason, and never the secret sent.
    for (body, reason) in [
        (s3_config("not-the-secret-key"), "SignatureDoesNotMatch"),
        (dav_config("not-the-dav-password"), "write failed"),
        (rclone_config("not-the-sftp-secret"), "rclone:"),
        (ftp_config("not-the-ftp-secret"), "530 Incorrect password"),
        (
            sftp_config("not-the-sftp-secret", &pinned),
            "authentication failed",
        ),
        (
            sftp_config("sftp-secret", &super::ssh::Key::new(10).fingerprint()),
            "host key mismatch",
        ),
    ] {
        let mut body = body;
        body["nodeId"] = json!(node.node.id);
        let reply = server
            .post(routes::STORAGE_TARGETS_TEST, Some(&admin), &body)
            .await?;
        reply.expect_error(400, "STORAGE_TARGET_TEST_FAILED")?;
        assert!(
            reply.envelope.message.contains(reason),
            "the backend's reason is given: {}",
            reply.raw
        );
        replies.push(reply);
    }
    // A server that is not there.
    let mut gone = dav_config(DAV_PASSWORD);
    gone["config"]["endpoint"] = json!("http://127.0.0.1:9");
    gone["nodeId"] = json!(node.node.id);
    let unreachable = server
        .post(routes::STORAGE_TARGETS_TEST, Some(&admin), &gone)
        .await?;
    unreachable.expect_error(400, "STORAGE_TARGET_TEST_FAILED")?;
    assert!(
        unreachable.envelope.message.contains("Connection refused"),
        "the root cause is named: {}",
        unreachable.raw
    );

    // A saved target's test is recorded on it, success or failure.
    let saved: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(&admin),
            &s3_config(SECRET_KEY),
        )
        .await?
        .expect_ok()?;
    let id = saved.summary.id;
    // No task uses it yet, so no node holds its credentials: the caller must name one.
    server
        .post(&routes::storage_target_test(id), Some(&admin), &json!({}))
        .await?
        .expect_error(400, "NODE_REQUIRED")?;
    let on_box = format!(
        "{}?nodeId={}",
        routes::storage_target_test(id),
        node.node.id
    );
    let ok: StorageTestResult = server
        .post(&on_box, Some(&admin), &json!({}))
        .await?
        .expect_ok()?;
    assert!(ok.success);
    let after: StorageTargetDetail = server
        .get(&routes::storage_target(id), Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(after.summary.last_test_status, "success");
    assert!(after.summary.last_tested_at.is_some());
    server
        .put(
            &routes::storage_target(id),
            Some(&admin),
            &s3_config("rotated-away"),
        )
        .await?
        .expect_ok::<StorageTargetDetail>()?;
    let failed = server.post(&on_box, Some(&admin), &json!({})).await?;
    failed.expect_error(400, "STORAGE_TARGET_TEST_FAILED")?;
    replies.push(failed);
    let after: StorageTargetDetail = server
        .get(&routes::storage_target(id), Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(after.summary.last_test_status, "failed");
    assert!(!after.summary.last_test_message.is_empty());
    server
        .post(
            &format!("{}?nodeId=999", routes::storage_target_test(id)),
            Some(&admin),
            &json!({}),
        )
        .await?
        .expect_error(404, "NODE_NOT_FOUND")?;

    // Usage, measured by the agent: files put straight into the served directories are counted.
    std::fs::write(local.path().join("a.bin"), vec![1u8; 1000])?;
    std::fs::create_dir_all(s3.data().join("backups/stowage/2026"))?;
    std::fs::write(
        s3.data().join("backups/stowage/2026/x.tar.zst"),
        vec![2u8; 300],
    )?;
    std::fs::write(s3.data().join("backups/stowage/y.json"), vec![3u8; 20])?;
    std::fs::create_dir_all(sftp.data().join("stowage"))?;
    std::fs::write(sftp.data().join("stowage/z.bin"), vec![4u8; 55])?;
    let mut s3_usage = s3_config(SECRET_KEY);
    s3_usage["name"] = json!("s3 usage");
    let mut local_usage = local_target.clone();
    local_usage["name"] = json!("local usage");
    for (body, objects, bytes, has_disk) in [
        (local_usage, 1, 1000, true),
        (s3_usage, 2, 320, false),
        (rclone_config("sftp-secret"), 1, 55, true),
    ] {
        let saved: StorageTargetDetail = server
            .post(routes::STORAGE_TARGETS, Some(&admin), &body)
            .await?
            .expect_ok()?;
        let reply = server
            .get(
                &format!(
                    "{}?nodeId={}",
                    routes::storage_target_usage(saved.summary.id),
                    node.node.id
                ),
                Some(&admin),
            )
            .await?;
        let usage: stowage_shared::api::StorageUsageOutput = reply.expect_ok()?;
        assert_eq!(
            (
                usage.usage.objects,
                usage.usage.total_bytes,
                usage.usage.truncated
            ),
            (objects, bytes, false),
            "{}",
            reply.raw
        );
        assert_eq!(usage.usage.disk.is_some(), has_disk, "{}", reply.raw);
        assert_eq!(usage.target_name, saved.summary.name);
        replies.push(reply);
    }

    for reply in &replies {
        for secret in [
            "sftp-secret",
            "ftp-secret",
            SECRET_KEY,
            DAV_PASSWORD,
            "not-the-secret-key",
            "not-the-dav-password",
            "rotated-away",
        ] {
            assert!(
                !reply.raw.contains(secret),
                "a response leaks {secret}: {}",
                reply.raw
            );
        }
    }
    let d1 = d1_bytes(&server)?;
    for secret in [
        SECRET_KEY,
        DAV_PASSWORD,
        "not-the-secret-key",
        "rotated-away",
        ACCESS_KEY,
    ] {
        assert!(
            !d1.contains(secret),
            "the local D1 holds {secret} in the clear (command specs are sealed too)"
        );
    }
    for dir in [
        local.path().to_path_buf(),
        s3.data(),
        dav.data(),
        ftp.data(),
        sftp.data(),
    ] {
        assert_no_probe_left(&dir)?;
    }
    Ok(())
}
