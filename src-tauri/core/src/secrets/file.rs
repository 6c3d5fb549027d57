//! The encrypted-file backend, for machines without a keychain (a headless box, CI).
//!
//! One JSON file, `secrets.enc`, holds each secret sealed with XChaCha20-Poly1305 under a
//! 32-byte key; the secret's name is bound in as associated data, so entries cannot be swapped.
//! The key comes from `STAGEHAND_SECRETS_KEY` or from a key file created with mode 0600. A
//! sealed check value lets a wrong key be reported at open instead of at first use. Writes go
//! to a temporary file that is then renamed over the old one, so a crash never leaves half a
//! file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{SecretError, SecretStore, validate_name};
use crate::Secret;
use crate::config::SecretBackendKind;

const FORMAT: &str = "stagehand-secrets";
const CHECK_NAME: &str = "\u{0}check";
const CHECK_VALUE: &[u8] = b"stagehand secrets key check";
const NONCE_LEN: usize = 24;

/// Where the file backend's key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `STAGEHAND_SECRETS_KEY`: base64 of 32 bytes.
    Env(Secret),
    /// A key file (created with mode 0600 when missing and no secrets exist yet).
    File(PathBuf),
}

#[derive(Debug, Serialize, Deserialize)]
struct SecretsFile {
    format: String,
    version: u32,
    check: String,
    entries: BTreeMap<String, String>,
}

/// Secrets in an encrypted file.
pub struct FileSecretStore {
    path: PathBuf,
    key_source: String,
    cipher: XChaCha20Poly1305,
    lock: Mutex<()>,
}

impl std::fmt::Debug for FileSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSecretStore")
            .field("path", &self.path)
            .field("key_source", &self.key_source)
            .finish_non_exhaustive()
    }
}

fn decode_key(text: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let text = text.trim();
    let bytes = [STANDARD, URL_SAFE]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .or_else(|| URL_SAFE_NO_PAD.decode(text).ok())
        .ok_or_else(|| SecretError::BadKey("the key is not base64".into()))?;
    if bytes.len() != 32 {
        return Err(SecretError::BadKey(format!(
            "the key must be 32 bytes, this one is {} (make one with `stagehand secrets genkey`)",
            bytes.len()
        )));
    }
    Ok(Zeroizing::new(bytes))
}

/// A fresh key, base64 encoded.
fn generate_key() -> Result<Secret, SecretError> {
    let mut key = Zeroizing::new([0u8; 32]);
    crate::random::fill(key.as_mut())?;
    Ok(Secret::new(STANDARD.encode(key.as_ref())))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SecretError + '_ {
    move |source| SecretError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Takes the cross-process lock beside `path` (`secrets.lock`), held until the file is dropped:
/// `stagehand token` or `secrets doctor` may run beside `stagehand serve`.
fn lock_beside(path: &Path) -> Result<std::fs::File, SecretError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let lock_path = path.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    file.lock().map_err(io_err(&lock_path))?;
    Ok(file)
}

/// Writes `bytes` to `path` atomically with mode 0600, through a temporary file of its own.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SecretError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        crate::random::token(6)?
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(SecretError::Io {
            path: path.to_path_buf(),
            source: e,
        });
    }
    Ok(())
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(SecretError::BadKey(format!(
            "the key file {} can be read by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), SecretError> {
    Ok(())
}

impl FileSecretStore {
    /// A fresh key, base64 encoded.
    pub fn generate_key() -> Result<Secret, SecretError> {
        generate_key()
    }

    /// Opens (or creates) the secrets file at `path` with the given key.
    pub fn open(path: PathBuf, key: KeySource) -> Result<Self, SecretError> {
        let _lock = lock_beside(&path)?;
        let exists = path.exists();
        let (key_bytes, key_source) = match key {
            KeySource::Env(secret) => {
                (decode_key(secret.expose())?, "STAGEHAND_SECRETS_KEY".into())
            }
            KeySource::File(key_path) => {
                let described = format!("key file {}", key_path.display());
                match std::fs::read_to_string(&key_path) {
                    Ok(text) => {
                        check_private(&key_path)?;
                        (decode_key(&text)?, described)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        if exists {
                            return Err(SecretError::BadKey(format!(
                                "{} exists but its key file {} is missing; restore the key \
                                 file or set STAGEHAND_SECRETS_KEY",
                                path.display(),
                                key_path.display()
                            )));
                        }
                        let key = generate_key()?;
                        write_private(&key_path, key.expose().as_bytes())?;
                        tracing::info!(key_file = %key_path.display(), "created a new secrets key file");
                        (decode_key(key.expose())?, described)
                    }
                    Err(source) => {
                        return Err(SecretError::Io {
                            path: key_path,
                            source,
                        });
                    }
                }
            }
        };
        let cipher = XChaCha20Poly1305::new_from_slice(&key_bytes)
            .map_err(|_| SecretError::BadKey("the key must be 32 bytes".into()))?;
        let store = Self {
            path,
            key_source,
            cipher,
            lock: Mutex::new(()),
        };
        if exists {
            let file = store.read()?;
            let opened = store.open_value(CHECK_NAME, &file.check)?;
            if opened.as_slice() != CHECK_VALUE {
                return Err(store.wrong_key());
            }
        } else {
            let file = SecretsFile {
                format: FORMAT.into(),
                version: 1,
                check: store.seal(CHECK_NAME, CHECK_VALUE)?,
                entries: BTreeMap::new(),
            };
            store.write(&file)?;
        }
        Ok(store)
    }

    fn wrong_key(&self) -> SecretError {
        SecretError::WrongKey {
            path: self.path.clone(),
            key_source: self.key_source.clone(),
        }
    }

    fn aad(name: &str) -> Vec<u8> {
        format!("stagehand-secrets/v1/{name}").into_bytes()
    }

    fn seal(&self, name: &str, plaintext: &[u8]) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random::fill(&mut nonce)?;
        let aad = Self::aad(name);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Backend("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(STANDARD.encode(out))
    }

    fn open_value(&self, name: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let raw = STANDARD.decode(sealed).map_err(|_| SecretError::Corrupt {
            path: self.path.clone(),
            reason: format!("entry `{name}` is not base64"),
        })?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SecretError::Corrupt {
                path: self.path.clone(),
                reason: format!("entry `{name}` is truncated"),
            });
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let aad = Self::aad(name);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| self.wrong_key())
    }

    fn read(&self) -> Result<SecretsFile, SecretError> {
        let text = std::fs::read_to_string(&self.path).map_err(io_err(&self.path))?;
        let file: SecretsFile = serde_json::from_str(&text).map_err(|e| SecretError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if file.format != FORMAT || file.version != 1 {
            return Err(SecretError::Corrupt {
                path: self.path.clone(),
                reason: format!("unknown format {} version {}", file.format, file.version),
            });
        }
        Ok(file)
    }

    fn write(&self, file: &SecretsFile) -> Result<(), SecretError> {
        let text = serde_json::to_vec_pretty(file)
            .map_err(|e| SecretError::Backend(format!("cannot encode the secrets file: {e}")))?;
        write_private(&self.path, &text)
    }

    /// Serialises access: the mutex within this process, the lock file across processes.
    fn guard(&self) -> Result<(std::sync::MutexGuard<'_, ()>, std::fs::File), SecretError> {
        // A panic while holding the lock cannot leave the file half-written (writes are
        // atomic renames), so a poisoned lock is safe to take over.
        let inner = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        Ok((inner, lock_beside(&self.path)?))
    }
}

impl SecretStore for FileSecretStore {
    fn kind(&self) -> SecretBackendKind {
        SecretBackendKind::File
    }

    fn location(&self) -> String {
        format!(
            "encrypted file {} (key: {})",
            self.path.display(),
            self.key_source
        )
    }

    fn get(&self, name: &str) -> Result<Option<Secret>, SecretError> {
        validate_name(name)?;
        let _guard = self.guard()?;
        let file = self.read()?;
        let Some(sealed) = file.entries.get(name) else {
            return Ok(None);
        };
        let plain = self.open_value(name, sealed)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Corrupt {
            path: self.path.clone(),
            reason: format!("entry `{name}` is not text"),
        })?;
        Ok(Some(Secret::new(text)))
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), SecretError> {
        validate_name(name)?;
        let _guard = self.guard()?;
        let mut file = self.read()?;
        let sealed = self.seal(name, value.expose().as_bytes())?;
        file.entries.insert(name.to_owned(), sealed);
        self.write(&file)
    }

    fn delete(&self, name: &str) -> Result<bool, SecretError> {
        validate_name(name)?;
        let _guard = self.guard()?;
        let mut file = self.read()?;
        let existed = file.entries.remove(name).is_some();
        if existed {
            self.write(&file)?;
        }
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file_store(dir: &Path) -> Result<FileSecretStore, SecretError> {
        FileSecretStore::open(
            dir.join("secrets.enc"),
            KeySource::File(dir.join("secrets.key")),
        )
    }

    #[test]
    fn round_trip_survives_reopen_and_stays_encrypted_on_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = key_file_store(dir.path()).expect("opens");
        store
            .set("obs-password", &Secret::new("correct horse battery"))
            .expect("set");
        let reopened = key_file_store(dir.path()).expect("reopens with the same key file");
        assert_eq!(
            reopened
                .get("obs-password")
                .expect("get")
                .map(|s| s.expose().to_owned()),
            Some("correct horse battery".to_owned())
        );
        let on_disk = std::fs::read_to_string(dir.path().join("secrets.enc")).expect("read");
        assert!(
            !on_disk.contains("correct horse"),
            "the file must not hold plaintext"
        );
        assert!(reopened.delete("obs-password").expect("delete"));
        assert!(!reopened.delete("obs-password").expect("delete again"));
        assert!(reopened.get("obs-password").expect("get").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn key_and_secrets_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        key_file_store(dir.path()).expect("opens");
        for name in ["secrets.key", "secrets.enc"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name} must be owner-only");
        }
    }

    #[test]
    fn wrong_key_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secrets.enc");
        let store =
            FileSecretStore::open(path.clone(), KeySource::Env(generate_key().expect("key")))
                .expect("opens");
        store.set("a", &Secret::new("b")).expect("set");
        let err = FileSecretStore::open(path, KeySource::Env(generate_key().expect("key")))
            .expect_err("another key must not open the file");
        assert!(matches!(err, SecretError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains("STAGEHAND_SECRETS_KEY"), "{err}");
    }

    #[test]
    fn malformed_keys_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secrets.enc");
        for bad in ["not base64 at all!", "c2hvcnQ="] {
            let err = FileSecretStore::open(path.clone(), KeySource::Env(Secret::new(bad)))
                .expect_err("bad key");
            assert!(matches!(err, SecretError::BadKey(_)), "{err}");
        }
        assert!(!path.exists(), "a refused key creates nothing");
    }

    #[test]
    fn missing_key_file_with_existing_secrets_is_not_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        key_file_store(dir.path()).expect("opens");
        std::fs::remove_file(dir.path().join("secrets.key")).expect("remove key");
        let err = key_file_store(dir.path()).expect_err("must not mint a new key");
        assert!(matches!(err, SecretError::BadKey(_)), "{err}");
        assert!(!dir.path().join("secrets.key").exists());
    }

    #[test]
    fn concurrent_writers_in_separate_stores_lose_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        key_file_store(dir.path()).expect("create");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    // Separate stores stand for separate processes: only the lock file joins them.
                    let store = key_file_store(&dir).expect("open");
                    for i in 0..10 {
                        store
                            .set(&format!("k{t}-{i}"), &Secret::new(format!("v{t}-{i}")))
                            .expect("set");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no panic");
        }
        let store = key_file_store(dir.path()).expect("open");
        for t in 0..4 {
            for i in 0..10 {
                let v = store
                    .get(&format!("k{t}-{i}"))
                    .expect("get")
                    .expect("every write kept");
                assert_eq!(v.expose(), format!("v{t}-{i}"));
            }
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary files left behind");
    }

    #[test]
    fn swapped_entries_do_not_decrypt() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = key_file_store(dir.path()).expect("opens");
        store.set("one", &Secret::new("1")).expect("set");
        store.set("two", &Secret::new("2")).expect("set");
        let path = dir.path().join("secrets.enc");
        let mut file: SecretsFile =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let one = file.entries.get("one").cloned().expect("entry");
        file.entries.insert("two".into(), one);
        std::fs::write(&path, serde_json::to_vec(&file).expect("json")).expect("write");
        assert!(
            store.get("two").is_err(),
            "an entry moved under another name must fail"
        );
    }
}
