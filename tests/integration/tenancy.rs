//! Tenancy, authentication and authorization: every `/api` route is closed to anonymous callers
//! and to roles without its permission; tenants never see each other's data.

use aisales::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{create_tenant, create_user, spawn_app};

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { Uuid::now_v7().to_string() } else { seg.to_string() })
        .collect::<Vec<_>>()
        .join("/")
}

fn method(m: &axum::http::Method) -> Method {
    Method::from_bytes(m.as_str().as_bytes()).unwrap()
}

#[tokio::test]
async fn every_api_route_needs_credentials_and_its_permission() {
    let app = spawn_app(&[("RATE_LIMIT_API_PER_MINUTE", "0")]).await;
    let tenant = create_tenant(&app.pool, "Shop").await;
    let specs = aisales::http::api::routes().specs().to_vec();
    assert!(specs.len() >= 10, "the API has its routes registered: {specs:?}");
    let mut checked_403 = 0;
    for spec in &specs {
        let path = concrete(spec.path);
        let resp = app.request(method(&spec.method), &path, None).json(&json!({})).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{} {} without credentials", spec.method, spec.path);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        // A wrong token is the same as none.
        let resp = app
            .request(method(&spec.method), &path, Some("aisk_notarealtoken000000000000000000000000"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{} {} with a bad token", spec.method, spec.path);

        for role in Role::ALL {
            let allowed = spec.permission.is_none_or(|p| role.allows(p));
            let resp = app
                .request(method(&spec.method), &path, Some(tenant.token(role)))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            if allowed {
                assert_ne!(resp.status(), StatusCode::FORBIDDEN, "{role} may call {} {}", spec.method, spec.path);
                assert_ne!(resp.status(), StatusCode::UNAUTHORIZED, "{role} may call {} {}", spec.method, spec.path);
            } else {
                assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{role} must not call {} {}", spec.method, spec.path);
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["error"]["code"], "forbidden");
                checked_403 += 1;
            }
        }
    }
    assert!(checked_403 > 10, "roles without permissions were exercised");
}

#[tokio::test]
async fn another_tenants_ids_answer_404_like_missing_ones() {
    let app = spawn_app(&[("RATE_LIMIT_API_PER_MINUTE", "0")]).await;
    let a = create_tenant(&app.pool, "A").await;
    let b = create_tenant(&app.pool, "B").await;
    let b_user = create_user(&app.pool, b.id, "ops@b.example", "Password-123456", Role::Operator).await;
    let b_account: Value = app
        .request(Method::POST, "/api/channels", Some(b.owner()))
        .json(&json!({"kind": "green_api", "id_instance": "1101000002", "api_token": "b-secret-token-0123456789"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b_account = b_account["id"].as_str().unwrap().to_string();
    let b_tokens: Value =
        app.request(Method::GET, "/api/tokens", Some(b.owner())).send().await.unwrap().json().await.unwrap();
    let b_token = b_tokens["items"][0]["id"].as_str().unwrap().to_string();

    // A conversation of B with a pending suggestion (through the event store, as the webhook would).
    use aisales_domain::conversation::{ChannelKind, Conversation, ConversationCommand, Decision, Drafted, Inbound};
    let b_conversation = Uuid::now_v7();
    let store = aisales::store::EventStore::new(app.pool.clone());
    let meta = aisales::store::EventMetadata::system(Some(b.id), "customer");
    let inbound = Inbound {
        tenant_id: b.id,
        channel: ChannelKind::Telegram,
        account_id: Uuid::now_v7(),
        chat_id: "42".into(),
        customer_id: Uuid::now_v7(),
        customer_name: Some("B customer".into()),
        customer_phone: None,
        message_id: Uuid::now_v7(),
        provider_message_id: "42:1".into(),
        text: "secret of B".into(),
        attachments: vec![],
        kind: aisales_domain::conversation::MessageKind::Text,
        reply_to: None,
        sent_at: chrono::Utc::now(),
        received_at: chrono::Utc::now(),
        request_id: Uuid::now_v7(),
        debounce: chrono::Duration::zero(),
        vehicle_id: None,
        transmission_code: None,
    };
    let id = b_conversation.to_string();
    let started = store
        .execute::<Conversation>(&id, ConversationCommand::ReceiveMessage(Box::new(inbound)), &(), &meta)
        .await
        .unwrap();
    let b_suggestion = Uuid::now_v7();
    let drafted = Drafted {
        request_id: started.state.pending_request.unwrap(),
        suggestion_id: b_suggestion,
        text: "draft of B".into(),
        intent: "other".into(),
        confidence: 0.5,
        decision: Decision::NeedApproval,
        explanations: vec![],
        source: "offline".into(),
        model: None,
        autosend_block_reason: None,
        reply_id: Uuid::now_v7(),
        send_after: chrono::Utc::now(),
    };
    store
        .execute::<Conversation>(&id, ConversationCommand::RecordSuggestion(Box::new(drafted)), &(), &meta)
        .await
        .unwrap();
    app.start_background_except(&aisales::bus::Kind::ALL);
    crate::helpers::eventually(std::time::Duration::from_secs(10), "B's read models", || async {
        let path = format!("/api/conversations/{b_conversation}/suggestions");
        let r = app.request(Method::GET, &path, Some(b.owner())).send().await.ok()?;
        let v: Value = r.json().await.ok()?;
        (v["items"].as_array()?.len() == 1).then_some(())
    })
    .await;
    // The customers read model is a projector of its own: wait for it too.
    let b_customer = crate::helpers::eventually(std::time::Duration::from_secs(10), "B's customer", || async {
        let r = app.request(Method::GET, "/api/customers", Some(b.owner())).send().await.ok()?;
        let v: Value = r.json().await.ok()?;
        v["items"][0]["id"].as_str().map(str::to_string)
    })
    .await;

    let cases = [
        (Method::GET, format!("/api/conversations/{b_conversation}")),
        (Method::GET, format!("/api/conversations/{b_conversation}/messages")),
        (Method::GET, format!("/api/conversations/{b_conversation}/suggestions")),
        (Method::GET, format!("/api/conversations/{b_conversation}/events")),
        (Method::GET, format!("/api/conversations/{b_conversation}/state")),
        (Method::POST, format!("/api/conversations/{b_conversation}/resolve")),
        (Method::POST, format!("/api/conversations/{b_conversation}/messages")),
        (Method::POST, format!("/api/suggestions/{b_suggestion}/approve")),
        (Method::POST, format!("/api/suggestions/{b_suggestion}/reject")),
        (Method::GET, format!("/api/customers/{b_customer}")),
        (Method::GET, format!("/api/users/{b_user}")),
        (Method::PATCH, format!("/api/users/{b_user}")),
        (Method::GET, format!("/api/channels/{b_account}")),
        (Method::DELETE, format!("/api/channels/{b_account}")),
        (Method::DELETE, format!("/api/tokens/{b_token}")),
    ];
    for (m, path) in cases {
        let body = if path.ends_with("/messages") {
            json!({"text": "x"})
        } else if path.contains("/users/") {
            json!({"role": "viewer"})
        } else {
            json!({})
        };
        let foreign = app.request(m.clone(), &path, Some(a.owner())).json(&body).send().await.unwrap();
        // The same route with a random id in place of B's.
        let missing_path = path
            .split('/')
            .map(|seg| if seg.parse::<Uuid>().is_ok() { Uuid::now_v7().to_string() } else { seg.to_string() })
            .collect::<Vec<_>>()
            .join("/");
        let missing = app.request(m.clone(), &missing_path, Some(a.owner())).json(&body).send().await.unwrap();
        assert_eq!(foreign.status(), StatusCode::NOT_FOUND, "{m} {path}");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{m} {missing_path}");
        let (fb, mb): (Value, Value) = (foreign.json().await.unwrap(), missing.json().await.unwrap());
        assert_eq!(fb, mb, "a foreign id looks exactly like a missing one ({m} {path})");
    }
    // Lists only show the caller's tenant.
    for path in [
        "/api/users",
        "/api/channels",
        "/api/tokens",
        "/api/conversations",
        "/api/customers",
        "/api/escalations",
        "/api/stats/daily",
        "/api/webhook-dead-letters",
    ] {
        let body = app.request(Method::GET, path, Some(a.owner())).send().await.unwrap().text().await.unwrap();
        for secret in [
            b_user.to_string(),
            b_account.clone(),
            b_token.clone(),
            b_conversation.to_string(),
            b_customer.clone(),
            "secret of B".into(),
        ] {
            assert!(!body.contains(&secret), "{path} shows B's {secret}: {body}");
        }
    }
    let tenant: Value =
        app.request(Method::GET, "/api/tenant", Some(a.owner())).send().await.unwrap().json().await.unwrap();
    assert_eq!(tenant["id"], a.id.to_string());
    // B's things are untouched.
    let still: Value = app
        .request(Method::GET, &format!("/api/users/{b_user}"), Some(b.owner()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(still["role"], "operator");
    let acc = app.request(Method::GET, &format!("/api/channels/{b_account}"), Some(b.owner())).send().await.unwrap();
    let acc: Value = acc.json().await.unwrap();
    assert!(acc["disabled_at"].is_null());
}

/// A vehicle lookup of tenant `tenant`, with one evidence file, projected into the read model.
async fn lookup_of(app: &crate::helpers::TestApp, tenant: Uuid) -> (Uuid, Uuid) {
    let lookup = crate::retention::projected_lookup(app, tenant).await;
    let evidence = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO lookup_evidence (id, tenant_id, lookup_id, round, attempt, kind, content_type, content, size_bytes) \
         VALUES ($1, $2, $3, 1, 1, 'html', 'text/html; charset=utf-8', $4, 4)",
    )
    .bind(evidence)
    .bind(tenant)
    .bind(lookup)
    .bind(b"<p/>".to_vec())
    .execute(&app.pool)
    .await
    .unwrap();
    (lookup, evidence)
}

#[tokio::test]
async fn vehicle_lookups_of_another_tenant_answer_404_like_missing_ones() {
    let app = spawn_app(&[("RATE_LIMIT_API_PER_MINUTE", "0")]).await;
    let a = create_tenant(&app.pool, "A").await;
    let b = create_tenant(&app.pool, "B").await;
    let (b_lookup, b_evidence) = lookup_of(&app, b.id).await;
    let missing = Uuid::now_v7();
    // The owner of the lookup sees it.
    let own =
        app.request(Method::GET, &format!("/api/vehicle-lookups/{b_lookup}"), Some(b.owner())).send().await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let own = app
        .request(Method::GET, &format!("/api/vehicle-lookups/{b_lookup}/evidence/{b_evidence}"), Some(b.owner()))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);

    let cases = [
        (Method::GET, format!("/api/vehicle-lookups/{b_lookup}"), format!("/api/vehicle-lookups/{missing}"), json!({})),
        (
            Method::GET,
            format!("/api/vehicle-lookups/{b_lookup}/evidence/{b_evidence}"),
            format!("/api/vehicle-lookups/{missing}/evidence/{b_evidence}"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/vehicle-lookups/{b_lookup}/retry"),
            format!("/api/vehicle-lookups/{missing}/retry"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/vehicle-lookups/{b_lookup}/correct"),
            format!("/api/vehicle-lookups/{missing}/correct"),
            json!({"value": "JTNBK40K203012346"}),
        ),
        (
            Method::POST,
            format!("/api/vehicle-lookups/{b_lookup}/confirm-gearbox"),
            format!("/api/vehicle-lookups/{missing}/confirm-gearbox"),
            json!({"model": "U241E"}),
        ),
    ];
    for (m, foreign, absent, body) in cases {
        let f = app.request(m.clone(), &foreign, Some(a.owner())).json(&body).send().await.unwrap();
        let x = app.request(m.clone(), &absent, Some(a.owner())).json(&body).send().await.unwrap();
        assert_eq!(f.status(), StatusCode::NOT_FOUND, "{m} {foreign}");
        assert_eq!(x.status(), StatusCode::NOT_FOUND, "{m} {absent}");
        let (fb, xb): (Value, Value) = (f.json().await.unwrap(), x.json().await.unwrap());
        assert_eq!(fb, xb, "a foreign lookup looks exactly like a missing one");
    }
    let list = app.request(Method::GET, "/api/vehicle-lookups", Some(a.owner())).send().await.unwrap();
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["items"], json!([]));
    let list: Value =
        app.request(Method::GET, "/api/vehicle-lookups", Some(b.owner())).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"][0]["id"], b_lookup.to_string());
    // Nothing of B's changed.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(b_lookup.to_string())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 1);
}

async fn login(app: &crate::helpers::TestApp, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/auth/login", app.address))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn twenty_wrong_passwords_lock_the_account_without_revealing_it_exists() {
    let app = spawn_app(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "0")]).await;
    let t = create_tenant(&app.pool, "Shop").await;
    create_user(&app.pool, t.id, "owner@shop.example", "Right-Password-1", Role::Owner).await;

    let mut real = Vec::new();
    let mut ghost = Vec::new();
    for i in 0..20 {
        let r = login(&app, "owner@shop.example", &format!("Wrong-Password-{i}")).await;
        real.push((r.status(), r.text().await.unwrap()));
        let r = login(&app, "nobody@shop.example", &format!("Wrong-Password-{i}")).await;
        ghost.push((r.status(), r.text().await.unwrap()));
    }
    assert_eq!(real, ghost, "answers for an existing and a missing email are identical");
    assert!(real.iter().all(|(s, _)| *s == StatusCode::UNAUTHORIZED));
    // Locked: even the right password is refused, with the same answer.
    let r = login(&app, "owner@shop.example", "Right-Password-1").await;
    assert_eq!((r.status(), r.text().await.unwrap()), ghost[0].clone());
    let locked: bool = sqlx::query_scalar("SELECT locked_until > now() FROM users WHERE email = 'owner@shop.example'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(locked);
    // Once the lock has passed, one typo starts a new count instead of locking the account again…
    sqlx::query("UPDATE users SET locked_until = now() - interval '1 second'").execute(&app.pool).await.unwrap();
    let r = login(&app, "owner@shop.example", "Typo-Password-1").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let locked = crate::helpers::eventually(std::time::Duration::from_secs(10), "the typo to be counted", || async {
        let (failed, locked): (i32, bool) = sqlx::query_as(
            "SELECT failed_logins, coalesce(locked_until > now(), false) FROM users WHERE email = 'owner@shop.example'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (failed == 1).then_some(locked)
    })
    .await;
    assert!(!locked, "one typo after a lockout locked the account again");
    // …and the right password works again and resets the counter.
    let r = login(&app, "owner@shop.example", "Right-Password-1").await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A cross-site form can post `text/plain` or form data but not JSON: login takes JSON only, so
/// another site cannot sign a visitor into an account of its choosing.
#[tokio::test]
async fn login_takes_json_only() {
    let app = spawn_app(&[]).await;
    let t = create_tenant(&app.pool, "Shop").await;
    create_user(&app.pool, t.id, "owner@forms.example", "Right-Password-1", Role::Owner).await;
    let body = r#"{"email":"owner@forms.example","password":"Right-Password-1"}"#;
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let r = app
            .client
            .post(format!("{}/auth/login", app.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    let r = app
        .client
        .post(format!("{}/auth/login", app.address))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_is_rate_limited_per_ip_with_retry_after() {
    let app = spawn_app(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "3")]).await;
    // Keys are per client IP: start from a clean window for this test's address.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let r = login(&app, &format!("rl-{}@x.example", Uuid::now_v7()), "Whatever-123").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        }
        statuses.push(r.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| (1..=60).contains(&s)));
}

#[tokio::test]
async fn sessions_need_csrf_for_unsafe_requests_and_one_time_passwords_must_be_replaced() {
    let app = spawn_app(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "0"), ("RATE_LIMIT_API_PER_MINUTE", "0")]).await;
    let t = create_tenant(&app.pool, "Shop").await;
    let created: Value = app
        .request(Method::POST, "/api/users", Some(t.owner()))
        .json(&json!({"email": "New.Operator@Shop.example", "role": "operator"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let otp = created["one_time_password"].as_str().unwrap().to_string();
    assert_eq!(created["user"]["email"], "new.operator@shop.example");

    let r = login(&app, "new.operator@shop.example", &otp).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["must_change_password"], true);
    let csrf = body["csrf_token"].as_str().unwrap().to_string();

    let with_cookie =
        |m: Method, p: &str| app.client.request(m, format!("{}{p}", app.address)).header("cookie", &cookie);
    // Until the one-time password is replaced, only /api/me works.
    assert_eq!(with_cookie(Method::GET, "/api/me").send().await.unwrap().status(), StatusCode::OK);
    let r = with_cookie(Method::GET, "/api/tenant").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "password_change_required");
    // Unsafe request without the CSRF header: refused.
    let change = json!({"current_password": otp, "new_password": "Brand-New-Password-9"});
    let r = with_cookie(Method::POST, "/api/me/password").json(&change).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "csrf_failed");
    let r = with_cookie(Method::POST, "/api/me/password")
        .header("x-csrf-token", "wrong")
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r =
        with_cookie(Method::POST, "/api/me/password").header("x-csrf-token", &csrf).json(&change).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The password change ended the session.
    assert_eq!(with_cookie(Method::GET, "/api/me").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    let r = login(&app, "new.operator@shop.example", "Brand-New-Password-9").await;
    let cookie2 = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let csrf2 = r.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_string();
    let r = app.client.get(format!("{}/api/tenant", app.address)).header("cookie", &cookie2).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Operators may not manage users.
    let r = app.client.get(format!("{}/api/users", app.address)).header("cookie", &cookie2).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Logout ends the session.
    let r = app
        .client
        .post(format!("{}/auth/logout", app.address))
        .header("cookie", &cookie2)
        .header("x-csrf-token", &csrf2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.client.get(format!("{}/api/me", app.address)).header("cookie", &cookie2).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A forged cookie is rejected.
    let r = app
        .client
        .get(format!("{}/api/me", app.address))
        .header("cookie", "aisales_session=AAAA.BBBB")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_tokens_are_shown_once_stored_hashed_and_revocable() {
    let app = spawn_app(&[("RATE_LIMIT_API_PER_MINUTE", "0")]).await;
    let t = create_tenant(&app.pool, "Shop").await;
    let r = app
        .request(Method::POST, "/api/tokens", Some(t.owner()))
        .json(&json!({"name": "ci", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let token = created["api_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("aisk_") && token.len() == 45);
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_tokens WHERE prefix = $1 AND token_hash <> convert_to($2, 'UTF8')",
    )
    .bind(&token[..12])
    .bind(&token)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, 1);
    let dump: String = sqlx::query_scalar("SELECT string_agg(row_to_json(t)::text, ' ') FROM api_tokens t")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!dump.contains(&token[12..]), "the secret part is not stored");

    assert_eq!(app.request(Method::GET, "/api/tenant", Some(&token)).send().await.unwrap().status(), StatusCode::OK);
    let list = app.request(Method::GET, "/api/tokens", Some(t.owner())).send().await.unwrap().text().await.unwrap();
    assert!(!list.contains(&token), "listing never shows a token");
    // Viewer tokens cannot mint owner tokens, admins cannot either.
    let r = app
        .request(Method::POST, "/api/tokens", Some(t.token(Role::Admin)))
        .json(&json!({"name": "x", "role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.request(Method::DELETE, &format!("/api/tokens/{id}"), Some(t.owner())).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.request(Method::GET, "/api/tenant", Some(&token)).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn api_is_rate_limited_per_tenant() {
    let app = spawn_app(&[("RATE_LIMIT_API_PER_MINUTE", "5")]).await;
    let a = create_tenant(&app.pool, "A").await;
    let b = create_tenant(&app.pool, "B").await;
    let mut last = None;
    for _ in 0..7 {
        last = Some(app.request(Method::GET, "/api/tenant", Some(a.owner())).send().await.unwrap());
    }
    let last = last.unwrap();
    assert_eq!(last.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(last.headers().contains_key("retry-after"));
    assert_eq!(last.json::<Value>().await.unwrap()["error"]["code"], "rate_limited");
    // Another tenant is not affected.
    assert_eq!(app.request(Method::GET, "/api/tenant", Some(b.owner())).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn tenant_settings_are_validated_and_bad_input_changes_nothing() {
    let app = spawn_app(&[("RATE_LIMIT_API_PER_MINUTE", "0")]).await;
    let t = create_tenant(&app.pool, "Shop").await;
    let before: Value =
        app.request(Method::GET, "/api/tenant", Some(t.owner())).send().await.unwrap().json().await.unwrap();
    for bad in [
        json!({"settings": {"decision": {"t_auto": 0.2}}}),
        json!({"timezone": "Mars/Olympus"}),
        json!({"working_days": ["mon", "funday"]}),
        json!({"name": ""}),
        json!({"unknown_field": 1}),
    ] {
        let r = app.request(Method::PATCH, "/api/tenant", Some(t.owner())).json(&bad).send().await.unwrap();
        assert!(r.status().is_client_error(), "{bad}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let after: Value =
        app.request(Method::GET, "/api/tenant", Some(t.owner())).send().await.unwrap().json().await.unwrap();
    assert_eq!(before, after);
    let r = app
        .request(Method::PATCH, "/api/tenant", Some(t.owner()))
        .json(&json!({"name": "Gearbox Shop", "settings": {"tone": "friendly", "decision": {"t_auto": 0.9}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t2: Value = r.json().await.unwrap();
    assert_eq!(t2["settings"]["decision"]["t_auto"], 0.9);
    assert_eq!(t2["settings"]["decision"]["t_escalate"], 0.4);
    assert_eq!(t2["settings"]["tone"], "friendly");
}

#[tokio::test]
async fn over_https_the_session_cookie_is_a_host_cookie_and_the_plain_name_is_not_accepted() {
    let app = spawn_app(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "0"), ("APP_URL", "https://shop.example")]).await;
    let t = create_tenant(&app.pool, "Shop").await;
    let created: Value = app
        .request(Method::POST, "/api/users", Some(t.owner()))
        .json(&json!({"email": "host@shop.example", "role": "operator"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = login(&app, "host@shop.example", created["one_time_password"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.starts_with("__Host-aisales_session="), "{set}");
    assert!(set.contains("; Secure") && set.contains("Path=/") && !set.to_lowercase().contains("domain="), "{set}");
    let pair = set.split(';').next().unwrap().to_string();
    let me = |cookie: String| app.client.get(format!("{}/api/me", app.address)).header("cookie", cookie).send();
    assert_eq!(me(pair.clone()).await.unwrap().status(), StatusCode::OK);
    let plain = pair.replacen("__Host-aisales_session=", "aisales_session=", 1);
    assert_eq!(
        me(plain).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "a cookie without the prefix is not a session"
    );
}
