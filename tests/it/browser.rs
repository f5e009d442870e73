//! The web widget in real headless Chromium (Debian's, driven by playwright-core).

use crate::server::Server;
use crate::support::*;

#[test]
fn widget_answers_offers_choices_and_keeps_history_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "chromium is not installed: run `bash scripts/setup.sh`"
    );
    assert!(
        root()
            .join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: run `bash scripts/setup.sh`"
    );
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let shots = root().join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let o = std::process::Command::new("node")
        .current_dir(root().join("tests/browser"))
        .arg("widget.mjs")
        .arg(&server.base)
        .arg(&shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    assert!(
        o.status.success(),
        "browser test failed:\n{}\n{}\nserver log:\n{}",
        stdout(&o),
        stderr(&o),
        server.log.lock().unwrap()
    );
    assert!(stdout(&o).contains("widget browser test passed"));
}

#[test]
fn handoff_from_widget_to_agent_console_and_back_in_chromium() {
    let data = tempfile::tempdir().unwrap();
    let o = run(cskh()
        .args([
            "agent",
            "create",
            "--username",
            "lan",
            "--password",
            "mat-khau-an-toan",
            "--data",
        ])
        .arg(data.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    let server = Server::start(data.path(), &[("CSKH_BUSINESS_HOURS", "00:00-00:00")]);
    let shots = root().join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let o = std::process::Command::new("node")
        .current_dir(root().join("tests/browser"))
        .args(["handoff.mjs", &server.base, "lan", "mat-khau-an-toan"])
        .arg(&shots)
        .output()
        .expect("node runs");
    assert!(
        o.status.success(),
        "browser test failed:\n{}\n{}\nserver log:\n{}",
        stdout(&o),
        stderr(&o),
        server.log.lock().unwrap()
    );
    let code = stdout(&o)
        .lines()
        .find_map(|l| l.strip_prefix("TICKET ").map(str::to_string))
        .unwrap();
    let rating = crate::server::db_count(
        data.path(),
        &format!("SELECT csat FROM tickets WHERE code = '{code}'"),
    );
    assert_eq!(rating, 5, "the rating is on the ticket");
}
