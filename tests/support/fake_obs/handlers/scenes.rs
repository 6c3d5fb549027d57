//! Scenes and scene items: the scene list (reversed, as OBS sends it), the program scene, and
//! the items' lists, IDs and transforms.

use serde_json::{Value, json};

use super::fields::Fields;
use super::{Done, Failure, fail};
use crate::fake_obs::protocol::{intent, status};
use crate::fake_obs::state::{FakeInput, ObsState};

/// `GetSceneList`.
pub(super) fn get_scene_list(state: &ObsState) -> Result<Done, Failure> {
    // `ArrayHelper::GetSceneList` reverses the frontend's list: index 0 is the bottom
    // scene of the dock.
    let scenes: Vec<Value> = state
        .scenes
        .iter()
        .rev()
        .enumerate()
        .map(|(index, name)| {
            json!({
                "sceneIndex": index,
                "sceneName": name,
                "sceneUuid": ObsState::scene_uuid(name),
            })
        })
        .collect();
    Ok(Done::data(json!({
        "currentProgramSceneName": state.program_scene,
        "currentProgramSceneUuid": ObsState::scene_uuid(&state.program_scene),
        "currentPreviewSceneName": null,
        "currentPreviewSceneUuid": null,
        "scenes": scenes,
    })))
}

/// `GetCurrentProgramScene`.
pub(super) fn get_current_program_scene(state: &ObsState) -> Result<Done, Failure> {
    let uuid = ObsState::scene_uuid(&state.program_scene);
    Ok(Done::data(json!({
        "sceneName": state.program_scene,
        "sceneUuid": uuid,
        "currentProgramSceneName": state.program_scene,
        "currentProgramSceneUuid": uuid,
    })))
}

/// `SetCurrentProgramScene`.
pub(super) fn set_current_program_scene(
    state: &mut ObsState,
    fields: &Fields<'_>,
) -> Result<Done, Failure> {
    let scene = fields.scene(state)?;
    let done = Done::default();
    if scene == state.program_scene {
        return Ok(done);
    }
    state.program_scene = scene.clone();
    Ok(done.event(
        "CurrentProgramSceneChanged",
        intent::SCENES,
        json!({ "sceneName": scene, "sceneUuid": ObsState::scene_uuid(&scene) }),
    ))
}

/// `GetSceneItemList`.
pub(super) fn get_scene_item_list(state: &ObsState, fields: &Fields<'_>) -> Result<Done, Failure> {
    let scene = fields.scene(state)?;
    let mut items: Vec<&FakeInput> = state.inputs.iter().filter(|i| i.scene == scene).collect();
    items.sort_by_key(|i| i.scene_item_id);
    let items: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(index, i)| {
            json!({
                "sceneItemId": i.scene_item_id,
                "sceneItemIndex": index,
                "sceneItemEnabled": i.enabled,
                "sceneItemLocked": false,
                "sceneItemTransform": i.transform,
                "sceneItemBlendMode": "OBS_BLEND_NORMAL",
                "sourceName": i.name,
                "sourceUuid": i.uuid,
                "sourceType": "OBS_SOURCE_TYPE_INPUT",
                "inputKind": i.kind,
                "isGroup": null,
            })
        })
        .collect();
    Ok(Done::data(json!({ "sceneItems": items })))
}

/// `GetSceneItemId`.
pub(super) fn get_scene_item_id(state: &ObsState, fields: &Fields<'_>) -> Result<Done, Failure> {
    let scene = fields.scene(state)?;
    let source = fields.string("sourceName")?;
    let offset = fields.optional_number("searchOffset", -1.0)?.unwrap_or(0.0);
    // One item per input, so offsets 0 and -1 (the last match) can find it.
    state
        .inputs
        .iter()
        .find(|i| i.scene == scene && i.name == source && (offset == 0.0 || offset == -1.0))
        .map(|i| Done::data(json!({ "sceneItemId": i.scene_item_id })))
        .ok_or_else(|| {
            fail(
                status::RESOURCE_NOT_FOUND,
                "No scene items were found in the specified scene by that name or offset.",
            )
        })
}

/// `GetSceneItemTransform`.
pub(super) fn get_scene_item_transform(
    state: &ObsState,
    fields: &Fields<'_>,
) -> Result<Done, Failure> {
    let input = &state.inputs[fields.scene_item(state)?];
    Ok(Done::data(json!({ "sceneItemTransform": input.transform })))
}

/// `SetSceneItemTransform`.
pub(super) fn set_scene_item_transform(
    state: &mut ObsState,
    fields: &Fields<'_>,
) -> Result<Done, Failure> {
    let index = fields.scene_item(state)?;
    let changes = fields.object("sceneItemTransform")?;
    let input = &mut state.inputs[index];
    if let Some(transform) = input.transform.as_object_mut() {
        for (key, value) in changes {
            if SETTABLE_TRANSFORM_KEYS.contains(&key.as_str()) {
                transform.insert(key.clone(), value.clone());
            }
        }
    }
    input.refresh_size();
    Ok(Done::default().event(
        "SceneItemTransformChanged",
        intent::SCENE_ITEM_TRANSFORM_CHANGED,
        json!({
            "sceneName": input.scene,
            "sceneUuid": ObsState::scene_uuid(&input.scene),
            "sceneItemId": input.scene_item_id,
            "sceneItemTransform": input.transform,
        }),
    ))
}

/// The keys `SetSceneItemTransform` changes; the size fields are derived.
const SETTABLE_TRANSFORM_KEYS: &[&str] = &[
    "positionX",
    "positionY",
    "rotation",
    "scaleX",
    "scaleY",
    "alignment",
    "boundsType",
    "boundsAlignment",
    "boundsWidth",
    "boundsHeight",
    "cropLeft",
    "cropRight",
    "cropTop",
    "cropBottom",
    "cropToBounds",
];
