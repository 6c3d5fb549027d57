//! The stream and record outputs: status, start and stop, with the state-change events OBS
//! sends after its answer.

use serde_json::{Value, json};

use super::{Done, Failure};
use crate::fake_obs::protocol::{intent, status};
use crate::fake_obs::state::ObsState;

/// `GetStreamStatus`.
pub(super) fn get_stream_status(state: &ObsState) -> Result<Done, Failure> {
    Ok(Done::data(json!({
        "outputActive": state.streaming,
        "outputReconnecting": state.reconnecting,
        "outputTimecode": timecode(state.stream_duration_ms),
        "outputDuration": state.stream_duration_ms,
        "outputCongestion": state.congestion,
        "outputBytes": state.output_bytes,
        "outputSkippedFrames": state.skipped_frames,
        "outputTotalFrames": state.total_frames,
    })))
}

/// `StartStream`.
pub(super) fn start_stream(state: &mut ObsState) -> Result<Done, Failure> {
    if state.streaming {
        return Err(Failure {
            code: status::OUTPUT_RUNNING,
            comment: None,
        });
    }
    state.streaming = true;
    state.output_bytes = 0;
    state.skipped_frames = 0;
    state.total_frames = 0;
    state.stream_duration_ms = 0;
    Ok(Done::default()
        .event(
            "StreamStateChanged",
            intent::OUTPUTS,
            output_state(false, "STARTING"),
        )
        .event(
            "StreamStateChanged",
            intent::OUTPUTS,
            output_state(true, "STARTED"),
        ))
}

/// `StopStream`.
pub(super) fn stop_stream(state: &mut ObsState) -> Result<Done, Failure> {
    if !state.streaming {
        return Err(Failure {
            code: status::OUTPUT_NOT_RUNNING,
            comment: None,
        });
    }
    state.streaming = false;
    Ok(Done::default()
        .event(
            "StreamStateChanged",
            intent::OUTPUTS,
            output_state(false, "STOPPING"),
        )
        .event(
            "StreamStateChanged",
            intent::OUTPUTS,
            output_state(false, "STOPPED"),
        ))
}

/// `GetRecordStatus`.
pub(super) fn get_record_status(state: &ObsState) -> Result<Done, Failure> {
    Ok(Done::data(json!({
        "outputActive": state.recording,
        "outputPaused": false,
        "outputTimecode": timecode(state.record_duration_ms),
        "outputDuration": state.record_duration_ms,
        "outputBytes": state.record_bytes,
    })))
}

/// `StartRecord`.
pub(super) fn start_record(state: &mut ObsState) -> Result<Done, Failure> {
    if state.recording {
        return Err(Failure {
            code: status::OUTPUT_RUNNING,
            comment: None,
        });
    }
    let path = format!(
        "{}/fake-recording-{}.mkv",
        state.record_dir.trim_end_matches('/'),
        state.recordings.len() + 1
    );
    state.recording = true;
    state.record_path = Some(path.clone());
    state.record_bytes = 0;
    state.record_duration_ms = 0;
    let mut done = Done::default()
        .event(
            "RecordStateChanged",
            intent::OUTPUTS,
            record_state(false, "STARTING", None),
        )
        .event(
            "RecordStateChanged",
            intent::OUTPUTS,
            record_state(true, "STARTED", Some(&path)),
        );
    done.recording_file = Some(path);
    Ok(done)
}

/// `StopRecord`.
pub(super) fn stop_record(state: &mut ObsState) -> Result<Done, Failure> {
    let Some(path) = state.record_path.take().filter(|_| state.recording) else {
        return Err(Failure {
            code: status::OUTPUT_NOT_RUNNING,
            comment: None,
        });
    };
    state.recording = false;
    state.recordings.push(path.clone());
    Ok(Done::data(json!({ "outputPath": path }))
        .event(
            "RecordStateChanged",
            intent::OUTPUTS,
            record_state(false, "STOPPING", None),
        )
        .event(
            "RecordStateChanged",
            intent::OUTPUTS,
            record_state(false, "STOPPED", Some(&path)),
        ))
}

/// `GetRecordDirectory`.
pub(super) fn get_record_directory(state: &ObsState) -> Result<Done, Failure> {
    Ok(Done::data(json!({ "recordDirectory": state.record_dir })))
}

fn output_state(active: bool, state: &str) -> Value {
    json!({
        "outputActive": active,
        "outputState": format!("OBS_WEBSOCKET_OUTPUT_{state}"),
    })
}

/// `RecordStateChanged` carries the path on STARTED and STOPPED, `null` otherwise.
fn record_state(active: bool, state: &str, path: Option<&str>) -> Value {
    let mut data = output_state(active, state);
    data["outputPath"] = json!(path);
    data
}

/// `HH:MM:SS.mmm`, the `outputTimecode` format obws parses.
fn timecode(ms: u64) -> String {
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::timecode;

    #[test]
    fn timecodes_are_hours_minutes_seconds_and_millis() {
        assert_eq!(timecode(3_723_004), "01:02:03.004");
    }
}
