//! Database restores: no byte of an artifact reaches a database before the whole artifact is
//! proven to be the one the record names.
//!
//! 1. The artifact is fetched once into a private file on the restoring node, hashed as it
//!    comes (SHA-256 and size against the record). A server dump stays compressed there; an
//!    SQLite database is decompressed into a staging file beside its destination.
//! 2. Only then is it applied: each chosen section of a dump is streamed from that file (the
//!    bytes the record's sections name, never a search through the SQL) into the engine's own
//!    client; an SQLite database is checked and put in place ([`crate::sqlite`]).
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
            (DbEngine::Mysql, _) => vec![
                "--default-character-set=utf8mb4".to_owned(),
                format!("--database={}", step.into),
            ],
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
