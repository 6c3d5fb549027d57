//! An upload in progress: bytes stream into a temporary file while they are hashed and
//! measured against `media.max_upload_bytes`.
//!
//! Only a complete, allowed file is renamed to its address; every refused, broken or abandoned
//! upload removes its temporary file, so nothing of it is left behind.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::storage::{self, NewMedia, TempFile};
use super::{Media, MediaError, Stored, sniff};
use crate::audit::{AuditEntry, Outcome};
use crate::protocol::media::MediaKind;

/// The audit detail of a stored upload.
#[derive(Serialize)]
struct UploadDetail<'a> {
    kind: MediaKind,
    mime: &'a str,
    size: u64,
    new: bool,
}

/// An upload in progress: bytes go to a temporary file while they are hashed and counted.
///
/// End it with [`MediaUpload::finish`] or [`MediaUpload::discard`]; dropping it discards too.
#[derive(Debug)]
pub struct MediaUpload {
    media: Media,
    // Declared before `temp` so the handle is closed before the file is removed (Windows
    // cannot remove an open file).
    file: Option<tokio::fs::File>,
    temp: TempFile,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

fn ended() -> MediaError {
    MediaError::Io(std::io::Error::other("the upload has ended"))
}

impl MediaUpload {
    /// An upload writing to `file`, the temporary file at `temp`.
    pub(super) fn new(media: Media, file: tokio::fs::File, temp: TempFile, limit: u64) -> Self {
        Self {
            media,
            file: Some(file),
            temp,
            hasher: Sha256::new(),
            size: 0,
            limit,
        }
    }

    /// Appends bytes. Going past `media.max_upload_bytes` discards the upload at once.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), MediaError> {
        let Some(file) = self.file.as_mut() else {
            return Err(ended());
        };
        let size = self.size + chunk.len() as u64;
        if size > self.limit {
            self.discard().await;
            let limit = self.limit;
            self.media.refused(Refusal::TooLarge { limit }).await;
            return Err(MediaError::TooLarge { limit });
        }
        if let Err(e) = file.write_all(chunk).await {
            self.discard().await;
            return Err(MediaError::Io(e));
        }
        self.hasher.update(chunk);
        self.size = size;
        Ok(())
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Ends the upload and removes everything it wrote.
    pub async fn discard(&mut self) {
        if let Some(file) = self.file.take() {
            // Waits for a write still in flight, then closes the handle.
            drop(file.into_std().await);
        }
        self.temp.remove().await;
    }

    /// Checks what the bytes are and stores them at their address, or refuses them (and
    /// removes them). `original_name` is kept for people to read, never used to decide anything.
    pub async fn finish(mut self, original_name: Option<&str>) -> Result<Stored, MediaError> {
        let result = self.commit(original_name).await;
        // After a commit the temporary file has been renamed away; after a refusal it goes.
        self.discard().await;
        let stored = result?;
        let media = &stored.media;
        let detail = UploadDetail {
            kind: media.kind,
            mime: &media.mime,
            size: media.size,
            new: stored.created,
        };
        self.media
            .audit()
            .record(
                AuditEntry::new("streamer", "media.upload", Outcome::Ok)
                    .target(media.media_id.clone())
                    .detail(super::audit_detail(&detail)),
            )
            .await?;
        Ok(stored)
    }

    async fn commit(&mut self, original_name: Option<&str>) -> Result<Stored, MediaError> {
        let mut file = self.file.take().ok_or_else(ended)?;
        file.flush().await?;
        // On disk before it gets its final name: a crash never leaves a torn file at an address.
        file.sync_data().await?;
        drop(file.into_std().await);
        let Some(temp) = self.temp.0.clone() else {
            return Err(ended());
        };
        let path = temp.clone();
        let format = tokio::task::spawn_blocking(move || sniff(&mut std::fs::File::open(path)?))
            .await
            .map_err(|e| MediaError::Task(e.to_string()))??;
        let Some(format) = format else {
            self.media
                .refused(Refusal::Unsupported { size: self.size })
                .await;
            return Err(MediaError::Unsupported);
        };
        let new = NewMedia {
            id: storage::hex(&std::mem::take(&mut self.hasher).finalize()),
            format,
            name: original_name.and_then(storage::clean_name),
            size: i64::try_from(self.size).unwrap_or(i64::MAX),
            now_ms: self.media.now_ms(),
        };
        let dir = self.media.dir().to_path_buf();
        // The rename and the row change under the store's lock, as deletion does.
        let (media, created) = self
            .media
            .store()
            .call(move |conn| storage::install(conn, &dir, &temp, &new))
            .await??;
        Ok(Stored { media, created })
    }
}

/// Why an upload was refused, as the audit log records it.
#[derive(Debug, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub(super) enum Refusal {
    /// Past `media.max_upload_bytes`.
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Not an accepted type.
    #[serde(rename = "unsupported_type")]
    Unsupported {
        /// Bytes received.
        size: u64,
    },
}
