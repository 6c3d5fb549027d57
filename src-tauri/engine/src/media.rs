//! Media: the pictures, video and sound that scenes show, uploaded by the streamer.
//!
//! What a file is gets decided from its bytes ([`sniff`]), never from its name or the type the
//! client claimed, against a short allowlist: a program named `cat.png` is refused, and a PNG
//! named `song.mp3` is stored as the PNG it is. Files are content-addressed,
//! `<data dir>/media/<sha256>.<ext>`: the same bytes uploaded twice are one file with one id,
//! and ids are unguessable, which is what lets overlay pages load `/media/{id}` without
//! credentials.
//!
//! An upload ([`MediaUpload`]) streams into a temporary file in the media directory while it is
//! hashed and measured against `media.max_upload_bytes`; only a complete, allowed file is
//! renamed to its address. Every refused, broken or abandoned upload removes its temporary
//! file, so nothing of it is left behind.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::audit::{AuditEntry, Outcome};
use crate::clock::rfc3339;
use crate::store::StoreError;
use crate::{Engine, EngineError};

/// The accepted types, as people name them.
pub const ACCEPTED: &str = "png, jpeg, gif, webp, mp4, webm, mp3, ogg, wav";

/// Temporary upload files are `.upload-<random>.part` in the media directory: the same file
/// system as their final address, so the last step is an atomic rename.
const TEMP_PREFIX: &str = ".upload-";
const TEMP_SUFFIX: &str = ".part";

/// A temporary file untouched for this long was left by a crash and is swept.
const STALE_TEMP_MS: i64 = 60 * 60 * 1000;

/// Bytes read from the start of a file to sniff it. Every signature checked lies well inside;
/// only MP3 after an ID3 tag needs a seek further in.
const HEAD_BYTES: u64 = 4096;

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
}

/// What a medium is, for scenes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A picture (png, jpeg, gif, webp).
    Image,
    /// Video (mp4, webm, ogg with Theora).
    Video,
    /// Sound (mp3, ogg, wav, mp4 audio).
    Audio,
}

impl MediaKind {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            "audio" => Some(Self::Audio),
            _ => None,
        }
    }
}

/// An accepted file format, as recognised from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// GIF (87a or 89a).
    Gif,
    /// WebP (RIFF container).
    Webp,
    /// MP4 video (ISO-BMFF with an MP4 brand).
    Mp4,
    /// MP4 audio (ISO-BMFF with brand `M4A ` or `M4B `).
    M4a,
    /// WebM (EBML with DocType `webm`).
    Webm,
    /// MP3 (MPEG audio layer III, bare or after an ID3v2 tag).
    Mp3,
    /// Ogg with an audio codec (Vorbis, Opus, FLAC, Speex).
    Ogg,
    /// Ogg with Theora video.
    Ogv,
    /// WAV (RIFF WAVE).
    Wav,
}

impl Format {
    /// The Content-Type it is served with.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Mp4 => "video/mp4",
            Self::M4a => "audio/mp4",
            Self::Webm => "video/webm",
            Self::Mp3 => "audio/mpeg",
            Self::Ogg => "audio/ogg",
            Self::Ogv => "video/ogg",
            Self::Wav => "audio/wav",
        }
    }

    /// The file extension it is stored with.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Gif => "gif",
            Self::Webp => "webp",
            Self::Mp4 => "mp4",
            Self::M4a => "m4a",
            Self::Webm => "webm",
            Self::Mp3 => "mp3",
            Self::Ogg => "ogg",
            Self::Ogv => "ogv",
            Self::Wav => "wav",
        }
    }

    /// Picture, video or sound.
    pub fn kind(self) -> MediaKind {
        match self {
            Self::Png | Self::Jpeg | Self::Gif | Self::Webp => MediaKind::Image,
            Self::Mp4 | Self::Webm | Self::Ogv => MediaKind::Video,
            Self::M4a | Self::Mp3 | Self::Ogg | Self::Wav => MediaKind::Audio,
        }
    }
}

/// Recognises an accepted format from a file's bytes; `None` for anything else.
///
/// Reads at most a few kilobytes, plus a seek past an ID3 tag (which may hold cover art).
pub fn sniff<R: Read + Seek>(file: &mut R) -> std::io::Result<Option<Format>> {
    let mut head = Vec::new();
    file.rewind()?;
    file.by_ref().take(HEAD_BYTES).read_to_end(&mut head)?;
    if let Some(format) = sniff_head(&head) {
        return Ok(Some(format));
    }
    let audio_at = id3_end(&head).unwrap_or(0);
    Ok(mpeg_audio_at(file, audio_at)?.then_some(Format::Mp3))
}

/// The signatures that fit in the first few kilobytes.
fn sniff_head(h: &[u8]) -> Option<Format> {
    if h.starts_with(b"\x89PNG\r\n\x1a\n") {
        // The first chunk of every PNG is IHDR.
        return (h.get(12..16) == Some(b"IHDR")).then_some(Format::Png);
    }
    if h.starts_with(&[0xFF, 0xD8, 0xFF]) {
        // Start of image, then a marker (APPn, DQT, SOFn, COM...), never a fill byte.
        return h
            .get(3)
            .is_some_and(|&m| (0xC0..0xFF).contains(&m))
            .then_some(Format::Jpeg);
    }
    if h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a") {
        return Some(Format::Gif);
    }
    if h.starts_with(b"RIFF") {
        return riff(h);
    }
    if h.starts_with(b"OggS") {
        return ogg(h);
    }
    if h.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return (ebml_doctype(h)? == b"webm").then_some(Format::Webm);
    }
    if h.get(4..8) == Some(b"ftyp") {
        return iso_bmff(h);
    }
    None
}

/// RIFF is a container for many things; only `WEBP` and `WAVE` forms are accepted.
fn riff(h: &[u8]) -> Option<Format> {
    let first_chunk = h.get(12..16)?;
    match h.get(8..12)? {
        b"WEBP" => matches!(first_chunk, b"VP8 " | b"VP8L" | b"VP8X").then_some(Format::Webp),
        // Usually `fmt `, but `JUNK`, `LIST` or `bext` may come first; any chunk id is 4 ASCII
        // characters.
        b"WAVE" => first_chunk
            .iter()
            .all(|b| (0x20..0x7F).contains(b))
            .then_some(Format::Wav),
        _ => None,
    }
}

/// Ogg: the first page starts a stream (BOS), and its first packet names the codec.
fn ogg(h: &[u8]) -> Option<Format> {
    let version = *h.get(4)?;
    let header_type = *h.get(5)?;
    if version != 0 || header_type & 0x02 == 0 {
        return None;
    }
    let segments = usize::from(*h.get(26)?);
    let packet = h.get(27 + segments..)?;
    let audio: [&[u8]; 4] = [b"\x01vorbis", b"OpusHead", b"\x7fFLAC", b"Speex   "];
    if audio.iter().any(|sig| packet.starts_with(sig)) {
        Some(Format::Ogg)
    } else if packet.starts_with(b"\x80theora") {
        Some(Format::Ogv)
    } else {
        None
    }
}

/// An EBML variable-length integer at `at`: (value without its length marker, length).
fn ebml_vint(h: &[u8], at: usize) -> Option<(u64, usize)> {
    let first = *h.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mut value = u64::from(first) & (0xFF >> len);
    for &b in h.get(at + 1..at + len)? {
        value = (value << 8) | u64::from(b);
    }
    Some((value, len))
}

/// The DocType of an EBML header (`webm`, `matroska`, ...).
fn ebml_doctype(h: &[u8]) -> Option<&[u8]> {
    let (size, len) = ebml_vint(h, 4)?;
    let start = 4 + len;
    let end = start.checked_add(usize::try_from(size).ok()?)?.min(h.len());
    let mut at = start;
    while at < end {
        // Element ids keep their marker bits; their length is read the same way.
        let id_len = h.get(at)?.leading_zeros() as usize + 1;
        if id_len > 4 {
            return None;
        }
        let id = h.get(at..at + id_len)?;
        let (size, size_len) = ebml_vint(h, at + id_len)?;
        let body = at + id_len + size_len;
        let next = body.checked_add(usize::try_from(size).ok()?)?;
        if id == [0x42, 0x82] {
            return h.get(body..next);
        }
        at = next;
    }
    None
}

/// ISO-BMFF (`ftyp` first): MP4 if its brands say so. HEIF/AVIF pictures, QuickTime and 3GPP
/// share the container but are not MP4.
fn iso_bmff(h: &[u8]) -> Option<Format> {
    const IMAGE: [&[u8; 4]; 10] = [
        b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
    ];
    const VIDEO: [&[u8; 4]; 18] = [
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9", b"mp41",
        b"mp42", b"mp71", b"avc1", b"dash", b"M4V ", b"M4VP", b"MSNV", b"mmp4",
    ];
    let size = usize::try_from(u32::from_be_bytes(h.get(0..4)?.try_into().ok()?)).ok()?;
    if size < 16 {
        return None;
    }
    let major = h.get(8..12)?;
    let compatible = h.get(16..size.min(h.len()))?.chunks_exact(4);
    let brands: Vec<&[u8]> = std::iter::once(major).chain(compatible).collect();
    if brands.iter().any(|b| IMAGE.iter().any(|i| b == i))
        || major == b"qt  "
        || major.starts_with(b"3g")
    {
        return None;
    }
    if major == b"M4A " || major == b"M4B " {
        return Some(Format::M4a);
    }
    brands
        .iter()
        .any(|b| VIDEO.iter().any(|v| b == v))
        .then_some(Format::Mp4)
}

/// Where the audio starts after an ID3v2 tag, if the file starts with one.
fn id3_end(h: &[u8]) -> Option<u64> {
    if !h.starts_with(b"ID3") {
        return None;
    }
    let header = h.get(3..10)?;
    let (major, minor, flags, size) = (header[0], header[1], header[2], &header[3..7]);
    // Versions 2.2-2.4; the size is "syncsafe": 7 bits per byte.
    if !(2..=4).contains(&major) || minor == 0xFF || size.iter().any(|&b| b >= 0x80) {
        return None;
    }
    let size = size.iter().fold(0u64, |acc, &b| (acc << 7) | u64::from(b));
    let footer = if major == 4 && flags & 0x10 != 0 {
        10
    } else {
        0
    };
    Some(10 + size + footer)
}

/// Length of the MPEG-1/2/2.5 layer III frame whose header is `h`, if it is one.
fn mp3_frame_len(h: [u8; 4]) -> Option<u64> {
    const BITRATES_V1: [u64; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const BITRATES_V2: [u64; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 0b11; // 0 = 2.5, 1 = reserved, 2 = MPEG-2, 3 = MPEG-1
    let layer = (h[1] >> 1) & 0b11; // 1 = layer III; 0 (AAC's ADTS) is not MPEG audio
    let bitrate = usize::from(h[2] >> 4);
    let rate = usize::from((h[2] >> 2) & 0b11);
    let padding = u64::from((h[2] >> 1) & 1);
    if version == 1 || layer != 1 || bitrate == 0 || bitrate == 15 || rate == 3 || h[3] & 3 == 2 {
        return None;
    }
    let (kbps, hz, factor) = match version {
        3 => (
            BITRATES_V1[bitrate],
            [44_100, 48_000, 32_000][rate],
            144_000,
        ),
        2 => (BITRATES_V2[bitrate], [22_050, 24_000, 16_000][rate], 72_000),
        _ => (BITRATES_V2[bitrate], [11_025, 12_000, 8_000][rate], 72_000),
    };
    Some(factor * kbps / hz + padding)
}

/// Whether MP3 frames start at `at`: a frame header and a second one right after it. Two bytes
/// of frame sync alone turn up in random data far too often, and accepting a lone header at the
/// end of a file would let an ID3 tag wrap anything (an executable) into "audio/mpeg".
fn mpeg_audio_at<R: Read + Seek>(file: &mut R, at: u64) -> std::io::Result<bool> {
    let mut header = [0u8; 4];
    file.seek(SeekFrom::Start(at))?;
    if read_up_to(file, &mut header)? < 4 {
        return Ok(false);
    }
    let Some(len) = mp3_frame_len(header) else {
        return Ok(false);
    };
    file.seek(SeekFrom::Start(at + len))?;
    let mut next = [0u8; 4];
    Ok(read_up_to(file, &mut next)? == 4 && mp3_frame_len(next).is_some() && next[1] == header[1])
}

fn read_up_to<R: Read>(file: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// A stored medium, as listed and returned by uploads.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Media {
    /// Id: the SHA-256 of the bytes, 64 lowercase hex digits.
    pub media_id: String,
    /// Where pages load it: `/media/{mediaId}`.
    pub url: String,
    /// Content-Type, from the bytes.
    pub mime: String,
    /// Picture, video or sound.
    pub kind: MediaKind,
    /// Size in bytes.
    pub size: u64,
    /// The name it was uploaded with, cleaned; informational only.
    pub original_name: Option<String>,
    /// First uploaded (RFC 3339).
    pub created_at: String,
}

/// The result of an upload.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The medium.
    pub media: Media,
    /// False when the same bytes were stored already (nothing new was written).
    pub created: bool,
}

/// A stored medium opened for reading.
#[derive(Debug)]
pub struct MediaFile {
    /// The medium.
    pub media: Media,
    /// The open file.
    pub file: tokio::fs::File,
    /// Its length in bytes.
    pub len: u64,
}

const SELECT_MEDIA: &str = "SELECT id, mime, kind, size, original_name, created_ms, ext FROM media";

fn row_to_media(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Media, String)> {
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
    let media = Media {
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

/// Media ids are exactly a SHA-256 in lowercase hex: nothing else ever reaches a path.
fn check_media_id(id: &str) -> Result<(), MediaError> {
    if id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(MediaError::NotFound)
    }
}

/// The uploaded file name as something safe to show: its last path component, without control
/// or bidirectional-override characters (which can disguise `exe.png` as `gnp.exe`), at most
/// 200 characters.
fn clean_name(name: &str) -> Option<String> {
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

fn hex(bytes: &[u8]) -> String {
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
fn sweep_stale_temps(dir: &Path, now_ms: i64) -> std::io::Result<()> {
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
struct TempFile(Option<PathBuf>);

impl TempFile {
    async fn remove(&mut self) {
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

/// An upload in progress: bytes go to a temporary file while they are hashed and counted.
///
/// End it with [`MediaUpload::finish`] or [`MediaUpload::discard`]; dropping it discards too.
#[derive(Debug)]
pub struct MediaUpload {
    engine: Engine,
    // Declared before `temp` so the handle is closed before the file is removed (Windows
    // cannot remove an open file).
    file: Option<tokio::fs::File>,
    temp: TempFile,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl MediaUpload {
    /// Appends bytes. Going past `media.max_upload_bytes` discards the upload at once.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), EngineError> {
        let Some(file) = self.file.as_mut() else {
            return Err(MediaError::Io(std::io::Error::other("the upload has ended")).into());
        };
        let size = self.size + chunk.len() as u64;
        if size > self.limit {
            self.discard().await;
            let limit = self.limit;
            self.engine
                .media_refused("too_large", serde_json::json!({ "limit": limit }))
                .await;
            return Err(MediaError::TooLarge { limit }.into());
        }
        if let Err(e) = file.write_all(chunk).await {
            self.discard().await;
            return Err(MediaError::Io(e).into());
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
    pub async fn finish(mut self, original_name: Option<&str>) -> Result<Stored, EngineError> {
        let result = self.commit(original_name).await;
        // After a commit the temporary file has been renamed away; after a refusal it goes.
        self.discard().await;
        let stored = result?;
        let media = &stored.media;
        self.engine
            .audit()
            .record(
                AuditEntry::new("streamer", "media.upload", Outcome::Ok)
                    .target(media.media_id.clone())
                    .detail(serde_json::json!({
                        "kind": media.kind,
                        "mime": media.mime,
                        "size": media.size,
                        "new": stored.created,
                    })),
            )
            .await?;
        Ok(stored)
    }

    async fn commit(&mut self, original_name: Option<&str>) -> Result<Stored, EngineError> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| MediaError::Io(std::io::Error::other("the upload has ended")))?;
        file.flush().await.map_err(MediaError::Io)?;
        // On disk before it gets its final name: a crash never leaves a torn file at an address.
        file.sync_data().await.map_err(MediaError::Io)?;
        drop(file.into_std().await);
        let Some(temp) = self.temp.0.clone() else {
            return Err(MediaError::Io(std::io::Error::other("the upload has ended")).into());
        };
        let path = temp.clone();
        let format = tokio::task::spawn_blocking(move || sniff(&mut std::fs::File::open(path)?))
            .await
            .map_err(|e| EngineError::Task(e.to_string()))?
            .map_err(MediaError::Io)?;
        let Some(format) = format else {
            self.engine
                .media_refused("unsupported_type", serde_json::json!({ "size": self.size }))
                .await;
            return Err(MediaError::Unsupported.into());
        };
        let id = hex(&std::mem::take(&mut self.hasher).finalize());
        let target = self
            .engine
            .media_dir()
            .join(format!("{id}.{}", format.extension()));
        let name = original_name.and_then(clean_name);
        let size = i64::try_from(self.size).unwrap_or(i64::MAX);
        let now = self.engine.now_ms();
        // The rename and the row change under the store's lock, as deletion does: an upload and
        // a delete of the same bytes can never interleave into a row without a file.
        let (media, created) = self
            .engine
            .store()
            .call(move |conn| {
                let renamed = if target.exists() {
                    false
                } else {
                    match std::fs::rename(&temp, &target) {
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
                            id,
                            format.kind().as_str(),
                            format.mime(),
                            format.extension(),
                            size,
                            name,
                            now
                        ],
                    )?;
                    let (media, _) =
                        tx.query_row(&format!("{SELECT_MEDIA} WHERE id = ?1"), [&id], |r| {
                            row_to_media(r)
                        })?;
                    tx.commit()?;
                    Ok::<_, StoreError>((media, inserted == 1))
                })();
                if row.is_err() && renamed {
                    remove_quietly(&target);
                }
                row.map(Ok)
            })
            .await??;
        Ok(Stored { media, created })
    }
}

impl Engine {
    /// The directory holding media files.
    pub fn media_dir(&self) -> PathBuf {
        self.data_dir().join("media")
    }

    /// Starts an upload: a new temporary file in the media directory.
    pub async fn media_upload_begin(&self) -> Result<MediaUpload, EngineError> {
        let dir = self.media_dir();
        let path = dir.join(format!(
            "{TEMP_PREFIX}{}{TEMP_SUFFIX}",
            crate::random::token(12)?
        ));
        let now = self.now_ms();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            if let Err(e) = sweep_stale_temps(&dir, now) {
                tracing::warn!(error = %e, "could not sweep old temporary media files");
            }
            Ok::<_, std::io::Error>(())
        })
        .await
        .map_err(|e| EngineError::Task(e.to_string()))?
        .map_err(MediaError::Io)?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(MediaError::Io)?;
        Ok(MediaUpload {
            engine: self.clone(),
            file: Some(file),
            temp: TempFile(Some(path)),
            hasher: Sha256::new(),
            size: 0,
            limit: self.config().media.max_upload_bytes,
        })
    }

    /// Records a refused upload. The refusal itself is what the caller reports, so a failure
    /// to record it is logged rather than returned.
    async fn media_refused(&self, reason: &str, mut detail: serde_json::Value) {
        if let Some(map) = detail.as_object_mut() {
            map.insert("reason".into(), reason.into());
        }
        let entry = AuditEntry::new("streamer", "media.upload", Outcome::Denied).detail(detail);
        if let Err(e) = self.audit().record(entry).await {
            tracing::warn!(error = %e, "could not record a refused media upload");
        }
    }

    /// All media, newest first.
    pub async fn media_list(&self) -> Result<Vec<Media>, EngineError> {
        Ok(self
            .store()
            .call(|conn| {
                let mut stmt =
                    conn.prepare(&format!("{SELECT_MEDIA} ORDER BY created_ms DESC, id"))?;
                let rows = stmt.query_map([], |r| row_to_media(r).map(|(m, _)| m))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::from)
            })
            .await?)
    }

    async fn media_row(&self, id: &str) -> Result<(Media, String), EngineError> {
        check_media_id(id)?;
        let id = id.to_owned();
        self.store()
            .call(move |conn| {
                Ok(conn
                    .query_row(&format!("{SELECT_MEDIA} WHERE id = ?1"), [id], row_to_media)
                    .optional()?)
            })
            .await?
            .ok_or_else(|| MediaError::NotFound.into())
    }

    /// One medium.
    pub async fn media_get(&self, id: &str) -> Result<Media, EngineError> {
        Ok(self.media_row(id).await?.0)
    }

    /// Opens a medium's file for serving.
    pub async fn media_open(&self, id: &str) -> Result<MediaFile, EngineError> {
        let (media, ext) = self.media_row(id).await?;
        let path = self.media_dir().join(format!("{}.{ext}", media.media_id));
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(id = %media.media_id, "a media file is missing from the media directory");
                return Err(MediaError::NotFound.into());
            }
            Err(e) => return Err(MediaError::Io(e).into()),
        };
        let len = file.metadata().await.map_err(MediaError::Io)?.len();
        Ok(MediaFile { media, file, len })
    }

    /// Deletes a medium: its row and its file go together.
    pub async fn media_delete(&self, id: &str) -> Result<(), EngineError> {
        check_media_id(id)?;
        let dir = self.media_dir();
        let target = id.to_owned();
        self.store()
            .call(move |conn| {
                let tx = conn.transaction()?;
                let ext: Option<String> = tx
                    .query_row(
                        "DELETE FROM media WHERE id = ?1 RETURNING ext",
                        [&target],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(ext) = ext else {
                    return Ok(Err(MediaError::NotFound));
                };
                match std::fs::remove_file(dir.join(format!("{target}.{ext}"))) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    // The row stays (the transaction rolls back) while the file does.
                    Err(e) => return Ok(Err(MediaError::Io(e))),
                }
                tx.commit()?;
                Ok(Ok(()))
            })
            .await??;
        self.audit()
            .record(AuditEntry::new("streamer", "media.delete", Outcome::Ok).target(id))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn sniffed(bytes: &[u8]) -> Option<Format> {
        sniff(&mut Cursor::new(bytes)).expect("reading from memory cannot fail")
    }

    /// A frame header for MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding: 417 bytes a frame.
    const MP3_HEADER: [u8; 4] = [0xFF, 0xFB, 0x90, 0x64];

    fn mp3_frames(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.extend_from_slice(&MP3_HEADER);
            out.resize(out.len() + 413, 0);
        }
        out
    }

    fn id3(tag_body: usize) -> Vec<u8> {
        let size = u32::try_from(tag_body).expect("small");
        let mut out = b"ID3\x04\x00\x00".to_vec();
        out.extend(
            (0..4)
                .rev()
                .map(|i| u8::try_from((size >> (7 * i)) & 0x7F).expect("7 bits")),
        );
        out.resize(10 + tag_body, 0);
        out
    }

    #[test]
    fn png_needs_its_signature_and_ihdr() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&[0; 17]);
        assert_eq!(sniffed(&png), Some(Format::Png));
        png[12..16].copy_from_slice(b"IDAT");
        assert_eq!(
            sniffed(&png),
            None,
            "a PNG signature without IHDR is not a PNG"
        );
    }

    #[test]
    fn jpeg_needs_a_marker_after_start_of_image() {
        assert_eq!(
            sniffed(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"),
            Some(Format::Jpeg)
        );
        assert_eq!(sniffed(b"\xFF\xD8\xFF\xDB\x00\x43"), Some(Format::Jpeg));
        assert_eq!(
            sniffed(b"\xFF\xD8\xFF\xFF"),
            None,
            "fill byte, not a marker"
        );
        assert_eq!(sniffed(b"\xFF\xD8\xFF"), None, "truncated");
    }

    #[test]
    fn gif_both_versions() {
        assert_eq!(sniffed(b"GIF87a\x01\x00\x01\x00"), Some(Format::Gif));
        assert_eq!(sniffed(b"GIF89a\x01\x00\x01\x00"), Some(Format::Gif));
        assert_eq!(sniffed(b"GIF90a\x01\x00\x01\x00"), None);
    }

    #[test]
    fn riff_wave_and_riff_webp_are_told_apart() {
        assert_eq!(
            sniffed(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"),
            Some(Format::Wav)
        );
        assert_eq!(
            sniffed(b"RIFF\x24\x00\x00\x00WEBPVP8 \x10\x00\x00\x00"),
            Some(Format::Webp)
        );
        assert_eq!(
            sniffed(b"RIFF\x24\x00\x00\x00WEBPVP8L\x10\x00\x00\x00"),
            Some(Format::Webp)
        );
        assert_eq!(
            sniffed(b"RIFF\x24\x00\x00\x00WEBPfmt \x10\x00\x00\x00"),
            None,
            "a WEBP form must start with a VP8 chunk"
        );
        assert_eq!(
            sniffed(b"RIFF\x24\x00\x00\x00AVI LIST\x10\x00\x00\x00"),
            None,
            "AVI is RIFF too, and not accepted"
        );
    }

    #[test]
    fn mp4_is_decided_by_its_ftyp_brands() {
        let ftyp = |major: &[u8; 4], compatible: &[&[u8; 4]]| {
            let size = 16 + 4 * compatible.len();
            let mut out = u32::try_from(size).expect("small").to_be_bytes().to_vec();
            out.extend_from_slice(b"ftyp");
            out.extend_from_slice(major);
            out.extend_from_slice(&[0, 0, 2, 0]);
            for brand in compatible {
                out.extend_from_slice(*brand);
            }
            out.extend_from_slice(b"\0\0\0\x08free");
            out
        };
        assert_eq!(
            sniffed(&ftyp(b"isom", &[b"isom", b"iso2", b"avc1", b"mp41"])),
            Some(Format::Mp4)
        );
        assert_eq!(sniffed(&ftyp(b"mp42", &[])), Some(Format::Mp4));
        assert_eq!(
            sniffed(&ftyp(b"XAVC", &[b"XAVC", b"mp42", b"iso2"])),
            Some(Format::Mp4),
            "an unknown major brand compatible with MP4"
        );
        assert_eq!(
            sniffed(&ftyp(b"M4A ", &[b"M4A ", b"mp42", b"isom"])),
            Some(Format::M4a)
        );
        assert_eq!(
            sniffed(&ftyp(b"avif", &[b"avif", b"mif1", b"miaf"])),
            None,
            "AVIF is a picture in the same container"
        );
        assert_eq!(
            sniffed(&ftyp(b"heic", &[b"mif1", b"heic"])),
            None,
            "HEIC likewise"
        );
        assert_eq!(sniffed(&ftyp(b"qt  ", &[b"qt  "])), None, "QuickTime");
        assert_eq!(sniffed(&ftyp(b"3gp4", &[b"isom", b"3gp4"])), None, "3GPP");
        assert_eq!(
            sniffed(&ftyp(b"abcd", &[b"efgh"])),
            None,
            "no MP4 brand at all"
        );
        assert_eq!(
            sniffed(b"\0\0\0\x08ftypisom"),
            None,
            "box too small for brands"
        );
    }

    #[test]
    fn webm_is_ebml_with_doctype_webm() {
        let ebml = |doctype: &[u8]| {
            // EBMLVersion 1, then DocType.
            let mut body = vec![0x42, 0x86, 0x81, 0x01, 0x42, 0x82];
            body.push(0x80 | u8::try_from(doctype.len()).expect("short"));
            body.extend_from_slice(doctype);
            let mut out = vec![0x1A, 0x45, 0xDF, 0xA3];
            out.push(0x80 | u8::try_from(body.len()).expect("short"));
            out.extend(body);
            out.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]);
            out
        };
        assert_eq!(sniffed(&ebml(b"webm")), Some(Format::Webm));
        assert_eq!(
            sniffed(&ebml(b"matroska")),
            None,
            "Matroska shares EBML but is not accepted"
        );
        assert_eq!(
            sniffed(&[0x1A, 0x45, 0xDF, 0xA3, 0x00]),
            None,
            "broken size"
        );
    }

    #[test]
    fn ogg_needs_a_first_page_and_a_known_codec() {
        let page = |header_type: u8, packet: &[u8]| {
            let mut out = b"OggS\0".to_vec();
            out.push(header_type);
            out.resize(26, 0);
            out.push(1);
            out.push(u8::try_from(packet.len()).expect("short"));
            out.extend_from_slice(packet);
            out
        };
        assert_eq!(sniffed(&page(2, b"\x01vorbis\0\0\0\0")), Some(Format::Ogg));
        assert_eq!(sniffed(&page(2, b"OpusHead\x01\x02")), Some(Format::Ogg));
        assert_eq!(sniffed(&page(2, b"\x80theora\x03\x02")), Some(Format::Ogv));
        assert_eq!(
            sniffed(&page(0, b"\x01vorbis\0\0\0\0")),
            None,
            "not a first page"
        );
        assert_eq!(
            sniffed(&page(2, b"\x80kate\0\0\0")),
            None,
            "not audio or video"
        );
    }

    #[test]
    fn mp3_as_bare_frames_needs_two_in_a_row() {
        assert_eq!(sniffed(&mp3_frames(3)), Some(Format::Mp3));
        assert_eq!(
            sniffed(&mp3_frames(1)),
            None,
            "a lone frame header proves nothing (an ID3 tag could wrap anything before it)"
        );
        let mut broken = mp3_frames(2);
        broken[417] = 0x00;
        assert_eq!(
            sniffed(&broken),
            None,
            "frame sync followed by garbage is chance, not MP3"
        );
        let mut adts = mp3_frames(2);
        adts[1] = 0xF1; // AAC ADTS: sync, but layer bits 00
        assert_eq!(sniffed(&adts), None, "AAC in ADTS is not MP3");
    }

    #[test]
    fn mp3_after_an_id3_tag_is_checked_past_the_tag() {
        let mut file = id3(100);
        file.extend(mp3_frames(2));
        assert_eq!(sniffed(&file), Some(Format::Mp3));

        // A tag bigger than the sniffed head, as with embedded cover art.
        let mut big = id3(20_000);
        big.extend(mp3_frames(2));
        assert_eq!(sniffed(&big), Some(Format::Mp3));

        let mut not_audio = id3(100);
        not_audio.extend_from_slice(b"\x7fELF\x02\x01\x01\0");
        assert_eq!(
            sniffed(&not_audio),
            None,
            "an ID3 tag in front of anything is not MP3"
        );
        assert_eq!(sniffed(&id3(100)), None, "a tag with nothing after it");
        let mut bad_size = id3(100);
        bad_size[6] = 0x80;
        bad_size.extend(mp3_frames(2));
        assert_eq!(sniffed(&bad_size), None, "sizes are syncsafe");
    }

    #[test]
    fn executables_scripts_and_empty_files_are_refused() {
        assert_eq!(
            sniffed(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0"),
            None
        );
        assert_eq!(sniffed(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0"), None);
        assert_eq!(
            sniffed(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            None
        );
        assert_eq!(sniffed(b"<!DOCTYPE html><script>alert(1)</script>"), None);
        assert_eq!(sniffed(b""), None);
    }

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
