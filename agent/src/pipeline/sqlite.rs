//! SQLite databases, backed up and restored through SQLite's own online backup API (the bundled
//! SQLite of `rusqlite`, so a node needs no `sqlite3` program).
//!
//! A raw copy of a live database file can catch it halfway through a write, and misses what
//! still sits in its write-ahead log. The backup API instead copies every page as one read
//! transaction sees it: a consistent snapshot that includes the WAL, while writers go on (in
//! WAL mode; a database in rollback-journal mode holds its writers for the moment of the copy).
//!
//! The API writes its copy into another database, so the snapshot is made in a private
//! temporary file (in [`crate::system::scratch_dir`], removed when the pass ends) that then
//! streams into the pass like any other source. That file is the one full copy a database backup puts on the node's disk; the
//! artifact itself still goes straight to the targets.
//!
//! A restore checks the staged database (`PRAGMA integrity_check`) and then either renames it
//! into place (a new file) or copies it into the existing database through the backup API, in
//! one write transaction: readers of the live database see the old contents or the new, never
//! a mix.

use crate::pipeline::Produced;
use crate::report::Counters;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a copy waits for a database that a writer holds locked before giving up.
const BUSY_FOR: Duration = Duration::from_secs(120);

fn sqlite_error(what: &str, path: &Path, e: rusqlite::Error) -> io::Error {
    io::Error::other(format!("{what} {}: {e}", path.display()))
}

/// Copies every page of `from` into `to` in one step (one read transaction on `from`, one write
/// transaction on `to`), waiting while another connection holds a lock. Copying in several
/// steps would restart whenever a writer changed the source in between, and under steady
/// writes might never end.
fn copy_all(from: &Connection, to: &mut Connection, label: &Path) -> io::Result<()> {
    let backup =
        Backup::new(from, to).map_err(|e| sqlite_error("starting the copy of", label, e))?;
    let deadline = Instant::now() + BUSY_FOR;
    loop {
        match backup
            .step(-1)
            .map_err(|e| sqlite_error("copying", label, e))?
        {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                if Instant::now() > deadline {
                    return Err(io::Error::other(format!(
                        "{} stayed locked by another connection for {} s",
                        label.display(),
                        BUSY_FOR.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // A future result kind: treat it as a failure rather than guess.
            _ => return Err(io::Error::other("the SQLite copy stopped unexpectedly")),
        }
    }
}

fn open_existing(path: &Path, flags: OpenFlags) -> io::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| sqlite_error("opening", path, e))?;
    conn.busy_timeout(BUSY_FOR)
        .map_err(|e| sqlite_error("configuring", path, e))?;
    Ok(conn)
}

/// Snapshots the database at `path` and writes the snapshot to `out`.
pub fn snapshot_into(
    path: &Path,
    counters: &Counters,
    out: &mut dyn Write,
) -> io::Result<Produced> {
    let staging = tempfile::Builder::new()
        .prefix("sqlite-snapshot-")
        .tempfile_in(crate::system::scratch_dir()?)?;
    {
        let source = open_existing(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut copy = Connection::open(staging.path())
            .map_err(|e| sqlite_error("creating the snapshot of", path, e))?;
        copy_all(&source, &mut copy, path)?;
    }
    let mut file = staging.reopen()?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        counters.add_source(n as u64);
        bytes += n as u64;
    }
    counters.add_file(0);
    Ok(Produced {
        items: 1,
        bytes,
        sections: Vec::new(),
    })
}

/// Checks that `staged` is a sound database, then puts it at `target`.
pub fn restore_file(staged: &Path, target: &Path) -> io::Result<()> {
    {
        let check = open_existing(staged, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let verdict: String = check
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .map_err(|e| sqlite_error("checking", staged, e))?;
        if verdict != "ok" {
            return Err(io::Error::other(format!(
                "the restored database fails SQLite's integrity check ({verdict}); nothing was changed"
            )));
        }
    }
    if std::fs::symlink_metadata(target).is_ok() {
        let source = open_existing(staged, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut live = open_existing(target, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        copy_all(&source, &mut live, target)
    } else {
        std::fs::rename(staged, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(path: &Path) -> Vec<(i64, String)> {
        let conn = Connection::open(path).expect("open");
        let mut stmt = conn
            .prepare("SELECT id, note FROM t ORDER BY id")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn a_snapshot_of_a_wal_database_includes_the_log_and_restores_over_the_original()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("app.db");
        let writer = Connection::open(&db)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // No checkpoint: these rows live only in the WAL when the snapshot is taken.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT);
             INSERT INTO t VALUES (1, 'eins'), (2, 'zwei');",
        )?;
        assert!(std::fs::metadata(dir.path().join("app.db-wal"))?.len() > 0);

        let mut snapshot = Vec::new();
        let produced = snapshot_into(&db, &Counters::default(), &mut snapshot)?;
        assert_eq!(produced.bytes, snapshot.len() as u64);
        let staged = dir.path().join("staged.db");
        std::fs::write(&staged, &snapshot)?;
        assert_eq!(rows(&staged), [(1, "eins".into()), (2, "zwei".into())]);

        writer.execute_batch("DELETE FROM t; INSERT INTO t VALUES (3, 'drei');")?;
        restore_file(&staged, &db)?;
        assert_eq!(
            rows(&db),
            [(1, "eins".into()), (2, "zwei".into())],
            "the open writer's database now holds the backup"
        );

        let fresh = dir.path().join("copy.db");
        std::fs::write(&staged, &snapshot)?;
        restore_file(&staged, &fresh)?;
        assert_eq!(rows(&fresh).len(), 2);
        assert!(!staged.exists(), "a new file is renamed into place");
        Ok(())
    }

    #[test]
    fn a_damaged_database_is_refused_and_the_target_kept() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("app.db");
        Connection::open(&target)?.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO t VALUES (1, 'kept');",
        )?;
        let staged = dir.path().join("staged.db");
        std::fs::write(
            &staged,
            b"this is not an SQLite database at all, not even close....",
        )?;
        assert!(restore_file(&staged, &target).is_err());
        assert_eq!(rows(&target), [(1, "kept".into())]);
        let missing = snapshot_into(
            &dir.path().join("nope.db"),
            &Counters::default(),
            &mut Vec::new(),
        );
        assert!(missing.is_err(), "a missing database is not created");
        assert!(!dir.path().join("nope.db").exists());
        Ok(())
    }
}
