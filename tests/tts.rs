//! Text to speech: `POST /api/tts/speak` renders audio with espeak-ng, caches it, serves it at
//! `/tts/{hash}.wav` and pushes `tts.speak` to overlay pages; bad input changes nothing.
//!
//! These need espeak-ng (`scripts/setup test` installs it); the browser test also needs
//! Chromium and is ignored in a plain `cargo test`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use stagehand_engine::clock::ManualClock;
use support::{Browser, Options, Socket, TestApp, connect_overlay, error_code, next_json};

const TEN_WORDS: &str = "The quick brown fox jumps over the lazy dog again.";
const THIRTY_WORDS: &str = "Thank you so much for the raid, everyone. Welcome to the stream, \
    we are building a little overlay engine today, and your support means a lot to all of us here.";

fn require_espeak(app: &TestApp) {
    assert_eq!(
        app.engine.tts_engine(),
        Some("espeak-ng"),
        "these tests need espeak-ng on PATH (scripts/setup test installs it)"
    );
}

async fn speak(app: &TestApp, body: serde_json::Value) -> reqwest::Response {
    app.post_as_streamer("/api/tts/speak")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn speak_ok(app: &TestApp, body: serde_json::Value) -> serde_json::Value {
    let response = speak(app, body).await;
    assert_eq!(response.status(), 202, "speech is accepted");
    response.json().await.unwrap()
}

async fn create_overlay(app: &TestApp, name: &str) -> serde_json::Value {
    app.create_overlay(name).await
}

async fn connect(overlay: &serde_json::Value) -> Socket {
    let mut socket = connect_overlay(overlay["signedUrl"].as_str().unwrap()).await;
    assert_eq!(next_json(&mut socket).await["type"], "scene.full");
    socket
}

fn cache_dir(app: &TestApp) -> PathBuf {
    app.data_dir().join("tts-cache")
}

/// Files in the speech cache (none when it does not exist yet).
fn cached_files(app: &TestApp) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache_dir(app))
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn renders(app: &TestApp, outcome: &str) -> f64 {
    app.engine
        .metrics()
        .value("stagehand_tts_renders_total", &[("outcome", outcome)])
        .unwrap_or(0.0)
}

/// What a test needs to know about a WAV file, read from its bytes.
#[derive(Debug)]
struct Wav {
    sample_rate: u32,
    channels: u16,
    samples: Vec<i16>,
}

impl Wav {
    /// Parses RIFF/WAVE with 16-bit PCM, walking the chunks rather than assuming offsets.
    fn parse(bytes: &[u8]) -> Wav {
        assert!(bytes.len() > 44, "a WAV file has a header and data");
        assert_eq!(&bytes[0..4], b"RIFF", "RIFF header");
        assert_eq!(&bytes[8..12], b"WAVE", "WAVE form type");
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let (mut format, mut data) = (None, None);
        let mut at = 12;
        while at + 8 <= bytes.len() {
            let id = &bytes[at..at + 4];
            let len = u32_at(at + 4) as usize;
            let body = at + 8;
            let end = (body + len).min(bytes.len());
            match id {
                b"fmt " => {
                    format = Some((
                        u16_at(body),
                        u16_at(body + 2),
                        u32_at(body + 4),
                        u16_at(body + 14),
                    ))
                }
                b"data" => data = Some(&bytes[body..end]),
                _ => {}
            }
            at = body + len + (len & 1);
        }
        let (audio_format, channels, sample_rate, bits) = format.expect("a fmt chunk");
        assert_eq!(audio_format, 1, "PCM");
        assert_eq!(bits, 16, "16-bit samples");
        assert!((8_000..=48_000).contains(&sample_rate), "{sample_rate} Hz");
        let data = data.expect("a data chunk");
        let samples = data
            .chunks_exact(2)
            .map(|s| i16::from_le_bytes([s[0], s[1]]))
            .collect();
        Wav {
            sample_rate,
            channels,
            samples,
        }
    }

    fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate) / f64::from(self.channels)
    }

    /// Root mean square of `samples`, 0.0 (silence) to 1.0 (full scale).
    fn rms(samples: &[i16]) -> f64 {
        let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (sum / samples.len().max(1) as f64).sqrt() / 32768.0
    }

    /// Share of 20 ms frames louder than -40 dBFS: speech is mostly sound, with short gaps.
    fn voiced_share(&self) -> f64 {
        let frame = (self.sample_rate as usize * self.channels as usize) / 50;
        let frames: Vec<&[i16]> = self.samples.chunks_exact(frame).collect();
        let loud = frames.iter().filter(|f| Self::rms(f) > 0.01).count();
        loud as f64 / frames.len().max(1) as f64
    }
}

async fn fetch_wav(app: &TestApp, url: &str) -> Wav {
    let response = app.get(url).send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "{url} is served without credentials"
    );
    assert_eq!(response.headers()["content-type"], "audio/wav");
    Wav::parse(&response.bytes().await.unwrap())
}

#[tokio::test]
async fn tts_renders_speech_of_plausible_length_and_renders_it_once() {
    let app = TestApp::start().await;
    require_espeak(&app);
    let status: serde_json::Value = app.get_json("/api/status").await;
    assert_eq!(
        status["ttsEngine"], "espeak-ng",
        "status names the renderer"
    );

    let first = speak_ok(
        &app,
        serde_json::json!({ "text": TEN_WORDS, "lang": "en-US" }),
    )
    .await;
    assert_eq!(first["engine"], "espeak-ng");
    assert_eq!(first["pages"], 0, "no overlay page is open");
    let url = first["audioUrl"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("/tts/") && url.ends_with(".wav") && url.len() == "/tts/.wav".len() + 64,
        "same-origin URL named by a hash: {url}"
    );
    let short = fetch_wav(&app, &url).await;
    assert!(
        (1.5..=8.0).contains(&short.seconds()),
        "ten words at a normal rate last a few seconds, not {:.2} s",
        short.seconds()
    );
    let rms = Wav::rms(&short.samples);
    assert!(rms > 0.02, "speech is well above silence (RMS {rms:.4})");
    assert!(
        short.voiced_share() > 0.4,
        "most of it is sound, as speech is ({:.2})",
        short.voiced_share()
    );

    let file = cache_dir(&app).join(&url["/tts/".len()..]);
    let inode_before = inode(&file);
    assert_eq!(renders(&app, "ok"), 1.0);
    let again = speak_ok(
        &app,
        serde_json::json!({ "text": TEN_WORDS, "lang": "en-US" }),
    )
    .await;
    assert_eq!(
        again["audioUrl"], first["audioUrl"],
        "same words, same file"
    );
    assert_ne!(again["id"], first["id"], "each request is its own message");
    assert_eq!(
        renders(&app, "ok"),
        1.0,
        "the second request did not render"
    );
    assert_eq!(renders(&app, "hit"), 1.0, "it was served from the cache");
    assert_eq!(
        inode(&file),
        inode_before,
        "the cached file was not rewritten"
    );

    let (x, y) = tokio::join!(
        speak_ok(&app, serde_json::json!({ "text": "Two at once" })),
        speak_ok(&app, serde_json::json!({ "text": "Two at once" }))
    );
    assert_eq!(x["audioUrl"], y["audioUrl"]);
    assert_eq!(
        renders(&app, "ok"),
        2.0,
        "concurrent identical requests wait for one render instead of racing"
    );

    let long = speak_ok(&app, serde_json::json!({ "text": THIRTY_WORDS })).await;
    let long = fetch_wav(&app, long["audioUrl"].as_str().unwrap()).await;
    assert!(
        long.seconds() > short.seconds() * 1.8,
        "three times the words take clearly longer: {:.2} s vs {:.2} s",
        long.seconds(),
        short.seconds()
    );
    let slow = speak_ok(&app, serde_json::json!({ "text": TEN_WORDS, "rate": 0.5 })).await;
    assert_ne!(
        slow["audioUrl"], first["audioUrl"],
        "another rate is another file"
    );
    let slow = fetch_wav(&app, slow["audioUrl"].as_str().unwrap()).await;
    assert!(
        slow.seconds() > short.seconds() * 1.5,
        "half the rate takes longer: {:.2} s vs {:.2} s",
        slow.seconds(),
        short.seconds()
    );
}

#[cfg(unix)]
fn inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("cached file exists").ino()
}

#[cfg(not(unix))]
fn inode(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).expect("cached file exists").len()
}

#[tokio::test]
async fn tts_speak_reaches_overlay_pages_with_the_audio_url() {
    let app = TestApp::start().await;
    require_espeak(&app);
    let main = create_overlay(&app, "Main").await;
    let other = create_overlay(&app, "Other").await;
    let mut a = connect(&main).await;
    let mut b = connect(&other).await;

    let sent = speak_ok(
        &app,
        serde_json::json!({ "overlayId": main["overlayId"], "text": "Thanks for the follow!",
                            "lang": "en-GB", "rate": 1.2, "pitch": 0.8, "volume": 0.5 }),
    )
    .await;
    assert_eq!(sent["pages"], 1, "only the target overlay's page");
    let message = next_json(&mut a).await;
    assert_eq!(message["type"], "tts.speak");
    assert_eq!(message["id"], sent["id"]);
    assert_eq!(message["text"], "Thanks for the follow!");
    assert_eq!(message["audio_url"], sent["audioUrl"]);
    assert_eq!(
        (
            message["lang"].as_str(),
            message["rate"].as_f64(),
            message["pitch"].as_f64(),
            message["volume"].as_f64()
        ),
        (Some("en-GB"), Some(1.2), Some(0.8), Some(0.5)),
        "the page gets the parameters (volume is applied by the page: {message})"
    );

    let everyone = speak_ok(&app, serde_json::json!({ "text": "Hello everyone" })).await;
    assert_eq!(everyone["pages"], 2, "without overlayId every page gets it");
    for page in [&mut a, &mut b] {
        let message = next_json(page).await;
        assert_eq!(message["id"], everyone["id"]);
        assert_eq!(message["audio_url"], everyone["audioUrl"]);
    }
}

#[tokio::test]
async fn tts_without_a_renderer_leaves_speech_to_the_page() {
    let app = TestApp::start_with(Options::default().env("STAGEHAND_TTS_ENGINE", "none")).await;
    assert_eq!(app.engine.tts_engine(), None);
    let overlay = create_overlay(&app, "Main").await;
    let mut page = connect(&overlay).await;
    let sent = speak_ok(
        &app,
        serde_json::json!({ "text": "Hello", "voice": "Samantha" }),
    )
    .await;
    assert_eq!(
        (&sent["audioUrl"], &sent["engine"], &sent["pages"]),
        (
            &serde_json::Value::Null,
            &serde_json::Value::Null,
            &serde_json::json!(1)
        )
    );
    let message = next_json(&mut page).await;
    assert_eq!(message["id"], sent["id"]);
    assert_eq!(message["voice"], "Samantha");
    assert!(
        message.get("audio_url").is_none(),
        "no audio: the page falls back to SpeechSynthesis: {message}"
    );
    assert!(cached_files(&app).is_empty(), "nothing rendered");
}

#[tokio::test]
async fn tts_refuses_bad_input_and_changes_nothing() {
    let app = TestApp::start().await;
    require_espeak(&app);
    let overlay = create_overlay(&app, "Main").await;
    let mut page = connect(&overlay).await;
    let long = "a".repeat(501);
    for body in [
        serde_json::json!({ "text": "" }),
        serde_json::json!({ "text": "   " }),
        serde_json::json!({ "text": long }),
        serde_json::json!({ "rate": 1.0 }),
        serde_json::json!({ "text": "hi", "rate": 0.1 }),
        serde_json::json!({ "text": "hi", "rate": 3 }),
        serde_json::json!({ "text": "hi", "pitch": -1 }),
        serde_json::json!({ "text": "hi", "pitch": 2.5 }),
        serde_json::json!({ "text": "hi", "volume": 1.1 }),
        serde_json::json!({ "text": "hi", "rate": "fast" }),
        serde_json::json!({ "text": "hi", "lang": "English" }),
        serde_json::json!({ "text": "hi", "voice": "-w /tmp/x.wav" }),
        serde_json::json!({ "text": "hi", "shout": true }),
    ] {
        let response = speak(&app, body.clone()).await;
        assert_eq!(
            error_code(response).await,
            (422, "invalid_fields".into()),
            "{body} is refused"
        );
    }
    let unknown_lang = speak(&app, serde_json::json!({ "text": "hi", "lang": "xx-YY" })).await;
    assert_eq!(
        error_code(unknown_lang).await,
        (422, "tts_voice_unavailable".into()),
        "a well-formed language espeak-ng cannot speak"
    );
    let unknown_overlay = speak(
        &app,
        serde_json::json!({ "text": "hi", "overlayId": "ov_nope" }),
    )
    .await;
    assert_eq!(
        error_code(unknown_overlay).await,
        (404, "overlay_not_found".into())
    );
    let anonymous = app
        .post("/api/tts/speak")
        .json(&serde_json::json!({ "text": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(anonymous).await.0, 401);
    assert!(
        cached_files(&app).is_empty(),
        "no refused request rendered anything: {:?}",
        cached_files(&app)
    );
    assert_eq!(renders(&app, "ok"), 0.0);

    // The first message the page sees is the first accepted request: nothing was pushed before.
    let ok = speak_ok(&app, serde_json::json!({ "text": "finally" })).await;
    assert_eq!(next_json(&mut page).await["id"], ok["id"]);

    for path in [
        "/tts/nope.wav",
        "/tts/..%2F..%2Fstagehand.db",
        &format!("/tts/{}.wav", "A".repeat(64)),
        &format!("/tts/{}.wav", "0".repeat(64)),
        &format!(
            "/tts/{}",
            &ok["audioUrl"].as_str().unwrap()["/tts/".len()..].replace(".wav", "")
        ),
    ] {
        let response = app.get(path).send().await.unwrap();
        assert_eq!(
            error_code(response).await,
            (404, "tts_audio_not_found".into()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn tts_render_timeout_kills_the_renderer_and_leaves_nothing() {
    let app =
        TestApp::start_with(Options::default().env("STAGEHAND_TTS_RENDER_TIMEOUT_MS", "1")).await;
    require_espeak(&app);
    let overlay = create_overlay(&app, "Main").await;
    let mut page = connect(&overlay).await;
    let response = speak(&app, serde_json::json!({ "text": THIRTY_WORDS })).await;
    assert_eq!(
        error_code(response).await,
        (503, "tts_render_timeout".into()),
        "espeak-ng cannot start, let alone finish, within 1 ms"
    );
    assert_eq!(renders(&app, "timeout"), 1.0);
    assert!(
        cached_files(&app).is_empty(),
        "the half-written file is removed: {:?}",
        cached_files(&app)
    );
    let nothing = tokio::time::timeout(Duration::from_millis(200), page.next()).await;
    assert!(
        nothing.is_err(),
        "a failed request pushes nothing: {nothing:?}"
    );
}

#[tokio::test]
async fn tts_cache_keeps_the_most_recently_used_files_within_its_limits() {
    let clock = ManualClock::new(1_800_000_000_000);
    let app = TestApp::start_with(
        Options {
            clock: Arc::new(clock.clone()),
            ..Options::default()
        }
        .env("STAGEHAND_TTS_CACHE_MAX_FILES", "2")
        .env("STAGEHAND_TTS_CACHE_MAX_AGE_SECONDS", "3600"),
    )
    .await;
    require_espeak(&app);
    let mut urls = Vec::new();
    for text in ["one", "two"] {
        clock.advance(Duration::from_secs(1));
        urls.push(speak_ok(&app, serde_json::json!({ "text": text })).await["audioUrl"].clone());
    }
    clock.advance(Duration::from_secs(1));
    speak_ok(&app, serde_json::json!({ "text": "one" })).await; // used again: now the newest
    clock.advance(Duration::from_secs(1));
    let three = speak_ok(&app, serde_json::json!({ "text": "three" })).await["audioUrl"].clone();
    let status = |url: &serde_json::Value| {
        let url = url.as_str().unwrap().to_owned();
        let request = app.get(&url).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&urls[0]).await, 200, "recently used, kept");
    assert_eq!(status(&urls[1]).await, 404, "least recently used, dropped");
    assert_eq!(status(&three).await, 200, "just rendered, kept");
    assert_eq!(cached_files(&app).len(), 2, "{:?}", cached_files(&app));

    clock.advance(Duration::from_secs(2 * 3600));
    let four = speak_ok(&app, serde_json::json!({ "text": "four" })).await["audioUrl"].clone();
    assert_eq!(status(&urls[0]).await, 404, "unused past the age limit");
    assert_eq!(status(&three).await, 404, "unused past the age limit");
    assert_eq!(status(&four).await, 200);
}

#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
async fn browser_overlay_plays_tts_audio() {
    let app = TestApp::start().await;
    require_espeak(&app);
    let overlay = create_overlay(&app, "Main").await;
    let mut browser = Browser::start().await;
    browser
        .cmd(serde_json::json!({"cmd": "open", "name": "obs", "url": overlay["signedUrl"]}))
        .await;
    let sent = speak_ok(
        &app,
        serde_json::json!({ "overlayId": overlay["overlayId"], "text": TEN_WORDS, "lang": "en-US" }),
    )
    .await;
    assert_eq!(sent["pages"], 1);
    let played = browser
        .cmd(serde_json::json!({"cmd": "waitTts", "name": "obs", "id": sent["id"]}))
        .await;
    let clips = played["audio"].as_array().unwrap();
    assert!(
        !clips.is_empty()
            && clips
                .iter()
                .all(|a| a["src"] == sent["audioUrl"] && a["paused"] == false),
        "the clip playing (a few seconds long, so still on the page) is the rendered audio, \
         loaded from this server: {played}"
    );
    browser.quit().await;
}
