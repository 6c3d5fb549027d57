//! A scene: the ordered layers an overlay shows, and the rules a saved scene must follow.

use serde::{Deserialize, Serialize};

/// What a layer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// Styled text (`props.text`).
    Text,
    /// A picture (`props.src`).
    Image,
    /// Video or audio (`props.src`, `props.media_kind`, `props.loop`, `props.muted`).
    Media,
    /// Where alerts appear.
    AlertBox,
    /// Where chat lines appear.
    ChatBox,
    /// A price chart.
    Chart,
}

/// One layer: position and size in overlay pixels, stacking order, visibility, style.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Stable id within the scene (1-64 of `A-Za-z0-9_-`).
    pub id: String,
    /// What it shows.
    pub kind: LayerKind,
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width (≥ 0).
    pub w: f64,
    /// Height (≥ 0).
    pub h: f64,
    /// Stacking order; higher is in front.
    #[serde(default)]
    pub z: i32,
    /// Hidden layers stay in the scene but are not drawn.
    #[serde(default = "yes")]
    pub visible: bool,
    /// CSS-like style (the page applies a whitelist).
    #[serde(default)]
    pub style: serde_json::Map<String, serde_json::Value>,
    /// Kind-specific properties.
    #[serde(default)]
    pub props: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

/// The scene of one overlay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    /// Layers in order.
    pub layers: Vec<Layer>,
}

impl Scene {
    /// Checks the scene; the message names the first problem.
    pub fn validate(&self, max_layers: usize) -> Result<(), String> {
        if self.layers.len() > max_layers {
            return Err(format!(
                "a scene holds at most {max_layers} layers, this one has {}",
                self.layers.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for layer in &self.layers {
            let id_ok = !layer.id.is_empty()
                && layer.id.len() <= 64
                && layer
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !id_ok {
                return Err(format!(
                    "layer id `{}` must be 1-64 of A-Z a-z 0-9 _ -",
                    layer.id.chars().take(70).collect::<String>()
                ));
            }
            if !seen.insert(layer.id.as_str()) {
                return Err(format!("layer id `{}` is used twice", layer.id));
            }
            for (name, value) in [
                ("x", layer.x),
                ("y", layer.y),
                ("w", layer.w),
                ("h", layer.h),
            ] {
                if !value.is_finite() || value.abs() > 100_000.0 {
                    return Err(format!(
                        "layer `{}`: {name} must be a number within ±100000",
                        layer.id
                    ));
                }
            }
            if layer.w < 0.0 || layer.h < 0.0 {
                return Err(format!(
                    "layer `{}`: width and height must not be negative",
                    layer.id
                ));
            }
        }
        Ok(())
    }
}

/// What a page at one version needs to reach the next: the layers that are new or changed, and
/// the ids of all layers in order (a layer missing from it was removed).
#[derive(Debug, PartialEq, Serialize)]
pub struct SceneDiff<'a> {
    /// New or changed layers, whole.
    pub layers: Vec<&'a Layer>,
    /// Every layer id of the new scene, in order.
    pub order: Vec<&'a str>,
}

impl Scene {
    /// What changed from `old` to this scene.
    pub fn diff_from<'a>(&'a self, old: &Scene) -> SceneDiff<'a> {
        let before: std::collections::HashMap<&str, &Layer> =
            old.layers.iter().map(|l| (l.id.as_str(), l)).collect();
        SceneDiff {
            layers: self
                .layers
                .iter()
                .filter(|l| before.get(l.id.as_str()) != Some(l))
                .collect(),
            order: self.layers.iter().map(|l| l.id.as_str()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(id: &str) -> Layer {
        serde_json::from_value(
            serde_json::json!({"id": id, "kind": "text", "x": 1, "y": 2, "w": 3, "h": 4}),
        )
        .expect("a minimal layer parses")
    }

    #[test]
    fn a_diff_holds_only_new_and_changed_layers_and_the_order() {
        let old = Scene {
            layers: vec![layer("a"), layer("b"), layer("c")],
        };
        let mut moved = layer("b");
        moved.x = 40.0;
        let new = Scene {
            layers: vec![layer("c"), moved.clone(), layer("d")],
        };
        let diff = new.diff_from(&old);
        assert_eq!(diff.layers, vec![&moved, &layer("d")]);
        assert_eq!(
            diff.order,
            vec!["c", "b", "d"],
            "a is gone, c moved to the back"
        );
        assert!(old.diff_from(&old).layers.is_empty());
    }

    #[test]
    fn defaults_and_validation() {
        let l = layer("a");
        assert!(l.visible, "layers are visible unless hidden");
        assert_eq!(l.z, 0);
        let ok = Scene {
            layers: vec![layer("a"), layer("b")],
        };
        assert!(ok.validate(10).is_ok());
        let dup = Scene {
            layers: vec![layer("a"), layer("a")],
        };
        assert!(
            dup.validate(10)
                .expect_err("duplicate ids")
                .contains("twice")
        );
        assert!(
            ok.validate(1)
                .expect_err("too many layers")
                .contains("at most 1")
        );
        let mut bad = layer("c");
        bad.w = -1.0;
        assert!(Scene { layers: vec![bad] }.validate(10).is_err());
        assert!(
            Scene {
                layers: vec![layer("no spaces")]
            }
            .validate(10)
            .is_err()
        );
        let unknown = serde_json::from_value::<Layer>(
            serde_json::json!({"id": "a", "kind": "laser", "x": 0, "y": 0, "w": 0, "h": 0}),
        );
        assert!(unknown.is_err(), "unknown kinds are refused");
    }
}
