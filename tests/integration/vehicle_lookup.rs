//! The vehicle-lookup worker end to end: real headless Chromium through a ChromeDriver started per
//! test, against the fixture copies of podzamenu.ru and prof-rf (identifiers and answers in
//! `tests/fixtures/sites/README.md`), with projectors, sweeper and workers running in-process.
//! Found, model only, not found, the cache, a slow page, the sites down, ChromeDriver killed
//! mid-lookup, the operator's retry / correction / tag confirmation, and a customer's VIN reaching
//! the conversation as vehicle data and a gearbox reply suggestion; a model-only answer showing the
//! step where the search for the OEM stopped; fifteen lookups submitted at once ending exactly as
//! fifteen submitted one by one.

use std::path::PathBuf;
use std::time::Duration;

use aisales::auth::Role;
use aisales::browser::kill_browsers_using;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::browser::driver::{ChromeDriver, chromium_binary, profile_root};
use crate::browser::fixture::FixtureSite;
use crate::browser::paths::{self as fixture_paths, FIFTEEN};
use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text};
use crate::helpers::{TestApp, TestTenant, eventually};
use crate::helpers::{app_with, fast, green_account, post_green, tenant, try_get};

const CAMRY_VIN: &str = "JTNBK40K203012345";
const LANCER_VIN: &str = "JMBSRCY2A8U012345";
const UNKNOWN_VIN: &str = "XTA210990Y2765432";
const XTRAIL_FRAME: &str = "NT31-012345";

/// ChromeDriver, both fixture sites, a fake GREEN-API and the app with everything running.
struct Env {
    app: TestApp,
    t: TestTenant,
    driver: ChromeDriver,
    podzamenu: FixtureSite,
    prof_rf: FixtureSite,
    green: FakeGreenApi,
    webhook_path: String,
    webhook_token: String,
    profiles: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.app.cancel.cancel();
        kill_browsers_using(&self.profiles);
        let _ = std::fs::remove_dir_all(&self.profiles);
    }
}

async fn env(name: &str, extra: &[(&'static str, &str)]) -> Env {
    env_with(name, extra, true).await
}

/// Like [`env`]; without `in_process_lookup` the vehicle-lookup worker is left to a separate
/// process ([`Env::worker_process`]).
async fn env_with(name: &str, extra: &[(&'static str, &str)], in_process_lookup: bool) -> Env {
    let driver = ChromeDriver::start().await;
    let podzamenu = FixtureSite::start("podzamenu").await;
    let prof_rf = FixtureSite::start("prof-rf").await;
    let green = FakeGreenApi::start().await;
    let profiles = profile_root(name);
    let mut vars: Vec<(&'static str, String)> = vec![
        ("GREEN_API_URL", green.url()),
        ("WEBDRIVER_URL", driver.url()),
        ("PODZAMENU_BASE_URL", podzamenu.url()),
        ("PROF_RF_BASE_URL", prof_rf.url()),
        ("BROWSER_PROFILE_DIR", profiles.display().to_string()),
        ("BROWSER_POOL_SIZE", "1".into()),
        ("LOOKUP_STEP_TIMEOUT_SECS", "8".into()),
        ("LOOKUP_TIMEOUT_SECS", "40".into()),
        ("LOOKUP_RETRY_BACKOFF_SECS", "1".into()),
    ];
    if let Some(bin) = chromium_binary() {
        vars.push(("CHROMIUM_BINARY", bin));
    }
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let app = app_with(&fast(&vars)).await;
    if in_process_lookup {
        app.start_background();
    } else {
        app.start_background_except(&[aisales::bus::Kind::VehicleLookup]);
    }
    let t = tenant(&app).await;
    let (_, webhook_path, webhook_token) = green_account(&app, &t, &green).await;
    Env { app, t, driver, podzamenu, prof_rf, green, webhook_path, webhook_token, profiles }
}

impl Env {
    /// `aisales worker vehicle-lookup` as a child process configured like the app.
    fn worker_process(&self, log: &std::path::Path) -> crate::helpers::ChildGuard {
        let s = &self.app.state.settings;
        let l = &s.lookup;
        let mut cmd = self.app.command(&[]);
        cmd.args(["worker", "vehicle-lookup"])
            .env("WEBDRIVER_URL", &s.webdriver_url)
            .env("PODZAMENU_BASE_URL", &s.podzamenu_base_url)
            .env("PROF_RF_BASE_URL", &s.prof_rf_base_url)
            .env("BROWSER_PROFILE_DIR", &self.profiles)
            .env("BROWSER_POOL_SIZE", l.pool_size.to_string())
            .env("LOOKUP_STEP_TIMEOUT_SECS", l.step_timeout.as_secs().to_string())
            .env("LOOKUP_TIMEOUT_SECS", l.lookup_timeout.as_secs().to_string())
            .env("LOOKUP_RETRY_BACKOFF_SECS", l.retry_backoff.as_secs().to_string());
        if let Some(bin) = &l.chromium_binary {
            cmd.env("CHROMIUM_BINARY", bin);
        }
        crate::helpers::ChildGuard::spawn_logged(cmd, log)
    }

    /// A customer message on GREEN-API; returns the conversation id.
    async fn customer_says(&self, chat: &str, message_id: &str, text: &str) -> String {
        let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, chat, "Иван", message_id, text);
        let r = post_green(&self.app, &self.webhook_path, &self.webhook_token, &body).await;
        assert_eq!(r.status(), StatusCode::OK);
        let answer: Value = r.json().await.unwrap();
        answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string()
    }

    /// An operator asks for a lookup in `conversation`; returns the answer (202).
    async fn ask(&self, conversation: &str, id_type: &str, value: &str) -> Value {
        let r = self
            .app
            .request(Method::POST, &format!("/api/conversations/{conversation}/vehicle-lookups"), Some(self.op()))
            .json(&json!({ "id_type": id_type, "value": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        r.json().await.unwrap()
    }

    fn op(&self) -> &str {
        self.t.token(Role::Operator)
    }

    /// Polls the lookup until `done` holds.
    async fn lookup_until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/api/vehicle-lookups/{id}");
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let v = try_get(&self.app, &path, self.t.owner()).await;
            if let Some(v) = &v
                && done(v)
            {
                return v.clone();
            }
            assert!(std::time::Instant::now() < deadline, "lookup {id} never became {what}; last seen: {v:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the lookup's round has ended.
    async fn finished(&self, id: &str) -> Value {
        self.lookup_until(id, "finished", |v| {
            matches!(v["status"].as_str(), Some("completed" | "not_found" | "failed"))
        })
        .await
    }

    /// An operator action on a lookup.
    async fn act(&self, id: &str, action: &str, body: Value) -> reqwest::Response {
        self.app
            .request(Method::POST, &format!("/api/vehicle-lookups/{id}/{action}"), Some(self.op()))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// The conversation as the API shows it, once `done` holds.
    async fn conversation_until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/api/conversations/{id}");
        eventually(Duration::from_secs(30), what, || async {
            try_get(&self.app, &path, self.t.owner()).await.filter(|v| done(v))
        })
        .await
    }

    /// Waits until no job of the lookup (or its conversation) is outstanding.
    async fn no_outstanding_jobs(&self, lookup: &str) {
        eventually(Duration::from_secs(30), "every job of the lookup done", || async {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM work_items WHERE kind = 'vehicle-lookup' AND status IN ('requested', 'started') \
                   AND payload->>'lookup_id' = $1",
            )
            .bind(lookup)
            .fetch_one(&self.app.pool)
            .await
            .unwrap();
            (open == 0).then_some(())
        })
        .await;
    }
}

fn history_events(v: &Value) -> Vec<String> {
    v["history"].as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap().to_string()).collect()
}

fn evidence_of_kind<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
    v["evidence"].as_array().unwrap().iter().filter(|e| e["kind"] == kind).collect()
}

async fn fetch(app: &TestApp, token: &str, url: &str) -> reqwest::Response {
    app.request(Method::GET, url, Some(token)).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_answers_found_model_only_and_not_found_and_reuses_its_cache() {
    let env = env("lookup-answers", &[]).await;
    let conversation = env.customer_says("79001110001@c.us", "VL-A1", "Здравствуйте").await;

    // FOUND: Camry on podzamenu (accordions, name scoring).
    let asked = env.ask(&conversation, "VIN", &CAMRY_VIN.to_lowercase()).await;
    assert_eq!((asked["requested"].as_bool(), asked["value"].as_str()), (Some(true), Some(CAMRY_VIN)));
    let camry = asked["lookup_id"].as_str().unwrap().to_string();
    let found = env.finished(&camry).await;
    assert_eq!(found["status"], "completed", "{found:#}");
    assert_eq!(found["result_status"], "FOUND");
    assert_eq!(found["gearbox"]["model"], "U241E");
    assert_eq!(found["gearbox"]["oem"], "30500-33570");
    assert_eq!(found["gearbox"]["factory_code"], "U241E-06A");
    assert_eq!(found["source"], "podzamenu");
    assert_eq!(found["confidence"], 1.0);
    assert_eq!(found["request_source"], "operator");
    assert_eq!(found["result"]["decoder"]["manufacturer"], "Toyota", "the VIN decoder enriches every answer");
    assert_eq!(found["result"]["from_cache"], false);
    assert_eq!(found["attempts_total"], 1);
    assert_eq!(found["price_lookup_wanted"][0]["oem"], "30500-33570");
    assert_eq!(history_events(&found), ["requested", "started", "completed", "price_lookup_wanted"]);
    assert_eq!(evidence_of_kind(&found, "trace").len(), 1);
    assert!(evidence_of_kind(&found, "screenshot").is_empty(), "a success keeps no screenshot");
    let trace = fetch(&env.app, env.op(), evidence_of_kind(&found, "trace")[0]["url"].as_str().unwrap()).await;
    assert_eq!(trace.headers()["content-type"], "application/json");
    let trace: Value = trace.json().await.unwrap();
    assert!(trace["steps"].as_array().unwrap().iter().any(|s| s["name"] == "podzamenu.acquire_session"));

    // Asking again for the same identifier changes nothing.
    let again = env.ask(&conversation, "VIN", CAMRY_VIN).await;
    assert_eq!((again["requested"].as_bool(), again["lookup_id"].as_str()), (Some(false), Some(camry.as_str())));
    // A found lookup cannot be retried.
    assert_eq!(env.act(&camry, "retry", json!({})).await.status(), StatusCode::CONFLICT);

    // MODEL_ONLY: Lancer (the model from a description, no OEM block).
    let lancer = env.ask(&conversation, "VIN", LANCER_VIN).await["lookup_id"].as_str().unwrap().to_string();
    let model_only = env.finished(&lancer).await;
    assert_eq!(model_only["result_status"], "MODEL_ONLY", "{model_only:#}");
    assert_eq!(model_only["gearbox"]["model"], "F1CJA");
    assert!(model_only["gearbox"]["oem"].is_null());
    assert_eq!(model_only["price_lookup_wanted"], json!([]));

    // NOT_FOUND: screenshot and HTML are kept and served (sandboxed) to the tenant.
    let unknown = env.ask(&conversation, "VIN", UNKNOWN_VIN).await["lookup_id"].as_str().unwrap().to_string();
    let not_found = env.finished(&unknown).await;
    assert_eq!(not_found["status"], "not_found", "{not_found:#}");
    assert_eq!(not_found["result"]["sources_tried"], json!(["podzamenu", "prof_rf"]));
    assert_eq!(not_found["result"]["decoder"]["manufacturer"], "Lada (AvtoVAZ)");
    let shot = evidence_of_kind(&not_found, "screenshot");
    assert_eq!(shot.len(), 1, "{not_found:#}");
    let png = fetch(&env.app, env.op(), shot[0]["url"].as_str().unwrap()).await;
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()["content-type"], "image/png");
    let bytes = png.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0x89, b'P', b'N', b'G']) && bytes.len() > 1000);
    let html = fetch(&env.app, env.op(), evidence_of_kind(&not_found, "html")[0]["url"].as_str().unwrap()).await;
    assert!(html.headers()["content-security-policy"].to_str().unwrap().starts_with("sandbox"));
    assert!(html.text().await.unwrap().contains("Автомобиль не найден"));
    assert_eq!(not_found["attempts_log"][0]["outcome"], "not_found");
    assert_eq!(not_found["attempts_log"][0]["evidence"].as_array().unwrap().len(), 3);

    // The operator corrects the identifier: the corrected one (Lancer, cached by now) is answered
    // from the cache, without a browser.
    let requests_before = env.podzamenu.requests().len();
    let r = env.act(&unknown, "correct", json!({ "value": LANCER_VIN })).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let corrected = env
        .lookup_until(&unknown, "the corrected round finished", |v| v["round"] == 2 && v["status"] == "completed")
        .await;
    assert_eq!((corrected["status"].as_str(), corrected["value"].as_str()), (Some("completed"), Some(LANCER_VIN)));
    assert_eq!(corrected["round"], 2);
    assert_eq!(corrected["result"]["from_cache"], true);
    assert_eq!(corrected["gearbox"]["model"], "F1CJA");
    assert!(history_events(&corrected).contains(&"id_corrected".to_string()));

    // Another conversation asks for the Camry: the cache answers, the site is not visited.
    let other = env.customer_says("79001110002@c.us", "VL-B1", "Добрый день").await;
    let cached = env.ask(&other, "VIN", CAMRY_VIN).await["lookup_id"].as_str().unwrap().to_string();
    assert_ne!(cached, camry, "one lookup per conversation and identifier");
    let hit = env.finished(&cached).await;
    assert_eq!(hit["result_status"], "FOUND");
    assert_eq!(hit["result"]["from_cache"], true);
    assert_eq!(hit["attempts_total"], 0, "no browser attempt");
    assert_eq!(env.podzamenu.requests().len(), requests_before, "the cache kept the browser away");

    // Bad input changes nothing.
    for (body, code) in [
        (json!({"id_type": "PLATE", "value": "A123BC"}), "invalid_id_type"),
        (json!({"id_type": "VIN", "value": "JTNBK40K20301234O"}), "invalid_vehicle_id"),
    ] {
        let r = env
            .app
            .request(Method::POST, &format!("/api/conversations/{conversation}/vehicle-lookups"), Some(env.op()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], code);
    }

    // Filters and pagination of the list.
    let list =
        env.app.get_json(&format!("/api/vehicle-lookups?conversation_id={conversation}&limit=2"), env.op()).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let next = list["next_cursor"].as_str().expect("a second page");
    let rest = env
        .app
        .get_json(&format!("/api/vehicle-lookups?conversation_id={conversation}&limit=2&cursor={next}"), env.op())
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let completed = env.app.get_json("/api/vehicle-lookups?status=completed", env.op()).await;
    assert_eq!(completed["items"].as_array().unwrap().len(), 4);
    let bad = fetch(&env.app, env.op(), "/api/vehicle-lookups?status=done").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    env.no_outstanding_jobs(&camry).await;
    env.no_outstanding_jobs(&unknown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_page_within_the_bound_completes_beyond_it_retries_then_the_decoder_answers() {
    // A 6 s step bound: the 1.5 s delay stays well within it on a loaded machine, 10 s is beyond it.
    let env = env("lookup-slow", &[("LOOKUP_STEP_TIMEOUT_SECS", "6"), ("LOOKUP_MAX_ATTEMPTS", "2")]).await;
    let conversation = env.customer_says("79001110003@c.us", "VL-S1", "Нужна коробка").await;

    // Slow catalogue data, within the step bound.
    env.podzamenu.set_delay("/data/", Duration::from_millis(1500));
    let camry = env.ask(&conversation, "VIN", CAMRY_VIN).await["lookup_id"].as_str().unwrap().to_string();
    let found = env.finished(&camry).await;
    assert_eq!(found["result_status"], "FOUND", "{found:#}");
    assert_eq!(found["attempts_total"], 1);

    // The page takes longer than the step bound on every attempt: retried with a backoff, then the
    // VIN decoder answers and says why.
    env.podzamenu.set_delay("/search-vehicle", Duration::from_secs(10));
    let lancer = env.ask(&conversation, "VIN", LANCER_VIN).await["lookup_id"].as_str().unwrap().to_string();
    let decoded = env.finished(&lancer).await;
    env.podzamenu.clear_delay();
    assert_eq!(decoded["status"], "completed", "{decoded:#}");
    assert_eq!(decoded["result_status"], "DECODER_ONLY");
    assert_eq!(decoded["source"], "vin_decoder");
    assert_eq!(decoded["vehicle"]["make"], "Mitsubishi");
    let note = decoded["result"]["note"].as_str().unwrap();
    assert!(note.contains("gave up after 2 attempt(s)") && note.contains("timed out"), "{note}");
    assert_eq!(history_events(&decoded), ["requested", "started", "retry_scheduled", "started", "completed"]);
    let retry = &decoded["history"][2];
    assert!(retry["detail"].as_str().unwrap().contains("podzamenu.goto"), "{retry}");
    assert!(!retry["evidence"].as_array().unwrap().is_empty(), "each failed attempt keeps its evidence");
    assert_eq!(decoded["attempts_total"], 2);

    // The conversation shows the decoder's make and a fallback suggestion.
    let c = env
        .conversation_until(&conversation, "the decoder-only vehicle", |c| c["vehicle"]["status"] == "DECODER_ONLY")
        .await;
    assert_eq!(c["vehicle"]["lookup_status"], "completed");
    let path = format!("/api/conversations/{conversation}/suggestions?status=pending");
    eventually(Duration::from_secs(30), "the fallback suggestion", || async {
        let v = try_get(&env.app, &path, env.op()).await?;
        v["items"]
            .as_array()?
            .iter()
            .any(|s| {
                s["source"] == "template"
                    && s["intent"] == "gearbox_fallback_search"
                    && s["text"].as_str().is_some_and(|t| t.contains("Mitsubishi"))
            })
            .then_some(())
    })
    .await;

    // Once the site answers again, the operator retries the decoder-only answer.
    assert_eq!(env.act(&lancer, "retry", json!({})).await.status(), StatusCode::ACCEPTED);
    let retried = env.lookup_until(&lancer, "answered by the catalogue", |v| v["result_status"] == "MODEL_ONLY").await;
    assert_eq!(retried["round"], 2);
    env.no_outstanding_jobs(&lancer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sites_down_a_frame_fails_with_evidence_a_vin_gets_the_decoder_and_a_retry_finds_both() {
    let env = env("lookup-down", &[("LOOKUP_MAX_ATTEMPTS", "2")]).await;
    let conversation = env.customer_says("79001110004@c.us", "VL-D1", "Здравствуйте").await;
    env.podzamenu.set_status(503);
    env.prof_rf.set_drop_connections(true);

    let frame = env.ask(&conversation, "FRAME", XTRAIL_FRAME).await["lookup_id"].as_str().unwrap().to_string();
    let failed = env.finished(&frame).await;
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let reason = failed["last_error"].as_str().unwrap();
    assert!(reason.starts_with("gave up after 2 attempt(s)") && reason.contains("HTTP 503"), "{reason}");
    assert_eq!(history_events(&failed), ["requested", "started", "retry_scheduled", "started", "failed"]);
    let html = evidence_of_kind(&failed, "html");
    assert_eq!(html.len(), 2, "one page per failed attempt: {failed:#}");
    let page = fetch(&env.app, env.op(), html[1]["url"].as_str().unwrap()).await.text().await.unwrap();
    assert!(page.contains("503 Service Temporarily Unavailable"), "{page}");
    assert_eq!(evidence_of_kind(&failed, "screenshot").len(), 2);
    env.conversation_until(&conversation, "the failure", |c| c["vehicle"]["lookup_status"] == "failed").await;

    let vin = env.ask(&conversation, "VIN", CAMRY_VIN).await["lookup_id"].as_str().unwrap().to_string();
    let decoded = env.finished(&vin).await;
    assert_eq!(decoded["result_status"], "DECODER_ONLY", "{decoded:#}");
    assert_eq!(decoded["vehicle"]["make"], "Toyota");
    assert!(decoded["result"]["note"].as_str().unwrap().contains("HTTP 503"));

    // The sites come back; the operator retries both.
    env.podzamenu.set_status(0);
    env.prof_rf.set_drop_connections(false);
    assert_eq!(env.act(&frame, "retry", json!({})).await.status(), StatusCode::ACCEPTED);
    assert_eq!(env.act(&frame, "retry", json!({})).await.status(), StatusCode::CONFLICT, "one retry at a time");
    assert_eq!(env.act(&vin, "retry", json!({})).await.status(), StatusCode::ACCEPTED);
    let frame_found = env.lookup_until(&frame, "found", |v| v["status"] == "completed").await;
    assert_eq!(frame_found["gearbox"]["model"], "JF011E", "{frame_found:#}");
    assert_eq!(frame_found["gearbox"]["oem"], "31020-1XF2D");
    assert_eq!(frame_found["round"], 2);
    assert!(history_events(&frame_found).contains(&"retry_requested".to_string()));
    let vin_found = env.lookup_until(&vin, "found", |v| v["result_status"] == "FOUND").await;
    assert_eq!(vin_found["gearbox"]["oem"], "30500-33570");
    env.no_outstanding_jobs(&frame).await;
    env.no_outstanding_jobs(&vin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chromedriver_killed_mid_lookup_is_retried_and_nothing_stays_stuck() {
    let mut env = env("lookup-killed", &[("LOOKUP_STEP_TIMEOUT_SECS", "10"), ("LOOKUP_RETRY_BACKOFF_SECS", "2")]).await;
    let port = env.driver.port();
    let conversation = env.customer_says("79001110005@c.us", "VL-K1", "Здравствуйте").await;
    env.podzamenu.set_delay("/data/", Duration::from_secs(6));
    let id = env.ask(&conversation, "VIN", CAMRY_VIN).await["lookup_id"].as_str().unwrap().to_string();

    // Wait until the browser waits for the (slow) catalogue data, then kill ChromeDriver.
    eventually(Duration::from_secs(30), "the lookup to reach the site", || async {
        env.podzamenu.requests().iter().any(|r| r.starts_with("/data/")).then_some(())
    })
    .await;
    env.driver.kill().await;
    let retrying = env.lookup_until(&id, "scheduled for a retry", |v| v["status"] == "retry_scheduled").await;
    let reason = retrying["last_error"].as_str().unwrap();
    assert!(reason.contains("WebDriver unreachable"), "{reason}");

    // ChromeDriver comes back (as PM2 restarts it): a later attempt finds the gearbox.
    env.podzamenu.clear_delay();
    env.driver = ChromeDriver::start_on(port).await;
    let done = env.finished(&id).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["result_status"], "FOUND");
    assert!(done["attempts_total"].as_i64().unwrap() >= 2, "{done:#}");
    let events = history_events(&done);
    assert_eq!(events.first().map(String::as_str), Some("requested"));
    assert!(events.iter().filter(|e| *e == "retry_scheduled").count() >= 1);
    assert_eq!(events.iter().filter(|e| *e == "completed").count(), 1);
    env.no_outstanding_jobs(&id).await;
    // The conversation got the answer once.
    let c = env.conversation_until(&conversation, "the vehicle", |c| c["vehicle"]["status"] == "FOUND").await;
    assert_eq!(c["vehicle"]["gearbox"]["oem"], "30500-33570");
    // The browser the dead ChromeDriver left behind is gone: only the pool's live session remains.
    eventually(Duration::from_secs(15), "orphaned browser profiles removed", || async {
        let dirs = std::fs::read_dir(&env.profiles).map(|d| d.count()).unwrap_or(0);
        (dirs <= 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_vin_becomes_vehicle_data_and_a_gearbox_suggestion_in_the_conversation() {
    let env = env("lookup-e2e", &[]).await;
    let conversation =
        env.customer_says("79001110006@c.us", "VL-E1", &format!("Здравствуйте! VIN {CAMRY_VIN}, нужна АКПП")).await;

    let c = env
        .conversation_until(&conversation, "the vehicle found by the lookup", |c| {
            c["vehicle"]["lookup_status"] == "completed"
                && c["pending_suggestions_list"].as_array().is_some_and(|l| l.iter().any(|s| s["source"] == "template"))
        })
        .await;
    let vehicle = &c["vehicle"];
    assert_eq!(vehicle["id_type"], "VIN");
    assert_eq!(vehicle["value"], CAMRY_VIN);
    assert_eq!(vehicle["status"], "FOUND");
    assert_eq!(vehicle["vehicle"]["make"], "TOYOTA");
    assert_eq!(vehicle["gearbox"]["model"], "U241E");
    assert_eq!(vehicle["gearbox"]["oem"], "30500-33570");
    assert_eq!(vehicle["decoder"]["manufacturer"], "Toyota");
    let lookup = vehicle["lookup_id"].as_str().unwrap().to_string();
    let suggestion =
        c["pending_suggestions_list"].as_array().unwrap().iter().find(|s| s["source"] == "template").cloned().unwrap();
    assert_eq!(suggestion["decision"], "NEED_APPROVAL");
    assert_eq!(suggestion["intent"], "other");
    assert_eq!(suggestion["request_id"], lookup.as_str());
    assert_eq!(
        suggestion["text"],
        "По вашему VIN-коду определяется модель КПП: U241E (OEM: 30500-33570).\n\
         Если есть возможность — пришлите фото шильдика/маркировки КПП для сверки.\n\
         Если сейчас не можете — продолжим подбор по OEM."
    );
    let detail = env.lookup_until(&lookup, "the lookup in its read model", |v| v["conversation_id"].is_string()).await;
    assert_eq!(detail["conversation_id"], conversation.as_str());
    assert_eq!(detail["request_source"], "detected");
    assert_eq!(detail["requested_by"], "conversation");
    assert!(detail["message_id"].is_string());

    // The approved suggestion goes out to the customer.
    let id = suggestion["id"].as_str().unwrap();
    env.app.post_json(&format!("/api/suggestions/{id}/approve"), env.op(), json!({})).await;
    eventually(Duration::from_secs(20), "the reply sent", || async {
        env.green.sent_messages().iter().any(|m| m.1.contains("U241E")).then_some(())
    })
    .await;

    // The operator confirms the gearbox from a photo of its tag: a match.
    let r = env.act(&lookup, "confirm-gearbox", json!({ "model": "u241e-06a", "note": "фото от клиента" })).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.json::<Value>().await.unwrap()["verification"], "verified_match");
    let c =
        env.conversation_until(&conversation, "the confirmed gearbox", |c| !c["vehicle"]["confirmed"].is_null()).await;
    assert_eq!(c["vehicle"]["confirmed"]["model"], "U241E-06A");
    assert_eq!(c["vehicle"]["confirmed"]["verification"], "verified_match");
    let bad = env.act(&lookup, "confirm-gearbox", json!({ "model": " " })).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // The customer repeats the VIN: no second lookup.
    env.customer_says("79001110006@c.us", "VL-E2", &format!("Ещё раз VIN {CAMRY_VIN}")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let list = env.app.get_json(&format!("/api/vehicle-lookups?conversation_id={conversation}"), env.op()).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list:#}");
    assert_eq!(list["items"][0]["round"], 1);
    env.no_outstanding_jobs(&lookup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attempt_left_started_by_a_dead_worker_is_counted_failed_and_the_lookup_goes_on() {
    use aisales_domain::vehicle_lookup::{
        IdType, LookupSource, NewRequest, VehicleId, VehicleLookup, VehicleLookupCommand,
    };
    // No lookup worker yet: the lookup is claimed by a "worker" that then dies (its claim stays).
    let env = env_with("lookup-takeover", &[], false).await;
    let conversation = env.customer_says("79001110007@c.us", "VL-T1", "Здравствуйте").await;
    let id = env.ask(&conversation, "VIN", CAMRY_VIN).await["lookup_id"].as_str().unwrap().to_string();
    let meta = aisales::store::EventMetadata::system(Some(env.t.id), "worker:vehicle-lookup");
    let request = NewRequest {
        request_id: uuid::Uuid::now_v7(),
        tenant_id: env.t.id,
        conversation_id: Some(conversation.parse().unwrap()),
        message_id: None,
        id: VehicleId::parse(IdType::Vin, CAMRY_VIN).unwrap(),
        source: LookupSource::Operator,
        requested_by: "test".into(),
        at: chrono::Utc::now(),
    };
    let store = &env.app.state.store;
    store.execute::<VehicleLookup>(&id, VehicleLookupCommand::Request(Box::new(request)), &(), &meta).await.unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::minutes(10);
    store
        .execute::<VehicleLookup>(&id, VehicleLookupCommand::Start { round: 1, at: long_ago }, &(), &meta)
        .await
        .unwrap();
    env.lookup_until(&id, "started", |v| v["status"] == "started").await;

    // A worker process starts: it counts the abandoned attempt as failed and finishes the lookup.
    let log = std::env::temp_dir().join(format!("aisales-takeover-worker-{}.log", std::process::id()));
    let _worker = env.worker_process(&log);
    let done = env.finished(&id).await;
    assert_eq!(done["result_status"], "FOUND", "{done:#}");
    // The conversation's own request arrived while the round ran: merged, not a second round.
    let events = history_events(&done);
    assert_eq!(events.iter().filter(|e| *e == "request_merged").count(), 1, "{events:?}");
    let rest: Vec<&String> = events.iter().filter(|e| *e != "request_merged").collect();
    assert_eq!(rest, ["requested", "started", "retry_scheduled", "started", "completed", "price_lookup_wanted"]);
    let retry = done["history"].as_array().unwrap().iter().find(|h| h["event"] == "retry_scheduled").unwrap();
    let reason = retry["detail"].as_str().unwrap();
    assert!(reason.contains("stopped before it finished"), "{reason}");
    env.no_outstanding_jobs(&id).await;
}

/// What a finished lookup ended with, for comparing runs.
fn ending(v: &Value) -> Value {
    json!({
        "status": v["status"],
        "result_status": v["result_status"],
        "source": v["source"],
        "model": v["gearbox"]["model"],
        "oem": v["gearbox"]["oem"],
        "factory_code": v["gearbox"]["factory_code"],
        "oem_failure": [v["oem_failure"]["kind"], v["oem_failure"]["step"]],
        "attempts_total": v["attempts_total"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_only_answer_names_the_step_that_failed_and_the_step_is_retried_not_the_lookup() {
    let env = env("lookup-oem-step", &[]).await;
    let conversation = env.customer_says("79001110008@c.us", "VL-O1", "Здравствуйте").await;

    // The gearbox parts list keeps failing: the OEM step is tried three times within one attempt,
    // then the lookup completes MODEL_ONLY and says where and why.
    env.podzamenu.fail_requests("/data/parts/", u32::MAX, 503);
    let id = env.ask(&conversation, "VIN", fixture_paths::COROLLA_FLAKY_VIN).await["lookup_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = env.finished(&id).await;
    env.podzamenu.clear_failures();
    assert_eq!(done["result_status"], "MODEL_ONLY", "{done:#}");
    assert_eq!(done["gearbox"]["model"], "U341E");
    assert!(done["gearbox"]["oem"].is_null());
    assert_eq!(done["attempts_total"], 1, "the lookup itself is not repeated");
    let failure = &done["oem_failure"];
    assert_eq!(failure["kind"], "site_error", "{done:#}");
    assert_eq!(failure["step"], "podzamenu.nav.accordion.link");
    assert_eq!(failure["transient"], true);
    assert_eq!(failure["attempts"], 3);
    let tries = done["gearbox"]["oem_search"]["paths"].as_array().unwrap();
    assert_eq!(tries.iter().filter(|p| p["outcome"] == "failed").count(), 3, "{tries:#?}");
    let completed = done["history"].as_array().unwrap().iter().find(|h| h["event"] == "completed").unwrap();
    let detail = completed["detail"].as_str().unwrap();
    assert!(detail.contains("OEM not found: site_error at podzamenu.nav.accordion.link, 3 tries"), "{detail}");
    // The page where it stopped is kept for the operator.
    assert_eq!(evidence_of_kind(&done, "screenshot").len(), 1, "{done:#}");
    // The conversation gets the model-only suggestion.
    let c = env.conversation_until(&conversation, "the model", |c| c["vehicle"]["status"] == "MODEL_ONLY").await;
    assert_eq!(c["vehicle"]["gearbox"]["oem_search"]["failure"]["kind"], "site_error");

    // The answer of a failing site is not served from the cache: another conversation asking for
    // the same VIN once the site is back gets the OEM.
    let other = env.customer_says("79001110009@c.us", "VL-O2", "Добрый день").await;
    let again =
        env.ask(&other, "VIN", fixture_paths::COROLLA_FLAKY_VIN).await["lookup_id"].as_str().unwrap().to_string();
    let found = env.finished(&again).await;
    assert_eq!(found["result_status"], "FOUND", "{found:#}");
    assert_eq!(found["gearbox"]["oem"], "30500-12A30");
    assert_eq!(found["result"]["from_cache"], false);
    assert!(found["oem_failure"].is_null());
    env.no_outstanding_jobs(&id).await;
    env.no_outstanding_jobs(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifteen_lookups_submitted_at_once_end_exactly_as_fifteen_submitted_one_by_one() {
    let env = env("lookup-fifteen", &[("BROWSER_POOL_SIZE", "2"), ("LOOKUP_TIMEOUT_SECS", "60")]).await;

    let mut one_by_one = Vec::new();
    for (i, (id_type, value)) in FIFTEEN.iter().enumerate() {
        let conversation = env.customer_says(&format!("7900333{i:04}@c.us"), &format!("SEQ-{i}"), "Здравствуйте").await;
        let id = env.ask(&conversation, id_type.as_str(), value).await["lookup_id"].as_str().unwrap().to_string();
        one_by_one.push(ending(&env.finished(&id).await));
    }

    // The same fifteen from fifteen other conversations, all at once, the cache emptied first.
    sqlx::query("DELETE FROM vehicle_lookup_cache").execute(&env.app.pool).await.unwrap();
    let mut conversations = Vec::new();
    for i in 0..FIFTEEN.len() {
        conversations.push(env.customer_says(&format!("7900444{i:04}@c.us"), &format!("ALL-{i}"), "Добрый день").await);
    }
    let ids: Vec<String> =
        futures::future::join_all(
            FIFTEEN.iter().zip(&conversations).map(|((id_type, value), conversation)| {
                let env = &env;
                async move {
                    env.ask(conversation, id_type.as_str(), value).await["lookup_id"].as_str().unwrap().to_string()
                }
            }),
        )
        .await;
    let mut at_once = Vec::new();
    for id in &ids {
        let done = env.finished(id).await;
        assert_eq!(done["result"]["from_cache"], false, "{done:#}");
        at_once.push(ending(&done));
    }

    for (((_, value), alone), together) in FIFTEEN.iter().zip(&one_by_one).zip(&at_once) {
        assert_eq!(alone, together, "{value}");
    }
    // And they are the right answers.
    let by_value = |v: &str| &one_by_one[FIFTEEN.iter().position(|(_, x)| *x == v).unwrap()];
    assert_eq!(by_value(CAMRY_VIN)["oem"], "30500-33570");
    assert_eq!(by_value(XTRAIL_FRAME)["oem"], "31020-1XF2D");
    assert_eq!(by_value(LANCER_VIN)["oem_failure"], json!(["parts_list_empty", "podzamenu.nav.accordion.link"]));
    assert_eq!(by_value(UNKNOWN_VIN)["status"], "not_found");
    assert_eq!(by_value(fixture_paths::SUBARU_DEEP_VIN)["oem"], "31000AJ280");
    assert_eq!(by_value(fixture_paths::SPRINTER_SPACED_OEM_VIN)["oem"], "A9062700100");
    assert_eq!(by_value(fixture_paths::FOCUS_FORD_VIN)["model"], "6DCT250");
    assert_eq!(by_value(fixture_paths::OUTLANDER_ANCILLARY_VIN)["oem_failure"][0], "only_ancillary_parts");
    assert!(one_by_one.iter().all(|e| e["attempts_total"] == 1), "{one_by_one:#?}");
    for id in &ids {
        env.no_outstanding_jobs(id).await;
    }
}

/// Resident memory of process `pid` in bytes (`VmRSS`).
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Lookup latency through the worker (a separate `aisales worker vehicle-lookup` process) on the
/// fixture sites, browser session acquisition included, and the worker's resident memory (the
/// browsers are ChromeDriver's children, so they are not counted). Run by `scripts/bench-lookup.sh`
/// or `cargo test --test integration vehicle_lookup::bench -- --ignored --nocapture`;
/// `BENCH_LOOKUPS` sets the number of lookups (default 30: every case twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark"]
async fn bench_lookup_latency_and_worker_memory() {
    let env = env_with("lookup-bench", &[], false).await;
    let log = std::env::temp_dir().join(format!("aisales-bench-worker-{}.log", std::process::id()));
    let worker = env.worker_process(&log);
    let pid = worker.pid();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            while let Some(rss) = rss_of(pid) {
                peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let n: usize = std::env::var("BENCH_LOOKUPS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    // Every path that finds the OEM: accordions (VIN, FRAME, late content, hidden phrases, plain
    // tables, spaced numbers, aggregates), the schemes tab (cards, plain link, generic, deeper
    // step, section), a popular link, a text link, prof-rf.
    let cases = [
        ("VIN", CAMRY_VIN),
        ("FRAME", XTRAIL_FRAME),
        ("VIN", "JMZGH12F701234567"),
        ("VIN", "LGWEF6A59NH012345"),
        ("VIN", fixture_paths::KIA_POPULAR_VIN),
        ("VIN", fixture_paths::SUBARU_DEEP_VIN),
        ("VIN", fixture_paths::SUZUKI_GENERIC_VIN),
        ("VIN", fixture_paths::LEXUS_SECTION_VIN),
        ("VIN", fixture_paths::CRUZE_TEXT_LINK_VIN),
        ("FRAME", fixture_paths::MARK2_FRAME),
        ("VIN", fixture_paths::QASHQAI_LATE_VIN),
        ("VIN", fixture_paths::SOLARIS_PLAIN_TABLE_VIN),
        ("VIN", fixture_paths::SPRINTER_SPACED_OEM_VIN),
        ("VIN", fixture_paths::RAV4_HIDDEN_PHRASES_VIN),
        ("VIN", fixture_paths::W212_AGGREGATES_VIN),
    ];
    let (mut end_to_end, mut attempt) = (Vec::new(), Vec::new());
    let started_all = std::time::Instant::now();
    for i in 0..n {
        let (id_type, value) = cases[i % cases.len()];
        let conversation =
            env.customer_says(&format!("7900222{i:04}@c.us"), &format!("BENCH-{i}"), "Добрый день").await;
        // Every lookup goes to the browser.
        sqlx::query("DELETE FROM vehicle_lookup_cache").execute(&env.app.pool).await.unwrap();
        let t0 = std::time::Instant::now();
        let asked = env.ask(&conversation, id_type, value).await;
        let id = asked["lookup_id"].as_str().unwrap().to_string();
        let path = format!("/api/vehicle-lookups/{id}");
        let done = loop {
            if let Some(v) = try_get(&env.app, &path, env.t.owner()).await
                && matches!(v["status"].as_str(), Some("completed" | "not_found" | "failed"))
            {
                break v;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "lookup {i} did not finish");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let total = t0.elapsed().as_millis();
        assert_eq!(done["result_status"], "FOUND", "{done:#}");
        let at = |event: &str| {
            done["history"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["event"] == event)
                .and_then(|h| h["at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()))
        };
        let browser = (at("completed").unwrap() - at("started").unwrap()).num_milliseconds() as u128;
        if i < cases.len() {
            println!("lookup {i} {id_type} {value}: {total} ms end to end, {browser} ms in the browser");
        }
        end_to_end.push(total);
        attempt.push(browser);
    }
    let elapsed = started_all.elapsed();
    let idle_rss = rss_of(pid).unwrap_or(0);
    sampler.abort();
    end_to_end.sort_unstable();
    attempt.sort_unstable();
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("lookups: {n} sequential, {:.1} s in all", elapsed.as_secs_f64());
    println!(
        "browser attempt (session acquisition included): p50 {} ms, p95 {} ms, max {} ms",
        percentile(&attempt, 0.5),
        percentile(&attempt, 0.95),
        attempt[attempt.len() - 1]
    );
    println!(
        "request to answer through the bus: p50 {} ms, p95 {} ms, max {} ms",
        percentile(&end_to_end, 0.5),
        percentile(&end_to_end, 0.95),
        end_to_end[end_to_end.len() - 1]
    );
    println!(
        "worker RSS (browser excluded): peak {:.1} MB, after the run {:.1} MB",
        mb(peak.load(std::sync::atomic::Ordering::Relaxed)),
        mb(idle_rss)
    );
    assert!(percentile(&end_to_end, 0.5) <= 3000, "p50 above 3 s");
    assert!(peak.load(std::sync::atomic::Ordering::Relaxed) <= 300 * 1024 * 1024, "worker RSS above 300 MB");
    drop(worker);
}
