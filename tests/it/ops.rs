//! The operations view: a scripted day of conversations through the real server,
//! then every KPI checked against numbers worked out by hand from the script, and
//! `/metrics` parsed as Prometheus text.

use std::path::Path;

use serde_json::{json, Value};

use crate::server::{agent_login, call, db_count, db_exec, reply_text, rt, Chat, Server};
use crate::support::*;

const ADMIN: &str = "admin-token-for-tests";

fn db_text(data: &Path, sql: &str) -> String {
    let url = format!("sqlite://{}?mode=ro", data.join("cskh.db").display());
    rt().block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let (s,): (String,) = sqlx::query_as(sql).fetch_one(&mut c).await.unwrap();
        s
    })
}

/// A server with agent "lan", the admin token, and the shop open around the clock.
fn start_open_all_day(data: &std::path::Path) -> Server {
    create_agent(data, "lan", "mat-khau-an-toan");
    Server::start(
        data,
        &[
            ("CSKH_ADMIN_TOKEN", ADMIN),
            ("CSKH_BUSINESS_HOURS", "00:00-00:00"),
        ],
    )
}

fn at(base: chrono::DateTime<chrono::Utc>, minutes: i64) -> String {
    (base + chrono::Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[test]
fn a_scripted_day_gives_the_hand_computed_kpis() {
    let data = tempfile::tempdir().unwrap();
    let server = start_open_all_day(data.path());
    let q = "Phí ship ra Hà Nội bao nhiêu vậy shop?";

    // A asks an FAQ, and asks the same again 45 minutes later (a repeat contact).
    let mut a = Chat::new(&server, "khach-a");
    let r = a.say(q);
    assert_eq!(r["decision"]["faq_id"], "phi-ship-ha-noi");
    let conv_a = r["conversation_id"].as_str().unwrap().to_string();
    let earlier = at(chrono::Utc::now(), -45);
    db_exec(
        data.path(),
        &format!("UPDATE messages SET created_at = '{earlier}' WHERE conversation_id = '{conv_a}'"),
    );
    let r = a.say(q);
    assert_eq!(r["decision"]["faq_id"], "phi-ship-ha-noi");

    // B gets a clarify and picks an option.
    let mut b = Chat::new(&server, "khach-b");
    let r = b.say("bảo hành");
    assert_eq!(r["decision"]["decision"], "clarify");
    let pick = r["replies"][0]["quick_replies"][0]
        .as_str()
        .unwrap()
        .to_string();
    b.say(&pick);

    // C, D, E are handed off: a request after a fallback, a P1 complaint, a request.
    let mut c = Chat::new(&server, "khach-c");
    c.say("shop có bán vé máy bay không");
    assert_eq!(c.say("cho mình gặp nhân viên")["handoff"], true);
    let mut d = Chat::new(&server, "khach-d");
    assert_eq!(d.say("em bị trừ tiền 2 lần")["handoff"], true);
    let mut e = Chat::new(&server, "khach-e");
    assert_eq!(e.say("cho gặp nhân viên")["handoff"], true);

    // Agents: claim + reply + resolve C's ticket, reply + resolve D's.
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let (_, list) = call(&server, "GET", "/api/v1/handoffs", Some(&token), None);
    let ticket_of = |user: &str| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["customer"]["channel_user_id"] == user)
            .cloned()
            .unwrap()
    };
    let (t1, t2, t3) = (
        ticket_of("khach-c"),
        ticket_of("khach-d"),
        ticket_of("khach-e"),
    );
    assert_eq!(
        (
            t1["priority"].as_str(),
            t2["priority"].as_str(),
            t3["priority"].as_str()
        ),
        (Some("P3"), Some("P1"), Some("P3"))
    );
    let id = |t: &Value| t["id"].as_str().unwrap().to_string();
    let act = |t: &Value, action: &str, body: Option<Value>| {
        let (s, v) = call(
            &server,
            "POST",
            &format!("/api/v1/handoffs/{}/{action}", id(t)),
            Some(&token),
            body,
        );
        assert_eq!(s, 200, "{action}: {v}");
    };
    act(&t1, "claim", None);
    act(
        &t1,
        "reply",
        Some(json!({"text": "Dạ em là Lan, em hỗ trợ anh/chị ạ."})),
    );
    act(&t1, "resolve", None);
    act(
        &t2,
        "reply",
        Some(json!({"text": "Dạ em kiểm tra giao dịch ngay ạ."})),
    );
    act(&t2, "resolve", None);
    assert!(reply_text(&c.say("5")).contains("cảm ơn"));
    d.say("2");

    // NPS to B, C, D: 9, 6, 10, said as customers say them; a score off the scale
    // is asked again.
    for (user, chat, score) in [
        ("khach-b", &mut b, "9/10"),
        ("khach-c", &mut c, "chắc tầm điểm sáu thôi"),
        ("khach-d", &mut d, "10 điểm nhé shop"),
    ] {
        let (s, v) = call(
            &server,
            "POST",
            "/api/v1/nps",
            Some(ADMIN),
            Some(json!({"channel": "api", "user_id": user})),
        );
        assert_eq!(s, 200, "{v}");
        if user == "khach-d" {
            let r = chat.say("11 điểm");
            assert!(reply_text(&r).contains("từ 0 đến 10"), "{r}");
        }
        assert!(reply_text(&chat.say(score)).contains("cảm ơn"));
    }
    // E is with an agent: no survey lands in the middle of that (nothing changes).
    let (s, v) = call(
        &server,
        "POST",
        "/api/v1/nps",
        Some(ADMIN),
        Some(json!({"channel": "api", "user_id": "khach-e"})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("conversation_busy")),
        "{v}"
    );
    let busy = "SELECT COUNT(*) FROM conversations WHERE channel_user_id = 'khach-e' AND status = 'handoff'";
    assert_eq!(db_count(data.path(), busy), 1);
    let (s, _) = call(
        &server,
        "POST",
        "/api/v1/nps",
        Some("wrong"),
        Some(json!({"channel": "api", "user_id": "khach-b"})),
    );
    assert_eq!(s, 401);

    // Fixed times for the ticket clock (minutes after `base`):
    // T1 (P3): created 0, claimed 5, first reply 10, resolved 30, due 60 → met.
    // T2 (P1): created 60, first reply 62, resolved 80, due 61 → missed.
    // T3 (P3): open, due a minute ago → overdue, missed.
    let base = chrono::Utc::now() - chrono::Duration::hours(3);
    let (i1, i2, i3) = (id(&t1), id(&t2), id(&t3));
    for sql in [
        format!("UPDATE tickets SET created_at = '{}', resolved_at = '{}', sla_due_at = '{}' WHERE id = '{i1}'", at(base, 0), at(base, 30), at(base, 60)),
        format!("UPDATE audit_log SET created_at = '{}' WHERE ticket_id = '{i1}' AND action = 'claim'", at(base, 5)),
        format!("UPDATE audit_log SET created_at = '{}' WHERE ticket_id = '{i1}' AND action = 'reply'", at(base, 10)),
        format!("UPDATE tickets SET created_at = '{}', resolved_at = '{}', sla_due_at = '{}' WHERE id = '{i2}'", at(base, 60), at(base, 80), at(base, 61)),
        format!("UPDATE audit_log SET created_at = '{}' WHERE ticket_id = '{i2}' AND action = 'reply'", at(base, 62)),
        format!("UPDATE tickets SET sla_due_at = '{}' WHERE id = '{i3}'", at(chrono::Utc::now(), -1)),
    ] {
        db_exec(data.path(), &sql);
    }

    let from = at(chrono::Utc::now(), -24 * 60);
    let to = at(chrono::Utc::now(), 60);
    let path = format!("/api/v1/stats?from={}&to={}", urlenc(&from), urlenc(&to));
    assert_eq!(call(&server, "GET", &path, Some("wrong"), None).0, 401);
    let (s, k) = call(&server, "GET", &path, Some(ADMIN), None);
    assert_eq!(s, 200, "{k}");

    // Sessions: A (twice), B, C, D, E = 6; C, D, E escalated.
    assert_eq!(k["conversations"], 6, "{k}");
    assert_eq!(k["escalated"], 3);
    assert_eq!(k["contained"], 3);
    assert_eq!(k["containment_rate"], 0.5);
    assert_eq!(k["escalation_rate"], 0.5);
    // Only A's first contact was followed by a repeat on the same question: 5/6.
    assert_eq!(k["first_contact_resolution"], 0.833);
    assert_eq!(k["tickets"], 3);
    // Handling (first agent action → resolved): 25 and 18 minutes.
    assert_eq!(k["average_handling_minutes"], 21.5);
    // First response: 10 and 2 minutes.
    assert_eq!(k["first_response_minutes"], 6.0);
    assert_eq!(k["sla"]["P3"], json!({"due": 2, "met": 1, "rate": 0.5}));
    assert_eq!(k["sla"]["P1"], json!({"due": 1, "met": 0, "rate": 0.0}));
    assert_eq!(k["backlog"], json!({"open": 1, "overdue": 1}));
    assert_eq!(
        k["csat"],
        json!({"responses": 2, "average": 3.5, "distribution": {"2": 1, "5": 1}})
    );
    // NPS: promoters 9 and 10, detractor 6 → (2 − 1) / 3.
    assert_eq!(
        k["nps"],
        json!({"responses": 3, "promoters": 2, "passives": 0, "detractors": 1, "score": 33.333})
    );
    assert_eq!(
        k["by_channel"],
        json!({"api": {"conversations": 6, "escalated": 3, "containment_rate": 0.5}})
    );
    let days = k["by_day"].as_object().unwrap();
    let total: i64 = days
        .values()
        .map(|d| d["conversations"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 6);
    let tickets: i64 = days.values().map(|d| d["tickets"].as_i64().unwrap()).sum();
    assert_eq!(tickets, 3);
    assert_eq!(
        db_text(
            data.path(),
            "SELECT group_concat(score) FROM (SELECT score FROM nps ORDER BY score)"
        ),
        "6,9,10"
    );

    // /metrics is an operator's view: the admin token, else 401. It parses as
    // Prometheus text and has the series.
    assert_eq!(
        crate::server::ureq_get(&server.url("/metrics")).unwrap().0,
        401
    );
    assert_eq!(
        crate::server::get_with_token(&server.url("/metrics"), "wrong").0,
        401
    );
    let (s, body) = crate::server::get_with_token(&server.url("/metrics"), ADMIN);
    assert_eq!(s, 200);
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(ref h) => {
                    h.iter().map(|c| c.count).fold(0.0, f64::max)
                }
                _ => f64::NAN,
            })
    };
    // 14 customer messages: A 2, B 3, C 4, D 4 (one an NPS score off the scale), E 1.
    assert_eq!(
        value(
            "cskh_http_request_duration_seconds",
            &[
                ("route", "/api/v1/messages"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        Some(14.0),
        "{body}"
    );
    assert_eq!(
        value("cskh_turn_duration_seconds", &[("channel", "api")]),
        Some(14.0)
    );
    // Retrieval ran for A twice (answer), B once (clarify; the pick needs none), C once.
    assert_eq!(
        value(
            "cskh_decisions_total",
            &[("channel", "api"), ("decision", "answer")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            "cskh_decisions_total",
            &[("channel", "api"), ("decision", "handoff")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "cskh_decisions_total",
            &[("channel", "api"), ("decision", "clarify")]
        ),
        Some(1.0)
    );
    assert!(
        value(
            "cskh_intents_total",
            &[("channel", "api"), ("intent", "human_request")]
        )
        .unwrap()
            >= 2.0
    );
    assert_eq!(
        value(
            "cskh_handoffs_total",
            &[("reason", "complaint"), ("priority", "P1")]
        ),
        Some(1.0)
    );
    assert_eq!(value("cskh_open_tickets", &[]), Some(1.0));
    assert_eq!(value("cskh_overdue_tickets", &[]), Some(1.0));
    assert_eq!(
        value("cskh_outbox_messages", &[("status", "pending")]),
        Some(0.0)
    );
    assert_eq!(value("cskh_llm_calls", &[("outcome", "calls")]), Some(0.0));
    assert_eq!(
        value("cskh_model_info", &[("model", "multilingual-e5-small")]),
        Some(1.0)
    );
}

/// Today in the business time zone (the default `utc_offset_minutes`, 420).
fn local_day(days_from_today: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(420) + chrono::Duration::days(days_from_today))
        .format("%Y-%m-%d")
        .to_string()
}

/// A day as `to` includes that day: `from=D&to=D` is one day, `to=<today>` counts
/// today; `from` after `to` and years past 9999 are refused; `to=9999-12-31` counts
/// conversations and tickets alike.
#[test]
fn a_day_as_to_includes_that_day() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[("CSKH_ADMIN_TOKEN", ADMIN)]);
    Chat::new(&server, "khach-hom-nay").say("Phí ship ra Hà Nội bao nhiêu vậy shop?");
    assert_eq!(
        Chat::new(&server, "khach-can-nguoi").say("cho gặp nhân viên")["handoff"],
        true
    );
    let stats = |query: &str| {
        call(
            &server,
            "GET",
            &format!("/api/v1/stats?{query}"),
            Some(ADMIN),
            None,
        )
    };
    let today = local_day(0);
    for query in [
        format!("from={today}&to={today}"),
        format!("to={today}"),
        format!("from=2026-01-01&to={today}"),
        "from=2026-01-01&to=9999-12-31".to_string(),
        "from=0001-01-01&to=9999-12-31".to_string(),
    ] {
        let (s, k) = stats(&query);
        assert_eq!(s, 200, "{query}: {k}");
        assert_eq!(
            (k["conversations"].as_i64(), k["tickets"].as_i64()),
            (Some(2), Some(1)),
            "{query}: {k}"
        );
    }
    // The range ends at the next local midnight.
    let (_, k) = stats(&format!("from={today}&to={today}"));
    let end = chrono::NaiveDate::parse_from_str(&local_day(1), "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        - chrono::Duration::minutes(420);
    assert_eq!(
        k["to"].as_str().unwrap(),
        end.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    // Yesterday alone and tomorrow alone hold nothing.
    for day in [local_day(-1), local_day(1)] {
        let (s, k) = stats(&format!("from={day}&to={day}"));
        assert_eq!(s, 200, "{k}");
        assert_eq!(
            (k["conversations"].as_i64(), k["tickets"].as_i64()),
            (Some(0), Some(0)),
            "{day}: {k}"
        );
    }
    for query in [
        format!("from={}&to={today}", local_day(1)),
        "from=2026-01-01&to=%2B10000-01-01".to_string(),
        "from=0000-12-31&to=2026-01-01".to_string(),
        "from=hom-qua".to_string(),
    ] {
        let (s, v) = stats(&query);
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_field")),
            "{query}: {v}"
        );
    }
}

/// The SLA deadline is the customer's promised reply: a ticket handed back to the bot
/// or resolved without a person's reply missed it, however soon that happened.
#[test]
fn only_a_first_human_reply_in_time_meets_the_sla() {
    let data = tempfile::tempdir().unwrap();
    let server = start_open_all_day(data.path());
    for user in ["p1-tra-lai", "p1-tra-loi", "p1-giai-quyet"] {
        assert_eq!(
            Chat::new(&server, user).say("em bị trừ tiền 2 lần")["handoff"],
            true
        );
    }
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let (_, list) = call(&server, "GET", "/api/v1/handoffs", Some(&token), None);
    let id_of = |user: &str| -> String {
        let t = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["customer"]["channel_user_id"] == user)
            .unwrap();
        assert_eq!(t["priority"], "P1", "{t}");
        t["id"].as_str().unwrap().to_string()
    };
    let act = |user: &str, action: &str, body: Option<Value>| {
        let path = format!("/api/v1/handoffs/{}/{action}", id_of(user));
        let (s, v) = call(&server, "POST", &path, Some(&token), body);
        assert_eq!(s, 200, "{action}: {v}");
    };
    // Claimed and handed back to the bot, no reply: missed.
    act("p1-tra-lai", "claim", None);
    act("p1-tra-lai", "release", None);
    // Resolved without a reply: missed.
    act("p1-giai-quyet", "resolve", None);
    // Replied within the hour, then handed back: met.
    act(
        "p1-tra-loi",
        "reply",
        Some(json!({"text": "Dạ em kiểm tra giao dịch ngay ạ."})),
    );
    act("p1-tra-loi", "release", None);
    let (s, k) = call(&server, "GET", "/api/v1/stats", Some(ADMIN), None);
    assert_eq!(s, 200, "{k}");
    assert_eq!(
        k["sla"]["P1"],
        json!({"due": 3, "met": 1, "rate": 0.333}),
        "{k}"
    );
}

fn urlenc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// A reply the platform refused for good reached nobody: it does not meet the SLA.
#[test]
fn an_undelivered_reply_does_not_meet_the_sla() {
    let data = tempfile::tempdir().unwrap();
    let server = start_open_all_day(data.path());
    for user in ["p1-den-noi", "p1-khong-den"] {
        assert_eq!(
            Chat::new(&server, user).say("em bị trừ tiền 2 lần")["handoff"],
            true
        );
    }
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let (_, list) = call(&server, "GET", "/api/v1/handoffs", Some(&token), None);
    for t in list.as_array().unwrap() {
        let path = format!("/api/v1/handoffs/{}/reply", t["id"].as_str().unwrap());
        let body = json!({"text": "Dạ em kiểm tra giao dịch ngay ạ."});
        let (s, v) = call(&server, "POST", &path, Some(&token), Some(body));
        assert_eq!(s, 200, "{v}");
    }
    // One reply failed on its platform for good (as a Zalo send does when the API
    // keeps refusing it).
    db_exec(
        data.path(),
        "INSERT INTO outbox (message_id, conversation_id, channel, status, next_attempt_at, created_at, last_error)
         SELECT m.id, m.conversation_id, 'zalo', 'failed', m.created_at, m.created_at, 'refused'
         FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.author = 'agent' AND c.channel_user_id = 'p1-khong-den'",
    );
    // Both deadlines have passed since; both replies were written before them.
    let replied = at(chrono::Utc::now(), -2);
    let due = at(chrono::Utc::now(), -1);
    for sql in [
        format!("UPDATE messages SET created_at = '{replied}' WHERE author = 'agent'"),
        format!("UPDATE audit_log SET created_at = '{replied}' WHERE action = 'reply'"),
        format!("UPDATE tickets SET sla_due_at = '{due}'"),
    ] {
        db_exec(data.path(), &sql);
    }
    let (s, k) = call(&server, "GET", "/api/v1/stats", Some(ADMIN), None);
    assert_eq!(s, 200, "{k}");
    assert_eq!(
        k["sla"]["P1"],
        json!({"due": 2, "met": 1, "rate": 0.5}),
        "{k}"
    );
}
