//! The router, and the helpers the handlers share: JSON bodies read field by field (so a 422
//! names the field) and bearer-token authentication.

mod auth;
mod health;

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{Map, Value};

use super::auth::{Claims, TokenError, TokenKind};
use super::errors::ApiError;
use super::state::{AppState, User};

pub type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/refresh", post(auth::refresh))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/users/me", get(auth::me))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// The body as a JSON object; anything else is a 422 naming `body`.
pub fn json_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("body", "must be a JSON object")),
        Err(e) => Err(ApiError::invalid("body", format!("invalid JSON: {e}"))),
    }
}

/// A required string field.
pub fn required_str<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(ApiError::invalid(field, "field required")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid(field, "must be a string")),
    }
}

/// An optional string field (absent or null is `None`).
pub fn optional_str<'a>(
    map: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(field, "must be a string")),
    }
}

pub fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Internal => ApiError::Internal(e.message().into()),
        _ => ApiError::unauthorized(e.message()),
    }
}

/// Checks a token of `kind`: signature, expiry, revocation, and that its user still exists.
pub fn check_token(
    state: &AppState,
    token: &str,
    kind: TokenKind,
) -> Result<(Arc<User>, Claims), ApiError> {
    let claims = state.tokens.verify(token, kind).map_err(token_error)?;
    if state.revoked.is_revoked(&claims.jti) {
        return Err(ApiError::unauthorized("token revoked"));
    }
    let user = claims
        .sub
        .parse::<u64>()
        .ok()
        .and_then(|id| state.users.by_id(id))
        .ok_or_else(|| ApiError::unauthorized("user no longer exists"))?;
    Ok((user, claims))
}

/// The user of the request's `Authorization: Bearer <access token>`.
pub fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Arc<User>, Claims), ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid authorization header"))?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    check_token(state, token, TokenKind::Access)
}
