//! Messenger and Zalo OA against a local stand-in that speaks the Graph API and Zalo
//! OpenAPI wire formats. Webhook signatures are computed independently by Python's
//! hashlib/hmac, not by the code under test.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::{agent_login, call, db_count, db_exec, import_orders, rt, Server};
use crate::support::*;

const APP_SECRET: &str = "messenger-app-secret";
const VERIFY_TOKEN: &str = "verify-me";
const PAGE_TOKEN: &str = "page-token";
const PAGE: &str = "page-1";
const ZALO_APP: &str = "4321987650";
const OA_SECRET: &str = "oa-secret-key";
const ZALO_APP_SECRET: &str = "zalo-app-secret";
/// Both platforms refuse a text message over 2,000 characters.
const MAX_TEXT: usize = 2000;

/// One message the stand-in platform accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    pub channel: &'static str,
    pub path: String,
    pub query: HashMap<String, String>,
    pub access_token: Option<String>,
    pub body: Value,
}

impl Sent {
    fn recipient(&self) -> String {
        let r = &self.body["recipient"];
        r["id"]
            .as_str()
            .or(r["user_id"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    fn text(&self) -> String {
        self.body["message"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// What the customer sees: the text and any Zalo button titles.
    fn shown(&self) -> String {
        let mut shown = self.text();
        for b in self.body["message"]["attachment"]["payload"]["buttons"]
            .as_array()
            .into_iter()
            .flatten()
        {
            shown.push('\n');
            shown.push_str(b["title"].as_str().unwrap_or_default());
        }
        shown
    }
}

#[derive(Default)]
pub struct Platform {
    pub base: String,
    sent: Mutex<Vec<Sent>>,
    /// Send API requests seen, accepted or not.
    pub attempts: AtomicUsize,
    /// While set, the Graph Send API answers 500.
    pub graph_down: AtomicBool,
    /// While set to `Some(n)`, both send APIs accept `n` more messages, then answer
    /// 500 (an outage in the middle of a long reply).
    pub accept_then_fail: Mutex<Option<usize>>,
    zalo_token: Mutex<String>,
    zalo_refresh: Mutex<String>,
    pub refreshes: AtomicUsize,
    /// While set, the Zalo stand-in refuses messages with a button template (as an
    /// OA whose package or API version lacks them would).
    pub zalo_no_buttons: AtomicBool,
}

impl Platform {
    /// Whether this send falls in a set outage (see `accept_then_fail`).
    fn outage(&self) -> bool {
        match self.accept_then_fail.lock().unwrap().as_mut() {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }

    pub fn start() -> Arc<Platform> {
        use axum::extract::{Form, Path as UrlPath, Query, State};
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::post;
        use axum::Json;

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let p = Arc::new(Platform {
            base: format!("http://{addr}"),
            zalo_token: Mutex::new("zalo-token-2".into()),
            zalo_refresh: Mutex::new("zalo-refresh-1".into()),
            ..Default::default()
        });
        type S = State<Arc<Platform>>;
        let app = axum::Router::new()
            .route(
                "/v21.0/{page}/messages",
                post(
                    |State(p): S,
                     UrlPath(page): UrlPath<String>,
                     Query(q): Query<HashMap<String, String>>,
                     Json(body): Json<Value>| async move {
                        p.attempts.fetch_add(1, Ordering::SeqCst);
                        if p.graph_down.load(Ordering::SeqCst) || p.outage() {
                            let e = json!({"error": {"message": "An unexpected error has occurred.", "type": "OAuthException", "code": 2, "fbtrace_id": "x"}});
                            return (StatusCode::INTERNAL_SERVER_ERROR, Json(e));
                        }
                        if q.get("access_token").map(String::as_str) != Some(PAGE_TOKEN) {
                            let e = json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}});
                            return (StatusCode::BAD_REQUEST, Json(e));
                        }
                        let to = body["recipient"]["id"].as_str().unwrap_or_default().to_string();
                        if body["message"]["text"].as_str().is_some_and(|t| t.chars().count() > MAX_TEXT) {
                            let e = json!({"error": {"message": "(#100) Param message[text] must be UTF-8 encoded if it's a string and at most 2000 characters", "type": "OAuthException", "code": 100}});
                            return (StatusCode::BAD_REQUEST, Json(e));
                        }
                        if to.starts_with("blocked") {
                            let e = json!({"error": {"message": "This person isn't available right now.", "type": "OAuthException", "code": 551, "error_subcode": 1545041}});
                            return (StatusCode::BAD_REQUEST, Json(e));
                        }
                        let mut sent = p.sent.lock().unwrap();
                        sent.push(Sent {
                            channel: "messenger",
                            path: format!("/v21.0/{page}/messages"),
                            query: q,
                            access_token: None,
                            body,
                        });
                        let id = format!("m_{}", sent.len());
                        (StatusCode::OK, Json(json!({"recipient_id": to, "message_id": id})))
                    },
                ),
            )
            .route(
                "/v3.0/oa/message/cs",
                post(|State(p): S, headers: HeaderMap, Json(body): Json<Value>| async move {
                    p.attempts.fetch_add(1, Ordering::SeqCst);
                    if p.outage() {
                        return Json(json!({"error": -32, "message": "The request exceeded the rate limit"}));
                    }
                    let token = headers
                        .get("access_token")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from);
                    if token.as_deref() != Some(p.zalo_token.lock().unwrap().as_str()) {
                        return Json(json!({"error": -216, "message": "Access token is invalid"}));
                    }
                    if body["message"]["text"].as_str().is_some_and(|t| t.chars().count() > MAX_TEXT) {
                        return Json(json!({"error": -201, "message": "Parameters are invalid"}));
                    }
                    let attachment = &body["message"]["attachment"];
                    if !attachment.is_null() {
                        // A non-empty string of at most `max` characters.
                        let text = |v: &Value, max: usize| {
                            v.as_str().is_some_and(|t| !t.is_empty() && t.chars().count() <= max)
                        };
                        let buttons = attachment["payload"]["buttons"].as_array();
                        let valid = attachment["type"] == "template"
                            && buttons.is_some_and(|b| {
                                !b.is_empty()
                                    && b.len() <= 5
                                    && b.iter().all(|x| {
                                        x["type"] == "oa.query.show"
                                            && text(&x["title"], 100)
                                            && text(&x["payload"], 1000)
                                    })
                            });
                        if !valid || p.zalo_no_buttons.load(Ordering::SeqCst) {
                            return Json(json!({"error": -201, "message": "Parameters are invalid"}));
                        }
                    }
                    let mut sent = p.sent.lock().unwrap();
                    sent.push(Sent {
                        channel: "zalo",
                        path: "/v3.0/oa/message/cs".into(),
                        query: HashMap::new(),
                        access_token: token,
                        body: body.clone(),
                    });
                    Json(json!({"error": 0, "message": "Success",
                                "data": {"message_id": format!("z_{}", sent.len()), "user_id": body["recipient"]["user_id"]}}))
                }),
            )
            .route(
                "/v4/oa/access_token",
                post(
                    |State(p): S, headers: HeaderMap, Form(f): Form<HashMap<String, String>>| async move {
                        let secret_ok = headers.get("secret_key").and_then(|v| v.to_str().ok())
                            == Some(ZALO_APP_SECRET);
                        let mut refresh = p.zalo_refresh.lock().unwrap();
                        let ok = secret_ok
                            && f.get("grant_type").map(String::as_str) == Some("refresh_token")
                            && f.get("app_id").map(String::as_str) == Some(ZALO_APP)
                            && f.get("refresh_token") == Some(&*refresh);
                        if !ok {
                            return Json(json!({"error": -14014, "error_name": "Invalid refresh token", "error_description": "refresh token is invalid"}));
                        }
                        let n = p.refreshes.fetch_add(1, Ordering::SeqCst) + 2;
                        *p.zalo_token.lock().unwrap() = format!("zalo-token-{n}");
                        *refresh = format!("zalo-refresh-{n}");
                        Json(json!({"access_token": format!("zalo-token-{n}"), "refresh_token": *refresh, "expires_in": "90000"}))
                    },
                ),
            )
            .with_state(p.clone());
        rt().spawn(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
        p
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    pub fn sent_to(&self, recipient: &str) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.recipient() == recipient)
            .collect()
    }

    /// Waits until `recipient` has received at least `n` messages.
    pub fn wait_for(&self, recipient: &str, n: usize) -> Vec<Sent> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.sent_to(recipient);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{recipient} got {} of {n} messages: {:?}",
                got.len(),
                self.sent()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CSKH_MESSENGER_APP_SECRET", APP_SECRET.into()),
            ("CSKH_MESSENGER_VERIFY_TOKEN", VERIFY_TOKEN.into()),
            ("CSKH_MESSENGER_PAGE_TOKEN", PAGE_TOKEN.into()),
            ("CSKH_MESSENGER_API_BASE", format!("{}/v21.0", self.base)),
            ("CSKH_ZALO_APP_ID", ZALO_APP.into()),
            ("CSKH_ZALO_OA_SECRET", OA_SECRET.into()),
            ("CSKH_ZALO_APP_SECRET", ZALO_APP_SECRET.into()),
            ("CSKH_ZALO_ACCESS_TOKEN", "zalo-token-1".into()),
            ("CSKH_ZALO_REFRESH_TOKEN", "zalo-refresh-1".into()),
            ("CSKH_ZALO_API_BASE", self.base.clone()),
            ("CSKH_ZALO_OAUTH_BASE", self.base.clone()),
            ("CSKH_OUTBOX_RETRY_BASE_MS", "200".into()),
            ("CSKH_BUSINESS_HOURS", "00:00-00:00".into()),
        ]
    }
}

fn start(data: &Path, p: &Platform) -> Server {
    let env = p.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(data, &env)
}

/// Runs a Python snippet with `body` on stdin and returns its output.
pub fn python(code: &str, body: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `sha256=` HMAC of the body, by Python's hmac module.
fn meta_signature(secret: &str, body: &[u8]) -> String {
    let hex = python(
        &format!("import hmac,hashlib,sys; print(hmac.new({secret:?}.encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())"),
        body,
    );
    format!("sha256={hex}")
}

/// Zalo's mac (plain SHA-256 of app id + body + timestamp + OA secret), by hashlib.
fn zalo_mac(secret: &str, body: &[u8], timestamp: &str) -> String {
    python(
        &format!("import hashlib,sys; print(hashlib.sha256({ZALO_APP:?}.encode() + sys.stdin.buffer.read() + {timestamp:?}.encode() + {secret:?}.encode()).hexdigest())"),
        body,
    )
}

fn post(server: &Server, path: &str, header: Option<(&str, String)>, body: &[u8]) -> (u16, String) {
    rt().block_on(async {
        let mut req = reqwest::Client::new()
            .post(server.url(path))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

fn messenger_body(user: &str, mid: &str, text: &str) -> Vec<u8> {
    json!({"object": "page", "entry": [{"id": PAGE, "time": 1764000000000i64, "messaging": [
        {"sender": {"id": user}, "recipient": {"id": PAGE}, "timestamp": 1764000000000i64,
         "message": {"mid": mid, "text": text}}]}]})
    .to_string()
    .into_bytes()
}

fn messenger_quick_reply(user: &str, mid: &str, payload: &str) -> Vec<u8> {
    json!({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [
        {"sender": {"id": user}, "recipient": {"id": PAGE}, "timestamp": 1,
         "message": {"mid": mid, "text": payload, "quick_reply": {"payload": payload}}}]}]})
    .to_string()
    .into_bytes()
}

fn send_messenger(server: &Server, body: &[u8]) -> u16 {
    let sig = meta_signature(APP_SECRET, body);
    post(
        server,
        "/webhooks/messenger",
        Some(("X-Hub-Signature-256", sig)),
        body,
    )
    .0
}

fn zalo_body(user: &str, msg_id: &str, text: &str, at_ms: i64) -> (Vec<u8>, String) {
    let ts = at_ms.to_string();
    let body = json!({"app_id": ZALO_APP, "user_id_by_app": format!("app-{user}"), "event_name": "user_send_text",
                      "timestamp": ts, "sender": {"id": user}, "recipient": {"id": "oa-1"},
                      "message": {"msg_id": msg_id, "text": text}})
    .to_string()
    .into_bytes();
    (body, ts)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn send_zalo(server: &Server, user: &str, msg_id: &str, text: &str) -> u16 {
    let (body, ts) = zalo_body(user, msg_id, text, now_ms());
    let mac = zalo_mac(OA_SECRET, &body, &ts);
    post(
        server,
        "/webhooks/zalo",
        Some(("X-ZEvent-Signature", format!("mac={mac}"))),
        &body,
    )
    .0
}

fn messages_with(data: &Path, ids: &[&str]) -> i64 {
    let list = ids
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    db_count(
        data,
        &format!("SELECT COUNT(*) FROM messages WHERE channel_message_id IN ({list})"),
    )
}

#[test]
fn messenger_and_zalo_answer_once_and_refuse_forgeries() {
    let p = Platform::start();
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &p);

    // Meta's subscription handshake.
    let q = |token: &str| {
        crate::server::ureq_get(&server.url(&format!(
            "/webhooks/messenger?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        )))
        .unwrap()
    };
    assert_eq!(q(VERIFY_TOKEN), (200, "1158201444".to_string()));
    assert_eq!(q("wrong").0, 403);

    // A signed Messenger text, delivered three times: answered once, in Vietnamese.
    let body = messenger_body("psid-1", "mid-1", "Phí ship ra Hà Nội bao nhiêu vậy shop?");
    for _ in 0..3 {
        assert_eq!(send_messenger(&server, &body), 200);
    }
    let got = p.wait_for("psid-1", 1);
    let s = &got[0];
    assert_eq!(s.channel, "messenger");
    assert_eq!(s.path, format!("/v21.0/{PAGE}/messages"));
    assert_eq!(
        s.query.get("access_token").map(String::as_str),
        Some(PAGE_TOKEN)
    );
    assert_eq!(s.body["messaging_type"], "RESPONSE");
    assert!(s.text().contains("25.000đ"), "{s:?}");
    assert_eq!(messages_with(data.path(), &["mid-1"]), 1);

    // Forged, unsigned, stale: refused, nothing stored, nothing sent.
    let forged = messenger_body("psid-f", "mid-f1", "Phí ship bao nhiêu");
    let sig = meta_signature("not-the-secret", &forged);
    let r = post(
        &server,
        "/webhooks/messenger",
        Some(("X-Hub-Signature-256", sig)),
        &forged,
    );
    assert_eq!(r.0, 403, "{r:?}");
    let unsigned = messenger_body("psid-f", "mid-f2", "Phí ship bao nhiêu");
    assert_eq!(post(&server, "/webhooks/messenger", None, &unsigned).0, 401);
    // A signature captured from an earlier delivery, replayed on a new body.
    let old_sig = meta_signature(APP_SECRET, &body);
    let replay = messenger_body("psid-f", "mid-f3", "Phí ship bao nhiêu");
    let r = post(
        &server,
        "/webhooks/messenger",
        Some(("X-Hub-Signature-256", old_sig)),
        &replay,
    );
    assert_eq!(r.0, 403);

    // One event with nothing to answer (invisible characters only) does not cost the
    // rest of its batch an answer; a page's "Get Started" tap is a greeting.
    let batch = json!({"object": "page", "entry": [
        {"id": PAGE, "time": 1, "messaging": [
            {"sender": {"id": "psid-b1"}, "recipient": {"id": PAGE}, "timestamp": 1,
             "message": {"mid": "mid-b1", "text": "Phí ship ra Hà Nội bao nhiêu vậy shop?"}}]},
        {"id": PAGE, "time": 1, "messaging": [
            {"sender": {"id": "psid-b2"}, "recipient": {"id": PAGE}, "timestamp": 1,
             "message": {"mid": "mid-b2", "text": "\u{200b}\u{200b}"}}]},
        {"id": PAGE, "time": 1, "messaging": [
            {"sender": {"id": "psid-b3"}, "recipient": {"id": PAGE}, "timestamp": 1,
             "postback": {"title": "Bắt đầu", "payload": "GET_STARTED"}}]},
    ]})
    .to_string()
    .into_bytes();
    assert_eq!(send_messenger(&server, &batch), 200);
    assert!(p.wait_for("psid-b1", 1)[0].text().contains("25.000đ"));
    assert!(p.wait_for("psid-b3", 1)[0].text().contains("em chào"));
    assert_eq!(messages_with(data.path(), &["mid-b2"]), 0);

    // A menu whose choices are longer than Messenger's 20-character buttons: the
    // text lists them in full, numbered; each button starts with its number and
    // sends the whole choice.
    assert_eq!(
        send_messenger(&server, &messenger_body("psid-m", "mid-m1", "bảo hành")),
        200
    );
    let got = p.wait_for("psid-m", 1);
    let quick = got[0].body["message"]["quick_replies"]
        .as_array()
        .unwrap()
        .clone();
    assert!(quick.len() >= 2, "{:?}", got[0]);
    for (n, q) in quick.iter().enumerate() {
        let (title, payload) = (q["title"].as_str().unwrap(), q["payload"].as_str().unwrap());
        assert!(title.chars().count() <= 20, "{title}");
        assert!(title.starts_with(&format!("{}. ", n + 1)), "{title}");
        assert!(
            got[0].text().contains(&format!("{}. {payload}", n + 1)),
            "{:?}",
            got[0]
        );
    }

    // Zalo: the first send meets an expired token (-216): one refresh, then success.
    assert_eq!(
        send_zalo(
            &server,
            "zalo-user-1",
            "zmsg-1",
            "shop ơi đổi trả hàng trong bao nhiêu ngày"
        ),
        200
    );
    let got = p.wait_for("zalo-user-1", 1);
    assert_eq!(
        (got[0].channel, got[0].path.as_str()),
        ("zalo", "/v3.0/oa/message/cs")
    );
    assert_eq!(got[0].access_token.as_deref(), Some("zalo-token-2"));
    assert!(got[0].shown().contains("7 ngày"), "{:?}", got[0]);
    assert_eq!(p.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM channel_tokens WHERE channel = 'zalo' AND access_token = 'zalo-token-2' AND refresh_token = 'zalo-refresh-2'"),
        1
    );
    // Repeated three times: one reply; the refreshed token keeps working.
    for _ in 0..3 {
        assert_eq!(
            send_zalo(
                &server,
                "zalo-user-2",
                "zmsg-2",
                "cho em hỏi phí ship đi Đà Nẵng"
            ),
            200
        );
    }
    p.wait_for("zalo-user-2", 1);

    // Zalo forgeries: wrong key, no signature, a correctly signed but old event.
    let (b, ts) = zalo_body("zalo-f", "zmsg-f1", "phí ship", now_ms());
    let wrong = zalo_mac("not-the-key", &b, &ts);
    assert_eq!(
        post(
            &server,
            "/webhooks/zalo",
            Some(("X-ZEvent-Signature", format!("mac={wrong}"))),
            &b
        )
        .0,
        403
    );
    let (b, _) = zalo_body("zalo-f", "zmsg-f2", "phí ship", now_ms());
    assert_eq!(post(&server, "/webhooks/zalo", None, &b).0, 401);
    let (b, ts) = zalo_body("zalo-f", "zmsg-f3", "phí ship", now_ms() - 3_600_000);
    let old = zalo_mac(OA_SECRET, &b, &ts);
    assert_eq!(
        post(
            &server,
            "/webhooks/zalo",
            Some(("X-ZEvent-Signature", old)),
            &b
        )
        .0,
        403
    );

    // Other Zalo events are acknowledged and ignored.
    let ts = now_ms().to_string();
    let seen = json!({"app_id": ZALO_APP, "event_name": "user_seen_message", "timestamp": ts,
                      "sender": {"id": "zalo-user-1"}, "recipient": {"id": "oa-1"},
                      "message": {"msg_ids": ["z_1"]}})
    .to_string()
    .into_bytes();
    let mac = zalo_mac(OA_SECRET, &seen, &ts);
    assert_eq!(
        post(
            &server,
            "/webhooks/zalo",
            Some(("X-ZEvent-Signature", mac)),
            &seen
        )
        .0,
        200
    );

    // Give any wrongly queued reply time to show up, then check exact counts.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(p.sent_to("psid-1").len(), 1);
    assert_eq!(p.sent_to("zalo-user-2").len(), 1);
    assert!(p.sent_to("psid-f").is_empty() && p.sent_to("zalo-f").is_empty());
    assert_eq!(
        messages_with(
            data.path(),
            &["mid-f1", "mid-f2", "mid-f3", "zmsg-f1", "zmsg-f2", "zmsg-f3"]
        ),
        0
    );
    assert_eq!(p.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(
        db_count(
            data.path(),
            "SELECT COUNT(*) FROM messages WHERE channel = 'zalo' AND direction = 'in'"
        ),
        2
    );
}

#[test]
fn outbox_delivers_every_reply_once_after_an_outage_and_a_restart() {
    let p = Platform::start();
    p.graph_down.store(true, Ordering::SeqCst);
    let data = tempfile::tempdir().unwrap();
    create_agent(data.path(), "lan", "mat-khau-an-toan");
    let server = start(data.path(), &p);
    assert_eq!(
        send_messenger(
            &server,
            &messenger_body("psid-r", "mid-r1", "Phí ship ra Hà Nội bao nhiêu vậy shop?")
        ),
        200
    );
    assert_eq!(
        send_messenger(
            &server,
            &messenger_body(
                "psid-r",
                "mid-r2",
                "shop có cho kiểm tra hàng trước khi nhận không"
            )
        ),
        200
    );
    let expected = |data: &Path| {
        db_count(data, "SELECT COUNT(*) FROM outbox o JOIN conversations c ON c.id = o.conversation_id WHERE c.channel_user_id = 'psid-r'")
    };
    // Both turns answered and queued; the platform keeps failing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while expected(data.path()) < 2 || p.attempts.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "replies were not attempted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.stop().success());
    let queued = expected(data.path());
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts > 0"),
        db_count(data.path(), "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND message_id = (SELECT MIN(message_id) FROM outbox)"),
        "only the oldest message is retried while it fails (order is kept)"
    );
    assert!(p.sent_to("psid-r").is_empty());

    // The platform recovers; after a restart every queued reply arrives once, in order.
    p.graph_down.store(false, Ordering::SeqCst);
    let server = start(data.path(), &p);
    let got = p.wait_for("psid-r", queued as usize);
    std::thread::sleep(Duration::from_millis(1000));
    let got_after = p.sent_to("psid-r");
    assert_eq!(got_after.len(), got.len(), "no reply is sent twice");
    assert_eq!(got.len() as i64, queued);
    assert!(got[0].text().contains("25.000đ"), "{:?}", got[0]);
    assert_eq!(
        db_count(
            data.path(),
            "SELECT COUNT(*) FROM outbox WHERE status = 'sent'"
        ),
        queued
    );

    // A permanent refusal is recorded and shown to agents.
    assert_eq!(
        send_messenger(
            &server,
            &messenger_body(
                "blocked-1",
                "mid-b1",
                "Phí ship ra Hà Nội bao nhiêu vậy shop?"
            )
        ),
        200
    );
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let (s, v) = call(&server, "GET", "/api/v1/outbox/failed", Some(&token), None);
        assert_eq!(s, 200);
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            break v;
        }
        assert!(Instant::now() < deadline, "failure not visible");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(failed[0]["channel"], "messenger");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("551"),
        "{failed}"
    );
}

#[test]
fn one_customer_across_zalo_and_messenger() {
    let p = Platform::start();
    let data = tempfile::tempdir().unwrap();
    import_orders(data.path());
    create_agent(data.path(), "lan", "mat-khau-an-toan");
    let server = start(data.path(), &p);

    // Verified on Zalo.
    send_zalo(&server, "zalo-lan", "z-1", "kiểm tra giúp em đơn DH240517");
    assert!(p.wait_for("zalo-lan", 1)[0]
        .text()
        .contains("số điện thoại"));
    send_zalo(&server, "zalo-lan", "z-2", "sđt của em là 0912345678");
    let got = p.wait_for("zalo-lan", 2);
    assert!(got[1].text().contains("GHN8K2M4Q7"), "{:?}", got[1]);

    // Then on Messenger with the same phone: one customer.
    send_messenger(
        &server,
        &messenger_body("psid-lan", "m-1", "đơn DH240517 của mình giao tới đâu rồi"),
    );
    assert!(p.wait_for("psid-lan", 1)[0]
        .text()
        .contains("số điện thoại"));
    send_messenger(&server, &messenger_body("psid-lan", "m-2", "0912 345 678"));
    assert!(p.wait_for("psid-lan", 2)[1].text().contains("GHN8K2M4Q7"));
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(DISTINCT customer_id) FROM identities WHERE channel_user_id IN ('zalo-lan', 'psid-lan')"),
        1
    );
    // An unverified claim links nothing.
    send_messenger(
        &server,
        &messenger_body("psid-other", "m-o1", "số của mình là 0912345678"),
    );
    p.wait_for("psid-other", 1);
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(DISTINCT customer_id) FROM identities WHERE channel_user_id IN ('zalo-lan', 'psid-other')"),
        2
    );

    // A hand-off on Messenger: the agent sees both channels' transcripts.
    send_messenger(
        &server,
        &messenger_body("psid-lan", "m-3", "cho mình gặp nhân viên"),
    );
    p.wait_for("psid-lan", 3);
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let (s, list) = call(&server, "GET", "/api/v1/handoffs", Some(&token), None);
    assert_eq!(s, 200);
    let ticket = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["customer"]["identities"].as_array().unwrap().len() == 2)
        .cloned()
        .unwrap_or_else(|| panic!("no linked ticket: {list}"));
    let history = ticket["customer"]["history"].as_array().unwrap();
    let channels: Vec<&str> = history
        .iter()
        .map(|h| h["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, vec!["zalo", "messenger"]);
    let said: Vec<String> = history
        .iter()
        .flat_map(|h| h["messages"].as_array().unwrap().iter())
        .filter(|m| m["direction"] == "in")
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        said.contains(&"kiểm tra giúp em đơn DH240517".to_string()),
        "{said:?}"
    );
    assert!(
        said.contains(&"cho mình gặp nhân viên".to_string()),
        "{said:?}"
    );
    assert_eq!(ticket["customer"]["verified_phone"], "0912345678");
    let id = ticket["id"].as_str().unwrap().to_string();

    // The agent's reply goes out through Messenger; outside 24 h it carries the
    // HUMAN_AGENT tag; past 7 days the console is told it cannot be delivered.
    let (s, _) = call(
        &server,
        "POST",
        &format!("/api/v1/handoffs/{id}/reply"),
        Some(&token),
        Some(json!({"text": "Dạ em là Lan bên CSKH, em kiểm tra đơn cho anh/chị ngay ạ."})),
    );
    assert_eq!(s, 200);
    let got = p.wait_for("psid-lan", 4);
    assert!(got[3].text().starts_with("Dạ em là Lan"));
    assert_eq!(got[3].body["messaging_type"], "RESPONSE");
    let conv = ticket["conversation_id"].as_str().unwrap();
    let age = |days: i64| {
        let at = (chrono::Utc::now() - chrono::Duration::days(days))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        db_exec(data.path(), &format!("UPDATE messages SET created_at = '{at}' WHERE conversation_id = '{conv}' AND direction = 'in'"));
    };
    age(3);
    let (s, _) = call(
        &server,
        "POST",
        &format!("/api/v1/handoffs/{id}/reply"),
        Some(&token),
        Some(json!({"text": "Dạ đơn của anh/chị đã tới bưu cục ạ."})),
    );
    assert_eq!(s, 200);
    let got = p.wait_for("psid-lan", 5);
    assert_eq!(got[4].body["messaging_type"], "MESSAGE_TAG");
    assert_eq!(got[4].body["tag"], "HUMAN_AGENT");
    age(8);
    let before = db_count(data.path(), "SELECT COUNT(*) FROM messages");
    let (s, v) = call(
        &server,
        "POST",
        &format!("/api/v1/handoffs/{id}/reply"),
        Some(&token),
        Some(json!({"text": "Dạ anh/chị còn cần hỗ trợ gì không ạ?"})),
    );
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "undeliverable");
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM messages"),
        before,
        "nothing stored"
    );
    age(0);

    // Resolve: the CSAT question arrives with 1-5 quick replies; the tap is recorded.
    let (s, _) = call(
        &server,
        "POST",
        &format!("/api/v1/handoffs/{id}/resolve"),
        Some(&token),
        Some(json!({})),
    );
    assert_eq!(s, 200);
    let got = p.wait_for("psid-lan", 6);
    let quick: Vec<&str> = got[5].body["message"]["quick_replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["payload"].as_str().unwrap())
        .collect();
    assert_eq!(quick, vec!["1", "2", "3", "4", "5"]);
    send_messenger(&server, &messenger_quick_reply("psid-lan", "m-4", "5"));
    let got = p.wait_for("psid-lan", 7);
    assert!(got[6].text().contains("cảm ơn"), "{:?}", got[6]);
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM tickets WHERE csat = 5"),
        1
    );
}

#[test]
fn zalo_choices_are_buttons_and_a_tap_is_the_customers_answer() {
    let p = Platform::start();
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &p);

    // Too vague to answer outright: the bot offers its best entries as buttons.
    assert_eq!(send_zalo(&server, "zalo-btn", "zb-1", "bảo hành"), 200);
    let got = p.wait_for("zalo-btn", 1);
    let message = &got[0].body["message"];
    assert!(!got[0].text().is_empty(), "{message}");
    assert!(
        !got[0].text().contains("\n1. "),
        "no numbered list: {message}"
    );
    let buttons = message["attachment"]["payload"]["buttons"]
        .as_array()
        .unwrap();
    assert!((2..=3).contains(&buttons.len()), "{message}");
    assert!(buttons.iter().all(|b| b["type"] == "oa.query.show"));
    // The customer taps the first one: Zalo sends its payload as their message.
    let choice = buttons[0]["payload"].as_str().unwrap().to_string();
    assert_eq!(send_zalo(&server, "zalo-btn", "zb-2", &choice), 200);
    let got = p.wait_for("zalo-btn", 2);
    assert!(
        got[1].body["message"]["attachment"].is_null(),
        "{:?}",
        got[1]
    );
    assert!(
        got[1].text().to_lowercase().contains("bảo hành"),
        "the chosen entry is answered: {:?}",
        got[1]
    );
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.channel_user_id = 'zalo-btn' AND m.direction = 'in'"),
        2
    );

    // An OA that cannot send buttons still gets the reply, choices numbered.
    p.zalo_no_buttons.store(true, Ordering::SeqCst);
    assert_eq!(send_zalo(&server, "zalo-btn", "zb-3", "đổi trả"), 200);
    let got = p.wait_for("zalo-btn", 3);
    assert!(
        got[2].body["message"]["attachment"].is_null(),
        "{:?}",
        got[2]
    );
    let text = got[2].text();
    assert!(text.contains("\n1. ") && text.contains("\n2. "), "{text}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(p.sent_to("zalo-btn").len(), 3, "sent once");
    assert_eq!(
        db_count(
            data.path(),
            "SELECT COUNT(*) FROM outbox WHERE status = 'sent'"
        ),
        3
    );
}

/// An answer longer than a platform's 2,000-character message limit reaches the
/// customer whole, in order, in several messages cut between sentences; a customer's
/// message over that length is kept and answered.
#[test]
fn a_long_answer_arrives_whole_in_several_messages() {
    let p = Platform::start();
    let data = tempfile::tempdir().unwrap();
    let kb = data.path().join("knowledge");
    copy_dir(&root().join("knowledge"), &kb);
    let paragraph = |topic: &str| {
        format!(
            "Với {topic}, anh/chị lau sạch bụi bằng khăn mềm hơi ẩm sau mỗi lần dùng, \
             để khô tự nhiên ở nơi thoáng mát, tránh ánh nắng trực tiếp và máy sấy. \
             Mỗi tháng một lần, anh/chị thoa một lớp kem dưỡng da không màu, để \
             khoảng mười lăm phút rồi lau lại bằng khăn khô cho da mềm và không nứt. \
             Khi cất lâu ngày, anh/chị nhồi giấy mềm vào bên trong để giữ dáng, cho \
             vào túi vải đi kèm và đặt thêm gói hút ẩm, không bọc kín trong túi nilon \
             vì da cần thoáng khí. Nếu bị dính nước mưa, anh/chị thấm khô ngay bằng \
             khăn, không hơ lửa hay phơi nắng gắt vì da sẽ co và bong màu. Vết bẩn dầu \
             mỡ nên mang đến cửa hàng Mây Xanh để được làm sạch miễn phí trong thời \
             gian bảo hành ạ."
        )
    };
    let answer = [
        "túi xách da",
        "giày da",
        "ví da",
        "thắt lưng da",
        "áo khoác da",
        "dây đồng hồ da",
    ]
    .map(paragraph)
    .join("\n\n");
    let n = answer.chars().count();
    assert!(n > MAX_TEXT * 3 / 2, "{n}");
    std::fs::write(
        kb.join("bao-quan-do-da.md"),
        format!(
            "# Bảo quản\n\n## Hướng dẫn bảo quản đồ da như thế nào? {{#bao-quan-do-da}}\n\
             ? cách giữ túi da giày da bền đẹp\n\n{answer}\n"
        ),
    )
    .unwrap();
    let mut env = p.env();
    env.push(("CSKH_KNOWLEDGE", kb.to_str().unwrap().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(data.path(), &env);

    let question = "hướng dẫn bảo quản đồ da như thế nào ạ";
    let norm = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let check = |got: &[Sent]| {
        assert!(got.len() >= 2, "{got:?}");
        let texts: Vec<String> = got.iter().map(Sent::text).collect();
        for t in &texts {
            assert!(t.chars().count() <= MAX_TEXT, "{t}");
            assert!(t.ends_with('.'), "cut inside a sentence: {t}");
        }
        assert_eq!(norm(&texts.join(" ")), norm(&answer));
    };
    assert_eq!(send_zalo(&server, "zalo-long", "zl-1", question), 200);
    p.wait_for("zalo-long", 2);
    std::thread::sleep(Duration::from_millis(500));
    check(&p.sent_to("zalo-long"));
    assert_eq!(
        send_messenger(&server, &messenger_body("fb-long", "fl-1", question)),
        200
    );
    p.wait_for("fb-long", 2);
    std::thread::sleep(Duration::from_millis(500));
    check(&p.sent_to("fb-long"));

    // An outage after the first part: the retries send only the parts not yet
    // delivered, so the customer reads each part once.
    let parts = p.sent_to("fb-long").len();
    for (user, send) in [
        (
            "fb-cut",
            Box::new(|| send_messenger(&server, &messenger_body("fb-cut", "fc-1", question)))
                as Box<dyn Fn() -> u16>,
        ),
        (
            "zalo-cut",
            Box::new(|| send_zalo(&server, "zalo-cut", "zc-1", question)),
        ),
    ] {
        *p.accept_then_fail.lock().unwrap() = Some(1);
        let before = p.attempts.load(Ordering::SeqCst);
        assert_eq!(send(), 200);
        p.wait_for(user, 1);
        let deadline = Instant::now() + Duration::from_secs(20);
        while p.attempts.load(Ordering::SeqCst) < before + 4 {
            assert!(Instant::now() < deadline, "no retries seen");
            std::thread::sleep(Duration::from_millis(50));
        }
        *p.accept_then_fail.lock().unwrap() = None;
        p.wait_for(user, parts);
        std::thread::sleep(Duration::from_millis(800));
        let got = p.sent_to(user);
        assert_eq!(got.len(), parts, "{user}: {got:?}");
        check(&got);
    }

    // A customer's own long message (a complaint with the whole story) is kept
    // whole and answered: the platforms' limits are theirs to enforce, and a signed
    // message refused here would be lost.
    let story = format!(
        "{} Vậy shop hướng dẫn em bảo quản đồ da như thế nào ạ?",
        "Em mua túi da ở shop tháng trước, dùng được ít hôm thì bị mưa ướt. ".repeat(40)
    );
    assert!(story.chars().count() > 2000);
    assert_eq!(send_zalo(&server, "zalo-story", "zs-1", &story), 200);
    p.wait_for("zalo-story", 1);
    assert_eq!(
        db_count(
            data.path(),
            &format!(
                "SELECT COUNT(*) FROM messages WHERE channel_message_id = 'zs-1' \
                 AND length(text) = {}",
                story.chars().count()
            )
        ),
        1
    );
    assert!(server.stop().success());
}
