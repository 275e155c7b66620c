//! A ChromeDriver child process per test, on a free port, killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// `CHROMEDRIVER` or `chromedriver` from `PATH`.
pub fn chromedriver_binary() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

/// `CHROMIUM_BINARY`, else `/usr/bin/chromium` when present (else ChromeDriver's own search).
pub fn chromium_binary() -> Option<String> {
    std::env::var("CHROMIUM_BINARY")
        .ok()
        .or_else(|| Path::new("/usr/bin/chromium").is_file().then(|| "/usr/bin/chromium".to_owned()))
}

pub struct ChromeDriver {
    child: Option<Child>,
    port: u16,
}

impl ChromeDriver {
    /// Starts ChromeDriver on a free port and waits until it accepts sessions.
    pub async fn start() -> ChromeDriver {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        Self::start_on(port).await
    }

    /// Starts ChromeDriver on `port` (e.g. again after it was killed).
    pub async fn start_on(port: u16) -> ChromeDriver {
        let mut child = Command::new(chromedriver_binary())
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (install chromium-driver): {e}", chromedriver_binary()));
        let stdout = child.stdout.take().expect("chromedriver stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("ready for new sessions") || line.contains("started successfully") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "chromedriver on port {port} did not become ready");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // The HTTP endpoint can lag the log line by a moment.
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ChromeDriver { child: Some(child), port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL (like a crash) and reap. Browsers it started are left behind, as in production.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// A fresh directory for one test's browser profiles.
pub fn profile_root(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aisales-browser-{test}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("profile root");
    dir
}
