//! Stagehand at a glance: OBS, overlay pages and the relay in a few words, for the desktop
//! tray (and anything else that has one line of room).
//!
//! The engine words it, so the tray does not re-derive states from the status calls and every
//! door says the same thing.

use serde::Serialize;

use crate::obs::ConnectionState;
use crate::relay_link::RelayState;
use crate::{Engine, EngineError};

/// One overlay, with its connected pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OverlayGlance {
    /// Its id.
    pub overlay_id: String,
    /// Its name.
    pub name: String,
    /// Pages (OBS browser sources, previews) connected now.
    pub pages: usize,
}

/// What the tray shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSummary {
    /// The OBS connection.
    pub obs: ConnectionState,
    /// The relay link.
    pub relay: RelayState,
    /// Every overlay, oldest first.
    pub overlays: Vec<OverlayGlance>,
}

impl StatusSummary {
    /// Overlay pages connected, over all overlays.
    pub fn pages(&self) -> usize {
        self.overlays.iter().map(|o| o.pages).sum()
    }

    /// `OBS: connected`, and so on.
    pub fn obs_line(&self) -> String {
        let state = match self.obs {
            ConnectionState::Identified => "connected",
            ConnectionState::Connecting => "connecting…",
            ConnectionState::Lost => "not connected",
            ConnectionState::Disabled => "off",
        };
        format!("OBS: {state}")
    }

    /// `Overlays: 2 pages connected`, and so on.
    pub fn overlays_line(&self) -> String {
        let pages = self.pages();
        match (self.overlays.len(), pages) {
            (0, _) => "Overlays: none yet".into(),
            (_, 0) => "Overlays: no page connected".into(),
            (_, 1) => "Overlays: 1 page connected".into(),
            (_, n) => format!("Overlays: {n} pages connected"),
        }
    }

    /// `Relay: linked`, and so on.
    pub fn relay_line(&self) -> String {
        let state = match self.relay {
            RelayState::Linked => "linked",
            RelayState::Connecting => "connecting…",
            RelayState::Lost => "not linked",
            RelayState::Disabled => "not set up",
        };
        format!("Relay: {state}")
    }

    /// All three in one line (a tray tooltip).
    pub fn tooltip(&self) -> String {
        format!(
            "Stagehand · {} · {} · {}",
            self.obs_line(),
            self.overlays_line(),
            self.relay_line()
        )
    }
}

impl Engine {
    /// OBS, overlays with their connected pages, and the relay, now.
    pub async fn status_summary(&self) -> Result<StatusSummary, EngineError> {
        let figures = self.overlays().hub().figures();
        let overlays = self
            .overlays()
            .list()
            .await?
            .into_iter()
            .map(|o| OverlayGlance {
                pages: figures.get(&o.overlay_id).map_or(0, Vec::len),
                overlay_id: o.overlay_id,
                name: o.name,
            })
            .collect();
        Ok(StatusSummary {
            obs: self.obs_status().state,
            relay: self.relay_status().state,
            overlays,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(obs: ConnectionState, relay: RelayState, pages: &[usize]) -> StatusSummary {
        StatusSummary {
            obs,
            relay,
            overlays: pages
                .iter()
                .enumerate()
                .map(|(i, &pages)| OverlayGlance {
                    overlay_id: format!("ov_{i}"),
                    name: format!("Overlay {i}"),
                    pages,
                })
                .collect(),
        }
    }

    #[test]
    fn lines_say_each_state_in_words() {
        let s = summary(ConnectionState::Identified, RelayState::Linked, &[1, 2]);
        assert_eq!(s.obs_line(), "OBS: connected");
        assert_eq!(s.overlays_line(), "Overlays: 3 pages connected");
        assert_eq!(s.relay_line(), "Relay: linked");
        assert_eq!(
            s.tooltip(),
            "Stagehand · OBS: connected · Overlays: 3 pages connected · Relay: linked"
        );
        let s = summary(ConnectionState::Lost, RelayState::Disabled, &[]);
        assert_eq!(s.obs_line(), "OBS: not connected");
        assert_eq!(s.overlays_line(), "Overlays: none yet");
        assert_eq!(s.relay_line(), "Relay: not set up");
        let s = summary(ConnectionState::Disabled, RelayState::Lost, &[0, 1]);
        assert_eq!(s.obs_line(), "OBS: off");
        assert_eq!(s.overlays_line(), "Overlays: 1 page connected");
        assert_eq!(s.relay_line(), "Relay: not linked");
        let s = summary(ConnectionState::Connecting, RelayState::Connecting, &[0]);
        assert_eq!(s.overlays_line(), "Overlays: no page connected");
    }
}
