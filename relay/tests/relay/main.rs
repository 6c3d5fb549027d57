//! The relay's integration tests: one binary, real SQLite files, real axum on 127.0.0.1:0 and
//! real WebSockets playing the engine.

#![allow(missing_docs)]

mod cli;
mod delivery;
mod durability;
mod links;
mod metrics;
mod refusals;
mod support;
