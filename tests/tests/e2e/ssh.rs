//! SSH keys for the SFTP tests, made in-process (russh's ssh-key) so no `ssh-keygen` is needed.

use anyhow::Result;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey};
use std::path::{Path, PathBuf};

pub struct Key {
    key: PrivateKey,
}

impl Key {
    /// A fresh Ed25519 key. The seed only has to differ between keys of one run, so the clock and
    /// a salt are enough: these keys guard loopback test servers and nothing else.
    pub fn new(salt: u8) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut seed = [salt; 32];
        for (i, b) in nanos.to_le_bytes().iter().enumerate() {
            seed[i] ^= b;
        }
        seed[31] ^= std::process::id() as u8;
        Self {
            key: PrivateKey::from(Ed25519Keypair::from_seed(&seed)),
        }
    }

    /// The private key in OpenSSH PEM form.
    pub fn private_pem(&self) -> Result<String> {
        Ok(self.key.to_openssh(LineEnding::LF)?.to_string())
    }

    /// `ssh-ed25519 AAAA…`, as `ssh-keyscan` prints it.
    pub fn public_line(&self) -> Result<String> {
        Ok(self.key.public_key().to_openssh()?)
    }

    pub fn fingerprint(&self) -> String {
        self.key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    /// Writes the private key to `dir/name` (mode 0600, as SSH servers expect) and returns the path.
    pub fn write_private(&self, dir: &Path, name: &str) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, self.private_pem()?)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(path)
    }
}
