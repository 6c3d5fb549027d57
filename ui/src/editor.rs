//! The scene editor, shared by the streamer's Overlays page and the moderator panel.
//!
//! Both pages render the same markup and load the same `assets/scene-editor.js`; only the way
//! a save travels differs (the page's own script hands the editor a `save` function).

use leptos::prelude::*;

/// The editor's script, served at `/ui/scene-editor.js`.
pub const SCENE_EDITOR_JS: &str = include_str!("../assets/scene-editor.js");

/// Whose page the editor is on (only the words differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EditorFor {
    /// The moderator panel.
    Moderator,
    /// The streamer's Overlays page.
    Streamer,
}

/// The scene editor's markup; `assets/scene-editor.js` brings it to life. The moderator's
/// copy saves over `/ws/moderator`, the streamer's over `PUT /api/overlays/{id}/scene`; the
/// markup and the editing are the same.
pub(crate) fn scene_editor(for_whom: EditorFor) -> impl IntoView {
    let empty = match for_whom {
        EditorFor::Moderator => "The streamer has no overlays yet.",
        EditorFor::Streamer => "Create an overlay above to edit its scene.",
    };
    view! {
        <section id="editor" class="card editor" aria-labelledby="editor-h">
            <h2 id="editor-h">"Overlay scenes"</h2>
            <div id="overlay-pick" hidden>
                <label for="overlay">"Overlay"</label>
                <select id="overlay"></select>
            </div>
            <p id="overlay-name" class="muted"></p>
            <p id="no-overlays" class="muted" hidden>{empty}</p>
            {(for_whom == EditorFor::Streamer).then(|| view! {
                <div class="actions editor-tools">
                    <button type="button" id="add-text" class="quiet">"Add text layer"</button>
                </div>
            })}
            <p id="stage-help" class="muted">
                "Drag a box to move it and its corner to resize it. With the keyboard: focus a box and use the arrow keys (hold Shift for 10 px steps), or type exact numbers below."
            </p>
            <div id="stage-wrap" class="stage-wrap">
                <div id="stage" class="stage" role="group" aria-label="Overlay preview" aria-describedby="stage-help"></div>
            </div>
            <div class="editor-side">
                <h3 id="layers-h">"Layers"</h3>
                <ul id="layers" class="layers" aria-labelledby="layers-h"></ul>
                <fieldset id="geometry" class="geometry" hidden>
                    <legend>"Position and size of " <span id="geometry-layer"></span></legend>
                    <div class="geometry-grid">
                        <label for="geo-x">"X"</label>
                        <input id="geo-x" type="number" step="1" inputmode="numeric" data-field="x" />
                        <label for="geo-y">"Y"</label>
                        <input id="geo-y" type="number" step="1" inputmode="numeric" data-field="y" />
                        <label for="geo-w">"Width"</label>
                        <input id="geo-w" type="number" step="1" min="8" inputmode="numeric" data-field="w" />
                        <label for="geo-h">"Height"</label>
                        <input id="geo-h" type="number" step="1" min="8" inputmode="numeric" data-field="h" />
                    </div>
                </fieldset>
            </div>
        </section>
    }
}
