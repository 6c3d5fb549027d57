//! Media: the pictures, video and sound that scenes show, uploaded by the streamer.
//!
//! What a file is gets decided from its bytes ([`sniff`]), never from its name or the type the
//! client claimed, against a short allowlist: a program named `cat.png` is refused, and a PNG
//! named `song.mp3` is stored as the PNG it is. Files are content-addressed,
//! `<data dir>/media/<sha256>.<ext>` ([`storage`]): the same bytes uploaded twice are one file
//! with one id, and ids are unguessable, which is what lets overlay pages load `/media/{id}`
//! without credentials.
//!
//! An upload ([`MediaUpload`]) streams into a temporary file in the media directory while it is
//! hashed and measured against `media.max_upload_bytes`; only a complete, allowed file is
//! renamed to its address. Every refused, broken or abandoned upload removes its temporary
//! file, so nothing of it is left behind.
//!
//! [`Media`] is the capability: uploads, the library, serving and deleting.

pub mod sniff;
mod storage;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

pub use self::sniff::{Format, sniff};
pub use self::upload::MediaUpload;
use self::upload::Refusal;
use crate::Core;
use crate::audit::{Audit, AuditEntry, Outcome};
use crate::clock::Clock;
pub use crate::protocol::media::{MediaItem, MediaKind};
use crate::random::RandomError;
use crate::store::{Store, StoreError};

/// The accepted types, as people name them.
pub const ACCEPTED: &str = "png, jpeg, gif, webp, mp4, webm, mp3, ogg, wav";

/// Errors of media operations.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The bytes are not one of the accepted types.
    #[error(
        "this file is not an accepted picture, video or sound ({ACCEPTED}); the type is read from \
         the file's contents, not its name"
    )]
    Unsupported,
    /// The file is larger than `media.max_upload_bytes`.
    #[error("the file is larger than {limit} bytes, the most allowed (media.max_upload_bytes)")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// No media with that id (or the id is malformed).
    #[error("no media with that id")]
    NotFound,
    /// Reading or writing the media directory failed.
    #[error("media storage failed: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No randomness for a temporary file's name.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// A blocking task failed.
    #[error("background task failed: {0}")]
    Task(String),
}

/// The result of an upload.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The medium.
    pub media: MediaItem,
    /// False when the same bytes were stored already (nothing new was written).
    pub created: bool,
}

/// A stored medium opened for reading.
#[derive(Debug)]
pub struct MediaFile {
    /// The medium.
    pub media: MediaItem,
    /// The open file.
    pub file: tokio::fs::File,
    /// Its length in bytes.
    pub len: u64,
}

/// The media capability: the streamer's uploaded files, their rows and their audit trail.
/// Cheap to clone.
#[derive(Clone)]
pub struct Media {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    audit: Audit,
    clock: Arc<dyn Clock>,
    dir: PathBuf,
    max_upload_bytes: u64,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// An audit detail from a serialisable struct. The structs here have only plain fields, so
/// serialising cannot fail; if it ever did, the entry is still recorded, without detail.
fn audit_detail(detail: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(detail).unwrap_or_default()
}

impl Media {
    /// The media of `core`'s data directory (`<data dir>/media`), with its upload limit.
    pub fn new(core: &Core) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: core.store.clone(),
                audit: core.audit.clone(),
                clock: Arc::clone(&core.clock),
                dir: core.config.data_dir.join("media"),
                max_upload_bytes: core.config.media.max_upload_bytes,
            }),
        }
    }

    /// The directory holding media files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Starts an upload: a new temporary file in the media directory.
    pub async fn upload_begin(&self) -> Result<MediaUpload, MediaError> {
        let dir = self.dir().to_path_buf();
        let path = dir.join(format!(
            "{}{}{}",
            storage::TEMP_PREFIX,
            crate::random::token(12)?,
            storage::TEMP_SUFFIX
        ));
        let now = self.now_ms();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            if let Err(e) = storage::sweep_stale_temps(&dir, now) {
                tracing::warn!(error = %e, "could not sweep old temporary media files");
            }
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(|e| MediaError::Task(e.to_string()))??;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(MediaUpload::new(
            self.clone(),
            file,
            storage::TempFile(Some(path)),
            self.inner.max_upload_bytes,
        ))
    }

    /// Records a refused upload. The refusal itself is what the caller reports, so a failure
    /// to record it is logged rather than returned.
    async fn refused(&self, refusal: Refusal) {
        let entry = AuditEntry::new("streamer", "media.upload", Outcome::Denied)
            .detail(audit_detail(&refusal));
        if let Err(e) = self.audit().record(entry).await {
            tracing::warn!(error = %e, "could not record a refused media upload");
        }
    }

    /// All media, newest first.
    pub async fn list(&self) -> Result<Vec<MediaItem>, MediaError> {
        Ok(self.store().call(|conn| storage::list(conn)).await?)
    }

    async fn row(&self, id: &str) -> Result<(MediaItem, String), MediaError> {
        storage::check_media_id(id)?;
        let id = id.to_owned();
        self.store()
            .call(move |conn| storage::find(conn, &id))
            .await?
            .ok_or(MediaError::NotFound)
    }

    /// One medium.
    pub async fn get(&self, id: &str) -> Result<MediaItem, MediaError> {
        Ok(self.row(id).await?.0)
    }

    /// Opens a medium's file for serving.
    pub async fn open(&self, id: &str) -> Result<MediaFile, MediaError> {
        let (media, ext) = self.row(id).await?;
        let path = storage::file_of(self.dir(), &media.media_id, &ext);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(id = %media.media_id, "a media file is missing from the media directory");
                return Err(MediaError::NotFound);
            }
            Err(e) => return Err(MediaError::Io(e)),
        };
        let len = file.metadata().await?.len();
        Ok(MediaFile { media, file, len })
    }

    /// Deletes a medium: its row and its file go together.
    pub async fn delete(&self, id: &str) -> Result<(), MediaError> {
        storage::check_media_id(id)?;
        let dir = self.dir().to_path_buf();
        let target = id.to_owned();
        self.store()
            .call(move |conn| storage::delete(conn, &dir, &target))
            .await??;
        self.audit()
            .record(AuditEntry::new("streamer", "media.delete", Outcome::Ok).target(id))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_upload_limit_is_validated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let load = |value: &str| {
            crate::config::Config::load(&crate::config::ConfigSources {
                data_dir: Some(dir.path().to_path_buf()),
                env: vec![("STAGEHAND_MEDIA_MAX_UPLOAD_BYTES".into(), value.into())],
                ..Default::default()
            })
        };
        assert_eq!(
            load("2048").expect("valid").media.max_upload_bytes,
            2048,
            "the environment sets the limit"
        );
        assert!(load("10").is_err(), "too small to hold any real file");
        assert!(load("-1").is_err(), "negative");
        let defaults = crate::config::Config::load(&crate::config::ConfigSources {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
        .expect("defaults");
        assert_eq!(
            defaults.media.max_upload_bytes,
            50 << 20,
            "50 MiB by default"
        );
    }
}
