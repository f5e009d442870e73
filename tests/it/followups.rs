//! Follow-up questions in a conversation ("còn Đà Nẵng thì sao?"), over the real
//! server: the measured level on `eval/followups.jsonl` is held as a floor, and a
//! follow-up never turns an unanswerable question into an answer.

use serde_json::Value;

use crate::server::{Chat, Server};
use crate::support::*;

fn decision(v: &Value) -> (Option<&str>, Option<&str>) {
    (
        v["decision"]["decision"].as_str(),
        v["decision"]["faq_id"].as_str(),
    )
}

#[test]
fn follow_up_questions_are_read_with_the_question_before_them() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);

    // One conversation, step by step.
    let mut c = Chat::new(&server, "fu-chain");
    assert_eq!(
        decision(&c.say("phí ship ra hà nội bao nhiêu vậy shop")),
        (Some("answer"), Some("phi-ship-ha-noi"))
    );
    assert_eq!(
        decision(&c.say("còn đà nẵng thì sao")),
        (Some("answer"), Some("phi-ship-tinh-mien-trung"))
    );
    // Still about shipping, though the last answer came from a follow-up: never the
    // Hà Nội or Đà Nẵng fee again (answered, or offered first in a choice).
    let v = c.say("con ve cu chi thi sao");
    assert_eq!(
        v["decision"]["candidates"][0]["id"], "phi-ship-ngoai-thanh-hcm",
        "{v}"
    );
    assert_ne!(decision(&v).0, Some("handoff"), "{v}");
    // "never mind" closes, it is not a question.
    assert_eq!(c.say("thế thì thôi")["intent"], "goodbye");
    // Shaped like a follow-up, but nothing the shop answers: not answered.
    let mut g = Chat::new(&server, "fu-gold");
    assert_eq!(
        decision(&g.say("tai nghe bảo hành bao lâu vậy shop")).0,
        Some("answer")
    );
    let v = g.say("thế còn giá vàng hôm nay thì sao");
    assert_ne!(decision(&v).0, Some("answer"), "{v}");

    // The whole set: each pair in a new conversation.
    let (mut n, mut right, mut wrong, mut oos, mut oos_answered) = (0, 0, 0, 0, 0);
    let set = std::fs::read_to_string(root().join("eval/followups.jsonl")).unwrap();
    for (i, line) in set.lines().enumerate() {
        let p: Value = serde_json::from_str(line).unwrap();
        let mut chat = Chat::new(&server, &format!("fu-{i}"));
        chat.say(p["previous"].as_str().unwrap());
        let v = chat.say(p["text"].as_str().unwrap());
        let (d, id) = decision(&v);
        match p["faq_id"].as_str() {
            Some(want) => {
                n += 1;
                right += usize::from(d == Some("answer") && id == Some(want));
                wrong += usize::from(d == Some("answer") && id != Some(want));
            }
            None => {
                oos += 1;
                oos_answered += usize::from(d == Some("answer"));
            }
        }
    }
    println!(
        "FOLLOWUPS n={n} answered_right={right} answered_wrong={wrong} oos={oos} oos_answered={oos_answered}"
    );
    // Measured: 22 right and 1 wrong of 42 (14 and 1 reading each message alone; the
    // wrong one is answered alone too), none of the 7 unanswerable ones answered.
    assert!(right >= 20, "follow-ups answered right: {right}/{n}");
    assert!(wrong <= 2, "follow-ups answered wrong: {wrong}/{n}");
    assert_eq!(oos_answered, 0, "unanswerable follow-ups answered");
    drop(server);

    // Past the follow-up window (here: none at all) a follow-up is read alone.
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[("CSKH_FOLLOWUP_MINUTES", "0")]);
    let mut c = Chat::new(&server, "fu-late");
    assert_eq!(
        decision(&c.say("phí ship ra hà nội bao nhiêu vậy shop")).1,
        Some("phi-ship-ha-noi")
    );
    let v = c.say("còn đà nẵng thì sao");
    assert_ne!(decision(&v).0, Some("answer"), "{v}");
}

/// A message of several questions is answered question by question, over the real
/// server: the measured level on `eval/multi.jsonl` is held as a floor, and no
/// answer given is for something the message did not ask.
#[test]
fn several_questions_in_one_message_are_each_answered() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let kb = cskh::knowledge::KnowledgeBase::load(&root().join("knowledge")).unwrap();
    // Which entry a reply is (replies are the entries' answers word for word).
    let entry_of = |text: &str| {
        kb.entries
            .iter()
            .find(|e| e.answer.trim() == text.trim())
            .map(|e| e.id.clone())
    };

    let mut c = Chat::new(&server, "multi-one");
    let v = c.say("có ship cod không, với lại phí ship về quận 3 bao nhiêu");
    let replies: Vec<Option<String>> = v["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| entry_of(r["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        replies,
        vec![
            Some("thanh-toan-cod".to_string()),
            Some("phi-ship-noi-thanh-hcm".to_string())
        ],
        "{v}"
    );

    // A follow-up reads after the last of the questions answered.
    let v = c.say("còn Hà Nội thì sao");
    assert_eq!(
        decision(&v),
        (Some("answer"), Some("phi-ship-ha-noi")),
        "{v}"
    );

    let (mut all, mut some, mut wrong) = (0, 0, 0);
    let set = std::fs::read_to_string(root().join("eval/multi.jsonl")).unwrap();
    let n = set.lines().count();
    for (i, line) in set.lines().enumerate() {
        let m: Value = serde_json::from_str(line).unwrap();
        let asked: Vec<&str> = m["faq_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        let v = Chat::new(&server, &format!("multi-{i}")).say(m["text"].as_str().unwrap());
        if decision(&v).0 != Some("answer") {
            continue;
        }
        let answered: Vec<String> = v["replies"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| entry_of(r["text"].as_str().unwrap()))
            .collect();
        let right = answered
            .iter()
            .filter(|a| asked.contains(&a.as_str()))
            .count();
        wrong += answered.len() - right;
        if right == asked.len() {
            all += 1;
        } else if right > 0 {
            some += 1;
        }
    }
    println!("MULTI n={n} every_question={all} some={some} wrong_answers={wrong}");
    // Measured: 18 of 30 with every question answered, 9 with some, no wrong answer
    // (reading each message whole: 0, 22 and 0).
    assert!(all >= 16, "every question answered in {all} of {n}");
    assert_eq!(wrong, 0);
}
