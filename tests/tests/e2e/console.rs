//! The web console in a real browser (headless Chromium through playwright-core,
//! `tests/browser/console.mjs`), served by the real Worker from its static assets, with a real
//! agent on the node the browser adds: set up the admin, add a local target, create a file task
//! with the directory picker, run it, follow its live log to success, download the artifact,
//! restore it, see the dashboard count it, sign out. Screenshots of each page go to
//! `target/screenshots/console/` for a reviewer to look at (they are not committed).

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use stowage_shared::api::{
    AuthPayload, BackupRecordOutput, BackupTaskOutput, NodeOutput, Page, RestoreRecordOutput,
    StorageTargetDetail, routes,
};
use stowage_tests::{AgentProcess, Receivers, Server, ServerOptions, eventually, repo_root};

const PASSWORD: &str = "console correct horse";
const NEW_PASSWORD: &str = "console battery staple";

/// The directories a browser phase works with.
struct Env<'a> {
    /// Scratch space (the agent's token file).
    dir: &'a Path,
    /// What the task backs up.
    src: &'a Path,
    /// The local storage target's directory.
    store: &'a Path,
    /// Where the restore goes.
    restore: &'a Path,
    /// The webhook receiver's URL.
    hook: String,
    /// The repository phase: its record, and where the picked folder is restored.
    record: i64,
    picked: &'a Path,
}

/// Runs one phase of the browser script and returns what it printed.
fn browser(phase: &str, server: &Server, env: &Env<'_>) -> Result<Value> {
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
        .env("STOWAGE_TEST_DIR", env.dir)
        .env("STOWAGE_TEST_SRC", env.src)
        .env("STOWAGE_TEST_STORE", env.store)
        .env("STOWAGE_TEST_RESTORE", env.restore)
        .env("STOWAGE_TEST_RECORD", env.record.to_string())
        .env("STOWAGE_TEST_PICKED", env.picked)
        .env("STOWAGE_TEST_HOOK", &env.hook)
        .env("STOWAGE_TEST_NEW_PASSWORD", NEW_PASSWORD)
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
async fn the_console_sets_up_backs_up_downloads_restores_and_counts_it() -> Result<()> {
    let rx = Receivers::start()?;
    let server = Server::start_with(
        ServerOptions::default().var("RELEASES_URL", rx.url("/releases/v99.1.0")),
    )
    .await?;
    // The Worker serves the console for every path that is not the API's.
    let page = server
        .http()
        .get(server.url("/backup/records/7"))
        .send()
        .await?;
    ensure!(page.status() == 200, "{}", page.status());
    ensure!(page.text().await?.contains("/pkg/stowage_console.js"));

    let scratch = tempfile::tempdir()?;
    let store = tempfile::tempdir()?;
    let restored = tempfile::tempdir()?;
    let src = tempfile::tempdir()?;
    std::fs::write(src.path().join("hosts"), "127.0.0.1 localhost\n")?;
    std::fs::create_dir(src.path().join("nested"))?;
    std::fs::write(src.path().join("nested/motd"), "welcome\n")?;
    let picked = tempfile::tempdir()?;
    let repo_store = tempfile::tempdir()?;
    let mut env = Env {
        dir: scratch.path(),
        src: src.path(),
        store: store.path(),
        restore: restored.path(),
        hook: rx.url("/hook"),
        record: 0,
        picked: picked.path(),
    };

    let first = browser("setup", &server, &env)?;
    assert_eq!(first["setup"], true);

    // The browser adds the node and leaves its token in a 0600 file; a real agent runs with it.
    let second = browser("node", &server, &env)?;
    assert_eq!(second["node"], true);
    let token_file = scratch.path().join("agent.token");
    let token = std::fs::read_to_string(&token_file)?;
    let token = token.trim();
    let auth: AuthPayload = server.login("admin", PASSWORD).await?.expect_ok()?;
    let admin = auth.token.expose().to_owned();
    let nodes: Vec<NodeOutput> = server.get(routes::NODES, Some(&admin)).await?.expect_ok()?;
    let node = nodes
        .iter()
        .find(|n| n.name == "browser-node")
        .context("the node added in the browser")?;
    let _agent = AgentProcess::start(&server.base_url, token)?;
    server.wait_online(&admin, node.id).await?;

    let third = browser("backup", &server, &env)?;
    assert_eq!(third["backup"]["tasks"], "1");
    assert_eq!(third["backup"]["rate"], "100.0 %");

    // What the browser did is real: the record it watched, the files it restored.
    let records: Page<BackupRecordOutput> = server
        .get(routes::BACKUP_RECORDS, Some(&admin))
        .await?
        .expect_ok()?;
    let record = records.items.first().context("the browser's backup")?;
    assert_eq!(record.status, "success");
    assert_eq!(record.checksum, third["backup"]["checksum"]);
    let tasks: Vec<BackupTaskOutput> = server
        .get(routes::BACKUP_TASKS, Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(tasks[0].source_paths, [src.path().to_string_lossy()]);
    assert_eq!(tasks[0].cron_expr, "0 3 * * *");
    assert_eq!(tasks[0].time_zone, "Asia/Shanghai");
    assert_eq!(tasks[0].exclude_patterns, ["*.tmp"], "the edit was saved");
    let beneath = restored
        .path()
        .join(src.path().strip_prefix("/").unwrap_or(src.path()));
    assert_eq!(
        std::fs::read_to_string(beneath.join("hosts"))?,
        "127.0.0.1 localhost\n"
    );
    assert_eq!(
        std::fs::read_to_string(beneath.join("nested/motd"))?,
        "welcome\n"
    );
    let restores: Vec<RestoreRecordOutput> = server
        .get(routes::RESTORE_RECORDS, Some(&admin))
        .await?
        .expect_ok()?;
    assert_eq!(restores.len(), 1);
    assert_eq!(
        (restores[0].status.as_str(), restores[0].files),
        ("success", 2)
    );

    // The administrator's pages: a webhook channel tested twice (unsaved, then saved), the audit
    // log, settings, the update check and a password change.
    let fourth = browser("admin", &server, &env)?;
    assert_eq!(fourth["admin"], true);
    let hooks = rx.requests("/hook")?;
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    assert!(
        hooks
            .iter()
            .all(|h| h.headers.contains_key("x-stowage-signature")),
        "signed: {hooks:?}"
    );
    // The password change revoked the other sessions; the new password signs in.
    let stale = server.get(routes::AUTH_PROFILE, Some(&admin)).await?;
    assert_eq!(stale.status, 401);
    let auth: AuthPayload = server.login("admin", NEW_PASSWORD).await?.expect_ok()?;
    let settings: Value = server
        .get(routes::SETTINGS, Some(auth.token.expose()))
        .await?
        .expect_ok()?;
    assert_eq!(settings["siteName"], "Fleet backups");
    assert_eq!(settings["timeZone"], "UTC");
    let tasks: Vec<BackupTaskOutput> = server
        .get(routes::BACKUP_TASKS, Some(auth.token.expose()))
        .await?
        .expect_ok()?;
    assert!(!tasks[0].enabled, "the browser paused the task");
    let records: Page<BackupRecordOutput> = server
        .get(routes::BACKUP_RECORDS, Some(auth.token.expose()))
        .await?
        .expect_ok()?;
    assert_eq!(records.total, 0, "the browser deleted the backup");

    // A repository record: browsed, restored in part, checked and its repository pruned, all
    // from the console.
    let admin = auth.token.expose();
    let target: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(admin),
            &serde_json::json!({"name": "repo-disk", "type": "local_disk",
                                "config": {"basePath": repo_store.path()}}),
        )
        .await?
        .expect_ok()?;
    let task: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(admin),
            &serde_json::json!({"name": "deduplicated", "type": "file", "nodeId": node.id,
                                "format": "repository", "sourcePaths": [src.path()],
                                "storageTargetIds": [target.summary.id]}),
        )
        .await?
        .expect_ok()?;
    let started: BackupRecordOutput = server
        .post(
            &routes::backup_task_run(task.id),
            Some(admin),
            &serde_json::json!({}),
        )
        .await?
        .expect_ok()?;
    let record = server.settled(admin, started.id, false).await?;
    assert_eq!(record.status, "success", "{record:?}");
    env.record = record.id;
    let fifth = browser("repository", &server, &env)?;
    assert!(
        fifth["repository"]["verdict"]
            .as_str()
            .is_some_and(|v| v.contains("whole")),
        "{fifth}"
    );
    let beneath = picked
        .path()
        .join(src.path().strip_prefix("/").unwrap_or(src.path()));
    assert_eq!(
        std::fs::read_to_string(beneath.join("nested/motd"))?,
        "welcome\n"
    );
    assert!(
        !beneath.join("hosts").exists(),
        "only the picked folder is restored"
    );
    // The kit sheet the browser showed opens the repository with plain restic.
    let sheet = fifth["repository"]["kit"]
        .as_str()
        .context("the kit sheet")?;
    let password = sheet
        .lines()
        .find_map(|l| l.strip_prefix("password:"))
        .map(str::trim)
        .context("the sheet names the password")?;
    let pw = tempfile::NamedTempFile::new()?;
    std::fs::write(pw.path(), password)?;
    let listed = Command::new("restic")
        .arg("--repo")
        .arg(repo_store.path().join("restic"))
        .arg("--password-file")
        .arg(pw.path())
        .args(["--no-cache", "snapshots", "--json"])
        .output()
        .context("restic is not installed (scripts/install.sh installs it)")?;
    ensure!(
        listed.status.success(),
        "restic with the kit's password: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let snapshots: Value = serde_json::from_slice(&listed.stdout)?;
    ensure!(snapshots.as_array().map(Vec::len) == Some(1), "{snapshots}");
    eventually(
        "the prune started in the browser to end",
        Duration::from_secs(60),
        || async {
            let t: StorageTargetDetail = server
                .get(&routes::storage_target(target.summary.id), Some(admin))
                .await?
                .expect_ok()?;
            Ok(t.summary
                .repository
                .filter(|r| !r.pruning && r.pruned_at.is_some())
                .map(drop))
        },
    )
    .await?;
    Ok(())
}
