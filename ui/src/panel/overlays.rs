//! Overlays: create, rename, delete, the signed link (copy, Add to OBS), a live preview, and
//! the shared scene editor saving through `PUT /api/overlays/{id}/scene`.

use leptos::prelude::*;

use super::{Section, copy_field, panel_document};
use crate::editor::{EditorFor, scene_editor};

/// One overlay as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayRow {
    /// `ov_…`
    pub id: String,
    /// The streamer's name for it.
    pub name: String,
    /// Canvas width in pixels.
    pub width: u32,
    /// Canvas height in pixels.
    pub height: u32,
    /// The freshly signed link OBS loads.
    pub signed_url: String,
    /// Overlay pages connected now (from the realtime metrics).
    pub pages: usize,
}

/// What the Overlays page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaysView {
    /// Every overlay, oldest first.
    pub overlays: Vec<OverlayRow>,
    /// `limits.overlays`.
    pub limit: u32,
}

/// Canvas sizes offered when creating an overlay.
const SIZES: &[(&str, &str)] = &[
    ("1920x1080", "1920 × 1080 (Full HD, landscape)"),
    ("1280x720", "1280 × 720 (HD, landscape)"),
    ("2560x1440", "2560 × 1440 (1440p, landscape)"),
    ("1080x1920", "1080 × 1920 (portrait, for vertical streams)"),
];

fn pages_text(pages: usize) -> String {
    match pages {
        0 => "not open anywhere".to_owned(),
        1 => "open in 1 place".to_owned(),
        n => format!("open in {n} places"),
    }
}

fn overlay_row(row: OverlayRow) -> impl IntoView {
    let OverlayRow {
        id,
        name,
        width,
        height,
        signed_url,
        pages,
    } = row;
    let heading = format!("ov-{id}-h");
    let link_id = format!("link-{id}");
    let pages_class = if pages > 0 { "badge ok" } else { "badge" };
    view! {
        <li class="row overlay-row" data-overlay-id=id.clone() data-name=name.clone()
            data-width=width.to_string() data-height=height.to_string()
            aria-labelledby=heading.clone()>
            <div class="row-head">
                <h3 id=heading.clone()>{name.clone()}</h3>
                <span class="muted">{format!("{width} × {height}")}</span>
                <span class=pages_class data-pages=pages.to_string()>{pages_text(pages)}</span>
            </div>
            {copy_field(link_id, "Link for OBS".to_owned(), signed_url)}
            <div class="actions">
                <button type="button" data-action="add-to-obs">"Add to OBS"</button>
                <button type="button" data-action="edit" class="quiet">"Edit scene"</button>
                <button type="button" data-action="preview" class="quiet">"Preview"</button>
                <button type="button" data-action="rename" class="quiet">"Rename"</button>
                <button type="button" data-action="delete" class="danger">"Delete"</button>
            </div>
            <p class="row-status" role="status" aria-live="polite"></p>
        </li>
    }
}

/// `GET /panel/overlays`
pub fn overlays_page(view: &OverlaysView) -> String {
    let count = format!("{} of {} overlays", view.overlays.len(), view.limit);
    let empty = view.overlays.is_empty();
    let rows = view.overlays.clone();
    let body = view! {
        <section class="card wide" aria-labelledby="create-h">
            <h2 id="create-h">"New overlay"</h2>
            <form id="overlay-create" class="inline-form">
                <div>
                    <label for="new-name">"Name"</label>
                    <input id="new-name" name="name" maxlength="100" required autocomplete="off"
                        placeholder="Main scene" />
                </div>
                <div>
                    <label for="new-size">"Size"</label>
                    <select id="new-size" name="size">
                        {SIZES.iter().map(|(value, words)| view! { <option value=*value>{*words}</option> }).collect_view()}
                    </select>
                </div>
                <button type="submit">"Create overlay"</button>
            </form>
            <p class="muted">
                "Each overlay is a page for an OBS browser source. \"Add to OBS\" creates that source for you, in the OBS scene you pick."
            </p>
        </section>
        <section class="card wide" aria-labelledby="list-h" data-part="overlays">
            <h2 id="list-h">"Your overlays"</h2>
            <p class="muted" id="overlay-count">{count}</p>
            {empty.then(|| view! {
                <p class="muted" id="no-overlay-yet">"No overlays yet: create one above."</p>
            })}
            <ul id="overlay-list" class="rows">
                {rows.into_iter().map(overlay_row).collect_view()}
            </ul>
        </section>
        <section id="preview-card" class="card wide" aria-labelledby="preview-h" hidden>
            <h2 id="preview-h">"Preview: " <span id="preview-name"></span></h2>
            <p class="muted">
                "What OBS shows, scaled down. The preview is an open page too, so it counts as one place the overlay is open."
            </p>
            <div id="preview-wrap" class="preview-wrap">
                <iframe id="preview" title="Overlay preview" tabindex="-1"></iframe>
            </div>
            <button type="button" id="preview-close" class="quiet">"Close preview"</button>
        </section>
        {scene_editor(EditorFor::Streamer)}
    };
    panel_document(
        Section::Overlays,
        &["/ui/panel.js", "/ui/scene-editor.js", "/ui/overlays.js"],
        body.to_html(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, pages: usize) -> OverlayRow {
        OverlayRow {
            id: "ov_abc".into(),
            name: name.into(),
            width: 1280,
            height: 720,
            signed_url: "http://127.0.0.1:7420/o/ov_abc?sig=s1g&x=<y>".into(),
            pages,
        }
    }

    #[test]
    fn lists_overlays_with_their_link_escaped() {
        let html = overlays_page(&OverlaysView {
            overlays: vec![row("Main <b>scene</b> & co", 2)],
            limit: 20,
        });
        assert!(
            html.contains("Main &lt;b&gt;scene&lt;/b&gt; &amp; co"),
            "names are text: {html}"
        );
        assert!(!html.contains("<b>scene"), "{html}");
        assert!(
            html.contains(r#"value="http://127.0.0.1:7420/o/ov_abc?sig=s1g&amp;x=&lt;y&gt;""#),
            "the signed link is in a selectable field, escaped: {html}"
        );
        assert!(html.contains(r#"data-copy-from="link-ov_abc""#));
        assert!(html.contains("open in 2 places"));
        assert!(html.contains("1 of 20 overlays"));
        assert!(html.contains(r#"data-action="add-to-obs""#));
        assert!(html.contains(r#"data-action="delete""#));
        assert!(
            html.contains(r#"id="editor""#),
            "the shared scene editor is on the page"
        );
        assert!(html.contains(r#"src="/ui/scene-editor.js""#));
        assert!(!html.contains("No overlays yet"));
    }

    #[test]
    fn an_empty_list_says_what_to_do() {
        let html = overlays_page(&OverlaysView {
            overlays: vec![],
            limit: 20,
        });
        assert!(html.contains("No overlays yet: create one above."));
        assert!(html.contains(r#"<label for="new-name">Name</label>"#));
        assert!(html.contains(r#"<label for="new-size">Size</label>"#));
    }

    #[test]
    fn pages_in_words() {
        assert_eq!(pages_text(0), "not open anywhere");
        assert_eq!(pages_text(1), "open in 1 place");
        assert_eq!(pages_text(3), "open in 3 places");
    }
}
