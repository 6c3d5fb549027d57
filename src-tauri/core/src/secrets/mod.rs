//! Secret storage: the OS keychain, or an explicit encrypted file where there is none.
//!
//! Both backends sit behind [`SecretStore`]. Which one is used is always a choice made in
//! configuration (`secrets.backend`, `STAGEHAND_SECRETS=keychain|file`): when the keychain is
//! chosen and cannot be reached, opening fails with an explanation of how to pick the file
//! backend. Nothing ever falls back to plaintext, or to the file backend, on its own.

mod file;
mod keychain;

use std::path::PathBuf;
use std::sync::Arc;

pub use file::FileSecretStore;
pub use keychain::KeychainSecretStore;

use crate::Secret;
use crate::config::{Config, SecretBackendKind};

/// The hint every "no keychain" error carries.
pub const FILE_BACKEND_HINT: &str = "To use the encrypted-file backend instead, set \
STAGEHAND_SECRETS=file (or `backend = \"file\"` under [secrets] in config.toml). Its key comes \
from STAGEHAND_SECRETS_KEY (base64 of 32 bytes; `stagehand secrets genkey` makes one) or from a \
0600 key file created in the data directory.";

/// Errors from secret storage. Messages never contain secret values.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The chosen backend cannot be reached (no keychain daemon, locked keychain, no D-Bus).
    #[error("the {backend} secret backend is not available: {reason}. {hint}")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// What the platform said.
        reason: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// The secrets file exists but this key does not open it.
    #[error(
        "the secrets file {path} cannot be decrypted with this key ({key_source}); it was \
         written with another key. Restore the right STAGEHAND_SECRETS_KEY or key file"
    )]
    WrongKey {
        /// The secrets file.
        path: PathBuf,
        /// Where the key came from, in words.
        key_source: String,
    },
    /// The key itself is unusable (malformed, wrong length, readable by others, missing).
    #[error("secrets key problem: {0}")]
    BadKey(String),
    /// The secrets file is damaged.
    #[error("the secrets file {path} is damaged: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("secrets file I/O on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A secret name with characters outside `[A-Za-z0-9._-]`, or too long.
    #[error("invalid secret name `{0}` (use 1-64 of A-Z a-z 0-9 . _ -)")]
    InvalidName(String),
    /// The backend failed in some other way.
    #[error("secret backend error: {0}")]
    Backend(String),
    /// The OS random source failed.
    #[error(transparent)]
    Random(#[from] crate::random::RandomError),
}

/// A place to keep secrets by name. Calls may block (D-Bus, file I/O): async code reaches
/// them through [`Secrets`], which runs them on the blocking pool.
pub trait SecretStore: Send + Sync + 'static {
    /// Which backend this is.
    fn kind(&self) -> SecretBackendKind;
    /// Where secrets are kept, in words (for the home page and `secrets doctor`).
    fn location(&self) -> String;
    /// Reads a secret; `None` when it was never set.
    fn get(&self, name: &str) -> Result<Option<Secret>, SecretError>;
    /// Writes a secret, replacing any previous value.
    fn set(&self, name: &str, value: &Secret) -> Result<(), SecretError>;
    /// Removes a secret; `true` when there was one.
    fn delete(&self, name: &str) -> Result<bool, SecretError>;
}

/// The secret store as async code reaches it: every call runs on the blocking pool, since
/// D-Bus and file I/O block. Cheap to clone.
#[derive(Clone)]
pub struct Secrets {
    backend: Arc<dyn SecretStore>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("backend", &self.backend.kind())
            .finish()
    }
}

impl Secrets {
    /// Async access to `backend`.
    pub fn new(backend: Arc<dyn SecretStore>) -> Self {
        Self { backend }
    }

    /// The backend itself, for its kind and location (which do not block).
    pub fn backend(&self) -> &dyn SecretStore {
        self.backend.as_ref()
    }

    /// Runs `f` with the backend on the blocking pool.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> Result<T, SecretError> + Send + 'static,
    ) -> Result<T, SecretError> {
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || f(backend.as_ref()))
            .await
            .map_err(|e| SecretError::Backend(format!("secret task failed: {e}")))?
    }

    /// Reads a secret.
    pub async fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        let name = name.to_owned();
        self.with(move |s| s.get(&name)).await
    }

    /// Writes a secret.
    pub async fn set(&self, name: &str, value: Secret) -> Result<(), SecretError> {
        let name = name.to_owned();
        self.with(move |s| s.set(&name, &value)).await
    }

    /// Deletes a secret.
    pub async fn delete(&self, name: &str) -> Result<bool, SecretError> {
        let name = name.to_owned();
        self.with(move |s| s.delete(&name)).await
    }
}

/// Checks a secret name.
pub fn validate_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SecretError::InvalidName(name.chars().take(80).collect()))
    }
}

/// Opens the backend chosen in configuration. `instance` keeps the keychain entries of
/// different data directories apart.
pub fn open(config: &Config, instance: &str) -> Result<Arc<dyn SecretStore>, SecretError> {
    match config.secrets.backend {
        SecretBackendKind::Keychain => Ok(Arc::new(KeychainSecretStore::open(instance)?)),
        SecretBackendKind::File => {
            let key = match &config.secrets_key {
                Some(key) => file::KeySource::Env(key.clone()),
                None => file::KeySource::File(config.secrets_key_file()),
            };
            Ok(Arc::new(FileSecretStore::open(
                config.data_dir.join("secrets.enc"),
                key,
            )?))
        }
    }
}

/// What `stagehand secrets doctor` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DoctorReport {
    /// Backend name.
    pub backend: &'static str,
    /// Where secrets live.
    pub location: String,
    /// Whether a write, read back and delete of a probe secret worked.
    pub works: bool,
    /// What failed, if anything.
    pub problem: Option<String>,
}

/// Writes, reads back and deletes a probe secret.
pub fn doctor(store: &dyn SecretStore) -> DoctorReport {
    let probe = Secret::new(match crate::random::token(16) {
        Ok(t) => t,
        Err(e) => {
            return DoctorReport {
                backend: store.kind().as_str(),
                location: store.location(),
                works: false,
                problem: Some(e.to_string()),
            };
        }
    });
    let result = (|| {
        store.set("doctor-probe", &probe)?;
        let back = store.get("doctor-probe")?;
        store.delete("doctor-probe")?;
        match back {
            Some(v) if v.ct_eq(probe.expose().as_bytes()) => Ok(()),
            _ => Err(SecretError::Backend(
                "a probe secret did not read back as written".into(),
            )),
        }
    })();
    DoctorReport {
        backend: store.kind().as_str(),
        location: store.location(),
        works: result.is_ok(),
        problem: result.err().map(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_restricted() {
        assert!(validate_name("streamer-token").is_ok());
        assert!(validate_name("obs.password_1").is_ok());
        for bad in ["", "a/b", "a b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
