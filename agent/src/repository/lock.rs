//! restic's lock files, which rustic_core neither writes nor reads: while Stowage writes to a
//! repository (backup, forget) or reads from it (restore) it holds a shared lock, and while it
//! prunes an exclusive one, so that a user's own `restic prune` waits for Stowage and a Stowage
//! prune never removes data a `restic backup` is writing. (Between Stowage's own nodes the control
//! plane already keeps prunes and writers apart; the locks are for everyone else.)
//!
//! The format is restic's: `locks/<id>` holds the JSON
//! `{"time", "exclusive", "hostname", "username", "pid"}` encrypted with the repository's master
//! key (AES-256-CTR + Poly1305-AES, the nonce first), `<id>` being the SHA-256 of the encrypted
//! bytes. restic counts a lock older than 30 minutes as stale, so a held lock is written anew
//! every 5 minutes. A stale lock (older than that, or of a process of this host that is gone,
//! e.g. a killed agent's) is removed by the next Stowage operation on the repository, as
//! `restic unlock` removes it. No library writes restic locks from Rust (rustic_core chose lock-free
//! two-phase deletes instead), hence this module; the cipher is the `aes256ctr_poly1305aes`
//! crate rustic_core itself uses.

use super::RepoError;
use super::backend::StoreBackend;
use aes256ctr_poly1305aes::Aes256CtrPoly1305Aes;
use aes256ctr_poly1305aes::aead::Aead;
use rustic_core::repofile::MasterKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// After this long without being renewed, restic (and Stowage) take a lock for abandoned.
const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often a held lock is written anew.
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockFile {
    time: String,
    exclusive: bool,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    pid: i64,
}

/// The AEAD of a master key: its 64 bytes are the encryption key, then Poly1305's k and r.
pub(super) fn cipher(key: &MasterKey) -> Result<Aes256CtrPoly1305Aes, RepoError> {
    let parts = [&key.encrypt[..], &key.mac.k[..], &key.mac.r[..]].concat();
    let bytes: [u8; 64] = parts.try_into().map_err(|_| {
        RepoError::Rustic("the repository's master key has the wrong length".into())
    })?;
    Ok(Aes256CtrPoly1305Aes::new(&bytes.into()))
}

/// restic's encryption of `plain` under `cipher`: a random nonce, then the sealed bytes.
pub(super) fn seal(cipher: &Aes256CtrPoly1305Aes, plain: &[u8]) -> Result<Vec<u8>, RepoError> {
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce)
        .map_err(|e| RepoError::Rustic(format!("no randomness: {e}")))?;
    let sealed = cipher
        .encrypt((&nonce).into(), plain)
        .map_err(|_| RepoError::Rustic("encrypting failed".into()))?;
    Ok([nonce.as_slice(), &sealed].concat())
}

fn encrypt(key: &MasterKey, plain: &[u8]) -> Result<Vec<u8>, RepoError> {
    seal(&cipher(key)?, plain)
}

fn decrypt(key: &MasterKey, data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 32 {
        return None;
    }
    let plain = cipher(key)
        .ok()?
        .decrypt(data[..16].into(), &data[16..])
        .ok()?;
    // Repository version 2 may store it compressed: a version byte 2, then zstd.
    match plain.first() {
        Some(2) => zstd::decode_all(&plain[1..]).ok(),
        _ => Some(plain),
    }
}

/// Whether process `pid` of this host still runs (a zombie, killed but not yet reaped, does not).
fn running(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses and may hold anything.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// What a file of `locks/` is.
enum Found {
    Live(LockFile),
    /// Older than restic's stale timeout, or held by a process of this host that is gone.
    Stale,
    /// Not a lock this key opens (half written, say): neither honoured nor removed.
    Unreadable,
}

fn found(be: &StoreBackend, key: &MasterKey, path: &str) -> Found {
    let Some(lock) = be
        .read_raw(path)
        .ok()
        .and_then(|data| decrypt(key, &data))
        .and_then(|plain| serde_json::from_slice::<LockFile>(&plain).ok())
    else {
        return Found::Unreadable;
    };
    let Ok(time) = chrono::DateTime::parse_from_rfc3339(&lock.time) else {
        return Found::Unreadable;
    };
    let age = chrono::Utc::now().signed_duration_since(time);
    let stale = age.to_std().is_ok_and(|age| age > STALE_AFTER)
        || (lock.hostname == crate::system::hostname() && lock.pid > 0 && !running(lock.pid));
    if stale {
        Found::Stale
    } else {
        Found::Live(lock)
    }
}

/// A held lock: renewed in the background, removed when dropped.
#[derive(Debug)]
pub struct Held {
    stop: Option<Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
    }
}

/// Writes a lock into the repository and returns its path.
fn write_lock(be: &StoreBackend, key: &MasterKey, exclusive: bool) -> Result<String, RepoError> {
    let lock = LockFile {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        exclusive,
        hostname: crate::system::hostname(),
        username: "stowage".to_owned(),
        pid: i64::from(std::process::id()),
    };
    let plain = serde_json::to_vec(&lock).map_err(|e| RepoError::Rustic(e.to_string()))?;
    let sealed = encrypt(key, &plain)?;
    let id = hex::encode(Sha256::digest(&sealed));
    let path = be.raw_path(&format!("locks/{id}"));
    be.write_raw(&path, sealed)?;
    Ok(path)
}

/// The first live lock other than `own` that conflicts with taking one (`exclusive` or not).
/// Stale locks (a killed process's, say) are removed on the way, as `restic unlock` would.
fn conflicting(
    be: &StoreBackend,
    key: &MasterKey,
    exclusive: bool,
    own: Option<&str>,
) -> Result<Option<LockFile>, RepoError> {
    for path in be.list_raw("locks")? {
        if Some(path.as_str()) == own {
            continue;
        }
        match found(be, key, &path) {
            Found::Live(lock) if exclusive || lock.exclusive => return Ok(Some(lock)),
            Found::Stale => {
                let _ = be.delete_raw(&path);
            }
            Found::Live(_) | Found::Unreadable => {}
        }
    }
    Ok(None)
}

fn refused(lock: &LockFile) -> RepoError {
    RepoError::Refused(format!(
        "the repository is locked {}by {}@{} (pid {}) since {}; nothing was changed",
        if lock.exclusive { "exclusively " } else { "" },
        lock.username,
        lock.hostname,
        lock.pid,
        lock.time
    ))
}

/// Takes a lock (shared, or `exclusive`) on the repository, as restic would: refused when a live
/// lock conflicts, checked again after writing ours (two lockers at once both back off rather
/// than both proceed).
pub fn acquire(
    be: &Arc<StoreBackend>,
    key: &MasterKey,
    exclusive: bool,
) -> Result<Held, RepoError> {
    acquire_renewing(be, key, exclusive, REFRESH_EVERY)
}

/// [`acquire`], renewing the lock every `every`.
fn acquire_renewing(
    be: &Arc<StoreBackend>,
    key: &MasterKey,
    exclusive: bool,
    every: Duration,
) -> Result<Held, RepoError> {
    if let Some(lock) = conflicting(be, key, exclusive, None)? {
        return Err(refused(&lock));
    }
    let path = write_lock(be, key, exclusive)?;
    if let Some(lock) = conflicting(be, key, exclusive, Some(&path))? {
        let _ = be.delete_raw(&path);
        return Err(refused(&lock));
    }
    let (stop, stopped) = channel::<()>();
    let (be, key) = (Arc::clone(be), key.clone());
    let renewer = std::thread::spawn(move || {
        let mut current = path;
        // Until the holder drops the sender (or sends): renew at every timeout.
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
            // restic renews the same way: a new lock first, then the old one goes.
            if let Ok(renewed) = write_lock(&be, &key, exclusive) {
                let _ = be.delete_raw(&current);
                current = renewed;
            }
        }
        let _ = be.delete_raw(&current);
    });
    Ok(Held {
        stop: Some(stop),
        renewer: Some(renewer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_process_not_yet_reaped_does_not_run() {
        assert!(running(i64::from(std::process::id())));
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = i64::from(child.id());
        // Until it is reaped, an exited child is a zombie: /proc still lists it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the child never exited"
            );
            std::thread::yield_now();
        }
        assert!(!running(pid), "a zombie counts as gone");
        child.wait().expect("reaped");
        assert!(!running(pid));
    }

    /// A held lock is written anew on time (a new file, then the old one goes), stays a live
    /// lock of this process, and is gone once released.
    #[test]
    fn a_held_lock_is_renewed_and_removed_on_release() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tmp");
        let config = stowage_shared::storage::StorageConfig::LocalDisk(
            stowage_shared::storage::LocalDiskConfig {
                base_path: dir.path().display().to_string(),
            },
        );
        let store = runtime
            .block_on(crate::storage::Store::open(
                &config,
                &crate::storage::Tools::default(),
            ))
            .expect("store");
        let be = Arc::new(StoreBackend::new(
            Arc::new(store),
            "restic",
            runtime.handle().clone(),
        ));
        let key = MasterKey::new();
        let live = |path: &str| match found(&be, &key, path) {
            Found::Live(lock) => Some(lock),
            _ => None,
        };
        let held = acquire_renewing(&be, &key, false, Duration::from_millis(50)).expect("lock");
        let first = be.list_raw("locks").expect("list");
        assert_eq!(first.len(), 1);
        let taken = live(&first[0]).expect("a live lock");
        assert!(!taken.exclusive && taken.pid == i64::from(std::process::id()));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let renewed = loop {
            let now = be.list_raw("locks").expect("list");
            if now.len() == 1 && now[0] != first[0] {
                break now[0].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the lock was never renewed: {now:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let lock = live(&renewed).expect("the renewed lock is live");
        assert!(lock.time > taken.time, "{} after {}", lock.time, taken.time);
        drop(held);
        assert!(be.list_raw("locks").expect("list").is_empty());
    }

    #[test]
    fn a_lock_round_trips_through_the_cipher_and_a_wrong_key_opens_nothing() {
        let key = MasterKey::new();
        let sealed = encrypt(&key, br#"{"time":"x","exclusive":true}"#).expect("sealed");
        assert_eq!(
            decrypt(&key, &sealed).expect("opens"),
            br#"{"time":"x","exclusive":true}"#
        );
        assert!(decrypt(&MasterKey::new(), &sealed).is_none());
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(decrypt(&key, &tampered).is_none());
    }
}
