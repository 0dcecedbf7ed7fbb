//! `GET /health`: no locks, one atomic counter.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::Shared;

#[utoipa::path(
    get, path = "/health", tag = "health",
    responses((status = 200, description = "the server is up", body = crate::schemas::Health))
)]
pub async fn health(State(state): State<Shared>) -> Json<Value> {
    state.requests_health.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "status": "ok",
        "service": "voiceassist-demo",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
}
