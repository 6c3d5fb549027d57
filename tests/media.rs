//! Media uploads: the type comes from the bytes, refusals leave nothing behind, files are
//! content-addressed and served with ranges.

use std::path::Path;
use std::process::Command;

use reqwest::multipart::{Form, Part};
use support::{Options, TestApp, error_code};

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A real 2×2 RGB PNG, pixel data in one stored (uncompressed) deflate block.
fn png() -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&2u32.to_be_bytes());
    ihdr.extend_from_slice(&2u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // Each row: filter byte 0, then RGB pixels.
    let raw = [0u8, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255];
    let len = u16::try_from(raw.len()).unwrap();
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    let (a, b) = raw.iter().fold((1u32, 0u32), |(a, b), &x| {
        let a = (a + u32::from(x)) % 65_521;
        (a, (b + a) % 65_521)
    });
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    png_chunk(&mut out, b"IDAT", &zlib);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A real WAV file: 8 kHz mono 8-bit PCM, `samples` bytes of a sawtooth, `total` bytes long.
fn wav(total: usize) -> Vec<u8> {
    let samples = total - 44;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(total - 8).unwrap().to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&u32::try_from(samples).unwrap().to_le_bytes());
    out.extend((0..samples).map(|i| u8::try_from(i % 251).unwrap()));
    out
}

/// The start of this very test binary: a real executable (ELF, PE or Mach-O).
fn executable() -> Vec<u8> {
    let mut bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    bytes.truncate(64 * 1024);
    bytes
}

async fn upload(app: &TestApp, bytes: Vec<u8>, name: &str, claimed: &str) -> reqwest::Response {
    let part = Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(claimed)
        .unwrap();
    app.post_as_streamer("/api/media")
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

/// Every file in the media directory (temporary ones included).
fn files_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read the media dir: {e}"),
    }
}

fn media_dir(app: &TestApp) -> std::path::PathBuf {
    app.data_dir().join("media")
}

#[tokio::test]
async fn a_png_named_mp3_is_stored_and_served_as_png() {
    let app = TestApp::start().await;
    let bytes = png();
    let response = upload(&app, bytes.clone(), "song.mp3", "audio/mpeg").await;
    assert_eq!(response.status(), 201);
    let stored: serde_json::Value = response.json().await.unwrap();
    let id = stored["mediaId"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64, "a SHA-256 in hex: {stored}");
    assert_eq!(stored["url"], format!("/media/{id}"));
    assert_eq!(
        stored["mime"], "image/png",
        "the bytes decide, not the name or the claimed type"
    );
    assert_eq!(stored["kind"], "image");
    assert_eq!(stored["size"], bytes.len());
    assert_eq!(
        stored["originalName"], "song.mp3",
        "the name is kept, for people"
    );
    assert_eq!(
        files_in(&media_dir(&app)),
        vec![format!("{id}.png")],
        "stored under its content address with the sniffed extension"
    );

    // Served without credentials: overlay pages cannot send any.
    let served = app.get(&format!("/media/{id}")).send().await.unwrap();
    assert_eq!(served.status(), 200);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"),
        "content-addressed files never change"
    );
    assert_eq!(served.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let list: serde_json::Value = app.get_json("/api/media").await;
    assert_eq!(list["media"].as_array().unwrap().len(), 1);
    assert_eq!(list["media"][0]["mediaId"], id.as_str());

    let audit = app.engine.audit().list(10, None).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "media.upload"
            && e.outcome == "ok"
            && e.target.as_deref() == Some(id.as_str())),
        "uploads are audited: {audit:?}"
    );
}

#[tokio::test]
async fn an_executable_named_png_is_refused_and_leaves_nothing() {
    let app = TestApp::start().await;
    let response = upload(&app, executable(), "cat.png", "image/png").await;
    assert_eq!(
        error_code(response).await,
        (415, "unsupported_media_type".to_owned())
    );
    assert!(
        files_in(&media_dir(&app)).is_empty(),
        "a refused upload leaves no file: {:?}",
        files_in(&media_dir(&app))
    );
    let list: serde_json::Value = app.get_json("/api/media").await;
    assert_eq!(list["media"], serde_json::json!([]), "and no row");

    for (bytes, name) in [
        (
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec(),
            "x.svg",
        ),
        (b"<html><script>alert(1)</script></html>".to_vec(), "x.gif"),
        (Vec::new(), "empty.png"),
        // A Windows program's DOS header, whatever this test runs on.
        (
            [
                b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".as_slice(),
                &[0; 1024],
            ]
            .concat(),
            "setup.png",
        ),
    ] {
        let response = upload(&app, bytes, name, "image/png").await;
        assert_eq!(
            error_code(response).await,
            (415, "unsupported_media_type".to_owned()),
            "{name}"
        );
    }
    assert!(files_in(&media_dir(&app)).is_empty());
    let audit = app.engine.audit().list(10, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "media.upload" && e.outcome == "denied"),
        "refusals are audited: {audit:?}"
    );
}

#[tokio::test]
async fn an_oversized_upload_is_refused_with_nothing_on_disk() {
    let app =
        TestApp::start_with(Options::default().env("STAGEHAND_MEDIA_MAX_UPLOAD_BYTES", "4096"))
            .await;

    // Over the file limit, inside the body limit: refused while streaming.
    let response = upload(&app, wav(8 * 1024), "big.wav", "audio/wav").await;
    assert_eq!(
        error_code(response).await,
        (413, "payload_too_large".to_owned())
    );
    assert!(
        files_in(&media_dir(&app)).is_empty(),
        "no partial or temporary file: {:?}",
        files_in(&media_dir(&app))
    );

    // Far over the body limit too.
    let response = upload(&app, wav(512 * 1024), "huge.wav", "audio/wav").await;
    assert_eq!(
        error_code(response).await,
        (413, "payload_too_large".to_owned())
    );
    assert!(files_in(&media_dir(&app)).is_empty());

    // Exactly at the limit is fine.
    let response = upload(&app, wav(4096), "fits.wav", "audio/wav").await;
    assert_eq!(response.status(), 201);
    assert_eq!(files_in(&media_dir(&app)).len(), 1);
}

#[tokio::test]
async fn the_upload_route_accepts_more_than_the_json_limit() {
    let app = TestApp::start().await;
    let bytes = wav(3 << 20);
    let response = upload(&app, bytes.clone(), "long.wav", "audio/wav").await;
    assert_eq!(
        response.status(),
        201,
        "3 MiB is over the 1 MiB JSON limit but well under media.max_upload_bytes"
    );
    let stored: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (stored["mime"].as_str(), stored["kind"].as_str()),
        (Some("audio/wav"), Some("audio"))
    );
    let served = app
        .get(stored["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(served.headers()["content-length"], bytes.len().to_string());
    assert_eq!(served.bytes().await.unwrap().as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn the_same_bytes_uploaded_twice_are_stored_once() {
    let app = TestApp::start().await;
    let first = upload(&app, png(), "a.png", "image/png").await;
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    let second = upload(&app, png(), "b.jpg", "image/jpeg").await;
    assert_eq!(
        second.status(),
        200,
        "nothing new was created the second time"
    );
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first["mediaId"], second["mediaId"]);
    assert_eq!(
        second["originalName"], "a.png",
        "the first upload's name stays"
    );
    assert_eq!(files_in(&media_dir(&app)).len(), 1, "one file on disk");
    let list: serde_json::Value = app.get_json("/api/media").await;
    assert_eq!(list["media"].as_array().unwrap().len(), 1, "one row");
}

#[tokio::test]
async fn ranges_let_players_seek() {
    let app = TestApp::start().await;
    let bytes = wav(10_000);
    let stored: serde_json::Value = upload(&app, bytes.clone(), "clip.wav", "audio/wav")
        .await
        .json()
        .await
        .unwrap();
    let url = format!("/media/{}", stored["mediaId"].as_str().unwrap());

    let whole = app.get(&url).send().await.unwrap();
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();

    let part = app
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 100-199/10000");
    assert_eq!(part.headers()["content-type"], "audio/wav");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[100..200]);

    let tail = app
        .get(&url)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &bytes[9990..]);

    let open = app
        .get(&url)
        .header("range", "bytes=9000-")
        .send()
        .await
        .unwrap();
    assert_eq!(open.headers()["content-range"], "bytes 9000-9999/10000");
    assert_eq!(open.bytes().await.unwrap().as_ref(), &bytes[9000..]);

    let past = app
        .get(&url)
        .header("range", "bytes=10000-")
        .send()
        .await
        .unwrap();
    assert_eq!(past.headers()["content-range"], "bytes */10000");
    assert_eq!(
        error_code(past).await,
        (416, "range_not_satisfiable".to_owned())
    );

    let stale = app
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        200,
        "If-Range for another version gets the whole file"
    );

    let cached = app
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
}

#[tokio::test]
async fn deleting_removes_the_file_and_the_row() {
    let app = TestApp::start().await;
    let stored: serde_json::Value = upload(&app, png(), "logo.png", "image/png")
        .await
        .json()
        .await
        .unwrap();
    let id = stored["mediaId"].as_str().unwrap();
    let delete = |token: Option<&str>| {
        let request = app.client.delete(app.at(&format!("/api/media/{id}")));
        match token {
            Some(t) => request.header("x-streamer-token", t.to_owned()),
            None => request,
        }
        .send()
    };
    let anonymous = delete(None).await.unwrap();
    assert_eq!(
        error_code(anonymous).await,
        (401, "auth_required".to_owned())
    );
    assert_eq!(files_in(&media_dir(&app)).len(), 1, "still there");

    assert_eq!(delete(Some(&app.token)).await.unwrap().status(), 204);
    assert!(files_in(&media_dir(&app)).is_empty(), "the file is gone");
    let served = app.get(&format!("/media/{id}")).send().await.unwrap();
    assert_eq!(
        error_code(served).await,
        (404, "media_not_found".to_owned())
    );
    let again = delete(Some(&app.token)).await.unwrap();
    assert_eq!(error_code(again).await, (404, "media_not_found".to_owned()));

    let audit = app.engine.audit().list(10, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "media.delete" && e.target.as_deref() == Some(id)),
        "deletes are audited: {audit:?}"
    );

    // Deleted content can come back: the same bytes are stored afresh.
    let back = upload(&app, png(), "logo.png", "image/png").await;
    assert_eq!(back.status(), 201);
    let served = app.get(&format!("/media/{id}")).send().await.unwrap();
    assert_eq!(served.status(), 200);
}

#[tokio::test]
async fn uploads_need_the_streamer() {
    let app = TestApp::start().await;
    let form = || Form::new().part("file", Part::bytes(png()).file_name("a.png"));
    let anonymous = app
        .post("/api/media")
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(anonymous).await,
        (401, "auth_required".to_owned())
    );
    let wrong = app
        .post("/api/media")
        .header("x-streamer-token", "not-the-token")
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(wrong).await,
        (401, "invalid_credentials".to_owned())
    );
    let list = app.get("/api/media").send().await.unwrap();
    assert_eq!(error_code(list).await, (401, "auth_required".to_owned()));
    assert!(files_in(&media_dir(&app)).is_empty());
}

#[tokio::test]
async fn malformed_forms_are_refused_and_leave_nothing() {
    let app = TestApp::start().await;
    let send = |form: Form| app.post_as_streamer("/api/media").multipart(form).send();
    let none = send(Form::new().text("title", "x")).await.unwrap();
    assert_eq!(error_code(none).await, (400, "invalid_fields".to_owned()));
    let empty = send(Form::new()).await.unwrap();
    assert_eq!(
        error_code(empty).await,
        (400, "invalid_multipart".to_owned()),
        "a form needs at least one part"
    );
    let two = send(
        Form::new()
            .part("file", Part::bytes(png()).file_name("a.png"))
            .part("file", Part::bytes(wav(100)).file_name("b.wav")),
    )
    .await
    .unwrap();
    assert_eq!(error_code(two).await, (400, "invalid_fields".to_owned()));
    let json = app
        .post_as_streamer("/api/media")
        .json(&serde_json::json!({ "file": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(json).await,
        (415, "unsupported_media_type".to_owned())
    );
    assert!(
        files_in(&media_dir(&app)).is_empty(),
        "{:?}",
        files_in(&media_dir(&app))
    );
}

#[tokio::test]
async fn media_ids_are_validated_strictly() {
    let app = TestApp::start().await;
    let stored: serde_json::Value = upload(&app, png(), "a.png", "image/png")
        .await
        .json()
        .await
        .unwrap();
    let id = stored["mediaId"].as_str().unwrap();
    for path in [
        format!("/media/{}", id.to_uppercase()),
        format!("/media/{id}.png"),
        format!("/media/{}", &id[..63]),
        "/media/..%2Fstagehand.db".to_owned(),
        "/media/..%2F..%2F..%2Fetc%2Fpasswd".to_owned(),
    ] {
        let response = app.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = app
        .client
        .delete(app.at("/api/media/..%2Fstagehand.db"))
        .header("x-streamer-token", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (404, "media_not_found".to_owned())
    );
    assert!(app.data_dir().join("stagehand.db").exists());
}

/// What real encoders write is recognised, and near misses (other containers and codecs)
/// are refused. Needs ffmpeg (`scripts/setup test` installs it).
#[tokio::test]
#[cfg_attr(
    not(feature = "ffmpeg"),
    ignore = "tier `ffmpeg`: needs ffmpeg (scripts/test runs it)"
)]
async fn real_encoder_output_is_recognised() {
    let ffmpeg_present = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ffmpeg_present,
        "ffmpeg is missing: run scripts/setup test (it installs it)"
    );
    let app = TestApp::start().await;
    let work = tempfile::tempdir().unwrap();
    let video = [
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=10:duration=0.5",
    ];
    let audio = ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.5"];
    let image = ["-f", "lavfi", "-i", "testsrc=size=16x16", "-frames:v", "1"];
    // (file name, ffmpeg input, ffmpeg options, the type it must be stored as or None for refused)
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], Option<&'a str>);
    let cases: &[Case] = &[
        ("a.png", &image, &[], Some("image/png")),
        ("a.jpg", &image, &[], Some("image/jpeg")),
        ("a.gif", &image, &[], Some("image/gif")),
        ("a.webp", &image, &["-c:v", "libwebp"], Some("image/webp")),
        (
            "a.mp4",
            &video,
            &["-c:v", "libx264", "-pix_fmt", "yuv420p"],
            Some("video/mp4"),
        ),
        ("b.mp4", &video, &["-c:v", "mpeg4"], Some("video/mp4")),
        ("a.m4a", &audio, &["-c:a", "aac"], Some("audio/mp4")),
        (
            "a.webm",
            &video,
            &["-c:v", "libvpx", "-deadline", "realtime"],
            Some("video/webm"),
        ),
        ("b.webm", &audio, &["-c:a", "libopus"], Some("video/webm")),
        (
            "id3.mp3",
            &audio,
            &["-c:a", "libmp3lame"],
            Some("audio/mpeg"),
        ),
        (
            "bare.mp3",
            &audio,
            &[
                "-c:a",
                "libmp3lame",
                "-id3v2_version",
                "0",
                "-write_xing",
                "0",
            ],
            Some("audio/mpeg"),
        ),
        ("a.ogg", &audio, &["-c:a", "libvorbis"], Some("audio/ogg")),
        ("b.ogg", &audio, &["-c:a", "libopus"], Some("audio/ogg")),
        ("a.ogv", &video, &["-c:v", "libtheora"], Some("video/ogg")),
        ("a.wav", &audio, &[], Some("audio/wav")),
        // Near misses: same families, not on the list.
        (
            "a.mkv",
            &video,
            &["-c:v", "libvpx", "-deadline", "realtime"],
            None,
        ),
        ("a.mov", &video, &["-c:v", "mpeg4"], None),
        ("a.avi", &video, &["-c:v", "mpeg4"], None),
        ("a.flac", &audio, &[], None),
        ("a.aac", &audio, &["-c:a", "aac"], None),
        ("a.bmp", &image, &[], None),
        ("a.tiff", &image, &[], None),
    ];
    for (name, input, args, expected) in cases {
        let path = work.path().join(name);
        let output = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(*input)
            .args(*args)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "ffmpeg could not write {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let bytes = std::fs::read(&path).unwrap();
        // Claim something else entirely: only the bytes may count.
        let response = upload(&app, bytes, "upload.bin", "application/octet-stream").await;
        match expected {
            Some(mime) => {
                assert!(
                    response.status().is_success(),
                    "{name} should be accepted, got {}",
                    response.status()
                );
                let stored: serde_json::Value = response.json().await.unwrap();
                assert_eq!(stored["mime"], *mime, "{name}");
            }
            None => assert_eq!(
                error_code(response).await,
                (415, "unsupported_media_type".to_owned()),
                "{name} is not on the list"
            ),
        }
    }
}

/// A client that goes away mid-upload cancels the request; its temporary file still goes.
#[tokio::test]
async fn an_upload_cut_off_midway_leaves_nothing() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::start().await;
    let boundary = "cut-off-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\
         Content-Type: audio/wav\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "POST /api/media HTTP/1.1\r\nHost: {}\r\nx-streamer-token: {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 1000000\r\n\r\n{head}",
        app.addr, app.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(&wav(64 * 1024)).await.unwrap();
    stream.flush().await.unwrap();
    let dir = media_dir(&app);
    let mut started = false;
    for _ in 0..200 {
        if files_in(&dir).iter().any(|f| f.ends_with(".part")) {
            started = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(started, "the upload began streaming to a temporary file");
    drop(stream);
    let mut left = files_in(&dir);
    for _ in 0..200 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        left = files_in(&dir);
    }
    assert!(
        left.is_empty(),
        "the abandoned upload's file is removed: {left:?}"
    );
}
