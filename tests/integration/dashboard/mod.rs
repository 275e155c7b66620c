//! The operator dashboard in real headless Chromium (through ChromeDriver) against the real
//! server, Postgres and Redis, with a fake GREEN-API account: signing in with a one-time password,
//! live updates, an edited suggestion sent exactly once, the audit slider, and tenant isolation.
//! Every page is screenshotted to `DASHBOARD_SCREENSHOTS_DIR` (default
//! `target/dashboard-screenshots/`), and the browser's console must stay free of errors and
//! Content-Security-Policy violations.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aisales::auth::Role;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::driver::{ChromeDriver, chromium_binary, profile_root};
use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text};
mod panels;

use crate::helpers::{TestApp, app_with, create_tenant, fast, green_account, post_green, tenant};

/// How long a live update may take before the browser test gives up on it.
const LIVE_BOUND: Duration = Duration::from_secs(10);

/// Where the screenshots go.
fn screenshots_dir() -> PathBuf {
    let dir = std::env::var("DASHBOARD_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// A browser session with its console log kept by ChromeDriver.
struct Browser {
    client: Client,
    driver: ChromeDriver,
    base: String,
    profile: PathBuf,
}

impl Browser {
    async fn start(base: &str, width: u32, height: u32) -> Browser {
        let driver = ChromeDriver::start().await;
        let profile = profile_root("dashboard");
        let mut chrome = json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--password-store=basic",
                format!("--window-size={width},{height}"), format!("--user-data-dir={}", profile.display()),
            ],
        });
        if let Some(b) = chromium_binary() {
            chrome["binary"] = json!(b);
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": chrome,
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let client = ClientBuilder::rustls()
            .expect("tls roots")
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .expect("a browser session");
        Browser { client, driver, base: base.to_string(), profile }
    }

    async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.expect("navigation");
    }

    async fn path(&self) -> String {
        self.client.current_url().await.expect("url").path().to_string()
    }

    async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        match self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(selector)).await {
            Ok(el) => el,
            Err(e) => panic!("no `{selector}` on {}: {e}", self.path().await),
        }
    }

    async fn text_of(&self, selector: &str) -> String {
        self.css(selector).await.text().await.unwrap_or_default()
    }

    /// Waits up to `limit` for `selector` to match an element containing `text`.
    async fn wait_for_text(&self, selector: &str, text: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            for el in self.client.find_all(Locator::Css(selector)).await.unwrap_or_default() {
                if el.text().await.unwrap_or_default().contains(text) {
                    return start.elapsed();
                }
            }
            assert!(start.elapsed() < limit, "`{text}` did not appear in `{selector}` within {limit:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(screenshots_dir().join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// The console entries since the last call (ChromeDriver's log endpoint; reading clears it).
    async fn console(&self) -> Vec<Value> {
        let id = self.client.session_id().await.expect("session id").expect("a session");
        let v: Value = reqwest::Client::new()
            .post(format!("{}/session/{id}/se/log", self.driver.url()))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("log endpoint")
            .json()
            .await
            .expect("log json");
        v["value"].as_array().cloned().unwrap_or_default()
    }

    /// No console errors and no CSP violations so far (`allowed`: substrings of expected errors).
    async fn assert_clean_console(&self, page: &str, allowed: &[&str]) {
        let bad: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|e| {
                let msg = e["message"].as_str().unwrap_or_default();
                let severe = e["level"] == "SEVERE";
                let csp = msg.contains("Content Security Policy") || msg.contains("Refused to");
                // A CSP violation is never allowed; other errors only when expected.
                csp || (severe && !allowed.iter().any(|a| msg.contains(a)))
            })
            .collect();
        assert!(bad.is_empty(), "console errors on the {page} page: {bad:#?}");
    }

    async fn sign_in(&self, email: &str, password: &str) {
        self.goto("/").await;
        assert_eq!(self.path().await, "/login", "without a session the dashboard sends to its login page");
        self.css("input[name=email]").await.send_keys(email).await.unwrap();
        self.css("input[name=password]").await.send_keys(password).await.unwrap();
        self.css("form button[type=submit].primary").await.click().await.unwrap();
    }

    /// The browser's cookies for this origin as a `Cookie` header (to send a request as this user).
    async fn cookie_header(&self) -> String {
        let cookies = self.client.get_all_cookies().await.expect("cookies");
        cookies.iter().map(|c| format!("{}={}", c.name(), c.value())).collect::<Vec<_>>().join("; ")
    }

    /// The CSRF token of the page shown.
    async fn csrf(&self) -> String {
        let v = self.client.execute("return document.body.dataset.csrf || '';", vec![]).await.expect("csrf");
        v.as_str().unwrap_or_default().to_string()
    }

    async fn close(self) {
        let _ = self.client.close().await;
        aisales::browser::kill_browsers_using(&self.profile);
        let _ = std::fs::remove_dir_all(&self.profile);
        drop(self.driver);
    }
}

async fn one_time_user(app: &TestApp, tenant: uuid::Uuid, email: &str, password: &str, role: Role, must_change: bool) {
    let hash = aisales::auth::passwords::hash(password);
    let mut conn = app.pool.acquire().await.unwrap();
    aisales::tenancy::create_user(&mut conn, tenant, email, role, &hash, must_change).await.unwrap();
}

fn conversation_of(answer: &Value) -> String {
    answer["result"]["messages"][0]["conversation_id"].as_str().expect("conversation id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_works_a_conversation_in_the_dashboard() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, hook, token) = green_account(&app, &t, &fake).await;
    one_time_user(&app, t.id, "anna@shop.test", "OneTime-Pass1", Role::Owner, true).await;

    // A customer writes before anyone is signed in.
    let first =
        green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001234567@c.us", "Иван", "MSG-1", "Нужна АКПП на Камри");
    let r = post_green(&app, &hook, &token, &first).await;
    assert_eq!(r.status(), StatusCode::OK);
    let conversation = conversation_of(&r.json().await.unwrap());
    app.drain().await;

    let b = Browser::start(&app.address, 1280, 900).await;

    // Sign in with the one-time password; the dashboard insists on a new one.
    b.goto("/login").await;
    b.css("input[name=email]").await;
    b.screenshot("01-login").await;
    b.sign_in("anna@shop.test", "OneTime-Pass1").await;
    b.css("input[name=new_password]").await;
    assert_eq!(b.path().await, "/password");
    b.screenshot("02-password-change").await;
    b.css("input[name=current_password]").await.send_keys("OneTime-Pass1").await.unwrap();
    b.css("input[name=new_password]").await.send_keys("Own-Password-2026").await.unwrap();
    b.css("input[name=repeat_password]").await.send_keys("Own-Password-2026").await.unwrap();
    b.css("form button[type=submit].primary").await.click().await.unwrap();
    b.css("#inbox").await;
    assert_eq!(b.path().await, "/");

    // The webhook's conversation is in the inbox, with its unread count.
    b.wait_for_text("#conv-list .conv", "Иван", LIVE_BOUND).await;
    assert_eq!(b.text_of("#conv-list .conv .unread").await, "1");
    b.screenshot("03-inbox").await;
    b.assert_clean_console("inbox", &[]).await;

    // A second customer writes while the inbox is open: the row appears without a reload.
    b.client.execute("document.body.dataset.marker = 'same-page'; return null;", vec![]).await.unwrap();
    let second =
        green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79007654321@c.us", "Пётр", "MSG-2", "Есть ли вариатор?");
    assert_eq!(post_green(&app, &hook, &token, &second).await.status(), StatusCode::OK);
    // The bound is generous: the test proves the row arrives live, without a reload; how fast it
    // arrives (the 2 s target) is measured by `cargo bench --bench dashboard`, not asserted here.
    let took = b.wait_for_text("#conv-list .conv", "Пётр", LIVE_BOUND).await;
    let marker = b.client.execute("return document.body.dataset.marker || null;", vec![]).await.unwrap();
    assert_eq!(marker, json!("same-page"), "the inbox updated in place, not by reloading");
    eprintln!("webhook → inbox row: {took:?}");

    // Keyboard: j selects the first row, Enter opens it.
    b.css("body").await.send_keys("j").await.unwrap();
    b.css("#conv-list .conv.selected").await;

    // The conversation page: a new message of the same customer appears without a reload.
    b.goto(&format!("/c/{conversation}")).await;
    b.css(".timeline").await;
    b.client.execute("document.body.dataset.marker = 'same-page'; return null;", vec![]).await.unwrap();
    let third = green_api_incoming_text(
        FakeGreenApi::ID_INSTANCE,
        "79001234567@c.us",
        "Иван",
        "MSG-3",
        "VIN JTNBK40K203012345",
    );
    assert_eq!(post_green(&app, &hook, &token, &third).await.status(), StatusCode::OK);
    let took = b.wait_for_text("#messages .msg.in", "JTNBK40K203012345", LIVE_BOUND).await;
    let marker = b.client.execute("return document.body.dataset.marker || null;", vec![]).await.unwrap();
    assert_eq!(marker, json!("same-page"), "the timeline updated in place");
    eprintln!("webhook → conversation timeline: {took:?}");

    // The drafted suggestion arrives; the operator edits it and sends it.
    app.drain().await;
    b.goto(&format!("/c/{conversation}")).await;
    let text = b.css("#suggestion-text").await;
    b.screenshot("04-conversation").await;
    text.clear().await.unwrap();
    text.send_keys("Здравствуйте, Иван! Подберём АКПП по VIN, уточним цену.").await.unwrap();
    b.css("#edit-send").await.click().await.unwrap();
    b.css("p.notice").await;
    crate::helpers::eventually(Duration::from_secs(20), "the edited reply to be sent", || async {
        (!fake.sent_messages().is_empty()).then_some(())
    })
    .await;
    app.drain().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sends = fake.sent_messages();
    assert_eq!(sends.len(), 1, "exactly one sendMessage: {sends:?}");
    assert_eq!(sends[0].0, "79001234567@c.us");
    assert_eq!(sends[0].1, "Здравствуйте, Иван! Подберём АКПП по VIN, уточним цену.");
    b.wait_for_text("#messages .msg.out", "Подберём АКПП", LIVE_BOUND).await;
    b.screenshot("05-conversation-sent").await;
    b.assert_clean_console("conversation", &[]).await;

    // The audit page: move the slider to the first event and see the state then.
    b.goto(&format!("/c/{conversation}/audit")).await;
    let slider = b.css("#seq").await;
    let max: i64 = slider.attr("max").await.unwrap().unwrap().parse().unwrap();
    assert!(max > 3, "several events in the log: {max}");
    b.screenshot("06-audit").await;
    slider.send_keys(&fantoccini::key::Key::Home.to_string()).await.unwrap();
    b.css("[data-region=state][data-seq='1']").await;
    assert_eq!(b.text_of("#state-messages").await, "0", "before the first message was recorded");
    let future = b.client.find_all(Locator::Css("tr.future")).await.unwrap().len() as i64;
    assert_eq!(future, max - 1, "every later event is marked as not yet happened");
    b.screenshot("07-audit-earlier").await;
    b.assert_clean_console("audit", &[]).await;

    // Settings and operations: the decision settings save as they are shown.
    b.goto("/settings").await;
    b.css("form#decision-settings").await;
    b.screenshot("10-settings").await;
    b.css("form#decision-settings button.primary").await.click().await.unwrap();
    b.css("p.notice").await;
    // Working hours: saved through the same validation as `PATCH /api/tenant`.
    b.goto("/settings").await;
    // A time input's typing depends on the browser's locale; its value is set as the picker would.
    b.client.execute("document.getElementById('h-start').value = '08:00'; return null;", vec![]).await.unwrap();
    b.css("input[name='day:sun']").await.click().await.unwrap();
    b.css("#save-hours").await.click().await.unwrap();
    b.css("p.notice").await;
    let (start, days): (chrono::NaiveTime, Vec<String>) =
        sqlx::query_as("SELECT working_hours_start, working_days FROM tenants WHERE id = $1")
            .bind(t.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(start.format("%H:%M").to_string(), "08:00");
    assert!(days.iter().any(|d| d == "sun"), "{days:?}");
    // A template's preview follows the text as it is typed (through /api/price-templates/preview).
    let area = b.css("#t-not_found").await;
    area.clear().await.unwrap();
    area.send_keys("Цены на {{transmission_model}} уточним").await.unwrap();
    b.wait_for_text("#preview-not_found", "уточним", LIVE_BOUND).await;
    area.send_keys(" {{nonsense}}").await.unwrap();
    b.wait_for_text("#preview-not_found", "Шаблон не принят", LIVE_BOUND).await;
    b.screenshot("10b-settings-hours-templates").await;
    b.goto("/ops").await;
    b.css("main h1").await;
    b.screenshot("11-operations").await;
    // The refused template's preview answers 400, which the browser logs; nothing else may be.
    b.assert_clean_console(
        "settings and operations",
        &["/api/price-templates/preview - Failed to load resource: the server responded with a status of 400"],
    )
    .await;

    // On a phone.
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto("/").await;
    b.css("#inbox").await;
    b.screenshot("12-phone-inbox").await;
    b.goto(&format!("/c/{conversation}")).await;
    b.css(".timeline").await;
    b.screenshot("13-phone-conversation").await;
    b.client.set_window_size(1280, 900).await.unwrap();

    // Another shop's operator sees none of it.
    b.css("form[action='/logout'] button").await.click().await.unwrap();
    b.css("input[name=email]").await;
    let other = create_tenant(&app.pool, "Другой магазин").await;
    one_time_user(&app, other.id, "oleg@other.test", "Other-Pass-2026", Role::Operator, false).await;
    b.sign_in("oleg@other.test", "Other-Pass-2026").await;
    b.css("#inbox").await;
    let rows = b.client.find_all(Locator::Css("#conv-list .conv")).await.unwrap();
    assert!(rows.is_empty(), "another tenant's inbox is empty");
    b.screenshot("08-other-tenant-inbox").await;
    b.goto(&format!("/c/{conversation}")).await;
    let h1 = b.text_of("main h1").await;
    assert!(h1 == "Не найдено" || h1 == "Not found", "another tenant's conversation is not found: {h1}");
    let status = app
        .client
        .get(format!("{}/c/{conversation}", app.address))
        .header("cookie", "aisales_session=forged.value")
        .send()
        .await
        .unwrap();
    assert!(status.url().path().starts_with("/login"), "a forged session is sent to the login page");
    b.screenshot("09-other-tenant-not-found").await;
    b.assert_clean_console("other tenant", &["status of 404"]).await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_a_strict_csp_and_forms_need_their_token() {
    let app = app_with(&fast(&[])).await;
    let login = app.client.get(format!("{}/login", app.address)).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let csp = login.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    let html = login.text().await.unwrap();
    assert!(html.contains("name=\"email\"") && html.contains("name=\"password\""));
    assert!(!html.contains("<script>") && !html.contains(" style=\""), "no inline script or style");
    // The page's assets are served under their hashed names, cached for a year.
    let js = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
    let asset = app.client.get(format!("{}{js}", app.address)).send().await.unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert!(asset.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    // A login post without the form's token is refused with a sentence, and signs nobody in.
    let t = create_tenant(&app.pool, "Магазин").await;
    let hash = aisales::auth::passwords::hash("Right-Pass-2026");
    let mut conn = app.pool.acquire().await.unwrap();
    aisales::tenancy::create_user(&mut conn, t.id, "a@b.test", Role::Owner, &hash, false).await.unwrap();
    let r = app
        .client
        .post(format!("{}/login", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=a%40b.test&password=Right-Pass-2026&csrf=made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("aisales_session=")));
    assert!(r.text().await.unwrap().contains("Форма устарела"));
}
