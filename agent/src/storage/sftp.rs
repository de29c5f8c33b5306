//! `sftp` targets over russh + russh-sftp, the pure-Rust SSH stack. OpenDAL's sftp service was not
//! used: it shells out to the system `ssh` binary and supports key authentication only, while
//! Stowage's targets take a password or a key and pin the server's host key themselves.
//!
//! Writes go to `<name>.partial` and are renamed into place once complete, so a reader never sees
//! half an object.

use super::StorageError;
use russh::client::{self, AuthResult, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{OpenFlags, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stowage_shared::api::{DiskUsage, MeasuredUsage, USAGE_MAX_OBJECTS};
use stowage_shared::storage::SftpConfig;
use tokio::io::{AsyncRead, AsyncWriteExt};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// What the server's host key must be.
#[derive(Debug, Clone)]
enum Expected {
    Key(Box<PublicKey>),
    /// `SHA256:…` as `ssh-keygen -l` prints it.
    Fingerprint(String),
    Anything,
}

impl Expected {
    fn parse(config: &SftpConfig) -> Result<Self, StorageError> {
        if config.insecure_skip_host_key_check && config.host_key.trim().is_empty() {
            return Ok(Expected::Anything);
        }
        let text = config.host_key.trim();
        if text.starts_with("SHA256:") {
            return Ok(Expected::Fingerprint(text.to_owned()));
        }
        // An OpenSSH public key line, optionally with the host names of a known_hosts line first.
        let from = text
            .find("ssh-")
            .or_else(|| text.find("ecdsa-"))
            .unwrap_or(0);
        PublicKey::from_openssh(&text[from..])
            .map(|k| Expected::Key(Box::new(k)))
            .map_err(|e| StorageError::Config(format!("hostKey is not a public key: {e}")))
    }
}

struct Checker {
    expected: Expected,
    /// The key the server presented, for the error message when it does not match.
    presented: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            // Host certificates would need a CA to check against, which targets do not configure.
            return Ok(matches!(self.expected, Expected::Anything));
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if let Ok(mut presented) = self.presented.lock() {
            *presented = Some(format!("{} {fingerprint}", key.algorithm()));
        }
        Ok(match &self.expected {
            Expected::Anything => true,
            Expected::Fingerprint(f) => *f == fingerprint,
            Expected::Key(k) => k.key_data() == key.key_data(),
        })
    }
}

pub struct SftpRemote {
    sftp: SftpSession,
    /// Keeps the SSH connection open for as long as the SFTP session lives.
    _ssh: Handle<Checker>,
    root: String,
}

impl std::fmt::Debug for SftpRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpRemote")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn ssh_error(e: russh::Error) -> StorageError {
    StorageError::Sftp(e.to_string())
}

fn sftp_error(e: SftpError) -> StorageError {
    StorageError::Sftp(e.to_string())
}

fn is_not_found(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

impl SftpRemote {
    pub async fn open(config: &SftpConfig) -> Result<Self, StorageError> {
        let presented = Arc::new(Mutex::new(None));
        let checker = Checker {
            expected: Expected::parse(config)?,
            presented: presented.clone(),
        };
        let ssh_config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(120)),
            keepalive_interval: Some(Duration::from_secs(30)),
            ..Default::default()
        });
        let address = (config.host.as_str(), config.port);
        let connected = tokio::time::timeout(
            CONNECT_TIMEOUT,
            client::connect(ssh_config, address, checker),
        )
        .await
        .map_err(|_| {
            StorageError::Sftp(format!(
                "no answer from {}:{} within {}s",
                config.host,
                config.port,
                CONNECT_TIMEOUT.as_secs()
            ))
        })?;
        let mut ssh = match connected {
            Ok(ssh) => ssh,
            Err(russh::Error::UnknownKey) => {
                let seen = presented
                    .lock()
                    .ok()
                    .and_then(|p| p.clone())
                    .unwrap_or_else(|| "an unreadable key".to_owned());
                return Err(StorageError::Sftp(format!(
                    "host key mismatch: the server presented {seen}, which is not the hostKey configured for this target"
                )));
            }
            Err(e) => return Err(ssh_error(e)),
        };
        authenticate(&mut ssh, config).await?;
        let channel = ssh.channel_open_session().await.map_err(ssh_error)?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(ssh_error)?;
        let sftp = SftpSession::new(channel.into_stream())
            .await
            .map_err(sftp_error)?;
        Ok(Self {
            sftp,
            _ssh: ssh,
            root: config.base_path.trim_end_matches('/').to_owned(),
        })
    }

    fn full(&self, path: &str) -> String {
        let path = path.trim_matches('/');
        match (self.root.is_empty(), path.is_empty()) {
            (true, true) => ".".to_owned(),
            (true, false) => path.to_owned(),
            (false, true) => self.root.clone(),
            (false, false) => format!("{}/{path}", self.root),
        }
    }

    /// `mkdir -p` for the directories above `full`.
    async fn make_parents(&self, full: &str) -> Result<(), StorageError> {
        let Some((parent, _)) = full.rsplit_once('/') else {
            return Ok(());
        };
        let mut dir = String::new();
        for part in parent.split('/') {
            if !dir.is_empty() || parent.starts_with('/') {
                dir.push('/');
            }
            dir.push_str(part);
            if part.is_empty() || part == "." {
                continue;
            }
            match self.sftp.metadata(dir.as_str()).await {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    return Err(StorageError::Sftp(format!(
                        "{dir} exists and is not a directory"
                    )));
                }
                Err(e) if is_not_found(&e) => self
                    .sftp
                    .create_dir(dir.as_str())
                    .await
                    .map_err(sftp_error)?,
                Err(e) => return Err(sftp_error(e)),
            }
        }
        Ok(())
    }

    pub async fn write_from(
        &self,
        path: &str,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64, StorageError> {
        let full = self.full(path);
        let partial = format!("{full}.partial");
        self.make_parents(&full).await?;
        let mut file = self
            .sftp
            .open_with_flags(
                partial.as_str(),
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
            )
            .await
            .map_err(sftp_error)?;
        let copied = async {
            let n = tokio::io::copy(reader, &mut file).await?;
            file.shutdown().await?;
            Ok::<_, std::io::Error>(n)
        }
        .await;
        let written = match copied {
            Ok(n) => n,
            Err(e) => {
                let _ = self.sftp.remove_file(partial.as_str()).await;
                return Err(StorageError::Sftp(format!("writing {path}: {e}")));
            }
        };
        // SFTP v3 rename fails when the target exists, so an overwrite removes the old one first.
        match self.sftp.remove_file(full.as_str()).await {
            Err(e) if !is_not_found(&e) => return Err(sftp_error(e)),
            _ => {}
        }
        self.sftp
            .rename(partial.as_str(), full.as_str())
            .await
            .map_err(sftp_error)?;
        Ok(written)
    }

    pub async fn reader(
        &self,
        path: &str,
    ) -> Result<Box<dyn AsyncRead + Send + Unpin>, StorageError> {
        let file = self.sftp.open(self.full(path)).await.map_err(sftp_error)?;
        Ok(Box::new(file))
    }

    pub async fn stat(&self, path: &str) -> Result<u64, StorageError> {
        let meta = self
            .sftp
            .metadata(self.full(path))
            .await
            .map_err(sftp_error)?;
        if !meta.is_regular() {
            return Err(StorageError::Sftp(format!("{path} is not a file")));
        }
        Ok(meta.len())
    }

    pub async fn list(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let prefix = dir.trim_matches('/');
        let entries = match self.sftp.read_dir(self.full(dir)).await {
            Ok(entries) => entries,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(sftp_error(e)),
        };
        Ok(entries
            .filter(|e| e.metadata().is_regular())
            .map(|e| {
                if prefix.is_empty() {
                    e.file_name()
                } else {
                    format!("{prefix}/{}", e.file_name())
                }
            })
            .collect())
    }

    /// The files under `dir` with their sizes, walking subdirectories when `recursive`.
    pub async fn list_sized(
        &self,
        dir: &str,
        recursive: bool,
    ) -> Result<Vec<(String, u64)>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![dir.trim_matches('/').to_owned()];
        while let Some(rel) = stack.pop() {
            let entries = match self.sftp.read_dir(self.full(&rel)).await {
                Ok(entries) => entries,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(sftp_error(e)),
            };
            for entry in entries {
                let path = if rel.is_empty() {
                    entry.file_name()
                } else {
                    format!("{rel}/{}", entry.file_name())
                };
                let meta = entry.metadata();
                if meta.is_regular() {
                    out.push((path, meta.len()));
                } else if meta.is_dir() && recursive {
                    stack.push(path);
                }
            }
        }
        Ok(out)
    }

    pub async fn read_range(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> Result<bytes::Bytes, StorageError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = self.sftp.open(self.full(path)).await.map_err(sftp_error)?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| StorageError::Sftp(format!("seeking in {path}: {e}")))?;
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or_default());
        file.take(len)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| StorageError::Sftp(format!("reading {path}: {e}")))?;
        Ok(buf.into())
    }

    pub async fn delete(&self, path: &str) -> Result<(), StorageError> {
        match self.sftp.remove_file(self.full(path)).await {
            Err(e) if !is_not_found(&e) => Err(sftp_error(e)),
            _ => Ok(()),
        }
    }

    /// Walks the root for objects and bytes; asks the server for free space through the
    /// `statvfs@openssh.com` extension when it offers it.
    pub async fn usage(&self) -> Result<MeasuredUsage, StorageError> {
        let mut usage = MeasuredUsage::default();
        let mut stack = vec![self.full("")];
        'walk: while let Some(dir) = stack.pop() {
            let entries = match self.sftp.read_dir(dir.as_str()).await {
                Ok(entries) => entries,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(sftp_error(e)),
            };
            for entry in entries {
                let meta = entry.metadata();
                if meta.is_dir() {
                    stack.push(format!("{dir}/{}", entry.file_name()));
                } else if meta.is_regular() {
                    if usage.objects == USAGE_MAX_OBJECTS {
                        usage.truncated = true;
                        break 'walk;
                    }
                    usage.objects += 1;
                    usage.total_bytes += meta.len();
                }
            }
        }
        if let Ok(Some(fs)) = self.sftp.fs_info(self.full("")).await {
            let block = fs.fragment_size.max(1);
            usage.disk = Some(DiskUsage {
                total: Some(fs.blocks * block),
                used: Some(fs.blocks.saturating_sub(fs.blocks_free) * block),
                free: Some(fs.blocks_avail * block),
            });
        }
        Ok(usage)
    }
}

async fn authenticate(ssh: &mut Handle<Checker>, config: &SftpConfig) -> Result<(), StorageError> {
    let mut refused = Vec::new();
    if !config.private_key.is_empty() {
        let passphrase = (!config.private_key_passphrase.is_empty())
            .then_some(config.private_key_passphrase.as_str());
        let key = russh::keys::decode_secret_key(&config.private_key, passphrase)
            .map_err(|e| StorageError::Config(format!("privateKey cannot be read: {e}")))?;
        let hash = ssh
            .best_supported_rsa_hash()
            .await
            .map_err(ssh_error)?
            .flatten();
        let result = ssh
            .authenticate_publickey(
                &config.username,
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .map_err(ssh_error)?;
        if result.success() {
            return Ok(());
        }
        refused.push("the private key");
    }
    if !config.password.is_empty() {
        let result = ssh
            .authenticate_password(&config.username, &config.password)
            .await
            .map_err(ssh_error)?;
        if result.success() {
            return Ok(());
        }
        if let AuthResult::Failure { .. } = result {
            refused.push("the password");
        }
    }
    Err(StorageError::Sftp(format!(
        "authentication failed: the server refused {} for user {:?}",
        refused.join(" and "),
        config.username
    )))
}
