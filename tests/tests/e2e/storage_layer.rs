//! The agent's storage layer against real servers (`rclone serve` S3, WebDAV, FTP and SFTP, a local
//! directory, and an rclone remote): objects larger than one upload piece go in as streams and come
//! back byte for byte; listing, overwrite and delete behave the same on every backend; a write whose
//! source fails leaves nothing behind.

use super::ssh::Key;
use anyhow::{Context, Result, ensure};
use serde_json::json;
use sha2::{Digest, Sha256};
use stowage_agent::storage::{Store, Tools, WRITE_CHUNK};
use stowage_shared::storage::{StorageConfig, StorageType};
use stowage_tests::{Azurite, RcloneServer, rclone_binary};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes that differ from position to position, so a dropped or repeated piece shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 13)) as u8)
        .collect()
}

/// A source that yields `good` bytes and then fails, like a backup whose input broke.
struct Broken {
    good: usize,
}

impl AsyncRead for Broken {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.good == 0 {
            return std::task::Poll::Ready(Err(std::io::Error::other("the source broke")));
        }
        let n = self.good.min(buf.remaining());
        buf.put_slice(&vec![7; n]);
        self.good -= n;
        std::task::Poll::Ready(Ok(()))
    }
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.to_string_lossy().into_owned());
            }
        }
    }
    out
}

async fn round_trip(name: &str, store: &Store, served: Option<&std::path::Path>) -> Result<()> {
    let big = pattern(2 * WRITE_CHUNK + 54_321);
    let path = "2026/11/28/task-1/backup.tar.zst";
    let mut source = big.as_slice();
    let written = store
        .write_from(path, &mut source)
        .await
        .with_context(|| format!("{name}: streamed write"))?;
    ensure!(written == big.len() as u64, "{name}: wrote {written} bytes");
    ensure!(
        store.stat(path).await? == big.len() as u64,
        "{name}: stat size"
    );
    let mut back = Vec::new();
    store
        .reader(path)
        .await
        .with_context(|| format!("{name}: open reader"))?
        .read_to_end(&mut back)
        .await
        .with_context(|| format!("{name}: streamed read"))?;
    ensure!(
        Sha256::digest(&back) == Sha256::digest(&big),
        "{name}: read back {} bytes that differ from the {} written",
        back.len(),
        big.len()
    );
    store
        .write("2026/11/28/task-1/manifest.json", b"{}")
        .await?;
    let mut listed = store.list("2026/11/28/task-1/").await?;
    listed.sort();
    ensure!(
        listed
            == [
                "2026/11/28/task-1/backup.tar.zst",
                "2026/11/28/task-1/manifest.json"
            ],
        "{name}: listing {listed:?}"
    );
    // Overwriting replaces the whole object.
    store.write(path, b"smaller").await?;
    ensure!(store.read(path).await? == b"smaller", "{name}: overwrite");
    // A source that fails midway leaves no object and no partial upload behind.
    let broken_path = "2026/11/28/task-1/broken.tar.zst";
    let err = store
        .write_from(
            broken_path,
            &mut Broken {
                good: WRITE_CHUNK + 99,
            },
        )
        .await
        .err()
        .with_context(|| format!("{name}: a failing source must fail the write"))?;
    ensure!(
        err.to_string().contains("the source broke"),
        "{name}: the error names the source: {err}"
    );
    ensure!(
        store.stat(broken_path).await.is_err(),
        "{name}: nothing is left at the path of a failed write"
    );
    for path in [path, "2026/11/28/task-1/manifest.json"] {
        store.delete(path).await?;
        store
            .delete(path)
            .await
            .with_context(|| format!("{name}: deleting twice"))?;
        ensure!(store.stat(path).await.is_err(), "{name}: {path} deleted");
    }
    ensure!(
        store.list("2026/11/28/task-1/").await?.is_empty(),
        "{name}: empty after deletes"
    );
    let Some(served) = served else {
        return Ok(());
    };
    let left: Vec<String> = files_under(served)
        .into_iter()
        .filter(|f| !f.ends_with("rclone.log"))
        .collect();
    ensure!(
        left.is_empty(),
        "{name}: files left on the server: {left:?}"
    );
    Ok(())
}

async fn open(kind: StorageType, config: serde_json::Value, tools: &Tools) -> Result<Store> {
    let config = StorageConfig::parse(kind, &config)?;
    Store::open(&config, tools)
        .await
        .with_context(|| format!("opening {}", kind.as_str()))
}

/// A restic repository through the storage layer (rustic_core over `Store`): several packs
/// uploaded in parallel, listed with sizes and read back by ranges; a second backup adds no
/// data; Stowage's restore gives the files back; plain restic checks every byte on the server's
/// own directory.
async fn repository_round_trip(name: &str, store: &Store, repo: &std::path::Path) -> Result<()> {
    use stowage_agent::pipeline::Excludes;
    use stowage_agent::repository::{self, Labels, Location};
    let src = tempfile::tempdir()?;
    // Incompressible and larger than two packs.
    let mut noise = vec![0u8; 20 << 20];
    let mut x = 0x2545_f491_u32;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(src.path().join("big.bin"), &noise)?;
    std::fs::write(src.path().join("small.txt"), "small")?;
    let at = Location {
        store: std::sync::Arc::new(store.clone()),
        root: "restic".to_owned(),
        password: stowage_shared::SecretString::new("layer-repo-pw"),
    };
    let labels = |record_id| Labels {
        host: "layer".to_owned(),
        task_id: 1,
        record_id,
    };
    let first = repository::backup_files(
        &at,
        vec![src.path().to_path_buf()],
        Excludes::new(&[])?,
        &labels(1),
        std::sync::Arc::default(),
    )
    .await
    .with_context(|| format!("{name}: first repository backup"))?;
    ensure!(first.bytes_added > 20 << 20, "{name}: {first:?}");
    let second = repository::backup_files(
        &at,
        vec![src.path().to_path_buf()],
        Excludes::new(&[])?,
        &labels(2),
        std::sync::Arc::default(),
    )
    .await
    .with_context(|| format!("{name}: second repository backup"))?;
    ensure!(
        second.files_unmodified == 2 && second.bytes_added < 10_000,
        "{name}: {second:?}"
    );
    let out = tempfile::tempdir()?;
    let staged = out.path().join("staged");
    let restored = repository::restore(
        &at,
        &second.snapshot_id,
        Vec::new(),
        staged.clone(),
        std::sync::Arc::default(),
    )
    .await
    .with_context(|| format!("{name}: restore"))?;
    ensure!(restored.files == 2, "{name}: {restored:?}");
    let back = staged.join(src.path().strip_prefix("/")?);
    ensure!(
        std::fs::read(back.join("big.bin"))? == noise,
        "{name}: big.bin differs"
    );
    // One file read blob by blob (what a download or a database restore does): on FTP and
    // rclone remotes its packs are read whole, once each.
    let (read, lengths) = repository::read_files(
        &at,
        &second.snapshot_id,
        vec![src.path().join("big.bin")],
        Vec::new(),
        std::sync::Arc::default(),
    )
    .await
    .with_context(|| format!("{name}: reading big.bin"))?;
    ensure!(
        read == noise && lengths == [noise.len() as u64],
        "{name}: big.bin read back differs"
    );
    let pw = out.path().join("pw");
    std::fs::write(&pw, "layer-repo-pw")?;
    let check = std::process::Command::new("restic")
        .arg("--repo")
        .arg(repo)
        .arg("--password-file")
        .arg(&pw)
        .args(["--no-cache", "check", "--read-data"])
        .output()
        .context("restic is not installed (scripts/install.sh installs it)")?;
    ensure!(
        check.status.success(),
        "{name}: restic check: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    repository::forget(&at, &[first.snapshot_id, second.snapshot_id]).await?;
    Ok(())
}

#[tokio::test]
async fn every_backend_streams_round_trips_and_cleans_up() -> Result<()> {
    let tools = Tools {
        rclone: Some(rclone_binary()?),
        ..Tools::default()
    };
    let local = tempfile::tempdir()?;
    let s3 =
        RcloneServer::start("s3", &[("RCLONE_AUTH_KEY", "\"layer-key,layer-secret\"")]).await?;
    std::fs::create_dir(s3.data().join("bucket"))?;
    let dav =
        RcloneServer::start("webdav", &[("RCLONE_USER", "u"), ("RCLONE_PASS", "dav-pw")]).await?;
    let ftp =
        RcloneServer::start("ftp", &[("RCLONE_USER", "u"), ("RCLONE_PASS", "ftp-pw")]).await?;

    let keys = tempfile::tempdir()?;
    let host = Key::new(1);
    let client = Key::new(2);
    let authorized = keys.path().join("authorized_keys");
    std::fs::write(&authorized, format!("{}\n", client.public_line()?))?;
    let host_file = host.write_private(keys.path(), "host_ed25519")?;
    let sftp = RcloneServer::start(
        "sftp",
        &[
            ("RCLONE_USER", "u"),
            ("RCLONE_PASS", "sftp-pw"),
            ("RCLONE_KEY", &host_file.to_string_lossy()),
            ("RCLONE_AUTHORIZED_KEYS", &authorized.to_string_lossy()),
        ],
    )
    .await?;

    let cases = [
        (
            "local_disk",
            open(StorageType::LocalDisk, json!({"basePath": local.path()}), &tools).await?,
            local.path().to_path_buf(),
            "restic",
        ),
        (
            "s3 (multipart)",
            open(
                StorageType::S3,
                json!({"endpoint": format!("http://127.0.0.1:{}", s3.port), "bucket": "bucket",
                       "accessKeyId": "layer-key", "secretAccessKey": "layer-secret",
                       "forcePathStyle": true, "prefix": "p"}),
                &tools,
            )
            .await?,
            s3.data(),
            "bucket/p/restic",
        ),
        (
            "webdav",
            open(
                StorageType::Webdav,
                json!({"endpoint": format!("http://127.0.0.1:{}", dav.port), "username": "u",
                       "password": "dav-pw", "basePath": "base"}),
                &tools,
            )
            .await?,
            dav.data(),
            "base/restic",
        ),
        (
            "ftp",
            open(
                StorageType::Ftp,
                json!({"host": "127.0.0.1", "port": ftp.port, "username": "u", "password": "ftp-pw",
                       "basePath": "base"}),
                &tools,
            )
            .await?,
            ftp.data(),
            "base/restic",
        ),
        (
            "sftp (password, host key pinned)",
            open(
                StorageType::Sftp,
                json!({"host": "127.0.0.1", "port": sftp.port, "username": "u", "password": "sftp-pw",
                       "hostKey": host.public_line()?, "basePath": "base"}),
                &tools,
            )
            .await?,
            sftp.data(),
            "base/restic",
        ),
        (
            "sftp (private key, fingerprint pinned)",
            open(
                StorageType::Sftp,
                json!({"host": "127.0.0.1", "port": sftp.port, "username": "u",
                       "privateKey": client.private_pem()?, "hostKey": host.fingerprint()}),
                &tools,
            )
            .await?,
            sftp.data(),
            "restic",
        ),
        (
            "rclone (sftp backend)",
            open(
                StorageType::Rclone,
                json!({"backend": "sftp", "root": "via-rclone", "options": {
                    "host": "127.0.0.1", "port": sftp.port.to_string(), "user": "u", "pass": "sftp-pw"}}),
                &tools,
            )
            .await?,
            sftp.data(),
            "via-rclone/restic",
        ),
    ];
    for (name, store, served, _) in &cases {
        round_trip(name, store, Some(served)).await?;
    }
    // After every plain round trip, which checks that nothing was left on its server.
    for (name, store, served, repo) in &cases {
        repository_round_trip(name, store, &served.join(repo)).await?;
    }
    // Azure Blob against Azurite, whose directory holds its own database, so only the API is asked.
    let azurite = Azurite::start("backups").await?;
    let azure = |key: &str| {
        json!({"account": Azurite::ACCOUNT, "accountKey": key, "container": "backups",
               "endpoint": azurite.endpoint(), "prefix": "stowage"})
    };
    let store = open(StorageType::AzureBlob, azure(Azurite::KEY), &tools).await?;
    round_trip("azure_blob (block blobs)", &store, None).await?;
    let usage = store.usage().await?;
    assert_eq!((usage.objects, usage.total_bytes), (0, 0));
    let wrong = open(StorageType::AzureBlob, azure("d3Jvbmcta2V5"), &tools).await?;
    let err = wrong
        .write("x", b"x")
        .await
        .err()
        .context("a wrong account key is refused")?;
    ensure!(
        err.to_string().contains("403") || err.to_string().contains("Authorization"),
        "the refusal says why: {err}"
    );
    Ok(())
}

#[tokio::test]
async fn sftp_refuses_a_wrong_host_key_and_wrong_credentials() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let host = Key::new(3);
    let impostor = Key::new(4);
    let host_file = host.write_private(keys.path(), "host_ed25519")?;
    let sftp = RcloneServer::start(
        "sftp",
        &[
            ("RCLONE_USER", "u"),
            ("RCLONE_PASS", "right-pw"),
            ("RCLONE_KEY", &host_file.to_string_lossy()),
        ],
    )
    .await?;
    let attempt = |host_key: String, password: &str| {
        json!({"host": "127.0.0.1", "port": sftp.port, "username": "u", "password": password,
               "hostKey": host_key})
    };
    let open_err = |config: serde_json::Value| async move {
        let config = StorageConfig::parse(StorageType::Sftp, &config)?;
        match Store::open(&config, &Tools::default()).await {
            Ok(_) => anyhow::bail!("the connection should have been refused"),
            Err(e) => Ok::<_, anyhow::Error>(e.to_string()),
        }
    };
    let mismatch = open_err(attempt(impostor.public_line()?, "right-pw")).await?;
    ensure!(
        mismatch.contains("host key mismatch") && mismatch.contains(&host.fingerprint()),
        "a wrong host key is refused and the presented key named: {mismatch}"
    );
    let refused = open_err(attempt(host.fingerprint(), "wrong-pw")).await?;
    ensure!(
        refused.contains("authentication failed") && !refused.contains("wrong-pw"),
        "a wrong password is refused without echoing it: {refused}"
    );
    Ok(())
}
