//! The fake OBS's model: scenes, inputs (one scene item each), the stream and recording
//! outputs and the numbers `GetStats` reports. It survives a restart of the fake the way OBS
//! keeps its scene collection.

use serde_json::{Value, json};

/// Input kinds of OBS 30.2 on Linux; `browser_source` only while the plugin is "installed".
const INPUT_KINDS: &[&str] = &[
    "image_source",
    "color_source_v3",
    "slideshow",
    "browser_source",
    "ffmpeg_source",
    "text_ft2_source_v2",
    "pipewire-screen-capture-source",
    "pipewire-window-capture-source",
    "pulse_input_capture",
    "pulse_output_capture",
    "v4l2_input",
    "xshm_input_v2",
];

/// One input, as the fake keeps it: a source with exactly one scene item.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeInput {
    pub name: String,
    pub uuid: String,
    /// Versioned kind, e.g. `browser_source`, `color_source_v3`.
    pub kind: String,
    /// The settings object as `GetInputSettings` returns it.
    pub settings: Value,
    /// The scene its scene item is in.
    pub scene: String,
    pub scene_item_id: i64,
    pub enabled: bool,
    /// The `sceneItemTransform` object, every field OBS reports.
    pub transform: Value,
}

impl FakeInput {
    /// An input whose scene item sits at the top left with OBS's default transform.
    pub fn new(name: &str, kind: &str, scene: &str, scene_item_id: i64, settings: Value) -> Self {
        let mut input = Self {
            name: name.to_owned(),
            uuid: uuid_from(&format!("input:{name}:{scene_item_id}")),
            kind: kind.to_owned(),
            settings,
            scene: scene.to_owned(),
            scene_item_id,
            enabled: true,
            transform: default_transform(),
        };
        input.refresh_size();
        input
    }

    /// `sourceWidth`/`sourceHeight` follow the settings (browser and color sources carry
    /// `width`/`height`); `width`/`height` are those times the scale, as in OBS.
    pub(super) fn refresh_size(&mut self) {
        let (default_w, default_h) = match self.kind.as_str() {
            "browser_source" => (800.0, 600.0),
            "color_source_v3" => (1920.0, 1080.0),
            _ => (0.0, 0.0),
        };
        let w = self.settings["width"].as_f64().unwrap_or(default_w);
        let h = self.settings["height"].as_f64().unwrap_or(default_h);
        if let Some(t) = self.transform.as_object_mut() {
            let scale_x = t.get("scaleX").and_then(Value::as_f64).unwrap_or(1.0);
            let scale_y = t.get("scaleY").and_then(Value::as_f64).unwrap_or(1.0);
            t.insert("sourceWidth".into(), json!(w));
            t.insert("sourceHeight".into(), json!(h));
            t.insert("width".into(), json!(w * scale_x));
            t.insert("height".into(), json!(h * scale_y));
        }
    }
}

/// Everything the fake OBS knows; survives [`FakeObs::stop`] and [`FakeObs::start_on`] the way
/// OBS keeps its scene collection across a restart.
#[derive(Clone, Debug)]
pub struct ObsState {
    /// `obsVersion` in `GetVersion` (and `obsStudioVersion` in Hello).
    pub obs_version: String,
    /// `obsWebSocketVersion` in Hello and `GetVersion`.
    pub websocket_version: String,
    /// Scene names in the order OBS's scene dock shows them, top first.
    pub scenes: Vec<String>,
    pub program_scene: String,
    pub inputs: Vec<FakeInput>,
    /// Whether the obs-browser plugin is loaded; without it `browser_source` is not a kind.
    pub browser_source_available: bool,

    pub streaming: bool,
    /// `GetStreamStatus`: reset to zero by `StartStream`, moved on by tests with
    /// [`FakeObs::update`].
    pub output_bytes: u64,
    pub skipped_frames: u64,
    pub total_frames: u64,
    pub congestion: f64,
    pub reconnecting: bool,
    pub stream_duration_ms: u64,

    pub recording: bool,
    /// Where recordings go; `StartRecord` writes an empty placeholder file there if it can.
    pub record_dir: String,
    /// The file being recorded, while recording.
    pub record_path: Option<String>,
    /// Files of finished recordings, oldest first.
    pub recordings: Vec<String>,
    pub record_bytes: u64,
    pub record_duration_ms: u64,

    /// `GetStats`.
    pub cpu_usage: f64,
    pub memory_usage: f64,
    pub available_disk_space: f64,
    pub active_fps: f64,
    pub average_frame_render_time: f64,
    pub render_skipped_frames: u64,
    pub render_total_frames: u64,
    /// `GetStats`' `outputSkippedFrames`/`outputTotalFrames` (encoder lag), not the stream's.
    pub encoder_skipped_frames: u64,
    pub encoder_total_frames: u64,
}

impl Default for ObsState {
    fn default() -> Self {
        Self {
            obs_version: "30.2.3".into(),
            websocket_version: "5.5.2".into(),
            scenes: vec!["Scene".into(), "Live".into()],
            program_scene: "Scene".into(),
            inputs: Vec::new(),
            browser_source_available: true,
            streaming: false,
            output_bytes: 0,
            skipped_frames: 0,
            total_frames: 0,
            congestion: 0.0,
            reconnecting: false,
            stream_duration_ms: 0,
            recording: false,
            record_dir: "/home/streamer/Videos".into(),
            record_path: None,
            recordings: Vec::new(),
            record_bytes: 0,
            record_duration_ms: 0,
            cpu_usage: 1.5,
            memory_usage: 310.0,
            available_disk_space: 120_000.0,
            active_fps: 60.0,
            average_frame_render_time: 0.9,
            render_skipped_frames: 0,
            render_total_frames: 0,
            encoder_skipped_frames: 0,
            encoder_total_frames: 0,
        }
    }
}

impl ObsState {
    /// The input of that name, if any.
    pub fn input(&self, name: &str) -> Option<&FakeInput> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// The UUID OBS would give the scene; derived from its name so it survives restarts.
    pub fn scene_uuid(name: &str) -> String {
        uuid_from(&format!("scene:{name}"))
    }

    pub(super) fn input_kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        INPUT_KINDS
            .iter()
            .copied()
            .filter(|k| *k != "browser_source" || self.browser_source_available)
    }
}

/// A new scene item's transform in OBS: top left, unscaled, aligned top-left (5), no bounds.
fn default_transform() -> Value {
    json!({
        "sourceWidth": 0.0,
        "sourceHeight": 0.0,
        "positionX": 0.0,
        "positionY": 0.0,
        "rotation": 0.0,
        "scaleX": 1.0,
        "scaleY": 1.0,
        "width": 0.0,
        "height": 0.0,
        "alignment": 5,
        "boundsType": "OBS_BOUNDS_NONE",
        "boundsAlignment": 0,
        "boundsWidth": 0.0,
        "boundsHeight": 0.0,
        "cropLeft": 0,
        "cropRight": 0,
        "cropTop": 0,
        "cropBottom": 0,
        "cropToBounds": false,
    })
}

/// A version-4-shaped UUID derived from `seed`, so names map to stable UUIDs.
pub(super) fn uuid_from(seed: &str) -> String {
    let fnv = |salt: u64| {
        seed.bytes().fold(0xcbf2_9ce4_8422_2325 ^ salt, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let bytes = ((u128::from(fnv(0)) << 64) | u128::from(fnv(0x9e37_79b9_7f4a_7c15)))
        & !(0xf000_u128 << 64)
        & !(0xc000_u128 << 48);
    let bytes = bytes | (0x4000_u128 << 64) | (0x8000_u128 << 48);
    let hex = format!("{bytes:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
