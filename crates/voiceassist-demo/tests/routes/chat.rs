//! `POST /api/chat/query` and the conversation routes: answers and citations, validation,
//! ownership, pagination, the stores' caps, the chat latency and `drop_rate`.
//!
//! The latency tests run on tokio's paused clock: the chat's sleep ends as soon as nothing else
//! can run, and the time it took is exact.

use crate::common::{fast, fast_chat, App};
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::time::{Duration, Instant};
use voiceassist_demo::Config;

fn app() -> App {
    App::new(fast_chat())
}

async fn ask(app: &App, token: &str, body: Value) -> crate::common::Reply {
    app.post("/api/chat/query").token(token).json(&body).await
}

/// Asks `query` in a new conversation; the answer must be a 200.
async fn answer(app: &App, token: &str, query: &str) -> Value {
    let r = ask(app, token, json!({"query": query})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

fn id(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_matching_query_gets_citations() {
    let app = app();
    let token = app.user_token().await;
    let body = answer(&app, &token, "How much does the Team plan cost?").await;
    assert!(!id(&body["answer"]).is_empty(), "{body}");
    assert!(!id(&body["conversation_id"]).is_empty(), "{body}");
    let citations = body["citations"].as_array().unwrap();
    assert!(!citations.is_empty(), "{body}");
    assert_eq!(citations[0]["id"], "kb-003");
    assert!(!id(&citations[0]["title"]).is_empty() && !id(&citations[0]["snippet"]).is_empty());
    for c in citations {
        for key in ["id", "title", "snippet"] {
            assert!(c.get(key).is_some(), "{key} missing in {c}");
        }
    }
}

#[tokio::test]
async fn a_query_matching_nothing_gets_no_citations() {
    let app = app();
    let token = app.user_token().await;
    let body = answer(&app, &token, "zebra quantum lasagna").await;
    assert_eq!(body["citations"], json!([]));
    assert!(!id(&body["answer"]).is_empty(), "{body}");
    assert!(!id(&body["conversation_id"]).is_empty(), "{body}");
}

#[tokio::test]
async fn answers_are_deterministic() {
    let app = app();
    let (a, b) = (app.user_token().await, app.user_token().await);
    let q = "Which integrations and security certifications do you have?";
    let first = answer(&app, &a, q).await;
    let second = answer(&app, &b, q).await;
    assert_eq!(first["answer"], second["answer"]);
    assert_eq!(first["citations"], second["citations"]);
    assert_ne!(first["conversation_id"], second["conversation_id"]);
}

#[tokio::test]
async fn chat_needs_a_token() {
    let app = app();
    let query = json!({"query": "pricing"});
    let r = app.post("/api/chat/query").json(&query).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    let r = ask(&app, "not-a-token", query).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_bad_chat_body_is_a_422_naming_the_field() {
    let app = app();
    let token = app.user_token().await;
    let cases = [
        (json!({}), "query"),
        (json!({"query": ""}), "query"),
        (json!({"query": "   "}), "query"),
        (json!({"query": 5}), "query"),
        (json!({"query": "x".repeat(4001)}), "query"),
        (
            json!({"query": "pricing", "conversation_id": 7}),
            "conversation_id",
        ),
    ];
    for (body, field) in cases {
        let r = ask(&app, &token, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {r:?}");
        assert_eq!(r.json()["field"], field, "{body}");
    }
}

#[tokio::test]
async fn a_non_object_chat_body_is_a_422() {
    let app = app();
    let token = app.user_token().await;
    let r = app
        .post("/api/chat/query")
        .token(&token)
        .raw("[1, 2]")
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "body");
}

#[tokio::test]
async fn an_unknown_or_foreign_conversation_is_a_404() {
    let app = app();
    let (alice, bob) = (app.user_token().await, app.user_token().await);
    let r = ask(
        &app,
        &alice,
        json!({"query": "pricing", "conversation_id": "conv_nope"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "not_found");
    let conv = id(&answer(&app, &alice, "pricing").await["conversation_id"]);
    let r = ask(
        &app,
        &bob,
        json!({"query": "pricing", "conversation_id": conv}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .get(&format!("/api/conversations/{conv}/messages"))
        .token(&bob)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .get("/api/conversations/conv_nope/messages")
        .token(&alice)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_conversation_flow() {
    let app = app();
    let token = app.user_token().await;
    let r = app
        .post("/api/conversations")
        .token(&token)
        .json(&json!({"title": "Billing questions"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let conv = r.json();
    assert_eq!(conv["title"], "Billing questions");
    assert_eq!(conv["message_count"], 0);
    let cid = id(&conv["id"]);
    let r1 = ask(
        &app,
        &token,
        json!({"query": "What does it cost?", "conversation_id": cid}),
    )
    .await;
    let r2 = ask(
        &app,
        &token,
        json!({"query": "Is there a free trial?", "conversation_id": cid}),
    )
    .await;
    assert_eq!((r1.status, r2.status), (StatusCode::OK, StatusCode::OK));
    let (r1, r2) = (r1.json(), r2.json());
    assert_eq!(r1["conversation_id"], cid.as_str());
    assert_eq!(r2["conversation_id"], cid.as_str());

    let r = app
        .get(&format!("/api/conversations/{cid}/messages"))
        .token(&token)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(body["conversation_id"], cid.as_str());
    assert_eq!(body["total"], 4);
    let msgs = body["items"].as_array().unwrap();
    let roles: Vec<&Value> = msgs.iter().map(|m| &m["role"]).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(msgs[0]["content"], "What does it cost?");
    assert_eq!(msgs[1]["content"], r1["answer"]);
    assert_eq!(msgs[1]["citations"], r1["citations"]);
    assert_eq!(msgs[3]["id"], r2["message_id"]);

    let listed = app.get("/api/conversations").token(&token).await.json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], cid.as_str());
    assert_eq!(listed["items"][0]["message_count"], 4);
}

#[tokio::test]
async fn a_query_without_a_conversation_starts_one() {
    let app = app();
    let token = app.user_token().await;
    let query = "Tell me about microphone setup";
    let cid = answer(&app, &token, query).await["conversation_id"].clone();
    let listed = app.get("/api/conversations").token(&token).await.json();
    let items = listed["items"].as_array().unwrap();
    let ids: Vec<&Value> = items.iter().map(|c| &c["id"]).collect();
    assert_eq!(ids, [&cid]);
    assert_eq!(items[0]["title"], query);
}

#[tokio::test]
async fn creating_a_conversation_without_a_body_and_with_a_bad_title() {
    let app = app();
    let token = app.user_token().await;
    let r = app.post("/api/conversations").token(&token).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["title"], "New conversation");
    let r = app
        .post("/api/conversations")
        .token(&token)
        .json(&json!({"title": 3}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "title");
    let r = app.post("/api/conversations").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.get("/api/conversations").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn conversations_are_paginated_newest_first() {
    let app = app();
    let token = app.user_token().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = app
            .post("/api/conversations")
            .token(&token)
            .json(&json!({"title": format!("c{i}")}))
            .await;
        ids.push(r.json()["id"].clone());
    }
    let body = app
        .get("/api/conversations?page=1&page_size=2")
        .token(&token)
        .await
        .json();
    let shape = (
        &body["total"],
        &body["page"],
        &body["page_size"],
        &body["pages"],
    );
    assert_eq!(shape, (&json!(5), &json!(1), &json!(2), &json!(3)));
    assert_eq!(body["items"][0]["id"], ids[4]);
    assert_eq!(body["items"][1]["id"], ids[3]);
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    let last = app
        .get("/api/conversations?page=3&page_size=2")
        .token(&token)
        .await
        .json();
    let last_ids: Vec<&Value> = last["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(last_ids, [&ids[0]]);
    let beyond = app
        .get("/api/conversations?page=9&page_size=2")
        .token(&token)
        .await
        .json();
    assert_eq!(beyond["items"], json!([]));
    for (query, field) in [
        ("page=0", "page"),
        ("page_size=101", "page_size"),
        ("page=x", "page"),
    ] {
        let r = app
            .get(&format!("/api/conversations?{query}"))
            .token(&token)
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(r.json()["field"], field, "{query}");
    }
}

#[tokio::test]
async fn messages_are_paginated() {
    let app = app();
    let token = app.user_token().await;
    let cid = id(&answer(&app, &token, "pricing").await["conversation_id"]);
    let r = ask(
        &app,
        &token,
        json!({"query": "security", "conversation_id": cid}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = app
        .get(&format!(
            "/api/conversations/{cid}/messages?page=2&page_size=3"
        ))
        .token(&token)
        .await
        .json();
    assert_eq!(body["total"], 4);
    let roles: Vec<&Value> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["role"])
        .collect();
    assert_eq!(roles, ["assistant"]);
}

#[tokio::test]
async fn the_stores_are_capped() {
    let app = App::new(Config {
        max_conversations_per_user: 2,
        max_conversations: 3,
        max_messages_per_conversation: 4,
        ..fast_chat()
    });
    let (a, b) = (app.user_token().await, app.user_token().await);
    let mut a_ids = Vec::new();
    for i in 0..3 {
        a_ids.push(id(
            &answer(&app, &a, &format!("pricing {i}")).await["conversation_id"]
        ));
    }
    let listed = app.get("/api/conversations").token(&a).await.json();
    assert_eq!(listed["total"], 2);
    let listed_ids: Vec<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| id(&c["id"]))
        .collect();
    assert_eq!(listed_ids, [a_ids[2].clone(), a_ids[1].clone()]);
    let r = ask(
        &app,
        &a,
        json!({"query": "pricing", "conversation_id": a_ids[0]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // the total cap of 3: b's two evict a's oldest remaining
    for _ in 0..2 {
        answer(&app, &b, "security").await;
    }
    let listed = app.get("/api/conversations").token(&a).await.json();
    assert_eq!(listed["total"], 1);
    for i in 0..3 {
        let r = ask(
            &app,
            &a,
            json!({"query": format!("question {i}"), "conversation_id": a_ids[2]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let msgs = app
        .get(&format!("/api/conversations/{}/messages", a_ids[2]))
        .token(&a)
        .await
        .json();
    assert_eq!(msgs["total"], 4);
    assert_eq!(msgs["items"][0]["content"], "question 1");
    let admin = app.admin_token().await;
    let dash = app.get("/api/admin/dashboard").token(&admin).await.json();
    assert_eq!(dash["conversations"], 3);
    assert_eq!(dash["messages"], 4 + 2 + 2);
}

#[tokio::test]
async fn drop_rate_1_breaks_the_chat_body_mid_way() {
    let app = App::new(Config {
        drop_rate: 1.0,
        ..fast_chat()
    });
    // other routes are not dropped: registering and logging in work
    let token = app.user_token().await;
    for _ in 0..3 {
        let response = app
            .post("/api/chat/query")
            .token(&token)
            .json(&json!({"query": "pricing"}))
            .response()
            .await;
        // a 200 head with the whole body's length, then half the body, then an error
        assert_eq!(response.status(), StatusCode::OK);
        let length: usize = response.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let mut body = response.into_body();
        let mut partial = Vec::new();
        let error = loop {
            match body.frame().await {
                Some(Ok(frame)) => partial.extend_from_slice(&frame.into_data().unwrap()),
                Some(Err(e)) => break e,
                None => panic!(
                    "the body ended cleanly after {} of {length} bytes",
                    partial.len()
                ),
            }
        };
        assert!(
            !partial.is_empty() && partial.len() < length,
            "{} of {length}",
            partial.len()
        );
        assert!(error.to_string().contains("injected drop"), "{error}");
    }
    let r = app.get("/api/conversations").token(&token).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn drop_rate_0_changes_nothing() {
    let app = app();
    let token = app.user_token().await;
    for _ in 0..10 {
        let body = answer(&app, &token, "pricing").await;
        assert!(!body["citations"].as_array().unwrap().is_empty(), "{body}");
    }
}

/// How long each of `n` chat answers took on tokio's clock, and the latency each reports.
async fn timed_chat(app: &App, token: &str, n: usize) -> Vec<(Duration, Value)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let body = answer(app, token, "pricing").await;
        out.push((start.elapsed(), body["latency_ms"].clone()));
    }
    out
}

/// The paused clock moves by whole timer ticks of 1 ms, so a sleep of `ms` takes `ms` or one
/// tick more, exactly.
fn assert_took(took: Duration, ms: u64) {
    let range = Duration::from_millis(ms)..=Duration::from_millis(ms + 1);
    assert!(range.contains(&took), "{took:?} for {ms} ms");
}

fn latency(chat_latency_ms: u64, latency_scale: f64) -> Config {
    Config {
        chat_latency_ms,
        chat_latency_jitter_ms: 0,
        latency_scale,
        ..fast()
    }
}

#[tokio::test(start_paused = true)]
async fn the_chat_latency_is_applied_and_scaled() {
    for (config, expected_ms) in [
        (latency(150, 1.0), 150),
        (latency(100, 3.0), 300),
        (latency(100, 0.0), 0),
    ] {
        let app = App::new(config);
        let token = app.user_token().await;
        for (took, reported) in timed_chat(&app, &token, 3).await {
            assert_took(took, expected_ms);
            assert_eq!(reported, expected_ms);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn zero_chat_latency_is_fast() {
    let app = app();
    let token = app.user_token().await;
    for (took, reported) in timed_chat(&app, &token, 5).await {
        assert_took(took, 0);
        assert_eq!(reported, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_the_latency() {
    let app = App::new(Config {
        chat_latency_ms: 100,
        chat_latency_jitter_ms: 80,
        ..fast()
    });
    let token = app.user_token().await;
    let reported: Vec<u64> = timed_chat(&app, &token, 8)
        .await
        .into_iter()
        .map(|(took, reported)| {
            let ms = reported.as_u64().unwrap();
            assert_took(took, ms);
            ms
        })
        .collect();
    assert!(
        reported.iter().all(|ms| (20..=180).contains(ms)),
        "{reported:?}"
    );
    let mut distinct = reported.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 1, "{reported:?}");
}
