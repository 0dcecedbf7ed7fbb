//! `WS /api/realtime/ws`: chat answers streamed in chunks, ping/pong and voice mode over one
//! WebSocket per client. The frame protocol is documented in `docs/demo-server.md` ("Realtime
//! WebSocket"); the connection cap, counters and pure helpers are in `demo/realtime.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::{authenticate, chat, check_token, Shared};
use crate::auth::{now_secs, Claims, TokenKind};
use crate::errors::ApiError;
use crate::kb;
use crate::realtime::{self, Hub, Refused, Slot};
use crate::state::User;

/// Read buffer of a connection: small, as most frames are, so that many idle connections cost
/// little (tungstenite's default is 128 KiB each).
const READ_BUFFER: usize = 8 * 1024;
/// A client that does not take a frame for this long is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing server waits for the client's close frame (and to send its own).
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// `audio_start`'s `sample_rate`: default and accepted range, in Hz.
const DEFAULT_SAMPLE_RATE: u32 = 16_000;
const SAMPLE_RATES: std::ops::RangeInclusive<u64> = 8_000..=48_000;
/// A close frame's reason is at most 123 bytes (RFC 6455 §5.5).
const MAX_CLOSE_REASON: usize = 123;

/// The handshake: a valid access token (`?token=` or `Authorization: Bearer`) and a free slot,
/// or a plain HTTP error before any upgrade.
pub async fn ws(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (user, claims) = match handshake_token(&state, raw.as_deref(), &headers) {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        // axum's own text, in the API's JSON error shape
        Err(rejection) => {
            let body = json!({"error": "upgrade_required", "message": rejection.body_text()});
            return (rejection.status(), Json(body)).into_response();
        }
    };
    let slot = match state.realtime.open() {
        Ok(slot) => slot,
        Err(why) => return unavailable(why),
    };
    let hard = realtime::hard_limit(state.config.ws_max_message_size);
    upgrade
        .max_message_size(hard)
        .max_frame_size(hard)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| {
            let hub = state.realtime.clone();
            let stopping = hub.stopping();
            Session {
                state,
                hub,
                user,
                claims,
                socket,
                stopping,
                conversation: None,
                audio: None,
                _slot: slot,
            }
            .run()
        })
}

/// The user of `?token=` (when given and not empty), else of the `Authorization` header.
fn handshake_token(
    state: &Shared,
    raw_query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(Arc<User>, Claims), ApiError> {
    let token = url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|t| !t.is_empty());
    match token {
        Some(token) => check_token(state, &token, TokenKind::Access),
        None if headers.contains_key(header::AUTHORIZATION) => authenticate(state, headers),
        None => Err(ApiError::unauthorized(
            "missing token: pass ?token=<access token> or Authorization: Bearer <access token>",
        )),
    }
}

fn unavailable(why: Refused) -> Response {
    let message = match why {
        Refused::Full => "too many realtime connections (ws_max_connections); retry later",
        Refused::Stopping => "the server is stopping",
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        Json(json!({"error": "unavailable", "message": message})),
    )
        .into_response()
}

/// How a session ends.
enum End {
    /// The client closed or vanished: nothing more to send.
    Gone,
    /// Send a close frame; with `drain`, wait a moment for the client's reply (not when the
    /// stream can no longer be read safely).
    Close {
        code: u16,
        reason: String,
        drain: bool,
    },
    /// Fault injection (`drop_rate`): close the TCP connection without a close frame.
    Drop,
}

impl End {
    fn close(code: u16, reason: impl Into<String>) -> Self {
        Self::Close {
            code,
            reason: reason.into(),
            drain: true,
        }
    }

    fn going_away() -> Self {
        Self::close(1001, "server shutting down")
    }
}

type Step = Result<(), End>;

/// An utterance being received (between `audio_start` and `audio_end`). Only its size is kept:
/// the transcript depends on nothing else, so the audio itself is never buffered.
struct Audio {
    bytes: u64,
    sample_rate: u32,
    conversation_id: Option<String>,
    id: Option<Value>,
}

struct Session {
    state: Shared,
    hub: Arc<Hub>,
    user: Arc<User>,
    claims: Claims,
    socket: WebSocket,
    stopping: watch::Receiver<bool>,
    /// The conversation that messages without `conversation_id` go to.
    conversation: Option<String>,
    audio: Option<Audio>,
    _slot: Slot,
}

/// Resolves once the server stops (or its hub is gone, which only happens then).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `reason` cut to what a close frame can carry, on a character boundary.
fn close_reason(reason: &str) -> String {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// What a failed read means for the connection. The stream is never read again after one: after
/// a message over the hard limit tungstenite would buffer the rest of it.
fn read_error(e: axum::Error, hub: &Hub) -> End {
    let Ok(e) = e.into_inner().downcast::<tungstenite::Error>() else {
        return End::Gone;
    };
    let (code, reason) = match *e {
        tungstenite::Error::Capacity(_) => {
            hub.count_too_big();
            (
                1009,
                format!(
                    "message too big (ws_max_message_size is {} bytes)",
                    hub.max_message_size
                ),
            )
        }
        tungstenite::Error::Utf8(_) => (1007, "text message is not valid UTF-8".to_owned()),
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => return End::Gone,
        tungstenite::Error::Protocol(p) => (1002, format!("protocol error: {p}")),
        _ => return End::Gone,
    };
    End::Close {
        code,
        reason,
        drain: false,
    }
}

/// A validation error frame's `(field, detail)`.
type Invalid = (&'static str, String);

fn optional_string(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, Invalid> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err((field, format!("{field}: must be a string"))),
    }
}

/// `message`'s `content`: a non-empty string of at most `MAX_QUERY_CHARS` characters, trimmed.
fn message_content(map: &Map<String, Value>) -> Result<String, Invalid> {
    let content = match map.get("content") {
        None | Some(Value::Null) => return Err(("content", "content: field required".into())),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(("content", "content: must be a string".into())),
    };
    if content.is_empty() {
        return Err(("content", "content: must not be empty".into()));
    }
    if content.chars().count() > chat::MAX_QUERY_CHARS {
        return Err((
            "content",
            format!(
                "content: must be at most {} characters",
                chat::MAX_QUERY_CHARS
            ),
        ));
    }
    Ok(content.to_owned())
}

/// `audio_start`'s `sample_rate`: an integer in `SAMPLE_RATES`, 16000 when absent.
fn sample_rate(map: &Map<String, Value>) -> Result<u32, Invalid> {
    match map.get("sample_rate") {
        None | Some(Value::Null) => Ok(DEFAULT_SAMPLE_RATE),
        Some(v) => match v.as_u64() {
            Some(n) if SAMPLE_RATES.contains(&n) => Ok(n as u32),
            _ => Err((
                "sample_rate",
                format!(
                    "sample_rate: must be an integer from {} to {}",
                    SAMPLE_RATES.start(),
                    SAMPLE_RATES.end()
                ),
            )),
        },
    }
}

impl Session {
    async fn run(mut self) {
        if let End::Close {
            code,
            reason,
            drain,
        } = self.serve().await
        {
            self.close(code, &reason, drain).await;
        }
        // dropping the socket closes the TCP connection, dropping the slot frees its place
    }

    async fn serve(&mut self) -> End {
        loop {
            let next = tokio::select! {
                biased;
                _ = stopped(&mut self.stopping) => return End::going_away(),
                next = self.socket.recv() => next,
            };
            let step = match next {
                None => return End::Gone,
                Some(Err(e)) => return read_error(e, &self.hub),
                Some(Ok(Message::Text(text))) => {
                    self.hub.count_in(text.len());
                    match self.check_size(text.len()).and_then(|()| self.authorized()) {
                        Ok(()) => self.on_text(text.as_str()).await,
                        Err(end) => Err(end),
                    }
                }
                Some(Ok(Message::Binary(data))) => {
                    self.hub.count_in(data.len());
                    match self.check_size(data.len()).and_then(|()| self.authorized()) {
                        Ok(()) => self.on_binary(data.len()).await,
                        Err(end) => Err(end),
                    }
                }
                // tungstenite answers pings and the client's close frame by itself
                Some(Ok(_)) => Ok(()),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// The configured limit, enforced here (tungstenite's is higher) so that the close is a clean
    /// 1009 with the stream still in step.
    fn check_size(&self, len: usize) -> Step {
        if len > self.hub.max_message_size {
            self.hub.count_too_big();
            return Err(End::close(
                1009,
                format!(
                    "message too big (ws_max_message_size is {} bytes)",
                    self.hub.max_message_size
                ),
            ));
        }
        Ok(())
    }

    /// The handshake's token must still be good at every frame: a logged-out or expired token
    /// ends the session with 1008.
    fn authorized(&self) -> Step {
        let reason = if self.claims.exp <= now_secs() {
            "token expired"
        } else if self.state.revoked.is_revoked(&self.claims.jti) {
            "token revoked"
        } else if self.state.users.by_id(self.user.id).is_none() {
            "user no longer exists"
        } else {
            return Ok(());
        };
        Err(End::close(1008, reason))
    }

    async fn close(&mut self, code: u16, reason: &str, drain: bool) {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: close_reason(reason).into(),
        }));
        if !matches!(
            tokio::time::timeout(CLOSE_WAIT, self.socket.send(frame)).await,
            Ok(Ok(()))
        ) || !drain
        {
            return;
        }
        // the client answers with its own close frame; what it sent meanwhile is discarded
        let socket = &mut self.socket;
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(_)) = socket.recv().await {}
        })
        .await;
    }

    /// Sends one text frame, with the request's `id` echoed when it had one.
    async fn send(&mut self, mut frame: Value, id: Option<&Value>) -> Step {
        if let (Some(id), Some(map)) = (id, frame.as_object_mut()) {
            map.insert("id".into(), id.clone());
        }
        let text = frame.to_string();
        let len = text.len();
        let sent = tokio::select! {
            biased;
            _ = stopped(&mut self.stopping) => return Err(End::going_away()),
            sent = tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text.into()))) => sent,
        };
        match sent {
            Ok(Ok(())) => {
                self.hub.count_out(len);
                Ok(())
            }
            _ => Err(End::Gone),
        }
    }

    /// An `error` frame; the connection stays open.
    async fn error(
        &mut self,
        code: &str,
        detail: impl Into<String>,
        field: Option<&str>,
        id: Option<&Value>,
    ) -> Step {
        self.hub.count_error_frame();
        let mut frame = json!({"type": "error", "error": code, "detail": detail.into()});
        if let (Some(field), Some(map)) = (field, frame.as_object_mut()) {
            map.insert("field".into(), field.into());
        }
        self.send(frame, id).await
    }

    async fn invalid(&mut self, (field, detail): Invalid, id: Option<&Value>) -> Step {
        self.error("validation_error", detail, Some(field), id)
            .await
    }

    async fn on_text(&mut self, text: &str) -> Step {
        let map = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return self
                    .error(
                        "invalid_message",
                        "a frame must be a JSON object with a \"type\"",
                        None,
                        None,
                    )
                    .await
            }
            Err(e) => {
                return self
                    .error("invalid_json", format!("not valid JSON: {e}"), None, None)
                    .await
            }
        };
        let id = map.get("id").cloned();
        let id = id.as_ref();
        let kind = match map.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            None | Some(Value::Null) => {
                return self
                    .error("invalid_message", "type: field required", Some("type"), id)
                    .await
            }
            Some(_) => {
                return self
                    .error(
                        "invalid_message",
                        "type: must be a string",
                        Some("type"),
                        id,
                    )
                    .await
            }
        };
        match kind {
            "message" => {
                let request = message_content(&map)
                    .and_then(|content| Ok((content, optional_string(&map, "conversation_id")?)));
                match request {
                    Ok((content, conversation)) => self.answer(content, conversation, id).await,
                    Err(invalid) => self.invalid(invalid, id).await,
                }
            }
            "ping" => self.on_ping(map).await,
            "audio_start" => self.on_audio_start(&map, id).await,
            "audio_end" => self.on_audio_end(&map, id).await,
            other => {
                let detail = format!(
                    "unknown type {other:?}; expected message, ping, audio_start or audio_end"
                );
                self.error("unknown_type", detail, Some("type"), id).await
            }
        }
    }

    /// `pong` carries every field of the `ping` (`id`, a timestamp, ...) and `server_time`.
    async fn on_ping(&mut self, mut map: Map<String, Value>) -> Step {
        map.insert("type".into(), "pong".into());
        map.entry("server_time").or_insert_with(|| now_ms().into());
        self.send(Value::Object(map), None).await
    }

    async fn on_audio_start(&mut self, map: &Map<String, Value>, id: Option<&Value>) -> Step {
        if self.audio.is_some() {
            return self
                .error(
                    "audio_already_started",
                    "an utterance is already open: send audio_end first",
                    None,
                    id,
                )
                .await;
        }
        let start =
            sample_rate(map).and_then(|rate| Ok((rate, optional_string(map, "conversation_id")?)));
        match start {
            Ok((sample_rate, conversation_id)) => {
                self.audio = Some(Audio {
                    bytes: 0,
                    sample_rate,
                    conversation_id,
                    id: id.cloned(),
                });
                Ok(())
            }
            Err(invalid) => self.invalid(invalid, id).await,
        }
    }

    async fn on_binary(&mut self, len: usize) -> Step {
        let max = self.hub.max_audio_bytes;
        let Some(audio) = self.audio.as_mut() else {
            return self
                .error(
                    "unexpected_binary",
                    "binary frames are audio: send audio_start first",
                    None,
                    None,
                )
                .await;
        };
        audio.bytes = audio.bytes.saturating_add(len as u64);
        if audio.bytes > max as u64 {
            self.hub.count_too_big();
            return Err(End::close(
                1009,
                format!("utterance too long (ws_max_audio_bytes is {max} bytes)"),
            ));
        }
        Ok(())
    }

    async fn on_audio_end(&mut self, map: &Map<String, Value>, id: Option<&Value>) -> Step {
        let Some(audio) = self.audio.take() else {
            return self
                .error(
                    "audio_not_started",
                    "audio_end without audio_start",
                    None,
                    id,
                )
                .await;
        };
        let id = id.cloned().or(audio.id);
        let id = id.as_ref();
        let conversation = match optional_string(map, "conversation_id") {
            Ok(c) => c.or(audio.conversation_id),
            Err(invalid) => return self.invalid(invalid, id).await,
        };
        if audio.bytes == 0 {
            return self
                .error(
                    "empty_audio",
                    "no binary audio frame between audio_start and audio_end",
                    None,
                    id,
                )
                .await;
        }
        let text = realtime::transcript(audio.bytes);
        self.send(
            json!({
                "type": "transcript",
                "text": text,
                "audio_bytes": audio.bytes,
                "duration_ms": realtime::audio_duration_ms(audio.bytes, audio.sample_rate),
                "final": true,
            }),
            id,
        )
        .await?;
        self.hub.count_transcript();
        self.answer(text.to_owned(), conversation, id).await
    }

    /// The conversation an answer goes to: the one named (it must be the user's), else the
    /// session's current one, else a new one titled by the query. `None` after an error frame.
    async fn conversation_for(
        &mut self,
        named: Option<String>,
        query: &str,
        id: Option<&Value>,
    ) -> Result<Option<String>, End> {
        let conversations = &self.state.conversations;
        let found = match named {
            Some(named) if conversations.owns(self.user.id, &named) => Some(named),
            Some(_) => {
                self.error(
                    "not_found",
                    "conversation not found",
                    Some("conversation_id"),
                    id,
                )
                .await?;
                return Ok(None);
            }
            None => self
                .conversation
                .take()
                .filter(|c| conversations.owns(self.user.id, c)),
        };
        let conversation = match found {
            Some(c) => c,
            None => {
                let title: String = query.chars().take(chat::AUTO_TITLE_CHARS).collect();
                let created = conversations
                    .create(self.user.id, title)
                    .ok()
                    .and_then(|c| c["id"].as_str().map(str::to_owned));
                let Some(created) = created else {
                    self.error("internal_error", "cannot create a conversation", None, id)
                        .await?;
                    return Ok(None);
                };
                created
            }
        };
        self.conversation = Some(conversation.clone());
        Ok(Some(conversation))
    }

    /// Answers `query` from the knowledge base as `/api/chat/query` does, streamed: the chunks,
    /// each after its share of the chat latency, then `message_complete`.
    async fn answer(
        &mut self,
        query: String,
        conversation: Option<String>,
        id: Option<&Value>,
    ) -> Step {
        let Some(conversation_id) = self.conversation_for(conversation, &query, id).await? else {
            return Ok(());
        };
        let config = &self.state.config;
        let delay = chat::chat_latency(config, chat::rand_unit());
        let drop = chat::roll(config.drop_rate);
        let hits = kb::search(&query, |w| self.state.documents.matching(w));
        let answer = kb::answer(&hits);
        let citations = chat::citations(&hits);
        self.state
            .queries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // recorded before it streams, as the HTTP chat records before it sends
        let message_id = self
            .state
            .conversations
            .append(
                self.user.id,
                &conversation_id,
                vec![
                    ("user", query.clone(), None),
                    ("assistant", answer.clone(), Some(citations.clone())),
                ],
            )
            .and_then(|ids| ids.last().copied());
        let parts = realtime::chunks(&answer);
        let gap = delay / parts.len().max(1) as u32;
        for (index, part) in parts.iter().enumerate() {
            if drop && index == parts.len() / 2 {
                self.hub.count_dropped();
                return Err(End::Drop);
            }
            if !gap.is_zero() {
                self.pause(gap).await?;
            }
            self.send(
                json!({
                    "type": "chunk",
                    "index": index,
                    "content": part,
                    "conversation_id": conversation_id,
                    "message_id": message_id,
                }),
                id,
            )
            .await?;
        }
        self.send(
            json!({
                "type": "message_complete",
                "answer": answer,
                "citations": citations,
                "conversation_id": conversation_id,
                "message_id": message_id,
                "query": query,
                "chunks": parts.len(),
                "latency_ms": delay.as_millis() as u64,
            }),
            id,
        )
        .await?;
        self.hub.count_answer();
        Ok(())
    }

    async fn pause(&mut self, d: Duration) -> Step {
        tokio::select! {
            biased;
            _ = stopped(&mut self.stopping) => Err(End::going_away()),
            _ = tokio::time::sleep(d) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_control_frame() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON);
        assert!(long.starts_with(&cut));
        assert_eq!(cut.len(), 122);
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn message_content_is_checked_by_field() {
        assert_eq!(
            message_content(&obj(json!({"content": "  hi  "}))).unwrap(),
            "hi"
        );
        for (body, needle) in [
            (json!({}), "field required"),
            (json!({"content": null}), "field required"),
            (json!({"content": 3}), "must be a string"),
            (json!({"content": "   "}), "must not be empty"),
            (json!({"content": "x".repeat(4001)}), "at most 4000"),
        ] {
            let (field, detail) = message_content(&obj(body)).unwrap_err();
            assert_eq!(field, "content");
            assert!(detail.contains(needle), "{detail}");
        }
    }

    #[test]
    fn sample_rates_default_and_are_bounded() {
        assert_eq!(sample_rate(&obj(json!({}))).unwrap(), 16_000);
        assert_eq!(
            sample_rate(&obj(json!({"sample_rate": 8000}))).unwrap(),
            8000
        );
        for bad in [
            json!(7999),
            json!(48_001),
            json!("16000"),
            json!(-1),
            json!(1.5),
        ] {
            let (field, _) = sample_rate(&obj(json!({ "sample_rate": bad }))).unwrap_err();
            assert_eq!(field, "sample_rate");
        }
    }

    #[test]
    fn optional_strings() {
        let m = obj(json!({"a": "x", "b": 1, "c": null}));
        assert_eq!(optional_string(&m, "a").unwrap().as_deref(), Some("x"));
        assert!(optional_string(&m, "b").is_err());
        assert_eq!(optional_string(&m, "c").unwrap(), None);
        assert_eq!(optional_string(&m, "d").unwrap(), None);
    }
}
