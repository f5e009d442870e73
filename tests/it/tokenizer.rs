//! The compact Unigram tokenizer encodes exactly as `tokenizers`' own: every
//! knowledge-base text and evaluation query of the repository, and awkward input.

use cskh::embed::TextTokenizer;
use tokenizers::{Tokenizer, TruncationParams};

use crate::support::{model_dir, root};

fn texts() -> Vec<String> {
    let mut texts = Vec::new();
    let mut files = Vec::new();
    for dir in ["knowledge", "eval", "eval/other", "eval/other/knowledge"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            texts.push(line.to_string());
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                for k in ["text", "question", "answer"] {
                    if let Some(s) = v[k].as_str() {
                        texts.push(format!("query: {s}"));
                    }
                }
            }
        }
    }
    let awkward = [
        "",
        " ",
        "  hai  dấu   cách ",
        "\t tab\nxuống dòng\r\n",
        "😀👍🏽 ok nha shop 🥰🥰",
        "中文 日本語 ภาษาไทย 한국어",
        "<s> <mask> </s><unk>x<pad>",
        "\u{E000}\u{E001}ab\u{E002} \u{10FFFF}",
        "a\u{200D}b\u{200B}c",
        "Hoa\u{0300} đơn (decomposed)",
        "ＡＢＣ１２３ fullwidth",
        "ﬁ ligature Ⅻ ① ㍿",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ];
    texts.extend(awkward.iter().map(|s| s.to_string()));
    // Long enough to be truncated.
    texts.push("phí ship bao nhiêu ".repeat(200));
    texts
}

#[test]
fn compact_unigram_tokenizer_matches_tokenizers() {
    crate::support::require_model();
    let path = model_dir().join("tokenizer.json");
    let mut compact = TextTokenizer::load(&path).unwrap();
    assert!(
        matches!(compact, TextTokenizer::Compact(_)),
        "e5's Unigram vocabulary takes the compact path"
    );
    let mut reference = Tokenizer::from_file(&path).unwrap();
    let trunc = TruncationParams {
        max_length: 512,
        ..Default::default()
    };
    compact.with_truncation(trunc.clone()).unwrap();
    reference.with_truncation(Some(trunc)).unwrap();
    let texts = texts();
    assert!(texts.len() > 2000, "{}", texts.len());
    let ours = compact.encode_batch(texts.clone()).unwrap();
    let theirs = reference.encode_batch(texts.clone(), true).unwrap();
    let mut differ = Vec::new();
    for ((t, a), b) in texts.iter().zip(&ours).zip(&theirs) {
        if a.get_ids() != b.get_ids()
            || a.get_offsets() != b.get_offsets()
            || a.get_attention_mask() != b.get_attention_mask()
            || a.get_type_ids() != b.get_type_ids()
        {
            differ.push(t.clone());
        }
    }
    assert!(
        differ.is_empty(),
        "{} differ: {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
    let long = ours.last().unwrap();
    assert_eq!(long.get_ids().len(), 512, "truncated");
}
