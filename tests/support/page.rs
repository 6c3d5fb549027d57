//! An overlay page's scene as the tests follow it: built from `scene.full` and `scene.patch`
//! the way `overlays/overlay.js` builds it, so a test asserts on what the page would show
//! whichever form the server chose.

use serde_json::Value;

use crate::{Socket, next_json};

/// The scene a page holds.
#[derive(Debug, Default)]
pub struct PageScene {
    /// Version of the last scene message applied (0 before the first).
    pub version: i64,
    /// Layers in order.
    pub layers: Vec<Value>,
}

impl PageScene {
    /// Applies a scene message and returns true, or returns false for any other message. A
    /// patch already covered by a newer full scene is skipped, as the page skips it. Any
    /// other patch must start from the version held: the tests using this save one at a
    /// time, so a gap (which the page answers with `resync`) would be a bug here.
    pub fn apply(&mut self, message: &Value) -> bool {
        match message["type"].as_str() {
            Some("scene.full") => {
                self.version = message["version"].as_i64().expect("full scene version");
                self.layers = message["scene"]["layers"]
                    .as_array()
                    .expect("full scene layers")
                    .clone();
                true
            }
            Some("scene.patch") => {
                let from = message["from_version"]
                    .as_i64()
                    .expect("patch from_version");
                let to = message["to_version"].as_i64().expect("patch to_version");
                assert_eq!(to, from + 1, "a patch spans one version: {message}");
                if to <= self.version {
                    return true;
                }
                assert_eq!(
                    from, self.version,
                    "a patch from the version held: {message}"
                );
                let changed = message["layers"].as_array().expect("patch layers");
                let layers = message["order"]
                    .as_array()
                    .expect("patch order")
                    .iter()
                    .map(|id| {
                        changed
                            .iter()
                            .chain(&self.layers)
                            .find(|l| l["id"] == *id)
                            .unwrap_or_else(|| panic!("patch names unknown layer {id}"))
                            .clone()
                    })
                    .collect();
                self.layers = layers;
                self.version = to;
                true
            }
            _ => false,
        }
    }

    /// The layer with `id`.
    pub fn layer(&self, id: &str) -> &Value {
        self.layers
            .iter()
            .find(|l| l["id"] == id)
            .unwrap_or_else(|| panic!("no layer {id} in {:?}", self.layers))
    }

    /// Reads `page` until the next scene message, applies it and returns it (other messages
    /// are skipped).
    pub async fn next(&mut self, page: &mut Socket) -> Value {
        loop {
            let message = next_json(page).await;
            if self.apply(&message) {
                return message;
            }
        }
    }

    /// Reads `page` until the scene is at `version`.
    pub async fn reach(&mut self, page: &mut Socket, version: i64) {
        while self.version < version {
            self.next(page).await;
        }
        assert_eq!(self.version, version, "versions arrive one by one");
    }
}
