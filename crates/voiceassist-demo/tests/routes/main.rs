//! The demo server's routes, in process: every HTTP route through `voiceassist_demo::app(config)`.
//!
//! One test binary for all of them: each file directly under `tests/` would be a crate of its own, linked
//! separately (axum and all), which costs the workspace's test build more than the tests take to run.

mod admin;
mod auth;
mod chat;
mod common;
mod documents;
mod server;
