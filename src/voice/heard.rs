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

/// Rewrites runs of spoken digits (at least 4, with the letter names right before
/// them) as one token: "đê hát hai bốn không năm một bảy" → "DH240517",
/// "không chín một hai …" → "0912…". Digits already written ("DH 240517",
/// "0912 345 678") are joined the same way.
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
        // A run of digits starting here?
        let mut j = i;
        let mut run = String::new();
        while j < words.len() {
            let w = &lower[j];
            if w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty() {
                run.push_str(w);
            } else if let Some(d) = digit(w) {
                run.push(d);
            } else {
                break;
            }
            j += 1;
        }
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
}
