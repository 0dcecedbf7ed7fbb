//! `/api/auth/*` and `/api/users/me`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{
    authenticate, check_token, json_object, optional_json_object, optional_str, required_str,
    token_error, Shared,
};
use crate::auth::{hash_password, verify_password, TokenKind};
use crate::config::MIN_PASSWORD_LEN;
use crate::errors::ApiError;

const MAX_EMAIL_LEN: usize = 254;
const MAX_PASSWORD_LEN: usize = 1024;
const MAX_NAME_LEN: usize = 200;

/// Lower-cased, trimmed, and shaped like `local@domain.tld`.
fn valid_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let ok = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(char::is_whitespace)
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(email)
    } else {
        Err(ApiError::invalid("email", "must be a valid email address"))
    }
}

fn rate_limited(retry_after: u64, what: &str) -> ApiError {
    ApiError::RateLimited {
        retry_after,
        message: format!("too many {what}; retry in {retry_after} s"),
    }
}

/// Runs a password hash off the async workers (its cost is configurable, so it may be slow).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::Internal("password hashing failed".into()))
}

#[utoipa::path(
    post, path = "/api/auth/register", tag = "auth",
    request_body = crate::schemas::RegisterRequest,
    responses(
        (status = 201, description = "registered", body = crate::schemas::User),
        (status = 409, description = "email already registered", body = crate::schemas::Error),
        (status = 422, description = "invalid body; `field` names the field", body = crate::schemas::Error),
        (status = 429, description = "too many registrations (`Retry-After`)", body = crate::schemas::Error),
    )
)]
pub async fn register(State(state): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let map = json_object(&body)?;
    let email = valid_email(required_str(&map, "email")?)?;
    let password = required_str(&map, "password")?;
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ApiError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::invalid("password", "is too long"));
    }
    let full_name = optional_str(&map, "full_name")?
        .unwrap_or("")
        .trim()
        .to_owned();
    if full_name.chars().count() > MAX_NAME_LEN {
        return Err(ApiError::invalid("full_name", "is too long"));
    }
    state
        .register_limit
        .hit("")
        .map_err(|s| rate_limited(s, "registrations"))?;
    if state.users.contains_email(&email) {
        return Err(ApiError::Conflict("email already registered".into()));
    }
    let password = password.to_owned();
    let iterations = state.config.password_hash_iterations;
    let hash = blocking(move || hash_password(&password, iterations))
        .await?
        .map_err(ApiError::Internal)?;
    let user = state
        .users
        .insert(email, full_name, false, hash)
        .map_err(|_| ApiError::Conflict("email already registered".into()))?;
    Ok((StatusCode::CREATED, Json(user.to_json())).into_response())
}

#[utoipa::path(
    post, path = "/api/auth/login", tag = "auth",
    request_body = crate::schemas::LoginRequest,
    responses(
        (status = 200, description = "tokens", body = crate::schemas::LoginResponse),
        (status = 401, description = "invalid email or password", body = crate::schemas::Error),
        (status = 422, description = "invalid body; `field` names the field", body = crate::schemas::Error),
        (status = 429, description = "too many login attempts for this account (`Retry-After`)", body = crate::schemas::Error),
    )
)]
pub async fn login(State(state): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let map = json_object(&body)?;
    // OAuth2-style clients send `username`; accept it when `email` is absent.
    let username = optional_str(&map, "username")?;
    let email = match optional_str(&map, "email")? {
        Some(e) => e,
        None => match username {
            Some(u) => u,
            None => return Err(ApiError::invalid("email", "field required")),
        },
    }
    .trim()
    .to_lowercase();
    let password = required_str(&map, "password")?.to_owned();
    state
        .login_limit
        .hit(&email)
        .map_err(|s| rate_limited(s, "login attempts for this account"))?;
    let bad = || ApiError::unauthorized("invalid email or password");
    let user = state.users.by_email(&email).ok_or_else(bad)?;
    let stored = user.password.clone();
    if !blocking(move || verify_password(&password, &stored)).await? {
        return Err(bad());
    }
    let (access, _) = state
        .tokens
        .issue(user.id, TokenKind::Access)
        .map_err(token_error)?;
    let (refresh, _) = state
        .tokens
        .issue(user.id, TokenKind::Refresh)
        .map_err(token_error)?;
    Ok(Json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": state.tokens.access_ttl,
        "user": user.to_json(),
    }))
    .into_response())
}

#[utoipa::path(
    post, path = "/api/auth/refresh", tag = "auth",
    request_body = crate::schemas::RefreshRequest,
    responses(
        (status = 200, description = "a new access token", body = crate::schemas::RefreshResponse),
        (status = 401, description = "bad, expired or revoked refresh token", body = crate::schemas::Error),
        (status = 422, description = "invalid body; `field` names the field", body = crate::schemas::Error),
    )
)]
pub async fn refresh(State(state): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let map = json_object(&body)?;
    let token = required_str(&map, "refresh_token")?;
    let (user, _) = check_token(&state, token, TokenKind::Refresh)?;
    let (access, _) = state
        .tokens
        .issue(user.id, TokenKind::Access)
        .map_err(token_error)?;
    Ok(Json(json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": state.tokens.access_ttl,
    }))
    .into_response())
}

/// Revokes the bearer access token, and the refresh token too when the body names one.
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "auth",
    request_body(content = Option<crate::schemas::LogoutRequest>, description = "optional"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "the access token (and the refresh token, if given) is revoked"),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 422, description = "invalid body; `field` names the field", body = crate::schemas::Error),
    )
)]
pub async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (user, claims) = authenticate(&state, &headers)?;
    if let Some(map) = optional_json_object(&body)? {
        if let Some(token) = optional_str(&map, "refresh_token")? {
            // only the caller's own, valid refresh token is revoked; others are ignored
            if let Ok((owner, r)) = check_token(&state, token, TokenKind::Refresh) {
                if owner.id == user.id {
                    state.revoked.revoke(&r.jti, r.exp);
                }
            }
        }
    }
    state.revoked.revoke(&claims.jti, claims.exp);
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get, path = "/api/users/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller", body = crate::schemas::User),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
    )
)]
pub async fn me(State(state): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (user, _) = authenticate(&state, &headers)?;
    Ok(Json(user.to_json()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(valid_email(" A@Example.COM ").unwrap(), "a@example.com");
        for bad in [
            "", "a", "a@b", "@b.io", "a@.io", "a@b.", "a b@c.io", "a@b@c.io",
        ] {
            assert!(valid_email(bad).is_err(), "{bad}");
        }
    }
}
