//! `POST /api/chat/query` and the conversation routes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{
    authenticate, json_object, optional_json_object, optional_str, page_json, required_str, Page,
    Shared,
};
use crate::config::Config;
use crate::errors::ApiError;
use crate::kb;

/// Longest accepted query, in characters.
pub const MAX_QUERY_CHARS: usize = 4000;
/// Longest conversation title, in characters (a query-derived title is cut to `AUTO_TITLE_CHARS`).
const MAX_TITLE_CHARS: usize = 200;
pub const AUTO_TITLE_CHARS: usize = 60;
/// How long a dropped answer's connection stays open after its first half was taken.
const DROP_AFTER: Duration = Duration::from_millis(20);

/// A uniform draw in [0, 1) from the OS's random source (0 if it fails).
pub fn rand_unit() -> f64 {
    let mut buf = [0u8; 8];
    if crate::auth::random_bytes(&mut buf).is_err() {
        return 0.0;
    }
    (u64::from_le_bytes(buf) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a fault with probability `rate` happens now: never at 0, always at 1.
pub fn roll(rate: f64) -> bool {
    rate > 0.0 && (rate >= 1.0 || rand_unit() < rate)
}

/// The chat latency to add: uniform in mean ± jitter (never below 0), times `latency_scale`;
/// none when `chat_latency_ms` is 0.
pub fn chat_latency(config: &Config, draw: f64) -> Duration {
    if config.chat_latency_ms == 0 {
        return Duration::ZERO;
    }
    let mean = config.chat_latency_ms as f64;
    let jitter = config.chat_latency_jitter_ms as f64;
    let ms = (mean - jitter + 2.0 * jitter * draw).max(0.0) * config.latency_scale;
    // latency_scale is only bounded by "finite": a huge one sleeps for ever instead of panicking
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX)
}

/// The citations of an answer, as the chat route and the realtime WebSocket both send them.
pub fn citations(hits: &[kb::Hit]) -> Value {
    hits.iter()
        .map(|h| {
            json!({
                "id": h.id(),
                "document_id": h.id(),
                "title": h.title(),
                "snippet": h.snippet(),
                "score": h.score,
            })
        })
        .collect()
}

fn new_conversation(state: &Shared, user_id: u64, title: String) -> Result<Value, ApiError> {
    state
        .conversations
        .create(user_id, title)
        .map_err(ApiError::Internal)
}

#[utoipa::path(
    post, path = "/api/chat/query", tag = "chat",
    request_body = crate::schemas::ChatQuery,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the answer, with citations when the knowledge base matches", body = crate::schemas::ChatAnswer),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 404, description = "`conversation_id` unknown or not the caller's", body = crate::schemas::Error),
        (status = 422, description = "invalid body; `field` names the field", body = crate::schemas::Error),
    )
)]
pub async fn query(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (user, _) = authenticate(&state, &headers)?;
    let map = json_object(&body)?;
    let raw = required_str(&map, "query")?;
    // the limit counts the query as sent, surrounding whitespace included
    if raw.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::invalid(
            "query",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let query = raw.trim();
    if query.is_empty() {
        return Err(ApiError::invalid("query", "must not be empty"));
    }
    let conversation_id = match optional_str(&map, "conversation_id")? {
        Some(id) => {
            if !state.conversations.owns(user.id, id) {
                return Err(ApiError::NotFound("conversation not found".into()));
            }
            id.to_owned()
        }
        None => {
            let title: String = query.chars().take(AUTO_TITLE_CHARS).collect();
            let c = new_conversation(&state, user.id, title)?;
            c["id"].as_str().unwrap_or_default().to_owned()
        }
    };
    let delay = chat_latency(&state.config, rand_unit());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let hits = kb::search(query, |w| state.documents.matching(w));
    let answer = kb::answer(&hits);
    let citations = citations(&hits);
    state.queries.fetch_add(1, Ordering::Relaxed);
    // the conversation may have been evicted meanwhile: the answer stands, unrecorded
    let message_id = state
        .conversations
        .append(
            user.id,
            &conversation_id,
            vec![
                ("user", query.to_owned(), None),
                ("assistant", answer.clone(), Some(citations.clone())),
            ],
        )
        .and_then(|ids| ids.last().copied());
    let out = json!({
        "answer": answer,
        "citations": citations,
        "conversation_id": conversation_id,
        "message_id": message_id,
        "query": query,
        "latency_ms": delay.as_millis() as u64,
    });
    if roll(state.config.drop_rate) {
        return Ok(dropped(serde_json::to_vec(&out).unwrap_or_default()).await);
    }
    Ok(Json(out).into_response())
}

/// A 200 that announces the whole body's `Content-Length`, sends half of it, then fails the
/// body stream: hyper closes the connection and the client sees a truncated body.
///
/// The failure waits until hyper has taken the first half and a little more, so that the head
/// and the half are flushed first (an error already queued with the data would make hyper close
/// the connection before sending even the head).
async fn dropped(body: Vec<u8>) -> Response {
    let len = body.len();
    let head = Bytes::from(body).slice(..len / 2);
    let (mut tx, channel) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(1);
    tokio::spawn(async move {
        if tx.send_data(head).await.is_err() {
            return; // the client is gone already
        }
        // bounded: at most ~2 s until hyper has taken the half
        for _ in 0..2000 {
            if tx.capacity() == tx.max_capacity() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(DROP_AFTER).await;
        tx.abort(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected drop (drop_rate)",
        ));
    });
    let mut response = Response::new(Body::new(channel));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    response
}

#[utoipa::path(
    get, path = "/api/conversations", tag = "chat",
    params(crate::schemas::PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's conversations, newest first", body = crate::schemas::ConversationPage),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 422, description = "bad `page` or `page_size`", body = crate::schemas::Error),
    )
)]
pub async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (user, _) = authenticate(&state, &headers)?;
    let page = Page::parse(raw.as_deref())?;
    let (items, total) = state
        .conversations
        .page_of_user(user.id, page.offset(), page.page_size);
    Ok(Json(page_json(items, total, page)).into_response())
}

#[utoipa::path(
    post, path = "/api/conversations", tag = "chat",
    request_body(content = Option<crate::schemas::NewConversation>, description = "optional"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "created", body = crate::schemas::Conversation),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 422, description = "invalid body; `field` names the field", body = crate::schemas::Error),
    )
)]
pub async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (user, _) = authenticate(&state, &headers)?;
    let mut title = String::new();
    if let Some(map) = optional_json_object(&body)? {
        if let Some(t) = optional_str(&map, "title")? {
            if t.chars().count() > MAX_TITLE_CHARS {
                return Err(ApiError::invalid(
                    "title",
                    format!("must be at most {MAX_TITLE_CHARS} characters"),
                ));
            }
            title = t.trim().to_owned();
        }
    }
    if title.is_empty() {
        title = "New conversation".to_owned();
    }
    let c = new_conversation(&state, user.id, title)?;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

#[utoipa::path(
    get, path = "/api/conversations/{id}/messages", tag = "chat",
    params(("id" = String, Path, description = "conversation id"), crate::schemas::PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "its messages, oldest first", body = crate::schemas::MessagePage),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 404, description = "unknown or not the caller's", body = crate::schemas::Error),
        (status = 422, description = "bad `page` or `page_size`", body = crate::schemas::Error),
    )
)]
pub async fn messages(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (user, _) = authenticate(&state, &headers)?;
    let page = Page::parse(raw.as_deref())?;
    let (items, total) = state
        .conversations
        .messages(user.id, &id, page.offset(), page.page_size)
        .ok_or_else(|| ApiError::NotFound("conversation not found".into()))?;
    let mut out = page_json(items, total, page);
    if let Some(map) = out.as_object_mut() {
        map.insert("conversation_id".into(), Value::String(id));
    }
    Ok(Json(out).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_mean_plus_minus_jitter_times_scale() {
        let c = Config {
            chat_latency_ms: 20,
            chat_latency_jitter_ms: 10,
            latency_scale: 2.0,
            ..Config::default()
        };
        assert_eq!(chat_latency(&c, 0.0), Duration::from_millis(20));
        assert_eq!(chat_latency(&c, 0.5), Duration::from_millis(40));
        let off = Config {
            chat_latency_ms: 0,
            ..c.clone()
        };
        assert_eq!(chat_latency(&off, 0.9), Duration::ZERO);
        let scaled_off = Config {
            latency_scale: 0.0,
            ..c
        };
        assert_eq!(chat_latency(&scaled_off, 0.9), Duration::ZERO);
    }

    #[test]
    fn rolls_at_0_never_and_at_1_always() {
        for _ in 0..100 {
            assert!(!roll(0.0));
            assert!(roll(1.0));
            let u = rand_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
