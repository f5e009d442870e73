//! What the caller said (ASR text) → what the bot reads: digits and letters spoken
//! as words become order codes and phone numbers, yes/no and option picks are
//! recognized.

fn digit(word: &str) -> Option<char> {
    Some(match word {
        "không" | "linh" => '0',
        "một" | "mốt" => '1',
        "hai" => '2',
        "ba" => '3',
        "bốn" | "tư" => '4',
        "năm" | "lăm" => '5',
        "sáu" => '6',
        "bảy" | "bẩy" => '7',
        "tám" => '8',
        "chín" => '9',
        w if w.len() == 1 && w.chars().all(|c| c.is_ascii_digit()) => w.chars().next()?,
        _ => return None,
    })
}

/// Vietnamese names of Latin letters as ASR writes them (words that are also
/// common Vietnamese words, like "em", are left out).
fn letter(word: &str) -> Option<char> {
    Some(match word {
        "a" => 'A',
        "bê" | "bờ" => 'B',
        "xê" | "cờ" | "xi" => 'C',
        "dê" | "đê" | "dờ" | "đờ" => 'D',
        "e" => 'E',
        "ép" | "ép-phờ" => 'F',
        "giê" | "gờ" => 'G',
        "hát" | "hắt" | "hờ" => 'H',
        "i" => 'I',
        "ca" | "ka" => 'K',
        "lờ" | "eo" => 'L',
        "mờ" => 'M',
        "nờ" => 'N',
        "ô" | "o" => 'O',
        "pê" | "pờ" => 'P',
        "quy" | "cu" => 'Q',
        "rờ" => 'R',
        "ét" | "sờ" => 'S',
        "tê" | "tờ" => 'T',
        "u" => 'U',
        "vê" | "vờ" => 'V',
        "ích" => 'X',
        "dét" | "zét" => 'Z',
        w if w.len() == 1 && w.chars().all(|c| c.is_ascii_alphabetic()) => {
            w.chars().next()?.to_ascii_uppercase()
        }
        _ => return None,
    })
}

/// A digit word that can follow "mươi" / "mười" as the units ("bốn mươi lăm").
fn unit_digit(word: &str) -> bool {
    digit(word).is_some_and(|d| d != '0') && word.chars().any(|c| !c.is_ascii_digit())
}

/// The digits of a run of number words starting at `i`, and where it ends: digit by
/// digit ("một không không bốn lăm" → 10045), tens as said ("bốn mươi lăm" → 45,
/// "mười hai" → 12, "ba mươi" → 30).
fn digit_run(lower: &[String], i: usize) -> (String, usize) {
    let mut run = String::new();
    let mut j = i;
    while j < lower.len() {
        let w = lower[j].as_str();
        let units_follow = lower.get(j + 1).is_some_and(|n| unit_digit(n));
        if !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()) {
            run.push_str(w);
        } else if w == "mười" {
            run.push('1');
            if !units_follow {
                run.push('0');
            }
        } else if w == "mươi" && !run.is_empty() {
            if !units_follow {
                run.push('0');
            }
        } else if let Some(d) = digit(w) {
            run.push(d);
        } else {
            break;
        }
        j += 1;
    }
    (run, j)
}

/// Rewrites runs of spoken digits (at least 4, with the letter names right before
/// them) as one token: "đê hát hai bốn không năm một bảy" → "DH240517",
/// "không chín một hai …" → "0912…", "thăng một không không bốn lăm" (# said
/// "thăng") → "#10045". Digits already written ("DH 240517", "0912 345 678") are
/// joined the same way.
pub fn normalize(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let lower: Vec<String> = words
        .iter()
        .map(|w| {
            w.trim_matches(|c: char| c == ',' || c == '.')
                .to_lowercase()
        })
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        // "#" is said "thăng" ("dấu thăng"): an order code of the "#10045" kind.
        if matches!(lower[i].as_str(), "thăng" | "#") {
            let (run, j) = digit_run(&lower, i + 1);
            if run.len() >= 4 {
                if out.last().is_some_and(|w| w.to_lowercase() == "dấu") {
                    out.pop();
                }
                out.push(format!("#{run}"));
                i = j;
                continue;
            }
        }
        // A run of digits starting here?
        let (run, j) = match lower[i].as_str() {
            // A run starts on a digit, not on the tens word of a number said whole.
            "mươi" => (String::new(), i),
            _ => digit_run(&lower, i),
        };
        if run.len() >= 4 {
            // Letter names spoken just before the digits belong to the code.
            let mut prefix = String::new();
            // Letters already written as a block ("DH 240517").
            if let Some(last) = out
                .last()
                .filter(|w| (2..=4).contains(&w.len()) && w.chars().all(|c| c.is_ascii_uppercase()))
            {
                prefix = last.clone();
                out.pop();
            }
            let block = !prefix.is_empty();
            while let Some(last) = out.last().filter(|_| !block) {
                match letter(&last.to_lowercase()) {
                    Some(c) if prefix.len() < 4 => {
                        prefix.insert(0, c);
                        out.pop();
                    }
                    _ => break,
                }
            }
            out.push(format!("{prefix}{run}"));
            i = j;
        } else {
            out.push(words[i].to_string());
            i += 1;
        }
    }
    out.join(" ")
}

/// Sounds that say nothing ("ờ", "ừm", "à", "dạ"): a low-confidence result made of
/// them only is nothing heard, not a guess to confirm.
pub fn only_filler(text: &str) -> bool {
    const FILLER: [&str; 18] = [
        "ờ", "ừ", "ừm", "ừ ừ", "ờm", "ơ", "ớ", "à", "á", "ạ", "a", "dạ", "hả", "hử", "ừa", "hm",
        "um", "alo",
    ];
    let t = text.to_lowercase().replace([',', '.', '!', '?', '…'], " ");
    let mut words = t.split_whitespace().peekable();
    words.peek().is_some() && words.all(|w| FILLER.contains(&w))
}

/// A caller taking leave: "chào em", "thôi chào em nhé", "tạm biệt" — not a hello
/// ("alo", "có ai không", "xin chào").
pub fn takes_leave(text: &str) -> bool {
    let t = format!(" {} ", bare(text));
    let hello = [" alo ", " a lô ", " có ai ", " ơi ", " hỏi ", " xin chào "]
        .iter()
        .any(|w| t.contains(w));
    let leave = [" chào ", " tạm biệt ", " bye ", " vậy thôi "]
        .iter()
        .any(|w| t.contains(w));
    leave && !hello
}

/// Thanks ("cảm ơn em nhé", "ok cám ơn").
pub fn thanks(text: &str) -> bool {
    let t = format!(" {} ", bare(text));
    [" cảm ơn ", " cám ơn ", " thank "]
        .iter()
        .any(|w| t.contains(w))
}

/// "Nghe tiếp", "đọc tiếp đi": the caller wants the rest of a long answer.
pub fn wants_more(text: &str) -> bool {
    let t = bare(text);
    let t = t.trim_start_matches("dạ ").trim_start_matches("vâng ");
    matches!(
        t,
        "nghe tiếp"
            | "đọc tiếp"
            | "nói tiếp"
            | "tiếp"
            | "tiếp đi"
            | "tiếp tục"
            | "nghe tiếp đi"
            | "đọc tiếp đi"
            | "nói tiếp đi"
            | "còn nữa"
            | "còn gì nữa"
            | "còn gì nữa không"
    )
}

/// How many digits an answer of digits only gives ("tám năm chín" → 3, "bốn số cuối
/// là ba tám năm chín" → 4); `None` when it says anything else.
pub fn digits_given(text: &str) -> Option<usize> {
    let t = format!(" {} ", bare(text));
    let t = [
        " bốn số cuối ",
        " 4 số cuối ",
        " số cuối ",
        " số điện thoại ",
        " sđt ",
        " của chị ",
        " của anh ",
        " của tôi ",
        " của mình ",
    ]
    .iter()
    .fold(t, |t, p| t.replace(p, " "));
    let mut n = 0;
    for w in t.split_whitespace() {
        match w {
            "là" | "số" | "dạ" | "vâng" | "thì" => {}
            w if w.chars().all(|c| c.is_ascii_digit()) => n += w.len(),
            w if digit(w).is_some() => n += 1,
            _ => return None,
        }
    }
    (n > 0).then_some(n)
}

fn bare(text: &str) -> String {
    text.to_lowercase()
        .replace([',', '.', '!', '?'], " ")
        .split_whitespace()
        .filter(|w| !matches!(*w, "ạ" | "à" | "nhé" | "ơi" | "em"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A yes / no answer to a confirmation question.
pub fn yes_no(text: &str) -> Option<bool> {
    let t = bare(text);
    let t = match t.split_once(' ') {
        Some(("dạ" | "vâng" | "à", rest)) => rest.to_string(),
        _ => t,
    };
    const NO: [&str; 8] = [
        "không",
        "không phải",
        "sai",
        "sai rồi",
        "không đúng",
        "chưa đúng",
        "nhầm",
        "không có",
    ];
    const YES: [&str; 13] = [
        "có",
        "đúng",
        "đúng rồi",
        "phải",
        "phải rồi",
        "vâng",
        "dạ",
        "dạ vâng",
        "dạ đúng",
        "ừ",
        "ok",
        "chính xác",
        "đúng vậy",
    ];
    if NO.contains(&t.as_str()) {
        Some(false)
    } else if YES.contains(&t.as_str()) {
        Some(true)
    } else {
        None
    }
}

/// "thứ hai", "số hai", "câu 2" → "2" (a pick among options read out).
pub fn pick(text: &str) -> Option<String> {
    let t = bare(text);
    let t = t
        .trim_start_matches("câu ")
        .trim_start_matches("số ")
        .trim_start_matches("cái ");
    let n = match t {
        "thứ nhất" | "một" | "1" => 1,
        "thứ hai" | "hai" | "2" => 2,
        "thứ ba" | "ba" | "3" => 3,
        "thứ tư" | "bốn" | "4" => 4,
        "thứ năm" | "năm" | "5" => 5,
        _ => return None,
    };
    Some(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoken_codes_and_phones() {
        let cases = [
            ("đơn đê hát hai bốn không năm một bảy", "đơn DH240517"),
            (
                "mã đơn là dê hát hai bốn không năm một bảy ạ",
                "mã đơn là DH240517 ạ",
            ),
            (
                "số em là không chín một hai ba bốn năm sáu bảy tám",
                "số em là 0912345678",
            ),
            ("không chín một hai ba bốn năm sáu bảy tám", "0912345678"),
            ("bốn số cuối năm sáu bảy tám", "bốn số cuối 5678"),
            ("đơn DH 240517", "đơn DH240517"),
            ("số 0912 345 678", "số 0912345678"),
            (
                "phí ship ra hà nội bao nhiêu",
                "phí ship ra hà nội bao nhiêu",
            ),
            ("em muốn đổi hai cái áo", "em muốn đổi hai cái áo"),
            ("giao mất ba bốn ngày không", "giao mất ba bốn ngày không"),
            // "#" is said "thăng"; a number may be said with its tens.
            ("mã đơn thăng một không không bốn lăm", "mã đơn #10045"),
            ("mã đơn dấu thăng 10045", "mã đơn #10045"),
            ("đơn thăng một không không bốn mươi lăm ạ", "đơn #10045 ạ"),
            ("mã đơn là một không không bốn lăm", "mã đơn là 10045"),
            ("thăng mười nghìn", "thăng mười nghìn"),
            ("hai mươi lăm nghìn", "hai mươi lăm nghìn"),
            ("năm mươi nghìn một đơn", "năm mươi nghìn một đơn"),
            ("đơn một không không bốn mươi lăm", "đơn 10045"),
        ];
        for (heard, want) in cases {
            assert_eq!(normalize(heard), want, "{heard}");
        }
    }

    #[test]
    fn yes_no_and_picks() {
        assert_eq!(yes_no("Dạ đúng rồi ạ"), Some(true));
        assert_eq!(yes_no("vâng không phải"), Some(false));
        assert_eq!(yes_no("đúng rồi ạ"), Some(true));
        assert_eq!(yes_no("có"), Some(true));
        assert_eq!(yes_no("Không phải"), Some(false));
        assert_eq!(yes_no("phí ship bao nhiêu"), None);
        assert_eq!(pick("câu thứ hai ạ"), Some("2".into()));
        assert_eq!(pick("số một"), Some("1".into()));
        assert_eq!(pick("thứ ba"), Some("3".into()));
        assert_eq!(pick("phí ship"), None);
    }

    #[test]
    fn filler_leave_taking_and_digits() {
        for f in ["ờ", "ừm", "à", "Dạ.", "ờ ờ", "alo"] {
            assert!(only_filler(f), "{f}");
        }
        for t in ["", "ờ phí ship", "không"] {
            assert!(!only_filler(t), "{t}");
        }
        for t in [
            "chào em",
            "thôi chào em nhé",
            "cảm ơn em chào em",
            "ok tạm biệt",
        ] {
            assert!(takes_leave(t), "{t}");
        }
        assert!(thanks("ok cảm ơn em nhé") && !thanks("chào em"));
        for t in [
            "alo",
            "alo chào em",
            "xin chào",
            "em ơi",
            "phí ship",
            "cảm ơn em",
        ] {
            assert!(!takes_leave(t), "{t}");
        }
        assert!(wants_more("nghe tiếp"));
        assert!(wants_more("Dạ đọc tiếp đi em"));
        assert!(!wants_more("phí ship"));
        assert_eq!(digits_given("tám năm chín"), Some(3));
        assert_eq!(digits_given("bốn số cuối là ba tám năm chín ạ"), Some(4));
        assert_eq!(digits_given("số của chị là 859"), Some(3));
        assert_eq!(
            digits_given("không chín một hai ba bốn năm sáu bảy"),
            Some(9)
        );
        assert_eq!(digits_given("chị không nhớ"), None);
        assert_eq!(digits_given("ờ"), None);
    }
}
