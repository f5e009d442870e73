//! `cskh serve` as a real process on a loopback port, driven over HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

pub struct Server {
    child: Child,
    pub base: String,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `cskh serve` on a free port with `data` and waits until `/ready`.
    pub fn start(data: &Path, env: &[(&str, &str)]) -> Server {
        require_model();
        let mut cmd = cskh();
        cmd.args(["serve", "--port", "0", "--data"])
            .arg(data)
            .env("CSKH_LOG", "info,cskh=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn cskh serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(addr) = line.split("listening on ").nth(1) {
                        let _ = tx.send(addr.trim().to_string());
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("server did not start: {}", log.lock().unwrap()));
        let mut server = Server { child, base, log };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("server exited with {status}: {}", self.log.lock().unwrap());
            }
            if let Ok(r) = ureq_get(&format!("{}/ready", self.base)) {
                if r.0 == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "not ready: {}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends a Unix signal (`HUP`, `TERM`, …) to the server process.
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGTERM, then the exit status (graceful shutdown must exit 0).
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server ignored SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal blocking HTTP over the async client (the tests are plain #[test]s).
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn ureq_get(url: &str) -> Result<(u16, String), reqwest::Error> {
    rt().block_on(async {
        let r = client().get(url).send().await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await?))
    })
}

/// A GET with a bearer token, as text.
pub fn get_with_token(url: &str, token: &str) -> (u16, String) {
    rt().block_on(async {
        let r = client().get(url).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    })
}

pub fn post_raw(url: &str, body: Vec<u8>) -> (u16, Value) {
    rt().block_on(async {
        let r = client()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

pub struct Chat<'a> {
    server: &'a Server,
    user: String,
    n: usize,
}

impl<'a> Chat<'a> {
    pub fn new(server: &'a Server, user: &str) -> Self {
        Chat {
            server,
            user: user.to_string(),
            n: 0,
        }
    }

    pub fn say(&mut self, text: &str) -> Value {
        self.n += 1;
        let body = json!({"channel": "api", "user_id": self.user, "text": text,
                          "message_id": format!("{}-{}", self.user, self.n)});
        let (status, v) = post_raw(
            &self.server.url("/api/v1/messages"),
            body.to_string().into_bytes(),
        );
        assert_eq!(status, 200, "{text}: {v}");
        v
    }
}

pub fn reply_text(v: &Value) -> String {
    v["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// One JSON request with an optional bearer token: (status, JSON or the text).
pub fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    rt().block_on(async {
        let c = client();
        let mut req = match method {
            "GET" => c.get(server.url(path)),
            _ => c.post(server.url(path)),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

/// Signs an agent in and returns the bearer token.
pub fn agent_login(server: &Server, username: &str, password: &str) -> String {
    let (s, v) = call(
        server,
        "POST",
        "/api/v1/agent/login",
        None,
        Some(json!({"username": username, "password": password})),
    );
    assert_eq!(s, 200, "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// Writes to the server's real SQLite file (to move times for clock-based checks).
pub fn db_exec(data: &Path, sql: &str) {
    let url = format!("sqlite://{}", data.join("cskh.db").display());
    rt().block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    });
}

/// Reads the server's real SQLite file.
pub fn db_count(data: &Path, sql: &str) -> i64 {
    let url = format!("sqlite://{}?mode=ro", data.join("cskh.db").display());
    rt().block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut c).await.unwrap();
        n
    })
}

pub fn import_orders(data: &Path) {
    let o = run(cskh()
        .args(["orders", "import", "demo/orders.jsonl", "--data"])
        .arg(data));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("imported 50 orders"), "{}", stderr(&o));
}

/// `cskh orders import` checks every line before writing any: a value the bot would
/// repeat to a customer, or a code no customer's message is read as, stops the import
/// with `file:line` and the field, and nothing is imported.
#[test]
fn orders_import_refuses_bad_values_and_imports_nothing() {
    let data = tempfile::tempdir().unwrap();
    let good = r#"{"code": "DH900001", "customer_name": "Lan", "phone": "0912345678", "status": "shipping", "total": 100000, "eta": "2026-11-30", "created_at": "2026-11-26T10:00:00+07:00"}"#;
    let file = data.path().join("orders.jsonl");
    for (bad, line, field) in [
        (good.replace("0912345678", "abc"), 2, "`phone`"),
        (good.replace("100000", "-5"), 2, "`total`"),
        (
            good.replace("2026-11-26T10:00:00+07:00", "yesterday"),
            2,
            "`created_at`",
        ),
        (good.replace("2026-11-30", "soon"), 2, "`eta`"),
        (good.replace("\"Lan\"", "\"\""), 2, "`customer_name`"),
        (good.replace("DH900001", "DH 900001"), 2, "`code`"),
        (good.replace("DH900001", "SO-900001"), 2, "`code`"),
        (good.to_string(), 2, "also on line 1"),
    ] {
        // The bad line second, then a good one: nothing of either is imported.
        let other = good.replace("DH900001", "DH900002");
        let src = format!("{good}\n{bad}\n{}\n", other.replace("DH900002", "DH900003"));
        std::fs::write(&file, src.replace('\n', "\r\n")).unwrap();
        let o = run(cskh()
            .args(["orders", "import"])
            .arg(&file)
            .arg("--data")
            .arg(data.path()));
        assert!(!o.status.success(), "{bad}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("orders.jsonl:{line}: ")) && err.contains(field),
            "{bad}: {err}"
        );
        assert_eq!(
            db_count(data.path(), "SELECT COUNT(*) FROM orders"),
            0,
            "{err}"
        );
    }
    // A shop whose codes look otherwise configures the pattern, and they import.
    std::fs::write(&file, good.replace("DH900001", "SO-900001")).unwrap();
    let o = run(cskh()
        .env("CSKH_ORDER_CODE_PATTERN", r"(?i)\bSO-[0-9]{6}\b")
        .args(["orders", "import"])
        .arg(&file)
        .arg("--data")
        .arg(data.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(db_count(data.path(), "SELECT COUNT(*) FROM orders"), 1);
    // The demo's 50 orders pass.
    import_orders(data.path());
    assert_eq!(db_count(data.path(), "SELECT COUNT(*) FROM orders"), 51);
}

/// Guessing a phone's last four digits from ever new user ids: the order code locks
/// after five failures in any conversations, and then not even the right phone opens
/// it; the customer goes to a person.
#[test]
fn an_order_locks_after_repeated_failed_verifications_across_customers() {
    let data = tempfile::tempdir().unwrap();
    import_orders(data.path());
    let server = Server::start(data.path(), &[]);
    let mut guesses = 0;
    for user in ["doan-1", "doan-2"] {
        let mut chat = Chat::new(&server, user);
        chat.say("kiểm tra đơn DH240517");
        for last4 in ["1111", "2222", "3333"] {
            if guesses == 5 {
                break;
            }
            let r = chat.say(&format!("4 số cuối là {last4}"));
            assert!(!reply_text(&r).contains("GHN8K2M4Q7"), "{r}");
            guesses += 1;
        }
    }
    let mut owner = Chat::new(&server, "chu-don-that");
    owner.say("kiểm tra đơn DH240517");
    let r = owner.say("số điện thoại 0912345678");
    assert!(!reply_text(&r).contains("GHN8K2M4Q7"), "locked: {r}");
    assert_eq!(r["handoff"], true, "{r}");
    assert!(reply_text(&r).contains("nhân viên"), "{r}");
    // Another order is not affected.
    let mut other = Chat::new(&server, "khach-khac");
    other.say("kiểm tra đơn DH240127");
    let r = other.say("0977522239");
    assert!(reply_text(&r).contains("DH240127"), "{r}");
    assert_eq!(r["handoff"], false, "{r}");
}

/// What customers do around an order (QA's fifth pass): another question in the
/// same message, an order asked about again without its code, a question asked
/// before giving the phone, codes typed loosely, an emoji for "ok", a follow-up while
/// a menu shows, a missing item reported with the order.
#[test]
fn orders_are_remembered_and_the_other_questions_of_an_order_message_answered() {
    let data = tempfile::tempdir().unwrap();
    import_orders(data.path());
    let server = Server::start(data.path(), &[]);
    let texts = |r: &Value| -> Vec<String> {
        r["replies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["text"].as_str().unwrap().to_string())
            .collect()
    };

    // A question beside an order is answered; the bot's own question comes last.
    let mut a = Chat::new(&server, "khach-hai-viec");
    let r = a.say("kiểm tra đơn DH240127 giúp em, với lại shop có xuất hóa đơn VAT không");
    let t = texts(&r);
    assert_eq!(t.len(), 2, "{r}");
    assert!(t[0].contains("mã số thuế"), "{r}");
    assert!(t[1].contains("số điện thoại"), "{r}");
    let r = a.say("0977522239");
    assert!(reply_text(&r).contains("DH240127"), "{r}");
    // Verified in this conversation: asked again without its code, it is that order.
    let r = a.say("đơn của em khi nào giao");
    assert!(reply_text(&r).contains("DH240127"), "{r}");
    assert!(!reply_text(&r).contains("mã đơn hàng"), "{r}");
    let r = a.say("đơn này ship bằng gì v shop");
    assert!(reply_text(&r).contains("GHTK"), "{r}");
    let r = a.say("bao giờ giao vậy shop");
    assert!(reply_text(&r).contains("DH240127"), "{r}");
    // A status and a question: the status first, then the answer; "đổi size được
    // không" asked apart from the order is a question, not a request to change it.
    let r = a.say(
        "đơn DH240127 giao tới đâu rồi shop? với lại áo mặc không vừa thì đổi size được không",
    );
    assert_eq!(r["handoff"], false, "{r}");
    let t = texts(&r);
    assert_eq!(t.len(), 2, "{r}");
    assert!(t[0].contains("DH240127"), "{r}");
    assert!(t[1].contains("size"), "{r}");

    // A question after a sentence naming the order is the order's own.
    let mut b = Chat::new(&server, "khach-hoi-giua");
    let r = b.say("e dat don DH240517 hom qua. bao gio giao a");
    assert_eq!(texts(&r).len(), 1, "{r}");
    assert!(reply_text(&r).contains("số điện thoại"), "{r}");
    // A question in between does not lose the verification: the phone opens it.
    let r = b.say("à mà shop ơi có ship cod không");
    assert_eq!(r["decision"]["faq_id"], "thanh-toan-cod", "{r}");
    let r = b.say("0912345678");
    assert!(reply_text(&r).contains("GHN8K2M4Q7"), "{r}");

    // Codes typed loosely; an emoji or "uk" is an acknowledgement.
    let mut c = Chat::new(&server, "khach-go-ma");
    let r = c.say("dh 240517");
    assert!(reply_text(&r).contains("số điện thoại"), "{r}");
    let r = c.say("5678");
    assert!(reply_text(&r).contains("GHN8K2M4Q7"), "{r}");
    let r = c.say("thế đơn 10088 khi nào giao");
    assert!(reply_text(&r).contains("#10088"), "{r}");
    for ack in ["👍", "uk", "🙏"] {
        let r = c.say(ack);
        assert_eq!(r["intent"], "thanks", "{r}");
        assert_eq!(r["handoff"], false, "{r}");
    }

    // A follow-up while a menu shows reads after the menu's question: a choice led
    // by the entry it adds, not a hand-off.
    let mut d = Chat::new(&server, "khach-menu");
    let r = d.say("đổi trả trong bao lâu vậy shop");
    assert_eq!(r["decision"]["decision"], "clarify", "{r}");
    let r = d.say("nếu hàng sale thì sao");
    assert_eq!(r["handoff"], false, "{r}");
    assert_eq!(
        r["decision"]["candidates"][0]["id"], "doi-tra-hang-giam-gia",
        "{r}"
    );

    // Words the bot cannot answer, sent with a photo: the photo is acknowledged and
    // a person offered, not "hỏi lại theo cách khác".
    let r = Chat::new(&server, "khach-gui-anh")
        .say("áo giao tới bị thế này nè shop\n[Ảnh] https://cdn.example.com/a.jpg");
    assert!(
        reply_text(&r).contains("đã nhận được tin nhắn và tệp"),
        "{r}"
    );
    assert!(!reply_text(&r).contains("cách khác"), "{r}");

    // What QA's sixth pass found these rules must not catch: an amount after
    // "đơn", a question about missing items, praise; a question after a sentence
    // naming the order is no request to change it.
    let mut f = Chat::new(&server, "khach-khong-phai-don");
    let r = f.say("đơn 299900 có freeship không");
    assert_ne!(r["intent"], "order_status", "{r}");
    let r = f.say("hàng giao thiếu thì shop có gửi bù không");
    assert_eq!(r["intent"], "faq", "{r}");
    let r = f.say("nhân viên hỗ trợ nhanh quá");
    assert_eq!(r["intent"], "thanks", "{r}");
    let r = f.say("em nhận đơn DH240517 rồi. áo mặc không vừa thì đổi size được không");
    assert_eq!(r["handoff"], false, "{r}");
    let t = texts(&r);
    assert_eq!(t.len(), 2, "{r}");
    assert!(
        t[0].contains("size") && t[1].contains("số điện thoại"),
        "{r}"
    );

    // A question set off by a comma in the order's sentence is answered too.
    let r = Chat::new(&server, "khach-dau-phay")
        .say("cho e hỏi phí ship về quận 3 bn, và đơn DH240541 của e giao chưa");
    let t = texts(&r);
    assert_eq!(t.len(), 2, "{r}");
    assert!(
        t[0].contains("25.000đ") && t[1].contains("số điện thoại"),
        "{r}"
    );

    // A missing item reported with its order goes to a person, order named.
    let mut e = Chat::new(&server, "khach-thieu-hang");
    let r = e.say("mình đặt đơn DH240449 mà nhận thiếu 1 đôi giày");
    assert_eq!(r["intent"], "complaint", "{r}");
    assert_eq!(r["handoff"], true, "{r}");
    let named = "SELECT COUNT(*) FROM tickets WHERE context LIKE '%DH240449%'";
    assert_eq!(db_count(data.path(), named), 1);

    // Two orders in one message: both answered once the phone that placed them is
    // verified; an order placed with another phone is not looked into.
    let mut g = Chat::new(&server, "khach-hai-don");
    let r = g.say("đơn DH240517 với đơn 10088 giao chưa shop");
    assert_eq!(texts(&r).len(), 1, "{r}");
    assert!(reply_text(&r).contains("số điện thoại"), "{r}");
    let t = texts(&g.say("0912345678"));
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(
        t[0].contains("GHN8K2M4Q7") && t[1].contains("#10088"),
        "{t:?}"
    );
    let t = texts(
        &Chat::new(&server, "khach-don-nguoi-khac")
            .say("đơn DH240517 với DH240541 tới đâu rồi, sdt 0912345678"),
    );
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t[0].contains("GHN8K2M4Q7"), "{t:?}");
    assert!(
        t[1].contains("DH240541") && !t[1].contains("đã giao"),
        "{t:?}"
    );
    // A request covers every order named, and the ticket lists them.
    let r = Chat::new(&server, "khach-huy-hai-don")
        .say("hủy giúp em đơn DH240517 và #10088, sđt 0912345678");
    assert_eq!(r["handoff"], true, "{r}");
    let t = texts(&r);
    assert_eq!(t.len(), 2, "{r}");
    assert!(t[0].contains("hủy đơn hàng DH240517"), "{r}");
    assert!(t[1].contains("hủy đơn hàng #10088"), "{r}");
    let both =
        "SELECT COUNT(*) FROM tickets WHERE context LIKE '%DH240517%' AND context LIKE '%#10088%'";
    assert_eq!(db_count(data.path(), both), 1);
}

#[test]
fn small_talk_of_any_trade_names_places_and_misses_after_a_menu() {
    let data = tempfile::tempdir().unwrap();
    import_orders(data.path());
    let server = Server::start(data.path(), &[]);
    let mut a = Chat::new(&server, "khach-tiem");
    // How customers address a business of any trade, and who they say they are.
    for (text, intent) in [
        ("tiệm ơi", "greeting"),
        ("cảm ơn tiệm nha", "thanks"),
        ("chào shop, em là Lan", "greeting"),
        ("ok tiệm, để mai e ghé", "goodbye"),
        ("em có hủy đâu", "complaint"),
    ] {
        assert_eq!(a.say(text)["intent"], intent, "{text}");
    }
    // "h" is "giờ"; a letter after a number stays its unit.
    let r = Chat::new(&server, "khach-gio").say("mấy h đóng cửa");
    assert_eq!(r["decision"]["faq_id"], "gio-mo-cua", "{r}");
    // A delivery question naming no place is not answered with one place's fee.
    let r = Chat::new(&server, "khach-phi-ship").say("phí ship bao nhiêu");
    assert_eq!(r["decision"]["decision"], "clarify", "{r}");
    let r = Chat::new(&server, "khach-phi-ship-hn").say("phí ship ra hà nội bao nhiêu");
    assert_eq!(r["decision"]["decision"], "answer", "{r}");
    // "mã đơn là 10045" names an order.
    let r = Chat::new(&server, "khach-ma-don").say("mã đơn là 10045");
    assert_eq!(r["intent"], "order_status", "{r}");
    // One miss right after a menu is one fallback, not a hand-off; a price the bot
    // cannot look up is no miss at all.
    let mut m = Chat::new(&server, "khach-sau-menu");
    let r = m.say("đổi trả trong bao lâu vậy shop");
    assert_eq!(r["decision"]["decision"], "clarify", "{r}");
    let r = m.say("ao polo nam gia bao nhieu");
    assert_eq!(r["handoff"], false, "{r}");
    let r = m.say("áo sơ mi linen giá bao nhiêu");
    assert_eq!(r["handoff"], false, "{r}");
    assert_eq!(db_count(data.path(), "SELECT COUNT(*) FROM tickets"), 1);
}

#[test]
fn conversation_flow_over_http_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    import_orders(data.path());
    let server = Server::start(data.path(), &[]);
    assert_eq!(ureq_get(&server.url("/health")).unwrap().0, 200);
    let mut chat = Chat::new(&server, "khach-1");

    // An FAQ.
    let r = chat.say("Phí ship ra Hà Nội bao nhiêu vậy shop?");
    assert_eq!(r["intent"], "faq");
    assert_eq!(r["decision"]["faq_id"], "phi-ship-ha-noi", "{r}");
    assert!(reply_text(&r).contains("25.000đ"));
    let conversation = r["conversation_id"].as_str().unwrap().to_string();

    // Order status: code asked, verification asked, a wrong then a right answer.
    let r = chat.say("đơn của em đâu rồi");
    assert_eq!(r["intent"], "order_status");
    assert!(reply_text(&r).contains("mã đơn hàng"), "{r}");
    let r = chat.say("DH240517");
    assert!(reply_text(&r).contains("số điện thoại"), "{r}");
    assert!(
        !reply_text(&r).contains("GHN"),
        "nothing revealed before verification"
    );
    let r = chat.say("sđt em là 0987 654 321");
    assert!(reply_text(&r).contains("chưa khớp"), "{r}");
    assert!(!reply_text(&r).contains("GHN8K2M4Q7"));
    let r = chat.say("à nhầm, 4 số cuối là 5678");
    let text = reply_text(&r);
    assert!(
        text.contains("GHN8K2M4Q7") && text.contains("30/11/2026"),
        "{r}"
    );
    assert!(text.contains("đang được giao"), "{r}");
    // Verified on this conversation: not asked again.
    let r = chat.say("đơn DH240517 giao tới đâu rồi");
    assert!(reply_text(&r).contains("GHN8K2M4Q7"), "{r}");

    // A customer kept waiting hears an apology before the question, once.
    let mut waiting = Chat::new(&server, "khach-cho");
    let r = waiting.say("sao giao cham qua vay, dat 5 ngay roi chua thay hang");
    assert_eq!(r["intent"], "order_status", "{r}");
    let replies = r["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 2, "{r}");
    assert!(
        replies[0]["text"].as_str().unwrap().contains("xin lỗi"),
        "{r}"
    );
    assert!(
        replies[1]["text"].as_str().unwrap().contains("mã đơn hàng"),
        "{r}"
    );
    let r = waiting.say("DH240517");
    assert!(!reply_text(&r).contains("xin lỗi"), "{r}");
    assert!(reply_text(&r).contains("số điện thoại"), "{r}");

    // "ok" while the bot waits for the phone keeps the step; a greeting before a
    // question does not hide the question.
    let mut acks = Chat::new(&server, "khach-ok");
    acks.say("kiểm tra đơn DH240127");
    let r = acks.say("ok em đợi chút");
    assert!(reply_text(&r).contains("số điện thoại"), "{r}");
    let r = acks.say("0977522239");
    assert!(reply_text(&r).contains("DH240127"), "{r}");
    let r = acks.say("hi shop đổi size dc ko");
    assert_eq!(r["intent"], "faq", "{r}");
    assert_ne!(r["decision"]["decision"], "handoff", "{r}");

    // A stock question gets no entry that only shares its words; an entry about
    // stock still answers one.
    let mut stock = Chat::new(&server, "khach-ton-kho");
    let r = stock.say("áo này còn hàng không shop");
    assert_ne!(r["decision"]["decision"], "answer", "{r}");
    assert!(reply_text(&r).contains("tồn kho"), "{r}");
    // The colours a product comes in are its stock too (the fabric entry shares
    // "áo thun").
    let r = Chat::new(&server, "khach-hoi-mau").say("áo thun có mấy màu");
    assert_ne!(r["decision"]["decision"], "answer", "{r}");
    assert!(reply_text(&r).contains("tồn kho"), "{r}");
    let r = stock.say("shop quận 1 còn size M không");
    assert_eq!(r["decision"]["faq_id"], "kiem-tra-ton-kho-cua-hang", "{r}");

    // A product's price is not answered by an entry without prices (the fabric
    // entry shares "áo sơ mi linen"); a fee question still gets its entry.
    let mut price = Chat::new(&server, "khach-hoi-gia");
    let r = price.say("áo sơ mi linen trắng giá bao nhiêu vậy shop");
    assert_ne!(r["decision"]["decision"], "answer", "{r}");
    assert!(reply_text(&r).contains("báo giá"), "{r}");
    let r = price.say("phí ship ra Hà Nội bao nhiêu");
    assert_eq!(r["decision"]["faq_id"], "phi-ship-ha-noi", "{r}");

    // A request to cancel an order: verified first, then a person takes it; an order
    // already cancelled is only said to be so.
    let mut cancel = Chat::new(&server, "khach-huy-don");
    let r = cancel.say("huỷ giúp em đơn DH240127 với");
    assert!(reply_text(&r).contains("số điện thoại"), "{r}");
    assert_eq!(r["handoff"], false, "{r}");
    let r = cancel.say("0977522239");
    assert_eq!(r["handoff"], true, "{r}");
    assert!(
        reply_text(&r).contains("yêu cầu hủy đơn hàng DH240127"),
        "{r}"
    );
    let mut cancelled = Chat::new(&server, "khach-huy-roi");
    cancelled.say("đơn DH240225 em không lấy nữa");
    let r = cancelled.say("1596");
    assert_eq!(r["handoff"], false, "{r}");
    assert!(reply_text(&r).contains("đã được hủy rồi"), "{r}");
    // After a status check, "hủy đơn này giúp em" is about that order; a wish said
    // before the code ("em muốn hủy đơn": the how-to entry answers) holds for the
    // order named next.
    let mut after = Chat::new(&server, "khach-huy-sau");
    after.say("kiểm tra đơn DH240104");
    let r = after.say("0988983640");
    assert!(reply_text(&r).contains("đang được đóng gói"), "{r}");
    let r = after.say("hủy đơn này giúp em");
    assert_eq!(r["handoff"], true, "{r}");
    assert!(
        reply_text(&r).contains("yêu cầu hủy đơn hàng DH240104"),
        "{r}"
    );
    let mut wish = Chat::new(&server, "khach-muon-huy");
    let r = wish.say("em muốn hủy đơn");
    assert_eq!(r["decision"]["faq_id"], "huy-don-hang", "{r}");
    wish.say("DH240500");
    let r = wish.say("0338540640");
    assert_eq!(r["handoff"], true, "{r}");
    assert!(
        reply_text(&r).contains("yêu cầu hủy đơn hàng DH240500"),
        "{r}"
    );

    // A request to change an order goes to a person too, and the new address the
    // customer sends next waits for that person (the bot does not answer it).
    let mut change = Chat::new(&server, "khach-doi-dia-chi");
    change.say("em muốn đổi địa chỉ giao cho đơn DH240174");
    let r = change.say("0827291714");
    assert_eq!(r["handoff"], true, "{r}");
    assert!(
        reply_text(&r).contains("yêu cầu thay đổi đơn hàng DH240174"),
        "{r}"
    );
    let r = change.say("đổi sang 12 Nguyễn Huệ quận 1 giúp em");
    assert_eq!(r["intent"], "handoff_waiting", "{r}");
    assert!(
        reply_text(&r).contains("đã chuyển tin nhắn"),
        "only passed on: {r}"
    );
    // Asking why an order was cancelled is no request to cancel: its status.
    let r = cancelled.say("sao đơn DH240225 bị hủy vậy shop");
    assert!(reply_text(&r).contains("đã bị hủy"), "{r}");

    // A customer who cannot give the order code goes to a person, not round again.
    let mut forgot = Chat::new(&server, "khach-quen-ma");
    let r = forgot.say("kiểm tra đơn giúp em");
    assert!(reply_text(&r).contains("mã đơn hàng"), "{r}");
    let r = forgot.say("em ko nhớ mã đơn");
    assert_eq!(r["handoff"], true, "{r}");
    assert!(reply_text(&r).contains("nhân viên"), "{r}");

    // Clarify, then pick a candidate by its quick reply.
    let r = chat.say("bảo hành");
    assert_eq!(r["decision"]["decision"], "clarify", "{r}");
    let options = r["replies"][0]["quick_replies"].as_array().unwrap().clone();
    assert!((2..=3).contains(&options.len()), "{r}");
    // "ok" and a number the menu does not have are not questions: the menu comes
    // again (no hand-off); "số 2" picks the second choice, as its label does.
    for text in ["ok", "7"] {
        let again = chat.say(text);
        assert_eq!(again["handoff"], false, "{again}");
        assert_eq!(
            again["replies"][0]["quick_replies"], r["replies"][0]["quick_replies"],
            "{again}"
        );
    }
    let by_number = chat.say("số 2");
    assert_eq!(by_number["intent"], "faq", "{by_number}");
    assert!(by_number["replies"][0]["quick_replies"]
        .as_array()
        .is_none_or(|q| q.is_empty()));
    chat.say("bảo hành");
    let by_label = chat.say(options[1].as_str().unwrap());
    assert_eq!(reply_text(&by_number), reply_text(&by_label));
    chat.say("bảo hành");
    let pick = options[0].as_str().unwrap();
    let picked = chat.say(pick);
    assert_eq!(picked["intent"], "faq");
    assert!(!reply_text(&picked).is_empty());
    assert_ne!(reply_text(&picked), reply_text(&r));

    // Asking for a human: the decision is recorded with its reason.
    let r = chat.say("cho mình gặp nhân viên tư vấn");
    assert_eq!(r["handoff"], true);
    assert_eq!(r["intent"], "human_request");
    assert!(reply_text(&r).contains("nhân viên"));
    let reason = db_count(
        data.path(),
        &format!("SELECT COUNT(*) FROM conversations WHERE id = '{conversation}' AND status = 'handoff' AND handoff_reason = 'customer_request'"),
    );
    assert_eq!(reason, 1);

    // Restart: everything is still there, and the conversation is still with a human.
    let before = db_count(data.path(), "SELECT COUNT(*) FROM messages");
    assert!(before >= 18, "{before}");
    let status = server.stop();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    let server = Server::start(data.path(), &[]);
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM messages"),
        before
    );
    let mut chat = Chat {
        server: &server,
        user: "khach-1".into(),
        n: 100,
    };
    let r = chat.say("alo shop ơi");
    assert_eq!(r["conversation_id"], conversation.as_str());
    assert_eq!(r["handoff"], true);
    // Nobody has answered yet: the bot only says the message was passed on.
    assert_eq!(r["intent"], "handoff_waiting", "{r}");
    assert!(reply_text(&r).contains("đã chuyển tin nhắn"), "{r}");
    // The inbound message is stored (with the acknowledgement) though no person
    // answered it yet.
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM messages"),
        before + 2
    );
}

#[test]
fn retries_are_idempotent_and_bad_input_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let url = server.url("/api/v1/messages");
    let body = json!({"channel": "api", "user_id": "u-retry", "text": "shop có trả góp không", "message_id": "m-1"});
    let (s1, first) = post_raw(&url, body.to_string().into_bytes());
    let count = db_count(data.path(), "SELECT COUNT(*) FROM messages");
    let (s2, second) = post_raw(&url, body.to_string().into_bytes());
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, second, "a retry returns the same replies");
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM messages"),
        count,
        "nothing stored twice"
    );

    let long = "a".repeat(2001);
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "malformed_json"),
        (
            json!({"channel": "api", "user_id": "u", "text": "x"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
        ),
        (
            json!({"channel": "fax", "user_id": "u", "text": "x", "message_id": "m"})
                .to_string()
                .into_bytes(),
            400,
            "unknown_channel",
        ),
        (
            json!({"channel": "api", "user_id": "u", "text": long, "message_id": "m"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_field",
        ),
        (
            json!({"channel": "api", "user_id": "u", "text": "   ", "message_id": "m"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_field",
        ),
        (
            json!({"channel": "api", "user_id": "u", "text": 5, "message_id": "m"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
        ),
        (vec![b' '; 70 * 1024], 413, "payload_too_large"),
    ];
    for (body, status, code) in cases {
        let (s, v) = post_raw(&url, body);
        assert_eq!(s, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM messages"),
        count,
        "bad input stores nothing"
    );
    let (s, v) = post_raw(&server.url("/api/v1/nope"), b"{}".to_vec());
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
}

#[test]
fn broken_config_and_knowledge_stop_the_server_with_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("cskh.toml");
    std::fs::write(&cfg, "port = \"tám nghìn\"\n").unwrap();
    let o = run(cskh().args(["serve", "--config"]).arg(&cfg));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cskh.toml"), "{}", stderr(&o));
    let o = run(cskh()
        .args(["serve", "--port", "0", "--data"])
        .arg(data.path())
        .env("CSKH_PORT", "abc"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("CSKH_PORT"), "{}", stderr(&o));
    let kb = tempfile::tempdir().unwrap();
    std::fs::write(kb.path().join("x.md"), "## Hỏi {#a}\n").unwrap();
    let o = run(cskh()
        .args(["serve", "--port", "0", "--knowledge"])
        .arg(kb.path())
        .arg("--data")
        .arg(data.path()));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("x.md:1"), "{}", stderr(&o));
}

/// A local stand-in for a Shopify-style Admin REST API: checks the access token and
/// answers `GET /admin/orders.json?name=…` in Shopify's wire format.
fn fake_shop(fail: Arc<std::sync::atomic::AtomicBool>) -> String {
    use axum::extract::Query;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/admin/orders.json",
        get(move |headers: HeaderMap, q: Query<std::collections::HashMap<String, String>>| {
            let fail = fail.clone();
            async move {
                if fail.load(std::sync::atomic::Ordering::SeqCst) {
                    return (StatusCode::INTERNAL_SERVER_ERROR, "boom".to_string());
                }
                if headers.get("x-shopify-access-token").and_then(|v| v.to_str().ok()) != Some("shpat_test") {
                    return (StatusCode::UNAUTHORIZED, "{\"errors\":\"[API] Invalid API key\"}".into());
                }
                let name = q.get("name").cloned().unwrap_or_default();
                let orders = if name.trim_start_matches('#') == "1042" {
                    json!([{
                        "name": "#1042", "phone": "+84 912 345 678", "email": "lan@example.com",
                        "created_at": "2026-11-20T09:00:00+07:00", "cancelled_at": null,
                        "financial_status": "paid", "fulfillment_status": "fulfilled",
                        "total_price": "375000.00",
                        "line_items": [{"name": "Áo sơ mi linen trắng", "quantity": 1, "price": "350000.00"}],
                        "fulfillments": [{"tracking_company": "GHN", "tracking_number": "GHN55X",
                                          "shipment_status": "in_transit",
                                          "estimated_delivery_at": "2026-11-29T00:00:00+07:00"}],
                        "customer": {"first_name": "Lan", "last_name": "Nguyễn", "phone": null},
                        "shipping_address": {"name": "Nguyễn Thị Lan", "phone": "0912345678"}
                    }])
                } else {
                    json!([])
                };
                (StatusCode::OK, json!({"orders": orders}).to_string())
            }
        }),
    );
    rt().spawn(async move {
        let l = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(l, app).await.unwrap();
    });
    format!("http://{addr}")
}

#[test]
fn shopify_style_order_api_and_its_failures() {
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let base = fake_shop(fail.clone());
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(
        data.path(),
        &[
            ("CSKH_ORDERS_BACKEND", "shopify"),
            ("CSKH_ORDERS_BASE_URL", &base),
            ("CSKH_ORDERS_TOKEN", "shpat_test"),
            ("CSKH_ORDERS_TIMEOUT_MS", "2000"),
        ],
    );
    let mut chat = Chat::new(&server, "shop-1");
    let r = chat.say("kiểm tra giúp mình đơn #1042 với");
    assert!(reply_text(&r).contains("số điện thoại"), "{r}");
    let r = chat.say("0912345678");
    let t = reply_text(&r);
    assert!(
        t.contains("#1042") && t.contains("GHN55X") && t.contains("29/11/2026"),
        "{r}"
    );
    assert!(t.contains("375.000đ"), "{r}");

    // An unknown code fails verification exactly like a wrong phone.
    let mut other = Chat::new(&server, "shop-2");
    other.say("đơn #9999 của mình sao rồi");
    let unknown = reply_text(&other.say("0912345678"));
    let mut third = Chat::new(&server, "shop-3");
    third.say("đơn #1042 của mình sao rồi");
    let wrong = reply_text(&third.say("0900000000"));
    assert_eq!(unknown, wrong, "never reveal whether an order code exists");

    // The backend failing: an apology and an offer of a human, never a made-up status.
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut down = Chat::new(&server, "shop-4");
    down.say("đơn #1042 của mình đâu rồi");
    let r = down.say("0912345678");
    assert!(reply_text(&r).contains("xin lỗi"), "{r}");
    assert_eq!(r["replies"][0]["quick_replies"][0], "Gặp nhân viên");
    assert!(!reply_text(&r).contains("GHN55X"));
}

/// `POST /api/v1/messages` with a body: (status, JSON).
fn send(server: &Server, user: &str, id: &str, text: &str) -> (u16, Value) {
    let body = json!({"channel": "api", "user_id": user, "text": text, "message_id": id});
    post_raw(
        &server.url("/api/v1/messages"),
        body.to_string().into_bytes(),
    )
}

#[test]
fn a_message_id_is_per_sender_another_senders_same_id_is_a_new_message() {
    let data = tempfile::tempdir().unwrap();
    import_orders(data.path());
    let server = Server::start(data.path(), &[]);
    let (s, _) = send(&server, "apiA", "a91e-1", "tra đơn DH240517");
    assert_eq!(s, 200);
    let (s, a) = send(&server, "apiA", "a91e-2", "0912345678");
    assert_eq!(s, 200, "{a}");
    assert!(reply_text(&a).contains("GHN8K2M4Q7"), "{a}");

    // Another customer happens to use the same message id: a new message, stored and
    // answered in their own conversation, with nothing of A's.
    let (s, b) = send(&server, "apiB", "a91e-2", "chào shop");
    assert_eq!(s, 200, "{b}");
    assert_ne!(b["conversation_id"], a["conversation_id"], "{b}");
    assert_eq!(b["intent"], "greeting", "{b}");
    let text = reply_text(&b);
    assert!(
        !text.contains("GHN8K2M4Q7") && !text.contains("DH240517"),
        "{b}"
    );
    assert_eq!(
        db_count(
            data.path(),
            "SELECT COUNT(*) FROM messages WHERE direction = 'in' AND text = 'chào shop'"
        ),
        1
    );
    // Each sender's retry is still answered from its own stored turn.
    assert_eq!(send(&server, "apiA", "a91e-2", "0912345678").1, a);
    assert_eq!(send(&server, "apiB", "a91e-2", "chào shop").1, b);
}

#[test]
fn reusing_a_message_id_for_another_text_is_a_conflict_and_stores_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let (s, first) = send(&server, "u-reuse", "M", "phí ship ra hà nội");
    assert_eq!(s, 200, "{first}");
    let count = db_count(data.path(), "SELECT COUNT(*) FROM messages");
    let (s, v) = send(&server, "u-reuse", "M", "có cod không");
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "duplicate_message_id", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM messages"),
        count,
        "nothing stored"
    );
    // An exact retry is still idempotent.
    let (s, again) = send(&server, "u-reuse", "M", "phí ship ra hà nội");
    assert_eq!((s, &again), (200, &first));
}

#[test]
fn text_of_only_invisible_characters_is_refused_like_white_space() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let before = db_count(data.path(), "SELECT COUNT(*) FROM messages");
    for (i, text) in [
        "\u{200b}",
        "\u{feff}",
        " \u{200b}\u{2060}\u{200d} ",
        "\u{00a0}\u{2800}",
        "\u{0}",
        "\u{0}\u{1}\u{1b}\u{7f}",
        " \u{0}\n\u{9f} ",
    ]
    .iter()
    .enumerate()
    {
        let (s, v) = send(&server, "u-blank", &format!("b-{i}"), text);
        assert_eq!(s, 400, "{text:?}: {v}");
        assert_eq!(v["error"]["code"], "invalid_field", "{v}");
    }
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM messages"),
        before,
        "nothing stored, nothing counted toward a hand-off"
    );
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM turns"),
        0,
        "nothing answered"
    );
    // Visible text around a zero-width space is an ordinary message.
    let (s, v) = send(&server, "u-blank", "b-ok", "\u{200b}chào shop");
    assert_eq!(s, 200, "{v}");
}

#[test]
fn every_query_path_and_body_rejection_uses_the_json_error_shape() {
    let data = tempfile::tempdir().unwrap();
    create_agent(data.path(), "lan", "mat-khau-an-toan");
    let server = Server::start(data.path(), &[]);
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let expect = |method: &str, path: &str, token: Option<&str>, status: u16, code: &str| {
        let (s, v) = call(&server, method, path, token, None);
        assert_eq!(s, status, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], code, "{method} {path}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    };
    expect("GET", "/api/v1/web/history", None, 400, "invalid_request");
    expect("GET", "/api/v1/web/events", None, 400, "invalid_request");
    expect(
        "GET",
        "/api/v1/history?channel=api",
        None,
        400,
        "invalid_request",
    );
    expect("GET", "/api/v1/agent/events", None, 400, "invalid_request");
    expect(
        "POST",
        "/api/v1/handoffs/x/claim?take_over=maybe",
        Some(&token),
        400,
        "invalid_request",
    );
    expect(
        "GET",
        "/api/v1/handoffs/%FF%FE",
        Some(&token),
        400,
        "invalid_request",
    );
    expect("GET", "/api/v1/messages", None, 405, "method_not_allowed");
    let (s, v) = post_raw(&server.url("/webhooks/zalo"), vec![b' '; 70 * 1024]);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{v}"
    );
}

#[test]
fn the_api_channel_needs_its_token_and_history_never_serves_the_web_channel() {
    let data = tempfile::tempdir().unwrap();
    import_orders(data.path());
    let server = Server::start(data.path(), &[("CSKH_API_TOKEN", "api-bi-mat-123")]);
    assert!(!server.log.lock().unwrap().contains("CSKH_API_TOKEN"));
    let message = |user: &str, id: &str, text: &str| json!({"channel": "api", "user_id": user, "text": text, "message_id": id});
    let before = db_count(data.path(), "SELECT COUNT(*) FROM messages");
    for token in [None, Some("sai")] {
        let (s, v) = call(
            &server,
            "POST",
            "/api/v1/messages",
            token,
            Some(message("apiA", "1", "tra đơn DH240517")),
        );
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{v}"
        );
    }
    assert_eq!(
        db_count(data.path(), "SELECT COUNT(*) FROM messages"),
        before
    );
    let key = Some("api-bi-mat-123");
    for (id, text) in [("1", "tra đơn DH240517"), ("2", "0912345678")] {
        let (s, v) = call(
            &server,
            "POST",
            "/api/v1/messages",
            key,
            Some(message("apiA", id, text)),
        );
        assert_eq!(s, 200, "{v}");
    }
    let path = "/api/v1/history?channel=api&user_id=apiA";
    for token in [None, Some("sai")] {
        let (s, v) = call(&server, "GET", path, token, None);
        assert_eq!(s, 401, "{v}");
        assert!(!v.to_string().contains("GHN8K2M4Q7"), "{v}");
    }
    let (s, h) = call(&server, "GET", path, key, None);
    assert_eq!(s, 200, "{h}");
    assert!(h["messages"].to_string().contains("GHN8K2M4Q7"), "{h}");

    // The widget needs no token: its random visitor id is its credential, read only
    // through the web history; /api/v1/history never serves a web visitor.
    let web =
        json!({"channel": "web", "user_id": "v-9f3c1a", "text": "chào shop", "message_id": "w1"});
    let (s, v) = call(&server, "POST", "/api/v1/messages", None, Some(web));
    assert_eq!(s, 200, "{v}");
    for token in [None, key] {
        let (s, v) = call(
            &server,
            "GET",
            "/api/v1/history?channel=web&user_id=v-9f3c1a",
            token,
            None,
        );
        assert_eq!(s, if token.is_some() { 400 } else { 401 }, "{v}");
        assert!(!v.to_string().contains("chào shop"), "{v}");
    }
    let (s, v) = call(
        &server,
        "GET",
        "/api/v1/web/history?visitor_id=v-9f3c1a",
        None,
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert!(v["messages"].to_string().contains("chào shop"), "{v}");
    drop(server);

    // Without a token the api channel stays open, and the operator is warned.
    let open = tempfile::tempdir().unwrap();
    let server = Server::start(open.path(), &[]);
    assert!(server.log.lock().unwrap().contains("CSKH_API_TOKEN"));
    let (s, v) = call(
        &server,
        "GET",
        "/api/v1/history?channel=web&user_id=v-9f3c1a",
        None,
        None,
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("unsupported_channel")),
        "{v}"
    );
}
