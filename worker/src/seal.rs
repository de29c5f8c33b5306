//! Sealing of secrets at rest: AES-256-GCM under the `SEAL_KEY` Worker secret, a fresh random
//! 96-bit nonce per seal, and the row's identity as associated data, so a ciphertext copied into
//! another row (or another table) fails to open.
//!
//! Format: `v1.<nonce hex>.<ciphertext+tag hex>`; the version leaves room for key rotation.

use crate::error::ApiError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use stowage_shared::SecretString;

const VERSION: &str = "v1";

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

    pub fn seal(&self, identity: &str, plaintext: &[u8]) -> Result<String, ApiError> {
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

    pub fn open(&self, identity: &str, sealed: &str) -> Result<Vec<u8>, ApiError> {
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
