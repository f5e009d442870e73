//! Real headless Chromium (Debian's, driven by playwright-core) against the server.

use crate::server::{db_count, Server};
use crate::support::*;

/// Runs `tests/browser/SCRIPT BASE ARGS… SCREENSHOT_DIR` and returns its stdout.
fn browser_script(server: &Server, script: &str, args: &[&str]) -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "chromium is not installed: run `bash scripts/setup.sh --tests`"
    );
    assert!(
        root()
            .join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: run `bash scripts/setup.sh --tests`"
    );
    let shots = root().join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let o = std::process::Command::new("node")
        .current_dir(root().join("tests/browser"))
        .arg(script)
        .arg(&server.base)
        .args(args)
        .arg(&shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    assert!(
        o.status.success(),
        "{script} failed:\n{}\n{}\nserver log:\n{}",
        stdout(&o),
        stderr(&o),
        server.log.lock().unwrap()
    );
    stdout(&o)
}

#[test]
fn widget_answers_offers_choices_and_keeps_history_in_chromium() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let out = browser_script(&server, "widget.mjs", &[]);
    assert!(out.contains("widget browser test passed"));
}

#[test]
fn handoff_from_widget_to_agent_console_and_back_in_chromium() {
    let data = tempfile::tempdir().unwrap();
    create_agent(data.path(), "lan", "mat-khau-an-toan");
    let server = Server::start(data.path(), &[("CSKH_BUSINESS_HOURS", "00:00-00:00")]);
    let out = browser_script(&server, "handoff.mjs", &["lan", "mat-khau-an-toan"]);
    if let Some(ms) = out.lines().find(|l| l.starts_with("TICKET_APPEARED_MS")) {
        eprintln!("{ms}");
    }
    let code = out
        .lines()
        .find_map(|l| l.strip_prefix("TICKET ").map(str::to_string))
        .unwrap();
    let rating = db_count(
        data.path(),
        &format!("SELECT csat FROM tickets WHERE code = '{code}'"),
    );
    assert_eq!(rating, 5, "the rating is on the ticket");
}

#[test]
fn dashboard_renders_kpis_and_charts_in_chromium() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(
        data.path(),
        &[
            ("CSKH_ADMIN_TOKEN", "dashboard-token"),
            ("CSKH_BUSINESS_HOURS", "00:00-00:00"),
        ],
    );
    // A little traffic: answered, clarified, handed off, and a question the bot
    // cannot answer.
    let mut a = crate::server::Chat::new(&server, "dash-a");
    a.say("Phí ship ra Hà Nội bao nhiêu vậy shop?");
    let mut b = crate::server::Chat::new(&server, "dash-b");
    b.say("shop có bán vé máy bay không");
    b.say("cho mình gặp nhân viên");
    let mut c = crate::server::Chat::new(&server, "dash-c");
    c.say("em bị trừ tiền 2 lần");
    let out = browser_script(&server, "dashboard.mjs", &["dashboard-token"]);
    assert!(out.contains("dashboard browser test passed"), "{out}");
}

#[test]
fn a_transferred_call_shows_what_recognition_heard_in_the_console() {
    let data = tempfile::tempdir().unwrap();
    create_agent(data.path(), "lan", "mat-khau-an-toan");
    let server = Server::start(
        data.path(),
        &[
            ("CSKH_VOICE_TOKEN", "vt"),
            ("CSKH_BUSINESS_HOURS", "00:00-00:00"),
        ],
    );
    let heard = "phí sip ra hà lội";
    // Nothing heard, a low-confidence guess refused, nothing twice more: transferred.
    for (text, conf) in [
        ("", 0.0),
        (heard, 0.31),
        ("không", 0.9),
        ("", 0.0),
        ("", 0.0),
        ("", 0.0),
    ] {
        let (s, v) = crate::server::call(
            &server,
            "POST",
            "/api/v1/voice/turn",
            Some("vt"),
            Some(
                serde_json::json!({"call_id": "call-1", "from": "+84911222333", "text": text, "confidence": conf}),
            ),
        );
        assert_eq!(s, 200, "{v}");
        if v["action"] == "transfer" {
            break;
        }
    }
    assert_eq!(
        db_count(
            data.path(),
            "SELECT COUNT(*) FROM tickets WHERE reason = 'speech_unrecognized'"
        ),
        1
    );
    let out = browser_script(
        &server,
        "console_call.mjs",
        &["lan", "mat-khau-an-toan", heard],
    );
    assert!(out.contains("console call test passed"), "{out}");
}
