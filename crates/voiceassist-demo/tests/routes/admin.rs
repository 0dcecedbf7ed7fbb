//! The admin routes: the dashboard, the user list, and the request metrics the server keeps
//! (per route pattern and status, in flight, cancelled). Each is 401 without a token and 403 for
//! a user who is not an admin.

use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::task::Poll;

use crate::common::{fast, fast_chat, App, ADMIN_EMAIL};
use http::StatusCode;
use serde_json::{json, Value};
use voiceassist_demo::Config;

/// The one row of `metrics` for `method` on the route `pattern`.
fn route<'a>(metrics: &'a Value, method: &str, pattern: &str) -> &'a Value {
    let rows: Vec<&Value> = metrics["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["method"] == method && r["route"] == pattern)
        .collect();
    assert_eq!(rows.len(), 1, "{method} {pattern}: {}", metrics["routes"]);
    rows[0]
}

#[tokio::test]
async fn admin_routes_are_401_then_403_then_200() {
    let app = App::new(fast_chat());
    let user = app.user_token().await;
    let admin = app.admin_token().await;
    for path in ["/api/admin/dashboard", "/api/admin/users"] {
        assert_eq!(
            app.get(path).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        let r = app.get(path).token(&user).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(r.json()["error"], "forbidden");
        assert_eq!(
            app.get(path).token(&admin).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_dashboard_counts() {
    let app = App::new(fast_chat());
    let token = app.user_token().await;
    let admin = app.admin_token().await;
    let before = app.get("/api/admin/dashboard").token(&admin).await.json();
    let r = app
        .post("/api/chat/query")
        .token(&token)
        .json(&json!({"query": "pricing"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let after = app.get("/api/admin/dashboard").token(&admin).await.json();
    let count = |v: &Value, key: &str| v[key].as_u64().unwrap();
    assert_eq!(count(&after, "queries"), count(&before, "queries") + 1);
    assert_eq!(
        count(&after, "conversations"),
        count(&before, "conversations") + 1
    );
    assert_eq!(count(&after, "messages"), count(&before, "messages") + 2);
    assert!(count(&after, "users") >= 2, "{after}");
    assert!(after["uptime_seconds"].as_u64().is_some(), "{after}");
}

#[tokio::test]
async fn admin_users_are_paginated() {
    let app = App::new(fast_chat());
    for _ in 0..4 {
        app.user_token().await;
    }
    let admin = app.admin_token().await;
    let r = app
        .get("/api/admin/users?page=1&page_size=2")
        .token(&admin)
        .await;
    let body = r.json();
    let shape = (
        &body["total"],
        &body["pages"],
        body["items"].as_array().unwrap().len(),
    );
    assert_eq!(shape, (&json!(5), &json!(3), 2));
    assert_eq!(body["items"][0]["email"], ADMIN_EMAIL);
    assert!(!r.text().contains("password"), "{}", r.text());
    let last = app
        .get("/api/admin/users?page=3&page_size=2")
        .token(&admin)
        .await
        .json();
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    let r = app.get("/api/admin/users?page_size=0").token(&admin).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_metrics_are_admin_only() {
    let app = App::new(fast());
    assert_eq!(
        app.get("/api/admin/metrics").await.status,
        StatusCode::UNAUTHORIZED
    );
    let user = app.user_token().await;
    let r = app.get("/api/admin/metrics").token(&user).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "forbidden");
}

#[tokio::test]
async fn the_metrics_count_requests_per_route_pattern_and_status() {
    let app = App::new(fast_chat());
    let token = app.admin_token().await;
    for _ in 0..5 {
        assert_eq!(app.get("/health").await.status, StatusCode::OK);
    }
    // three different paths, one route pattern
    for n in 0..3 {
        let r = app
            .get(&format!("/api/conversations/conv_{n}/messages"))
            .token(&token)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.get("/no/such/route").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/users/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let m = app.get("/api/admin/metrics").token(&token).await.json();

    let health = route(&m, "GET", "/health");
    assert_eq!(health["count"], 5);
    assert_eq!(health["statuses"], json!({"200": 5}));
    let lat = &health["latency_ms"];
    let ms = |key: &str| lat[key].as_f64().unwrap();
    assert!(0.0 < ms("p50"), "{lat}");
    assert!(
        ms("p50") <= ms("p90") && ms("p90") <= ms("p99") && ms("p99") <= ms("max"),
        "{lat}"
    );
    // milliseconds, not microseconds: a /health call in process takes well under a second
    assert!(ms("max") < 1000.0, "{lat}");
    assert!(ms("mean") > 0.0, "{lat}");
    let messages = route(&m, "GET", "/api/conversations/{id}/messages");
    assert_eq!(messages["statuses"], json!({"404": 3}));
    assert_eq!(
        route(&m, "GET", "(unmatched)")["statuses"],
        json!({"404": 1})
    );
    assert_eq!(
        route(&m, "GET", "/api/users/me")["statuses"],
        json!({"401": 1})
    );
    assert_eq!(
        route(&m, "POST", "/api/auth/login")["statuses"],
        json!({"200": 1})
    );
    // the metrics request itself is still in flight while it answers
    assert_eq!(m["in_flight"], 1);
    assert_eq!(m["requests_total"], 11);
    assert_eq!(m["statuses"], json!({"200": 6, "401": 1, "404": 4}));
    assert!(m["uptime_seconds"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["requests_per_second"].as_f64().unwrap() > 0.0, "{m}");
    assert_eq!(m["cancelled"], 0);

    let again = app.get("/api/admin/metrics").token(&token).await.json();
    assert_eq!(route(&again, "GET", "/api/admin/metrics")["count"], 1);
}

/// An app whose chat answers take a minute, so that a chat request stays in flight as long as a
/// test needs (on the paused clock, the minute passes as soon as the test awaits it).
fn slow_chat() -> App {
    App::new(Config {
        chat_latency_ms: 60_000,
        chat_latency_jitter_ms: 0,
        ..fast()
    })
}

#[tokio::test(start_paused = true)]
async fn the_metrics_see_in_flight_requests() {
    let app = slow_chat();
    let token = app.admin_token().await;
    let chat = app
        .post("/api/chat/query")
        .token(&token)
        .json(&json!({"query": "pricing"}))
        .into_future();
    let mut chat = pin!(chat);
    // one poll takes the query into the handler, where it waits for its latency
    let first = std::future::poll_fn(|cx| Poll::Ready(chat.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "the chat answered at once");
    let m = app.get("/api/admin/metrics").token(&token).await.json();
    assert_eq!(m["in_flight"], 2, "the chat query and this request: {m}");
    assert_eq!(chat.await.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_request_its_client_abandons_counts_as_cancelled() {
    let app = slow_chat();
    let token = app.admin_token().await;
    {
        let chat = app
            .post("/api/chat/query")
            .token(&token)
            .json(&json!({"query": "pricing"}))
            .into_future();
        let mut chat = pin!(chat);
        let first = std::future::poll_fn(|cx| Poll::Ready(chat.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "the chat answered at once");
        // the client goes away: the request's future is dropped unfinished
    }
    let m = app.get("/api/admin/metrics").token(&token).await.json();
    assert_eq!(m["cancelled"], 1, "{m}");
    assert_eq!(m["in_flight"], 1, "only this request: {m}");
    // it never finished, so it is not recorded
    let routes = m["routes"].as_array().unwrap();
    assert!(
        routes.iter().all(|r| r["route"] != "/api/chat/query"),
        "{m}"
    );
}
