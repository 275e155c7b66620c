//! Integration secrets at rest: encrypted, bound to their row, rotatable, never in a dump.

use aisales::config::Settings;
use aisales::infra::crypto::{self, Keyring, SecretError};
use aisales::testkit::TestDb;
use base64::Engine as _;
use uuid::Uuid;

use crate::helpers::aisales;

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn keyring(current: u8, previous: &[u8]) -> Keyring {
    let prev: Vec<String> = previous.iter().map(|b| key(*b)).collect();
    let prev = prev.join(",");
    let cur = key(current);
    Keyring::from_settings(&Settings::for_tests(&[
        ("INTEGRATION_SECRETS_MASTER_KEY", &cur),
        ("INTEGRATION_SECRETS_PREVIOUS_KEYS", &prev),
    ]))
}

async fn tenant(pool: &sqlx::PgPool) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    aisales::tenancy::create_tenant(&mut conn, "T").await.unwrap().id
}

#[tokio::test]
async fn wrong_key_tampering_and_moved_ciphertexts_fail_with_clear_errors() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(3).await.unwrap();
    let (a, b) = (tenant(&pool).await, tenant(&pool).await);
    let keys = keyring(1, &[]);
    let mut conn = pool.acquire().await.unwrap();
    crypto::put(&mut conn, &keys, Some(a), "channel:x:api_token", "green-api-token-AAAA1111").await.unwrap();
    assert_eq!(
        crypto::get(&mut conn, &keys, Some(a), "channel:x:api_token").await.unwrap(),
        "green-api-token-AAAA1111"
    );

    // Wrong master key.
    let err = crypto::get(&mut conn, &keyring(2, &[]), Some(a), "channel:x:api_token").await.unwrap_err();
    assert!(matches!(err, SecretError::UnknownKey { .. }), "{err}");
    assert!(err.to_string().contains("INTEGRATION_SECRETS_PREVIOUS_KEYS"), "{err}");

    // Copied to another tenant's row, or renamed.
    sqlx::query(
        "INSERT INTO integration_secrets (id, tenant_id, name, key_id, nonce, ciphertext) \
         SELECT $1, $2, name, key_id, nonce, ciphertext FROM integration_secrets WHERE tenant_id = $3",
    )
    .bind(Uuid::now_v7())
    .bind(b)
    .bind(a)
    .execute(&mut *conn)
    .await
    .unwrap();
    let err = crypto::get(&mut conn, &keys, Some(b), "channel:x:api_token").await.unwrap_err();
    assert!(matches!(err, SecretError::Authentication { .. }), "{err}");
    assert!(err.to_string().contains("moved from another row"));
    sqlx::query("UPDATE integration_secrets SET name = 'channel:y:api_token' WHERE tenant_id = $1")
        .bind(b)
        .execute(&mut *conn)
        .await
        .unwrap();
    assert!(matches!(
        crypto::get(&mut conn, &keys, Some(b), "channel:y:api_token").await,
        Err(SecretError::Authentication { .. })
    ));

    // Tampered ciphertext.
    sqlx::query("UPDATE integration_secrets SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE tenant_id = $1")
        .bind(a)
        .execute(&mut *conn)
        .await
        .unwrap();
    let err = crypto::get(&mut conn, &keys, Some(a), "channel:x:api_token").await.unwrap_err();
    assert!(matches!(err, SecretError::Authentication { .. }), "{err}");
    drop(conn);
    pool.close().await;
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn rotation_keeps_every_secret_readable_and_the_dump_holds_no_token() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(3).await.unwrap();
    let tenant_id = tenant(&pool).await;
    let token = "d75b3a66374942c5b3c019c698abc2067e151558acbd4123";

    // Added through the CLI, as an operator would.
    let out = aisales(&db.url)
        .env("INTEGRATION_SECRETS_MASTER_KEY", key(1))
        .args([
            "channel",
            "add",
            "green-api",
            "--tenant",
            &tenant_id.to_string(),
            "--id-instance",
            "1101000001",
            "--api-token",
            token,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let account = added["account_id"].as_str().unwrap().to_string();
    assert!(added["webhook_url"].as_str().unwrap().ends_with(&format!("/webhooks/green-api/{tenant_id}/{account}")));
    let name = format!("channel:{account}:api_token");

    // pg_dump of the whole database does not contain the token.
    let dump = std::process::Command::new("pg_dump").arg("--no-owner").arg(&db.url).output().unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("integration_secrets"), "the dump has the secrets table");
    assert!(!dump.contains(token), "the token is not in the dump");
    assert!(!dump.contains(&token[..16]), "no fragment of the token either");

    // Rotate: new master key, the old one listed as previous.
    let out = aisales(&db.url)
        .env("INTEGRATION_SECRETS_MASTER_KEY", key(2))
        .env("INTEGRATION_SECRETS_PREVIOUS_KEYS", key(1))
        .args(["secrets", "rotate-master-key"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rotated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rotated["reencrypted"], 2, "api token and webhook token");
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(crypto::get(&mut conn, &keyring(2, &[]), Some(tenant_id), &name).await.unwrap(), token);
    assert!(crypto::get(&mut conn, &keyring(1, &[]), Some(tenant_id), &name).await.is_err());

    // A rotation that cannot read a secret changes nothing.
    let before: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT key_id, ciphertext FROM integration_secrets ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let out = aisales(&db.url)
        .env("INTEGRATION_SECRETS_MASTER_KEY", key(3))
        .args(["secrets", "rotate-master-key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("INTEGRATION_SECRETS_PREVIOUS_KEYS"));
    let after: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT key_id, ciphertext FROM integration_secrets ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(before, after);
    drop(conn);
    pool.close().await;
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn the_api_shows_only_masked_secrets() {
    let app = crate::helpers::spawn_app(&[("RATE_LIMIT_API_PER_MINUTE", "0")]).await;
    let t = crate::helpers::create_tenant(&app.pool, "Shop").await;
    let token = "verysecretgreenapitoken0123456789abcdef";
    let r = app
        .request(reqwest::Method::POST, "/api/channels", Some(t.owner()))
        .json(&serde_json::json!({"kind": "green_api", "id_instance": "1101000009", "api_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body = r.text().await.unwrap();
    assert!(!body.contains(token), "{body}");
    assert!(body.contains("••••cdef"), "{body}");
    let list =
        app.request(reqwest::Method::GET, "/api/channels", Some(t.owner())).send().await.unwrap().text().await.unwrap();
    assert!(!list.contains(token));
    // Bad input: clear 400, nothing stored.
    let r = app
        .request(reqwest::Method::POST, "/api/channels", Some(t.owner()))
        .json(&serde_json::json!({"kind": "green_api", "id_instance": "abc", "api_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM channel_accounts").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 1);
}
