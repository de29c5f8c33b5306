//! Database tasks written as repository snapshots, end to end: the real Worker, a real agent, the
//! machine's MariaDB and PostgreSQL and an SQLite file. Each dump is made once and lands in two
//! repositories at the same time; Stowage restores it (over the original, under a new name, from
//! either copy), and plain `restic` with only the recovery kit dumps the same files into the
//! engine's own client. A dump program that fails leaves no snapshot behind.

use crate::database_backups::sql;
use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use stowage_shared::api::{
    BackupRecordOutput, BackupTaskOutput, RestoreRecordOutput, StorageTargetDetail, routes,
};
use stowage_shared::recovery::RecoveryKit;
use stowage_tests::{Fleet, Server, eventually};

const ADMIN_PASSWORD: &str = "correct horse battery";

/// `restic` with the kit's password in a 0600 file; its stdout as bytes.
fn restic(kit: &RecoveryKit, args: &[&str]) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pass");
    std::fs::write(&file, kit.password.expose())?;
    let out = Command::new("restic")
        .args(["--repo", &kit.repository, "--no-cache", "--password-file"])
        .arg(&file)
        .args(args)
        .output()
        .context("restic is not installed (scripts/install.sh installs Debian's restic)")?;
    ensure!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

fn snapshot_count(kit: &RecoveryKit) -> Result<usize> {
    let listed: Value = serde_json::from_slice(&restic(kit, &["snapshots", "--json"])?)?;
    Ok(listed.as_array().map_or(0, Vec::len))
}

/// Feeds `sql` into the engine's own client as the superuser, into `database`.
fn pipe_into(engine: &str, database: &str, sql_text: &[u8]) -> Result<()> {
    let mut cmd = match engine {
        "mysql" => {
            let mut c = Command::new("mariadb");
            c.args(["-uroot", &format!("--database={database}")]);
            c
        }
        _ => {
            let mut c = Command::new("psql");
            c.args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-d", database]);
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(child.stdin.as_mut().context("stdin")?, sql_text)?;
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "{engine} refused the dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

async fn target(server: &Server, admin: &str, name: &str, dir: &Path) -> Result<i64> {
    let t: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(admin),
            &json!({"name": name, "type": "local_disk", "config": {"basePath": dir}}),
        )
        .await?
        .expect_ok()?;
    Ok(t.summary.id)
}

async fn task(server: &Server, admin: &str, body: Value) -> Result<i64> {
    let t: BackupTaskOutput = server
        .post(routes::BACKUP_TASKS, Some(admin), &body)
        .await?
        .expect_ok()?;
    ensure!(t.format == "repository", "{t:?}");
    Ok(t.id)
}

async fn run(server: &Server, admin: &str, task: i64) -> Result<BackupRecordOutput> {
    let started: BackupRecordOutput = server
        .post(&routes::backup_task_run(task), Some(admin), &json!({}))
        .await?
        .expect_ok()?;
    server.settled(admin, started.id, false).await
}

async fn restore(server: &Server, admin: &str, record: i64, body: Value) -> Result<()> {
    let started: RestoreRecordOutput = server
        .post(&routes::backup_record_restore(record), Some(admin), &body)
        .await?
        .expect_ok()?;
    let done = eventually("the restore to end", Duration::from_secs(90), || async {
        let r: RestoreRecordOutput = server
            .get(&routes::restore_record(started.id), Some(admin))
            .await?
            .expect_ok()?;
        Ok((r.status != "running").then_some(r))
    })
    .await?;
    ensure!(done.status == "success", "{done:?}");
    Ok(())
}

async fn kit(server: &Server, admin: &str, target: i64) -> Result<RecoveryKit> {
    server
        .post(
            &routes::storage_target_recovery_kit(target),
            Some(admin),
            &json!({"currentPassword": ADMIN_PASSWORD}),
        )
        .await?
        .expect_ok()
}

/// A good run: a snapshot on both targets, the databases named.
fn good(record: &BackupRecordOutput, databases: usize) -> Result<()> {
    ensure!(record.status.as_str() == "success", "{record:?}");
    ensure!(
        record.format == stowage_shared::status::BackupFormat::Repository,
        "{record:?}"
    );
    ensure!(record.targets.len() == 2, "{record:?}");
    for t in &record.targets {
        ensure!(t.snapshot_id.len() == 64 && t.path == "restic", "{t:?}");
    }
    ensure!(record.databases.len() == databases, "{record:?}");
    Ok(())
}

fn mysql_state(db: &str) -> Result<String> {
    Ok(format!(
        "{} | {}",
        sql("mysql", Some(db), "SELECT COUNT(*) FROM orders")?,
        sql("mysql", Some(db), "CHECKSUM TABLE orders EXTENDED")?
            .split('\t')
            .nth(1)
            .unwrap_or_default()
    ))
}

fn pg_state(db: &str) -> Result<String> {
    Ok(format!(
        "{} | {}",
        sql("postgresql", Some(db), "SELECT count(*) FROM ledger")?,
        sql(
            "postgresql",
            Some(db),
            "SELECT md5(string_agg(l::text, '|' ORDER BY id)) FROM ledger l"
        )?
    ))
}

#[tokio::test]
async fn database_tasks_store_snapshots_that_stowage_and_plain_restic_restore() -> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent: _agent,
    } = Fleet::start("db-repo").await?;
    let tag = std::process::id();
    let (my, my_copy, my_plain) = (
        format!("stowage_repo_my_{tag}"),
        format!("stowage_repo_my_{tag}_copy"),
        format!("stowage_repo_my_{tag}_plain"),
    );
    let (pg, pg_plain) = (
        format!("stowage_repo_pg_{tag}"),
        format!("stowage_repo_pg_{tag}_plain"),
    );
    let cleanup = || {
        for d in [&my, &my_copy, &my_plain] {
            let _ = sql("mysql", None, &format!("DROP DATABASE IF EXISTS {d}"));
        }
        for d in [&pg, &pg_plain] {
            let _ = sql(
                "postgresql",
                None,
                &format!("DROP DATABASE IF EXISTS {d} WITH (FORCE)"),
            );
        }
    };
    cleanup();
    let outcome = async {
        let work = tempfile::tempdir()?;
        let targets = [
            target(&server, &admin, "disk-a", &work.path().join("a")).await?,
            target(&server, &admin, "disk-b", &work.path().join("b")).await?,
        ];

        // MariaDB: ~6 MB of rows. Without its comments (`--skip-comments` drops the dump's date)
        // an unchanged re-dump is the same bytes, so it must add only the snapshot's trees: with
        // the date in, what it adds depends on where the chunker cuts near the end (measured
        // from a fifth to over a quarter of the first run), too loose a figure to test.
        sql("mysql", None, &format!("CREATE DATABASE {my}"))?;
        sql(
            "mysql",
            Some(&my),
            "CREATE TABLE orders (id INT PRIMARY KEY, who VARCHAR(80) CHARACTER SET utf8mb4, note TEXT);
             SET SESSION max_recursive_iterations = 100000;
             INSERT INTO orders WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 60000)
             SELECT i, CONCAT('Kunde ', i, ' — 顧客'), SHA2(i, 256) FROM s;",
        )?;
        let my_before = mysql_state(&my)?;
        let my_task = task(
            &server,
            &admin,
            json!({"name": "shop", "type": "mysql", "nodeId": node.node.id, "format": "repository",
                   "storageTargetIds": targets, "dbHost": "127.0.0.1", "dbUser": "root",
                   "dbNames": [my], "dbOptions": ["--skip-comments"]}),
        )
        .await?;
        let first = run(&server, &admin, my_task).await?;
        good(&first, 1)?;
        let second = run(&server, &admin, my_task).await?;
        good(&second, 1)?;
        for (a, b) in first.targets.iter().zip(&second.targets) {
            ensure!(
                a.bytes > 1_000_000 && b.bytes < 64 * 1024,
                "an unchanged re-dump added {} bytes after {}",
                b.bytes,
                a.bytes
            );
        }
        let kits = [kit(&server, &admin, targets[0]).await?, kit(&server, &admin, targets[1]).await?];

        // Plain restic: the dump is a file of the snapshot, and it restores with the client.
        let file = format!("/mysql/{my}.sql");
        let listed = String::from_utf8(restic(&kits[1], &["ls", &second.targets[1].snapshot_id])?)?;
        ensure!(listed.lines().any(|l| l == file), "{listed}");
        let dumped = restic(&kits[1], &["dump", &second.targets[1].snapshot_id, &file])?;
        sql("mysql", None, &format!("CREATE DATABASE {my_plain}"))?;
        pipe_into("mysql", &my_plain, &dumped)?;
        ensure!(mysql_state(&my_plain)? == my_before, "restic's copy differs");
        restic(&kits[0], &["check", "--read-data"])?;

        // Browsed through the agent, the dump shows its real size (the tree records none).
        let listed: stowage_shared::api::FsListing = server
            .get(&format!("{}?path=/mysql", routes::backup_record_files(second.id)), Some(&admin))
            .await?
            .expect_ok()?;
        ensure!(
            listed.entries.len() == 1
                && listed.entries[0].name == format!("{my}.sql")
                && listed.entries[0].size == dumped.len() as u64,
            "{listed:?} (the dump is {} bytes)",
            dumped.len()
        );

        // Stowage: over the damaged original, and from the second copy under a new name.
        sql("mysql", Some(&my), "DELETE FROM orders WHERE id % 3 = 0; UPDATE orders SET note = 'x'")?;
        restore(&server, &admin, second.id, json!({})).await?;
        ensure!(mysql_state(&my)? == my_before, "{} != {my_before}", mysql_state(&my)?);
        restore(
            &server,
            &admin,
            first.id,
            json!({"storageTargetId": targets[1], "targetDatabase": my_copy}),
        )
        .await?;
        ensure!(mysql_state(&my_copy)? == my_before);

        // A dump that fails (no such database) is a failed run and leaves no snapshot.
        let snapshots_before = snapshot_count(&kits[0])?;
        let broken = task(
            &server,
            &admin,
            json!({"name": "gone", "type": "mysql", "nodeId": node.node.id, "format": "repository",
                   "storageTargetIds": targets, "dbHost": "127.0.0.1", "dbUser": "root",
                   "dbNames": [format!("{my}_missing")]}),
        )
        .await?;
        let failed = run(&server, &admin, broken).await?;
        ensure!(failed.status.as_str() == "failed", "{failed:?}");
        ensure!(failed.error.contains("_missing"), "{failed:?}");
        ensure!(snapshot_count(&kits[0])? == snapshots_before, "a snapshot was left");

        // PostgreSQL with the cluster's globals.
        sql("postgresql", None, &format!("CREATE DATABASE {pg}"))?;
        sql(
            "postgresql",
            Some(&pg),
            "CREATE TABLE ledger (id serial PRIMARY KEY, who text, amount numeric(12,2), raw bytea);
             INSERT INTO ledger (who, amount, raw) SELECT 'Konto ' || i || ' ''q''', i * 1.5,
                    decode(lpad(to_hex(i % 256), 2, '0'), 'hex') FROM generate_series(1, 20000) i;",
        )?;
        let pg_before = pg_state(&pg)?;
        let pg_task = task(
            &server,
            &admin,
            json!({"name": "ledger", "type": "postgresql", "nodeId": node.node.id,
                   "format": "repository", "storageTargetIds": targets, "dbUser": "postgres",
                   "dbNames": [pg], "dbIncludeGlobals": true, "dbOptions": ["--no-privileges"]}),
        )
        .await?;
        let pg_record = run(&server, &admin, pg_task).await?;
        good(&pg_record, 1)?;
        let listed = String::from_utf8(restic(&kits[0], &["ls", &pg_record.targets[0].snapshot_id])?)?;
        ensure!(listed.lines().any(|l| l == "/postgresql-globals.sql"), "{listed}");
        let dumped = restic(
            &kits[0],
            &["dump", &pg_record.targets[0].snapshot_id, &format!("/postgresql/{pg}.sql")],
        )?;
        sql("postgresql", None, &format!("CREATE DATABASE {pg_plain}"))?;
        pipe_into("postgresql", &pg_plain, &dumped)?;
        ensure!(pg_state(&pg_plain)? == pg_before, "restic's copy differs");
        sql("postgresql", None, &format!("DROP DATABASE {pg} WITH (FORCE)"))?;
        restore(&server, &admin, pg_record.id, json!({"restoreGlobals": true})).await?;
        ensure!(pg_state(&pg)? == pg_before, "{} != {pg_before}", pg_state(&pg)?);

        // SQLite, through its backup API, restored as a new file.
        let db_path = work.path().join("app.db");
        {
            let conn = rusqlite::Connection::open(&db_path)?;
            conn.execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
                 WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 5000)
                 INSERT INTO t SELECT i, hex(randomblob(16)) FROM s;",
            )?;
        }
        let rows = |p: &Path| -> Result<Vec<(i64, String)>> {
            let conn = rusqlite::Connection::open(p)?;
            let mut stmt = conn.prepare("SELECT id, v FROM t ORDER BY id")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        };
        let lite_task = task(
            &server,
            &admin,
            json!({"name": "app", "type": "sqlite", "nodeId": node.node.id, "format": "repository",
                   "storageTargetIds": targets, "dbPath": db_path}),
        )
        .await?;
        let lite = run(&server, &admin, lite_task).await?;
        good(&lite, 0)?;
        let copy = work.path().join("restored/app.db");
        restore(&server, &admin, lite.id, json!({"targetPath": copy, "storageTargetId": targets[1]}))
            .await?;
        ensure!(rows(&copy)? == rows(&db_path)?, "the restored copy differs");
        let by_restic = work.path().join("by-restic.db");
        std::fs::write(
            &by_restic,
            restic(&kits[0], &["dump", &lite.targets[0].snapshot_id, &db_path.to_string_lossy()])?,
        )?;
        ensure!(rows(&by_restic)? == rows(&db_path)?, "restic's copy differs");
        restic(&kits[1], &["check", "--read-data"])?;
        anyhow::Ok(())
    }
    .await;
    cleanup();
    outcome
}
