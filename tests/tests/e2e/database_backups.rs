//! Database backups end to end through the real Worker and a real agent, against the machine's
//! real MariaDB and PostgreSQL and a real SQLite file under concurrent writes: each test makes
//! its own databases (and a MariaDB user with an awkward password), backs them up, damages or
//! drops the data, restores (into the original and under a new name) and compares row counts
//! and checksums with what was there. The password is looked for in D1, in every answer, in the
//! agent's log and in `/proc/<pid>/cmdline` and `environ` of the dump programs while they run.

use crate::storage::d1_bytes;
use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stowage_shared::api::{
    BackupRecordOutput, BackupTaskOutput, NodeWithToken, RestoreRecordOutput, StorageTargetDetail,
    routes,
};
use stowage_tests::{AgentProcess, Fleet, Reply, Server, eventually};

/// SQL as the machine's superuser; its output rows (tab-separated). Fails naming what is
/// missing when the server is not there.
pub(crate) fn sql(engine: &str, database: Option<&str>, statement: &str) -> Result<String> {
    let out = match engine {
        "mysql" => {
            let mut cmd = Command::new("mariadb");
            cmd.args(["-uroot", "--batch", "--skip-column-names"]);
            if let Some(db) = database {
                cmd.arg(format!("--database={db}"));
            }
            cmd.args(["-e", statement]).output()
        }
        _ => Command::new("psql")
            .args([
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-d", database.unwrap_or("postgres"), "-c", statement])
            .output(),
    }
    .with_context(|| format!("this test needs the {engine} client and the machine's server"))?;
    ensure!(
        out.status.success(),
        "{engine} refused {statement:?} (this test needs the machine's {engine} server): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A session of the superuser's client that holds a lock until dropped (or `release`), so that a
/// dump waits while the test looks at its process.
pub(crate) struct Lock {
    child: Child,
}

impl Lock {
    pub(crate) fn hold(engine: &str, database: &str, statement: &str) -> Result<Self> {
        let mut cmd = match engine {
            "mysql" => {
                let mut c = Command::new("mariadb");
                c.args(["-uroot", "--unbuffered", "--batch", "--skip-column-names"])
                    .arg(format!("--database={database}"));
                c
            }
            _ => {
                let mut c = Command::new("psql");
                c.args([
                    "-X",
                    "-q",
                    "-At",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    database,
                ]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting the {engine} client"))?;
        let stdin = child.stdin.as_mut().context("stdin")?;
        writeln!(stdin, "{statement}\nSELECT 'locked';")?;
        stdin.flush()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        ensure!(line.trim() == "locked", "the lock was not taken: {line:?}");
        Ok(Self { child })
    }

    pub(crate) fn release(mut self, statement: &str) -> Result<()> {
        if let Some(stdin) = self.child.stdin.as_mut() {
            writeln!(stdin, "{statement}")?;
        }
        drop(self.child.stdin.take());
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `/proc` showed of one process: its command line and environment.
#[derive(Debug, Clone)]
struct Seen {
    cmdline: String,
    environ: String,
}

/// Watches `/proc` for processes of the named programs and keeps what it saw of them.
struct ProcWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProcWatch {
    fn start(programs: &'static [&'static str]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            std::thread::spawn(move || {
                let mut known = std::collections::HashSet::new();
                while !stop.load(Ordering::Relaxed) {
                    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                        let dir = entry.path();
                        let Ok(raw) = std::fs::read(dir.join("cmdline")) else {
                            continue;
                        };
                        let args: Vec<String> = raw
                            .split(|b| *b == 0)
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect();
                        let program = args.first().map(|a| a.rsplit('/').next().unwrap_or(a));
                        if !program.is_some_and(|p| programs.contains(&p))
                            || !known.insert(dir.clone())
                        {
                            continue;
                        }
                        let environ = std::fs::read(dir.join("environ"))
                            .map(|e| String::from_utf8_lossy(&e).replace('\0', "\n"))
                            .unwrap_or_default();
                        if let Ok(mut seen) = seen.lock() {
                            seen.push(Seen {
                                cmdline: args.join(" "),
                                environ,
                            });
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn finish(mut self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen()
    }
}

/// The lock a run is held on while its dump program is looked at.
struct Held<'a> {
    engine: &'a str,
    database: &'a str,
    lock: &'a str,
    release: &'a str,
}

/// Runs a task whose dump waits on `held` until a process whose command line holds `dumping`
/// was seen in `/proc`, then releases it: the settled record and what `/proc` showed of every
/// process of `programs`.
async fn run_held(
    server: &Server,
    admin: &str,
    task: i64,
    held: Held<'_>,
    programs: &'static [&'static str],
    dumping: &str,
) -> Result<(BackupRecordOutput, Vec<Seen>)> {
    let watch = ProcWatch::start(programs);
    let lock = Lock::hold(held.engine, held.database, held.lock)?;
    let started: BackupRecordOutput = server
        .post(&routes::backup_task_run(task), Some(admin), &json!({}))
        .await?
        .expect_ok()?;
    eventually("the dump to start", Duration::from_secs(30), || async {
        Ok(watch
            .seen()
            .iter()
            .any(|s| s.cmdline.contains(dumping))
            .then_some(()))
    })
    .await?;
    lock.release(held.release)?;
    let record = server.settled(admin, started.id, false).await?;
    Ok((record, watch.finish()))
}

/// A local directory target on the test's node.
pub(crate) async fn local_target(
    server: &Server,
    admin: &str,
    dir: &std::path::Path,
) -> Result<i64> {
    let t: StorageTargetDetail = server
        .post(
            routes::STORAGE_TARGETS,
            Some(admin),
            &json!({"name": "here", "type": "local_disk", "config": {"basePath": dir}}),
        )
        .await?
        .expect_ok()?;
    Ok(t.summary.id)
}

async fn run(server: &Server, admin: &str, task: i64) -> Result<BackupRecordOutput> {
    let started: BackupRecordOutput = server
        .post(&routes::backup_task_run(task), Some(admin), &json!({}))
        .await?
        .expect_ok()?;
    server.settled(admin, started.id, false).await
}

async fn restore(
    server: &Server,
    admin: &str,
    record: i64,
    body: Value,
) -> Result<RestoreRecordOutput> {
    let started: RestoreRecordOutput = server
        .post(&routes::backup_record_restore(record), Some(admin), &body)
        .await?
        .expect_ok()?;
    eventually("the restore to end", Duration::from_secs(90), || async {
        let r: RestoreRecordOutput = server
            .get(&routes::restore_record(started.id), Some(admin))
            .await?
            .expect_ok()?;
        Ok((r.status != "running").then_some(r))
    })
    .await
}

/// Checks that the password is nowhere it must not be: D1, the answers, the agent's log, and
/// the dump programs' command lines and environments (of which there must have been some).
fn assert_password_hidden(
    password: &str,
    server: &Server,
    agent: &AgentProcess,
    replies: &[&Reply],
    seen: &[Seen],
) -> Result<()> {
    ensure!(
        !d1_bytes(server)?.contains(password),
        "the password is in D1"
    );
    for reply in replies {
        ensure!(
            !reply.raw.contains(password),
            "an answer shows the password: {}",
            reply.raw
        );
    }
    ensure!(
        !agent.log().contains(password),
        "the password is in the agent's log"
    );
    ensure!(!seen.is_empty(), "no dump process was seen in /proc");
    for process in seen {
        ensure!(
            !process.cmdline.contains(password) && !process.environ.contains(password),
            "a dump process shows the password: {process:?}"
        );
    }
    Ok(())
}

/// The MariaDB database the test fills: rows of every awkward kind (unicode, every byte value,
/// NULLs), and a view, a trigger, a procedure and an event owned by the application's user (as
/// an application's own database has them).
fn fill_mysql(db: &str, owner: &str) -> Result<()> {
    let statements = "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100) CHARACTER SET utf8mb4,
                                 photo BLOB, note TEXT NULL) ENGINE=InnoDB;
         CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, customer INT) ENGINE=InnoDB;
         CREATE DEFINER = OWNER VIEW named AS SELECT id, name FROM customers WHERE note IS NOT NULL;
         CREATE DEFINER = OWNER TRIGGER remember AFTER INSERT ON customers FOR EACH ROW
             INSERT INTO audit (customer) VALUES (NEW.id);
         CREATE DEFINER = OWNER PROCEDURE total(OUT n INT) SELECT COUNT(*) INTO n FROM customers;
         CREATE DEFINER = OWNER EVENT tidy ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE id < 0;
         SET SESSION max_recursive_iterations = 10000;
         INSERT INTO customers
         WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 3000)
         SELECT i, CONCAT('Kunde ', i, ' — 顧客 ✓'), UNHEX(REPEAT(LPAD(HEX(i % 256), 2, '0'), 64)),
                IF(i % 7 = 0, NULL, CONCAT('note ''', i, ''' \\\\ \"quoted\"'))
         FROM seq;";
    let owner = format!("'{owner}'@'127.0.0.1'");
    sql("mysql", Some(db), &statements.replace("OWNER", &owner)).map(drop)
}

/// Row count and content checksum of the customers table, and the routines and triggers held.
fn mysql_state(db: &str) -> Result<String> {
    Ok(format!(
        "{} | {} | {} | {} | {}",
        sql("mysql", Some(db), "SELECT COUNT(*) FROM customers")?,
        sql("mysql", Some(db), "CHECKSUM TABLE customers EXTENDED")?
            .split('\t')
            .nth(1)
            .unwrap_or_default(),
        sql("mysql", Some(db), "SELECT COUNT(*) FROM named").unwrap_or_else(|_| "no view".into()),
        sql(
            "mysql",
            None,
            &format!(
                "SELECT GROUP_CONCAT(name ORDER BY name) FROM (
                   SELECT routine_name AS name FROM information_schema.routines WHERE routine_schema = '{db}'
                   UNION ALL SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = '{db}'
                   UNION ALL SELECT event_name FROM information_schema.events WHERE event_schema = '{db}') x"
            )
        )?,
        sql("mysql", Some(db), "SELECT COUNT(*) FROM audit")?,
    ))
}

#[tokio::test]
async fn mysql_backups_restore_into_the_original_and_a_new_database() -> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent,
    } = Fleet::start("db-mysql").await?;
    let tag = std::process::id();
    let (db, user) = (format!("stowage_my_{tag}"), format!("stowage_my_{tag}"));
    let copy = format!("{db}_copy");
    let password = format!("my\"pa:ss\\w0rd {tag} with spaces");
    let sql_password = password.replace('\\', "\\\\").replace('"', "\\\"");
    sql("mysql", None, &format!("CREATE DATABASE {db}"))?;
    let cleanup = || {
        let _ = sql(
            "mysql",
            None,
            &format!(
                "DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS {copy}; DROP USER IF EXISTS '{user}'@'127.0.0.1'"
            ),
        );
    };
    let outcome = async {
        sql(
            "mysql",
            None,
            &format!(
                "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY \"{sql_password}\";
                 GRANT ALL ON `stowage\\_my\\_{tag}%`.* TO '{user}'@'127.0.0.1';
                 GRANT PROCESS ON *.* TO '{user}'@'127.0.0.1'"
            ),
        )?;
        fill_mysql(&db, &user)?;
        let original = mysql_state(&db)?;
        let dir = tempfile::tempdir()?;
        let target = local_target(&server, &admin, dir.path()).await?;
        let mut replies = Vec::new();

        // A dump option that could write elsewhere is refused, naming the field.
        let refused = server
            .post(
                routes::BACKUP_TASKS,
                Some(&admin),
                &json!({"name": "bad", "type": "mysql", "nodeId": node.node.id,
                        "storageTargetIds": [target], "dbUser": user, "dbNames": [db],
                        "dbOptions": ["--result-file=/tmp/stolen.sql"]}),
            )
            .await?;
        refused.expect_error(400, "BACKUP_TASK_INVALID")?;
        ensure!(refused.raw.contains("dbOptions"), "{}", refused.raw);

        let created = server
            .post(
                routes::BACKUP_TASKS,
                Some(&admin),
                &json!({"name": "shop db", "type": "mysql", "nodeId": node.node.id,
                        "storageTargetIds": [target], "dbHost": "127.0.0.1", "dbUser": user,
                        "dbPassword": password, "dbNames": [db]}),
            )
            .await?;
        let task: BackupTaskOutput = created.expect_ok()?;
        ensure!(
            task.db_password == "********" && task.masked_fields == ["dbPassword"],
            "{task:?}"
        );
        ensure!(task.db_port == Some(3306) && task.db_names == [db.clone()]);
        let shown = server
            .get(&routes::backup_task(task.id), Some(&admin))
            .await?;

        // The dump waits on a table lock while /proc is read; then the lock goes.
        let (record, seen) = run_held(
            &server,
            &admin,
            task.id,
            Held {
                engine: "mysql",
                database: &db,
                lock: "LOCK TABLES customers WRITE;",
                release: "UNLOCK TABLES;",
            },
            &["mariadb-dump", "mysqldump"],
            "mariadb-dump",
        )
        .await?;
        ensure!(record.status == "success", "{record:?}");
        ensure!(
            record.kind == "mysql" && record.databases == [db.clone()],
            "{record:?}"
        );
        ensure!(record.targets[0].path.ends_with(".sql.zst"), "{record:?}");
        let detail = server
            .get(&routes::backup_record(record.id), Some(&admin))
            .await?;

        // Damage: rows gone and changed, the view and the procedure dropped.
        sql(
            "mysql",
            Some(&db),
            "DELETE FROM customers WHERE id > 1000; UPDATE customers SET name = 'x';
             DROP VIEW named; DROP PROCEDURE total;",
        )?;
        ensure!(mysql_state(&db)? != original);
        let back = restore(&server, &admin, record.id, json!({})).await?;
        ensure!(back.status == "success", "{back:?}");
        ensure!(
            mysql_state(&db)? == original,
            "the restored database differs:\n{}\n{original}",
            mysql_state(&db)?
        );

        // Under a new name: the original stays as it is.
        let renamed = restore(
            &server,
            &admin,
            record.id,
            json!({"databases": [db], "targetDatabase": copy}),
        )
        .await?;
        ensure!(renamed.status == "success", "{renamed:?}");
        ensure!(
            renamed.target_databases.len() == 1 && renamed.target_databases[0].into == copy,
            "{renamed:?}"
        );
        ensure!(
            mysql_state(&copy)? == original,
            "the copy differs: {} != {original}",
            mysql_state(&copy)?
        );
        // A database under that name now holds tables: a second restore there is refused.
        let again = restore(&server, &admin, record.id, json!({"targetDatabase": copy})).await?;
        ensure!(
            again.status == "failed" && again.error.contains("holds"),
            "{again:?}"
        );

        // Requests that cannot apply are 400s with a code.
        for (body, code) in [
            (json!({"databases": ["nope"]}), "RESTORE_TARGET_INVALID"),
            (json!({"targetPath": "/tmp/x"}), "RESTORE_TARGET_INVALID"),
            (json!({"restoreGlobals": true}), "RESTORE_TARGET_INVALID"),
            // The task's stored password goes only to its own server.
            (
                json!({"connection": {"host": "127.0.0.2"}}),
                "RESTORE_TARGET_INVALID",
            ),
        ] {
            server
                .post(
                    &routes::backup_record_restore(record.id),
                    Some(&admin),
                    &body,
                )
                .await?
                .expect_error(400, code)?;
        }

        // A wrong password fails the run with the server's reason, and says nothing of it.
        let wrong: BackupTaskOutput = server
            .put(
                &routes::backup_task(task.id),
                Some(&admin),
                &json!({"name": "shop db", "type": "mysql", "nodeId": node.node.id,
                        "storageTargetIds": [target], "dbUser": user,
                        "dbPassword": "certainly-not-it", "dbNames": [db]}),
            )
            .await?
            .expect_ok()?;
        let failed = run(&server, &admin, wrong.id).await?;
        ensure!(failed.status == "failed", "{failed:?}");
        ensure!(
            failed.error.contains("Access denied") && !failed.error.contains("certainly-not-it"),
            "{failed:?}"
        );

        replies.extend([created, shown, detail]);
        assert_password_hidden(
            &password,
            &server,
            &agent,
            &replies.iter().collect::<Vec<_>>(),
            &seen,
        )?;
        anyhow::Ok(())
    }
    .await;
    cleanup();
    outcome
}

fn pg_state(db: &str) -> Result<String> {
    Ok(format!(
        "{} | {} | {} | {}",
        sql("postgresql", Some(db), "SELECT count(*) FROM accounts")?,
        sql(
            "postgresql",
            Some(db),
            "SELECT md5(string_agg(a::text, '|' ORDER BY id)) FROM accounts a"
        )?,
        sql("postgresql", Some(db), "SELECT count(*) FROM rich")?,
        sql("postgresql", Some(db), "SELECT shout('ok')")?,
    ))
}

#[tokio::test]
async fn postgresql_backups_restore_a_dropped_database_and_under_a_new_name() -> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent,
    } = Fleet::start("db-pg").await?;
    let tag = std::process::id();
    let db = format!("stowage_pg_{tag}");
    let copy = format!("{db}_copy");
    // The machine's PostgreSQL trusts local connections, so the password is never checked;
    // it is still looked for everywhere it must not be.
    let password = format!("pg-marker-{tag}:with\\odd'chars");
    sql("postgresql", None, &format!("CREATE DATABASE {db}"))?;
    let cleanup = || {
        for d in [&db, &copy] {
            let _ = sql(
                "postgresql",
                None,
                &format!("DROP DATABASE IF EXISTS {d} WITH (FORCE)"),
            );
        }
    };
    let outcome = async {
        sql(
            "postgresql",
            Some(&db),
            "CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL, balance numeric(12,2),
                                    doc jsonb, raw bytea, opened timestamptz);
             INSERT INTO accounts (owner, balance, doc, raw, opened)
             SELECT 'Eigentümer ' || i || ' — 所有者 ''q''', i * 1.25,
                    jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'b\\c')),
                    decode(lpad(to_hex(i % 256), 2, '0'), 'hex'),
                    '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 minute'
             FROM generate_series(1, 5000) i;
             CREATE VIEW rich AS SELECT id, owner FROM accounts WHERE balance > 3000;
             CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql AS $$ SELECT upper(t) || '!' $$;",
        )?;
        let original = pg_state(&db)?;
        let dir = tempfile::tempdir()?;
        let target = local_target(&server, &admin, dir.path()).await?;
        let created = server
            .post(
                routes::BACKUP_TASKS,
                Some(&admin),
                &json!({"name": "ledger", "type": "postgresql", "nodeId": node.node.id,
                        "storageTargetIds": [target], "dbUser": "postgres",
                        "dbPassword": password, "dbNames": [db], "dbIncludeGlobals": true,
                        "dbOptions": ["--no-privileges"]}),
            )
            .await?;
        let task: BackupTaskOutput = created.expect_ok()?;

        let (record, seen) = run_held(
            &server,
            &admin,
            task.id,
            Held {
                engine: "postgresql",
                database: &db,
                lock: "BEGIN; LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE;",
                release: "COMMIT;",
            },
            &["pg_dump", "pg_dumpall"],
            "pg_dump ",
        )
        .await?;
        ensure!(record.status == "success", "{record:?}");
        ensure!(record.databases == [db.clone()], "{record:?}");

        // The whole database goes; the restore creates it again from the backup.
        sql(
            "postgresql",
            None,
            &format!("DROP DATABASE {db} WITH (FORCE)"),
        )?;
        let back = restore(&server, &admin, record.id, json!({"restoreGlobals": true})).await?;
        ensure!(back.status == "success", "{back:?}");
        ensure!(
            pg_state(&db)? == original,
            "{} != {original}",
            pg_state(&db)?
        );

        // Changed data, restored over in one transaction.
        sql(
            "postgresql",
            Some(&db),
            "DELETE FROM accounts WHERE id % 2 = 0; DROP VIEW rich; UPDATE accounts SET owner = 'x';",
        )?;
        let over = restore(&server, &admin, record.id, json!({})).await?;
        ensure!(over.status == "success", "{over:?}");
        ensure!(pg_state(&db)? == original);

        let renamed = restore(&server, &admin, record.id, json!({"targetDatabase": copy})).await?;
        ensure!(renamed.status == "success", "{renamed:?}");
        ensure!(pg_state(&copy)? == original);

        assert_password_hidden(&password, &server, &agent, &[&created], &seen)?;
        anyhow::Ok(())
    }
    .await;
    cleanup();
    outcome
}

/// The writer's rows `(id, payload)`.
type Rows = Vec<(i64, Vec<u8>)>;

/// The writer's rows and its counter, from an SQLite file that must pass its integrity check.
fn sqlite_rows(path: &std::path::Path) -> Result<(Rows, i64)> {
    let conn = rusqlite::Connection::open(path)?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    ensure!(
        verdict == "ok",
        "{} fails its integrity check: {verdict}",
        path.display()
    );
    let mut stmt = conn.prepare("SELECT id, payload FROM t ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let n: i64 = conn.query_row("SELECT n FROM counter", [], |r| r.get(0))?;
    Ok((rows, n))
}

#[tokio::test]
async fn sqlite_backups_of_a_database_under_writes_restore_a_consistent_copy() -> Result<()> {
    let Fleet {
        server,
        admin,
        node,
        agent: _agent,
    } = Fleet::start("db-sqlite").await?;
    let data = tempfile::tempdir()?;
    let path = data.path().join("app.db");
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL);
             CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0);",
        )?;
    }
    // A writer that commits without pause: each transaction adds a row and counts it, so a
    // consistent copy always has as many rows as its counter says.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, path) = (Arc::clone(&stop), path.clone());
        std::thread::spawn(move || -> Result<i64> {
            let mut conn = rusqlite::Connection::open(&path)?;
            conn.busy_timeout(Duration::from_secs(10))?;
            let mut i: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let tx = conn.transaction()?;
                let payload: Vec<u8> = (0..2048)
                    .map(|b| ((b as i64 * 31 + i) % 251) as u8)
                    .collect();
                tx.execute(
                    "INSERT INTO t (id, payload) VALUES (?1, ?2)",
                    rusqlite::params![i, payload],
                )?;
                tx.execute("UPDATE counter SET n = n + 1", [])?;
                tx.commit()?;
            }
            Ok(i)
        })
    };
    let outcome = async {
        let count = || -> Result<i64> {
            let conn = rusqlite::Connection::open(&path)?;
            Ok(conn.query_row("SELECT n FROM counter", [], |r| r.get(0))?)
        };
        eventually(
            "the writer to get going",
            Duration::from_secs(30),
            || async { Ok((count()? > 500).then_some(())) },
        )
        .await?;
        let dir = tempfile::tempdir()?;
        let target = local_target(&server, &admin, dir.path()).await?;
        let task: BackupTaskOutput = server
            .post(
                routes::BACKUP_TASKS,
                Some(&admin),
                &json!({"name": "app db", "type": "sqlite", "nodeId": node.node.id,
                        "storageTargetIds": [target], "dbPath": path}),
            )
            .await?
            .expect_ok()?;
        let before = count()?;
        let record = run(&server, &admin, task.id).await?;
        let after = count()?;
        ensure!(record.status == "success", "{record:?}");
        ensure!(record.kind == "sqlite" && record.targets[0].path.ends_with(".sqlite.zst"));
        ensure!(before < after, "the writer kept writing during the backup");
        eventually(
            "more writes after the backup",
            Duration::from_secs(30),
            || async { Ok((count()? > after + 100).then_some(())) },
        )
        .await?;
        stop.store(true, Ordering::Relaxed);
        let (live, _) = sqlite_rows(&path)?;

        // A new file: a consistent copy of some moment during the backup.
        let copy = data.path().join("restored/app-copy.db");
        let restored = restore(&server, &admin, record.id, json!({"targetPath": copy})).await?;
        ensure!(restored.status == "success", "{restored:?}");
        let (rows, n) = sqlite_rows(&copy)?;
        ensure!(
            rows.len() as i64 == n,
            "{} rows but the counter says {n}",
            rows.len()
        );
        ensure!(before <= n && n <= after, "{before} <= {n} <= {after}");
        ensure!(
            rows[..] == live[..rows.len()],
            "the copied rows equal the original's first {n}"
        );

        // Over the original, after its data is gone.
        rusqlite::Connection::open(&path)?
            .execute_batch("DELETE FROM t; UPDATE counter SET n = 0;")?;
        let back = restore(&server, &admin, record.id, json!({})).await?;
        ensure!(back.status == "success", "{back:?}");
        let (rows_back, n_back) = sqlite_rows(&path)?;
        ensure!(
            n_back == n && rows_back == rows,
            "the original holds the backup again"
        );
        anyhow::Ok(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    match writer.join() {
        Ok(w) => {
            w?;
        }
        Err(_) => bail!("the writer panicked"),
    }
    outcome
}

#[tokio::test]
async fn a_node_without_the_dump_programs_is_refused_before_anything_runs() -> Result<()> {
    let server = Server::start_with(
        stowage_tests::ServerOptions::default()
            .var("HEARTBEAT_SECS", 1)
            .var("POLL_SECS", 1),
    )
    .await?;
    let admin = server.admin("admin", "correct horse battery").await?;
    let node: NodeWithToken = server
        .post(routes::NODES, Some(&admin), &json!({"name": "bare"}))
        .await?
        .expect_ok()?;
    // Its agent runs with an empty PATH: no database programs at all.
    let _agent = AgentProcess::start_without_rclone(&server.base_url, node.token.expose())?;
    let online = server.wait_online(&admin, node.node.id).await?;
    ensure!(
        !online.capabilities.tools.contains_key("mariadb-dump")
            && online.capabilities.tools.contains_key("sqlite"),
        "{:?}",
        online.capabilities
    );
    let dir = tempfile::tempdir()?;
    let target = local_target(&server, &admin, dir.path()).await?;
    let task: BackupTaskOutput = server
        .post(
            routes::BACKUP_TASKS,
            Some(&admin),
            &json!({"name": "no tools", "type": "mysql", "nodeId": node.node.id,
                    "storageTargetIds": [target], "dbUser": "root", "dbNames": ["x"],
                    "cronExpr": "0 0 1 1 *"}),
        )
        .await?
        .expect_ok()?;
    let refused = server
        .post(&routes::backup_task_run(task.id), Some(&admin), &json!({}))
        .await?;
    refused.expect_error(400, "NODE_MISSING_TOOL")?;
    ensure!(
        refused.raw.contains("mariadb-dump or mysqldump"),
        "{}",
        refused.raw
    );
    // A scheduled run of it fails at once, saying why, with nothing sent to the agent.
    server.query(&format!(
        "UPDATE backup_tasks SET schedule_cursor = '2025-06-01T00:00:00.000Z' WHERE id = {}",
        task.id
    ))?;
    server.trigger_cron().await?;
    let rows = server.query(&format!(
        "SELECT status, error, command_id FROM backup_records WHERE task_id = {}",
        task.id
    ))?;
    ensure!(rows.len() == 1, "{rows:?}");
    ensure!(
        rows[0]["status"] == "failed"
            && rows[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("mariadb-dump"))
            && rows[0]["command_id"].is_null(),
        "{rows:?}"
    );
    Ok(())
}
