//! Media routes: uploads and the library for the streamer (`/api/media`), and `/media/{id}`
//! for overlay pages.
//!
//! `/media/{id}` needs no credentials: overlay pages in OBS cannot send any, and an id is the
//! SHA-256 of the file, so it cannot be guessed. Files are immutable at their address, hence the
//! year-long cache; byte ranges are served so that OBS can seek in videos.

use std::io::SeekFrom;

use axum::body::{Body, Bytes};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use futures_util::Stream;
use stagehand_engine::media::{MediaFile, MediaUpload};
use stagehand_protocol::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::auth::Streamer;
use crate::error::ApiError;
use crate::state::AppState;

/// The media routes; the upload's body limit comes from `state`'s config.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/api/media",
            get(list).post(upload).layer(upload_body_limit(state)),
        )
        .route("/api/media/{id}", delete(delete_one))
        .route("/media/{id}", get(serve))
}

/// Room for the multipart framing around the file: boundaries and part headers.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Bytes read from disk per body chunk.
const CHUNK: u64 = 64 * 1024;

/// The body limit of the upload route: the file limit plus the framing. The engine enforces
/// the file limit itself; this one stops a body that is mostly something else.
fn upload_body_limit(state: &AppState) -> DefaultBodyLimit {
    let max = state
        .engine
        .config()
        .media
        .max_upload_bytes
        .saturating_add(MULTIPART_OVERHEAD);
    DefaultBodyLimit::max(usize::try_from(max).unwrap_or(usize::MAX))
}

/// `POST /api/media` — multipart with one field, `file`. 201 when stored, 200 when the same
/// bytes were stored already.
pub async fn upload(
    _: Streamer,
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart?;
    let mut upload = None;
    let mut name = None;
    let received = receive(&state, &mut multipart, &mut upload, &mut name).await;
    let upload = match (received, upload) {
        (Ok(()), Some(upload)) => upload,
        (Ok(()), None) => {
            return Err(ApiError::new(
                ErrorCode::MissingFile,
                "send the file as a multipart/form-data field named `file`",
            ));
        }
        (Err(e), Some(mut upload)) => {
            upload.discard().await;
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    };
    let stored = upload.finish(name.as_deref()).await?;
    let status = if stored.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored.media)).into_response())
}

/// Reads the form, streaming the `file` field into an upload. The caller discards the upload
/// when this fails part-way.
async fn receive(
    state: &AppState,
    multipart: &mut Multipart,
    upload: &mut Option<MediaUpload>,
    name: &mut Option<String>,
) -> Result<(), ApiError> {
    while let Some(mut field) = multipart.next_field().await? {
        if field.name() != Some("file") {
            return Err(ApiError::malformed(
                "unexpected form field; send one field named `file`",
            ));
        }
        if upload.is_some() {
            return Err(ApiError::malformed("send one file per upload"));
        }
        *name = field.file_name().map(str::to_owned);
        let upload = upload.insert(state.engine.media_upload_begin().await?);
        while let Some(chunk) = field.chunk().await? {
            upload.write(&chunk).await?;
        }
    }
    Ok(())
}

/// `GET /api/media`
pub async fn list(
    _: Streamer,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let media = state.engine.media_list().await?;
    Ok(Json(serde_json::json!({ "media": media })))
}

/// `DELETE /api/media/{id}`
pub async fn delete_one(
    _: Streamer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.media_delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum ByteRange {
    /// No usable range: the whole file (a server may ignore what it does not support).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A range wholly past the end.
    Unsatisfiable,
}

/// Parses a single `bytes=` range against a file of `len` bytes. Several ranges are answered
/// with the whole file, which RFC 9110 allows and media players never ask for.
fn parse_range(value: &str, len: u64) -> ByteRange {
    let Some((unit, spec)) = value.trim().split_once('=') else {
        return ByteRange::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') || len == 0 {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), number(first), number(last)) {
        // `-n`: the last n bytes.
        (true, _, Some(0)) => ByteRange::Unsatisfiable,
        (true, _, Some(n)) => ByteRange::Part {
            start: len.saturating_sub(n),
            end: len - 1,
        },
        (false, Some(start), _) if start >= len => ByteRange::Unsatisfiable,
        // `a-`: from a to the end.
        (false, Some(start), None) if last.is_empty() => ByteRange::Part {
            start,
            end: len - 1,
        },
        (false, Some(start), Some(end)) if end >= start => ByteRange::Part {
            start,
            end: end.min(len - 1),
        },
        _ => ByteRange::Whole,
    }
}

/// Whether a header listing entity tags (`If-None-Match`) names `etag`.
fn lists_etag(headers: &HeaderMap, name: header::HeaderName, etag: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// The file's bytes from where it is positioned, `count` of them, a chunk at a time.
fn file_body(
    file: tokio::fs::File,
    count: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0; usize::try_from(left.min(CHUNK)).unwrap_or(64 * 1024)];
        match file.read(&mut buf).await {
            Ok(0) => Some((Err(std::io::ErrorKind::UnexpectedEof.into()), (file, 0))),
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    })
}

/// `GET /media/{id}` — the file, with its sniffed type; ranges for seeking.
pub async fn serve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let MediaFile {
        media,
        mut file,
        len,
    } = state.engine.media_open(&id).await?;
    let etag = format!("\"{}\"", media.media_id);
    let mut response = Response::new(Body::empty());
    let out = response.headers_mut();
    // The type comes from the sniffer's table; were the row damaged, the bytes would go out as
    // opaque data, never sniffed.
    let content_type = HeaderValue::from_str(&media.mime)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    out.insert(header::CONTENT_TYPE, content_type);
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    if lists_etag(&headers, header::IF_NONE_MATCH, &etag) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(response);
    }
    // A range applies only to the version the client has (If-Range); ours never changes, so
    // any other validator means "send it all".
    let range_applies = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag));
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) if range_applies => parse_range(value, len),
        _ => ByteRange::Whole,
    };
    let (start, count) = match range {
        ByteRange::Whole => (0, len),
        ByteRange::Part { start, end } => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let value = format!("bytes {start}-{end}/{len}");
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            (start, end - start + 1)
        }
        ByteRange::Unsatisfiable => {
            let mut refused = ApiError::new(
                ErrorCode::RangeNotSatisfiable,
                format!("the range is past the end of this {len}-byte file"),
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                refused.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(refused);
        }
    };
    if start > 0 {
        file.seek(SeekFrom::Start(start)).await.map_err(|e| {
            ApiError::from(stagehand_engine::EngineError::Media(
                stagehand_engine::media::MediaError::Io(e),
            ))
        })?;
    }
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    *response.body_mut() = Body::from_stream(file_body(file, count));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_in_every_form() {
        let part = |start, end| ByteRange::Part { start, end };
        assert_eq!(parse_range("bytes=0-99", 1000), part(0, 99));
        assert_eq!(parse_range("bytes=500-", 1000), part(500, 999));
        assert_eq!(parse_range("bytes=-100", 1000), part(900, 999));
        assert_eq!(
            parse_range("bytes=-5000", 1000),
            part(0, 999),
            "a suffix longer than the file is the whole file"
        );
        assert_eq!(
            parse_range("bytes=990-2000", 1000),
            part(990, 999),
            "the end is clamped"
        );
        assert_eq!(
            parse_range("Bytes = 1-1", 1000),
            part(1, 1),
            "the unit is case-insensitive"
        );
        assert_eq!(parse_range("bytes=1000-", 1000), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), ByteRange::Unsatisfiable);
    }

    #[test]
    fn ranges_we_do_not_serve_fall_back_to_the_whole_file() {
        for value in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=+1-2",
            "bytes=a-b",
            "bytes=-",
            "bytes",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse_range(value, 1000), ByteRange::Whole, "{value}");
        }
    }
}
