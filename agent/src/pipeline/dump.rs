//! Database dumps as a backup source: the engine's own dump program writes to a pipe that the
//! backup pass reads like any other source (zstd → SHA-256 → every target), so no copy of the
//! dump ever lands on disk. Each database is dumped by its own run of the program, one after
//! another, into one stream; where each one lies is recorded ([`DumpSection`]), so a restore can
//! take one database, or put it under another name, without reading the SQL.
//!
//! - MySQL/MariaDB: `mariadb-dump` (or `mysqldump`) with `--single-transaction` (a consistent
//!   snapshot without locking InnoDB tables), routines, triggers and events; each dump follows a
//!   `CREATE DATABASE IF NOT EXISTS` and a `USE` line.
//! - PostgreSQL: `pg_dump` per database in plain SQL with `--clean --if-exists` (so it restores
//!   over the database it came from), each after a `\connect` line as `pg_dumpall` writes them;
//!   optionally the cluster's roles and tablespaces first (`pg_dumpall --globals-only`).
//!
//! The whole file restores with the standard client too (`zstd -d | mariadb`, `| psql` once the
//! databases exist). A dump program that exits non-zero fails the pass with the end of what it
//! said on stderr; everything it says goes to the run's log as it says it.

use crate::dbconn::{self, Prepared};
use crate::pipeline::{Files, Produced};
use crate::report::{Counters, LogSink};
use std::io::{self, BufRead, Read, Write};
use std::process::{Command, Stdio};
use stowage_shared::api::LogLevel;
use stowage_shared::databases::{
    DbConnection, DbEngine, DumpSection, mysql_ident, pg_ident, snapshot_file,
};
use stowage_shared::protocol::CommandError;

/// One program run of a dump, with the text written before its output.
#[derive(Debug)]
struct Step {
    label: String,
    /// `[mariadb-dump]`: how its stderr lines are marked in the log.
    tool: String,
    preamble: String,
    command: Command,
    database: String,
    globals: bool,
}

/// A dump ready to run: its steps and the password files they read.
#[derive(Debug)]
pub struct Dump {
    conn: DbConnection,
    steps: Vec<Step>,
    _prepared: Vec<Prepared>,
    log: Option<LogSink>,
}

/// How much of a failing program's stderr is kept for the message.
const STDERR_TAIL: usize = 4096;
/// Most stderr lines of one program that go to the run's log.
const STDERR_LOG_LINES: usize = 200;

fn command(prepared: &Prepared) -> Command {
    let mut cmd = Command::new(&prepared.program);
    cmd.args(&prepared.args)
        .envs(prepared.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in dbconn::INHERITED_SECRETS {
        cmd.env_remove(name);
    }
    cmd
}

fn tool_name(prepared: &Prepared) -> String {
    prepared
        .program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Dump {
    /// Dumps `databases` (named; the caller resolves "every database" first) with the user's
    /// extra `options`, and for PostgreSQL the globals first when `globals`.
    pub fn new(
        conn: &DbConnection,
        databases: &[String],
        options: &[String],
        globals: bool,
    ) -> Result<Self, CommandError> {
        if databases.is_empty() && !globals {
            return Err(CommandError {
                code: stowage_shared::ErrorCode::BackupRunFailed,
                message: "there is no database to dump: the connection sees none".to_owned(),
            });
        }
        let mut prepared_files = Vec::new();
        let mut steps = Vec::new();
        match conn.engine {
            DbEngine::Mysql => {
                let prepared = dbconn::prepare(conn, conn.engine.dumpers())?;
                let tool = tool_name(&prepared);
                for db in databases {
                    let mut cmd = command(&prepared);
                    cmd.args([
                        "--single-transaction",
                        "--quick",
                        "--routines",
                        "--triggers",
                        "--events",
                        "--hex-blob",
                        "--default-character-set=utf8mb4",
                    ])
                    .args(options)
                    .arg(db);
                    let ident = mysql_ident(db);
                    steps.push(Step {
                        label: format!("{tool} of {db}"),
                        tool: tool.clone(),
                        preamble: format!(
                            "--\n-- stowage: database {ident}\n--\nCREATE DATABASE IF NOT EXISTS {ident};\nUSE {ident};\n\n"
                        ),
                        command: cmd,
                        database: db.clone(),
                        globals: false,
                    });
                }
                prepared_files.push(prepared);
            }
            DbEngine::Postgresql => {
                if globals {
                    let prepared = dbconn::prepare(conn, &["pg_dumpall"])?;
                    let mut cmd = command(&prepared);
                    cmd.arg("--globals-only");
                    steps.push(Step {
                        label: "pg_dumpall of the globals".to_owned(),
                        tool: tool_name(&prepared),
                        preamble: "--\n-- stowage: the cluster's roles and tablespaces\n--\n\n"
                            .to_owned(),
                        command: cmd,
                        database: String::new(),
                        globals: true,
                    });
                    prepared_files.push(prepared);
                }
                let prepared = dbconn::prepare(conn, conn.engine.dumpers())?;
                for db in databases {
                    let mut cmd = command(&prepared);
                    cmd.args(["--format=plain", "--no-owner", "--clean", "--if-exists"])
                        .args(options)
                        .arg(format!(
                            "--dbname=dbname={}",
                            stowage_shared::databases::pg_conninfo_value(db)
                        ));
                    let ident = pg_ident(db);
                    steps.push(Step {
                        label: format!("pg_dump of {db}"),
                        tool: "pg_dump".to_owned(),
                        preamble: format!(
                            "--\n-- stowage: database {ident}\n--\n\\connect {ident}\n\n"
                        ),
                        command: cmd,
                        database: db.clone(),
                        globals: false,
                    });
                }
                prepared_files.push(prepared);
            }
        }
        Ok(Self {
            conn: conn.clone(),
            steps,
            _prepared: prepared_files,
            log: None,
        })
    }

    /// Sends what the dump programs say on stderr to a run's log.
    pub fn with_log(mut self, log: LogSink) -> Self {
        self.log = Some(log);
        self
    }

    /// The programs and arguments this dump will run (for checks that no secret is among them).
    pub fn command_lines(&self) -> Vec<Vec<String>> {
        self.steps
            .iter()
            .map(|s| {
                std::iter::once(s.command.get_program())
                    .chain(s.command.get_args())
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect()
            })
            .collect()
    }

    /// Every environment variable this dump sets.
    pub fn environment(&self) -> Vec<(String, String)> {
        self.steps
            .iter()
            .flat_map(|s| s.command.get_envs())
            .filter_map(|(k, v)| {
                v.map(|v| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
            })
            .collect()
    }

    /// Runs the steps in turn into `out`, noting where each one's output lies.
    pub fn write(&mut self, counters: &Counters, out: &mut dyn Write) -> io::Result<Produced> {
        let mut offset = 0u64;
        let mut produced = Produced::default();
        for step in &mut self.steps {
            out.write_all(step.preamble.as_bytes())?;
            let bytes = run_step(step, &self.conn, self.log.as_ref(), counters, out)?;
            let preamble = step.preamble.len() as u64;
            produced
                .sections
                .push(step.section(offset, preamble, bytes));
            offset += preamble + bytes;
            produced.items += 1;
            produced.bytes += bytes;
        }
        Ok(produced)
    }

    /// The file each database is stored as in a repository snapshot, in the order
    /// [`Dump::write_files`] writes them: sorted, as a snapshot's tree must be.
    pub fn snapshot_files(&mut self) -> Vec<String> {
        let engine = self.conn.engine;
        let file = |s: &Step| snapshot_file(engine, &s.section(0, 0, 0));
        self.steps
            .sort_by_cached_key(|s| std::path::PathBuf::from(file(s)));
        self.steps.iter().map(file).collect()
    }

    /// Runs the steps in the order of [`Dump::snapshot_files`], each into its own file of `out`
    /// (without the preamble: each file is one database's dump as its program wrote it). The
    /// sections say where each would lie if the files were laid end to end.
    pub fn write_files(
        &mut self,
        counters: &Counters,
        out: &mut dyn Files,
    ) -> io::Result<Produced> {
        self.snapshot_files();
        let mut offset = 0u64;
        let mut produced = Produced::default();
        for step in &mut self.steps {
            out.next_file()?;
            let bytes = run_step(step, &self.conn, self.log.as_ref(), counters, out)?;
            produced.sections.push(step.section(offset, 0, bytes));
            offset += bytes;
            produced.items += 1;
            produced.bytes += bytes;
        }
        Ok(produced)
    }
}

impl Step {
    fn section(&self, offset: u64, preamble: u64, bytes: u64) -> DumpSection {
        DumpSection {
            database: self.database.clone(),
            globals: self.globals,
            offset,
            preamble,
            bytes,
        }
    }
}

/// Runs one dump program into `out`: its stderr goes to the log as it comes, and a non-zero exit
/// fails the step with the end of what it said. Returns the bytes it wrote.
fn run_step(
    step: &mut Step,
    conn: &DbConnection,
    log: Option<&LogSink>,
    counters: &Counters,
    out: &mut dyn Write,
) -> io::Result<u64> {
    let mut child = step
        .command
        .spawn()
        .map_err(|e| io::Error::other(format!("starting {}: {e}", step.label)))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| io::Error::other("no stderr"))?;
    // Read stderr at the same time, or a chatty program would block on a full pipe.
    let log = log.cloned();
    let (said_conn, tool) = (conn.clone(), step.tool.clone());
    let complaints = std::thread::spawn(move || {
        let mut tail = Vec::new();
        let mut reader = io::BufReader::new(stderr);
        let mut line = Vec::new();
        let mut logged = 0;
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if let Some(log) = &log
                && logged < STDERR_LOG_LINES
            {
                log.log(
                    LogLevel::Warn,
                    format!("[{tool}] {}", dbconn::reason(&said_conn, &line)),
                );
                logged += 1;
            }
            tail.extend_from_slice(&line);
            if tail.len() > 2 * STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
            line.clear();
        }
        let start = tail.len().saturating_sub(STDERR_TAIL);
        tail.split_off(start)
    });
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let copied = copy_counted(&mut stdout, out, counters);
    drop(stdout);
    if copied.is_err() {
        // The pass broke downstream: stop the dump rather than wait for it.
        let _ = child.kill();
    }
    let status = child.wait()?;
    let said = complaints.join().unwrap_or_default();
    let bytes = copied?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "{} failed ({status}): {}",
            step.label,
            dbconn::reason(conn, &said)
        )));
    }
    counters.add_file(0);
    Ok(bytes)
}

fn copy_counted(from: &mut impl Read, to: &mut dyn Write, counters: &Counters) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        counters.add_source(n as u64);
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{self, Destination, Source};
    use crate::storage::{Store, Tools};
    use std::sync::Arc;
    use stowage_shared::SecretString;
    use stowage_shared::storage::{LocalDiskConfig, StorageConfig};
    use stowage_shared::tasks::Compression;

    /// SQL as the machine's superuser; a missing server fails the test saying so.
    fn admin(engine: DbEngine, sql: &str) {
        let out = match engine {
            DbEngine::Mysql => Command::new("mariadb").args(["-uroot", "-e", sql]).output(),
            DbEngine::Postgresql => Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    sql,
                ])
                .output(),
        }
        .unwrap_or_else(|e| panic!("these tests need the {engine:?} client and server: {e}"));
        assert!(
            out.status.success(),
            "{engine:?} refused {sql:?} (these tests need the machine's server): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn dump_to_artifact(dump: Dump) -> Result<String, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = StorageConfig::LocalDisk(LocalDiskConfig {
            base_path: dir.path().to_string_lossy().into_owned(),
        });
        let store = Store::open(&config, &Tools::default())
            .await
            .map_err(|e| e.to_string())?;
        let dests = [Destination {
            store: &store,
            path: "db.sql.zst".into(),
        }];
        let (archive, _) = pipeline::run_source(
            Source::Dump(dump),
            Compression::Zstd { level: 3 },
            &dests,
            Arc::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let bytes = store.read("db.sql.zst").await.map_err(|e| e.to_string())?;
        assert_eq!(bytes.len() as u64, archive.bytes);
        let sql = zstd::decode_all(bytes.as_slice()).map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&sql).into_owned())
    }

    #[tokio::test]
    async fn a_mysql_dump_streams_into_the_pipeline_with_the_password_in_a_file_only() {
        let tag = std::process::id();
        let (db, user) = (format!("stowage_dump_{tag}"), format!("stowage_dump_{tag}"));
        let password = r#"dump"pa:ss\word"#;
        admin(
            DbEngine::Mysql,
            &format!(
                "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, note TEXT);
                 INSERT INTO {db}.t VALUES (1, 'first row'), (2, 'zweite Zeile');
                 CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'dump\"pa:ss\\\\word';
                 GRANT ALL ON {db}.* TO '{user}'@'127.0.0.1'; GRANT PROCESS ON *.* TO '{user}'@'127.0.0.1'"
            ),
        );
        let conn = |password: &str| DbConnection {
            engine: DbEngine::Mysql,
            host: "127.0.0.1".into(),
            port: 3306,
            user: user.clone(),
            password: SecretString::new(password),
        };
        let dump = Dump::new(&conn(password), std::slice::from_ref(&db), &[], false).expect("dump");
        for line in dump.command_lines() {
            assert!(line.iter().all(|a| !a.contains("pa:ss")), "{line:?}");
        }
        assert!(dump.environment().iter().all(|(_, v)| !v.contains("pa:ss")));
        let sql = dump_to_artifact(dump).await;
        let wrong = dump_to_artifact(
            Dump::new(&conn("not it"), std::slice::from_ref(&db), &[], false).expect("dump"),
        )
        .await;
        admin(
            DbEngine::Mysql,
            &format!("DROP USER '{user}'@'127.0.0.1'; DROP DATABASE {db}"),
        );

        let sql = sql.expect("the dump runs");
        assert!(
            sql.contains("CREATE TABLE `t`"),
            "{}",
            &sql[..sql.len().min(500)]
        );
        assert!(sql.contains("'zweite Zeile'"));
        let err = wrong.expect_err("a wrong password fails the pass");
        assert!(err.contains("Access denied"), "{err}");
        assert!(!err.contains("not it"));
    }

    #[tokio::test]
    async fn postgresql_dumps_each_database_after_a_connect_line() {
        let tag = std::process::id();
        let db = format!("stowage_pgdump_{tag}");
        admin(DbEngine::Postgresql, &format!("CREATE DATABASE {db}"));
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db, "-c"])
            .arg("CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t VALUES (1, 'ein'), (2, 'zwei');")
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conn = DbConnection {
            engine: DbEngine::Postgresql,
            host: "127.0.0.1".into(),
            port: 5432,
            user: "postgres".into(),
            password: SecretString::new(""),
        };
        let sql = dump_to_artifact(
            Dump::new(&conn, &[db.clone(), "postgres".into()], &[], false).expect("dump"),
        )
        .await;
        admin(DbEngine::Postgresql, &format!("DROP DATABASE {db}"));
        let sql = sql.expect("the dump runs");
        let first = sql
            .find(&format!("\\connect \"{db}\""))
            .expect("the first database");
        let second = sql
            .find("\\connect \"postgres\"")
            .expect("the second database");
        assert!(first < second);
        assert!(
            sql.contains("COPY public.t (id, note) FROM stdin;"),
            "{sql}"
        );
        assert!(sql.contains("2\tzwei"));
    }
}
