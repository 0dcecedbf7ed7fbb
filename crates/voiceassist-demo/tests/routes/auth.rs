//! `/api/auth/*` and `/api/users/me`: every status code, the whole token flow, the rate limits and
//! the user store's cap.

use crate::common::{access_token, fast, unique_email, App, ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD};
use http::StatusCode;
use serde_json::{json, Value};
use voiceassist_demo::Config;

fn app() -> App {
    App::new(fast())
}

#[tokio::test]
async fn register_answers_201_with_the_user() {
    let app = app();
    let email = unique_email();
    let r = app
        .post("/api/auth/register")
        .json(&json!({"email": email.to_uppercase(), "password": PASSWORD, "full_name": "Ann"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let body = r.json();
    assert_eq!(body["email"], email.as_str());
    assert_eq!(body["full_name"], "Ann");
    assert_eq!(body["is_admin"], false);
    assert!(!r.text().contains("password"), "{}", r.text());
}

#[tokio::test]
async fn registering_twice_is_409() {
    let app = app();
    let email = unique_email();
    app.register(&email).await;
    let r = app
        .post("/api/auth/register")
        .json(&json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json()["error"], "conflict");
}

#[tokio::test]
async fn register_with_an_invalid_body_is_422_naming_the_field() {
    let app = app();
    let cases = [
        (json!({"password": PASSWORD}), "email"),
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (json!({"email": 5, "password": PASSWORD}), "email"),
        (json!({"email": "a@example.com"}), "password"),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "full_name": 3}),
            "full_name",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in cases {
        let r = app.post("/api/auth/register").json(&body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {r:?}");
        assert_eq!(r.json()["field"], field, "{body}");
        assert_eq!(r.json()["error"], "validation_error", "{body}");
    }
}

#[tokio::test]
async fn malformed_json_is_422_naming_the_body() {
    let r = app().post("/api/auth/register").raw("{not json").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "body");
}

#[tokio::test]
async fn login_answers_tokens() {
    let app = app();
    let email = unique_email();
    app.register(&email).await;
    let body = app.login(&email, PASSWORD).await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    let access = access_token(&body);
    assert_eq!(access.matches('.').count(), 2);
    assert_ne!(body["refresh_token"], body["access_token"]);
    assert_eq!(body["user"]["email"], email.as_str());
}

#[tokio::test]
async fn login_accepts_username_for_email() {
    let app = app();
    let email = unique_email();
    app.register(&email).await;
    let r = app
        .post("/api/auth/login")
        .json(&json!({"username": email, "password": PASSWORD}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_credentials_are_401() {
    let app = app();
    let email = unique_email();
    app.register(&email).await;
    let wrong_password = json!({"email": email, "password": "wrong-password"});
    let unknown_email = json!({"email": unique_email(), "password": PASSWORD});
    for credentials in [wrong_password, unknown_email] {
        let r = app.post("/api/auth/login").json(&credentials).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{credentials}");
        assert_eq!(r.header("www-authenticate"), "Bearer");
        assert_eq!(r.json()["message"], "invalid email or password");
    }
}

#[tokio::test]
async fn login_without_password_is_422() {
    let r = app()
        .post("/api/auth/login")
        .json(&json!({"email": "a@example.com"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "password");
}

#[tokio::test]
async fn the_seeded_admin_logs_in() {
    let app = app();
    let token = app.admin_token().await;
    let me = app.get("/api/users/me").token(&token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["is_admin"], true);
}

#[tokio::test]
async fn me_without_a_valid_token_is_401() {
    let app = app();
    // missing, empty, not bearer, garbage
    let headers = [
        None,
        Some("Bearer"),
        Some("Basic abc"),
        Some("Bearer not.a.jwt"),
    ];
    for authorization in headers {
        let mut call = app.get("/api/users/me");
        if let Some(value) = authorization {
            call = call.header("authorization", value);
        }
        let r = call.await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(r.json()["error"], "unauthorized", "{authorization:?}");
    }
}

#[tokio::test]
async fn a_refresh_token_is_not_an_access_token() {
    let app = app();
    let email = unique_email();
    app.register(&email).await;
    let tokens = app.login(&email, PASSWORD).await;
    let refresh = tokens["refresh_token"].as_str().unwrap_or_default();
    let r = app.get("/api/users/me").token(refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .post("/api/auth/refresh")
        .json(&json!({"refresh_token": tokens["access_token"]}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_from_another_server_is_401() {
    let other = App::new(Config {
        jwt_secret: Some("another-secret".into()),
        password_hash_iterations: 10,
        ..Config::default()
    });
    let foreign = other.admin_token().await;
    let r = app().get("/api/users/me").token(&foreign).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_with_a_bad_token_is_401_and_without_one_422() {
    let app = app();
    let r = app
        .post("/api/auth/refresh")
        .json(&json!({"refresh_token": "x.y.z"}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.post("/api/auth/refresh").json(&json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "refresh_token");
}

#[tokio::test]
async fn logout_without_a_token_is_401() {
    let r = app().post("/api/auth/logout").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_full_auth_flow() {
    let app = app();
    let email = unique_email();
    app.register(&email).await;
    let tokens = app.login(&email, PASSWORD).await;
    let access = access_token(&tokens);
    let refresh = json!({"refresh_token": tokens["refresh_token"]});

    let me = app.get("/api/users/me").token(&access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["email"], email.as_str());

    let r = app.post("/api/auth/refresh").json(&refresh).await;
    assert_eq!(r.status, StatusCode::OK);
    let fresh = access_token(&r.json());
    assert_ne!(fresh, access);
    let r = app.get("/api/users/me").token(&fresh).await;
    assert_eq!(r.status, StatusCode::OK);

    let r = app.post("/api/auth/logout").token(&access).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty(), "{r:?}");
    let r = app.get("/api/users/me").token(&access).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["message"], "token revoked");
    let r = app.post("/api/auth/logout").token(&access).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // logout revoked only that access token; the other one and the refresh token still work
    let r = app.get("/api/users/me").token(&fresh).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.post("/api/auth/refresh").json(&refresh).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn logout_with_the_refresh_token_revokes_it_too() {
    let app = app();
    let email = unique_email();
    app.register(&email).await;
    let tokens = app.login(&email, PASSWORD).await;
    let refresh = json!({"refresh_token": tokens["refresh_token"]});
    let r = app
        .post("/api/auth/logout")
        .token(&access_token(&tokens))
        .json(&refresh)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.post("/api/auth/refresh").json(&refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["message"], "token revoked");
}

/// A token past its `exp` second, signed with the server's secret as the server signs its own.
/// The server's clock cannot be moved, so this stands in for waiting for a real token to expire
/// (tests/test_demo_auth.py does that, over two seconds).
fn expired(secret: &str, login: &Value, kind: &str) -> jsonwebtoken::errors::Result<String> {
    let token = login[format!("{kind}_token")].as_str().unwrap_or_default();
    let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    let mut claims = jsonwebtoken::decode::<Value>(token, &key, &validation)?.claims;
    let issued = claims["iat"].as_u64().unwrap_or_default();
    claims["iat"] = json!(issued - 2);
    claims["exp"] = json!(issued - 1);
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
}

#[tokio::test]
async fn tokens_live_their_ttl_and_an_expired_one_is_401() {
    let secret = "route-test-secret";
    // TTLs of a minute and more: a token's `exp` is whole seconds after its whole-second `iat`, so one of 1 s
    // lives anywhere from 0 to 1 s, and a check right after login could meet it expired. How long a token lives
    // is read from its claims instead; how an expired one fares, from one forged with its `exp` passed.
    let app = App::new(Config {
        jwt_secret: Some(secret.into()),
        access_token_ttl: 60,
        refresh_token_ttl: 120,
        ..fast()
    });
    let tokens = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(tokens["expires_in"], 60);
    for (kind, ttl) in [("access", 60), ("refresh", 120)] {
        let token = tokens[format!("{kind}_token")].as_str().unwrap_or_default();
        let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .unwrap()
            .claims;
        let lives =
            claims["exp"].as_u64().unwrap_or_default() - claims["iat"].as_u64().unwrap_or_default();
        assert_eq!(lives, ttl, "{kind}: {claims}");
    }
    let r = app.get("/api/users/me").token(&access_token(&tokens)).await;
    assert_eq!(r.status, StatusCode::OK);

    let r = app
        .get("/api/users/me")
        .token(&expired(secret, &tokens, "access").unwrap())
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["message"], "token expired");
    let r = app
        .post("/api/auth/refresh")
        .json(&json!({"refresh_token": expired(secret, &tokens, "refresh").unwrap()}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["message"], "token expired");
}

#[tokio::test]
async fn the_registration_rate_limit_answers_429_with_retry_after() {
    let app = App::new(Config {
        register_per_minute: 2,
        ..fast()
    });
    app.register(&unique_email()).await;
    app.register(&unique_email()).await;
    let r = app
        .post("/api/auth/register")
        .json(&json!({"email": unique_email(), "password": PASSWORD}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = r.header("retry-after").parse().unwrap_or_default();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(r.json()["error"], "rate_limited");
}

#[tokio::test]
async fn the_login_rate_limit_is_per_account() {
    let app = App::new(Config {
        login_attempts_per_minute: 2,
        ..fast()
    });
    let email = unique_email();
    app.register(&email).await;
    let r = app
        .post("/api/auth/login")
        .json(&json!({"email": email, "password": "wrong-password"}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    app.login(&email, PASSWORD).await;
    let r = app
        .post("/api/auth/login")
        .json(&json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = r.header("retry-after").parse().unwrap_or_default();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // another account is not limited
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_full_user_store_evicts_the_oldest_user() {
    let app = App::new(Config {
        max_users: 3,
        ..fast()
    });
    let first = unique_email();
    app.register(&first).await;
    let token = access_token(&app.login(&first, PASSWORD).await);
    app.register(&unique_email()).await;
    // the admin and three users are more than 3: the first user goes
    app.register(&unique_email()).await;
    let r = app.get("/api/users/me").token(&token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .post("/api/auth/login")
        .json(&json!({"email": first, "password": PASSWORD}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // the admin is never evicted
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}
