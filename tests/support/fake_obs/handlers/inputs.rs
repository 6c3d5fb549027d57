//! Inputs: listing, kinds, creating (with its scene item), removing, and their settings.

use serde_json::{Value, json};

use super::fields::{Fields, find_source};
use super::{Done, Failure, fail};
use crate::fake_obs::protocol::{intent, random_token, status};
use crate::fake_obs::state::{FakeInput, ObsState, uuid_from};

/// `GetInputList`.
pub(super) fn get_input_list(state: &ObsState, fields: &Fields<'_>) -> Result<Done, Failure> {
    let kind = fields.optional_string("inputKind")?;
    let inputs: Vec<Value> = state
        .inputs
        .iter()
        .filter(|i| kind.is_none_or(|k| k == i.kind))
        .map(listed)
        .collect();
    Ok(Done::data(json!({ "inputs": inputs })))
}

/// An input as `GetInputList` lists it (and `InputCreated` begins).
fn listed(input: &FakeInput) -> Value {
    json!({
        "inputName": input.name,
        "inputUuid": input.uuid,
        "inputKind": input.kind,
        "unversionedInputKind": unversioned(&input.kind),
        "inputKindCaps": input_caps(&input.kind),
    })
}

/// `GetInputKindList`.
pub(super) fn get_input_kind_list(state: &ObsState, fields: &Fields<'_>) -> Result<Done, Failure> {
    let unversioned_kinds = fields.optional_bool("unversioned")?.unwrap_or(false);
    let kinds: Vec<&str> = state
        .input_kinds()
        .map(|k| if unversioned_kinds { unversioned(k) } else { k })
        .collect();
    Ok(Done::data(json!({ "inputKinds": kinds })))
}

/// `RemoveInput`.
pub(super) fn remove_input(state: &mut ObsState, fields: &Fields<'_>) -> Result<Done, Failure> {
    let index = fields.input(state)?;
    let input = state.inputs.remove(index);
    Ok(Done::default()
        .event(
            "SceneItemRemoved",
            intent::SCENE_ITEMS,
            json!({
                "sceneName": input.scene,
                "sceneUuid": ObsState::scene_uuid(&input.scene),
                "sourceName": input.name,
                "sourceUuid": input.uuid,
                "sceneItemId": input.scene_item_id,
            }),
        )
        .event(
            "InputRemoved",
            intent::INPUTS,
            json!({ "inputName": input.name, "inputUuid": input.uuid }),
        ))
}

/// `GetInputSettings`.
pub(super) fn get_input_settings(state: &ObsState, fields: &Fields<'_>) -> Result<Done, Failure> {
    let input = &state.inputs[fields.input(state)?];
    Ok(Done::data(json!({
        "inputSettings": input.settings,
        "inputKind": input.kind,
    })))
}

/// `SetInputSettings`.
pub(super) fn set_input_settings(
    state: &mut ObsState,
    fields: &Fields<'_>,
) -> Result<Done, Failure> {
    let index = fields.input(state)?;
    let settings = fields.object("inputSettings")?;
    let overlay = fields.optional_bool("overlay")?.unwrap_or(true);
    let input = &mut state.inputs[index];
    if overlay {
        let mut merged = input.settings.as_object().cloned().unwrap_or_default();
        merged.extend(settings.clone());
        input.settings = Value::Object(merged);
    } else {
        input.settings = Value::Object(settings.clone());
    }
    input.refresh_size();
    Ok(Done::default().event(
        "InputSettingsChanged",
        intent::INPUTS,
        json!({
            "inputName": input.name,
            "inputUuid": input.uuid,
            "inputSettings": input.settings,
        }),
    ))
}

/// `CreateInput`: the input and its scene item, at the top left of the scene.
pub(super) fn create_input(state: &mut ObsState, fields: &Fields<'_>) -> Result<Done, Failure> {
    let scene = fields.scene(state)?;
    let name = fields.string("inputName")?;
    let kind = fields.string("inputKind")?;
    if find_source(state, |source_name, _| source_name == name).is_some() {
        return Err(fail(
            status::RESOURCE_ALREADY_EXISTS,
            "A source already exists by that input name.",
        ));
    }
    if !state.input_kinds().any(|k| k == kind) {
        return Err(fail(
            status::INVALID_INPUT_KIND,
            "Your specified input kind is not supported by OBS. Check that your specified kind is \
             properly versioned and that any necessary plugins are loaded.",
        ));
    }
    let settings = fields.optional_object("inputSettings")?.cloned();
    let enabled = fields.optional_bool("sceneItemEnabled")?.unwrap_or(true);
    let scene_item_id = state
        .inputs
        .iter()
        .map(|i| i.scene_item_id)
        .max()
        .unwrap_or(0)
        + 1;
    let mut input = FakeInput::new(
        name,
        kind,
        &scene,
        scene_item_id,
        Value::Object(settings.unwrap_or_default()),
    );
    input.enabled = enabled;
    // A new source gets a fresh UUID even if an earlier one had the same name and item ID.
    input.uuid = uuid_from(&random_token());
    let index = state.inputs.iter().filter(|i| i.scene == scene).count();
    let done = Done::data(json!({ "inputUuid": input.uuid, "sceneItemId": scene_item_id }))
        .event("InputCreated", intent::INPUTS, {
            let mut created = listed(&input);
            created["inputSettings"] = input.settings.clone();
            created["defaultInputSettings"] = default_settings(&input.kind);
            created
        })
        .event(
            "SceneItemCreated",
            intent::SCENE_ITEMS,
            json!({
                "sceneName": scene,
                "sceneUuid": ObsState::scene_uuid(&scene),
                "sourceName": input.name,
                "sourceUuid": input.uuid,
                "sceneItemId": scene_item_id,
                "sceneItemIndex": index,
            }),
        );
    state.inputs.push(input);
    Ok(done)
}

fn default_settings(kind: &str) -> Value {
    match kind {
        "browser_source" => json!({
            "url": "https://obsproject.com/browser-source",
            "width": 800,
            "height": 600,
            "fps": 30,
            "fps_custom": false,
            "reroute_audio": false,
            "restart_when_active": false,
            "shutdown": false,
            "webpage_control_level": 1,
        }),
        _ => json!({}),
    }
}

/// `obs_source_get_output_flags`, roughly: video (1), audio (2), async (4), custom draw (8).
fn input_caps(kind: &str) -> u32 {
    match kind {
        "browser_source" => 1 | 2 | 8,
        "ffmpeg_source" | "v4l2_input" => 1 | 2 | 4,
        "pulse_input_capture" | "pulse_output_capture" => 2,
        _ => 1,
    }
}

/// The kind without its `_vN` suffix, as `obs_source_get_unversioned_id` gives it.
fn unversioned(kind: &str) -> &str {
    match kind.rsplit_once("_v") {
        Some((base, version))
            if !version.is_empty() && version.chars().all(|c| c.is_ascii_digit()) =>
        {
            base
        }
        _ => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::unversioned;

    #[test]
    fn unversioned_kinds_lose_only_a_version_suffix() {
        assert_eq!(unversioned("color_source_v3"), "color_source");
        assert_eq!(unversioned("browser_source"), "browser_source");
    }
}
