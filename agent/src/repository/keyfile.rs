//! The repository's key file, written by Stowage rather than by rustic_core: rustic_core always
//! derives the key of a password with scrypt N = 2^17, r = 8 (128 MiB of memory and ~0.3 s of
//! CPU), and every backup, restore, prune and check opens the repository again, so that cost
//! would be paid on every run and target — it was the whole of a no-change backup's memory.
//! A KDF that expensive protects passwords people choose; a Stowage repository's password is
//! 256 random bits, which no KDF setting makes guessable, so its key file uses N = 2^15, r = 8
//! (32 MiB). The format is restic's (`keys/<sha256 of the file>`: JSON with the scrypt
//! parameters, a salt and the master key sealed with the derived key), so restic and
//! rustic_core open it with the same password; no crate writes a restic key file with chosen
//! parameters, hence this module.

use super::RepoError;
use super::backend::StoreBackend;
use aes256ctr_poly1305aes::Aes256CtrPoly1305Aes;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustic_core::repofile::MasterKey;
use sha2::{Digest, Sha256};
use stowage_shared::SecretString;

/// scrypt's cost: N = 2^LOG_N, r, p.
const LOG_N: u8 = 15;
const R: u32 = 8;
const P: u32 = 1;

/// Writes a key file that opens the repository of `master` with `password`.
pub(super) fn write(
    be: &StoreBackend,
    master: &MasterKey,
    password: &SecretString,
) -> Result<(), RepoError> {
    let mut salt = [0u8; 64];
    getrandom::getrandom(&mut salt)
        .map_err(|e| RepoError::Rustic(format!("no randomness for a key: {e}")))?;
    let params = scrypt::Params::new(LOG_N, R, P)
        .map_err(|e| RepoError::Rustic(format!("scrypt parameters: {e}")))?;
    let mut derived = [0u8; 64];
    scrypt::scrypt(password.expose().as_bytes(), &salt, &params, &mut derived)
        .map_err(|e| RepoError::Rustic(format!("deriving the key: {e}")))?;
    // restic's layout of derived bytes: the AES key, then Poly1305's k and r.
    let cipher = Aes256CtrPoly1305Aes::new(&derived.into());
    let plain = serde_json::to_vec(master)
        .map_err(|e| RepoError::Rustic(format!("encoding the master key: {e}")))?;
    let data = super::lock::seal(&cipher, &plain)?;
    let file = serde_json::json!({
        "created": chrono::Utc::now().to_rfc3339(),
        "username": "stowage",
        "hostname": crate::system::hostname(),
        "kdf": "scrypt",
        "N": 1u32 << LOG_N,
        "r": R,
        "p": P,
        "data": STANDARD.encode(data),
        "salt": STANDARD.encode(salt),
    });
    let bytes = serde_json::to_vec(&file)
        .map_err(|e| RepoError::Rustic(format!("encoding the key file: {e}")))?;
    let id = hex::encode(Sha256::digest(&bytes));
    be.write_raw(&be.raw_path(&format!("keys/{id}")), bytes)
}
