//! The answering core through the `cskh` command line: ask, eval, knowledge errors,
//! the embedding cache and the model itself.

use std::fs;

use serde_json::Value;

use crate::support::*;

fn ask_json(data: &std::path::Path, question: &str) -> Value {
    require_model();
    let o = run(cskh()
        .args(["ask", "--json", "--data"])
        .arg(data)
        .arg(question));
    assert!(o.status.success(), "ask failed: {}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).expect("one JSON object")
}

#[test]
fn ask_answers_with_and_without_diacritics() {
    let data = tempfile::tempdir().unwrap();
    for q in [
        "phí ship ra Hà Nội bao nhiêu",
        "phi ship ra ha noi bao nhieu",
        "ship ra hn bn tiền vậy shop",
    ] {
        let r = ask_json(data.path(), q);
        assert_eq!(r["decision"], "answer", "{q}: {r}");
        assert_eq!(r["faq_id"], "phi-ship-ha-noi", "{q}: {r}");
        assert!(r["answer"].as_str().unwrap().contains("Hà Nội"), "{r}");
        let c = r["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c));
        assert_eq!(r["candidates"][0]["id"], "phi-ship-ha-noi");
    }
}

/// Run from another directory, the program still finds the model installed with it
/// (not silently BM25 alone).
#[test]
fn the_installed_model_is_found_from_any_working_directory() {
    require_model();
    let elsewhere = tempfile::tempdir().unwrap();
    let o = run(cskh()
        .current_dir(elsewhere.path())
        .env_remove("CSKH_MODEL")
        .args(["ask", "--json", "--knowledge"])
        .arg(root().join("knowledge"))
        .arg("phí ship ra Hà Nội bao nhiêu"));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains("no embedding model"), "{err}");
    assert!(
        err.contains("using the model installed with the program"),
        "{err}"
    );
    let r: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(r["faq_id"], "phi-ship-ha-noi", "{r}");
    // The index and caches went to the working directory's `data`, as asked.
    assert!(elsewhere.path().join("data").is_dir());
}

#[test]
fn ask_hands_off_what_the_knowledge_base_cannot_answer() {
    let data = tempfile::tempdir().unwrap();
    for q in [
        "hôm nay thời tiết Đà Lạt thế nào",
        "cong thuc nau pho bo ngon",
    ] {
        let r = ask_json(data.path(), q);
        assert_ne!(r["decision"], "answer", "{q}: {r}");
        assert!(r["faq_id"].is_null() && r["answer"].is_null(), "{r}");
    }
}

#[test]
fn ask_refuses_an_empty_question() {
    let data = tempfile::tempdir().unwrap();
    for q in ["", "   ", "\u{200b}", "\u{1}\u{7f}"] {
        let o = run(cskh().args(["ask", "--data"]).arg(data.path()).arg(q));
        assert!(!o.status.success(), "{q:?}");
        assert!(
            stderr(&o).contains("the question is empty"),
            "{q:?}: {}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{q:?}: {}", stdout(&o));
    }
}

#[test]
fn ask_reads_questions_from_stdin_one_json_line_each() {
    require_model();
    let data = tempfile::tempdir().unwrap();
    let mut child = cskh()
        .args(["ask", "--data"])
        .arg(data.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "thanh toán bằng momo được không").unwrap();
        writeln!(stdin).unwrap();
        writeln!(stdin, "cua hang o ha noi o dau").unwrap();
        writeln!(stdin, "giá vàng hôm nay bao nhiêu").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "one line per non-empty question");
    assert_eq!(lines[0]["faq_id"], "thanh-toan-momo");
    assert_eq!(lines[1]["faq_id"], "cua-hang-ha-noi");
    assert_ne!(lines[2]["decision"], "answer");
    for l in &lines {
        for key in ["decision", "faq_id", "confidence", "answer", "candidates"] {
            assert!(l.get(key).is_some(), "missing {key} in {l}");
        }
    }
}

#[test]
fn without_a_model_bm25_still_answers_and_says_so_once() {
    let data = tempfile::tempdir().unwrap();
    let o = run(cskh()
        .env("CSKH_MODEL", "/nonexistent/model")
        .args(["ask", "--json", "--data"])
        .arg(data.path())
        .arg("thanh toán bằng MoMo được không"));
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(r["candidates"][0]["id"], "thanh-toan-momo", "{r}");
    assert_eq!(stderr(&o).matches("BM25 only").count(), 1, "{}", stderr(&o));
}

/// A knowledge base kept in a spreadsheet: Excel's "CSV UTF-8" export in a Vietnamese
/// locale (byte-order mark, semicolons, CRLF, a cell of several lines) is checked and
/// answered from like the other formats.
#[test]
fn a_spreadsheet_exported_as_csv_is_a_knowledge_base() {
    let kb = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let rows = [
        "\u{feff}Mã;Câu hỏi;Cách hỏi khác;Trả lời;Danh mục;Ghi chú",
        "gio-mo-cua;Tiệm mở cửa mấy giờ?;\"mấy giờ mở cửa\nchủ nhật có mở không\";Dạ, tiệm mở cửa từ 7h đến 21h tất cả các ngày trong tuần, kể cả chủ nhật ạ.;Cửa hàng;",
        "phi-ship;Phí ship bao nhiêu?;ship bn;\"Dạ, phí giao hàng nội thành là 20.000đ; ngoại thành 35.000đ ạ.\";Giao hàng;chưa duyệt",
        "dat-banh;Đặt bánh sinh nhật trước bao lâu?;;Dạ, anh/chị đặt bánh kem sinh nhật trước ít nhất 24 giờ để tiệm kịp làm ạ.;Đặt hàng;",
        "thanh-toan;Thanh toán bằng cách nào?;;Dạ, tiệm nhận tiền mặt, chuyển khoản và ví MoMo ạ.;Thanh toán;",
        "bao-quan;;;Bánh kem bảo quản trong ngăn mát tủ lạnh từ 2 đến 5 độ C và nên dùng trong vòng 2 ngày kể từ khi nhận bánh.;Sản phẩm;",
    ];
    fs::write(kb.path().join("Hỏi đáp.csv"), rows.join("\r\n") + "\r\n").unwrap();
    let o = run(cskh()
        .args(["knowledge", "check", "--knowledge"])
        .arg(kb.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o)
            .contains("5 entries (4 with questions, 1 passages only), 3 question variants, 1 file"),
        "{}",
        stdout(&o)
    );
    require_model();
    let o = run(cskh()
        .args(["ask", "--json", "--knowledge"])
        .arg(kb.path())
        .arg("--data")
        .arg(data.path())
        .arg("dat banh sinh nhat truoc may ngay"));
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(r["candidates"][0]["id"], "dat-banh", "{r}");
    assert_ne!(r["decision"], "handoff", "{r}");
}

/// A shop's own shorthand (`abbreviations.tsv` beside the knowledge files): checked
/// with them, never read as one, and read by BM25 on both sides (the entry says
/// "iPhone", the customer "ip").
#[test]
fn a_shop_abbreviation_table_is_checked_and_read_by_bm25() {
    let kb = tempfile::tempdir().unwrap();
    fs::write(
        kb.path().join("sua-chua.md"),
        "## Thay pin iPhone giá bao nhiêu? {#thay-pin-iphone}\n\nDạ, thay pin iPhone 13 là 850.000đ ạ.\n\n\
         ## Thay pin Samsung giá bao nhiêu? {#thay-pin-samsung}\n\nDạ, thay pin Samsung Galaxy A từ 450.000đ ạ.\n\n\
         ## Tiệm mở cửa mấy giờ? {#gio-mo-cua}\n\nDạ, tiệm mở cửa từ 8h đến 21h ạ.\n",
    )
    .unwrap();
    let ask_bm25 = |data: &std::path::Path| -> Value {
        let o = run(cskh()
            .env("CSKH_MODEL", "/nonexistent/model")
            .args(["ask", "--json", "--knowledge"])
            .arg(kb.path())
            .arg("--data")
            .arg(data)
            .arg("thay pin ip bao nhiêu"));
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(stdout(&o).trim()).unwrap()
    };
    let score = |r: &Value, id: &str| {
        r["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map_or(0.0, |c| c["score"].as_f64().unwrap())
    };
    let data = tempfile::tempdir().unwrap();
    let without = ask_bm25(data.path());

    fs::write(
        kb.path().join("abbreviations.tsv"),
        "\u{feff}# Tiệm sửa điện thoại\r\nip\tiPhone\r\nss\tSamsung\r\n",
    )
    .unwrap();
    let o = run(cskh()
        .args(["knowledge", "check", "--knowledge"])
        .arg(kb.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(
            "3 entries (3 with questions, 0 passages only), 0 question variants, 1 file, \
             2 shop abbreviations (abbreviations.tsv)"
        ),
        "{}",
        stdout(&o)
    );
    let with = ask_bm25(data.path());
    assert_eq!(with["candidates"][0]["id"], "thay-pin-iphone", "{with}");
    assert!(
        score(&with, "thay-pin-iphone") > score(&without, "thay-pin-iphone"),
        "with the table: {with}\nwithout: {without}"
    );
    assert!(
        score(&with, "thay-pin-iphone") > score(&with, "thay-pin-samsung"),
        "{with}"
    );

    // Broken: every command stops with file:line, nothing is built.
    fs::write(
        kb.path().join("abbreviations.tsv"),
        "ip\tiPhone\nss Samsung\n",
    )
    .unwrap();
    let o = run(cskh()
        .args(["knowledge", "check", "--knowledge"])
        .arg(kb.path()));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("abbreviations.tsv:2: expected `short<TAB>expansion`"),
        "{}",
        stderr(&o)
    );
    let fresh = tempfile::tempdir().unwrap();
    let o = run(cskh()
        .args(["ask", "--json", "--knowledge"])
        .arg(kb.path())
        .arg("--data")
        .arg(fresh.path())
        .arg("thay pin ip"));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("abbreviations.tsv:2:"),
        "{}",
        stderr(&o)
    );
    assert!(tree(fresh.path()).is_empty(), "{:?}", tree(fresh.path()));
}

#[test]
fn broken_knowledge_files_fail_with_file_and_line_and_build_nothing() {
    let cases: [(&str, &str, &str); 11] = [
        ("kb.jsonl", "{\"id\": \"a\", \"answer\": \"x\"}\n{\"id\": \"b\", \"answer\": }\n", "kb.jsonl:2: invalid JSON"),
        ("kb.jsonl", "{\"id\": \"a\", \"question\": \"Hỏi?\"}\n", "kb.jsonl:1: entry `a` has no `answer`"),
        ("kb.jsonl", "{\"id\": \"a\", \"answer\": \"x\"}\n\n{\"id\": \"a\", \"answer\": \"y\"}\n", "kb.jsonl:3: duplicate id `a`"),
        ("faq.md", "# Giao hàng\n\n## Phí ship bao nhiêu? {#phi-ship}\n? ship bn\n\n## Có COD không? {#cod}\nDạ có ạ.\n", "faq.md:3: entry `phi-ship` has no answer text"),
        ("faq.md", "## Hỏi {#Sai ID}\nĐáp.\n", "faq.md:1: bad id in `{#Sai ID}`"),
        ("kb.jsonl", "{\"id\": \"goi-qua\", \"answer\": \"x\"}\n{\"id\": \"GOI-QUA\", \"answer\": \"y\"}\n", "kb.jsonl:2: bad id `GOI-QUA`"),
        ("faq.csv", "id,answer\nx_y,Đáp\n", "faq.csv:2: bad id `x_y`"),
        ("faq.md", "## Hỏi? {#xe-dap} nhé\nĐáp.\n", "faq.md:1: text `nhé` after `{#xe-dap}`"),
        ("faq.csv", "id,question,answer\nphi-ship,Phí ship?,Dạ, 30.000đ ạ\n", "faq.csv:2: this row has 4 cells but the header row has 3"),
        ("faq.csv", "question,answer\nPhí ship?,30.000đ\n", "faq.csv:1: the header row has no `id` column"),
        ("faq.md", "## Phí ship? {#phi-ship}\n? ship bn\n? \n\nDạ, 30.000đ ạ.\n", "faq.md:3: a `?` line with nothing after it"),
    ];
    for (name, body, want) in cases {
        let kb = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        fs::write(kb.path().join(name), body).unwrap();
        let o = run(cskh()
            .args(["ask", "--json", "--knowledge"])
            .arg(kb.path())
            .arg("--data")
            .arg(data.path())
            .arg("phí ship"));
        assert!(!o.status.success(), "{name} should be rejected");
        assert!(
            stderr(&o).contains(want),
            "stderr {:?} should contain {want:?}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty());
        assert!(
            tree(data.path()).is_empty(),
            "nothing built: {:?}",
            tree(data.path())
        );
    }
}

#[test]
fn embeddings_are_cached_across_restarts_and_edits() {
    require_model();
    let kb = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let src = fs::read_to_string(root().join("knowledge/thanh-toan.md")).unwrap();
    fs::write(kb.path().join("thanh-toan.md"), &src).unwrap();
    let ask = || {
        run(cskh()
            .env("CSKH_LOG", "info")
            .env("CSKH_EMBED_CACHE", data.path())
            .args(["ask", "--json", "--knowledge"])
            .arg(kb.path())
            .arg("--data")
            .arg(data.path())
            .arg("có trả góp không"))
    };
    let fresh = |o: &std::process::Output| -> usize {
        let err = stderr(o);
        let line = err
            .lines()
            .find(|l| l.contains("embedded_fresh="))
            .unwrap_or_else(|| panic!("no index log line in {err}"));
        let n = line.split("embedded_fresh=").nth(1).unwrap();
        n.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let first = ask();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(fresh(&first) > 10);
    assert_eq!(fresh(&ask()), 0, "a restart re-embeds nothing");
    let edited = src.replacen("Dạ, ", "Dạ vâng, ", 1);
    assert_ne!(edited, src);
    fs::write(kb.path().join("thanh-toan.md"), edited).unwrap();
    // The edited entry's passage vector is recomputed; its question vectors are not.
    assert_eq!(
        fresh(&ask()),
        1,
        "a one-entry edit re-embeds only that entry"
    );
}

#[test]
fn fast_encoders_match_the_reference_model() {
    require_model();
    let embed = |precision: &str, text: &str| -> Vec<f64> {
        let o = run(cskh().args(["model", "embed", "--precision", precision, text]));
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(stdout(&o).trim()).unwrap()
    };
    let cos = |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
    for text in [
        "phí ship ra Hà Nội bao nhiêu",
        "Chính sách đổi trả trong vòng 7 ngày kể từ khi nhận hàng.",
    ] {
        let reference = embed("reference", text);
        let f32 = embed("f32", text);
        let q8 = embed("q8", text);
        let i8 = embed("i8", text);
        let compact = embed("compact", text);
        assert_eq!(f32.len(), 384);
        // Same weights and arithmetic, another operation order: equal up to rounding.
        let c = cos(&f32, &reference);
        assert!(c > 0.99999, "f32 vs reference cosine {c} for {text}");
        let c = cos(&q8, &reference);
        assert!(c > 0.995, "q8 vs reference cosine {c} for {text}");
        // i8 weights and u8 activations (`compact` on a CPU without AVX-512 VNNI).
        let c = cos(&i8, &reference);
        assert!(c > 0.998, "i8 vs reference cosine {c} for {text}");
        // f32 layers, i8 token table.
        let c = cos(&compact, &reference);
        assert!(c > 0.999, "compact vs reference cosine {c} for {text}");
        assert!(
            compact != f32,
            "compact must differ from f32: it rounds the table"
        );
    }
}

fn eval_json(
    knowledge: &str,
    queries: &std::path::Path,
    mode: &str,
    data: &std::path::Path,
) -> Value {
    require_model();
    let o = run(cskh()
        .args(["eval", "--json", "--knowledge", knowledge, "--queries"])
        .arg(queries)
        .args(["--mode", mode, "--data"])
        .arg(data));
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).unwrap()
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

/// Quality on the dev set. The acceptance line (hit@1 0.90, precision 0.95,
/// coverage 0.80) is not reached yet (see README, "Retrieval quality"); these floors
/// sit just under what the defaults measure so any regression fails the build.
#[test]
fn dev_set_quality_stays_at_its_measured_level() {
    let data = tempfile::tempdir().unwrap();
    let dev = root().join("eval/dev.jsonl");
    let hybrid = eval_json("knowledge", &dev, "hybrid", data.path());
    let bm25 = eval_json("knowledge", &dev, "bm25", data.path());
    let dense = eval_json("knowledge", &dev, "dense", data.path());
    eprintln!("hybrid {hybrid}\nbm25 {bm25}\ndense {dense}");
    assert!(f(&hybrid, "n") >= 300.0);
    assert!(f(&hybrid, "hit_at_1") >= 0.83, "{hybrid}");
    assert!(f(&hybrid, "answer_precision") >= 0.93, "{hybrid}");
    assert!(f(&hybrid, "coverage") >= 0.58, "{hybrid}");
    assert!(f(&hybrid, "oos_rejection") >= 0.95, "{hybrid}");
    assert!(f(&hybrid, "hit_at_1") > f(&bm25, "hit_at_1"));
    assert!(f(&hybrid, "hit_at_1") > f(&dense, "hit_at_1"));
    // Without a model the bot answers lexically: less often, but as carefully.
    assert!(f(&bm25, "answer_precision") >= 0.93, "{bm25}");
    assert!(f(&bm25, "oos_rejection") >= 0.95, "{bm25}");
    // Marks stripped from the queries typed with them come back on at least 92% of
    // the words (0.935 measured; the knowledge base alone gave 0.884).
    assert!(f(&hybrid, "restoration_words") >= 2000.0, "{hybrid}");
    assert!(f(&hybrid, "restoration_accuracy") >= 0.92, "{hybrid}");

    // The same in-scope queries typed without diacritics lose at most 5 points.
    let folded = tempfile::NamedTempFile::new().unwrap();
    let mut lines = String::new();
    for line in fs::read_to_string(&dev).unwrap().lines() {
        let mut q: Value = serde_json::from_str(line).unwrap();
        if q["faq_id"].is_null() {
            continue;
        }
        let text = cskh::text::fold(q["text"].as_str().unwrap());
        q["text"] = Value::String(text);
        lines.push_str(&q.to_string());
        lines.push('\n');
    }
    fs::write(folded.path(), lines).unwrap();
    let plain = eval_json("knowledge", folded.path(), "hybrid", data.path());
    eprintln!("diacritic-free {plain}");
    assert!(
        f(&hybrid, "hit_at_1") - f(&plain, "hit_at_1") <= 0.05,
        "diacritic-free hit@1 {} vs {}",
        f(&plain, "hit_at_1"),
        f(&hybrid, "hit_at_1")
    );
}

/// A regression guard on data the defaults were not tuned on: a held-out query set
/// for the demo shop and unrelated knowledge bases of three other trades.
#[test]
fn held_out_sets_stay_above_their_floors() {
    let data = tempfile::tempdir().unwrap();
    let holdout = eval_json(
        "knowledge",
        &root().join("eval/holdout.jsonl"),
        "hybrid",
        data.path(),
    );
    eprintln!("holdout {holdout}");
    assert!(f(&holdout, "hit_at_1") >= 0.80, "{holdout}");
    assert!(f(&holdout, "answer_precision") >= 0.90, "{holdout}");
    assert!(f(&holdout, "coverage") >= 0.55, "{holdout}");
    assert!(f(&holdout, "oos_rejection") >= 0.90, "{holdout}");
    let other = eval_json(
        "eval/other/knowledge",
        &root().join("eval/other/queries.jsonl"),
        "hybrid",
        data.path(),
    );
    eprintln!("other kb {other}");
    assert!(f(&other, "hit_at_1") >= 0.66, "{other}");
    assert!(f(&other, "answer_precision") >= 0.80, "{other}");
    assert!(f(&other, "oos_rejection") >= 0.85, "{other}");
    // Restoring marks relies on general Vietnamese, not on one shop's words.
    assert!(f(&other, "restoration_accuracy") >= 0.90, "{other}");
    // Two more trades: a clinic (questions and some passages) and a bank (passages
    // only, documentation style).
    for (set, hit_at_1) in [("clinic", 0.82), ("bank", 0.78)] {
        let v = eval_json(
            &format!("eval/{set}/knowledge"),
            &root().join(format!("eval/{set}/queries.jsonl")),
            "hybrid",
            data.path(),
        );
        eprintln!("{set} {v}");
        assert!(f(&v, "hit_at_1") >= hit_at_1, "{set} {v}");
        assert!(f(&v, "answer_precision") >= 0.90, "{set} {v}");
        assert!(f(&v, "coverage") >= 0.55, "{set} {v}");
        assert!(f(&v, "oos_rejection") >= 0.90, "{set} {v}");
    }
}

/// Long passages are read whole: the other knowledge base's entries merged into
/// articles of five (about 300–500 of the model's tokens, past the 256 it reads at
/// once), asked about what the fourth and fifth entries said. With one truncated
/// vector per article, dense retrieval found those at hit@1 0.12 (3 of 25); read in
/// windows, 0.76.
#[test]
fn long_passages_are_found_by_their_last_paragraphs() {
    let dir = tempfile::tempdir().unwrap();
    let kb = dir.path().join("knowledge");
    fs::create_dir(&kb).unwrap();
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    let src = fs::read_to_string(root().join("eval/other/knowledge/isp.jsonl")).unwrap();
    for line in src.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let cat = e["category"].as_str().unwrap().to_string();
        match groups.last_mut() {
            Some((c, members)) if *c == cat && members.len() < 5 => members.push(e),
            _ => groups.push((cat, vec![e])),
        }
    }
    let mut articles = String::new();
    let mut owner = std::collections::HashMap::new();
    for (n, (_, members)) in groups.iter().enumerate() {
        let id = format!("bai-{n}");
        let mut parts = Vec::new();
        for (pos, e) in members.iter().enumerate() {
            owner.insert(e["id"].as_str().unwrap().to_string(), (id.clone(), pos));
            let q = e["question"]
                .as_str()
                .map(|q| format!("{q} "))
                .unwrap_or_default();
            parts.push(format!("{q}{}", e["answer"].as_str().unwrap()));
        }
        let article = serde_json::json!({"id": id, "question": null, "answer": parts.join("\n\n")});
        articles.push_str(&format!("{article}\n"));
    }
    fs::write(kb.join("bai-viet.jsonl"), articles).unwrap();
    let mut queries = String::new();
    let mut n = 0;
    for line in fs::read_to_string(root().join("eval/other/queries.jsonl"))
        .unwrap()
        .lines()
    {
        let q: Value = serde_json::from_str(line).unwrap();
        let Some(want) = q["faq_id"].as_str() else {
            continue;
        };
        let (article, pos) = &owner[want];
        if *pos >= 3 {
            let q = serde_json::json!({"text": q["text"], "faq_id": article});
            queries.push_str(&format!("{q}\n"));
            n += 1;
        }
    }
    assert!(n >= 20, "{n} queries");
    let qfile = dir.path().join("queries.jsonl");
    fs::write(&qfile, queries).unwrap();
    let data = dir.path().join("data");
    let dense = eval_json(kb.to_str().unwrap(), &qfile, "dense", &data);
    eprintln!("long passages, dense {dense}");
    assert!(f(&dense, "hit_at_1") >= 0.5, "{dense}");
}

/// `cskh calibrate` fits the confidence model on labelled queries and writes
/// parameters that `--params` accepts; bad input writes nothing.
#[test]
fn calibrate_fits_parameters_that_eval_accepts() {
    require_model();
    let data = tempfile::tempdir().unwrap();
    let calibrate = |flags: &[&str], queries: &std::path::Path, out: &std::path::Path| {
        run(cskh()
            .arg("calibrate")
            .args(flags)
            .arg("--queries")
            .arg(queries)
            .arg("--data")
            .arg(data.path())
            .arg("--out")
            .arg(out))
    };
    let dev = root().join("eval/dev.jsonl");
    let out = data.path().join("params.toml");
    let o = calibrate(&[], &dev, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = fs::read_to_string(&out).unwrap();
    assert!(text.contains("answer precision 0.9"), "{text}");
    // The reranker is fitted first, from the fused order, and is not the no-op.
    assert!(text.contains("# Reranker: of "), "{text}");
    let weights = text
        .lines()
        .find_map(|l| l.strip_prefix("rank_weights = "))
        .expect("rank_weights in the output");
    assert!(
        weights
            .trim_matches(['[', ']'])
            .split(',')
            .any(|w| w.trim().parse::<f64>().unwrap() != 0.0),
        "{weights}"
    );
    for key in [
        "answer_model = { bias = ",
        "offer_model = { bias = ",
        "lexical_answer_model = ",
        "answer_threshold = ",
        "clarify_threshold = ",
    ] {
        assert!(text.contains(key), "{key} missing from {text}");
    }
    let o = run(cskh()
        .args(["eval", "--json", "--queries"])
        .arg(root().join("eval/holdout.jsonl"))
        .arg("--data")
        .arg(data.path())
        .arg("--params")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(f(&v, "answer_precision") >= 0.90, "{v}");
    assert!(f(&v, "coverage") >= 0.5, "{v}");

    // --no-rerank: the fused order, said in the header.
    let fused = data.path().join("fused.toml");
    let o = calibrate(&["--no-rerank"], &dev, &fused);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = fs::read_to_string(&fused).unwrap();
    assert!(text.contains("# Reranker: off"), "{text}");
    assert!(
        text.contains("rank_weights = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]"),
        "{text}"
    );

    // Pooled with another knowledge base and its queries: both named, both counted.
    let other_kb = root().join("eval/other/knowledge");
    let other_set = format!(
        "{}={}",
        other_kb.display(),
        root().join("eval/other/queries.jsonl").display()
    );
    let pooled = data.path().join("pooled.toml");
    let o = calibrate(&["--mode", "bm25", "--also", &other_set], &dev, &pooled);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = fs::read_to_string(&pooled).unwrap();
    let head = text.lines().next().unwrap();
    assert!(head.contains(&other_set), "{head}");
    let n: usize = head
        .split(": ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{head}"));
    let dev_lines = fs::read_to_string(&dev).unwrap().lines().count();
    assert!(n > dev_lines + 100, "{head}");
    // The other set's queries checked against its own knowledge base: dev's queries
    // against it name entries it does not have.
    let crossed = format!("{}={}", other_kb.display(), dev.display());
    let none = data.path().join("crossed.toml");
    let o = calibrate(&["--also", &crossed], &dev, &none);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("names unknown entry"), "{}", stderr(&o));
    assert!(!none.exists());
    let o = calibrate(&["--also", "eval/other/knowledge"], &dev, &none);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("KNOWLEDGE_DIR=QUERIES_FILE"),
        "{}",
        stderr(&o)
    );
    assert!(!none.exists());

    // A query naming an entry the knowledge base does not have: an error, no file.
    let bad = data.path().join("bad.jsonl");
    fs::write(&bad, "{\"text\": \"phí ship\", \"faq_id\": \"khong-co\"}\n").unwrap();
    let none = data.path().join("none.toml");
    let o = calibrate(&[], &bad, &none);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("khong-co"), "{}", stderr(&o));
    assert!(!none.exists());
}

/// Intent accuracy: the dev file the phrase tables were written against, and a
/// held-out file they were not.
#[test]
fn intents_are_recognized() {
    require_model();
    let data = tempfile::tempdir().unwrap();
    let report = |file: &str| -> Value {
        let o = run(cskh()
            .args(["eval", "--json", "--intents", file, "--data"])
            .arg(data.path()));
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(stdout(&o).trim()).unwrap()
    };
    let dev = report("eval/intents.jsonl");
    let holdout = report("eval/intents_holdout.jsonl");
    eprintln!("intents dev {dev}\nintents holdout {holdout}");
    assert!(f(&dev, "accuracy") >= 0.90, "{dev}");
    assert!(f(&holdout, "accuracy") >= 0.78, "{holdout}");
    for intent in [
        "faq",
        "order_status",
        "human_request",
        "complaint",
        "greeting",
        "thanks",
        "goodbye",
        "out_of_scope",
    ] {
        let s = &dev["per_intent"][intent];
        assert!(
            s["precision"].is_number() && s["recall"].is_number() && s["n"].is_number(),
            "{intent}: {dev}"
        );
    }
    // `ask --json` reports the intent too.
    let o = run(cskh()
        .args(["ask", "--json", "--data"])
        .arg(data.path())
        .arg("cho gặp nhân viên"));
    let r: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(r["intent"], "human_request");
}

/// `eval` and `calibrate` check `--params` as `serve` checks `[retrieval]`, name a
/// query's unknown entry with its `file:line`, and name a missing knowledge path once.
#[test]
fn eval_and_calibrate_refuse_bad_params_unknown_entries_and_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("params.toml");
    fs::write(&params, "answer_threshold = 5\n").unwrap();
    let queries = dir.path().join("q.jsonl");
    fs::write(
        &queries,
        "{\"text\": \"phí ship\", \"faq_id\": \"phi-ship-ha-noi\"}\n\n{\"text\": \"bảo hành\", \"faq_id\": \"khong-co-muc-nay\"}\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let cli = |cmd: &str, extra: &[&std::ffi::OsStr]| {
        run(cskh()
            .args([cmd, "--queries"])
            .arg(&queries)
            .arg("--data")
            .arg(&data)
            .env("CSKH_MODEL", "/nonexistent/model")
            .args(extra))
    };
    for cmd in ["eval", "calibrate"] {
        let o = cli(cmd, &["--params".as_ref(), params.as_os_str()]);
        assert!(!o.status.success(), "{cmd}");
        assert!(
            stderr(&o).contains("answer_threshold and clarify_threshold must be between 0 and 1"),
            "{cmd}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("params.toml"), "{}", stderr(&o));

        let o = cli(cmd, &[]);
        assert!(!o.status.success(), "{cmd}");
        let want = format!(
            "{}:3: query \"bảo hành\" names unknown entry `khong-co-muc-nay`",
            queries.display()
        );
        assert!(stderr(&o).contains(&want), "{cmd}: {}", stderr(&o));
    }
    let o = cli(
        "eval",
        &["--knowledge".as_ref(), "/nonexistent/kb".as_ref()],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("/nonexistent/kb"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
