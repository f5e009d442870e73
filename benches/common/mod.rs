//! Shared by the HTTP benches: start `cskh serve` (release binary, model on, the
//! shared embedding cache) on a free loopback port, and the holdout questions.

mod questions;
pub use questions::holdout;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Served {
    pub child: Child,
    pub base: String,
    _data: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn root() -> &'static str {
    env!("CARGO_MANIFEST_DIR")
}

/// Starts the server with `env` and returns once it listens (not yet ready).
pub fn serve(env: &[(&str, &str)]) -> Served {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cskh"));
    cmd.current_dir(root())
        .args(["serve", "--port", "0", "--data"])
        .arg(data.path())
        .env("CSKH_LOG", "warn,cskh=info")
        .env(
            "CSKH_EMBED_CACHE",
            format!("{}/target/test-embed-cache", root()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start cskh serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.split("listening on ").nth(1) {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server address");
    Served {
        child,
        base,
        _data: data,
    }
}

/// Waits until `/ready` answers 200.
pub async fn ready(client: &reqwest::Client, base: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while client
        .get(format!("{base}/ready"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(std::time::Instant::now() < deadline, "server not ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
