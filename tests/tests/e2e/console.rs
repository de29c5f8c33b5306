//! The web console in a real browser (headless Chromium through playwright-core,
//! `tests/browser/console.mjs`), served by the real Worker from its static assets, with the real
//! agent doing the backup the dashboard then shows and testing the storage target added there. Screenshots of each page go to
//! `target/screenshots/console/` for a reviewer to look at (they are not committed).

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use std::process::Command;
use stowage_shared::api::{
    AuthPayload, BackupRecordOutput, BackupTaskOutput, NodeWithToken, StorageTargetDetail, routes,
};
use stowage_tests::{AgentProcess, Server, repo_root};

const PASSWORD: &str = "console correct horse";

/// Runs one phase of the browser script and returns what it printed.
fn browser(phase: &str, server: &Server, dir: &std::path::Path) -> Result<Value> {
    let root = repo_root();
    let shots = root.join("target/screenshots/console");
    std::fs::create_dir_all(&shots)?;
    let node = root.join("node_modules/.bin/node");
    ensure!(
        node.exists() && root.join("node_modules/playwright-core").exists(),
        "Node 22 and playwright-core are missing from node_modules: run `make install`"
    );
    ensure!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run `make install` (Debian's chromium package)"
    );
    let out = Command::new(&node)
        .arg(root.join("tests/browser/console.mjs"))
        .arg(phase)
        .arg(server.url(""))
        .arg(&shots)
        .env("STOWAGE_TEST_PASSWORD", PASSWORD)
        .env("STOWAGE_TEST_DIR", dir)
        .current_dir(&root)
        .output()
        .context("running the browser script")?;
    ensure!(
        out.status.success(),
        "the browser's {phase} phase failed:\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("the browser printed {text:?}"))
}

#[tokio::test]
async fn the_console_sets_up_the_admin_signs_in_and_out_and_shows_the_dashboard() -> Result<()> {
    let server = Server::start().await?;
    // The Worker serves the console for every path that is not the API's.
    let page = server
        .http()
        .get(server.url("/backup/records/7"))
        .send()
        .await?;
    ensure!(page.status() == 200, "{}", page.status());
    ensure!(page.text().await?.contains("/pkg/stowage_console.js"));

    let scratch = tempfile::tempdir()?;
    let first = browser("setup", &server, scratch.path())?;
    assert_eq!(first["setup"], true);

    // What the console cannot do yet is done through the API: a node with a real agent, a
    // target and a task, run once.
    let auth: AuthPayload = server.login("admin", PASSWORD).await?.expect_ok()?;
    let admin = auth.token.expose().to_owned();
    let node: NodeWithToken = server
        .post(
            routes::NODES,
            Some(&admin),
            &json!({"name": "browser-node"}),
        )
        .await?
        .expect_ok()?;
    let _agent = AgentProcess::start(&server.base_url, node.token.expose())?;
    server.wait_online(&admin, node.node.id).await?;
    let store = tempfile::tempdir()?;
    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("hosts"), "127.0.0.1 localhost\n")?;
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(&admin),
            &json!({"name": "disk", "type": "local_disk", "config": {"basePath": store.path()}}),
        )
        .await?
        .expect_ok()?;
    let task: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "etc", "type": "file", "nodeId": node.node.id,
                    "sourcePaths": [src.path()], "storageTargetIds": [target.summary.id]}),
        )
        .await?
        .expect_ok()?;
    let started: BackupRecordOutput = server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?
        .expect_ok()?;
    let done = server.settled(&admin, started.id, false).await?;
    assert_eq!(done.status, "success");

    let second = browser("dashboard", &server, scratch.path())?;
    assert_eq!(second["dashboard"]["tasks"], "1");
    assert_eq!(second["dashboard"]["rate"], "100.0 %");
    // The target the browser added is real, and its test reached the agent.
    let targets: Vec<stowage_shared::api::StorageTargetSummary> = server
        .get(routes::STORAGE_TARGETS, Some(&admin))
        .await?
        .expect_ok()?;
    let added = targets
        .iter()
        .find(|t| t.name == "browser-disk")
        .context("the target added in the browser")?;
    assert_eq!(added.last_test_status, "success");
    Ok(())
}
