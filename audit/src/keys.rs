//! The keys that sign and verify checkpoints: Ed25519, in the PEM files `openssl genpkey -algorithm
//! ed25519` writes (PKCS#8 for the private key, SPKI for the public one).
//!
//! The signing key must live where the log's storage does not: whoever can read it can forge
//! checkpoints. Each key has an id (`ed25519:` and the first 16 hex digits of the SHA-256 of the public
//! key) that every checkpoint names, so that a verifier given several public keys (a key and the one it
//! replaced) knows which one to check a checkpoint with.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hmac::{KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};

use super::files;
use hardened_core::support::hex;

/// Why a key could not be read, made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key file could not be read.
    #[error("cannot read the audit key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A key file could not be written.
    #[error("cannot write the audit key file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The text is not a key of the kind expected.
    #[error("{origin} is not {expected}: {reason}")]
    Invalid {
        /// Where the text came from: a file, or an environment variable.
        origin: String,
        /// What was expected there.
        expected: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// No randomness for a new key.
    #[error("no randomness for a new audit signing key: {0}")]
    Random(String),
}

const PRIVATE_PEM: &str = "an Ed25519 private key in PEM (PKCS#8, `-----BEGIN PRIVATE KEY-----`)";
const PUBLIC_PEM: &str = "an Ed25519 public key in PEM (SPKI, `-----BEGIN PUBLIC KEY-----`)";

/// The private key that signs checkpoints. Its `Debug` shows the key id only.
#[derive(Clone)]
pub struct AuditSigningKey {
    key: SigningKey,
    id: String,
}

impl std::fmt::Debug for AuditSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigningKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl AuditSigningKey {
    /// A new random key.
    pub fn generate() -> Result<AuditSigningKey, KeyError> {
        let mut seed = [0; 32];
        getrandom::fill(&mut seed).map_err(|error| KeyError::Random(error.to_string()))?;
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        Ok(AuditSigningKey::from_key(key))
    }

    fn from_key(key: SigningKey) -> AuditSigningKey {
        let id = key_id(&key.verifying_key());
        AuditSigningKey { key, id }
    }

    /// Reads a PEM private key; `origin` names where the text came from, for errors.
    pub fn from_pem(text: &str, origin: &str) -> Result<AuditSigningKey, KeyError> {
        SigningKey::from_pkcs8_pem(text.trim()).map(AuditSigningKey::from_key).map_err(|error| KeyError::Invalid {
            origin: origin.to_owned(),
            expected: PRIVATE_PEM,
            reason: error.to_string(),
        })
    }

    /// Reads the PEM private key in `path`. A key file that others than its owner may read is used,
    /// with a warning: whoever reads it can forge checkpoints.
    pub fn read_pem_file(path: impl AsRef<Path>) -> Result<AuditSigningKey, KeyError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
        #[cfg(unix)]
        if let Ok(metadata) = fs::metadata(path) {
            let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format_args!("{:o}", mode & 0o777),
                    "the audit signing key file may be read by others than its owner; make it 0600 or 0400"
                );
            }
        }
        AuditSigningKey::from_pem(&text, &path.display().to_string())
    }

    /// Reads the PEM private key held in the environment variable `name`, if it is set and not empty.
    pub fn from_env(name: &str) -> Result<Option<AuditSigningKey>, KeyError> {
        match std::env::var(name) {
            Ok(text) if !text.trim().is_empty() => {
                AuditSigningKey::from_pem(&text, &format!("the environment variable {name}")).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Writes the key to a new file `path` as PEM, readable by its owner only (0600); refuses to replace a
    /// file that exists.
    pub fn write_pem_file(&self, path: impl AsRef<Path>) -> Result<(), KeyError> {
        let path = path.as_ref();
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| KeyError::Write { path: path.to_owned(), source: io::Error::other(error.to_string()) })?;
        write_new(path, pem.as_bytes())
    }

    /// The public key that verifies this key's checkpoints.
    #[must_use]
    pub fn public_key(&self) -> AuditPublicKey {
        AuditPublicKey { key: self.key.verifying_key(), id: self.id.clone() }
    }

    /// The key id every checkpoint it signs names.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// Signs `message`; the signature in hex.
    pub(crate) fn sign(&self, message: &[u8]) -> String {
        hex(&self.key.sign(message).to_bytes())
    }

    /// A key for authenticating spill files, derived from this one: whoever can write the spill folder
    /// but not read the signing key cannot forge it.
    pub(crate) fn spill_key(&self) -> [u8; 32] {
        let mut mac = <hmac::Hmac<Sha256>>::new_from_slice(self.key.as_bytes()).expect("HMAC takes any key length");
        mac.update(b"hardened audit spill authentication v1");
        mac.finalize().into_bytes().into()
    }
}

/// A public key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPublicKey {
    key: VerifyingKey,
    id: String,
}

impl AuditPublicKey {
    /// Reads a PEM public key; `origin` names where the text came from, for errors.
    pub fn from_pem(text: &str, origin: &str) -> Result<AuditPublicKey, KeyError> {
        VerifyingKey::from_public_key_pem(text.trim()).map(|key| AuditPublicKey { id: key_id(&key), key }).map_err(
            |error| KeyError::Invalid { origin: origin.to_owned(), expected: PUBLIC_PEM, reason: error.to_string() },
        )
    }

    /// Reads the PEM public key in `path`.
    pub fn read_pem_file(path: impl AsRef<Path>) -> Result<AuditPublicKey, KeyError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
        AuditPublicKey::from_pem(&text, &path.display().to_string())
    }

    /// Writes the key to a new file `path` as PEM; refuses to replace a file that exists.
    pub fn write_pem_file(&self, path: impl AsRef<Path>) -> Result<(), KeyError> {
        let path = path.as_ref();
        let pem = self
            .key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|error| KeyError::Write { path: path.to_owned(), source: io::Error::other(error.to_string()) })?;
        write_new(path, pem.as_bytes())
    }

    /// The key id of the checkpoints this key verifies.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// Whether `signature` (hex) is this key's signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some(bytes) = unhex::<64>(signature) else { return false };
        self.key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok()
    }
}

/// `ed25519:` and the first 16 hex digits of the SHA-256 of the public key.
fn key_id(key: &VerifyingKey) -> String {
    format!("ed25519:{}", &hex(&Sha256::digest(key.as_bytes()))[..16])
}

/// Writes `bytes` to a new file, 0600, durably.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let written = files::create_new_private(path).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    written.map_err(|source| KeyError::Write { path: path.to_owned(), source })
}

/// Lowercase or uppercase hex of exactly `N` bytes.
pub(crate) fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut bytes = [0; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let value = |digit: u8| char::from(digit).to_digit(16);
        *byte = u8::try_from(value(pair[0])? * 16 + value(pair[1])?).ok()?;
    }
    Some(bytes)
}
