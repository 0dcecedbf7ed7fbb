//! The shapes of the API's bodies, for the OpenAPI document (`openapi.rs`). The handlers read
//! bodies field by field (so that a 422 names the field) and build answers with `json!`; the
//! schema-conformance test (`tests/test_demo_openapi.py`) keeps these types and the handlers in
//! step.

#![allow(dead_code)] // the fields are read by utoipa's derive only

use std::collections::BTreeMap;

use utoipa::{IntoParams, ToSchema};

/// Every error: `field` on a 422, `retry_after` on a 429.
#[derive(ToSchema)]
pub struct Error {
    /// `validation_error`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `bad_request`,
    /// `payload_too_large`, `unsupported_media_type`, `rate_limited` or `internal_error`.
    error: String,
    message: String,
    /// The field at fault (`body` when the body is not a JSON object).
    field: Option<String>,
    /// Seconds until the rate-limit window ends.
    retry_after: Option<u64>,
}

#[derive(ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
    #[schema(example = "voiceassist-demo")]
    service: String,
    version: String,
    uptime_seconds: u64,
}

#[derive(ToSchema)]
pub struct RegisterRequest {
    #[schema(format = "email", example = "jane@example.com")]
    email: String,
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 1024, example = "password123")]
    password: String,
    #[schema(max_length = 200)]
    full_name: Option<String>,
}

#[derive(ToSchema)]
pub struct User {
    id: u64,
    email: String,
    full_name: String,
    is_admin: bool,
    /// Unix seconds.
    created_at: u64,
}

/// `email` and `password`. OAuth2-style clients may send `username` instead of `email`.
#[derive(ToSchema)]
pub struct LoginRequest {
    #[schema(example = "admin@voiceassist.local")]
    email: String,
    /// Accepted in place of `email` (then `email` may be left out).
    username: Option<String>,
    #[schema(example = "admin12345")]
    password: String,
}

#[derive(ToSchema)]
pub struct LoginResponse {
    access_token: String,
    refresh_token: String,
    #[schema(example = "bearer")]
    token_type: String,
    /// Seconds until the access token expires.
    expires_in: u64,
    user: User,
}

#[derive(ToSchema)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(ToSchema)]
pub struct RefreshResponse {
    access_token: String,
    token_type: String,
    expires_in: u64,
}

/// Optional: also revoke this refresh token (it must be the caller's).
#[derive(ToSchema)]
pub struct LogoutRequest {
    refresh_token: Option<String>,
}

#[derive(ToSchema)]
pub struct ChatQuery {
    /// 1 to 4000 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 4000,
        example = "How much does the Team plan cost?"
    )]
    query: String,
    /// Continue this conversation (one of the caller's); without it a new one is started.
    conversation_id: Option<String>,
}

/// A knowledge-base article the answer draws on.
#[derive(ToSchema)]
pub struct Citation {
    /// A built-in article's id (`kb-003`) or an uploaded document's (`doc_…`).
    #[schema(example = "kb-003")]
    id: String,
    document_id: String,
    title: String,
    snippet: String,
    /// Distinct query words among the article's keywords (or among an uploaded document's words).
    score: u32,
}

#[derive(ToSchema)]
pub struct ChatAnswer {
    answer: String,
    /// Empty when the query matches nothing in the knowledge base.
    citations: Vec<Citation>,
    conversation_id: String,
    /// The assistant message's id (null if the conversation was evicted meanwhile).
    message_id: Option<u64>,
    query: String,
    /// The latency drawn for this answer.
    latency_ms: u64,
}

#[derive(ToSchema)]
pub struct NewConversation {
    #[schema(max_length = 200)]
    title: Option<String>,
}

#[derive(ToSchema)]
pub struct Conversation {
    id: String,
    title: String,
    created_at: u64,
    updated_at: u64,
    message_count: u64,
}

#[derive(ToSchema)]
pub struct Message {
    id: u64,
    conversation_id: String,
    /// `user` or `assistant`.
    role: String,
    content: String,
    created_at: u64,
    /// On assistant messages.
    citations: Option<Vec<Citation>>,
}

#[derive(ToSchema)]
pub struct Dashboard {
    users: u64,
    conversations: u64,
    messages: u64,
    /// Chat queries answered since start.
    queries: u64,
    documents: u64,
    documents_ready: u64,
    uptime_seconds: u64,
}

/// Handling time of a route, in milliseconds (HDR histogram, 3 significant digits).
#[derive(ToSchema)]
pub struct LatencySummary {
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

#[derive(ToSchema)]
pub struct RouteMetrics {
    method: String,
    /// The route pattern (`/api/conversations/{id}/messages`), or `(unmatched)`.
    route: String,
    count: u64,
    /// Responses by status code.
    statuses: BTreeMap<String, u64>,
    latency_ms: LatencySummary,
}

#[derive(ToSchema)]
pub struct Metrics {
    uptime_seconds: f64,
    requests_total: u64,
    /// Since start.
    requests_per_second: f64,
    /// Requests being handled now (this one included).
    in_flight: u64,
    /// Requests whose client went away before the answer.
    cancelled: u64,
    statuses: BTreeMap<String, u64>,
    routes: Vec<RouteMetrics>,
}

#[derive(ToSchema)]
pub enum DocumentStatus {
    #[schema(rename = "processing")]
    Processing,
    #[schema(rename = "ready")]
    Ready,
}

#[derive(ToSchema)]
pub struct Document {
    #[schema(example = "doc_0123456789abcdef01234567")]
    id: String,
    title: String,
    filename: String,
    /// `text/plain`, `text/markdown` or `application/pdf`.
    content_type: String,
    size_bytes: u64,
    /// Hex SHA-256 of the file.
    sha256: String,
    status: DocumentStatus,
    /// The uploading admin's user id.
    uploaded_by: u64,
    created_at: u64,
}

/// A `.txt`, `.md` or `.pdf` file (by name, or by the part's `Content-Type`).
#[derive(ToSchema)]
pub struct DocumentUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Defaults to the file name.
    #[schema(max_length = 200)]
    title: Option<String>,
}

/// `?page=` (1-based) and `?page_size=` (1 to 100).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Default 1; a page past the end is empty.
    #[param(minimum = 1, maximum = 1_000_000_000)]
    page: Option<u64>,
    /// Default 20.
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<u64>,
}

macro_rules! page_of {
    ($name:ident, $item:ty) => {
        #[derive(ToSchema)]
        pub struct $name {
            items: Vec<$item>,
            total: u64,
            page: u64,
            page_size: u64,
            pages: u64,
        }
    };
}

page_of!(UserPage, User);
page_of!(ConversationPage, Conversation);
page_of!(DocumentPage, Document);

#[derive(ToSchema)]
pub struct MessagePage {
    items: Vec<Message>,
    total: u64,
    page: u64,
    page_size: u64,
    pages: u64,
    conversation_id: String,
}
