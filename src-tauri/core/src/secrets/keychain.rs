//! The OS keychain backend (Secret Service on Linux, Keychain on macOS, Credential Manager on
//! Windows), through the `keyring` crate.
//!
//! Entries are stored under the service `stagehand` with the account `{instance}:{name}`, where
//! the instance id belongs to the data directory, so two data directories never share secrets.

use super::{FILE_BACKEND_HINT, SecretError, SecretStore, validate_name};
use crate::Secret;
use crate::config::SecretBackendKind;

const SERVICE: &str = "stagehand";

/// Secrets in the OS keychain.
#[derive(Debug)]
pub struct KeychainSecretStore {
    instance: String,
}

impl KeychainSecretStore {
    /// Opens the keychain and checks that it answers.
    pub fn open(instance: &str) -> Result<Self, SecretError> {
        let store = Self {
            instance: instance.to_owned(),
        };
        // A read of an entry that does not exist tells whether the keychain is reachable.
        store.get("keychain-probe")?;
        Ok(store)
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, SecretError> {
        validate_name(name)?;
        keyring::Entry::new(SERVICE, &format!("{}:{name}", self.instance)).map_err(map_error)
    }
}

fn map_error(err: keyring::Error) -> SecretError {
    match err {
        keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => {
            SecretError::Unavailable {
                backend: "keychain",
                reason: e.to_string(),
                hint: FILE_BACKEND_HINT,
            }
        }
        other => SecretError::Backend(other.to_string()),
    }
}

impl SecretStore for KeychainSecretStore {
    fn kind(&self) -> SecretBackendKind {
        SecretBackendKind::Keychain
    }

    fn location(&self) -> String {
        format!(
            "OS keychain, service \"{SERVICE}\", accounts \"{}:<name>\"",
            self.instance
        )
    }

    fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        match self.entry(name)?.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(e)),
        }
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), SecretError> {
        self.entry(name)?
            .set_password(value.expose())
            .map_err(map_error)
    }

    fn delete(&self, name: &str) -> Result<bool, SecretError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_error(e)),
        }
    }
}
