//! Where media live: a content-addressed file, `<data dir>/media/<sha256>.<ext>`, and its row
//! in the store, which always change together.
//!
//! Ids are exactly a SHA-256 in lowercase hex ([`check_media_id`]), so nothing a client sends
//! ever reaches a path. Uploads are written to temporary files beside their address and
//! renamed into place under the store's lock, the same lock deletion holds, so an upload and a
//! delete of the same bytes can never interleave into a row without a file.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::MediaError;
use super::sniff::Format;
use crate::clock::rfc3339;
use crate::protocol::media::{MediaItem, MediaKind};
use crate::store::StoreError;

/// Temporary upload files are `.upload-<random>.part` in the media directory: the same file
/// system as their final address, so the last step is an atomic rename.
pub(super) const TEMP_PREFIX: &str = ".upload-";
pub(super) const TEMP_SUFFIX: &str = ".part";

/// A temporary file untouched for this long was left by a crash and is swept.
const STALE_TEMP_MS: i64 = 60 * 60 * 1000;

const SELECT_MEDIA: &str = "SELECT id, mime, kind, size, original_name, created_ms, ext FROM media";

/// A row and the extension its file is stored with.
fn row_to_media(r: &rusqlite::Row<'_>) -> rusqlite::Result<(MediaItem, String)> {
    let id: String = r.get(0)?;
    let kind: String = r.get(2)?;
    let kind = MediaKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            format!("unknown media kind {kind:?}").into(),
        )
    })?;
    let size: i64 = r.get(3)?;
    let media = MediaItem {
        url: format!("/media/{id}"),
        media_id: id,
        mime: r.get(1)?,
        kind,
        size: u64::try_from(size).unwrap_or(0),
        original_name: r.get(4)?,
        created_at: rfc3339(r.get(5)?),
    };
    Ok((media, r.get(6)?))
}

/// All rows, newest first.
pub(super) fn list(conn: &Connection) -> Result<Vec<MediaItem>, StoreError> {
    let mut stmt = conn.prepare(&format!("{SELECT_MEDIA} ORDER BY created_ms DESC, id"))?;
    let rows = stmt.query_map([], |r| row_to_media(r).map(|(m, _)| m))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::from)
}

/// One row and its file's extension.
pub(super) fn find(conn: &Connection, id: &str) -> Result<Option<(MediaItem, String)>, StoreError> {
    Ok(conn
        .query_row(&format!("{SELECT_MEDIA} WHERE id = ?1"), [id], row_to_media)
        .optional()?)
}

/// The file of a medium with id `id` stored as `ext`.
pub(super) fn file_of(dir: &Path, id: &str, ext: &str) -> PathBuf {
    dir.join(format!("{id}.{ext}"))
}

/// Deletes a row and its file together (blocking; under the store's lock).
pub(super) fn delete(
    conn: &mut Connection,
    dir: &Path,
    id: &str,
) -> Result<Result<(), MediaError>, StoreError> {
    let tx = conn.transaction()?;
    let ext: Option<String> = tx
        .query_row("DELETE FROM media WHERE id = ?1 RETURNING ext", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(ext) = ext else {
        return Ok(Err(MediaError::NotFound));
    };
    match std::fs::remove_file(file_of(dir, id, &ext)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // The row stays (the transaction rolls back) while the file does.
        Err(e) => return Ok(Err(MediaError::Io(e))),
    }
    tx.commit()?;
    Ok(Ok(()))
}

/// A complete, allowed upload, ready to be given its address.
pub(super) struct NewMedia {
    /// The SHA-256 of the bytes, hex.
    pub id: String,
    /// What the bytes are.
    pub format: Format,
    /// The cleaned upload name.
    pub name: Option<String>,
    /// Size in bytes.
    pub size: i64,
    /// Now (Unix ms).
    pub now_ms: i64,
}

/// Renames `temp` to the address of `new` (unless the same bytes are there already) and adds
/// its row; returns the row and whether it is new (blocking; under the store's lock).
pub(super) fn install(
    conn: &mut Connection,
    dir: &Path,
    temp: &Path,
    new: &NewMedia,
) -> Result<Result<(MediaItem, bool), MediaError>, StoreError> {
    let target = file_of(dir, &new.id, new.format.extension());
    let renamed = if target.exists() {
        false
    } else {
        match std::fs::rename(temp, &target) {
            Ok(()) => true,
            Err(e) => return Ok(Err(MediaError::Io(e))),
        }
    };
    let row = (|| {
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO media (id, kind, mime, ext, size, original_name, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            params![
                new.id,
                new.format.kind().as_str(),
                new.format.mime(),
                new.format.extension(),
                new.size,
                new.name,
                new.now_ms
            ],
        )?;
        let (media, _) = tx.query_row(
            &format!("{SELECT_MEDIA} WHERE id = ?1"),
            [&new.id],
            row_to_media,
        )?;
        tx.commit()?;
        Ok::<_, StoreError>((media, inserted == 1))
    })();
    if row.is_err() && renamed {
        remove_quietly(&target);
    }
    row.map(Ok)
}

/// Media ids are exactly a SHA-256 in lowercase hex: nothing else ever reaches a path.
pub(super) fn check_media_id(id: &str) -> Result<(), MediaError> {
    if id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(MediaError::NotFound)
    }
}

/// The uploaded file name as something safe to show: its last path component, without control
/// or bidirectional-override characters (which can disguise `exe.png` as `gnp.exe`), at most
/// 200 characters.
pub(super) fn clean_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .take(200)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty() && cleaned != "." && cleaned != "..").then(|| cleaned.to_owned())
}

/// Lowercase hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove a media file");
    }
}

/// Removes temporary files left by uploads that a crash interrupted.
pub(super) fn sweep_stale_temps(dir: &Path, now_ms: i64) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let modified_ms = entry
            .metadata()?
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        if now_ms - modified_ms > STALE_TEMP_MS {
            remove_quietly(&entry.path());
        }
    }
    Ok(())
}

/// A temporary file that is removed unless it was renamed away first.
#[derive(Debug)]
pub(super) struct TempFile(pub(super) Option<PathBuf>);

impl TempFile {
    /// Removes the file now (unless it was renamed away).
    pub(super) async fn remove(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = tokio::task::spawn_blocking(move || remove_quietly(&path)).await;
        }
    }
}

impl Drop for TempFile {
    /// The backstop for uploads abandoned without `discard` (the client went away and the
    /// request was cancelled): the file still goes, off the async threads when there are some.
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(move || remove_quietly(&path));
                }
                Err(_) => remove_quietly(&path),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids_are_exactly_lowercase_sha256_hex() {
        let id = "a".repeat(64);
        assert!(check_media_id(&id).is_ok());
        for bad in [
            "A".repeat(64),
            "a".repeat(63),
            "a".repeat(65),
            format!("../{}", "a".repeat(61)),
            format!("{}.png", "a".repeat(60)),
            String::new(),
        ] {
            assert!(check_media_id(&bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn names_are_cleaned_for_display_only() {
        assert_eq!(
            clean_name("C:\\Users\\me\\cat.png").as_deref(),
            Some("cat.png")
        );
        assert_eq!(clean_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(
            clean_name("invoice\u{202E}gnp.exe").as_deref(),
            Some("invoicegnp.exe"),
            "right-to-left override removed"
        );
        assert_eq!(clean_name("a\nb\0c").as_deref(), Some("abc"));
        assert_eq!(clean_name(" .. "), None);
        assert_eq!(clean_name("dir/"), None);
        assert_eq!(clean_name(&"x".repeat(500)).map(|n| n.len()), Some(200));
    }
}
