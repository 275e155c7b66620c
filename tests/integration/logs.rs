//! Everything the server logs is masked: a real server process is driven end to end with
//! tokens, passwords, cookies and phone numbers, and its whole log output is searched for them.

use std::time::Duration;

use aisales::testkit::TestDb;
use serde_json::{Value, json};

use crate::helpers::{ChildGuard, aisales, eventually, scratch_dir};

#[tokio::test]
async fn secrets_and_phone_numbers_never_reach_the_logs() {
    let db = TestDb::create().await.unwrap();
    let tenant: Value = serde_json::from_slice(
        &aisales(&db.url).args(["tenant", "create", "--name", "Log Shop"]).output().unwrap().stdout,
    )
    .unwrap();
    let tenant_id = tenant["tenant_id"].as_str().unwrap().to_string();
    let api_token = tenant["api_token"].as_str().unwrap().to_string();
    let user: Value = serde_json::from_slice(
        &aisales(&db.url)
            .args(["user", "add", "--tenant", &tenant_id, "--email", "ops@log.example", "--role", "admin"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let otp = user["one_time_password"].as_str().unwrap().to_string();

    let log = scratch_dir().join(format!("server-{}.log", uuid::Uuid::now_v7()));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = aisales(&db.url);
    cmd.args(["serve"]).env("PORT", port.to_string()).env("HOST", "127.0.0.1").env("LOG_LEVEL", "debug");
    let mut server = ChildGuard::spawn_logged(cmd, &log);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(20), "the server", || {
        let (client, base) = (client.clone(), base.clone());
        async move { client.get(format!("{base}/health")).send().await.ok() }
    })
    .await;

    let phone = "+7 (916) 555-12-34";
    let green_token = "f00dcafe1234567890abcdef1234567890abcdef00";
    // Bearer token, good and bad; a channel whose token and a phone number travel in the body.
    client.get(format!("{base}/api/tenant")).bearer_auth(&api_token).send().await.unwrap();
    client
        .get(format!("{base}/api/tenant"))
        .bearer_auth("aisk_WrongTokenWrongTokenWrongToken0000")
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/api/channels"))
        .bearer_auth(&api_token)
        .json(&json!({"kind": "green_api", "id_instance": "1101000003", "api_token": green_token, "label": phone}))
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/api/channels"))
        .bearer_auth(&api_token)
        .json(&json!({"kind": "green_api", "id_instance": "bad id", "api_token": green_token, "label": phone}))
        .send()
        .await
        .unwrap();
    // Passwords: wrong and right; the session cookie and CSRF token it yields.
    client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": "ops@log.example", "password": "Wrong-Pass-1"}))
        .send()
        .await
        .unwrap();
    let r = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": "ops@log.example", "password": otp}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_string();
    client.get(format!("{base}/api/me")).header("cookie", &cookie).send().await.unwrap();
    client
        .post(format!("{base}/api/me/password"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"current_password": otp, "new_password": "Another-Secret-77"}))
        .send()
        .await
        .unwrap();

    server.terminate(Duration::from_secs(10));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("request served"), "the log was captured:\n{text}");
    let cookie_value = cookie.split_once('=').unwrap().1;
    for (what, secret) in [
        ("API token", api_token.as_str()),
        ("API token secret part", &api_token[12..]),
        ("one-time password", otp.as_str()),
        ("new password", "Another-Secret-77"),
        ("wrong password", "Wrong-Pass-1"),
        ("GREEN-API token", green_token),
        ("session cookie", cookie_value),
        ("CSRF token", csrf.as_str()),
        ("phone number", "555-12-34"),
        ("phone digits", "9165551234"),
    ] {
        assert!(!text.contains(secret), "the log contains the {what}:\n{text}");
    }
}
