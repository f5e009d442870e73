//! Knowledge gaps: unanswered paraphrases grouped together, an agent's answer
//! proposed, accepted, and the next identical question answered — no restart.

use std::path::Path;

use serde_json::{json, Value};

use crate::server::{agent_login, call, reply_text, Chat, Server};
use crate::support::*;

const ADMIN: &str = "gaps-admin-token";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn unanswered_paraphrases_group_and_an_accepted_answer_is_learned() {
    let data = tempfile::tempdir().unwrap();
    let kb = data.path().join("knowledge");
    copy_dir(&root().join("knowledge"), &kb);
    create_agent(data.path(), "lan", "mat-khau-an-toan");
    let server = Server::start(
        data.path(),
        &[
            ("CSKH_ADMIN_TOKEN", ADMIN),
            ("CSKH_KNOWLEDGE", kb.to_str().unwrap()),
            ("CSKH_BUSINESS_HOURS", "00:00-00:00"),
        ],
    );
    let engraving = [
        "shop có khắc tên lên sản phẩm không",
        "bên mình có dịch vụ khắc tên lên đồ không ạ",
        "shop co khac ten len do khong",
    ];
    let tickets = [
        "shop có bán vé máy bay không",
        "bên bạn có bán vé máy bay ko",
    ];

    // None of these is answered: each is handed off, or met with a choice of entries
    // the customer does not take — both are gaps.
    let unanswered = |v: serde_json::Value| {
        let d = v["decision"]["decision"].as_str().unwrap().to_string();
        assert!(d == "handoff" || d == "clarify", "{v}");
    };
    // The first engraving question goes to an agent, who answers and resolves.
    let mut c1 = Chat::new(&server, "gap-1");
    unanswered(c1.say(engraving[0]));
    assert_eq!(c1.say("cho mình gặp nhân viên")["handoff"], true);
    let token = agent_login(&server, "lan", "mat-khau-an-toan");
    let (_, list) = call(&server, "GET", "/api/v1/handoffs", Some(&token), None);
    let t = list[0]["id"].as_str().unwrap().to_string();
    let answer = "Dạ, bên em nhận khắc tên miễn phí cho ví và thắt lưng da, đơn có khắc tên giao chậm hơn 1 ngày ạ.";
    assert_eq!(
        call(
            &server,
            "POST",
            &format!("/api/v1/handoffs/{t}/reply"),
            Some(&token),
            Some(json!({"text": answer}))
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &server,
            "POST",
            &format!("/api/v1/handoffs/{t}/resolve"),
            Some(&token),
            None
        )
        .0,
        200
    );

    // Others ask the same, and something else the shop does not do.
    for (i, q) in engraving[1..].iter().enumerate() {
        unanswered(Chat::new(&server, &format!("gap-e{i}")).say(q));
    }
    for (i, q) in tickets.iter().enumerate() {
        unanswered(Chat::new(&server, &format!("gap-t{i}")).say(q));
    }
    // Two unrelated questions that share little but "vậy shop" are two gaps (they
    // were one, found by QA).
    let unrelated = [
        "chinh sach doi tra hang nhu the nao vay shop",
        "khi nào có hàng lại vậy shop",
    ];
    for (i, q) in unrelated.iter().enumerate() {
        unanswered(Chat::new(&server, &format!("gap-u{i}")).say(q));
    }
    // A vague question met with a choice the customer takes is not a gap.
    let mut picked = Chat::new(&server, "gap-picked");
    let v = picked.say("bảo hành");
    assert_eq!(v["decision"]["decision"], "clarify", "{v}");
    let v = picked.say("1");
    assert_eq!(v["intent"], "faq", "{v}");

    assert_eq!(
        call(
            &server,
            "GET",
            "/api/v1/knowledge/gaps",
            Some("wrong"),
            None
        )
        .0,
        401
    );
    let (s, gaps) = call(&server, "GET", "/api/v1/knowledge/gaps", Some(ADMIN), None);
    assert_eq!(s, 200, "{gaps}");
    let gaps = gaps.as_array().unwrap().clone();
    let find = |text: &str| {
        gaps.iter()
            .find(|g| g["examples"].as_array().unwrap().iter().any(|e| e == text))
            .cloned()
            .unwrap()
    };
    assert!(
        !gaps.iter().any(|g| g["examples"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "bảo hành")),
        "{gaps:?}"
    );
    let engr = find(engraving[0]);
    let mut got: Vec<&str> = engr["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    got.sort();
    let mut want = engraving.to_vec();
    want.sort();
    assert_eq!(got, want, "paraphrases grouped together: {gaps:?}");
    assert_eq!(engr["count"], 3);
    assert_eq!(engr["status"], "open");
    assert_eq!(engr["proposal"]["answer"], answer);
    let tix = find(tickets[0]);
    assert_eq!(tix["count"], 2, "{gaps:?}");
    assert!(tix["proposal"].is_null());
    assert_ne!(tix["id"], engr["id"]);
    assert_ne!(
        find(unrelated[0])["id"],
        find(unrelated[1])["id"],
        "{gaps:?}"
    );

    // Reject one, accept the other: the next identical question is answered.
    let (s, _) = call(
        &server,
        "POST",
        &format!(
            "/api/v1/knowledge/gaps/{}/reject",
            tix["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(s, 200);
    let (s, v) = call(
        &server,
        "POST",
        &format!(
            "/api/v1/knowledge/gaps/{}/accept",
            engr["id"].as_str().unwrap()
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let entry = v["entry_id"].as_str().unwrap().to_string();
    let learned = std::fs::read_to_string(kb.join("learned.jsonl")).unwrap();
    assert!(learned.contains(&entry) && learned.contains("khắc tên miễn phí"));
    let r = Chat::new(&server, "gap-after").say(engraving[0]);
    assert_eq!(r["decision"]["decision"], "answer", "{r}");
    assert_eq!(r["decision"]["faq_id"], entry.as_str());
    assert_eq!(reply_text(&r), answer);

    // An accepted gap is neither accepted twice nor rejected: 409, nothing changes.
    let gap_path = |g: &Value, action: &str| {
        format!(
            "/api/v1/knowledge/gaps/{}/{action}",
            g["id"].as_str().unwrap()
        )
    };
    for action in ["accept", "reject"] {
        let (s, v) = call(&server, "POST", &gap_path(&engr, action), Some(ADMIN), None);
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (409, Some("gap_already_accepted")),
            "{action}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(&entry),
            "{v}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(kb.join("learned.jsonl")).unwrap(),
        learned
    );
    // Rejecting again is no change.
    let (s, _) = call(
        &server,
        "POST",
        &gap_path(&tix, "reject"),
        Some(ADMIN),
        None,
    );
    assert_eq!(s, 200);

    let (_, gaps) = call(&server, "GET", "/api/v1/knowledge/gaps", Some(ADMIN), None);
    let status: Vec<(String, String)> = gaps
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["id"].as_str().unwrap().to_string(),
                g["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        status.contains(&(engr["id"].as_str().unwrap().to_string(), "accepted".into())),
        "{status:?}"
    );
    assert!(
        status.contains(&(tix["id"].as_str().unwrap().to_string(), "rejected".into())),
        "{status:?}"
    );

    // A rejected gap can still be accepted (nothing was written for it).
    let (s, v) = call(
        &server,
        "POST",
        &gap_path(&tix, "accept"),
        Some(ADMIN),
        Some(json!({"question": tickets[0], "answer": "Dạ, bên em chưa bán vé ạ."})),
    );
    assert_eq!((s, v["status"].as_str()), (200, Some("accepted")), "{v}");
}
