//! The repository engine against a local-disk target, read back by Debian's `restic` (installed
//! by `scripts/install.sh`): what Stowage writes must stay readable without Stowage.

use super::*;
use crate::storage::Tools;
use std::process::Command;
use stowage_shared::storage::{LocalDiskConfig, StorageConfig};

const PASSWORD: &str = "correct horse battery staple";

async fn local(dir: &Path) -> Location {
    let config = StorageConfig::LocalDisk(LocalDiskConfig {
        base_path: dir.display().to_string(),
    });
    let store = Store::open(&config, &Tools::default()).await.expect("open");
    Location {
        store: Arc::new(store),
        root: "restic".to_owned(),
        password: SecretString::new(PASSWORD),
    }
}

/// `restic` against the repository, with the password on stdin's file descriptor (never an
/// argument or the environment).
fn restic(repo: &Path, args: &[&str]) -> String {
    let mut pw = tempfile::NamedTempFile::new().expect("password file");
    std::io::Write::write_all(&mut pw, PASSWORD.as_bytes()).expect("write password");
    let out = Command::new("restic")
        .arg("--repo")
        .arg(repo)
        .arg("--password-file")
        .arg(pw.path())
        .arg("--no-cache")
        .args(args)
        .output()
        .expect("restic is not installed: scripts/install.sh installs Debian's restic");
    assert!(
        out.status.success(),
        "restic {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn labels(record_id: i64) -> Labels {
    Labels {
        host: "node-a".to_owned(),
        task_id: 7,
        record_id,
    }
}

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("docs/deep")).expect("mkdir");
    std::fs::create_dir_all(root.join("cache")).expect("mkdir");
    std::fs::write(root.join("docs/a.txt"), b"alpha\n").expect("write");
    std::fs::write(root.join("docs/deep/b.bin"), vec![7u8; 300_000]).expect("write");
    std::fs::write(root.join("cache/junk"), b"skip me").expect("write");
    std::fs::write(root.join("notes.log"), b"skip me too").expect("write");
}

fn read_all(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("under").to_path_buf();
                out.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// A snapshot of all of `dir`, for record `record_id`.
async fn snapshot_of(at: &Location, dir: &Path, record_id: i64) -> Snapshotted {
    backup_files(
        at,
        vec![dir.to_path_buf()],
        Excludes::new(&[]).expect("excludes"),
        &labels(record_id),
        Arc::default(),
    )
    .await
    .expect("backup")
}

/// Incompressible bytes from `seed` (xorshift): each seed is new data to a repository.
fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32 ^ seed.wrapping_mul(0x85eb_ca6b);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_dedup_restore_and_restic_reads_them() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, target) = (work.path().join("src"), work.path().join("target"));
    tree(&src);
    let at = local(&target).await;
    let excludes = Excludes::new(&["cache".to_owned(), "*.log".to_owned()]).expect("excludes");
    let counters = Arc::new(Counters::default());

    let first = backup_files(
        &at,
        vec![src.clone()],
        excludes.clone(),
        &labels(1),
        Arc::clone(&counters),
    )
    .await
    .expect("first backup");
    assert_eq!(first.files, 2, "{first:?}");
    assert_eq!(first.files_new, 2);
    assert!(first.bytes_added > 0);

    // Nothing changed: nothing new, and next to nothing added.
    let second = backup_files(
        &at,
        vec![src.clone()],
        excludes.clone(),
        &labels(2),
        counters.clone(),
    )
    .await
    .expect("second backup");
    assert_eq!(
        (
            second.files_new,
            second.files_changed,
            second.files_unmodified
        ),
        (0, 0, 2)
    );
    assert!(second.bytes_added < first.bytes_added / 10, "{second:?}");

    std::fs::write(src.join("docs/a.txt"), b"alpha, changed\n").expect("change");
    let third = backup_files(
        &at,
        vec![src.clone()],
        excludes,
        &labels(3),
        counters.clone(),
    )
    .await
    .expect("third backup");
    assert_eq!(third.files_changed, 1);

    // Plain restic sees the three snapshots, with Stowage's tags and host, and a clean check.
    let repo = target.join("restic");
    let listed: serde_json::Value =
        serde_json::from_str(&restic(&repo, &["snapshots", "--json"])).expect("json");
    let ids: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 3);
    for snap in [&first, &second, &third] {
        assert!(ids.contains(&snap.snapshot_id.as_str()), "{ids:?}");
    }
    assert_eq!(listed[0]["hostname"], "node-a");
    assert!(
        listed[0]["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .any(|t| t == "task-7")
    );
    restic(&repo, &["check", "--read-data"]);

    // restic restores the latest snapshot equal to the source, without the excluded files.
    let by_restic = work.path().join("by-restic");
    restic(
        &repo,
        &[
            "restore",
            &third.snapshot_id,
            "--target",
            &by_restic.display().to_string(),
        ],
    );
    let mut expected = read_all(&src);
    expected.retain(|(p, _)| !p.starts_with("cache") && p != Path::new("notes.log"));
    assert_eq!(
        read_all(&by_restic.join(src.strip_prefix("/").expect("abs"))),
        expected
    );

    // Stowage's own restore: all of it, then one folder.
    let staging = work.path().join("staged");
    let all = restore(
        &at,
        &third.snapshot_id,
        Vec::new(),
        staging.clone(),
        counters.clone(),
    )
    .await
    .expect("restore");
    assert_eq!(all.files, 2);
    assert_eq!(
        read_all(&staging.join(src.strip_prefix("/").expect("abs"))),
        expected
    );
    let one = work.path().join("one");
    let deep = inside(&src.join("docs/deep").display().to_string()).expect("inside");
    let part = restore(
        &at,
        &third.snapshot_id,
        vec![deep],
        one.clone(),
        counters.clone(),
    )
    .await
    .expect("selective restore");
    assert_eq!(part.files, 1);
    let got = read_all(&one.join(src.strip_prefix("/").expect("abs")));
    assert_eq!(
        got,
        vec![(PathBuf::from("docs/deep/b.bin"), vec![7u8; 300_000])]
    );

    // A path the snapshot does not hold is refused; so is a path that climbs out.
    let missing = inside(&src.join("nope").display().to_string()).expect("inside");
    let err = restore(
        &at,
        &third.snapshot_id,
        vec![missing],
        work.path().join("x"),
        counters,
    )
    .await
    .expect_err("missing path");
    assert!(err.to_string().contains("is not in the snapshot"), "{err}");
    assert!(inside("/srv/../etc").is_err());

    // Forget drops exactly the snapshots named; forgetting one already gone is not an error.
    forget(&at, &[first.snapshot_id.clone(), first.snapshot_id.clone()])
        .await
        .expect("forget");
    forget(&at, std::slice::from_ref(&first.snapshot_id))
        .await
        .expect("forget again");
    let listed: serde_json::Value =
        serde_json::from_str(&restic(&repo, &["snapshots", "--json"])).expect("json");
    assert_eq!(listed.as_array().expect("array").len(), 2);
    restic(&repo, &["check"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_no_repository_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    tree(&src);
    let at = local(&work.path().join("target")).await;
    let none = restore(
        &at,
        &"a".repeat(64),
        Vec::new(),
        work.path().join("s"),
        Arc::default(),
    )
    .await
    .expect_err("no repository");
    assert!(
        none.to_string().contains("there is no repository"),
        "{none}"
    );
    backup_files(
        &at,
        vec![src.clone()],
        Excludes::new(&[]).expect("none"),
        &labels(1),
        Arc::default(),
    )
    .await
    .expect("backup");
    let wrong = Location {
        password: SecretString::new("not it"),
        ..at
    };
    let err = backup_files(
        &wrong,
        vec![src],
        Excludes::new(&[]).expect("none"),
        &labels(2),
        Arc::default(),
    )
    .await
    .expect_err("wrong password");
    assert!(!err.to_string().contains(PASSWORD));
    assert!(snapshot_id("abc").is_err());

    // The one key file is restic's, named by its hash, with Stowage's KDF cost (not rustic_core's
    // 2^17), and restic opens the repository with it.
    let keys: Vec<PathBuf> = std::fs::read_dir(work.path().join("target/restic/keys"))
        .expect("keys")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let bytes = std::fs::read(&keys[0]).expect("key file");
    assert_eq!(
        keys[0].file_name().and_then(|n| n.to_str()),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)).as_str())
    );
    let file: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        (&file["kdf"], &file["N"], &file["r"], &file["p"]),
        (
            &serde_json::json!("scrypt"),
            &serde_json::json!(32768),
            &serde_json::json!(8),
            &serde_json::json!(1)
        )
    );
    let listed = restic(&work.path().join("target/restic"), &["key", "list"]);
    assert!(listed.contains("stowage"), "{listed}");
}

/// Streams written into two repositories at once: each gets the same files, plain `restic`
/// reads them, and Stowage reads them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_land_in_every_repository_and_restic_dumps_them() {
    use crate::pipeline::Files;
    let (one, two) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let targets = vec![local(one.path()).await, local(two.path()).await];
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let small = b"CREATE TABLE t (i int);\n".to_vec();
    let (big2, small2) = (big.clone(), small.clone());
    let paths = vec![
        PathBuf::from("/mysql/a%2Fb.sql"),
        PathBuf::from("/mysql/shop.sql"),
    ];
    let (produced, snapshots) = streams::backup_streams(
        targets.clone(),
        paths.clone(),
        move |out| {
            out.next_file()?;
            for piece in big2.chunks(100_000) {
                std::io::Write::write_all(out, piece)?;
            }
            out.next_file()?;
            std::io::Write::write_all(out, &small2)?;
            Ok(7)
        },
        &labels(1),
    )
    .await;
    assert_eq!(produced.expect("produced"), 7);
    for (at, (dir, snap)) in targets
        .iter()
        .zip([one.path(), two.path()].into_iter().zip(snapshots))
    {
        let snap = snap.expect("a snapshot in each repository");
        assert_eq!((snap.files, snap.files_new), (2, 2));
        let repo = dir.join("restic");
        let dumped = Command::new("restic")
            .args([
                "--repo",
                &repo.to_string_lossy(),
                "--no-cache",
                "--password-file",
            ])
            .arg({
                let pw = dir.join("pw");
                std::fs::write(&pw, PASSWORD).expect("pw");
                pw
            })
            .args(["dump", &snap.snapshot_id, "/mysql/a%2Fb.sql"])
            .output()
            .expect("restic is not installed: scripts/install.sh installs Debian's restic");
        assert!(
            dumped.status.success(),
            "{}",
            String::from_utf8_lossy(&dumped.stderr)
        );
        assert!(
            dumped.stdout == big,
            "restic dumps the stream byte for byte"
        );
        restic(&repo, &["check", "--read-data"]);
        let (out, lengths) = read_files(
            at,
            &snap.snapshot_id,
            paths.clone(),
            Vec::new(),
            Arc::default(),
        )
        .await
        .expect("read back");
        assert_eq!(lengths, vec![big.len() as u64, small.len() as u64]);
        assert!(out == [big.as_slice(), small.as_slice()].concat());
    }
}

/// A producer that fails halfway (a dump program that exits non-zero) leaves no snapshot
/// behind: the file it cut short is never stored as whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_stream_leaves_no_snapshot() {
    use crate::pipeline::Files;
    let dir = tempfile::tempdir().expect("tmp");
    let at = local(dir.path()).await;
    let (produced, snapshots) = streams::backup_streams(
        vec![at.clone()],
        vec![
            PathBuf::from("/postgresql/a.sql"),
            PathBuf::from("/postgresql/b.sql"),
        ],
        |out| {
            out.next_file()?;
            std::io::Write::write_all(out, &vec![1u8; 2_000_000])?;
            out.next_file()?;
            std::io::Write::write_all(out, b"half a dump")?;
            Err::<(), _>(std::io::Error::other("pg_dump failed (exit status: 1)"))
        },
        &labels(2),
    )
    .await;
    let why = produced.expect_err("the producer failed").to_string();
    assert!(why.contains("pg_dump failed"), "{why}");
    let why = snapshots
        .into_iter()
        .next()
        .expect("one outcome")
        .expect_err("no snapshot")
        .to_string();
    assert!(why.contains("/postgresql/b.sql"), "{why}");
    assert!(why.contains("discarded"), "{why}");
    let listed = restic(&dir.path().join("restic"), &["snapshots", "--json"]);
    assert_eq!(listed.trim(), "[]", "no snapshot is left: {listed}");
}

/// A file the walk finds but cannot read fails the snapshot, as it fails an archive run,
/// instead of being left out quietly. `/proc/self/mem` fails every read at offset 0 (EIO),
/// whoever the tests run as.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_file_fails_the_snapshot() {
    let (repo_dir, src) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let at = local(repo_dir.path()).await;
    std::fs::write(src.path().join("fine.txt"), b"fine").expect("write");
    assert!(
        std::fs::read("/proc/self/mem").is_err(),
        "/proc/self/mem reads"
    );
    let outcome = backup_files(
        &at,
        vec![src.path().to_path_buf(), PathBuf::from("/proc/self/mem")],
        Excludes::new(&[]).expect("excludes"),
        &labels(3),
        Arc::default(),
    )
    .await;
    let why = outcome.expect_err("the snapshot fails").to_string();
    assert!(why.contains("/proc/self/mem"), "{why}");
    assert!(why.contains("discarded"), "{why}");
    let listed = restic(&repo_dir.path().join("restic"), &["snapshots", "--json"]);
    assert_eq!(listed.trim(), "[]", "no snapshot is left: {listed}");
}

/// Stowage's locks and restic's keep each other out: restic's `prune` refuses while Stowage
/// holds a lock, and Stowage's prune refuses while a `restic backup` holds one. A prune then
/// removes what only forgotten snapshots used, and restic finds the repository sound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_keep_restic_and_stowage_apart_and_prune_frees_forgotten_data() {
    let (repo_dir, src) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let at = local(repo_dir.path()).await;
    let repo = repo_dir.path().join("restic");
    let big = src.path().join("big.bin");
    let mut ids = Vec::new();
    for round in 0..3u8 {
        // Each round a different incompressible file: forgetting a snapshot frees its data.
        std::fs::write(&big, noise(u32::from(round), 2_000_000)).expect("write");
        let snap = snapshot_of(&at, src.path(), 10 + i64::from(round)).await;
        ids.push(snap.snapshot_id);
    }

    // Stowage holds a lock: restic's exclusive prune is refused, its shared backup is not.
    let be = backend(&at);
    let held = {
        let be = Arc::clone(&be);
        let at = at.clone();
        tokio::task::spawn_blocking(move || {
            let repo = open_existing(&at, unopened_hidden(Arc::clone(&be))?)?;
            lock::acquire(&be, &repo.key(), false)
        })
        .await
        .expect("join")
        .expect("a shared lock")
    };
    assert_eq!(restic(&repo, &["list", "locks"]).lines().count(), 1);
    let mut pw = tempfile::NamedTempFile::new().expect("pw");
    std::io::Write::write_all(&mut pw, PASSWORD.as_bytes()).expect("pw");
    let refused = Command::new("restic")
        .args([
            "--repo",
            &repo.to_string_lossy(),
            "--no-cache",
            "--password-file",
        ])
        .arg(pw.path())
        .arg("prune")
        .output()
        .expect("restic");
    assert!(
        !refused.status.success(),
        "restic pruned under Stowage's lock"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("locked"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    drop(held);
    assert_eq!(
        restic(&repo, &["list", "locks"]).trim(),
        "",
        "the lock is gone"
    );

    // restic holds a lock (a backup reading stdin): Stowage's prune is refused.
    let mut reading = Command::new("restic")
        .args([
            "--repo",
            &repo.to_string_lossy(),
            "--no-cache",
            "--password-file",
        ])
        .arg(pw.path())
        .args(["backup", "--stdin", "--stdin-filename", "held.txt"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("restic");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while restic(&repo, &["list", "locks", "--no-lock"])
        .trim()
        .is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "restic took no lock");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let why = prune(&at)
        .await
        .expect_err("refused under restic's lock")
        .to_string();
    assert!(why.contains("locked"), "{why}");
    let mut stdin = reading.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, b"held while Stowage was refused\n").expect("write");
    drop(stdin);
    let done = reading.wait_with_output().expect("restic");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    // Forget the first two of Stowage's snapshots, then prune: their data goes.
    forget(&at, &ids[..2]).await.expect("forget");
    let pruned = prune(&at).await.expect("prune");
    assert!(
        pruned.bytes_after + 3_000_000 < pruned.bytes_before,
        "{pruned:?}"
    );
    assert_eq!(pruned.snapshots, 2, "the third snapshot and restic's own");
    restic(&repo, &["check", "--read-data"]);
    let restored = tempfile::tempdir().expect("tmp");
    restic(
        &repo,
        &[
            "restore",
            &ids[2],
            "--target",
            &restored.path().to_string_lossy(),
        ],
    );
    assert_eq!(
        std::fs::read(restored.path().join(big.strip_prefix("/").expect("abs"))).expect("read"),
        std::fs::read(&big).expect("read")
    );
    assert_eq!(
        restic(&repo, &["list", "locks"]).trim(),
        "",
        "no lock is left behind"
    );
}

/// Every pack file of a local repository.
fn pack_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(repo.join("data"))
        .expect("data")
        .flatten()
    {
        for f in std::fs::read_dir(dir.path()).expect("dir").flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

/// A damaged pack: the check reports it and names exactly the snapshots that need it; a check
/// of a snapshot that does not need it passes; and restic agrees that the data is damaged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_pack_is_found_and_the_snapshots_needing_it_are_named() {
    let (repo_dir, src) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let at = local(repo_dir.path()).await;
    let repo = repo_dir.path().join("restic");
    let mut ids = Vec::new();
    let mut packs_after = Vec::new();
    for round in 0..2u32 {
        let data = noise(100 + round, 3_000_000);
        std::fs::write(src.path().join(format!("part-{round}.bin")), data).expect("write");
        let snap = snapshot_of(&at, src.path(), 20 + i64::from(round)).await;
        ids.push(snap.snapshot_id);
        packs_after.push(pack_files(&repo));
    }
    let clean = check(&at, None, 100).await.expect("check");
    assert!(clean.errors.is_empty(), "{clean:?}");
    assert_eq!(clean.snapshots, 2);

    // Damage the largest pack the second run added (part-1.bin's data): same size, other bytes.
    let victim = packs_after[1]
        .iter()
        .filter(|p| !packs_after[0].contains(p))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a new pack")
        .clone();
    let mut bytes = std::fs::read(&victim).expect("read");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&victim, bytes).expect("write");
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();

    // The structure alone looks whole; reading the data finds the damage.
    let structure = check(&at, None, 0).await.expect("check");
    assert!(structure.errors.is_empty(), "{structure:?}");
    let found = check(&at, None, 100).await.expect("check");
    assert!(!found.errors.is_empty(), "{found:?}");
    assert_eq!(
        found.damaged_packs,
        std::slice::from_ref(&name),
        "{found:?}"
    );
    assert_eq!(
        found.affected,
        [ids[1].clone()],
        "only the second snapshot needs it"
    );
    let first = check(&at, Some(&ids[0]), 100).await.expect("check");
    assert!(
        first.errors.is_empty(),
        "the first snapshot is whole: {first:?}"
    );
    let second = check(&at, Some(&ids[1]), 100).await.expect("check");
    assert_eq!(second.affected, [ids[1].clone()], "{second:?}");

    // A restore that needs the pack fails and names it; one that does not, succeeds.
    let staged = tempfile::tempdir().expect("tmp");
    let refused = restore(
        &at,
        &ids[1],
        Vec::new(),
        staged.path().join("second"),
        Arc::default(),
    )
    .await
    .expect_err("a damaged pack fails the restore");
    assert!(
        refused.to_string().contains(&*name) && refused.to_string().contains("damaged"),
        "{refused}"
    );
    restore(
        &at,
        &ids[0],
        Vec::new(),
        staged.path().join("first"),
        Arc::default(),
    )
    .await
    .expect("the first snapshot restores");

    let mut pw = tempfile::NamedTempFile::new().expect("pw");
    std::io::Write::write_all(&mut pw, PASSWORD.as_bytes()).expect("pw");
    let by_restic = Command::new("restic")
        .args([
            "--repo",
            &repo.to_string_lossy(),
            "--no-cache",
            "--password-file",
        ])
        .arg(pw.path())
        .args(["check", "--read-data"])
        .output()
        .expect("restic");
    assert!(!by_restic.status.success(), "restic finds the damage too");
    assert!(
        String::from_utf8_lossy(&by_restic.stdout).contains(&name[..8])
            || String::from_utf8_lossy(&by_restic.stderr).contains(&name[..8])
    );
}

/// The pack-ordered restore writes every blob wherever the files hold it: a blob shared by two
/// files and repeated within one, files spanning many packs, many small files, an empty file;
/// each file gets the snapshot's modification time; and `restic` restores the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_writes_shared_and_repeated_blobs_and_keeps_times() {
    let work = tempfile::tempdir().expect("tmp");
    let (src, target) = (work.path().join("src"), work.path().join("target"));
    std::fs::create_dir_all(src.join("small")).expect("mkdir");
    let big = noise(7, 12_000_000);
    std::fs::write(src.join("big.bin"), &big).expect("write");
    std::fs::write(src.join("same.bin"), &big).expect("write");
    std::fs::write(
        src.join("twice.bin"),
        [&big[..3_000_000], &big[..3_000_000]].concat(),
    )
    .expect("write");
    std::fs::write(src.join("empty"), b"").expect("write");
    for i in 0..300u32 {
        let len = 100 + (i as usize * 37) % 5000;
        std::fs::write(src.join(format!("small/{i}.txt")), noise(1000 + i, len)).expect("write");
    }
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    for name in ["big.bin", "empty", "small/7.txt"] {
        std::fs::File::options()
            .write(true)
            .open(src.join(name))
            .and_then(|f| f.set_modified(old))
            .expect("set time");
    }
    let at = local(&target).await;
    let snap = snapshot_of(&at, &src, 40).await;
    assert!(
        pack_files(&target.join("restic")).len() >= 2,
        "several packs"
    );

    let staging = work.path().join("staged");
    let counters = Arc::new(Counters::default());
    let restored = restore(
        &at,
        &snap.snapshot_id,
        Vec::new(),
        staging.clone(),
        Arc::clone(&counters),
    )
    .await
    .expect("restore");
    assert_eq!(restored.files, 304);
    let ours = staging.join(src.strip_prefix("/").expect("abs"));
    assert_eq!(read_all(&ours), read_all(&src));
    for name in ["big.bin", "empty", "small/7.txt"] {
        let mtime = std::fs::metadata(ours.join(name))
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(mtime, old, "{name}");
    }
    // Every file byte was written once per place it appears: 12 MB twice, 6 MB, the small files.
    let small: u64 = (0..300u64).map(|i| 100 + (i * 37) % 5000).sum();
    assert_eq!(
        counters
            .source_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        30_000_000 + small
    );

    let by_restic = work.path().join("by-restic");
    restic(
        &target.join("restic"),
        &[
            "restore",
            &snap.snapshot_id,
            "--target",
            &by_restic.display().to_string(),
        ],
    );
    assert_eq!(
        read_all(&by_restic.join(src.strip_prefix("/").expect("abs"))),
        read_all(&src)
    );
}
