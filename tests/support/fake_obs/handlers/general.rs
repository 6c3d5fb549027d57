//! `GetVersion` and `GetStats`: what OBS says about itself.

use serde_json::json;

use super::{AVAILABLE_REQUESTS, Done, Failure, SessionStats};
use crate::fake_obs::protocol::RPC_VERSION;
use crate::fake_obs::state::ObsState;

/// `GetVersion`.
pub(super) fn get_version(state: &ObsState) -> Result<Done, Failure> {
    Ok(Done::data(json!({
        "obsVersion": state.obs_version,
        "obsWebSocketVersion": state.websocket_version,
        "rpcVersion": RPC_VERSION,
        "availableRequests": AVAILABLE_REQUESTS,
        "supportedImageFormats":
            ["bmp", "jpeg", "jpg", "pbm", "pgm", "png", "ppm", "xbm", "xpm"],
        "platform": "debian",
        "platformDescription": "Debian GNU/Linux 13 (trixie)",
    })))
}

/// `GetStats`.
pub(super) fn get_stats(state: &ObsState, session: &SessionStats) -> Result<Done, Failure> {
    Ok(Done::data(json!({
        "cpuUsage": state.cpu_usage,
        "memoryUsage": state.memory_usage,
        "availableDiskSpace": state.available_disk_space,
        "activeFps": state.active_fps,
        "averageFrameRenderTime": state.average_frame_render_time,
        "renderSkippedFrames": state.render_skipped_frames,
        "renderTotalFrames": state.render_total_frames,
        "outputSkippedFrames": state.encoder_skipped_frames,
        "outputTotalFrames": state.encoder_total_frames,
        "webSocketSessionIncomingMessages": session.incoming,
        "webSocketSessionOutgoingMessages": session.outgoing,
    })))
}
