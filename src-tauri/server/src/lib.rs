//! Stagehand's HTTP server on 127.0.0.1: the one door browsers, OBS, the desktop window and
//! API clients use to reach the engine.
//!
//! [`router`] builds the whole app from an [`AppState`]; [`Server`] binds a listener and serves
//! it until a shutdown future completes. Tests bind `127.0.0.1:0` and drive the real router.
//! Every handler is thin: it checks who is calling, calls one engine method and maps the error.
//!
//! # Where things are
//!
//! Each capability is one module with a `routes()` function; [`routes`] merges them in one
//! place. The JSON API lives under `/api/`; pages, assets, probes, sockets (`/ws/…`), webhook
//! receivers (`/webhooks/…`), the OAuth callback and `/session` keep their own paths, and
//! `/overlays` and `/obs/sources` stay as aliases the spec names.
//!
//! | module | doors |
//! | --- | --- |
//! | `pages` | `/`, `/login`, `/panel/…`, `/ui/{file}` |
//! | `auth` | `/session`, `/session/logout`, and the [`auth::Streamer`] extractor |
//! | `probes` | `/healthz`, `/readyz`, `/metrics` |
//! | `status` | `/api/status`, `/api/audit` |
//! | `ws` | `/ws/events` |
//! | `overlays` (+ `overlay_socket`) | `/api/overlays…`, `/o/{id}`, `/overlay-assets/…`, `/ws/overlay/{id}` |
//! | `scenes` | scenes, alerts, chat and chart test data, live figures |
//! | `moderators` (+ `moderator_socket`) | `/api/moderator-…`, `/m/{key}`, `/moderator`, `/ws/moderator` |
//! | `obs` · `accounts` · `webhooks` · `media` · `tts` · `relay` | their `/api/…` routes and public doors |
//!
//! Shared pieces: `error` (the [`error::ApiError`] type and the one table from
//! [`stagehand_protocol::ErrorCode`] to status), `extract` (`FormOrJson`), `cookies` (both
//! session cookies), `guard` (Host, Origin, LAN and relay checks) and `allowed` (the lists it
//! checks against), `observe` (metrics and security headers), `state` ([`AppState`]), `serve`
//! ([`Server`]), `relay_door` (the relay's moderator door served in process by the router,
//! [`relay_door::RelayDoor`]) and `relayed_socket` (a relayed WebSocket as the socket handler
//! sees it).
//!
//! # Dependency direction
//!
//! Imports between modules only point down this list, never back up, so there is no cycle
//! (check with `grep -n "crate::" src/*.rs`):
//!
//! 1. `serve` → `routes`, `relay_door`, `state`, `allowed`; `relay_door` → `routes`,
//!    `relayed_socket`, `guard`, `error`, `state`
//! 2. `routes` → every capability module, `guard`, `observe`, `error`, `state`
//! 3. capability modules (`pages`, `auth`, `probes`, `status`, `overlays`, `scenes`,
//!    `moderators`, `obs`, `accounts`, `webhooks`, `media`, `tts`, `relay`) → the layers below,
//!    not each other, except: `overlays` → `overlay_socket` (its socket), `moderators` →
//!    `moderator_socket` (its socket), `pages` (the pages' CSP) and `guard` (the `Relayed`
//!    mark); `moderator_socket` → `auth` (who is asking) and `relayed_socket`
//! 4. `guard`, `ws`, `overlay_socket`, `relayed_socket`, `observe` → `auth`, `cookies`, `allowed`, `error`,
//!    `state` (`ws` holds the socket sizing `moderators` and `overlay_socket` use)
//! 5. `auth` (the `Streamer` extractor) → `cookies`, `extract`, `error`, `state`
//! 6. `cookies`, `extract` → `error`; `state` → `allowed`; `error` and `allowed` → the engine
//!    and protocol crates only

mod accounts;
mod allowed;
pub mod auth;
mod cookies;
pub mod error;
mod extract;
pub mod guard;
mod media;
mod moderator_socket;
mod moderators;
mod obs;
mod observe;
mod overlay_socket;
mod overlays;
mod pages;
mod probes;
mod relay;
pub mod relay_door;
mod relayed_socket;
pub mod routes;
mod scenes;
mod serve;
mod state;
mod status;
mod tts;
mod webhooks;
pub mod ws;

pub use routes::router;
pub use serve::{Server, ServerError, lan_addresses};
pub use state::AppState;
