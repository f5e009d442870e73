//! Live knowledge: an operator edits the knowledge files of a running server and the
//! bot answers from them without a restart; a broken edit changes nothing and says
//! where it is broken.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::{call, db_count, Chat, Server};
use crate::support::*;

const ADMIN: &str = "reload-admin-token";

const ENGRAVING: &str = "\
# Dịch vụ thêm

## Shop có khắc tên lên ví da không? {#khac-ten-vi-da}
? bên mình có nhận khắc chữ lên ví không
? khắc tên lên thắt lưng có mất phí không

Dạ, Mây Xanh nhận khắc tên miễn phí lên ví và thắt lưng da mua tại shop ạ. Anh/chị ghi
tên cần khắc (tối đa 12 ký tự) ở phần ghi chú khi đặt hàng, đơn có khắc tên giao chậm
hơn 1 ngày so với bình thường ạ.
";

const QUESTION: &str = "shop có khắc tên lên ví da không ạ";

fn status(server: &Server) -> Value {
    let (s, v) = call(server, "GET", "/api/v1/knowledge", Some(ADMIN), None);
    assert_eq!(s, 200, "{v}");
    v
}

/// Polls the knowledge status until `done` holds (the watcher polls every second).
fn wait_for(server: &Server, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = status(server);
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {v}\n{}",
            server.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn index_dirs(data: &Path) -> usize {
    std::fs::read_dir(data.join("index"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

#[test]
fn knowledge_edits_go_live_without_a_restart_and_broken_ones_change_nothing() {
    let data = tempfile::tempdir().unwrap();
    let kb = data.path().join("knowledge");
    copy_dir(&root().join("knowledge"), &kb);
    let server = Server::start(
        data.path(),
        &[
            ("CSKH_ADMIN_TOKEN", ADMIN),
            ("CSKH_KNOWLEDGE", kb.to_str().unwrap()),
            ("CSKH_KNOWLEDGE_WATCH_SECS", "1"),
        ],
    );
    let start = status(&server);
    assert_eq!(start["reloads"], 0, "{start}");
    assert_eq!(start["last_error"], Value::Null, "{start}");
    let entries = start["entries"].as_u64().unwrap();
    assert!(entries >= 80, "{start}");

    // Not in the knowledge base yet: not answered, and the operator's "try a
    // question" says so without storing a conversation.
    let v = Chat::new(&server, "before").say(QUESTION);
    assert_ne!(v["decision"]["decision"], "answer", "{v}");
    let try_it = || {
        let path = format!("/api/v1/knowledge/try?q={}", QUESTION.replace(' ', "%20"));
        let (s, v) = call(&server, "GET", &path, Some(ADMIN), None);
        assert_eq!(s, 200, "{v}");
        v
    };
    let conversations = || db_count(data.path(), "SELECT COUNT(*) FROM conversations");
    let before = conversations();
    assert_ne!(try_it()["decision"], "answer");
    assert_eq!(conversations(), before);
    let (s, _) = call(&server, "GET", "/api/v1/knowledge/try?q=ship", None, None);
    assert_eq!(s, 401);
    let (s, v) = call(
        &server,
        "GET",
        "/api/v1/knowledge/try?q=",
        Some(ADMIN),
        None,
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );

    // The operator adds a file; the watcher picks it up.
    std::fs::write(kb.join("dich-vu-them.md"), ENGRAVING).unwrap();
    let after = wait_for(&server, "the new file is loaded", |v| v["reloads"] == 1);
    assert_eq!(after["entries"].as_u64().unwrap(), entries + 1, "{after}");
    assert_eq!(
        after["files"].as_u64().unwrap(),
        start["files"].as_u64().unwrap() + 1
    );
    let tried = try_it();
    assert_eq!(
        (tried["decision"].as_str(), tried["faq_id"].as_str()),
        (Some("answer"), Some("khac-ten-vi-da")),
        "{tried}"
    );
    assert_eq!(tried["question"], "Shop có khắc tên lên ví da không?");
    // An edit that keeps the file's size and modification time is seen too.
    let file = kb.join("dich-vu-them.md");
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let edited = ENGRAVING.replace("tối đa 12 ký tự", "tối đa 15 ký tự");
    assert_eq!(edited.len(), ENGRAVING.len());
    std::fs::write(&file, &edited).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    let after = wait_for(&server, "the same-size edit is loaded", |v| {
        v["reloads"] == 2
    });
    assert_eq!(after["entries"].as_u64().unwrap(), entries + 1, "{after}");
    assert!(
        try_it()["answer"]
            .as_str()
            .unwrap()
            .contains("tối đa 15 ký tự"),
        "{}",
        try_it()
    );
    let v = Chat::new(&server, "after").say(QUESTION);
    assert_eq!(v["decision"]["decision"], "answer", "{v}");
    assert_eq!(v["decision"]["faq_id"], "khac-ten-vi-da", "{v}");
    assert!(
        v["replies"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Anh/chị ghi tên cần khắc"),
        "{v}"
    );

    // A broken edit: the request says where, the watcher does not retry it, and the
    // knowledge that was live keeps answering.
    std::fs::write(
        kb.join("nhap.jsonl"),
        "{\"id\": \"nhap-1\", \"question\": \"câu hỏi chưa có trả lời\"}\n",
    )
    .unwrap();
    let (s, v) = call(
        &server,
        "POST",
        "/api/v1/knowledge/reload",
        Some(ADMIN),
        None,
    );
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "invalid_knowledge", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("nhap.jsonl:1") && msg.contains("answer"),
        "{msg}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let broken = status(&server);
    assert_eq!(broken["reloads"], 2, "{broken}");
    assert_eq!(broken["entries"], after["entries"], "{broken}");
    assert!(
        broken["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("nhap.jsonl:1"),
        "{broken}"
    );
    let v = Chat::new(&server, "while-broken").say(QUESTION);
    assert_eq!(v["decision"]["faq_id"], "khac-ten-vi-da", "{v}");

    // Without the admin token nothing happens.
    let (s, _) = call(
        &server,
        "POST",
        "/api/v1/knowledge/reload",
        Some("wrong"),
        None,
    );
    assert_eq!(s, 401);
    let (s, _) = call(&server, "GET", "/api/v1/knowledge", None, None);
    assert_eq!(s, 401);

    // Fixed: the watcher reloads and the error is gone.
    std::fs::remove_file(kb.join("nhap.jsonl")).unwrap();
    let fixed = wait_for(&server, "the fix is loaded", |v| v["reloads"] == 3);
    assert_eq!(fixed["last_error"], Value::Null, "{fixed}");

    // The entry is taken out again; SIGHUP rereads too (watcher or signal, whichever
    // comes first, and nothing is lost if both do).
    std::fs::remove_file(kb.join("dich-vu-them.md")).unwrap();
    server.signal("HUP");
    let gone = wait_for(&server, "the removal is loaded", |v| {
        v["entries"].as_u64() == Some(entries)
    });
    assert_eq!(gone["last_error"], Value::Null, "{gone}");
    let v = Chat::new(&server, "gone").say(QUESTION);
    assert_ne!(v["decision"]["faq_id"], "khac-ten-vi-da", "{v}");

    // Old versions of the index do not pile up: the current and the previous one stay.
    assert!(index_dirs(data.path()) <= 2, "{}", index_dirs(data.path()));
    assert!(server.stop().success());
}

#[test]
fn knowledge_check_reports_what_the_files_hold_or_where_they_break() {
    let o = run(cskh().args(["knowledge", "check"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(" entries (") && out.contains("passages only"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.md"),
        "## Câu một {#mot}\n\nDạ, trả lời một ạ.\n\n## Câu hai {#mot}\n\nDạ, trả lời hai ạ.\n",
    )
    .unwrap();
    let o = run(cskh()
        .args(["knowledge", "check", "--knowledge"])
        .arg(dir.path()));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("a.md:5") && err.contains("mot"), "{err}");
}

/// A phone-repair shop's knowledge: its customers write "ip" for iPhone, which no
/// general table knows.
const PHONE_REPAIR: &str = "\
# Thay pin

## Thay pin iPhone giá bao nhiêu? {#thay-pin-iphone}
? pin iPhone bị chai thay hết bao nhiêu tiền

Dạ, giá thay pin iPhone chính hãng tại tiệm:
- iPhone 13: 850.000đ
- iPhone 14: 1.050.000đ
Thay xong trong 30 phút, bảo hành pin 6 tháng ạ.

## Thay pin Samsung giá bao nhiêu? {#thay-pin-samsung}

Dạ, thay pin Samsung dòng Galaxy A từ 450.000đ, dòng Galaxy S từ 750.000đ ạ. Thay xong
trong 30 phút.

## Thay pin Oppo giá bao nhiêu? {#thay-pin-oppo}

Dạ, thay pin Oppo từ 350.000đ tùy đời máy ạ.

# Màn hình

## Thay màn hình iPhone giá bao nhiêu? {#thay-man-hinh-iphone}

Dạ, màn hình iPhone 13 là 2.900.000đ, iPhone 14 là 3.400.000đ, thay trong 1 giờ ạ.

## Thay màn hình Samsung giá bao nhiêu? {#thay-man-hinh-samsung}

Dạ, màn hình Samsung Galaxy A từ 1.200.000đ ạ.

## Ép kính điện thoại mất bao lâu? {#ep-kinh}

Dạ, ép kính lấy trong ngày, máy gửi trước 10h sáng lấy lúc 17h ạ.

# Cửa hàng

## Tiệm mở cửa mấy giờ? {#gio-mo-cua}

Dạ, tiệm mở cửa từ 8h đến 21h tất cả các ngày ạ.

## Tiệm ở đâu? {#dia-chi}

Dạ, tiệm ở 125 Trần Hưng Đạo, Quận 1, TP.HCM ạ.

## Kiểm tra máy có mất phí không? {#kiem-tra}

Dạ, tiệm kiểm tra máy miễn phí, báo giá trước khi sửa ạ.

## Sửa xong bảo hành bao lâu? {#bao-hanh}

Dạ, linh kiện thay tại tiệm được bảo hành từ 3 đến 12 tháng tùy loại ạ.
";

const SHORTHAND: &str = "thay pin ip bao nhiêu";

/// The fused score of entry `id` in a "try a question" result (0 when not listed).
fn score_of(tried: &Value, id: &str) -> f64 {
    tried["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .map_or(0.0, |c| c["score"].as_f64().unwrap())
}

#[test]
fn a_shop_abbreviation_table_is_read_by_retrieval_and_reloaded_live() {
    let data = tempfile::tempdir().unwrap();
    let kb = data.path().join("knowledge");
    std::fs::create_dir_all(&kb).unwrap();
    std::fs::write(kb.join("sua-chua.md"), PHONE_REPAIR).unwrap();
    let server = Server::start(
        data.path(),
        &[
            ("CSKH_ADMIN_TOKEN", ADMIN),
            ("CSKH_KNOWLEDGE", kb.to_str().unwrap()),
            ("CSKH_KNOWLEDGE_WATCH_SECS", "1"),
        ],
    );
    let start = status(&server);
    let try_it = || {
        let path = format!("/api/v1/knowledge/try?q={}", SHORTHAND.replace(' ', "%20"));
        let (s, v) = call(&server, "GET", &path, Some(ADMIN), None);
        assert_eq!(s, 200, "{v}");
        v
    };

    // Without the table "ip" is an unknown word: the question reads as "thay pin …
    // bao nhiêu", which every battery entry matches as well.
    let before = try_it();
    assert_ne!(
        (before["decision"].as_str(), before["faq_id"].as_str()),
        (Some("answer"), Some("thay-pin-iphone")),
        "{before}"
    );

    // The owner adds the shop's shorthand; the watcher reloads it.
    std::fs::write(
        kb.join("abbreviations.tsv"),
        "# Cách khách của tiệm viết tắt\nip\tiPhone\nss\tSamsung\n",
    )
    .unwrap();
    let after = wait_for(&server, "the abbreviation table is loaded", |v| {
        v["reloads"] == 1
    });
    assert_eq!(after["last_error"], Value::Null, "{after}");
    // It is no knowledge file: the same entries from the same one file.
    assert_eq!(
        (&after["entries"], &after["files"]),
        (&start["entries"], &start["files"]),
        "{after}"
    );
    let tried = try_it();
    assert_eq!(
        (tried["decision"].as_str(), tried["faq_id"].as_str()),
        (Some("answer"), Some("thay-pin-iphone")),
        "{tried}\nwithout the table: {before}"
    );
    // The entry that only says "iPhone" scores better than it did, and leads the other
    // battery entry by more.
    let lead = |v: &Value| score_of(v, "thay-pin-iphone") - score_of(v, "thay-pin-samsung");
    assert!(
        score_of(&tried, "thay-pin-iphone") > score_of(&before, "thay-pin-iphone") + 0.05,
        "{tried}\nwithout the table: {before}"
    );
    assert!(lead(&tried) > lead(&before) + 0.05, "{tried}\n{before}");
    // Customers' messages read through it too, and the answer's list ends where the
    // owner ended it.
    let v = Chat::new(&server, "ip").say("shop ơi thay pin ip bao nhiêu vậy");
    assert_eq!(v["decision"]["faq_id"], "thay-pin-iphone", "{v}");
    assert!(
        v["replies"][0]["text"]
            .as_str()
            .unwrap()
            .contains("- iPhone 14: 1.050.000đ\nThay xong trong 30 phút"),
        "{v}"
    );

    // A broken table changes nothing and says where it is broken.
    std::fs::write(
        kb.join("abbreviations.tsv"),
        "ip\tiPhone\nss\tSamsung\nip\tiPad\n",
    )
    .unwrap();
    let (s, v) = call(
        &server,
        "POST",
        "/api/v1/knowledge/reload",
        Some(ADMIN),
        None,
    );
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "invalid_knowledge", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("abbreviations.tsv:3") && msg.contains("`ip` is listed twice"),
        "{msg}"
    );
    let broken = status(&server);
    assert_eq!(broken["reloads"], 1, "{broken}");
    assert!(
        broken["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("abbreviations.tsv:3"),
        "{broken}"
    );
    let still = try_it();
    assert_eq!(still["faq_id"], "thay-pin-iphone", "{still}");

    // Taken out again: back to the built-in table alone.
    std::fs::remove_file(kb.join("abbreviations.tsv")).unwrap();
    let gone = wait_for(&server, "the removal is loaded", |v| v["reloads"] == 2);
    assert_eq!(gone["last_error"], Value::Null, "{gone}");
    let again = try_it();
    assert_eq!(
        score_of(&again, "thay-pin-iphone"),
        score_of(&before, "thay-pin-iphone"),
        "{again}\n{before}"
    );
    assert!(server.stop().success());
}
