//! The binary's contract: migrations, configuration checks, exit codes.

use aisales::testkit::TestDb;

use crate::helpers::aisales;

#[tokio::test]
async fn migrate_twice_applies_nothing_the_second_time() {
    // An empty database (not from the migrated template).
    let admin = aisales::testkit::admin_url();
    let mut conn: sqlx::PgConnection = sqlx::Connection::connect(&admin).await.unwrap();
    let name = format!("aisales_t_{}_empty{}", chrono::Utc::now().timestamp(), std::process::id());
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await.unwrap();
    let url = admin.rsplit_once('/').map(|(base, _)| format!("{base}/{name}")).unwrap();

    let first = aisales(&url).arg("migrate").output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.contains("migration(s) applied"), "{out}");

    let second = aisales(&url).arg("migrate").output().unwrap();
    assert_eq!(second.status.code(), Some(0));
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("nothing to apply"), "{out}");
    assert!(!out.contains("applied 2"), "{out}");

    let mut migrated: sqlx::PgConnection = sqlx::Connection::connect(&url).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&mut migrated).await.unwrap();
    drop(migrated);
    assert_eq!(tables as usize, aisales::infra::db::MIGRATOR.iter().count());
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)")).execute(&mut conn).await.unwrap();
}

#[test]
fn config_check_names_every_problem_and_exits_2() {
    let out = aisales("postgres://u:p@127.0.0.1:5432/x")
        .env("APP_ENV", "production")
        .env("SESSION_SECRET", "short")
        .env_remove("REDIS_URL")
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let problem_lines: Vec<&str> = err
        .lines()
        .filter(|l| l.split_once(": ").is_some_and(|(var, _)| var.chars().all(|c| c.is_ascii_uppercase() || c == '_')))
        .collect();
    assert!(problem_lines.iter().any(|l| l.starts_with("SESSION_SECRET: too short")), "{err}");
    assert!(problem_lines.iter().any(|l| l.starts_with("INTEGRATION_SECRETS_MASTER_KEY: missing")), "{err}");
    assert!(problem_lines.iter().any(|l| l.starts_with("REDIS_URL: missing")), "{err}");

    // serve refuses with the same lines.
    let serve = aisales("postgres://u:p@127.0.0.1:5432/x")
        .env("APP_ENV", "production")
        .env("SESSION_SECRET", "short")
        .env_remove("REDIS_URL")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2));
    let serve_err = String::from_utf8_lossy(&serve.stderr);
    for line in problem_lines {
        assert!(serve_err.contains(line), "serve should print `{line}`:\n{serve_err}");
    }
}

#[test]
fn config_check_accepts_a_valid_production_environment() {
    let out = aisales("postgres://u:p@127.0.0.1:5432/x")
        .env("APP_ENV", "production")
        .env("SESSION_SECRET", "0123456789abcdef0123456789abcdef")
        .env("INTEGRATION_SECRETS_MASTER_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
}

#[test]
fn unknown_subcommands_exit_2() {
    let out = aisales("postgres://u:p@127.0.0.1:5432/x").arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let db = TestDb::create().await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = aisales(&db.url);
    cmd.args(["serve", "--all"]).env("PORT", port.to_string()).env("HOST", "127.0.0.1").env("SHUTDOWN_GRACE_SECS", "5");
    let mut child = crate::helpers::ChildGuard::spawn(cmd);
    let client = reqwest::Client::new();
    crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "the server to answer",
        || {
            let client = client.clone();
            async move {
                client
                    .get(format!("http://127.0.0.1:{port}/health"))
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == 200)
            }
        },
    )
    .await;
    let status = child.terminate(std::time::Duration::from_secs(30)).expect("exits after SIGTERM");
    assert!(status.success(), "clean exit, got {status:?}");
}

#[test]
fn detect_prints_one_json_object_per_input_without_a_database() {
    use std::io::Write;
    // No database or secrets are needed (production settings that would be invalid).
    let bad_env = |cmd: &mut std::process::Command| {
        cmd.env("APP_ENV", "production").env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none");
    };
    let mut one = aisales("postgres://u:p@127.0.0.1:1/x");
    bad_env(&mut one);
    let out = one.args(["detect", "Здравствуйте, VIN JTNBK40K203012345, нужна АКПП"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["input"], "Здравствуйте, VIN JTNBK40K203012345, нужна АКПП");
    let c = &v["candidates"][0];
    assert_eq!((c["type"].as_str(), c["value"].as_str()), (Some("VIN"), Some("JTNBK40K203012345")));
    assert!(c["score"].as_f64().unwrap() >= 0.8);
    assert!(c["reasons"].as_array().is_some_and(|r| !r.is_empty()));
    assert_eq!(v["best"]["value"], "JTNBK40K203012345");
    assert_eq!(v["gearbox_type"], "AT");

    let mut many = aisales("postgres://u:p@127.0.0.1:1/x");
    bad_env(&mut many);
    let mut child =
        many.arg("detect").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all("кузов NT31-012345\nпривет\nвариатор JF011E\n".as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["best"]["type"], "FRAME");
    assert_eq!(lines[0]["best"]["value"], "NT31-012345");
    assert_eq!(lines[1]["input"], "привет");
    assert_eq!(lines[1]["candidates"], serde_json::json!([]));
    assert!(lines[1]["best"].is_null() && lines[1]["gearbox_type"].is_null());
    assert_eq!(lines[2]["best"]["type"], "TRANSMISSION_CODE");
    assert_eq!(lines[2]["gearbox_type"], "CVT");
}

/// The `nice` value of every thread of a process (the 19th field of `/proc/<pid>/task/<tid>/stat`).
fn thread_niceness(pid: u32) -> Vec<i64> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        out.push(rest.split(' ').nth(16).unwrap().parse().unwrap());
    }
    out
}

#[tokio::test]
async fn background_roles_lower_their_cpu_priority_and_the_server_keeps_its_own() {
    let db = TestDb::create().await.unwrap();
    let mut cmd = aisales(&db.url);
    cmd.arg("projector").env("BACKGROUND_NICENESS", "7");
    let projector = crate::helpers::ChildGuard::spawn(cmd);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = aisales(&db.url);
    cmd.arg("serve").env("PORT", port.to_string()).env("HOST", "127.0.0.1").env("BACKGROUND_NICENESS", "7");
    let server = crate::helpers::ChildGuard::spawn(cmd);
    let client = reqwest::Client::new();
    crate::helpers::eventually(std::time::Duration::from_secs(20), "the server to answer", || {
        let client = client.clone();
        async move {
            client.get(format!("http://127.0.0.1:{port}/health")).send().await.ok().filter(|r| r.status() == 200)
        }
    })
    .await;
    // The projector's runtime threads exist once it has started its tasks.
    crate::helpers::eventually(std::time::Duration::from_secs(20), "the projector's threads", || {
        let n = thread_niceness(projector.pid());
        async move { (n.len() > 1).then_some(()) }
    })
    .await;
    let projector_threads = thread_niceness(projector.pid());
    assert!(projector_threads.iter().all(|n| *n == 7), "projector threads: {projector_threads:?}");
    let server_threads = thread_niceness(server.pid());
    assert!(server_threads.iter().all(|n| *n == 0), "server threads: {server_threads:?}");

    // A value out of range is a configuration problem, reported before anything starts.
    let out = aisales(&db.url).args(["config", "check"]).env("BACKGROUND_NICENESS", "25").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BACKGROUND_NICENESS: must be a number from 0 to 19"));
}
