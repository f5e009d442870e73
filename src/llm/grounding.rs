//! Checks on what the LLM wrote before a customer sees it: it must cite an entry it
//! was given, and every number it states must appear in the entries it cites.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use thiserror::Error;

/// A knowledge entry handed to the LLM.
#[derive(Debug, Clone, Serialize)]
pub struct SourceEntry {
    pub id: String,
    pub question: Option<String>,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grounded {
    pub text: String,
    pub cited: Vec<String>,
}

#[derive(Debug, Error)]
pub enum Rejection {
    #[error("call failed: {0}")]
    Call(super::LlmError),
    #[error("prompt: {0}")]
    Prompt(super::PromptError),
    #[error("empty or overlong reply")]
    Shape,
    #[error("no citation of a retrieved entry")]
    Citation,
    #[error("states numbers not in the cited entries: {0:?}")]
    Numbers(Vec<String>),
    #[error("repeats its instructions")]
    Leak,
}

fn shingles(text: &str, n: usize) -> HashSet<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(n).map(|w| w.join(" ")).collect()
}

/// Whether `reply` repeats a run of six or more words of the instructions.
pub fn leaks(reply: &str, instructions: &str) -> bool {
    let theirs = shingles(instructions, 6);
    shingles(reply, 6).iter().any(|s| theirs.contains(s))
}

static SOURCES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\[\s*(?:nguồn|nguon|sources?)\s*:\s*([^\]]*)\]").expect("valid")
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\d+(?:[.,]\d+)*)\s*(k\b|nghìn|ngàn|triệu|tr\b)?").expect("valid")
});

/// Every number in `text`, as a canonical value ("25.000đ", "25k" and "25 nghìn"
/// are all 25000; "1,5" is 1.5).
pub fn numbers(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for c in NUMBER.captures_iter(text) {
        let raw = &c[1];
        // Dots (and commas followed by exactly three digits) group thousands;
        // a comma before one or two digits is a decimal point.
        let mut int = String::new();
        let mut frac = String::new();
        for (i, p) in raw.split(['.', ',']).enumerate() {
            if i == 0 || (p.len() == 3 && frac.is_empty()) {
                int.push_str(p);
            } else {
                frac.push_str(p);
            }
        }
        let mut value: f64 = format!("{int}.{}", if frac.is_empty() { "0" } else { &frac })
            .parse()
            .unwrap_or(0.0);
        match c.get(2).map(|m| m.as_str().to_lowercase()) {
            Some(u) if u == "k" || u == "nghìn" || u == "ngàn" => value *= 1000.0,
            Some(u) if u == "triệu" || u == "tr" => value *= 1_000_000.0,
            _ => {}
        }
        out.insert(format!("{value}"));
    }
    out
}

/// Accepts a grounded reply: shape, citation, numbers. Returns the text without
/// its citation line.
pub fn check(
    reply: &str,
    entries: &[SourceEntry],
    instructions: &str,
) -> Result<Grounded, Rejection> {
    let cited: Vec<String> = SOURCES
        .captures_iter(reply)
        .flat_map(|c| {
            c[1].split(',')
                .map(|s| s.trim().trim_matches(['"', '\'', '`']).to_string())
                .collect::<Vec<_>>()
        })
        .filter(|id| entries.iter().any(|e| &e.id == id))
        .collect();
    let text = SOURCES.replace_all(reply, "").trim().to_string();
    if text.is_empty() || text.chars().count() > 1500 {
        return Err(Rejection::Shape);
    }
    if cited.is_empty() {
        return Err(Rejection::Citation);
    }
    if leaks(&text, instructions) {
        return Err(Rejection::Leak);
    }
    let mut allowed = HashSet::new();
    for e in entries.iter().filter(|e| cited.contains(&e.id)) {
        allowed.extend(numbers(&e.answer));
        if let Some(q) = &e.question {
            allowed.extend(numbers(q));
        }
    }
    let mut invented: Vec<String> = numbers(&text).difference(&allowed).cloned().collect();
    if !invented.is_empty() {
        invented.sort();
        return Err(Rejection::Numbers(invented));
    }
    Ok(Grounded { text, cited })
}

/// A clarify question: short, and no numbers beyond the options'.
pub fn check_clarify(
    reply: &str,
    options: &[String],
    instructions: &str,
) -> Result<String, Rejection> {
    let text = SOURCES.replace_all(reply, "").trim().to_string();
    if text.is_empty() || text.chars().count() > 300 {
        return Err(Rejection::Shape);
    }
    if leaks(&text, instructions) {
        return Err(Rejection::Leak);
    }
    let allowed: HashSet<String> = options.iter().flat_map(|o| numbers(o)).collect();
    let invented: Vec<String> = numbers(&text).difference(&allowed).cloned().collect();
    if !invented.is_empty() {
        return Err(Rejection::Numbers(invented));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<SourceEntry> {
        vec![
            SourceEntry {
                id: "phi-ship-ha-noi".into(),
                question: Some("Phí ship ra Hà Nội bao nhiêu?".into()),
                answer: "Phí giao nội thành Hà Nội là 25.000đ/đơn, giao trong 1–2 ngày; đơn từ 500.000đ được miễn phí.".into(),
            },
            SourceEntry {
                id: "doi-tra".into(),
                question: None,
                answer: "Đổi trả trong 7 ngày.".into(),
            },
        ]
    }

    #[test]
    fn numbers_are_canonical() {
        let n = |s: &str| {
            let mut v: Vec<String> = numbers(s).into_iter().collect();
            v.sort();
            v
        };
        assert_eq!(n("25.000đ"), vec!["25000"]);
        assert_eq!(n("25k"), vec!["25000"]);
        assert_eq!(n("25 nghìn"), vec!["25000"]);
        assert_eq!(n("1,5 triệu"), vec!["1500000"]);
        assert_eq!(n("1.250.000 VNĐ"), vec!["1250000"]);
        assert_eq!(n("1–2 ngày"), vec!["1", "2"]);
        assert_eq!(n("giảm 10%"), vec!["10"]);
    }

    #[test]
    fn accepts_grounded_and_rejects_the_rest() {
        let good =
            "Dạ, ship nội thành Hà Nội là 25k/đơn, 1-2 ngày là tới ạ.\n[nguồn: phi-ship-ha-noi]";
        let g = check(good, &entries(), "").unwrap();
        assert_eq!(g.cited, vec!["phi-ship-ha-noi"]);
        assert!(!g.text.contains("nguồn"));
        let price = "Dạ, phí ship Hà Nội là 20.000đ ạ. [nguồn: phi-ship-ha-noi]";
        assert!(
            matches!(check(price, &entries(), ""), Err(Rejection::Numbers(v)) if v == vec!["20000"])
        );
        // A number from an entry it did not cite does not count.
        let other = "Dạ, ship Hà Nội 25.000đ, đổi trả 7 ngày ạ. [nguồn: phi-ship-ha-noi]";
        assert!(matches!(
            check(other, &entries(), ""),
            Err(Rejection::Numbers(_))
        ));
        let none = "Dạ, phí ship Hà Nội là 25.000đ ạ.";
        assert!(matches!(
            check(none, &entries(), ""),
            Err(Rejection::Citation)
        ));
        let foreign = "Dạ, 25.000đ ạ. [nguồn: entry-khong-co]";
        assert!(matches!(
            check(foreign, &entries(), ""),
            Err(Rejection::Citation)
        ));
        let rules = "Quy tắc bắt buộc: chỉ dùng thông tin trong phần tài liệu, không bịa giá.";
        let leak =
            "Dạ, quy tắc bắt buộc: chỉ dùng thông tin trong phần tài liệu ạ. [nguồn: doi-tra]";
        assert!(matches!(
            check(leak, &entries(), rules),
            Err(Rejection::Leak)
        ));
        assert!(check(
            "Dạ, đổi trả trong 7 ngày ạ. [nguồn: doi-tra]",
            &entries(),
            rules
        )
        .is_ok());
        assert!(matches!(
            check("[nguồn: doi-tra]", &entries(), ""),
            Err(Rejection::Shape)
        ));
    }
}
