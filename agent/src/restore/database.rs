//! Database restores: no byte of an artifact reaches a database before the whole artifact is
//! proven to be the one the record names.
//!
//! 1. The artifact is fetched once into a private file on the restoring node, hashed as it
//!    comes (SHA-256 and size against the record). A server dump stays compressed there; an
//!    SQLite database is decompressed into a staging file beside its destination.
//! 2. Only then is it applied: each chosen section of a dump is streamed from that file (the
//!    bytes the record's sections name, never a search through the SQL) into the engine's own
//!    client; an SQLite database is checked and put in place ([`crate::pipeline::sqlite`]).
//!
//! PostgreSQL sections are applied in one transaction each (`psql --single-transaction` with
//! `ON_ERROR_STOP`): a failed restore leaves the database as it was. MySQL cannot roll back
//! DDL, so a MySQL restore that the server refuses midway stops at the first error and says
//! so; restoring under a new name is the way to keep the original untouched. A new name must
//! be a database that does not exist or holds no tables, so a restore never overwrites one by
//! mistake.

use crate::dbconn::{self, Prepared};
use crate::report::{Counters, LogSink};
use crate::restore::Hashing;
use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use stowage_shared::api::LogLevel;
use stowage_shared::databases::{
    DbConnection, DbEngine, RestoreStep, mysql_ident, pg_conninfo_value, pg_ident,
};
use stowage_shared::tasks::Compression;

/// Fetches the artifact from `source` into `into`, hashing every byte read; with `decompress`
/// the file receives the decompressed bytes. Returns the SHA-256 (hex) and size read.
pub fn fetch(
    source: impl Read,
    compression: Compression,
    decompress: bool,
    into: &mut std::fs::File,
    counters: Arc<Counters>,
) -> io::Result<(String, u64)> {
    let mut hashing = Hashing::new(io::BufReader::with_capacity(1 << 20, source), counters);
    match (compression, decompress) {
        (Compression::Zstd { .. }, true) => {
            let mut decoder = zstd::stream::read::Decoder::new(&mut hashing)?;
            io::copy(&mut decoder, into)?;
        }
        _ => {
            io::copy(&mut hashing, into)?;
        }
    }
    into.sync_all()?;
    hashing.finish()
}

/// Whether this MariaDB/MySQL client has `--sandbox` (MariaDB 10.5.25, 10.6.18, 10.11.8 and
/// later): it refuses the commands a dump could use to run programs or touch files (`\!`,
/// `system`, `source`, `tee`), so an artifact that was tampered with cannot make the client run
/// anything. Asked once per program.
fn has_sandbox(program: &Path) -> bool {
    static SEEN: std::sync::Mutex<Vec<(std::path::PathBuf, bool)>> =
        std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, has)) = seen.iter().find(|(p, _)| p == program) {
        return *has;
    }
    let has = Command::new(program)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("--sandbox"));
    seen.push((program.to_path_buf(), has));
    has
}

/// A PostgreSQL section as `psql` must read it so that nothing in it can run a program or touch
/// a file: the stream starts with `\restrict <a key of the agent's>`, which makes psql refuse every
/// meta-command (`\!`, `\o |cmd`, `\copy … program`, …) until `\unrestrict <that key>`, which
/// never comes. The dump's own `\restrict K` header line and its `\unrestrict K` line (pg_dump
/// writes them since 17.6, 16.10, 15.14, 14.19, 13.22) are left out: inside our restriction they
/// would be refused. Everything else passes byte for byte.
struct Restricted<R> {
    inner: io::BufReader<R>,
    /// Bytes ready to be read, and how far they were read.
    out: Vec<u8>,
    at: usize,
    /// Still in the dump's header (comments and blank lines before the first statement).
    header: bool,
    /// The dump's own key, once its `\restrict` line was seen.
    dump_key: Option<Vec<u8>>,
}

/// A fresh key for `\restrict`: letters and digits only, as psql wants.
fn restrict_key() -> io::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl<R: Read> Restricted<R> {
    fn new(inner: R) -> io::Result<Self> {
        Ok(Self {
            inner: io::BufReader::with_capacity(1 << 20, inner),
            out: format!("\\restrict {}\n", restrict_key()?).into_bytes(),
            at: 0,
            header: true,
            dump_key: None,
        })
    }
}

impl<R: Read> Read for Restricted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.out.len() {
            self.out.clear();
            self.at = 0;
            if self.inner.read_until(b'\n', &mut self.out)? == 0 {
                return Ok(0);
            }
            let line = self.out.strip_suffix(b"\n").unwrap_or(&self.out);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if self.header {
                if let Some(key) = line.strip_prefix(b"\\restrict ") {
                    self.dump_key = Some(key.to_vec());
                    self.out.clear();
                    continue;
                }
                if !(line.is_empty() || line.starts_with(b"--")) {
                    self.header = false;
                }
            } else if let (Some(key), Some(mine)) = (
                line.strip_prefix(b"\\unrestrict "),
                self.dump_key.as_deref(),
            ) && key == mine
            {
                self.out.clear();
            }
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A failure of a restore step, in words for the record.
fn failed(message: impl Into<String>) -> io::Error {
    io::Error::other(message.into())
}

/// Runs the client with `args` after its connection arguments, `stdin` fed from `input` (or
/// nothing), and returns its stdout; a non-zero exit is an error carrying its stderr.
fn client(
    conn: &DbConnection,
    prepared: &Prepared,
    args: &[String],
    input: Option<&mut dyn Read>,
    counters: Option<&Counters>,
    log: Option<(&LogSink, &str)>,
) -> io::Result<(String, Vec<String>)> {
    let mut cmd = Command::new(&prepared.program);
    cmd.args(&prepared.args)
        .args(args)
        .envs(prepared.env.iter().map(|(k, v)| (k, v)))
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in dbconn::INHERITED_SECRETS {
        cmd.env_remove(name);
    }
    let program = prepared.program.display().to_string();
    let mut child = cmd
        .spawn()
        .map_err(|e| failed(format!("starting {program}: {e}")))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let conn_for_err = conn.clone();
    let sink = log.map(|(s, tool)| (s.clone(), tool.to_owned()));
    let said = std::thread::spawn(move || {
        let mut lines = Vec::new();
        if let Some(stderr) = stderr {
            for line in io::BufReader::new(stderr)
                .split(b'\n')
                .map_while(Result::ok)
            {
                let line = dbconn::reason(&conn_for_err, &line);
                if line.is_empty() {
                    continue;
                }
                if let Some((sink, tool)) = &sink
                    && lines.len() < 200
                {
                    sink.log(LogLevel::Warn, format!("[{tool}] {line}"));
                }
                lines.push(line);
            }
        }
        lines
    });
    let output = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut out) = stdout {
            let _ = out.read_to_string(&mut text);
        }
        text
    });
    let fed = match (input, child.stdin.take()) {
        (Some(input), Some(mut stdin)) => {
            let mut buf = vec![0u8; 256 * 1024];
            let outcome = (|| -> io::Result<()> {
                loop {
                    let n = input.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    stdin.write_all(&buf[..n])?;
                    if let Some(c) = counters {
                        c.add_source(n as u64);
                    }
                }
            })();
            drop(stdin);
            outcome
        }
        _ => Ok(()),
    };
    let status = child.wait()?;
    let complaints = said.join().unwrap_or_default();
    let stdout = output.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = complaints
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(String::as_str)
            .collect();
        return Err(failed(format!(
            "{program} failed ({status}): {}",
            if tail.is_empty() {
                "it said nothing".to_owned()
            } else {
                tail.join("; ")
            }
        )));
    }
    // A client that stopped reading early exits non-zero (above); a broken pipe otherwise is
    // the reading side's fault.
    fed.map_err(|e| failed(format!("feeding {program}: {e}")))?;
    Ok((stdout, complaints))
}

/// The statements and arguments of one engine.
struct Engine<'a> {
    conn: &'a DbConnection,
    prepared: Prepared,
}

impl Engine<'_> {
    /// Runs one SQL statement against `database` (the server's default when `None`) and returns
    /// its output as text rows.
    fn query(&self, database: Option<&str>, sql: &str) -> io::Result<String> {
        let args: Vec<String> = match self.conn.engine {
            DbEngine::Mysql => {
                let mut a = vec![
                    "--connect-timeout=10".to_owned(),
                    "--batch".to_owned(),
                    "--skip-column-names".to_owned(),
                ];
                if let Some(db) = database {
                    a.push(format!("--database={db}"));
                }
                a.extend(["-e".to_owned(), sql.to_owned()]);
                a
            }
            DbEngine::Postgresql => vec![
                "-X".to_owned(),
                "-At".to_owned(),
                "-v".to_owned(),
                "ON_ERROR_STOP=1".to_owned(),
                "-d".to_owned(),
                format!(
                    "dbname={}",
                    pg_conninfo_value(database.unwrap_or("postgres"))
                ),
                "-c".to_owned(),
                sql.to_owned(),
            ],
        };
        client(self.conn, &self.prepared, &args, None, None, None).map(|(out, _)| out)
    }

    fn exists(&self, db: &str) -> io::Result<bool> {
        let sql = match self.conn.engine {
            DbEngine::Mysql => format!(
                "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{db}'"
            ),
            DbEngine::Postgresql => {
                format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'")
            }
        };
        Ok(self.query(None, &sql)?.trim() != "0")
    }

    /// Tables, views and sequences a database holds (system schemas aside).
    fn relations(&self, db: &str) -> io::Result<u64> {
        let out = match self.conn.engine {
            DbEngine::Mysql => self.query(
                None,
                &format!(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{db}'"
                ),
            )?,
            DbEngine::Postgresql => self.query(
                Some(db),
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg_toast%' AND c.relkind IN ('r','v','m','S','f','p')",
            )?,
        };
        Ok(out.trim().parse().unwrap_or(0))
    }

    fn create(&self, db: &str) -> io::Result<()> {
        let sql = match self.conn.engine {
            DbEngine::Mysql => format!("CREATE DATABASE IF NOT EXISTS {}", mysql_ident(db)),
            DbEngine::Postgresql => format!("CREATE DATABASE {}", pg_ident(db)),
        };
        self.query(None, &sql).map(drop)
    }

    /// Feeds one section into its database.
    fn apply(
        &self,
        step: &RestoreStep,
        input: &mut dyn Read,
        counters: &Counters,
        log: &LogSink,
    ) -> io::Result<()> {
        let tool = self
            .prepared
            .program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let args: Vec<String> = match (self.conn.engine, step.section.globals) {
            (DbEngine::Mysql, _) => {
                let mut args = vec![
                    "--default-character-set=utf8mb4".to_owned(),
                    format!("--database={}", step.into),
                ];
                if has_sandbox(&self.prepared.program) {
                    args.push("--sandbox".to_owned());
                }
                args
            }
            // Roles the server already has (its own superuser, at least) make PostgreSQL
            // refuse their CREATE ROLE; those errors are expected, any other fails the restore.
            (DbEngine::Postgresql, true) => vec![
                "-X".to_owned(),
                "-q".to_owned(),
                "-d".to_owned(),
                "dbname='postgres'".to_owned(),
            ],
            (DbEngine::Postgresql, false) => vec![
                "-X".to_owned(),
                "-q".to_owned(),
                "-v".to_owned(),
                "ON_ERROR_STOP=1".to_owned(),
                "--single-transaction".to_owned(),
                "-d".to_owned(),
                format!("dbname={}", pg_conninfo_value(&step.into)),
            ],
        };
        let mut restricted;
        let input: &mut dyn Read = match self.conn.engine {
            DbEngine::Postgresql => {
                restricted = Restricted::new(input)?;
                &mut restricted
            }
            DbEngine::Mysql => input,
        };
        let (_, said) = client(
            self.conn,
            &self.prepared,
            &args,
            Some(input),
            Some(counters),
            Some((log, &tool)),
        )?;
        if step.section.globals {
            let errors: Vec<&String> = said
                .iter()
                .filter(|l| l.contains("ERROR:") && !l.contains("already exists"))
                .collect();
            if !errors.is_empty() {
                return Err(failed(format!(
                    "restoring the globals: {}",
                    errors
                        .iter()
                        .take(5)
                        .map(|e| e.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
        }
        Ok(())
    }
}

/// Applies `steps` from the verified artifact at `artifact`: first every check (a database
/// restored under a new name must not hold anything), then each section in artifact order
/// through one pass of the decompressor. Returns (sections applied, bytes fed).
pub fn apply_steps(
    conn: &DbConnection,
    steps: &[RestoreStep],
    artifact: &Path,
    compression: Compression,
    counters: &Counters,
    log: &LogSink,
) -> io::Result<(u64, u64)> {
    let engine = Engine {
        conn,
        prepared: dbconn::prepare(conn, conn.engine.clients()).map_err(|e| failed(e.message))?,
    };
    let mut steps: Vec<&RestoreStep> = steps.iter().collect();
    steps.sort_by_key(|s| s.section.offset);
    for step in steps.iter().filter(|s| !s.section.globals) {
        if step.into != step.section.database && engine.exists(&step.into)? {
            let held = engine.relations(&step.into)?;
            if held > 0 {
                return Err(failed(format!(
                    "database {:?} exists and holds {held} tables or views; restore under a new name, or into the original {:?}; nothing was restored",
                    step.into, step.section.database
                )));
            }
        }
    }
    let file = std::fs::File::open(artifact)?;
    let mut stream: Box<dyn Read> = match compression {
        Compression::None => Box::new(io::BufReader::new(file)),
        Compression::Zstd { .. } => Box::new(zstd::stream::read::Decoder::new(file)?),
    };
    let mut at = 0u64;
    let mut fed = 0u64;
    for step in &steps {
        let start = step.section.start();
        if start < at {
            return Err(failed(
                "the record's sections overlap; nothing more was restored",
            ));
        }
        io::copy(&mut (&mut stream).take(start - at), &mut io::sink())?;
        let what = if step.section.globals {
            "the cluster's roles and tablespaces".to_owned()
        } else if step.into == step.section.database {
            format!("database {:?}", step.into)
        } else {
            format!("database {:?} as {:?}", step.section.database, step.into)
        };
        log.log(
            LogLevel::Info,
            format!("restoring {what} ({} bytes of SQL)", step.section.bytes),
        );
        if !step.section.globals && !engine.exists(&step.into)? {
            engine.create(&step.into)?;
        }
        let mut section = (&mut stream).take(step.section.bytes);
        engine.apply(step, &mut section, counters, log)?;
        if section.limit() > 0 {
            return Err(failed(format!(
                "the artifact ended {} bytes inside {what}",
                section.limit()
            )));
        }
        at = start + step.section.bytes;
        fed += step.section.bytes;
        counters.add_file(0);
    }
    Ok((steps.len() as u64, fed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Kind;
    use crate::report::Reporter;
    use stowage_shared::SecretString;
    use stowage_shared::databases::{DumpSection, check_connection};

    #[tokio::test]
    async fn a_tampered_mysql_dump_cannot_make_the_client_run_a_program() {
        let dir = tempfile::tempdir().expect("tmp");
        let marker = dir.path().join("ran");
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS t (i int);\n\\! touch {}\nsystem touch {}\n",
            marker.display(),
            marker.display()
        );
        let db = "stowage_sandbox_test";
        let outcome = apply_section(DbEngine::Mysql, sql.into_bytes(), db).await;
        let _ = Command::new("mariadb")
            .args(["-uroot", "-e", &format!("DROP DATABASE IF EXISTS {db}")])
            .output();
        let err = outcome.expect_err("the client refuses the shell escape");
        assert!(
            err.to_string().to_lowercase().contains("sandbox"),
            "needs the machine's MariaDB server and a client with --sandbox: {err}"
        );
        assert!(!marker.exists(), "the client ran a program from the dump");
    }

    fn pg(sql: &str, db: &str) -> std::process::Output {
        Command::new("psql")
            .args([
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .expect("these tests need the machine's PostgreSQL (psql and the server)")
    }

    /// Applies `sql` as the one section of database `db` on the machine's server of `engine`
    /// (as its superuser) and answers the outcome.
    async fn apply_section(
        engine: DbEngine,
        sql: Vec<u8>,
        db: &'static str,
    ) -> io::Result<(u64, u64)> {
        let dir = tempfile::tempdir()?;
        let artifact = dir.path().join("dump.sql");
        std::fs::write(&artifact, &sql)?;
        let (port, user) = match engine {
            DbEngine::Mysql => (3306, "root"),
            DbEngine::Postgresql => (5432, "postgres"),
        };
        let conn = check_connection(
            engine,
            "127.0.0.1",
            Some(port),
            user,
            &SecretString::new(""),
        )
        .map_err(|e| failed(e.to_string()))?;
        let steps = [RestoreStep {
            section: DumpSection {
                database: db.to_owned(),
                globals: false,
                offset: 0,
                preamble: 0,
                bytes: sql.len() as u64,
            },
            into: db.to_owned(),
        }];
        let log = Reporter::start(None, Kind::Restore, 1, None).sink();
        tokio::task::spawn_blocking(move || {
            apply_steps(
                &conn,
                &steps,
                &artifact,
                Compression::None,
                &Counters::default(),
                &log,
            )
        })
        .await
        .map_err(|e| failed(e.to_string()))?
    }

    #[tokio::test]
    async fn a_tampered_postgresql_dump_cannot_make_psql_run_a_program() {
        let db = "stowage_restrict_test";
        pg(&format!("DROP DATABASE IF EXISTS {db}"), "postgres");
        assert!(
            pg(&format!("CREATE DATABASE {db}"), "postgres")
                .status
                .success()
        );
        pg(
            "CREATE TABLE t (i int, s text); INSERT INTO t VALUES (1, E'a\\\\b'), (2, NULL);",
            db,
        );
        let dump = Command::new("pg_dump")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "--format=plain",
                "--no-owner",
                "--clean",
                "--if-exists",
                db,
            ])
            .output()
            .expect("pg_dump");
        assert!(dump.status.success());
        let genuine = dump.stdout;
        // A genuine dump restores, its COPY data whole.
        apply_section(DbEngine::Postgresql, genuine.clone(), db)
            .await
            .expect("a genuine dump restores");
        let rows = pg("SELECT count(*) FROM t", db);
        assert!(
            String::from_utf8_lossy(&rows.stdout).contains('2'),
            "{rows:?}"
        );

        let dir = tempfile::tempdir().expect("tmp");
        let marker = dir.path().join("ran");
        let escape = format!("\\! touch {}\n", marker.display());
        let text = String::from_utf8_lossy(&genuine).into_owned();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("\\unrestrict "))
            .map(str::to_owned);
        let mut tampered = vec![format!("{escape}{text}")];
        if let Some(key) = key {
            // Leave the dump's restriction with its own key, then run a program.
            tampered.push(format!("{text}\\unrestrict {key}\n{escape}"));
        }
        for sql in tampered {
            let err = apply_section(DbEngine::Postgresql, sql.into_bytes(), db)
                .await
                .expect_err("refused");
            assert!(err.to_string().contains("restricted"), "{err}");
            assert!(!marker.exists(), "psql ran a program from the dump");
        }
        pg(&format!("DROP DATABASE IF EXISTS {db}"), "postgres");
    }
}
