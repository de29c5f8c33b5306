//! Secrets at rest, in one place: sealing (AES-256-GCM under the `SEAL_KEY` Worker secret, a
//! fresh random 96-bit nonce per seal), every identity a sealed value is bound to (the associated
//! data, so a ciphertext copied into another row, field or table fails to open), and the random
//! ids rows and sessions are named by.
//!
//! Format: `v1.<nonce hex>.<ciphertext+tag hex>`; the version leaves room for key rotation.

use crate::error::ApiError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use stowage_shared::SecretString;

const VERSION: &str = "v1";

/// What a sealed value belongs to. Its text is the associated data of the seal; changing one of
/// these strings makes every value sealed under it unreadable, so they are written once, here.
#[derive(Debug, Clone, Copy)]
pub enum Identity<'a> {
    /// A storage target's config (`storage_targets.config_sealed`), by the row's uid.
    StorageTarget(&'a str),
    /// A notification channel's config, by the row's uid.
    Channel(&'a str),
    /// An agent command's spec (it may carry a target's config or a database password).
    Command(&'a str),
    /// A backup task's database password.
    TaskPassword(&'a str),
    /// A Google Drive authorisation in progress, by the hash of its `state`.
    OauthSession(&'a str),
    /// A storage target's restic repository password, by the target row's uid.
    RepositoryPassword(&'a str),
}

impl std::fmt::Display for Identity<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::StorageTarget(uid) => write!(f, "storage_targets/{uid}"),
            Identity::Channel(uid) => write!(f, "notification_channels/{uid}"),
            Identity::Command(uid) => write!(f, "agent_commands/{uid}"),
            Identity::TaskPassword(uid) => write!(f, "backup_tasks/{uid}/dbPassword"),
            Identity::OauthSession(state_hash) => write!(f, "oauth_sessions/{state_hash}"),
            Identity::RepositoryPassword(uid) => write!(f, "storage_targets/{uid}/repository"),
        }
    }
}

/// A fresh random id: 128 bits as 32 hex digits (row uids, session ids).
pub fn random_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("random id", e))?;
    Ok(hex::encode(bytes))
}

pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// `key` is 64 hex digits (32 bytes).
    pub fn new(key: &SecretString) -> Result<Self, ApiError> {
        let bytes = hex::decode(key.expose().trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                ApiError::Misconfigured(
                    "secret SEAL_KEY must be 64 hex digits (32 bytes)".to_owned(),
                )
            })?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
            ApiError::Misconfigured("secret SEAL_KEY has the wrong length".to_owned())
        })?;
        Ok(Self { cipher })
    }

    pub fn seal(
        &self,
        identity: impl std::fmt::Display,
        plaintext: &[u8],
    ) -> Result<String, ApiError> {
        let identity = identity.to_string();
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| ApiError::internal("seal nonce", e))?;
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: identity.as_bytes(),
                },
            )
            .map_err(|_| ApiError::internal("seal", "encryption failed"))?;
        Ok(format!(
            "{VERSION}.{}.{}",
            hex::encode(nonce),
            hex::encode(sealed)
        ))
    }

    pub fn open(
        &self,
        identity: impl std::fmt::Display,
        sealed: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let identity = identity.to_string();
        let broken = || {
            ApiError::internal(
                "open sealed value",
                format!(
                    "cannot open the value sealed for {identity} (wrong SEAL_KEY or tampered row)"
                ),
            )
        };
        let mut parts = sealed.split('.');
        let (Some(VERSION), Some(nonce), Some(body), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(broken());
        };
        let nonce: [u8; 12] = hex::decode(nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(broken)?;
        let body = hex::decode(body).map_err(|_| broken())?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &body,
                    aad: identity.as_bytes(),
                },
            )
            .map_err(|_| broken())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&SecretString::new("11".repeat(32))).expect("key")
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let s = sealer();
        let a = s
            .seal("storage_targets/x", b"{\"password\":\"p\"}")
            .expect("seal");
        let b = s
            .seal("storage_targets/x", b"{\"password\":\"p\"}")
            .expect("seal");
        assert_ne!(a, b, "a fresh nonce every time");
        assert!(!a.contains("password"));
        assert_eq!(
            s.open("storage_targets/x", &a).expect("open"),
            b"{\"password\":\"p\"}"
        );
    }

    #[test]
    fn another_row_or_key_or_a_flipped_bit_cannot_open() {
        let s = sealer();
        let sealed = s.seal("storage_targets/a", b"secret").expect("seal");
        assert!(
            s.open("storage_targets/b", &sealed).is_err(),
            "bound to its row"
        );
        let other = Sealer::new(&SecretString::new("22".repeat(32))).expect("key");
        assert!(
            other.open("storage_targets/a", &sealed).is_err(),
            "bound to its key"
        );
        let mut tampered = sealed.clone();
        let last = tampered.pop().expect("char");
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(
            s.open("storage_targets/a", &tampered).is_err(),
            "authenticated"
        );
        assert!(s.open("storage_targets/a", "v0.00.00").is_err());
    }

    #[test]
    fn bad_keys_are_configuration_errors() {
        assert!(Sealer::new(&SecretString::new("short")).is_err());
        assert!(Sealer::new(&SecretString::new("zz".repeat(32))).is_err());
    }
}
