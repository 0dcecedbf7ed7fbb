//! The demo API's errors and their JSON bodies: `{"error": code, "message": text}`, plus
//! `"field"` for a 422, and `Retry-After` for a 429.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 422: the body is not valid; `field` names the offending field (`"body"` for bad JSON).
    Validation { field: String, message: String },
    /// 401, with `WWW-Authenticate: Bearer`.
    Unauthorized(String),
    /// 403: authenticated, but not allowed (not an admin).
    Forbidden(String),
    /// 404.
    NotFound(String),
    /// 409.
    Conflict(String),
    /// 400: a body that cannot be parsed at all (a broken multipart stream).
    BadRequest(String),
    /// 413: an upload over the size limit.
    PayloadTooLarge(String),
    /// 415: a file (or body) of a type the route does not take.
    UnsupportedMediaType(String),
    /// 429, with `Retry-After` in seconds.
    RateLimited { retry_after: u64, message: String },
    /// 500; the message is safe to show (no secrets).
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            Self::Validation { field, message } => json!({
                "error": "validation_error",
                "field": field,
                "message": format!("{field}: {message}"),
            }),
            Self::Unauthorized(m) => json!({"error": "unauthorized", "message": m}),
            Self::Forbidden(m) => json!({"error": "forbidden", "message": m}),
            Self::NotFound(m) => json!({"error": "not_found", "message": m}),
            Self::Conflict(m) => json!({"error": "conflict", "message": m}),
            Self::BadRequest(m) => json!({"error": "bad_request", "message": m}),
            Self::PayloadTooLarge(m) => json!({"error": "payload_too_large", "message": m}),
            Self::UnsupportedMediaType(m) => {
                json!({"error": "unsupported_media_type", "message": m})
            }
            Self::RateLimited {
                retry_after,
                message,
            } => json!({"error": "rate_limited", "message": message, "retry_after": retry_after}),
            Self::Internal(m) => json!({"error": "internal_error", "message": m}),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_carries_retry_after() {
        let r = ApiError::RateLimited {
            retry_after: 7,
            message: "slow down".into(),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn unauthorized_asks_for_a_bearer_token() {
        let r = ApiError::unauthorized("no").into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
