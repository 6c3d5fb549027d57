//! Stagehand's integration tests: one binary, one module per capability, shared `support`.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

mod accounts;
mod auth;
mod browser;
mod guards;
mod media;
mod moderator_browser;
mod moderators;
mod obs;
mod overlays;
mod panel;
mod panel_browser;
mod persistence;
mod probes;
mod relay;
mod remote_moderators;
mod secrets;
mod tts;
mod webhooks;
