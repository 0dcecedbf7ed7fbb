//! Admin-only routes (403 for anyone else): the dashboard, the request metrics and the user list; `require_admin`
//! guards the other admin routes too.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{authenticate, page_json, Page, Shared};
use crate::errors::ApiError;
use crate::state::User;

/// The caller, if an admin: 401 without a valid token, 403 for a non-admin.
pub fn require_admin(state: &Shared, headers: &HeaderMap) -> Result<Arc<User>, ApiError> {
    let (user, _) = authenticate(state, headers)?;
    if !user.is_admin {
        return Err(ApiError::Forbidden("admin privileges required".into()));
    }
    Ok(user)
}

#[utoipa::path(
    get, path = "/api/admin/dashboard", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "counts", body = crate::schemas::Dashboard),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 403, description = "not an admin", body = crate::schemas::Error),
    )
)]
pub async fn dashboard(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let (conversations, messages) = state.conversations.counts();
    let (documents, documents_ready) = state.documents.counts();
    Ok(Json(json!({
        "users": state.users.len(),
        "conversations": conversations,
        "messages": messages,
        "queries": state.queries.load(Ordering::Relaxed),
        "documents": documents,
        "documents_ready": documents_ready,
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
    .into_response())
}

#[utoipa::path(
    get, path = "/api/admin/users", tag = "admin",
    params(crate::schemas::PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "users in registration order", body = crate::schemas::UserPage),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 403, description = "not an admin", body = crate::schemas::Error),
        (status = 422, description = "bad `page` or `page_size`", body = crate::schemas::Error),
    )
)]
pub async fn users(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let page = Page::parse(raw.as_deref())?;
    let (users, total) = state.users.page(page.offset(), page.page_size);
    let items = users.iter().map(|u| u.to_json()).collect();
    Ok(Json(page_json(items, total, page)).into_response())
}

#[utoipa::path(
    get, path = "/api/admin/metrics", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "request metrics the server keeps", body = crate::schemas::Metrics),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 403, description = "not an admin", body = crate::schemas::Error),
    )
)]
pub async fn metrics(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let mut body = state.metrics.to_json();
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "realtime".to_owned(),
            serde_json::to_value(state.realtime.snapshot()).unwrap_or_default(),
        );
    }
    Ok(Json(body).into_response())
}
