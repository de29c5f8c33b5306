//! Notifications end to end: the Worker sends real HTTP requests to a local receiver and real
//! SMTP to a local aiosmtpd when runs, restores, nodes and storage tests give it something to say;
//! webhook signatures are checked here with an HMAC of the test's own; failed deliveries are
//! retried and recorded without touching the backup; and no channel secret is ever readable.
//!
//! Slack, Discord, Telegram and ntfy are internet services: their requests go to the local receiver
//! (their URL is configurable), which checks the shape each one is sent in, not the service itself.

use anyhow::{Result, ensure};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;
use stowage_shared::api::{
    BackupRecordOutput, BackupTaskOutput, NodeOutput, NodeStatus, NotificationDelivery,
    NotificationDetail, NotificationSummary, NotificationTestResult, RestoreRecordOutput,
    StorageTargetDetail, routes,
};
use stowage_tests::{AgentProcess, Fleet, Received, Receivers, Server, eventually};

const HOOK_SECRET: &str = "whsec-5f1b0c-never-shown";
const SLACK_URL_TOKEN: &str = "T000/B000/slack-token-never-shown";
const BOT_TOKEN: &str = "123456:bot-token-never-shown";

/// Checks `X-Stowage-Signature` the way a receiver would, with its own HMAC.
fn signed_by(secret: &str, req: &Received) -> bool {
    let (Some(ts), Some(sig)) = (
        req.headers.get("x-stowage-timestamp"),
        req.headers.get("x-stowage-signature"),
    ) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{ts}.{}", req.body).as_bytes());
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    *sig == want
}

async fn channel(server: &Server, admin: &str, body: Value) -> Result<NotificationDetail> {
    let reply = server
        .post(routes::NOTIFICATIONS, Some(admin), &body)
        .await?;
    ensure!(reply.status == 201, "{}", reply.raw);
    reply.expect_ok()
}

async fn target(server: &Server, admin: &str, name: &str, base: &str) -> Result<i64> {
    let t: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(admin),
            &json!({"name": name, "type": "local_disk", "config": {"basePath": base}}),
        )
        .await?
        .expect_ok()?;
    Ok(t.summary.id)
}

async fn task(
    server: &Server,
    admin: &str,
    node: i64,
    name: &str,
    source: &str,
    target: i64,
) -> Result<i64> {
    let t: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(admin),
            &json!({"name": name, "type": "file", "nodeId": node, "sourcePaths": [source],
                    "storageTargetIds": [target]}),
        )
        .await?
        .expect_ok()?;
    Ok(t.id)
}

async fn run(server: &Server, admin: &str, task: i64) -> Result<BackupRecordOutput> {
    let started: BackupRecordOutput = server
        .post(&routes::backup_task_run(task), Some(admin), &json!({}))
        .await?
        .expect_ok()?;
    server.settled(admin, started.id, false).await
}

/// Waits until the receiver has `n` requests at `path` and returns them.
async fn received(rx: &Receivers, path: &str, n: usize) -> Result<Vec<Received>> {
    eventually(
        &format!("{n} requests at {path}"),
        Duration::from_secs(30),
        || async {
            let got = rx.requests(path)?;
            Ok((got.len() >= n).then_some(got))
        },
    )
    .await
}

fn body(req: &Received) -> Result<Value> {
    Ok(serde_json::from_str(&req.body)?)
}

async fn deliveries(server: &Server, admin: &str, id: i64) -> Result<Vec<NotificationDelivery>> {
    server
        .get(&routes::notification_deliveries(id), Some(admin))
        .await?
        .expect_ok()
}

#[tokio::test]
async fn webhooks_get_signed_messages_for_runs_restores_and_failures_and_retries_are_recorded()
-> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent: _agent,
    } = Fleet::start("nas-1").await?;
    let rx = Receivers::start()?;
    let hook = channel(
        &server,
        &admin,
        json!({"name": "ops hook", "type": "webhook",
               "events": ["backup_success", "backup_failed", "restore_success"],
               "config": {"url": rx.url("/hook"), "secret": HOOK_SECRET}}),
    )
    .await?;
    assert_eq!(hook.config["secret"], "********");
    assert_eq!(hook.masked_fields, ["secret"]);
    let patient = channel(
        &server,
        &admin,
        json!({"name": "pager", "type": "webhook", "events": ["backup_failed"],
               "failureThreshold": 2, "config": {"url": rx.url("/pager")}}),
    )
    .await?;
    let flaky = channel(
        &server,
        &admin,
        json!({"name": "flaky", "type": "webhook", "events": ["backup_success"],
               "config": {"url": rx.url("/fail-once/flaky")}}),
    )
    .await?;
    let slack = channel(
        &server,
        &admin,
        json!({"name": "slack", "type": "slack", "events": ["backup_failed"],
               "config": {"webhookUrl": rx.url(&format!("/slack/{SLACK_URL_TOKEN}"))}}),
    )
    .await?;
    assert_eq!(slack.config["webhookUrl"], "********");

    let src = tempfile::tempdir()?;
    std::fs::create_dir(src.path().join("etc"))?;
    std::fs::write(src.path().join("etc/hosts"), "127.0.0.1 localhost\n")?;
    let store = tempfile::tempdir()?;
    let t = target(&server, &admin, "disk", &store.path().to_string_lossy()).await?;
    let good = task(
        &server,
        &admin,
        node.node.id,
        "etc",
        &src.path().join("etc").to_string_lossy(),
        t,
    )
    .await?;

    // A success: one signed message with the run's facts, and a retried delivery to the flaky one.
    let done = run(&server, &admin, good).await?;
    assert_eq!(done.status, "success", "{done:?}");
    let got = received(&rx, "/hook", 1).await?;
    assert!(signed_by(HOOK_SECRET, &got[0]), "{:?}", got[0].headers);
    assert!(!signed_by("another secret", &got[0]));
    assert_eq!(
        got[0].headers.get("x-stowage-event").map(String::as_str),
        Some("backup_success")
    );
    let msg = body(&got[0])?;
    assert_eq!(msg["event"], "backup_success");
    assert_eq!(msg["title"], "[Stowage] Backup succeeded: etc");
    assert_eq!(msg["fields"]["taskName"], "etc");
    assert_eq!(msg["fields"]["nodeName"], "nas-1");
    assert_eq!(msg["fields"]["bytes"], json!(done.bytes));
    assert!(msg["fields"]["durationSecs"].is_u64(), "{msg}");
    assert_eq!(msg["link"], format!("/backup/records/{}", done.id));
    assert!(
        msg["body"]
            .as_str()
            .is_some_and(|b| b.contains("Node: nas-1")),
        "{msg}"
    );

    // The flaky receiver refused the first attempt: recorded, retried, and the backup untouched.
    let first = received(&rx, "/fail-once/flaky", 1).await?;
    assert_eq!(first.len(), 1);
    let pending = eventually(
        "the failed attempt to be recorded",
        Duration::from_secs(20),
        || async {
            let d = deliveries(&server, &admin, flaky.summary.id).await?;
            Ok(d.first().filter(|d| d.status == "pending").cloned())
        },
    )
    .await?;
    assert_eq!(pending.attempts, 1);
    assert!(pending.last_error.contains("HTTP 500"), "{pending:?}");
    assert!(pending.next_attempt_at.is_some());
    // Time travel for the back-off: the retry is due now, and the tick sends it.
    server.query(&format!(
        "UPDATE notification_deliveries SET next_attempt_at = '2000-01-01T00:00:00.000Z' WHERE id = {}",
        pending.id
    ))?;
    server.trigger_cron().await?;
    let sent = eventually("the retry to be sent", Duration::from_secs(20), || async {
        let d = deliveries(&server, &admin, flaky.summary.id).await?;
        Ok(d.first().filter(|d| d.status == "sent").cloned())
    })
    .await?;
    assert_eq!((sent.attempts, sent.last_error.as_str()), (2, ""));
    assert_eq!(rx.requests("/fail-once/flaky")?.len(), 2);
    let record: BackupRecordOutput = server
        .get(&routes::backup_record(done.id), Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(
        record.status, "success",
        "a notification never changes a backup"
    );

    // A restore that succeeds says so.
    let out = tempfile::tempdir()?;
    let r: RestoreRecordOutput = server
        .post(
            &routes::backup_record_restore(done.id),
            Some(&admin),
            &json!({"targetPath": out.path()}),
        )
        .await?
        .expect_ok()?;
    let got = received(&rx, "/hook", 2).await?;
    let msg = body(&got[1])?;
    assert_eq!(msg["event"], "restore_success");
    assert_eq!(msg["fields"]["restoreId"], json!(r.id));
    assert!(signed_by(HOOK_SECRET, &got[1]));

    // Failures: each one reaches the hook and Slack; the pager waits for two in a row.
    let gone = tempfile::tempdir()?;
    let missing = gone.path().join("vanished").to_string_lossy().into_owned();
    let bad = task(&server, &admin, node.node.id, "vanishing", &missing, t).await?;
    let failed = run(&server, &admin, bad).await?;
    assert_eq!(failed.status, "failed", "{failed:?}");
    let got = received(&rx, "/hook", 3).await?;
    let msg = body(&got[2])?;
    assert_eq!(msg["event"], "backup_failed");
    assert!(
        !msg["fields"]["error"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{msg}"
    );
    assert!(signed_by(HOOK_SECRET, &got[2]));
    let slack_path = format!("/slack/{SLACK_URL_TOKEN}");
    let posted = received(&rx, &slack_path, 1).await?;
    let text = body(&posted[0])?["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.starts_with("[Stowage] Backup failed: vanishing"),
        "{text}"
    );
    // Handed out in the same transaction as the hook's: none was queued for the pager.
    assert!(
        deliveries(&server, &admin, patient.summary.id)
            .await?
            .is_empty()
    );
    let second = run(&server, &admin, bad).await?;
    assert_eq!(second.status, "failed");
    let paged = received(&rx, "/pager", 1).await?;
    let msg = body(&paged[0])?;
    assert_eq!(msg["fields"]["consecutiveFailures"], 2);
    assert_eq!(msg["fields"]["recordId"], json!(second.id));
    assert!(
        !paged[0].headers.contains_key("x-stowage-signature"),
        "a channel without a secret sends no signature"
    );
    let got = received(&rx, "/hook", 4).await?;
    assert_eq!(body(&got[3])?["fields"]["consecutiveFailures"], 2);

    // No secret is readable through the API or sits in D1 in the clear.
    let mut seen = String::new();
    for path in [
        routes::NOTIFICATIONS.to_owned(),
        routes::notification(hook.summary.id),
        routes::notification(slack.summary.id),
        routes::notification_deliveries(hook.summary.id),
        routes::notification_deliveries(slack.summary.id),
        format!("{}?pageSize=200", routes::AUDIT_LOGS),
        routes::SETTINGS.to_owned(),
    ] {
        seen.push_str(&server.get(&path, Some(&admin)).await?.raw);
    }
    let d1 = crate::storage::d1_bytes(&server)?;
    for secret in [HOOK_SECRET, SLACK_URL_TOKEN] {
        assert!(!seen.contains(secret), "an answer shows {secret}");
        assert!(
            !d1.contains(secret),
            "D1 holds {secret} in the clear: {:?}",
            crate::storage::files_holding(&server, secret)
        );
    }
    assert!(
        d1.contains("ops hook"),
        "the grep reads the real database files"
    );

    // Saving with the masks keeps the secrets: the next message is still signed with the old one.
    let kept: NotificationDetail = server
        .put(
            &routes::notification(hook.summary.id),
            Some(&admin),
            &json!({"name": "ops hook", "type": "webhook", "events": ["backup_success"],
                    "config": {"url": rx.url("/hook"), "secret": "********"}}),
        )
        .await?
        .expect_ok()?;
    assert_eq!(kept.summary.events, ["backup_success"]);
    let tested: NotificationTestResult = server
        .post(
            &routes::notification_test(hook.summary.id),
            Some(&admin),
            &json!({}),
        )
        .await?
        .expect_ok()?;
    assert!(tested.success);
    let got = received(&rx, "/hook", 5).await?;
    assert_eq!(body(&got[4])?["event"], "test");
    assert!(signed_by(HOOK_SECRET, &got[4]));
    Ok(())
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server() -> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent: _agent,
    } = Fleet::start("mail-node").await?;
    let rx = Receivers::start()?;
    let config = json!({"host": "127.0.0.1", "port": rx.smtp_port, "security": "none",
                        "from": "stowage@example.com", "to": ["ops@example.com", "dba@example.com"]});
    // A password is never sent over an unencrypted connection.
    server
        .post(
            routes::NOTIFICATIONS,
            Some(&admin),
            &json!({"name": "mail", "type": "email", "events": ["backup_success"],
                    "config": {"host": "127.0.0.1", "port": rx.smtp_port, "security": "none",
                               "username": "u", "password": "p", "from": "a@example.com",
                               "to": ["b@example.com"]}}),
        )
        .await?
        .expect_error(400, "NOTIFICATION_INVALID")?;
    // STARTTLS asked for and not offered (aiosmtpd here speaks plain SMTP): refused, never sent
    // in the clear.
    let mut starttls = config.clone();
    starttls["security"] = json!("starttls");
    let refused = server
        .post(
            routes::NOTIFICATIONS_TEST,
            Some(&admin),
            &json!({"name": "tls", "type": "email", "events": ["backup_success"], "config": starttls}),
        )
        .await?;
    refused.expect_error(400, "NOTIFICATION_TEST_FAILED")?;
    assert!(refused.raw.contains("STARTTLS"), "{}", refused.raw);
    assert!(rx.mails()?.is_empty());
    let mail = channel(
        &server,
        &admin,
        json!({"name": "mail", "type": "email", "events": ["backup_success"], "config": config}),
    )
    .await?;
    let tested: NotificationTestResult = server
        .post(
            &routes::notification_test(mail.summary.id),
            Some(&admin),
            &json!({}),
        )
        .await?
        .expect_ok()?;
    assert!(tested.success);
    let mails = eventually("the test email", Duration::from_secs(20), || async {
        let m = rx.mails()?;
        Ok((!m.is_empty()).then_some(m))
    })
    .await?;
    assert_eq!(mails[0].mail_from, "stowage@example.com");
    assert_eq!(mails[0].rcpt_tos, ["ops@example.com", "dba@example.com"]);
    assert!(
        mails[0]
            .data
            .contains("Subject: [Stowage] Test notification"),
        "{}",
        mails[0].data
    );

    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("notes.txt"), "mail me")?;
    let store = tempfile::tempdir()?;
    let t = target(&server, &admin, "disk", &store.path().to_string_lossy()).await?;
    let id = task(
        &server,
        &admin,
        node.node.id,
        "notes",
        &src.path().to_string_lossy(),
        t,
    )
    .await?;
    let done = run(&server, &admin, id).await?;
    assert_eq!(done.status, "success");
    let mails = eventually("the backup email", Duration::from_secs(30), || async {
        let m = rx.mails()?;
        Ok((m.len() >= 2).then_some(m))
    })
    .await?;
    let data = &mails[1].data;
    assert!(
        data.contains("Subject: [Stowage] Backup succeeded: notes"),
        "{data}"
    );
    assert!(data.contains("Node: mail-node"), "{data}");
    assert!(
        data.contains(&format!("/backup/records/{}", done.id)),
        "{data}"
    );
    Ok(())
}

#[tokio::test]
async fn tests_report_unreachable_and_refusing_receivers_as_400_and_bad_channels_are_refused()
-> Result<()> {
    let server = Server::start().await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let rx = Receivers::start()?;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let test = |config: Value, kind: &str| json!({"name": "t", "type": kind, "events": ["backup_failed"], "config": config});
    let refused = server
        .post(
            routes::NOTIFICATIONS_TEST,
            Some(&admin),
            &test(
                json!({"url": format!("http://127.0.0.1:{closed}/hook")}),
                "webhook",
            ),
        )
        .await?;
    refused.expect_error(400, "NOTIFICATION_TEST_FAILED")?;
    assert!(
        refused.raw.contains("could not reach http://127.0.0.1"),
        "{}",
        refused.raw
    );
    let missing = server
        .post(
            routes::NOTIFICATIONS_TEST,
            Some(&admin),
            &test(json!({"url": rx.url("/status/404")}), "webhook"),
        )
        .await?;
    missing.expect_error(400, "NOTIFICATION_TEST_FAILED")?;
    assert!(missing.raw.contains("HTTP 404"), "{}", missing.raw);

    // Telegram's Bot API shape, through a stand-in; a refusal never quotes the token.
    let tg = test(
        json!({"botToken": BOT_TOKEN, "chatId": "-1001", "apiUrl": rx.url("/tg")}),
        "telegram",
    );
    let ok: NotificationTestResult = server
        .post(routes::NOTIFICATIONS_TEST, Some(&admin), &tg)
        .await?
        .expect_ok()?;
    assert!(ok.success);
    let sent = rx.requests(&format!("/tg/bot{BOT_TOKEN}/sendMessage"))?;
    assert_eq!(sent.len(), 1);
    assert_eq!(body(&sent[0])?["chat_id"], "-1001");
    let tg_refused = server
        .post(
            routes::NOTIFICATIONS_TEST,
            Some(&admin),
            &test(
                json!({"botToken": BOT_TOKEN, "chatId": "1", "apiUrl": format!("http://127.0.0.1:{closed}")}),
                "telegram",
            ),
        )
        .await?;
    tg_refused.expect_error(400, "NOTIFICATION_TEST_FAILED")?;
    assert!(
        !tg_refused.raw.contains("bot-token-never-shown"),
        "{}",
        tg_refused.raw
    );

    // ntfy and Discord in their own shapes.
    for (kind, config, path) in [
        (
            "ntfy",
            json!({"serverUrl": rx.url("/ntfy"), "topic": "backups", "token": "tk_x"}),
            "/ntfy",
        ),
        (
            "discord",
            json!({"webhookUrl": rx.url("/discord/1/x")}),
            "/discord/1/x",
        ),
    ] {
        let r: NotificationTestResult = server
            .post(
                routes::NOTIFICATIONS_TEST,
                Some(&admin),
                &test(config, kind),
            )
            .await?
            .expect_ok()?;
        assert!(r.success, "{kind}");
        let got = rx.requests(path)?;
        assert_eq!(got.len(), 1, "{kind}");
        let b = body(&got[0])?;
        match kind {
            "ntfy" => {
                assert_eq!(b["topic"], "backups");
                assert_eq!(
                    got[0].headers.get("authorization").map(String::as_str),
                    Some("Bearer tk_x")
                );
            }
            _ => assert!(
                b["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("Test notification"))
            ),
        }
    }

    // Bad channels are 400s that name the problem.
    for (body, needle) in [
        (
            json!({"name": "x", "type": "pager", "events": ["backup_failed"], "config": {}}),
            "type",
        ),
        (
            json!({"name": "x", "type": "webhook", "events": ["backup_done"], "config": {"url": rx.url("/")}}),
            "events",
        ),
        (
            json!({"name": "x", "type": "webhook", "events": [], "config": {"url": rx.url("/")}}),
            "events",
        ),
        (
            json!({"name": "x", "type": "webhook", "events": ["backup_failed"], "config": {"url": "file:///etc/passwd"}}),
            "url",
        ),
        (
            json!({"name": "x", "type": "email", "events": ["backup_failed"], "config": {"host": "h", "from": "a@b.c", "to": ["x@y.z\r\nBcc: e@f.g"]}}),
            "to",
        ),
        (
            json!({"name": "", "type": "webhook", "events": ["backup_failed"], "config": {"url": rx.url("/")}}),
            "name",
        ),
        (
            json!({"name": "x", "type": "webhook", "events": ["backup_failed"], "failureThreshold": 0, "config": {"url": rx.url("/")}}),
            "failureThreshold",
        ),
    ] {
        let reply = server
            .post(routes::NOTIFICATIONS, Some(&admin), &body)
            .await?;
        reply.expect_error(400, "NOTIFICATION_INVALID")?;
        assert!(reply.raw.contains(needle), "{needle}: {}", reply.raw);
    }
    let made = channel(
        &server,
        &admin,
        json!({"name": "dup", "type": "webhook", "events": ["backup_failed"], "config": {"url": rx.url("/")}}),
    )
    .await?;
    server
        .post(
            routes::NOTIFICATIONS,
            Some(&admin),
            &json!({"name": "DUP", "type": "webhook", "events": ["backup_failed"], "config": {"url": rx.url("/")}}),
        )
        .await?
        .expect_error(409, "NOTIFICATION_NAME_EXISTS")?;
    server
        .put(
            &routes::notification(made.summary.id),
            Some(&admin),
            &json!({"name": "dup", "type": "slack", "events": ["backup_failed"], "config": {"webhookUrl": rx.url("/")}}),
        )
        .await?
        .expect_error(400, "NOTIFICATION_INVALID")?;
    let list: Vec<NotificationSummary> = server
        .get(routes::NOTIFICATIONS, Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(list.len(), 1);
    server
        .delete(&routes::notification(made.summary.id), Some(&admin))
        .await?
        .expect_ok::<Value>()?;
    server
        .get(&routes::notification(made.summary.id), Some(&admin))
        .await?
        .expect_error(404, "NOTIFICATION_NOT_FOUND")?;
    Ok(())
}

#[tokio::test]
async fn nodes_going_offline_and_back_and_failed_storage_tests_are_told() -> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent,
    } = Fleet::start("flappy").await?;
    let rx = Receivers::start()?;
    channel(
        &server,
        &admin,
        json!({"name": "fleet", "type": "webhook",
               "events": ["node_offline", "node_online", "storage_test_failed"],
               "config": {"url": rx.url("/fleet")}}),
    )
    .await?;
    // The offline threshold is a setting: three seconds of silence here.
    server
        .put(
            routes::SETTINGS,
            Some(&admin),
            &json!({"nodeOfflineAfterSecs": 3}),
        )
        .await?
        .expect_ok::<Value>()?;
    drop(agent);
    let got = eventually(
        "the node to be told offline",
        Duration::from_secs(30),
        || async {
            server.trigger_cron().await?;
            let got = rx.requests("/fleet")?;
            Ok((!got.is_empty()).then_some(got))
        },
    )
    .await?;
    let msg = body(&got[0])?;
    assert_eq!(msg["event"], "node_offline");
    assert_eq!(msg["fields"]["nodeName"], "flappy");
    // A second tick tells nothing new, and the API judges the node as the tick did.
    server.trigger_cron().await?;
    assert_eq!(rx.requests("/fleet")?.len(), 1);
    let seen: NodeOutput = server
        .get(&routes::node(node.node.id), Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(seen.status, NodeStatus::Offline);

    let _back = AgentProcess::start(&server.base_url, node.token.expose())?;
    let got = received(&rx, "/fleet", 2).await?;
    assert_eq!(body(&got[1])?["event"], "node_online");
    // Back to the deployment's threshold, so a slow moment of this machine cannot flip it again.
    server
        .put(
            routes::SETTINGS,
            Some(&admin),
            &json!({"nodeOfflineAfterSecs": null}),
        )
        .await?
        .expect_ok::<Value>()?;

    // A local target the agent cannot write to fails its test, and that is told too.
    let bad = target(
        &server,
        &admin,
        "unwritable",
        "/proc/stowage-cannot-write-here",
    )
    .await?;
    server
        .post(
            &format!(
                "{}?nodeId={}",
                routes::storage_target_test(bad),
                node.node.id
            ),
            Some(&admin),
            &json!({}),
        )
        .await?
        .expect_error(400, "STORAGE_TARGET_TEST_FAILED")?;
    let got = received(&rx, "/fleet", 3).await?;
    let msg = body(&got[2])?;
    assert_eq!(msg["event"], "storage_test_failed");
    assert_eq!(msg["fields"]["storageTargetName"], "unwritable");
    Ok(())
}
