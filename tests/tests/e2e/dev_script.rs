//! `make dev` as a user runs it (its script, on a built checkout): the Worker, the local agent and
//! the minute tick. Nothing triggers the scheduled handler by hand here: a scheduled backup must
//! start because `make dev` drives the tick as Cloudflare's cron trigger does.

use anyhow::{Context, Result, ensure};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use stowage_shared::api::{
    BackupRecordOutput, BackupTaskOutput, NodeOutput, NodeStatus, Page, StorageTargetDetail,
    SystemInfo, routes,
};
use stowage_tests::{eventually, repo_root};

/// `scripts/dev.sh` in its own process group; dropping it stops everything it started.
struct Dev {
    child: std::sync::Mutex<Child>,
    base_url: String,
    state: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let _ = child.wait();
    }
}

/// A free port above 55535, where `PORT + 10000` (the old inspector port) is no port at all.
fn high_free_port(from: u16) -> Result<u16> {
    (from..65500)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .context("no free port above 60000")
}

impl Dev {
    fn start(from_port: u16) -> Result<Self> {
        let state = tempfile::Builder::new().prefix("stowage-dev-").tempdir()?;
        let port = high_free_port(from_port)?;
        let log = std::fs::File::create(state.path().join("dev.log"))?;
        let child = Command::new("bash")
            .arg(repo_root().join("scripts/dev.sh"))
            .env("PORT", port.to_string())
            .env("STOWAGE_STATE_DIR", state.path().join("state"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting scripts/dev.sh")?;
        Ok(Self {
            child: std::sync::Mutex::new(child),
            base_url: format!("http://127.0.0.1:{port}"),
            state,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.state.path().join(name)).unwrap_or_default();
        format!(
            "dev.log:\n{}\nagent.log:\n{}\ntick.log:\n{}",
            read("dev.log"),
            read("state/agent.log"),
            read("state/tick.log")
        )
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let envelope: serde_json::Value = resp.json().await?;
        ensure!(
            status.is_success() && envelope["code"] == "OK",
            "{path} answered {status}: {envelope}"
        );
        Ok(envelope["data"].clone())
    }
}

#[tokio::test]
async fn make_dev_runs_a_scheduled_backup_by_itself_on_a_high_port() -> Result<()> {
    // Two instances started at once in one checkout (their own ports and state) both come up.
    let dev = Dev::start(60000)?;
    let twin = Dev::start(62000)?;
    for one in [&dev, &twin] {
        eventually(
            "make dev to answer /api/health",
            Duration::from_secs(90),
            || async {
                ensure!(
                    one.child_alive(),
                    "scripts/dev.sh ended early:\n{}",
                    one.log()
                );
                Ok(one
                    .http
                    .get(format!("{}{}", one.base_url, routes::HEALTH))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                    .then_some(()))
            },
        )
        .await?;
    }
    drop(twin);
    let auth = dev
        .call(
            reqwest::Method::POST,
            routes::AUTH_SETUP,
            None,
            Some(json!({"username": "admin", "password": "correct horse battery"})),
        )
        .await?;
    let token = auth["token"].as_str().unwrap_or_default().to_owned();
    let node: NodeOutput = eventually(
        "the node `local` to be online",
        Duration::from_secs(60),
        || async {
            let nodes: Vec<NodeOutput> = serde_json::from_value(
                dev.call(reqwest::Method::GET, routes::NODES, Some(&token), None)
                    .await?,
            )?;
            Ok(nodes
                .into_iter()
                .find(|n| n.name == "local" && n.status == NodeStatus::Online))
        },
    )
    .await
    .with_context(|| dev.log())?;

    let source = tempfile::tempdir()?;
    std::fs::write(source.path().join("notes.txt"), "backed up on schedule")?;
    let store = tempfile::tempdir()?;
    let target: StorageTargetDetail = serde_json::from_value(
        dev.call(
            reqwest::Method::POST,
            routes::STORAGE_TARGETS,
            Some(&token),
            Some(
                json!({"name": "disk", "type": "local_disk", "config": {"basePath": store.path()}}),
            ),
        )
        .await?,
    )?;
    let task: BackupTaskOutput = serde_json::from_value(
        dev.call(
            reqwest::Method::POST,
            routes::BACKUP_TASKS,
            Some(&token),
            Some(
                json!({"name": "every minute", "type": "file", "nodeId": node.id,
                        "sourcePaths": [source.path()], "storageTargetIds": [target.summary.id],
                        "cronExpr": "* * * * *", "timeZone": "UTC"}),
            ),
        )
        .await?,
    )?;

    // No trigger from here: the first minute boundary after the task exists starts a run.
    let record: BackupRecordOutput = eventually(
        "a scheduled run to succeed",
        Duration::from_secs(150),
        || async {
            let page: Page<BackupRecordOutput> = serde_json::from_value(
                dev.call(
                    reqwest::Method::GET,
                    &format!("{}?taskId={}", routes::BACKUP_RECORDS, task.id),
                    Some(&token),
                    None,
                )
                .await?,
            )?;
            Ok(page
                .items
                .into_iter()
                .find(|r| r.trigger == "schedule" && r.status == "success"))
        },
    )
    .await
    .with_context(|| dev.log())?;
    assert_eq!(record.files, 1, "{record:?}");
    assert!(record.fire_at.is_some(), "{record:?}");

    // The tick that ran it is the scheduler's heartbeat too.
    let info: SystemInfo = serde_json::from_value(
        dev.call(
            reqwest::Method::GET,
            routes::SYSTEM_INFO,
            Some(&token),
            None,
        )
        .await?,
    )?;
    assert!(
        info.cron.healthy && info.cron.last_tick_at.is_some(),
        "{info:?}"
    );
    Ok(())
}

impl Dev {
    fn child_alive(&self) -> bool {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_wait()
            .is_ok_and(|status| status.is_none())
    }
}
