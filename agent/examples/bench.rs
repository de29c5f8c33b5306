//! `make bench`: the agent's backup and restore against the tools people compare it with, side by
//! side in one run, on a generated dataset (`bench SIZE...`, e.g. `bench 256M 1G`).
//!
//! For each size it measures, median of three runs, with the page cache warm for every contender:
//! - backup to a local target against `tar -cf - | zstd -3 -T0 > file`;
//! - restore against `zstd -d | tar -x`;
//! - the agent's peak resident memory (VmHWM, read by the measured process itself);
//! - a backup to three targets against one;
//! - database dumps (`DB_SIZE`, default 256M of dump, in the machine's PostgreSQL and MariaDB):
//!   the agent's dump pass against the dump program alone into `zstd -3 -T0`;
//! - repositories, median of three rounds on a fresh repository each: the agent's repository
//!   engine (rustic_core over the agent's storage layer) against Debian's `restic` — first
//!   backup, no-change backup, backup after 1 % of the files changed, restore of the last
//!   snapshot — with wall time, CPU seconds and peak RSS, and each repository's size after the
//!   three backups against its size after the first.
//!
//! Every agent measurement runs in a child process (this binary with `child ...`), so memory is
//! the pass's own and not the benchmark's. Repository rows measure both contenders alike, as
//! their parent sees them (`child measure`, getrusage of its only child).

use nix::sys::resource::{UsageWho, getrusage};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;
use stowage_agent::pipeline::{self, Destination};
use stowage_agent::repository::{self, Labels, Location};
use stowage_agent::restore::{Expected, restore_blocking};
use stowage_agent::storage::{Store, Tools};
use stowage_shared::SecretString;
use stowage_shared::databases::{DbConnection, DbEngine};
use stowage_shared::storage::{LocalDiskConfig, StorageConfig};
use stowage_shared::tasks::{Compression, FileSource};

type Error = Box<dyn std::error::Error>;

const LEVEL: i32 = 3;
const RUNS: usize = 5;

fn parse_size(text: &str) -> Result<u64, Error> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits.parse()?;
    let mult = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}").into()),
    };
    Ok(n * mult)
}

/// A deterministic generator (xorshift), so every run benchmarks the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_noise(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Text-like bytes that compress about 4:1.
fn texty(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "backup ",
        "server ",
        "error ",
        "GET /index.html ",
        "200 ",
        "user=",
        "2026-11-28 ",
        "connection ",
        "retry ",
        "ok\n",
        "INFO ",
        "WARN ",
        "timeout=30s ",
        "node-",
        "\n",
    ];
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        out.extend_from_slice(w.as_bytes());
        if rng.next().is_multiple_of(7) {
            out.extend_from_slice(format!("{}", rng.next() % 100_000).as_bytes());
        }
    }
    out.truncate(len);
    out
}

/// A mixed dataset of about `size` bytes: a third in many small text files (1–64 KiB, in
/// nested directories), the rest in four large files, half noise and half text.
fn generate(root: &Path, size: u64) -> Result<(u64, u64), Error> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ size);
    let (mut files, mut bytes) = (0u64, 0u64);
    let small_budget = size / 3;
    while bytes < small_budget {
        let dir = root.join(format!(
            "small/d{:03}/e{:02}",
            files / 200,
            (files / 20) % 10
        ));
        std::fs::create_dir_all(&dir)?;
        let len = 1024 + (rng.next() % (63 * 1024)) as usize;
        std::fs::write(dir.join(format!("f{files:06}.log")), texty(&mut rng, len))?;
        files += 1;
        bytes += len as u64;
    }
    std::fs::create_dir_all(root.join("large"))?;
    let large_files = 4;
    let each = (size - bytes) / large_files;
    for i in 0..large_files {
        let mut data = vec![0u8; usize::try_from(each)?];
        let half = data.len() / 2;
        rng.fill_noise(&mut data[..half]);
        let text = texty(&mut rng, data.len() - half);
        data[half..].copy_from_slice(&text);
        std::fs::write(root.join(format!("large/blob{i}.bin")), data)?;
        files += 1;
        bytes += each;
    }
    Ok((files, bytes))
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// This process's CPU time (user + system, every thread), in seconds.
fn cpu_secs() -> f64 {
    cpu_fields(11..=12)
}

/// This process's CPU time and its finished children's (a dump pass's dump program), seconds.
fn cpu_secs_with_children() -> f64 {
    cpu_fields(11..=14)
}

/// The sum of `/proc/self/stat` clock-tick fields (counted after the command name) in seconds.
fn cpu_fields(fields: std::ops::RangeInclusive<usize>) -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start after the last ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let mut ticks = 0.0;
            for i in fields {
                ticks += f.get(i)?.parse::<f64>().ok()?;
            }
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

/// One measured backup pass of `source` to local directories `dirs`, each getting `path`.
fn one_pass(
    source: pipeline::Source,
    dirs: &[String],
    path: &str,
) -> Result<(f64, pipeline::Archive), Error> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut stores = Vec::new();
        for dir in dirs {
            let config = StorageConfig::LocalDisk(LocalDiskConfig {
                base_path: dir.clone(),
            });
            stores.push(Store::open(&config, &Tools::default()).await?);
        }
        let dests: Vec<Destination<'_>> = stores
            .iter()
            .map(|store| Destination {
                store,
                path: path.into(),
            })
            .collect();
        let started = Instant::now();
        let (archive, outcomes) = pipeline::run_source(
            source,
            Compression::Zstd { level: LEVEL },
            &dests,
            Arc::default(),
        )
        .await?;
        let secs = started.elapsed().as_secs_f64();
        for o in outcomes {
            o?;
        }
        Ok((secs, archive))
    })
}

/// `child backup SRC DST...`, `child restore ARTIFACT SHA256 BYTES DEST` and `child dump ENGINE
/// DATABASE DST`: one measured pass, printing `seconds peak_rss_kib cpu_seconds` and the
/// artifact's sha256 and size (backup) or the dump's and the artifact's size (dump).
fn child(args: &[String]) -> Result<(), Error> {
    match args.first().map(String::as_str) {
        Some("backup") => {
            let files = FileSource {
                sources: vec![args[1].clone()],
                excludes: vec![],
            };
            let source = pipeline::Source::Files {
                excludes: pipeline::Excludes::new(&files.excludes)?,
                spec: files,
            };
            let (secs, archive) = one_pass(source, &args[2..], "bench.tar.zst")?;
            println!(
                "{secs} {} {} {} {}",
                peak_rss_kib(),
                cpu_secs(),
                archive.sha256,
                archive.bytes
            );
            Ok(())
        }
        Some("restore") => {
            let (artifact, sha, bytes, dest) = (&args[1], &args[2], args[3].parse()?, &args[4]);
            let started = Instant::now();
            let file = std::fs::File::open(artifact)?;
            restore_blocking(
                std::io::BufReader::with_capacity(1 << 20, file),
                &Expected {
                    sha256: sha.clone(),
                    bytes,
                    compression: Compression::Zstd { level: LEVEL },
                },
                (
                    Path::new(dest),
                    &stowage_agent::paths::PathPolicy::everything(),
                ),
                &Path::new(dest).join(".stowage-restore-bench"),
                &Arc::default(),
            )?;
            println!(
                "{} {} {}",
                started.elapsed().as_secs_f64(),
                peak_rss_kib(),
                cpu_secs()
            );
            Ok(())
        }
        Some("dump") => {
            let (engine, db) = (&args[1], &args[2]);
            let conn = bench_connection(engine)?;
            let dump = stowage_agent::pipeline::dump::Dump::new(
                &conn,
                std::slice::from_ref(db),
                &[],
                false,
            )
            .map_err(|e| e.message)?;
            let (secs, archive) =
                one_pass(pipeline::Source::Dump(dump), &args[3..4], "bench.sql.zst")?;
            // The dump program is this process's child: its CPU counts, as in the baseline.
            println!(
                "{secs} {} {} {} {}",
                peak_rss_kib(),
                cpu_secs_with_children(),
                archive.source_bytes,
                archive.bytes
            );
            Ok(())
        }
        Some("measure") => measure_program(&args[1..]),
        Some("repo-backup") => {
            // Targets separated by commas get the snapshot one after the other, as a run does.
            let (targets, src, password) = (&args[1], &args[2], &args[3]);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                for target in targets.split(',') {
                    let at = repo_location(target, password).await?;
                    let labels = Labels {
                        host: "bench".into(),
                        task_id: 1,
                        record_id: 1,
                    };
                    let snap = repository::backup_files(
                        &at,
                        vec![PathBuf::from(src)],
                        pipeline::Excludes::new(&[])?,
                        &labels,
                        Arc::default(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    println!("{} {}", snap.snapshot_id, snap.bytes_added);
                }
                Ok(())
            })
        }
        Some("repo-restore") => {
            let (target, id, dest, password) = (&args[1], &args[2], &args[3], &args[4]);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let at = repo_location(target, password).await?;
                let restored =
                    repository::restore(&at, id, vec![], PathBuf::from(dest), Arc::default())
                        .await
                        .map_err(|e| e.to_string())?;
                println!("{} {}", restored.files, restored.bytes);
                Ok(())
            })
        }
        _ => Err("child backup|restore|dump|measure|repo-backup|repo-restore ...".into()),
    }
}

/// The repository `restic/` of a local-disk target at `target`, with the password in the file
/// `password` (restic reads the same file: no password in an argument).
async fn repo_location(target: &str, password: &str) -> Result<Location, Error> {
    let config = StorageConfig::LocalDisk(LocalDiskConfig {
        base_path: target.to_owned(),
    });
    Ok(Location {
        store: Arc::new(Store::open(&config, &Tools::default()).await?),
        root: "restic".into(),
        password: SecretString::new(std::fs::read_to_string(password)?.trim()),
    })
}

/// `child measure PROGRAM ARGS...`: runs the program and prints `seconds peak_rss_kib
/// cpu_seconds` as its parent sees them (it is this process's only child, so the children's
/// getrusage is its own), then the program's own output.
fn measure_program(args: &[String]) -> Result<(), Error> {
    let started = Instant::now();
    let out = Command::new(&args[0]).args(&args[1..]).output()?;
    let wall = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    println!(
        "{wall} {} {}",
        usage.max_rss(),
        secs(usage.user_time()) + secs(usage.system_time())
    );
    print!("{}", String::from_utf8(out.stdout)?);
    Ok(())
}

/// The benchmark's connection to the machine's server: its superuser over TCP (PostgreSQL trusts
/// local connections; MariaDB's root has no password here).
fn bench_connection(engine: &str) -> Result<DbConnection, Error> {
    let (engine, user) = match engine {
        "mysql" => (DbEngine::Mysql, "root"),
        "postgresql" => (DbEngine::Postgresql, "postgres"),
        other => return Err(format!("unknown engine {other}").into()),
    };
    Ok(DbConnection {
        engine,
        host: "127.0.0.1".into(),
        port: engine.default_port(),
        user: user.into(),
        password: SecretString::new(""),
    })
}

fn run_child(args: &[&str]) -> Result<Vec<String>, Error> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("child").args(args);
    words_of(command)
}

/// Runs `command` and answers the words it printed, or why it failed.
fn words_of(mut command: Command) -> Result<Vec<String>, Error> {
    let out = command.output()?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Runs a pipeline; its wall time and the CPU time of its processes (bash's `times`).
fn shell(script: &str) -> Result<(f64, f64), Error> {
    let started = Instant::now();
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", &format!("{script}\ntimes")])
        .output()?;
    let wall = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("{script} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    // `times` prints the shell's own times, then its children's: `0m4.140s 0m1.080s`.
    let text = String::from_utf8(out.stdout)?;
    let children = text.lines().last().unwrap_or_default();
    let cpu = children
        .split_whitespace()
        .filter_map(|t| {
            let (m, s) = t.trim_end_matches('s').split_once('m')?;
            Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
        })
        .sum();
    Ok((wall, cpu))
}

/// Writes back every dirty page first, so that no contender pays for the one before it.
fn settle() -> Result<(), Error> {
    Command::new("sync").status()?;
    Ok(())
}

fn fresh(dir: &Path) -> Result<PathBuf, Error> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(dir.to_path_buf())
}

/// Where the 1-versus-3-targets runs write: a memory file system when there is one.
fn fan_dir(work: &Path) -> Result<PathBuf, Error> {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.join(format!("stowage-bench-{}", std::process::id()))
    } else {
        work.join("fan")
    };
    fresh(&dir)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Row {
    size: u64,
    files: u64,
    artifact: u64,
    tar_zstd: f64,
    tar_zstd_cpu: f64,
    agent_backup: f64,
    agent_backup_cpu: f64,
    agent_backup3: f64,
    fan_one: f64,
    unzstd_tar: f64,
    unzstd_tar_cpu: f64,
    agent_restore: f64,
    agent_restore_cpu: f64,
    rss_backup: u64,
    rss_backup3: u64,
    rss_restore: u64,
}

fn dataset(work: &Path, size: u64) -> Result<(PathBuf, u64, u64), Error> {
    let data = work.join(format!("data-{size}"));
    if data.exists() {
        let marker = std::fs::read_to_string(data.join(".generated"))?;
        let counts: Vec<u64> = marker
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        return Ok((data, counts[0], counts[1]));
    }
    let tmp = fresh(&work.join("generating"))?;
    let (files, bytes) = generate(&tmp, size)?;
    std::fs::write(tmp.join(".generated"), format!("{files} {bytes}"))?;
    std::fs::rename(&tmp, &data)?;
    Ok((data, files, bytes))
}

fn measure(work: &Path, size: u64) -> Result<Row, Error> {
    let (data, files, bytes) = dataset(work, size)?;
    eprintln!(
        "dataset {}: {files} files, {} MiB",
        data.display(),
        bytes >> 20
    );
    let src = data.to_string_lossy().into_owned();
    let parent = data
        .parent()
        .ok_or("parent")?
        .to_string_lossy()
        .into_owned();
    let name = data
        .file_name()
        .ok_or("name")?
        .to_string_lossy()
        .into_owned();
    // Warm the page cache so that every contender reads from memory (`cat`, because GNU tar
    // skips reading when it writes to /dev/null).
    shell(&format!("tar -cf - -C {parent} {name} | cat > /dev/null"))?;

    let baseline = work.join("baseline.tar.zst");
    // Contenders take turns within each round, so that a noisy neighbour hits them alike.
    let (mut tar_zstd, mut tar_zstd_cpu) = (Vec::new(), Vec::new());
    let (mut one, mut one_cpu, mut three, mut rss1, mut rss3) =
        (Vec::new(), Vec::new(), Vec::new(), 0, 0);
    let mut fan_one = Vec::new();
    let fan = fan_dir(work)?;
    let (mut sha, mut artifact) = (String::new(), 0);
    for _ in 0..RUNS {
        let _ = std::fs::remove_file(&baseline);
        settle()?;
        let (wall, cpu) = shell(&format!(
            "tar -cf - -C {parent} {name} | zstd -{LEVEL} -T0 -q -o {}",
            baseline.display()
        ))?;
        tar_zstd.push(wall);
        tar_zstd_cpu.push(cpu);
        let t = fresh(&work.join("t1"))?;
        settle()?;
        let out = run_child(&["backup", &src, &t.to_string_lossy()])?;
        one.push(out[0].parse()?);
        rss1 = rss1.max(out[1].parse()?);
        one_cpu.push(out[2].parse()?);
        sha = out[3].clone();
        artifact = out[4].parse()?;
        // One target against three, both in `fan` (memory when it can): on one disk, three
        // copies cost three times that disk's bandwidth, which says nothing about the agent.
        for n in [1, 3] {
            let dirs: Vec<PathBuf> = (1..=n)
                .map(|i| fresh(&fan.join(format!("t{n}-{i}"))))
                .collect::<Result<_, _>>()?;
            let mut args = vec!["backup".to_owned(), src.clone()];
            args.extend(dirs.iter().map(|d| d.to_string_lossy().into_owned()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            settle()?;
            let out = run_child(&args)?;
            let wall: f64 = out[0].parse()?;
            if n == 1 {
                fan_one.push(wall);
            } else {
                three.push(wall);
                rss3 = rss3.max(out[1].parse()?);
            }
            for d in dirs {
                std::fs::remove_dir_all(d)?;
            }
        }
    }
    let artifact_path = work.join("t1/bench.tar.zst");
    let (mut untar, mut untar_cpu, mut restore, mut restore_cpu, mut rss_r) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..RUNS {
        let d = fresh(&work.join("restore-baseline"))?;
        settle()?;
        let (wall, cpu) = shell(&format!(
            "zstd -d -c -q {} | tar -xf - -C {}",
            baseline.display(),
            d.display()
        ))?;
        untar.push(wall);
        untar_cpu.push(cpu);
        let d = fresh(&work.join("restore-agent"))?;
        settle()?;
        let out = run_child(&[
            "restore",
            &artifact_path.to_string_lossy(),
            &sha,
            &artifact.to_string(),
            &d.to_string_lossy(),
        ])?;
        restore.push(out[0].parse()?);
        rss_r = rss_r.max(out[1].parse()?);
        restore_cpu.push(out[2].parse()?);
    }
    for dir in ["t1", "restore-baseline", "restore-agent"] {
        let _ = std::fs::remove_dir_all(work.join(dir));
    }
    let _ = std::fs::remove_dir_all(&fan);
    let _ = std::fs::remove_file(&baseline);
    Ok(Row {
        size: bytes,
        files,
        artifact,
        tar_zstd: median(tar_zstd),
        tar_zstd_cpu: median(tar_zstd_cpu),
        agent_backup: median(one),
        agent_backup_cpu: median(one_cpu),
        agent_backup3: median(three),
        fan_one: median(fan_one),
        unzstd_tar: median(untar),
        unzstd_tar_cpu: median(untar_cpu),
        agent_restore: median(restore),
        agent_restore_cpu: median(restore_cpu),
        rss_backup: rss1,
        rss_backup3: rss3,
        rss_restore: rss_r,
    })
}

/// The database the dump rows use, made once per size (a marker table keeps its row count).
const BENCH_DB: &str = "stowage_bench";
/// About this many bytes of dump per row (plain SQL or COPY text).
const DUMP_BYTES_PER_ROW: u64 = 170;

/// SQL through the machine's own client as its superuser; the first output line.
fn admin_sql(engine: &str, database: Option<&str>, sql: &str) -> Result<String, Error> {
    let out = match engine {
        "mysql" => {
            let mut c = Command::new("mariadb");
            c.args(["-uroot", "-h127.0.0.1", "--batch", "--skip-column-names"]);
            if let Some(db) = database {
                c.arg(format!("--database={db}"));
            }
            c.args(["-e", sql]).output()?
        }
        _ => Command::new("psql")
            .args([
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-d", database.unwrap_or("postgres"), "-c", sql])
            .output()?,
    };
    if !out.status.success() {
        return Err(format!("{engine}: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// Makes (or finds) the benchmark database with `rows` rows of log-like events: text that
/// compresses well, and 32 bytes of hash per row that does not.
fn bench_database(engine: &str, rows: u64) -> Result<(), Error> {
    let have = admin_sql(engine, Some(BENCH_DB), "SELECT n FROM bench_meta").unwrap_or_default();
    if have == rows.to_string() {
        return Ok(());
    }
    eprintln!("making the {engine} database {BENCH_DB} with {rows} rows");
    match engine {
        "mysql" => {
            admin_sql(
                engine,
                None,
                &format!("DROP DATABASE IF EXISTS {BENCH_DB}; CREATE DATABASE {BENCH_DB}"),
            )?;
            admin_sql(
                engine,
                Some(BENCH_DB),
                &format!(
                    "CREATE TABLE events (id BIGINT PRIMARY KEY, at DATETIME, host VARCHAR(32),
                                          message TEXT, payload VARBINARY(32)) ENGINE=InnoDB;
                     INSERT INTO events SELECT seq, TIMESTAMPADD(SECOND, seq, '2026-01-01'),
                            CONCAT('node-', seq % 97),
                            CONCAT('GET /api/items/', seq % 5000, ' 200 ', MD5(seq)),
                            UNHEX(CONCAT(MD5(seq * 7), MD5(seq * 13)))
                     FROM seq_1_to_{rows};
                     CREATE TABLE bench_meta (n BIGINT); INSERT INTO bench_meta VALUES ({rows});"
                ),
            )?;
        }
        _ => {
            admin_sql(engine, None, &format!("DROP DATABASE IF EXISTS {BENCH_DB}"))?;
            admin_sql(engine, None, &format!("CREATE DATABASE {BENCH_DB}"))?;
            admin_sql(
                engine,
                Some(BENCH_DB),
                &format!(
                    "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz, host text,
                                          message text, payload bytea);
                     INSERT INTO events SELECT i, '2026-01-01'::timestamptz + i * interval '1 second',
                            'node-' || (i % 97), 'GET /api/items/' || (i % 5000) || ' 200 ' || md5(i::text),
                            decode(md5((i * 7)::text) || md5((i * 13)::text), 'hex')
                     FROM generate_series(1, {rows}) i;
                     CREATE TABLE bench_meta (n bigint); INSERT INTO bench_meta VALUES ({rows});"
                ),
            )?;
        }
    }
    Ok(())
}

struct DbRow {
    engine: &'static str,
    dump_bytes: u64,
    artifact: u64,
    baseline: f64,
    baseline_cpu: f64,
    agent: f64,
    agent_cpu: f64,
    rss: u64,
}

/// The agent's dump pass against the dump program alone into `zstd -3 -T0`, with the same
/// options, in turns.
fn measure_dump(work: &Path, engine: &'static str, rows: u64) -> Result<DbRow, Error> {
    bench_database(engine, rows)?;
    let baseline = work.join("baseline.sql.zst");
    let tool = match engine {
        "mysql" => format!(
            "mariadb-dump -uroot -h127.0.0.1 --single-transaction --quick --routines --triggers \
             --events --hex-blob --default-character-set=utf8mb4 {BENCH_DB}"
        ),
        _ => format!(
            "pg_dump -h 127.0.0.1 -U postgres -w --format=plain --no-owner --clean --if-exists \
             --dbname={BENCH_DB}"
        ),
    };
    // Warm the server's cache the same way for both.
    shell(&format!("{tool} > /dev/null"))?;
    let (mut base, mut base_cpu, mut agent, mut agent_cpu, mut rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
    let (mut dump_bytes, mut artifact) = (0, 0);
    for _ in 0..RUNS {
        let _ = std::fs::remove_file(&baseline);
        settle()?;
        let (wall, cpu) = shell(&format!(
            "{tool} | zstd -{LEVEL} -T0 -q -o {}",
            baseline.display()
        ))?;
        base.push(wall);
        base_cpu.push(cpu);
        let t = fresh(&work.join("dump"))?;
        settle()?;
        let out = run_child(&["dump", engine, BENCH_DB, &t.to_string_lossy()])?;
        agent.push(out[0].parse()?);
        rss = rss.max(out[1].parse()?);
        agent_cpu.push(out[2].parse()?);
        dump_bytes = out[3].parse()?;
        artifact = out[4].parse()?;
    }
    let _ = std::fs::remove_dir_all(work.join("dump"));
    let _ = std::fs::remove_file(&baseline);
    Ok(DbRow {
        engine,
        dump_bytes,
        artifact,
        baseline: median(base),
        baseline_cpu: median(base_cpu),
        agent: median(agent),
        agent_cpu: median(agent_cpu),
        rss,
    })
}

/// Rounds of the repository rows (each on fresh repositories: a first backup is only first once).
const REPO_RUNS: usize = 3;
const REPO_STEPS: [&str; 4] = [
    "first backup",
    "no-change backup",
    "after 1 % changed",
    "restore",
];

/// One contender's runs of one step.
#[derive(Default)]
struct Runs {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    rss: u64,
}

impl Runs {
    /// Takes `child measure`'s first three figures; returns the program's own output after them.
    fn add(&mut self, out: Vec<String>) -> Result<Vec<String>, Error> {
        self.wall.push(out[0].parse()?);
        self.rss = self.rss.max(out[1].parse()?);
        self.cpu.push(out[2].parse()?);
        Ok(out[3..].to_vec())
    }
}

struct RepoRow {
    size: u64,
    files: u64,
    changed: u64,
    restic: [Runs; 4],
    agent: [Runs; 4],
    /// The agent's first backup into two targets (each gets its own snapshot, in turn).
    two_targets: Runs,
    /// Each repository's bytes after the first backup and after all three: (restic, agent).
    full: (u64, u64),
    after: (u64, u64),
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> Result<u64, Error> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// The files under `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Rewrites every hundredth small file of `src` with new text of the same length (a new file
/// renamed over the old: `src` is a hard-linked copy, and the generated dataset stays as it
/// is). Returns how many files changed.
fn change_one_percent(src: &Path, round: u64) -> Result<u64, Error> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (round + 1));
    let mut changed = 0;
    for path in files_under(&src.join("small"))?.iter().step_by(100) {
        let len = usize::try_from(std::fs::metadata(path)?.len())?;
        let fresh = path.with_extension("new");
        std::fs::write(&fresh, texty(&mut rng, len))?;
        std::fs::rename(&fresh, path)?;
        changed += 1;
    }
    Ok(changed)
}

/// Runs `program args` through `child measure`, with `cache` as the cache home of both restic
/// and rustic_core (so that no earlier round's cache helps).
fn measured(cache: &Path, program: &Path, args: &[&str]) -> Result<Vec<String>, Error> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .env("XDG_CACHE_HOME", cache)
        .args(["child", "measure"])
        .arg(program)
        .args(args);
    words_of(command)
}

/// Fails unless the restored tree `restored` holds exactly the files of `src`, byte for byte.
fn same_tree(src: &Path, restored: &Path) -> Result<(), Error> {
    let out = Command::new("diff")
        .args(["-r", "-q"])
        .arg(src)
        .arg(restored)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "{} differs from {}: {}",
            restored.display(),
            src.display(),
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join("; ")
        )
        .into());
    }
    Ok(())
}

/// The repository rows: the agent's repository engine against Debian's `restic`, step by step
/// in turns, on a hard-linked copy of the dataset.
fn measure_repository(work: &Path, size: u64) -> Result<RepoRow, Error> {
    let (data, files, bytes) = dataset(work, size)?;
    let restic = PathBuf::from("restic");
    let me = std::env::current_exe()?;
    let password = work.join("repo-password");
    std::fs::write(&password, "stowage bench repository password\n")?;
    let pw = password.to_string_lossy().into_owned();
    let src = work.join("repo-src");
    let src_s = src.to_string_lossy().into_owned();
    let (mut r, mut a): ([Runs; 4], [Runs; 4]) = Default::default();
    let mut two_targets = Runs::default();
    let (mut full, mut after, mut changed) = ((0, 0), (0, 0), 0);
    for round in 0..REPO_RUNS {
        if src.exists() {
            std::fs::remove_dir_all(&src)?;
        }
        let status = Command::new("cp")
            .arg("-al")
            .arg(&data)
            .arg(&src)
            .status()?;
        if !status.success() {
            return Err("cp -al of the dataset failed".into());
        }
        let cache = fresh(&work.join("repo-cache"))?;
        let restic_repo = fresh(&work.join("restic-repo"))?.join("restic");
        let rrepo = restic_repo.to_string_lossy().into_owned();
        let agent_target = fresh(&work.join("agent-repo"))?;
        let target = agent_target.to_string_lossy().into_owned();
        let base = ["-r", &rrepo, "--password-file", &pw, "-q"];
        measured(&cache, &restic, &[&base[..], &["init"]].concat())?;
        let mut last = String::new();
        for step in 0..3 {
            if step == 2 {
                changed = change_one_percent(&src, round as u64)?;
            }
            settle()?;
            r[step].add(measured(
                &cache,
                &restic,
                &[&base[..], &["backup", &src_s]].concat(),
            )?)?;
            settle()?;
            let out = a[step].add(measured(
                &cache,
                &me,
                &["child", "repo-backup", &target, &src_s, &pw],
            )?)?;
            last = out.first().cloned().ok_or("no snapshot id")?;
            if step == 0 {
                full = (dir_bytes(&restic_repo)?, dir_bytes(&agent_target)?);
            }
        }
        after = (dir_bytes(&restic_repo)?, dir_bytes(&agent_target)?);
        // The same first backup into two new targets, one after the other.
        let two: Vec<String> = (1..=2)
            .map(|i| {
                fresh(&work.join(format!("agent-two-{i}")))
                    .map(|d| d.to_string_lossy().into_owned())
            })
            .collect::<Result<_, _>>()?;
        settle()?;
        two_targets.add(measured(
            &cache,
            &me,
            &["child", "repo-backup", &two.join(","), &src_s, &pw],
        )?)?;
        let (rd, ad) = (
            fresh(&work.join("restore-restic"))?,
            fresh(&work.join("restore-agent"))?,
        );
        let (rds, ads) = (
            rd.to_string_lossy().into_owned(),
            ad.to_string_lossy().into_owned(),
        );
        settle()?;
        r[3].add(measured(
            &cache,
            &restic,
            &[&base[..], &["restore", "latest", "--target", &rds]].concat(),
        )?)?;
        settle()?;
        a[3].add(measured(
            &cache,
            &me,
            &["child", "repo-restore", &target, &last, &ads, &pw],
        )?)?;
        // Both restore the snapshot's absolute paths under the directory they were given.
        let inner = src.strip_prefix("/").unwrap_or(&src);
        same_tree(&src, &rd.join(inner))?;
        same_tree(&src, &ad.join(inner))?;
    }
    for dir in [
        "repo-src",
        "repo-cache",
        "restic-repo",
        "agent-repo",
        "restore-restic",
        "restore-agent",
        "agent-two-1",
        "agent-two-2",
    ] {
        let _ = std::fs::remove_dir_all(work.join(dir));
    }
    Ok(RepoRow {
        size: bytes,
        files,
        changed,
        restic: r,
        agent: a,
        two_targets,
        full,
        after,
    })
}

fn main() -> Result<(), Error> {
    // As the agent's own `main` does: the measured code runs in this process.
    stowage_agent::cap_malloc_arenas();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return child(&args[1..]);
    }
    let work = PathBuf::from(std::env::var("BENCH_DIR").unwrap_or_else(|_| "target/bench".into()));
    std::fs::create_dir_all(&work)?;
    // Absolute: restic and rustic_core record the paths they are given in the snapshot.
    let work = std::fs::canonicalize(&work)?;
    let sizes: Vec<u64> = if args.is_empty() {
        vec![parse_size("256M")?, parse_size("1G")?]
    } else {
        args.iter()
            .map(|a| parse_size(a))
            .collect::<Result<_, _>>()?
    };
    // `BENCH_ONLY=archive,database,repository` (any of them) runs only those parts.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let wants = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    let mut rows = Vec::new();
    let mut repo_rows = Vec::new();
    for &size in &sizes {
        if wants("archive") {
            rows.push(measure(&work, size)?);
        }
        if wants("repository") {
            repo_rows.push(measure_repository(&work, size)?);
        }
    }
    let db_size = parse_size(&std::env::var("DB_SIZE").unwrap_or_else(|_| "256M".into()))?;
    let mut db_rows = Vec::new();
    let mut db_missing = Vec::new();
    if wants("database") {
        for engine in ["postgresql", "mysql"] {
            match measure_dump(&work, engine, db_size / DUMP_BYTES_PER_ROW) {
                Ok(row) => db_rows.push(row),
                Err(e) => db_missing.push(format!("{engine}: not measured ({e})")),
            }
        }
    }
    if !rows.is_empty() {
        print_archives(&rows, &work);
    }
    if !db_rows.is_empty() || !db_missing.is_empty() {
        print_dumps(&db_rows, &db_missing);
    }
    if !repo_rows.is_empty() {
        print_repository(&repo_rows);
    }
    println!();
    if !rows.is_empty() {
        archive_goals(&rows);
    }
    dump_goals(&db_rows);
    repository_goals(&repo_rows);
    Ok(())
}

fn mark(ok: bool) -> &'static str {
    if ok { "meets" } else { "MISSES" }
}
fn mib(b: u64) -> f64 {
    b as f64 / f64::from(1u32 << 20)
}
fn rate(b: u64, s: f64) -> f64 {
    mib(b) / s
}

fn print_archives(rows: &[Row], work: &Path) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\nStowage agent benchmark ({cores} cores, zstd level {LEVEL}, median of {RUNS} runs, page cache warm;\n\
         backups and restores on {}; 1 vs 3 targets on {})\n",
        work.display(),
        if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "the same disk"
        }
    );
    println!(
        "| dataset | files | artifact | tar\\|zstd -T0 | agent backup | ratio | zstd -d\\|tar -x | agent restore | ratio | 3 targets / 1 | peak RSS backup (1 / 3 targets) | peak RSS restore |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {:.0} MiB | {} | {:.0} MiB | {:.0} MiB/s | {:.0} MiB/s | {:.2}x | {:.0} MiB/s | {:.0} MiB/s | {:.2}x | {:.2}x | {:.1} / {:.1} MiB | {:.1} MiB |",
            mib(r.size),
            r.files,
            mib(r.artifact),
            rate(r.size, r.tar_zstd),
            rate(r.size, r.agent_backup),
            r.tar_zstd / r.agent_backup,
            rate(r.size, r.unzstd_tar),
            rate(r.size, r.agent_restore),
            r.unzstd_tar / r.agent_restore,
            r.agent_backup3 / r.fan_one,
            r.rss_backup as f64 / 1024.0,
            r.rss_backup3 as f64 / 1024.0,
            r.rss_restore as f64 / 1024.0,
        );
    }
    println!();
    println!("| dataset | CPU s: tar\\|zstd | agent backup | zstd -d\\|tar -x | agent restore |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {:.0} MiB | {:.2} | {:.2} | {:.2} | {:.2} |",
            mib(r.size),
            r.tar_zstd_cpu,
            r.agent_backup_cpu,
            r.unzstd_tar_cpu,
            r.agent_restore_cpu
        );
    }
}

fn print_dumps(db_rows: &[DbRow], db_missing: &[String]) {
    println!();
    println!(
        "| database | dump | artifact | dump tool \\| zstd -T0 | agent dump pass | ratio | CPU s: tool \\| zstd | agent + tool | peak RSS (agent) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in db_rows {
        println!(
            "| {} | {:.0} MiB | {:.0} MiB | {:.0} MiB/s | {:.0} MiB/s | {:.2}x | {:.2} | {:.2} | {:.1} MiB |",
            r.engine,
            mib(r.dump_bytes),
            mib(r.artifact),
            rate(r.dump_bytes, r.baseline),
            rate(r.dump_bytes, r.agent),
            r.baseline / r.agent,
            r.baseline_cpu,
            r.agent_cpu,
            r.rss as f64 / 1024.0
        );
    }
    for line in db_missing {
        println!("{line}");
    }
}

fn archive_goals(rows: &[Row]) {
    let worst = |f: fn(&Row) -> f64| rows.iter().map(f).fold(f64::INFINITY, f64::min);
    let most = |f: fn(&Row) -> f64| rows.iter().map(f).fold(0.0, f64::max);
    let backup = worst(|r| r.tar_zstd / r.agent_backup);
    let restore = worst(|r| r.unzstd_tar / r.agent_restore);
    let fan = most(|r| r.agent_backup3 / r.fan_one);
    let rss = most(|r| r.rss_backup.max(r.rss_backup3).max(r.rss_restore) as f64 / 1024.0);
    println!(
        "backup  >= 0.90x tar|zstd:     {backup:.2}x ({})",
        mark(backup >= 0.9)
    );
    println!(
        "restore >= 0.90x zstd -d|tar:  {restore:.2}x ({})",
        mark(restore >= 0.9)
    );
    println!(
        "3 targets <= 1.20x one:        {fan:.2}x ({})",
        mark(fan <= 1.2)
    );
    println!(
        "peak RSS <= 64 MiB:            {rss:.1} MiB ({})",
        mark(rss <= 64.0)
    );
    if rows.len() >= 2 {
        let (a, b) = (&rows[0], &rows[rows.len() - 1]);
        println!(
            "peak RSS as data grows {:.0}x:  {:.1} -> {:.1} MiB (backup, 1 target)",
            mib(b.size) / mib(a.size),
            a.rss_backup as f64 / 1024.0,
            b.rss_backup as f64 / 1024.0
        );
    }
}

fn dump_goals(db_rows: &[DbRow]) {
    for r in db_rows {
        let ratio = r.baseline / r.agent;
        println!(
            "{:<10} dump >= 0.90x:   {ratio:.2}x ({})",
            r.engine,
            mark(ratio >= 0.9)
        );
    }
}

fn print_repository(rows: &[RepoRow]) {
    println!(
        "\nRepositories: the agent (rustic_core 0.13 over its storage layer, local disk) against \
         Debian's restic, median of {REPO_RUNS} rounds, each on fresh repositories\n"
    );
    println!(
        "| dataset | step | restic | agent | ratio | CPU s: restic | agent | peak RSS: restic | agent |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        for (step, name) in REPO_STEPS.iter().enumerate() {
            let (r, a) = (
                median(row.restic[step].wall.clone()),
                median(row.agent[step].wall.clone()),
            );
            let label = if step == 2 {
                format!("{name} ({} files)", row.changed)
            } else {
                (*name).to_owned()
            };
            println!(
                "| {:.0} MiB, {} files | {label} | {r:.2} s | {a:.2} s | {:.2}x | {:.2} | {:.2} | {:.0} MiB | {:.0} MiB |",
                mib(row.size),
                row.files,
                r / a,
                median(row.restic[step].cpu.clone()),
                median(row.agent[step].cpu.clone()),
                row.restic[step].rss as f64 / 1024.0,
                row.agent[step].rss as f64 / 1024.0,
            );
        }
    }
    println!();
    println!(
        "| dataset | agent first backup: 1 target | 2 targets | ratio | peak RSS, 2 targets |"
    );
    println!("|---|---|---|---|---|");
    for row in rows {
        let (one, two) = (
            median(row.agent[0].wall.clone()),
            median(row.two_targets.wall.clone()),
        );
        println!(
            "| {:.0} MiB | {one:.2} s | {two:.2} s | {:.2}x | {:.0} MiB |",
            mib(row.size),
            two / one,
            row.two_targets.rss as f64 / 1024.0
        );
    }
    println!();
    println!(
        "| dataset | repository after 1 backup: restic | agent | after 3: restic | agent | growth: restic | agent |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {:.0} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.3}x | {:.3}x |",
            mib(row.size),
            mib(row.full.0),
            mib(row.full.1),
            mib(row.after.0),
            mib(row.after.1),
            row.after.0 as f64 / row.full.0 as f64,
            row.after.1 as f64 / row.full.1 as f64,
        );
    }
}

/// The issue's goals for the repository rows: at least restic's speed and at most its memory in
/// every step, and three backups in at most 1.1 times one full repository.
fn repository_goals(rows: &[RepoRow]) {
    for row in rows {
        let size = mib(row.size);
        for (step, name) in REPO_STEPS.iter().enumerate() {
            let (r, a) = (
                median(row.restic[step].wall.clone()),
                median(row.agent[step].wall.clone()),
            );
            let speed = r / a;
            println!(
                "repository {size:.0} MiB {name:<18} time >= restic's speed: {speed:.2}x ({}), peak RSS <= restic's: {:.0} / {:.0} MiB ({})",
                mark(speed >= 1.0),
                row.agent[step].rss as f64 / 1024.0,
                row.restic[step].rss as f64 / 1024.0,
                mark(row.agent[step].rss <= row.restic[step].rss)
            );
        }
        let growth = row.after.1 as f64 / row.full.1 as f64;
        println!(
            "repository {size:.0} MiB after 3 backups <= 1.10x one full: {growth:.3}x ({})",
            mark(growth <= 1.1)
        );
    }
}
