//! Waiting for a person: what the bot still does for a customer whose ticket is open
//! (answers from the knowledge base, acknowledgements, withdrawal, re-triage), the
//! ticket's data, feedback after help, and handing a waiting question back to the
//! bot — against the real server process and its SQLite file.

use std::path::Path;

use serde_json::{json, Value};

use crate::server::{
    agent_login, call, db_count, db_exec, import_orders, reply_text, Chat, Server,
};
use crate::support::*;

const ADMIN: &str = "admin-token-for-waiting";
const VOICE_TOKEN: &str = "voice-token-for-waiting";

/// A server with agent "lan", open around the clock (waits read the same whenever CI
/// runs).
fn start(data: &Path) -> Server {
    create_agent(data, "lan", "mat-khau-an-toan");
    Server::start(
        data,
        &[
            ("CSKH_ADMIN_TOKEN", ADMIN),
            ("CSKH_BUSINESS_HOURS", "00:00-00:00"),
        ],
    )
}

/// The ticket code a reply tells the customer.
fn code_in(r: &Value) -> String {
    let text = reply_text(r);
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() == 8 && w.starts_with("YC"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no ticket code in {text}"))
}

fn ticket(server: &Server, token: &str, code: &str) -> Value {
    let (s, t) = call(
        server,
        "GET",
        &format!("/api/v1/handoffs/{code}"),
        Some(token),
        None,
    );
    assert_eq!(s, 200, "{t}");
    t
}

fn act(server: &Server, token: &str, code: &str, action: &str, body: Option<Value>) -> Value {
    let (s, v) = call(
        server,
        "POST",
        &format!("/api/v1/handoffs/{code}/{action}"),
        Some(token),
        body,
    );
    assert_eq!(s, 200, "{action}: {v}");
    v
}

fn silent(r: &Value) -> bool {
    r["replies"].as_array().unwrap().is_empty()
}

/// Item 1: While nobody has answered, a knowledge-base question is answered (with the
/// ticket still waiting), anything else is acknowledged at most every 30 minutes;
/// once an agent takes the ticket, the bot is silent.
#[test]
fn a_waiting_customer_gets_answers_and_acknowledgements_until_an_agent_takes_over() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let mut chat = Chat::new(&server, "khach-cho");
    let r = chat.say("cho em gặp nhân viên");
    assert_eq!(r["handoff"], true, "{r}");
    let code = code_in(&r);

    // An answerable question: the answer, and the request is still open.
    let r = chat.say("phí ship ra Hà Nội bao nhiêu");
    let text = reply_text(&r);
    assert!(text.contains("25.000đ"), "{r}");
    assert!(text.contains(&code) && text.contains("vẫn đang chờ"), "{r}");
    assert_eq!(
        (&r["handoff"], &r["intent"]),
        (&json!(true), &json!("faq")),
        "{r}"
    );

    // Something the bot cannot answer: passed on, with the code and the wait.
    let r = chat.say("alo có ai ở đó không ạ");
    let text = reply_text(&r);
    assert!(text.contains("đã chuyển tin nhắn"), "{r}");
    assert!(
        text.contains(&code) && text.contains("24 giờ làm việc"),
        "{r}"
    );
    assert!(text.contains("hủy yêu cầu"), "how to take it back: {r}");
    // Not again within 30 minutes...
    let r = chat.say("em đợi lâu quá");
    assert!(silent(&r), "{r}");
    // ...but again after that.
    let earlier = (chrono::Utc::now() - chrono::Duration::minutes(31))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    db_exec(
        data.path(),
        &format!("UPDATE turns SET created_at = '{earlier}' WHERE intent = 'handoff_waiting'"),
    );
    let r = chat.say("shop ơi");
    assert!(reply_text(&r).contains("đã chuyển tin nhắn"), "{r}");
    // No order flow and no second ticket came of any of it; everything is in the
    // transcript the agent reads, and the ticket is still new.
    assert_eq!(db_count(data.path(), "SELECT COUNT(*) FROM tickets"), 1);
    let t = ticket(&server, &token, &code);
    assert_eq!(t["status"], "new", "{t}");
    let transcript = t["transcript"].to_string();
    assert!(
        transcript.contains("25.000đ") && transcript.contains("em đợi lâu quá"),
        "{t}"
    );

    // An agent takes it: the bot no longer speaks, not even to a question it knows.
    act(&server, &token, &code, "claim", None);
    let r = chat.say("thế phí ship ra Đà Nẵng bao nhiêu");
    assert!(silent(&r), "{r}");
    assert_eq!(r["intent"], "handoff_active", "{r}");
}

/// Item 2: Taking the request back: closed as `withdrawn` when nobody took it (not an SLA
/// miss), the agent told when one holds it; a new request is no withdrawal.
#[test]
fn a_customer_can_take_the_request_back() {
    let data = tempfile::tempdir().unwrap();
    import_orders(data.path());
    let server = start(data.path());
    let token = agent_login(&server, "lan", "mat-khau-an-toan");

    let mut a = Chat::new(&server, "khach-rut");
    let code = code_in(&a.say("cho em gặp nhân viên"));
    let r = a.say("thôi em không cần nhân viên nữa, em hỏi bot");
    let text = reply_text(&r);
    assert_eq!(r["handoff"], false, "{r}");
    assert!(
        text.contains("đã hủy yêu cầu") && text.contains(&code),
        "{r}"
    );
    let t = ticket(&server, &token, &code);
    assert_eq!(
        (&t["status"], &t["resolution"]),
        (&json!("closed"), &json!("withdrawn")),
        "{t}"
    );
    assert!(t["log"].to_string().contains("withdrawn"), "{t}");
    // Back with the bot: a plain answer, no note about a waiting request.
    let r = a.say("phí ship ra Hà Nội bao nhiêu");
    assert!(reply_text(&r).contains("25.000đ"), "{r}");
    assert!(!reply_text(&r).contains(&code), "{r}");

    // "hủy đơn giúp em" asks for something new: the request stays.
    let mut b = Chat::new(&server, "khach-huy-don");
    let code_b = code_in(&b.say("cho em gặp nhân viên"));
    b.say("hủy đơn giúp em");
    assert_eq!(ticket(&server, &token, &code_b)["status"], "new");

    // A verified request to cancel an order, then "à thôi khỏi, em vẫn lấy".
    let mut c = Chat::new(&server, "khach-van-lay");
    c.say("em muốn hủy đơn");
    c.say("DH240500");
    let r = c.say("0338540640");
    assert_eq!(r["handoff"], true, "{r}");
    let code_c = code_in(&r);
    let r = c.say("à thôi khỏi, em vẫn lấy");
    assert!(reply_text(&r).contains("vẫn giữ nguyên"), "{r}");
    assert_eq!(ticket(&server, &token, &code_c)["resolution"], "withdrawn");

    // An agent holds it: the ticket stays open and the agent is told.
    let mut d = Chat::new(&server, "khach-dang-duoc-ho-tro");
    let code_d = code_in(&d.say("cho em gặp nhân viên"));
    act(&server, &token, &code_d, "claim", None);
    let r = d.say("hủy yêu cầu giúp em");
    assert!(reply_text(&r).contains("đã báo nhân viên"), "{r}");
    let t = ticket(&server, &token, &code_d);
    assert_eq!(t["status"], "in_progress", "{t}");
    let log = t["log"].as_array().unwrap();
    assert!(
        log.iter()
            .any(|l| l["action"] == "customer_withdrew" && l["agent"] == "customer"),
        "{t}"
    );

    // Withdrawn tickets count neither as met nor missed (P2: the cancel request).
    let (s, k) = call(&server, "GET", "/api/v1/stats", Some(ADMIN), None);
    assert_eq!(s, 200, "{k}");
    for p in ["P2", "P3"] {
        assert_eq!(k["sla"][p]["due"].as_u64().unwrap_or(0), 0, "{p}: {k}");
    }
}

/// Item 3: What the customer adds while waiting is triaged again: the priority and the
/// deadline only rise, the department follows, the summary keeps the new facts.
#[test]
fn an_urgent_fact_sent_while_waiting_raises_the_ticket() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let mut chat = Chat::new(&server, "khach-gap-sau");
    let code = code_in(&chat.say("cho em gặp nhân viên"));
    let t = ticket(&server, &token, &code);
    assert_eq!(
        (&t["priority"], &t["department"]),
        (&json!("P3"), &json!("CSKH")),
        "{t}"
    );

    chat.say("em vừa kiểm tra tài khoản thì bị trừ tiền 2 lần");
    for more in ["gấp lắm ạ", "ok", "shop ơi", "em chờ nhé"] {
        chat.say(more);
    }
    let t = ticket(&server, &token, &code);
    assert_eq!(
        (&t["priority"], &t["department"]),
        (&json!("P1"), &json!("kế toán")),
        "{t}"
    );
    let due = chrono::DateTime::parse_from_rfc3339(t["sla_due_at"].as_str().unwrap()).unwrap();
    let left = (due.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!((50..=61).contains(&left), "a 1-hour deadline: {left} min");
    let summary = t["summary"].as_str().unwrap();
    assert!(summary.contains("bị trừ tiền 2 lần"), "{summary}");
    assert!(t["log"].to_string().contains("P3 → P1"), "{t}");
    // The queue line shows it too.
    let (_, list) = call(
        &server,
        "GET",
        "/api/v1/handoffs?status=open&view=summary",
        Some(&token),
        None,
    );
    assert_eq!(list[0]["code"], code.as_str(), "first in the queue: {list}");
    assert_eq!(list[0]["priority"], "P1");

    // Nothing lowers it again.
    chat.say("à mà thôi không gấp đâu");
    assert_eq!(ticket(&server, &token, &code)["priority"], "P1");
}

/// Item 4: The ticket's data: the verified order, only the changes asked for, routing by
/// the request, and no feedback on an earlier ticket in a new one's summary.
#[test]
fn a_ticket_shows_the_verified_order_the_changes_asked_and_only_this_request() {
    let data = tempfile::tempdir().unwrap();
    import_orders(data.path());
    let server = start(data.path());
    let token = agent_login(&server, "lan", "mat-khau-an-toan");

    // Verified, then a request for a person that names no order.
    let mut known = Chat::new(&server, "khach-da-xac-minh");
    known.say("kiểm tra đơn DH240517 giúp em");
    known.say("0912345678");
    let code = code_in(&known.say("cho em gặp nhân viên"));
    let e = &ticket(&server, &token, &code)["context"]["entities"];
    assert_eq!(
        (&e["order_code"], &e["phone_given"]),
        (&json!("DH240517"), &json!(true)),
        "{e}"
    );

    // An address change after a VAT question: the warehouse team, the address only.
    let mut change = Chat::new(&server, "khach-doi-dia-chi-sau-vat");
    change.say("shop có xuất hóa đơn VAT không");
    change.say("em muốn đổi địa chỉ giao cho đơn DH240174");
    let r = change.say("0827291714");
    assert_eq!(r["handoff"], true, "{r}");
    let t = ticket(&server, &token, &code_in(&r));
    assert_eq!(t["department"], "kho vận", "{t}");
    let summary = t["summary"].as_str().unwrap();
    assert!(
        summary.contains("thay đổi đơn: địa chỉ (đã xác minh)"),
        "{summary}"
    );
    assert!(
        !summary.contains("số điện thoại") && !summary.contains("sản phẩm"),
        "{summary}"
    );

    // Feedback on a resolved ticket is not part of the next request.
    let mut back = Chat::new(&server, "khach-quay-lai");
    let first = code_in(&back.say("cho chị gặp nhân viên"));
    act(&server, &token, &first, "claim", None);
    act(&server, &token, &first, "resolve", None);
    back.say("2");
    back.say("trả lời chậm quá, chị phải chờ lâu");
    let r = back.say("cho chị gặp nhân viên lần nữa nhé");
    let second = code_in(&r);
    assert_ne!(first, second);
    let summary = ticket(&server, &token, &second)["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !summary.contains("chờ lâu") && !summary.contains("«2»"),
        "{summary}"
    );
    assert!(summary.contains("lần nữa"), "{summary}");
}

/// Item 5: A hotline ticket: a written reply cannot reach the caller (409, with the number
/// to call back), and after hours the ticket is marked as a call-back.
#[test]
fn a_hotline_ticket_is_a_call_back_and_refuses_written_replies() {
    use chrono::Timelike;
    let data = tempfile::tempdir().unwrap();
    create_agent(data.path(), "lan", "mat-khau-an-toan");
    // One working hour that is not now (the shop's clock is UTC+7).
    let local_hour = (chrono::Utc::now() + chrono::Duration::hours(7)).hour();
    let hours = if local_hour == 13 {
        "02:00-03:00"
    } else {
        "13:00-14:00"
    };
    let server = Server::start(
        data.path(),
        &[
            ("CSKH_VOICE_TOKEN", VOICE_TOKEN),
            ("CSKH_BUSINESS_HOURS", hours),
        ],
    );
    let (s, v) = call(
        &server,
        "POST",
        "/api/v1/voice/turn",
        Some(VOICE_TOKEN),
        Some(
            json!({"call_id": "goi-1", "from": "+84900000009", "text": "cho tôi gặp nhân viên", "confidence": 0.9}),
        ),
    );
    assert_eq!(s, 200, "{v}");
    assert!(v["say"].as_str().unwrap().contains("gọi lại"), "{v}");
    let code = v["ticket_code"].as_str().unwrap().to_string();
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let t = ticket(&server, &token, &code);
    assert_eq!(
        t["context"]["callback"],
        json!({"number": "0900000009", "why": "after_hours"}),
        "{t}"
    );
    let (_, list) = call(
        &server,
        "GET",
        "/api/v1/handoffs?status=open&view=summary",
        Some(&token),
        None,
    );
    assert_eq!(list[0]["callback"], "0900000009", "{list}");

    let (s, v) = call(
        &server,
        "POST",
        &format!("/api/v1/handoffs/{code}/reply"),
        Some(&token),
        Some(json!({"text": "Dạ em gọi lại cho anh ngay ạ"})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("undeliverable")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("0900000009"),
        "{v}"
    );
    assert_eq!(
        db_count(
            data.path(),
            "SELECT COUNT(*) FROM messages WHERE author = 'agent'"
        ),
        0,
        "nothing stored"
    );
}

/// A customer helped by an agent, who resolves the ticket and gets `rating`.
fn rated<'a>(server: &'a Server, token: &str, user: &str, rating: &str) -> (Chat<'a>, String) {
    let mut chat = Chat::new(server, user);
    let code = code_in(&chat.say("cho em gặp nhân viên"));
    act(server, token, &code, "claim", None);
    act(server, token, &code, "resolve", None);
    chat.say(rating);
    (chat, code)
}

/// Item 6: Feedback: "không có gì thêm" declines the comment; any other remark is the
/// comment (not a new complaint about an order); a remark after an NPS score is kept.
#[test]
fn csat_and_nps_remarks_are_kept_as_feedback() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let comment = |code: &str| {
        db_count(
            data.path(),
            &format!(
                "SELECT COUNT(*) FROM tickets WHERE code = '{code}' AND csat_comment IS NOT NULL"
            ),
        )
    };

    let (mut none, code) = rated(&server, &token, "khach-khong-gop-y", "5");
    let r = none.say("không có gì thêm");
    assert!(reply_text(&r).contains("cảm ơn"), "{r}");
    assert!(!reply_text(&r).contains("chưa trả lời được"), "{r}");
    assert_eq!(comment(&code), 0);

    let (mut late, code) = rated(&server, &token, "khach-gop-y", "tạm được");
    let r = late.say("giao hàng chậm quá, lần sau cải thiện nhé");
    assert!(reply_text(&r).contains("ghi nhận góp ý"), "{r}");
    assert!(!reply_text(&r).contains("kiểm tra"), "{r}");
    assert_eq!(comment(&code), 1);

    let (s, v) = call(
        &server,
        "POST",
        "/api/v1/nps",
        Some(ADMIN),
        Some(json!({"channel": "api", "user_id": "khach-gop-y"})),
    );
    assert_eq!(s, 200, "{v}");
    late.say("8 điểm");
    let r = late.say("cửa hàng hơi khó tìm");
    assert!(reply_text(&r).contains("ghi nhận góp ý"), "{r}");
    assert_eq!(
        db_count(
            data.path(),
            "SELECT COUNT(*) FROM nps WHERE score = 8 AND comment = 'cửa hàng hơi khó tìm'"
        ),
        1
    );
    // The bot is back for what follows.
    let r = late.say("phí ship ra Hà Nội bao nhiêu");
    assert!(reply_text(&r).contains("25.000đ"), "{r}");
}

/// Item 7: Handed back to the bot, a question the customer asked meanwhile that nobody
/// answered is answered.
#[test]
fn handing_back_answers_the_question_left_waiting() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let mut chat = Chat::new(&server, "khach-cau-hoi-cho");
    let code = code_in(&chat.say("cho em gặp nhân viên"));
    act(&server, &token, &code, "claim", None);
    let r = chat.say("phí ship ra Hà Nội bao nhiêu");
    assert!(silent(&r), "an agent holds it: {r}");
    let t = act(&server, &token, &code, "release", None);
    let after: Vec<&str> = t["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    let last = after.join("\n");
    assert!(last.contains("em tiếp tục hỗ trợ"), "{last}");
    assert!(last.contains("25.000đ"), "answered: {last}");
    let (s, h) = call(
        &server,
        "GET",
        "/api/v1/history?channel=api&user_id=khach-cau-hoi-cho",
        None,
        None,
    );
    assert_eq!(s, 200);
    assert!(h["messages"].to_string().contains("25.000đ"), "{h}");
}
