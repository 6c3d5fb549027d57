//! The rendered-speech cache: one WAV file per distinct (renderer, voice, parameters, text),
//! named by a hash, in `<data dir>/tts-cache/`.
//!
//! Streamers repeat themselves (a follow message, a command's answer), so the same text is
//! rendered once and served again. The file name is also the only credential of its URL
//! (`/tts/{hash}.wav`, loaded by OBS, which cannot send headers); the data dir's instance id is
//! mixed into the hash so a URL cannot be computed from the text alone. Files carry their last
//! use as mtime, by the engine's clock; pruning drops files past the age limit, then the least
//! recently used until both the count and the byte limits hold.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::RenderJob;

/// Prefix of files being written; renamed into place only when complete.
pub const TEMP_PREFIX: &str = ".tmp-";

/// The cache limits (`[tts]` in the config).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most files kept.
    pub max_files: usize,
    /// Most bytes kept.
    pub max_bytes: u64,
    /// Files unused for longer are dropped (ms).
    pub max_age_ms: i64,
}

/// The cache key of a render: 64 lower-case hex digits.
pub fn key(instance: &str, engine: &str, job: &RenderJob) -> String {
    let mut hash = Sha256::new();
    // Lengths first, so no two different field lists can run together into the same bytes.
    for field in [
        "stagehand-tts/v1",
        instance,
        engine,
        &job.voice,
        job.lang.as_deref().unwrap_or(""),
        &format!("{:.2}", job.rate),
        &format!("{:.2}", job.pitch),
        &job.text,
    ] {
        hash.update((field.len() as u64).to_le_bytes());
        hash.update(field.as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` can be a cache key (checked before it gets anywhere near a path).
pub fn is_key(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The file of a key.
pub fn file(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.wav"))
}

/// Whether `bytes` start like a RIFF/WAVE file with something after the header.
pub fn looks_like_wav(bytes: &[u8]) -> bool {
    bytes.len() > 44 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE"
}

/// Marks `path` as used at `now_ms` (blocking); `false` when it does not exist.
pub fn touch(path: &Path, now_ms: i64) -> std::io::Result<bool> {
    match std::fs::File::options().write(true).open(path) {
        Ok(file) => {
            file.set_modified(time_of(now_ms))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn time_of(ms: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A cached file, as pruning sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Last use (Unix ms).
    pub used_ms: i64,
}

/// Which entries to delete: past the age limit first, then the least recently used until the
/// count and byte limits hold. `keep` (the file a page is about to load) is never chosen.
pub fn to_evict(mut entries: Vec<Entry>, limits: Limits, now_ms: i64, keep: &Path) -> Vec<PathBuf> {
    entries.sort_by(|a, b| a.used_ms.cmp(&b.used_ms).then_with(|| a.path.cmp(&b.path)));
    let mut count = entries.len();
    let mut bytes: u64 = entries.iter().map(|e| e.bytes).sum();
    let mut evict = Vec::new();
    for entry in entries {
        if entry.path == keep {
            continue;
        }
        let too_old = now_ms.saturating_sub(entry.used_ms) > limits.max_age_ms;
        if too_old || count > limits.max_files || bytes > limits.max_bytes {
            count -= 1;
            bytes -= entry.bytes;
            evict.push(entry.path);
        }
    }
    evict
}

/// Applies the limits to `dir` (blocking); returns how many files were deleted.
pub fn prune(dir: &Path, limits: Limits, now_ms: i64, keep: &Path) -> std::io::Result<usize> {
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        let Some(key) = name.to_str().and_then(|n| n.strip_suffix(".wav")) else {
            continue;
        };
        if !is_key(key) {
            continue;
        }
        let meta = item.metadata()?;
        let used_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        entries.push(Entry {
            path: item.path(),
            bytes: meta.len(),
            used_ms,
        });
    }
    let evict = to_evict(entries, limits, now_ms, keep);
    let mut deleted = 0;
    for path in evict {
        match std::fs::remove_file(&path) {
            Ok(()) => deleted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// Deletes half-written files left by a crash (blocking; only at start, when no render runs).
pub fn remove_temp_files(dir: &Path) -> std::io::Result<()> {
    let items = match std::fs::read_dir(dir) {
        Ok(items) => items,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for item in items {
        let item = item?;
        if item.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            std::fs::remove_file(item.path())?;
        }
    }
    Ok(())
}

/// Moves a finished render into place, marked as used at `now_ms` (blocking). Refuses a file
/// that is not a WAV: a renderer that "succeeds" without writing audio must not be cached.
pub fn install(temp: &Path, target: &Path, now_ms: i64) -> std::io::Result<bool> {
    let mut head = [0u8; 45];
    let read = {
        use std::io::Read;
        let mut file = std::fs::File::open(temp)?;
        let mut n = 0;
        while n < head.len() {
            match file.read(&mut head[n..])? {
                0 => break,
                m => n += m,
            }
        }
        n
    };
    if !looks_like_wav(&head[..read]) {
        return Ok(false);
    }
    touch(temp, now_ms)?;
    std::fs::rename(temp, target)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> RenderJob {
        RenderJob {
            text: text.into(),
            voice: "en-us".into(),
            lang: None,
            rate: 1.0,
            pitch: 1.0,
        }
    }

    #[test]
    fn keys_depend_on_every_input_and_are_safe_file_names() {
        let a = key("inst", "espeak-ng", &job("hello"));
        assert!(is_key(&a), "{a}");
        assert_eq!(a, key("inst", "espeak-ng", &job("hello")), "stable");
        assert_ne!(
            a,
            key("other", "espeak-ng", &job("hello")),
            "instance mixed in"
        );
        assert_ne!(a, key("inst", "say", &job("hello")));
        assert_ne!(a, key("inst", "espeak-ng", &job("hello!")));
        let mut faster = job("hello");
        faster.rate = 1.5;
        assert_ne!(a, key("inst", "espeak-ng", &faster));
        for bad in [
            "",
            "../etc/passwd",
            &a.to_uppercase(),
            &a[..63],
            &format!("{a}0"),
        ] {
            assert!(!is_key(bad), "{bad}");
        }
    }

    fn entry(name: &str, bytes: u64, used_ms: i64) -> Entry {
        Entry {
            path: PathBuf::from(name),
            bytes,
            used_ms,
        }
    }

    #[test]
    fn eviction_drops_old_files_then_least_recently_used_but_never_the_kept_one() {
        let limits = Limits {
            max_files: 2,
            max_bytes: 1000,
            max_age_ms: 10_000,
        };
        let entries = vec![
            entry("new", 100, 99_000),
            entry("ancient", 100, 1_000),
            entry("mid", 100, 95_000),
            entry("old", 100, 92_000),
        ];
        let evict = to_evict(entries.clone(), limits, 100_000, Path::new("x"));
        assert_eq!(evict, [PathBuf::from("ancient"), PathBuf::from("old")]);
        let evict = to_evict(entries.clone(), limits, 100_000, Path::new("old"));
        assert_eq!(evict, [PathBuf::from("ancient"), PathBuf::from("mid")]);
        let tight = Limits {
            max_bytes: 150,
            ..limits
        };
        let evict = to_evict(entries, tight, 100_000, Path::new("mid"));
        assert_eq!(
            evict,
            [
                PathBuf::from("ancient"),
                PathBuf::from("old"),
                PathBuf::from("new")
            ],
            "the byte limit holds with only the kept file left"
        );
    }

    #[test]
    fn prune_and_install_work_on_a_real_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let wav = |n: u8| {
            let mut bytes = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
            bytes.resize(100, n);
            bytes
        };
        let keys: Vec<String> = (0..3)
            .map(|i| key("i", "e", &job(&i.to_string())))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            let temp = dir.path().join(format!("{TEMP_PREFIX}{i}"));
            std::fs::write(&temp, wav(1)).expect("write");
            assert!(install(&temp, &file(dir.path(), k), 1_000 * (i as i64 + 1)).expect("install"));
        }
        let junk = dir.path().join(format!("{TEMP_PREFIX}junk"));
        std::fs::write(&junk, "not audio").expect("write");
        assert!(!install(&junk, &dir.path().join("x.wav"), 0).expect("checked"));
        std::fs::write(dir.path().join("notes.txt"), "not ours").expect("write");

        let limits = Limits {
            max_files: 2,
            max_bytes: 1 << 20,
            max_age_ms: 1 << 40,
        };
        let kept = file(dir.path(), &keys[0]);
        assert_eq!(prune(dir.path(), limits, 5_000, &kept).expect("prune"), 1);
        assert!(
            kept.exists(),
            "the kept file survives though it is the oldest"
        );
        assert!(
            !file(dir.path(), &keys[1]).exists(),
            "the oldest other file went"
        );
        assert!(
            dir.path().join("notes.txt").exists(),
            "files not ours are left alone"
        );
        assert!(touch(&file(dir.path(), &keys[2]), 9_000).expect("touch"));
        assert!(!touch(&file(dir.path(), &keys[1]), 9_000).expect("touch"));

        remove_temp_files(dir.path()).expect("clean");
        assert!(!junk.exists(), "half-written files are removed at start");
    }
}
