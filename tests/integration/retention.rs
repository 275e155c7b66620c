//! Retention of vehicle-lookup evidence: what a pass deletes per tenant limit, how it is recorded,
//! what the API answers afterwards, and the CLI's dry run and tenant scope. Evidence ages are set
//! explicitly; nothing waits on a clock.

use std::collections::BTreeSet;

use aisales::privacy::retention::{self, Deletion, Pass};
use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, TestTenant, create_tenant, spawn_app};

/// Stores one evidence file of `lookup` created `age_days` ago; returns its id.
async fn evidence(pool: &PgPool, tenant: Uuid, lookup: Uuid, round: i32, kind: &str, age_days: i64) -> Uuid {
    let id = Uuid::now_v7();
    let content = format!("{kind} of round {round}").into_bytes();
    sqlx::query(
        "INSERT INTO lookup_evidence (id, tenant_id, lookup_id, round, attempt, kind, content_type, content, size_bytes, created_at) \
         VALUES ($1, $2, $3, $4, 1, $5, 'application/octet-stream', $6, $7, $8)",
    )
    .bind(id)
    .bind(tenant)
    .bind(lookup)
    .bind(round)
    .bind(kind)
    .bind(&content)
    .bind(content.len() as i32)
    .bind(Utc::now() - Duration::days(age_days))
    .execute(pool)
    .await
    .unwrap();
    id
}

/// A vehicle lookup of `tenant`, in the read model (so the API serves it).
pub(crate) async fn projected_lookup(app: &TestApp, tenant: Uuid) -> Uuid {
    use aisales_domain::vehicle_lookup::{
        IdType, LookupSource, NewRequest, VehicleId, VehicleLookup, VehicleLookupCommand, lookup_id,
    };
    let conversation = Uuid::now_v7();
    let id = VehicleId::parse(IdType::Vin, "JTNBK40K203012345").unwrap();
    let lookup = lookup_id(tenant, Some(conversation), &id);
    let request = NewRequest {
        request_id: Uuid::now_v7(),
        tenant_id: tenant,
        conversation_id: Some(conversation),
        message_id: None,
        id,
        source: LookupSource::Operator,
        requested_by: "test".into(),
        at: Utc::now(),
    };
    let meta = aisales::store::EventMetadata::system(Some(tenant), "test");
    app.state
        .store
        .execute::<VehicleLookup>(&lookup.to_string(), VehicleLookupCommand::Request(Box::new(request)), &(), &meta)
        .await
        .unwrap();
    let projector = aisales_projections::vehicle_lookup_views::VehicleLookups::new(aisales_projections::Target::LIVE);
    // Events become readable once older transactions (of any database) have ended.
    crate::helpers::eventually(std::time::Duration::from_secs(20), "the lookup in the read model", || async {
        aisales_projections::apply_next_batch(&app.pool, &projector, None).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_vehicle_lookups WHERE lookup_id = $1")
            .bind(lookup)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (n == 1).then_some(())
    })
    .await;
    lookup
}

async fn set_evidence_days(app: &TestApp, t: &TestTenant, days: u32) {
    let r = app
        .request(Method::PATCH, "/api/tenant", Some(t.owner()))
        .json(&json!({"retention": {"lookup_evidence_days": days}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["retention"]["lookup_evidence_days"], days);
}

async fn evidence_left(pool: &PgPool) -> BTreeSet<Uuid> {
    sqlx::query_scalar("SELECT id FROM lookup_evidence").fetch_all(pool).await.unwrap().into_iter().collect()
}

/// (tenant, subject, rows, reason, actor) of every recorded deletion.
async fn recorded(pool: &PgPool) -> Vec<(Uuid, String, i32, String, String)> {
    sqlx::query_as("SELECT tenant_id, subject, rows, reason, actor FROM data_deletions ORDER BY tenant_id, subject")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn run_pass(pool: &PgPool, pass: &Pass) -> Vec<Deletion> {
    let mut seen = Vec::new();
    retention::pass(pool, pass, |d| seen.push(d.clone())).await.unwrap();
    seen
}

#[tokio::test]
async fn old_evidence_goes_by_each_tenants_limit_and_each_deletion_is_recorded_once() {
    let app = spawn_app(&[("RATE_LIMIT_API_PER_MINUTE", "0")]).await;
    let a = create_tenant(&app.pool, "A").await; // the default: 30 days
    let b = create_tenant(&app.pool, "B").await;
    let c = create_tenant(&app.pool, "C").await;
    set_evidence_days(&app, &b, 7).await;
    set_evidence_days(&app, &c, 365).await;

    // A: one lookup entirely old, one young, one with an old round and a young one.
    let a_old = projected_lookup(&app, a.id).await;
    let a_old_files = [
        evidence(&app.pool, a.id, a_old, 1, "trace", 40).await,
        evidence(&app.pool, a.id, a_old, 1, "screenshot", 40).await,
        evidence(&app.pool, a.id, a_old, 1, "html", 40).await,
    ];
    let a_young = Uuid::now_v7();
    let a_young_file = evidence(&app.pool, a.id, a_young, 1, "trace", 20).await;
    let a_mixed = Uuid::now_v7();
    evidence(&app.pool, a.id, a_mixed, 1, "trace", 31).await;
    let a_mixed_young = evidence(&app.pool, a.id, a_mixed, 2, "trace", 1).await;
    // B (7 days): 20 days old goes, 2 days old stays.
    let b_old = Uuid::now_v7();
    evidence(&app.pool, b.id, b_old, 1, "trace", 20).await;
    evidence(&app.pool, b.id, b_old, 1, "html", 20).await;
    let b_young = Uuid::now_v7();
    let b_young_file = evidence(&app.pool, b.id, b_young, 1, "trace", 2).await;
    // C (365 days): evidence older than everyone else's limit stays.
    let c_file = evidence(&app.pool, c.id, Uuid::now_v7(), 1, "trace", 100).await;

    // One lookup per batch: the backlog takes several batches.
    let pass = Pass { batch_lookups: 1, ..Pass::new(Utc::now(), retention::SCHEDULED_ACTOR) };
    let deleted = run_pass(&app.pool, &pass).await;
    let mut reported: Vec<(Uuid, String, i64)> =
        deleted.iter().map(|d| (d.tenant_id, d.subject.clone(), d.rows)).collect();
    reported.sort();
    let mut expected = vec![(a.id, a_old.to_string(), 3), (a.id, a_mixed.to_string(), 1), (b.id, b_old.to_string(), 2)];
    expected.sort();
    assert_eq!(reported, expected);
    assert!(deleted.iter().all(|d| d.kind == retention::LOOKUP_EVIDENCE && !d.dry_run && d.bytes > 0));

    let left = evidence_left(&app.pool).await;
    assert_eq!(left, BTreeSet::from([a_young_file, a_mixed_young, b_young_file, c_file]));

    let a_reason = "retention: older than 30 days".to_string();
    let b_reason = "retention: older than 7 days".to_string();
    let actor = retention::SCHEDULED_ACTOR.to_string();
    let mut want = vec![
        (a.id, a_old.to_string(), 3, a_reason.clone(), actor.clone()),
        (a.id, a_mixed.to_string(), 1, a_reason, actor.clone()),
        (b.id, b_old.to_string(), 2, b_reason, actor),
    ];
    want.sort();
    assert_eq!(recorded(&app.pool).await, want);
    let bytes: i64 = sqlx::query_scalar("SELECT bytes FROM data_deletions WHERE subject = $1")
        .bind(a_old.to_string())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(bytes, ("trace of round 1".len() + "screenshot of round 1".len() + "html of round 1".len()) as i64);

    // A second pass finds nothing and records nothing.
    let again = run_pass(&app.pool, &Pass::new(Utc::now(), retention::SCHEDULED_ACTOR)).await;
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(recorded(&app.pool).await.len(), 3);
    assert_eq!(evidence_left(&app.pool).await, left);

    // The lookup still answers, with no evidence; its deleted files answer 404.
    let detail = app.get_json(&format!("/api/vehicle-lookups/{a_old}"), a.owner()).await;
    assert_eq!(detail["evidence"], json!([]));
    for file in a_old_files {
        let r = app
            .request(Method::GET, &format!("/api/vehicle-lookups/{a_old}/evidence/{file}"), Some(a.owner()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn retention_settings_are_validated_and_erasure_is_off_by_default() {
    let app = spawn_app(&[("RATE_LIMIT_API_PER_MINUTE", "0")]).await;
    let t = create_tenant(&app.pool, "A").await;
    let tenant = app.get_json("/api/tenant", t.owner()).await;
    assert_eq!(tenant["retention"], json!({"lookup_evidence_days": 30, "erase_inactive_customers_months": null}));

    let patch = |body: Value| app.request(Method::PATCH, "/api/tenant", Some(t.owner())).json(&body).send();
    let on = patch(json!({"retention": {"erase_inactive_customers_months": 24}})).await.unwrap();
    assert_eq!(on.status(), StatusCode::OK);
    let on: Value = on.json().await.unwrap();
    assert_eq!(on["retention"], json!({"lookup_evidence_days": 30, "erase_inactive_customers_months": 24}));
    // Another field leaves it as it is; null turns it off.
    let days: Value = patch(json!({"retention": {"lookup_evidence_days": 90}})).await.unwrap().json().await.unwrap();
    assert_eq!(days["retention"], json!({"lookup_evidence_days": 90, "erase_inactive_customers_months": 24}));
    let off: Value =
        patch(json!({"retention": {"erase_inactive_customers_months": null}})).await.unwrap().json().await.unwrap();
    assert_eq!(off["retention"], json!({"lookup_evidence_days": 90, "erase_inactive_customers_months": null}));

    for bad in [json!({"lookup_evidence_days": 0}), json!({"erase_inactive_customers_months": 0}), json!({"days": 3})] {
        let r = patch(json!({ "retention": bad })).await.unwrap();
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
    }
    let kept = app.get_json("/api/tenant", t.owner()).await;
    assert_eq!(kept["retention"], off["retention"]);
}

#[tokio::test]
async fn the_cli_dry_run_deletes_nothing_and_a_tenant_run_touches_no_other_tenant() {
    let app = spawn_app(&[]).await;
    let a = create_tenant(&app.pool, "A").await;
    let b = create_tenant(&app.pool, "B").await;
    let a_lookup = Uuid::now_v7();
    evidence(&app.pool, a.id, a_lookup, 1, "trace", 45).await;
    evidence(&app.pool, a.id, a_lookup, 1, "html", 45).await;
    let b_file = evidence(&app.pool, b.id, Uuid::now_v7(), 1, "trace", 45).await;
    let before = evidence_left(&app.pool).await;

    let lines = |out: &std::process::Output| -> Vec<Value> {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let dry = app.command(&[]).args(["privacy", "retention", "--dry-run"]).output().unwrap();
    let dry = lines(&dry);
    assert_eq!(dry.len(), 2, "{dry:?}");
    assert!(dry.iter().all(|d| d["dry_run"] == true));
    let a_line = dry.iter().find(|d| d["subject"] == a_lookup.to_string()).unwrap();
    assert_eq!((a_line["tenant_id"].as_str(), a_line["rows"].as_i64()), (Some(a.id.to_string().as_str()), Some(2)));
    assert_eq!(evidence_left(&app.pool).await, before);
    assert!(recorded(&app.pool).await.is_empty());

    let run = app.command(&[]).args(["privacy", "retention", "--tenant", &a.id.to_string()]).output().unwrap();
    let run = lines(&run);
    assert_eq!(run.len(), 1, "{run:?}");
    assert_eq!(
        (run[0]["subject"].as_str(), run[0]["dry_run"].as_bool()),
        (Some(a_lookup.to_string().as_str()), Some(false))
    );
    assert_eq!(evidence_left(&app.pool).await, BTreeSet::from([b_file]));
    let records = recorded(&app.pool).await;
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].0, records[0].4.as_str()), (a.id, "cli:retention"));

    let unknown = app.command(&[]).args(["privacy", "retention", "--tenant", &Uuid::now_v7().to_string()]).output();
    assert_eq!(unknown.unwrap().status.code(), Some(2));
}

#[tokio::test]
async fn the_scheduled_pass_runs_in_one_process_at_a_time() {
    let app = spawn_app(&[]).await;
    let t = create_tenant(&app.pool, "A").await;
    let lookup = Uuid::now_v7();
    evidence(&app.pool, t.id, lookup, 1, "trace", 45).await;
    let young = evidence(&app.pool, t.id, lookup, 2, "trace", 3).await;

    // Two processes' schedulers: the one holding the lease passes at once, the other waits.
    let settings = &app.state.settings;
    for _ in 0..2 {
        let options = retention::RetentionOptions {
            interval: std::time::Duration::from_secs(3600),
            ..aisales::process::retention_options(settings)
        };
        let connect = aisales::infra::db::connect_options(settings).unwrap();
        tokio::spawn(retention::run(app.state.ctx.clone(), connect, options, app.cancel.clone()));
    }
    crate::helpers::eventually(std::time::Duration::from_secs(20), "the old evidence deleted", || async {
        (evidence_left(&app.pool).await == BTreeSet::from([young])).then_some(())
    })
    .await;
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
          WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted \
            AND l.classid::int = $1 AND l.objid::int = hashtext('retention')",
    )
    .bind(aisales::infra::db::LEASE_SPACE)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(holders, 1);
    let records = recorded(&app.pool).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (records[0].1.as_str(), records[0].4.as_str()),
        (lookup.to_string().as_str(), retention::SCHEDULED_ACTOR)
    );
}
