//! The router, and the helpers the handlers share: JSON bodies read field by field (so a 422
//! names the field) and bearer-token authentication.

pub(super) mod admin;
pub(super) mod auth;
pub(super) mod chat;
pub(super) mod documents;
pub(super) mod health;
mod observe;
mod realtime;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{Map, Value};

use super::auth::{Claims, TokenError, TokenKind};
use super::errors::ApiError;
use super::state::{AppState, User};

pub type Shared = Arc<AppState>;

/// The app. `openapi` is the document `/openapi.json` serves (the caller renders it: it describes
/// these routes, so it depends on them, not they on it).
pub fn router(state: Shared, openapi: String) -> Router {
    let upload_limit = state.config.max_upload_bytes;
    let spec = Bytes::from(openapi);
    let router = Router::new()
        .route("/health", get(health::health))
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], spec) }),
        )
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/refresh", post(auth::refresh))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/users/me", get(auth::me))
        .route("/api/chat/query", post(chat::query))
        .route("/api/conversations", get(chat::list).post(chat::create))
        .route("/api/conversations/{id}/messages", get(chat::messages))
        .route("/api/admin/dashboard", get(admin::dashboard))
        .route("/api/admin/users", get(admin::users))
        .route("/api/realtime/ws", get(realtime::ws))
        .route("/api/admin/metrics", get(admin::metrics))
        .route(
            "/api/admin/kb/documents",
            get(documents::list)
                .post(documents::upload)
                .layer(DefaultBodyLimit::max(
                    upload_limit.saturating_add(documents::MULTIPART_OVERHEAD),
                )),
        )
        .route(
            "/api/admin/kb/documents/{id}",
            get(documents::get_one).delete(documents::delete),
        )
        .fallback(not_found);
    // only a server with an error rate pays for the middleware
    let router = if state.config.error_rate > 0.0 {
        router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            inject_errors,
        ))
    } else {
        router
    };
    // outermost, so that injected faults are counted and logged too
    router
        .layer(observe::ObserveLayer {
            state: state.clone(),
        })
        .with_state(state)
}

/// Fault injection: answers a fraction `error_rate` of the requests (all but `/health`) with a
/// JSON 500 before they reach their handler.
async fn inject_errors(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if request.uri().path() != "/health" && chat::roll(state.config.error_rate) {
        return ApiError::Internal("injected fault (error_rate)".into()).into_response();
    }
    next.run(request).await
}

/// Default and largest `page_size` of the paginated lists.
pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 100;

/// `?page=` (1-based, default 1) and `?page_size=` (1..=100, default 20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub page: usize,
    pub page_size: usize,
}

impl Page {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut out = Page {
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        };
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let (field, slot, max) = match key.as_ref() {
                "page" => ("page", &mut out.page, 1_000_000_000),
                "page_size" => ("page_size", &mut out.page_size, MAX_PAGE_SIZE),
                _ => continue,
            };
            match value.trim().parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => *slot = n,
                _ => {
                    return Err(ApiError::invalid(
                        field,
                        format!("must be an integer from 1 to {max}"),
                    ))
                }
            }
        }
        Ok(out)
    }

    pub fn offset(self) -> usize {
        (self.page - 1).saturating_mul(self.page_size)
    }
}

/// `{"items", "total", "page", "page_size", "pages"}`.
pub fn page_json(items: Vec<Value>, total: usize, page: Page) -> Value {
    serde_json::json!({
        "items": items,
        "total": total,
        "page": page.page,
        "page_size": page.page_size,
        "pages": total.div_ceil(page.page_size),
    })
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

/// An optional body: empty, blank or JSON `null` is `None`, else it must be a JSON object.
pub fn optional_json_object(body: &Bytes) -> Result<Option<Map<String, Value>>, ApiError> {
    let text = body.trim_ascii();
    if text.is_empty() || text == b"null" {
        return Ok(None);
    }
    json_object(body).map(Some)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_and_refuse_bad_values_by_name() {
        assert_eq!(
            Page::parse(None).unwrap(),
            Page {
                page: 1,
                page_size: DEFAULT_PAGE_SIZE
            }
        );
        let p = Page::parse(Some("page=3&page_size=5&x=y")).unwrap();
        assert_eq!((p.page, p.page_size, p.offset()), (3, 5, 10));
        for (raw, field) in [
            ("page=0", "page"),
            ("page=x", "page"),
            ("page_size=101", "page_size"),
            ("page_size=-1", "page_size"),
        ] {
            match Page::parse(Some(raw)) {
                Err(ApiError::Validation { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{raw}: {other:?}"),
            }
        }
    }
}
