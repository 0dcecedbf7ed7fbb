//! The demo app in process, for the route tests: built from a `Config` as the program builds it,
//! sent `http::Request`s through `tower_service::Service`, its answers read whole.
//!
//! `app.post("/api/auth/login").json(&body).token(t).await` is a `Reply`.

// a helper that cannot do its job fails the test, as an assertion does
#![allow(clippy::panic)]

pub mod multipart;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::Router;
use http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower_service::Service;
use voiceassist_demo::Config;

pub const ADMIN_EMAIL: &str = "admin@voiceassist.local";
pub const ADMIN_PASSWORD: &str = "admin12345";
/// The password of the users the helpers register.
pub const PASSWORD: &str = "password123";

/// The settings the Python fixtures passed: no rate limits, and password hashes cheap enough to
/// register users by the dozen in a debug build.
pub fn fast() -> Config {
    Config {
        register_per_minute: 0,
        login_attempts_per_minute: 0,
        password_hash_iterations: 10,
        ..Config::default()
    }
}

/// `fast()` without the chat latency, for the tests that do not look at it.
pub fn fast_chat() -> Config {
    Config {
        chat_latency_ms: 0,
        ..fast()
    }
}

/// An email no other call of this process returns.
pub fn unique_email() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("user-{}@example.com", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[derive(Clone)]
pub struct App(Router);

impl App {
    pub fn new(config: Config) -> Self {
        match voiceassist_demo::app(config) {
            Ok(router) => Self(router),
            Err(e) => panic!("the app does not start: {e}"),
        }
    }

    pub fn call(&self, method: Method, path: &str) -> Call {
        Call {
            app: self.0.clone(),
            request: Request::builder().method(method).uri(path),
            body: Body::empty(),
        }
    }

    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call {
        self.call(Method::POST, path)
    }

    pub fn delete(&self, path: &str) -> Call {
        self.call(Method::DELETE, path)
    }

    /// Registers `email` with `PASSWORD`; the registration must succeed.
    pub async fn register(&self, email: &str) {
        let r = self
            .post("/api/auth/register")
            .json(&json!({"email": email, "password": PASSWORD, "full_name": "Test User"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }

    /// The login answer (tokens and user); the login must succeed.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let r = self
            .post("/api/auth/login")
            .json(&json!({"email": email, "password": password}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()
    }

    /// An access token of the seeded admin.
    pub async fn admin_token(&self) -> String {
        access_token(&self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await)
    }

    /// An access token of a newly registered user.
    pub async fn user_token(&self) -> String {
        let email = unique_email();
        self.register(&email).await;
        access_token(&self.login(&email, PASSWORD).await)
    }
}

pub fn access_token(login: &Value) -> String {
    login["access_token"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no access_token in {login}"))
}

/// A request being built; awaiting it sends it.
pub struct Call {
    app: Router,
    request: http::request::Builder,
    body: Body,
}

impl Call {
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.request = self.request.header(name.as_ref(), value.as_ref());
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn token(self, token: &str) -> Self {
        self.header(header::AUTHORIZATION, format!("Bearer {token}"))
    }

    /// A JSON body, with its `Content-Type`.
    pub fn json(self, body: &Value) -> Self {
        self.body("application/json", body.to_string())
    }

    /// A body of any type, with its `Content-Type`.
    pub fn body(self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.header(header::CONTENT_TYPE, content_type).raw(body)
    }

    /// A body with a `Content-Length` and no `Content-Type`, as `requests` sends `data=b"..."`.
    pub fn raw(mut self, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        self.request = self.request.header(header::CONTENT_LENGTH, body.len());
        self.body = Body::from(body);
        self
    }

    pub fn into_request(self) -> (Router, Request<Body>) {
        match self.request.body(self.body) {
            Ok(request) => (self.app, request),
            Err(e) => panic!("not a request: {e}"),
        }
    }

    /// The response, its body unread.
    pub async fn response(self) -> Response {
        let (mut app, request) = self.into_request();
        match app.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

impl IntoFuture for Call {
    type Output = Reply;
    type IntoFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (parts, body) = self.response().await.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => panic!("the body failed: {e}"),
            };
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        })
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value; it must be there.
    pub fn header(&self, name: &str) -> &str {
        match self.headers.get(name).map(|v| v.to_str()) {
            Some(Ok(value)) => value,
            _ => panic!("no {name} header in {:?}", self.headers),
        }
    }
}
