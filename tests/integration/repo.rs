//! Repository-level promises: `.env.example` matches the code, migrations are not destructive,
//! and the deployment files start what they should.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Names in `.env.example`, set (`NAME=`) or commented out (`# NAME=`).
fn example_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(".env.example")).unwrap();
    text.lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim().to_string())
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .collect()
}

#[test]
fn env_example_documents_exactly_the_variables_the_code_reads() {
    let code: BTreeSet<String> = aisales::config::VARS.iter().map(|v| v.name.to_string()).collect();
    let example = example_names();
    let missing: Vec<_> = code.difference(&example).collect();
    let stale: Vec<_> = example.difference(&code).collect();
    assert!(missing.is_empty(), ".env.example lacks {missing:?}");
    assert!(stale.is_empty(), ".env.example documents variables the code does not read: {stale:?}");
    let text = std::fs::read_to_string(root().join(".env.example")).unwrap();
    assert_eq!(text, aisales::config::example_env(), "regenerate with `aisales config example > .env.example`");
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn only_the_config_module_reads_the_environment() {
    let mut files = Vec::new();
    for dir in ["src", "domain/src", "projections/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    let allowed = ["src/config/load.rs", "src/testkit.rs"];
    for f in files {
        let rel = f.strip_prefix(root()).unwrap().to_string_lossy().to_string();
        if allowed.contains(&rel.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for needle in ["env::var(", "env::var_os(", "env::vars("] {
            assert!(
                !text.contains(needle),
                "{rel} reads the environment ({needle}); add the variable to config::VARS instead"
            );
        }
    }
}

#[test]
fn migrations_are_not_destructive() {
    let forbidden =
        ["DROP TABLE", "DROP COLUMN", "TRUNCATE", "DELETE FROM", "DROP SCHEMA", "DROP DATABASE", "ALTER COLUMN"];
    for entry in std::fs::read_dir(root().join("migrations")).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap().to_uppercase();
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
        // Choosing how new values of a column are compressed changes no stored value.
        let code = without_compression_changes(&code);
        for f in forbidden {
            assert!(!code.contains(f), "{} contains `{f}`: migrations must never destroy data", p.display());
        }
    }
}

/// `code` without its `ALTER COLUMN <column> SET COMPRESSION <method>` clauses.
fn without_compression_changes(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("ALTER COLUMN") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "ALTER COLUMN".len()..];
        let mut words = after.split_whitespace();
        let (_column, set, compression) = (words.next(), words.next(), words.next());
        if set == Some("SET") && compression == Some("COMPRESSION") {
            let end = after.find("COMPRESSION").unwrap() + "COMPRESSION".len();
            rest = &after[end..];
        } else {
            out.push_str("ALTER COLUMN");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn only_compression_changes_pass_the_destructive_migration_check() {
    let kept = without_compression_changes("ALTER TABLE EVENTS ALTER COLUMN PAYLOAD SET COMPRESSION LZ4;");
    assert!(!kept.contains("ALTER COLUMN"), "{kept}");
    for destructive in ["ALTER TABLE T ALTER COLUMN C TYPE INT;", "ALTER TABLE T ALTER COLUMN C SET DATA TYPE INT;"] {
        assert!(without_compression_changes(destructive).contains("ALTER COLUMN"), "{destructive}");
    }
}

#[test]
fn start_script_migrates_first_and_stops_when_that_fails() {
    let text = std::fs::read_to_string(root().join("start.sh")).unwrap();
    let migrate = text.find("migrate").expect("start.sh runs migrations");
    let serve = text.find("exec ").expect("start.sh execs the server");
    assert!(migrate < serve);
    assert!(text.contains("set -e") || text.contains("|| exit"), "a failed migration stops the start");
    assert!(!text.contains("--force"));
}

#[test]
fn pm2_ecosystem_runs_the_native_binary_in_fork_mode() {
    let text = std::fs::read_to_string(root().join("ecosystem.config.cjs")).unwrap();
    for needle in [
        "app('aisales', 'serve'",
        "app('aisales-projector', 'projector'",
        "'worker message-send'",
        "'worker reply-suggestion'",
        "'worker probe'",
        "exec_mode: 'fork'",
        "interpreter: 'none'",
        "max_memory_restart: '1G'",
        "../logs/",
        "app('aisales-worker-vehicle-lookup', 'worker vehicle-lookup'",
        "name: 'chromedriver'",
        "--port=9515 --allowed-ips=127.0.0.1",
    ] {
        assert!(text.contains(needle), "ecosystem.config.cjs lacks {needle}");
    }
}

#[test]
fn nixpacks_installs_chromium_and_chromedriver() {
    let text = std::fs::read_to_string(root().join("nixpacks.toml")).unwrap();
    let setup = text.lines().find(|l| l.trim_start().starts_with("nixPkgs")).expect("nixPkgs line");
    assert!(setup.contains("\"chromium\"") && setup.contains("\"chromedriver\""), "{setup}");
}

/// What Nixpacks 1.41 needs from Cargo.toml to plan the build (`nixpacks plan .`): a resolver it
/// can parse ("1" or "2") and the root package's `rust-version` spelled out, not inherited, as a full
/// version (it becomes the `rust-bin.stable."X.Y.Z"` package).
#[test]
fn cargo_toml_is_readable_by_nixpacks() {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let value = |line: &str| line.split('=').nth(1).map(|v| v.trim().trim_matches('"').to_string());
    let resolver = text.lines().find(|l| l.starts_with("resolver")).and_then(value).expect("workspace.resolver");
    assert!(resolver == "1" || resolver == "2", "resolver {resolver} is not parseable by Nixpacks");
    let versions: Vec<String> = text.lines().filter(|l| l.starts_with("rust-version =")).filter_map(value).collect();
    assert_eq!(versions.len(), 2, "rust-version in [workspace.package] and literally in the root [package]");
    assert_eq!(versions[0], versions[1], "the two rust-version lines agree");
    assert_eq!(versions[0].split('.').count(), 3, "a full X.Y.Z version: {}", versions[0]);
}

#[test]
fn every_metric_has_help_text() {
    let re = regex::Regex::new(r#"metrics::(counter|gauge|histogram)!\(\s*"([a-z_]+)""#).unwrap();
    let telemetry: String = std::fs::read_to_string(root().join("src/infra/telemetry.rs"))
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut files = Vec::new();
    for dir in ["src", "projections/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut missing = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for c in re.captures_iter(&text) {
            let (kind, name) = (&c[1], &c[2]);
            if !telemetry.contains(&format!("describe_{kind}!(\"{name}\"")) {
                missing.insert(format!("{kind} {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "describe these metrics in src/infra/telemetry.rs (promtool rejects metrics without help): {missing:?}"
    );
}

#[test]
fn the_event_catalog_matches_the_code() {
    let text = std::fs::read_to_string(root().join("docs/events.md")).unwrap();
    assert_eq!(text, aisales_domain::catalog::markdown(), "regenerate with `aisales events catalog > docs/events.md`");
}
