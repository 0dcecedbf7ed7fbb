//! What every route shares: `/health`, the JSON 404 of an unknown route, and fault injection
//! (`error_rate`).

use crate::common::{fast_chat, App};
use http::{Method, StatusCode};
use serde_json::json;
use voiceassist_demo::Config;

#[tokio::test]
async fn health_answers_ok_in_json() {
    let r = App::new(fast_chat()).get("/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
    assert!(
        r.header("content-type").starts_with("application/json"),
        "{r:?}"
    );
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let r = App::new(fast_chat()).get("/api/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "not_found");
}

#[tokio::test]
async fn error_rate_1_answers_500_except_health() {
    let app = App::new(Config {
        error_rate: 1.0,
        ..fast_chat()
    });
    assert_eq!(app.get("/health").await.status, StatusCode::OK);
    for (method, path) in [
        (Method::POST, "/api/chat/query"),
        (Method::GET, "/api/conversations"),
        (Method::POST, "/api/auth/login"),
    ] {
        let r = app
            .call(method.clone(), path)
            .json(&json!({"query": "pricing"}))
            .await;
        assert_eq!(
            r.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {path}"
        );
        let body = r.json();
        assert_eq!(body["error"], "internal_error");
        assert!(
            body["message"].as_str().unwrap().contains("injected"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn error_rate_0_changes_nothing() {
    let app = App::new(fast_chat());
    let token = app.user_token().await;
    for _ in 0..20 {
        let r = app
            .post("/api/chat/query")
            .token(&token)
            .json(&json!({"query": "pricing"}))
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
}
