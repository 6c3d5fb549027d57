//! `requestData` as obs-websocket reads it: required and optional fields with its codes and
//! comments, and sources looked up by name or UUID in the one namespace scenes and inputs share.

use serde_json::{Map, Value};

use super::{Failure, fail};
use crate::fake_obs::protocol::status;
use crate::fake_obs::state::ObsState;

/// `requestData` checks with obs-websocket's codes and comments (`Request.cpp`).
pub(super) struct Fields<'a> {
    data: Option<&'a Map<String, Value>>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(data: &'a Value) -> Self {
        Self {
            data: data.as_object(),
        }
    }

    /// Present and not null (`Request::Contains`).
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.data?.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn required(&self, key: &str) -> Result<&'a Value, Failure> {
        if self.data.is_none() {
            return Err(fail(
                status::MISSING_REQUEST_DATA,
                "Your request data is missing or invalid (non-object)",
            ));
        }
        self.get(key).ok_or_else(|| {
            fail(
                status::MISSING_REQUEST_FIELD,
                format!("Your request is missing the `{key}` field."),
            )
        })
    }

    pub(super) fn check_string(key: &str, value: &'a Value) -> Result<&'a str, Failure> {
        let text = value.as_str().ok_or_else(|| {
            fail(
                status::INVALID_REQUEST_FIELD_TYPE,
                format!("The field value of `{key}` must be a string."),
            )
        })?;
        if text.is_empty() {
            return Err(fail(
                status::REQUEST_FIELD_EMPTY,
                format!("The field value of `{key}` must not be empty."),
            ));
        }
        Ok(text)
    }

    pub(super) fn string(&self, key: &str) -> Result<&'a str, Failure> {
        Self::check_string(key, self.required(key)?)
    }

    pub(super) fn optional_string(&self, key: &str) -> Result<Option<&'a str>, Failure> {
        self.get(key)
            .map(|v| Self::check_string(key, v))
            .transpose()
    }

    pub(super) fn optional_bool(&self, key: &str) -> Result<Option<bool>, Failure> {
        self.get(key)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    fail(
                        status::INVALID_REQUEST_FIELD_TYPE,
                        format!("The field value of `{key}` must be boolean."),
                    )
                })
            })
            .transpose()
    }

    pub(super) fn check_object(
        key: &str,
        value: &'a Value,
    ) -> Result<&'a Map<String, Value>, Failure> {
        value.as_object().ok_or_else(|| {
            fail(
                status::INVALID_REQUEST_FIELD_TYPE,
                format!("The field value of `{key}` must be an object."),
            )
        })
    }

    pub(super) fn object(&self, key: &str) -> Result<&'a Map<String, Value>, Failure> {
        Self::check_object(key, self.required(key)?)
    }

    pub(super) fn optional_object(
        &self,
        key: &str,
    ) -> Result<Option<&'a Map<String, Value>>, Failure> {
        self.get(key)
            .map(|v| Self::check_object(key, v))
            .transpose()
    }

    pub(super) fn check_number(key: &str, value: &Value, min: f64) -> Result<f64, Failure> {
        let number = value.as_f64().ok_or_else(|| {
            fail(
                status::INVALID_REQUEST_FIELD_TYPE,
                format!("The field value of `{key}` must be a number."),
            )
        })?;
        if number < min {
            return Err(fail(
                status::REQUEST_FIELD_OUT_OF_RANGE,
                format!("The field value of `{key}` is below the minimum of `{min:.6}`"),
            ));
        }
        Ok(number)
    }

    pub(super) fn number(&self, key: &str, min: f64) -> Result<f64, Failure> {
        Self::check_number(key, self.required(key)?, min)
    }

    pub(super) fn optional_number(&self, key: &str, min: f64) -> Result<Option<f64>, Failure> {
        self.get(key)
            .map(|v| Self::check_number(key, v, min))
            .transpose()
    }

    /// `Request::ValidateSource`: by name if a usable name is given, else by UUID.
    pub(super) fn source(
        &self,
        state: &ObsState,
        name_key: &str,
        uuid_key: &str,
    ) -> Result<Source, Failure> {
        if let Ok(name) = self.string(name_key) {
            return find_source(state, |source_name, _| source_name == name).ok_or_else(|| {
                fail(
                    status::RESOURCE_NOT_FOUND,
                    format!("No source was found by the name of `{name}`."),
                )
            });
        }
        if let Ok(uuid) = self.string(uuid_key) {
            return find_source(state, |_, source_uuid| source_uuid == uuid).ok_or_else(|| {
                fail(
                    status::RESOURCE_NOT_FOUND,
                    format!("No source was found by the UUID of `{uuid}`."),
                )
            });
        }
        Err(fail(
            status::MISSING_REQUEST_FIELD,
            format!(
                "Your request must contain at least one of the following fields: `{name_key}` \
                 or `{uuid_key}`."
            ),
        ))
    }

    /// The scene named by `sceneName`/`sceneUuid`.
    pub(super) fn scene(&self, state: &ObsState) -> Result<String, Failure> {
        match self.source(state, "sceneName", "sceneUuid")? {
            Source::Scene(name) => Ok(name),
            Source::Input(_) => Err(fail(
                status::INVALID_RESOURCE_TYPE,
                "The specified source is not a scene.",
            )),
        }
    }

    /// The index of the input named by `inputName`/`inputUuid`.
    pub(super) fn input(&self, state: &ObsState) -> Result<usize, Failure> {
        match self.source(state, "inputName", "inputUuid")? {
            Source::Input(index) => Ok(index),
            Source::Scene(_) => Err(fail(
                status::INVALID_RESOURCE_TYPE,
                "The specified source is not an input.",
            )),
        }
    }

    /// The index of the input behind `sceneItemId` in the given scene.
    pub(super) fn scene_item(&self, state: &ObsState) -> Result<usize, Failure> {
        let scene = self.scene(state)?;
        let id = self.number("sceneItemId", 0.0)?;
        state
            .inputs
            .iter()
            .position(|i| i.scene == scene && i.scene_item_id as f64 == id)
            .ok_or_else(|| {
                fail(
                    status::RESOURCE_NOT_FOUND,
                    format!("No scene items were found in scene `{scene}` with the ID `{id}`."),
                )
            })
    }
}

/// Scenes and inputs are both sources in OBS and share one namespace.
pub(super) enum Source {
    Scene(String),
    Input(usize),
}

pub(super) fn find_source(
    state: &ObsState,
    matches: impl Fn(&str, &str) -> bool,
) -> Option<Source> {
    if let Some(scene) = state
        .scenes
        .iter()
        .find(|s| matches(s, &ObsState::scene_uuid(s)))
    {
        return Some(Source::Scene(scene.clone()));
    }
    state
        .inputs
        .iter()
        .position(|i| matches(&i.name, &i.uuid))
        .map(Source::Input)
}
