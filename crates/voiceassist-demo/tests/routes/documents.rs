//! The knowledge-base documents: multipart uploads (413, 415, 422, 400), the processing and ready
//! states, list/get/delete, admin-only access, the store's cap, and ready documents in the chat's
//! answers.
//!
//! A document's status comes from the system clock, which a test cannot move: a delay of 0 makes
//! a document ready at once and one of an hour keeps it processing for the whole test. The move
//! from one to the other after the delay is tested through a real server, in
//! tests/test_demo_documents.py.

use crate::common::multipart::{form, Part};
use crate::common::{fast, App, Reply};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use voiceassist_demo::Config;

const DOCS: &str = "/api/admin/kb/documents";
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const AN_HOUR_MS: u64 = 3_600_000;

/// The settings of the Python module's server: documents ready at once, uploads up to 4 KiB.
fn small_uploads() -> Config {
    Config {
        document_processing_ms: 0,
        max_upload_bytes: 4096,
        ..fast()
    }
}

fn processing_for(ms: u64) -> Config {
    Config {
        document_processing_ms: ms,
        chat_latency_ms: 0,
        ..fast()
    }
}

async fn upload(app: &App, token: &str, parts: &[Part<'_>]) -> Reply {
    let (content_type, body) = form(parts);
    app.post(DOCS).token(token).body(&content_type, body).await
}

/// Uploads a document; the upload must succeed.
async fn uploaded(app: &App, token: &str, parts: &[Part<'_>]) -> Value {
    let r = upload(app, token, parts).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn ids(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["id"].clone())
        .collect()
}

#[tokio::test]
async fn an_upload_answers_201_with_the_document() {
    let app = App::new(small_uploads());
    let admin = app.admin_token().await;
    let guide = "# Guide\n\nÜmlauts are fine.\n".as_bytes();
    let cases: [(&str, &[u8], Option<&str>, &str); 4] = [
        (
            "notes.txt",
            b"VoiceAssist supports 12 languages.\n",
            Some("text/plain"),
            "text/plain",
        ),
        ("guide.md", guide, None, "text/markdown"),
        (
            "manual.pdf",
            PDF,
            Some("application/pdf"),
            "application/pdf",
        ),
        (
            "manual.PDF",
            PDF,
            Some("application/octet-stream"),
            "application/pdf",
        ),
    ];
    for (name, content, part_type, expected_type) in cases {
        let doc = uploaded(
            &app,
            &admin,
            &[
                Part::typed_file(name, content, part_type),
                Part::field("title", "  My title  "),
            ],
        )
        .await;
        assert!(doc["id"].as_str().unwrap().starts_with("doc_"), "{doc}");
        assert_eq!(doc["title"], "My title");
        assert_eq!(doc["filename"], name);
        assert_eq!(doc["content_type"], expected_type, "{name}");
        assert_eq!(doc["size_bytes"], content.len());
        assert_eq!(doc["sha256"], sha256_hex(content));
        assert_eq!(doc["status"], "ready", "document_processing_ms is 0");
        assert!(doc["uploaded_by"].is_u64(), "{doc}");
        assert!(doc["created_at"].as_u64().unwrap() > 0, "{doc}");
    }
}

#[tokio::test]
async fn the_title_defaults_to_the_filename() {
    let app = App::new(small_uploads());
    let admin = app.admin_token().await;
    let doc = uploaded(&app, &admin, &[Part::file("faq.md", b"# FAQ\n")]).await;
    assert_eq!(doc["title"], "faq.md");
}

#[tokio::test]
async fn a_document_is_processing_until_its_delay_is_over() {
    let app = App::new(processing_for(AN_HOUR_MS));
    let token = app.admin_token().await;
    let doc = uploaded(&app, &token, &[Part::file("a.txt", b"hello")]).await;
    assert_eq!(doc["status"], "processing");
    let got = app
        .get(&format!("{DOCS}/{}", doc["id"].as_str().unwrap()))
        .token(&token)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json()["status"], "processing");
    let listed = app.get(DOCS).token(&token).await.json();
    assert_eq!(ids(&listed), [doc["id"].clone()]);
    let dash = app.get("/api/admin/dashboard").token(&token).await.json();
    assert_eq!(
        (&dash["documents"], &dash["documents_ready"]),
        (&json!(1), &json!(0))
    );
}

#[tokio::test]
async fn a_ready_document_is_counted_and_deleted() {
    let app = App::new(processing_for(0));
    let token = app.admin_token().await;
    let doc = uploaded(&app, &token, &[Part::file("a.txt", b"hello")]).await;
    let path = format!("{DOCS}/{}", doc["id"].as_str().unwrap());
    assert_eq!(app.get(&path).token(&token).await.json()["status"], "ready");
    let dash = app.get("/api/admin/dashboard").token(&token).await.json();
    assert_eq!(
        (&dash["documents"], &dash["documents_ready"]),
        (&json!(1), &json!(1))
    );
    let d = app.delete(&path).token(&token).await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert!(d.body.is_empty(), "{d:?}");
    assert_eq!(
        app.get(&path).token(&token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&path).token(&token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(DOCS).token(&token).await.json()["total"], 0);
}

#[tokio::test]
async fn an_oversize_upload_is_413() {
    let app = App::new(small_uploads());
    let admin = app.admin_token().await;
    let r = upload(&app, &admin, &[Part::file("big.txt", &[b'x'; 4097])]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "payload_too_large");
    assert!(body["message"].as_str().unwrap().contains("4096"), "{body}");
    // exactly at the limit is fine
    let r = upload(&app, &admin, &[Part::file("ok.txt", &[b'x'; 4096])]).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_huge_upload_is_413_without_reading_it() {
    // far past the limit and the multipart allowance: refused from Content-Length
    let app = App::new(small_uploads());
    let admin = app.admin_token().await;
    let big = vec![b'x'; 200 * 1024];
    let r = upload(&app, &admin, &[Part::file("big.txt", &big)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_wrong_file_type_is_415() {
    let app = App::new(small_uploads());
    let admin = app.admin_token().await;
    let cases: [(&str, &[u8], Option<&str>, &str); 6] = [
        (
            "photo.png",
            b"\x89PNG\r\n",
            Some("image/png"),
            "unsupported file type",
        ),
        ("a.exe", b"MZ", None, "unsupported file type"),
        ("blob", b"data", None, "unsupported file type"),
        ("notes.txt", b"hi", Some("image/png"), "image/png"),
        (
            "fake.pdf",
            b"not a pdf",
            Some("application/pdf"),
            "not a PDF",
        ),
        (
            "bin.txt",
            b"\xff\xfe\x00bad",
            Some("text/plain"),
            "not UTF-8",
        ),
    ];
    for (name, content, part_type, why) in cases {
        let r = upload(&app, &admin, &[Part::typed_file(name, content, part_type)]).await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{name}: {}",
            r.text()
        );
        let body = r.json();
        assert_eq!(body["error"], "unsupported_media_type");
        assert!(
            body["message"].as_str().unwrap().contains(why),
            "{name}: {body}"
        );
    }
}

#[tokio::test]
async fn a_non_multipart_body_is_415() {
    let app = App::new(small_uploads());
    let admin = app.admin_token().await;
    let r = app
        .post(DOCS)
        .token(&admin)
        .json(&json!({"file": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let message = r.json()["message"].clone();
    assert!(
        message.as_str().unwrap().contains("multipart/form-data"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_file_field_is_422_naming_it() {
    let app = App::new(small_uploads());
    let admin = app.admin_token().await;
    let attachment = Part::File {
        name: "attachment",
        filename: "a.txt",
        content: b"hello",
        content_type: None,
    };
    let r = upload(&app, &admin, &[attachment, Part::field("title", "t")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["field"], "file");
}

#[tokio::test]
async fn an_empty_file_or_a_long_title_is_422() {
    let app = App::new(small_uploads());
    let admin = app.admin_token().await;
    let r = upload(&app, &admin, &[Part::file("a.txt", b"")]).await;
    assert_eq!(
        (r.status, &r.json()["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("file"))
    );
    let title = "t".repeat(201);
    let r = upload(
        &app,
        &admin,
        &[Part::file("a.txt", b"x"), Part::field("title", &title)],
    )
    .await;
    assert_eq!(
        (r.status, &r.json()["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("title"))
    );
}

#[tokio::test]
async fn a_broken_multipart_body_is_400() {
    let app = App::new(small_uploads());
    let admin = app.admin_token().await;
    let r = app
        .post(DOCS)
        .token(&admin)
        .body("multipart/form-data; boundary=XYZ", "--XYZ\r\nbroken")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json()["error"], "bad_request");
}

#[tokio::test]
async fn documents_are_admin_only() {
    let app = App::new(small_uploads());
    let user = app.user_token().await;
    let one = format!("{DOCS}/doc_x");
    for (method, path) in [
        (Method::GET, DOCS),
        (Method::POST, DOCS),
        (Method::GET, one.as_str()),
        (Method::DELETE, one.as_str()),
    ] {
        let r = app.call(method.clone(), path).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(r.header("www-authenticate"), "Bearer");
        let r = app.call(method.clone(), path).token(&user).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(r.json()["error"], "forbidden");
    }
}

#[tokio::test]
async fn a_non_admin_upload_is_403_before_the_body_is_checked() {
    let app = App::new(small_uploads());
    let user = app.user_token().await;
    let r = upload(&app, &user, &[Part::file("big.txt", &[b'x'; 10_000])]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_documents_are_404() {
    let app = App::new(small_uploads());
    let admin = app.admin_token().await;
    for method in [Method::GET, Method::DELETE] {
        let r = app
            .call(
                method.clone(),
                &format!("{DOCS}/doc_0123456789abcdef01234567"),
            )
            .token(&admin)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(r.json()["error"], "not_found");
    }
}

#[tokio::test]
async fn documents_are_paginated_newest_first_and_capped() {
    let app = App::new(Config {
        max_documents: 5,
        ..processing_for(0)
    });
    let token = app.admin_token().await;
    let mut all = Vec::new();
    for i in 0..7 {
        let name = format!("d{i}.txt");
        all.push(uploaded(&app, &token, &[Part::file(&name, b"x")]).await["id"].clone());
    }
    let page = app
        .get(&format!("{DOCS}?page=1&page_size=2"))
        .token(&token)
        .await
        .json();
    assert_eq!(page["total"], 5);
    assert_eq!(page["pages"], 3);
    assert_eq!(ids(&page), [all[6].clone(), all[5].clone()]);
    let last = app
        .get(&format!("{DOCS}?page=3&page_size=2"))
        .token(&token)
        .await
        .json();
    assert_eq!(ids(&last), [all[2].clone()]);
    // evicted
    let r = app
        .get(&format!("{DOCS}/{}", all[0].as_str().unwrap()))
        .token(&token)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get(&format!("{DOCS}?page_size=0")).token(&token).await;
    assert_eq!(
        (r.status, &r.json()["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("page_size"))
    );
}

async fn ask(app: &App, token: &str, query: &str) -> Value {
    let r = app
        .post("/api/chat/query")
        .token(token)
        .json(&json!({"query": query}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

const ZORBLAX: &str = "Zorblax calibration: turn the flux dial to seven before any pricing review.";

#[tokio::test]
async fn a_processing_document_is_not_cited() {
    let app = App::new(processing_for(AN_HOUR_MS));
    let token = app.admin_token().await;
    let parts = [
        Part::file("notes.md", ZORBLAX.as_bytes()),
        Part::field("title", "Zorblax field guide"),
    ];
    uploaded(&app, &token, &parts).await;
    assert_eq!(
        ask(&app, &token, "zorblax calibration").await["citations"],
        json!([])
    );
}

#[tokio::test]
async fn ready_documents_join_the_chat_knowledge_base() {
    // cited by their words (title and text), after built-in articles on a tie; gone when deleted
    let app = App::new(processing_for(0));
    let token = app.admin_token().await;
    let parts = [
        Part::file("notes.md", ZORBLAX.as_bytes()),
        Part::field("title", "Zorblax field guide"),
    ];
    let doc = uploaded(&app, &token, &parts).await;
    let id = doc["id"].as_str().unwrap();

    let answer = ask(&app, &token, "How do I do the zorblax calibration?").await;
    let cited: Vec<(&Value, &Value, &Value, &Value)> = answer["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (&c["id"], &c["document_id"], &c["title"], &c["score"]))
        .collect();
    assert_eq!(
        cited,
        [(
            &json!(id),
            &json!(id),
            &json!("Zorblax field guide"),
            &json!(2)
        )]
    );
    assert_eq!(answer["answer"], format!("{ZORBLAX} [{id}]"));
    assert_eq!(answer["citations"][0]["snippet"], ZORBLAX);
    // a tie with a built-in article (pricing, score 1): the article first, then the document
    let pricing = ask(&app, &token, "pricing").await;
    assert_eq!(pricing["citations"][0]["id"], "kb-003");
    assert_eq!(pricing["citations"][1]["id"], id);
    // a PDF is found by its title
    let pdf = uploaded(
        &app,
        &token,
        &[
            Part::file("spec.pdf", PDF),
            Part::field("title", "Quuxify specification"),
        ],
    )
    .await;
    assert_eq!(
        ask(&app, &token, "quuxify").await["citations"][0]["id"],
        pdf["id"]
    );

    let r = app.delete(&format!("{DOCS}/{id}")).token(&token).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        ask(&app, &token, "zorblax calibration").await["citations"],
        json!([])
    );
}
