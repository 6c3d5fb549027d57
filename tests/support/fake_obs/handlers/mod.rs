//! The requests the fake answers, one module per request family, each run against the state
//! the way obs-websocket's `RequestHandler` runs it: checked fields, OBS's status codes and
//! comments, and the events a change causes.

mod fields;
mod general;
mod inputs;
mod outputs;
mod scenes;

use serde_json::Value;

use super::protocol::{event_message, status};
use super::session::Session;
use super::state::ObsState;
use fields::Fields;

/// The requests the fake implements, reported by `GetVersion` as `availableRequests`.
pub const AVAILABLE_REQUESTS: &[&str] = &[
    "GetVersion",
    "GetStats",
    "GetSceneList",
    "GetCurrentProgramScene",
    "SetCurrentProgramScene",
    "GetInputList",
    "GetInputKindList",
    "CreateInput",
    "RemoveInput",
    "GetInputSettings",
    "SetInputSettings",
    "GetSceneItemList",
    "GetSceneItemId",
    "GetSceneItemTransform",
    "SetSceneItemTransform",
    "GetStreamStatus",
    "StartStream",
    "StopStream",
    "GetRecordStatus",
    "StartRecord",
    "StopRecord",
    "GetRecordDirectory",
];

/// A request that succeeded: its `responseData` (none for requests that return nothing) and
/// the events it causes.
#[derive(Default)]
pub(super) struct Done {
    pub(super) data: Option<Value>,
    pub(super) events: Vec<Value>,
    pub(super) recording_file: Option<String>,
}

impl Done {
    pub(super) fn data(data: Value) -> Self {
        Self {
            data: Some(data),
            ..Self::default()
        }
    }

    pub(super) fn event(mut self, event_type: &str, intent: u64, data: Value) -> Self {
        self.events.push(event_message(event_type, intent, &data));
        self
    }
}

pub(super) struct Failure {
    pub(super) code: u16,
    pub(super) comment: Option<String>,
}

pub(super) fn fail(code: u16, comment: impl Into<String>) -> Failure {
    Failure {
        code,
        comment: Some(comment.into()),
    }
}

pub(super) fn not_ready() -> Failure {
    fail(
        status::NOT_READY,
        "OBS is not ready to perform the request.",
    )
}

pub(super) struct SessionStats {
    pub(super) incoming: u64,
    pub(super) outgoing: u64,
}

impl SessionStats {
    pub(super) fn of(session: &Session) -> Self {
        Self {
            incoming: session.incoming,
            outgoing: session.outgoing,
        }
    }
}

/// Runs one request against the state, as obs-websocket's `RequestHandler` would.
pub(super) fn process(
    state: &mut ObsState,
    session: &SessionStats,
    request_type: &str,
    data: &Value,
) -> Result<Done, Failure> {
    let fields = Fields::new(data);
    match request_type {
        "GetVersion" => general::get_version(state),
        "GetStats" => general::get_stats(state, session),
        "GetSceneList" => scenes::get_scene_list(state),
        "GetCurrentProgramScene" => scenes::get_current_program_scene(state),
        "SetCurrentProgramScene" => scenes::set_current_program_scene(state, &fields),
        "GetInputList" => inputs::get_input_list(state, &fields),
        "GetInputKindList" => inputs::get_input_kind_list(state, &fields),
        "CreateInput" => inputs::create_input(state, &fields),
        "RemoveInput" => inputs::remove_input(state, &fields),
        "GetInputSettings" => inputs::get_input_settings(state, &fields),
        "SetInputSettings" => inputs::set_input_settings(state, &fields),
        "GetSceneItemList" => scenes::get_scene_item_list(state, &fields),
        "GetSceneItemId" => scenes::get_scene_item_id(state, &fields),
        "GetSceneItemTransform" => scenes::get_scene_item_transform(state, &fields),
        "SetSceneItemTransform" => scenes::set_scene_item_transform(state, &fields),
        "GetStreamStatus" => outputs::get_stream_status(state),
        "StartStream" => outputs::start_stream(state),
        "StopStream" => outputs::stop_stream(state),
        "GetRecordStatus" => outputs::get_record_status(state),
        "StartRecord" => outputs::start_record(state),
        "StopRecord" => outputs::stop_record(state),
        "GetRecordDirectory" => outputs::get_record_directory(state),
        _ => Err(fail(
            status::UNKNOWN_REQUEST_TYPE,
            "Your request type is not valid.",
        )),
    }
}
