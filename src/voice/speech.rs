//! Text → speakable Vietnamese: short replies, lists read as "thứ nhất…", and the
//! numbers TTS engines get wrong (money, dates, times, percentages, phone numbers and
//! order codes) written out as words.

use std::sync::LazyLock;

use regex::{Captures, Regex};

const DIGITS: [&str; 10] = [
    "không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín",
];
const ORDINALS: [&str; 10] = [
    "thứ nhất",
    "thứ hai",
    "thứ ba",
    "thứ tư",
    "thứ năm",
    "thứ sáu",
    "thứ bảy",
    "thứ tám",
    "thứ chín",
    "thứ mười",
];
/// Spoken words one answer may take before the rest waits for "nghe tiếp" (about
/// fifteen seconds of speech).
pub const MAX_WORDS: usize = 60;

/// Reads three digits; `full` when a higher group was read (then "không trăm",
/// "linh" are spoken).
fn triple(n: u64, full: bool) -> String {
    let (h, t, u) = (n / 100, (n / 10) % 10, n % 10);
    let mut words: Vec<&str> = Vec::new();
    if h > 0 || full {
        words.push(DIGITS[h as usize]);
        words.push("trăm");
    }
    match t {
        0 if u > 0 => {
            if h > 0 || full {
                words.push("linh");
            }
            words.push(DIGITS[u as usize]);
        }
        0 => {}
        1 => {
            words.push("mười");
            match u {
                0 => {}
                5 => words.push("lăm"),
                _ => words.push(DIGITS[u as usize]),
            }
        }
        _ => {
            words.push(DIGITS[t as usize]);
            words.push("mươi");
            match u {
                0 => {}
                1 => words.push("mốt"),
                4 => words.push("tư"),
                5 => words.push("lăm"),
                _ => words.push(DIGITS[u as usize]),
            }
        }
    }
    words.join(" ")
}

/// A whole number in Vietnamese words ("2026" → "hai nghìn không trăm hai mươi sáu").
pub fn number(n: u64) -> String {
    if n == 0 {
        return DIGITS[0].into();
    }
    const UNITS: [&str; 4] = ["", "nghìn", "triệu", "tỷ"];
    let mut groups = Vec::new();
    let mut rest = n;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let mut out: Vec<String> = Vec::new();
    for (i, g) in groups.iter().enumerate().rev() {
        if *g == 0 {
            continue;
        }
        let higher = i + 1 < groups.len();
        let mut part = triple(*g, higher);
        // Beyond "tỷ" the units repeat: 10^12 is "nghìn tỷ".
        let unit = match i {
            0 => String::new(),
            i if i < 4 => UNITS[i].to_string(),
            i => format!("{} tỷ", UNITS[i - 3]),
        };
        if !unit.is_empty() {
            part.push(' ');
            part.push_str(&unit);
        }
        out.push(part);
    }
    out.join(" ")
}

/// Digit by digit ("0912" → "không chín một hai").
pub fn digits(s: &str) -> String {
    s.chars()
        .filter_map(|c| c.to_digit(10).map(|d| DIGITS[d as usize]))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Letters spelled, digits one by one ("DH240517" → "D H hai bốn không năm một bảy").
pub fn code(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_digit(10) {
            Some(d) => DIGITS[d as usize].to_string(),
            None => c.to_ascii_uppercase().to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn grouped(s: &str) -> u64 {
    s.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

/// "1,5" → "một phẩy năm"; "150.000" → "một trăm năm mươi nghìn".
fn amount(s: &str) -> String {
    match s.split_once(',') {
        Some((int, frac)) => format!("{} phẩy {}", number(grouped(int)), digits(frac)),
        None => number(grouped(s)),
    }
}

fn month(m: u64) -> String {
    if m == 4 {
        "tư".into()
    } else {
        number(m)
    }
}

macro_rules! re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| Regex::new($pat).expect("valid pattern"));
    };
}

re!(URL, r"https?://\S+");
re!(PER_UNIT, r"(\d[\d.,]*\s*(?:đ|₫|k|nghìn|triệu))/(\p{L}+)");
re!(
    PHONE,
    r"(?:\+84|\b0)(?:[\s.]?\d){9}\b|\b1[89]00(?:[\s.]?\d){4,6}\b"
);
// A code mixing capitals and digits ("DH240517", "GHNAQY6YZW", "8K2M4Q7", "2XL")
// wherever its digits fall, and a ticket code of letters only ("YCKMNPQR").
re!(
    CODE,
    r"\b(?:[A-Z][A-Z0-9]*[0-9]|[0-9]+[A-Z])[A-Z0-9]*\b|\bYC[A-Z]{6}\b"
);
re!(
    MONEY,
    r"(\d{1,3}(?:\.\d{3})+|\d+(?:,\d+)?)\s*(?:đ|₫|đồng|vnđ|VNĐ|vnd|VND)(?:\b|$)|(\d+(?:,\d+)?)\s*[kK]\b"
);
re!(PERCENT, r"(\d+(?:,\d+)?)\s*%");
re!(DATE, r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}))?\b");
re!(TIME, r"\b(\d{1,2})(?::|h)(\d{2})\b|\b(\d{1,2})h\b");
re!(RANGE, r"(\d)\s*[-–]\s*(\d)");
re!(NUMBER, r"\d{1,3}(?:\.\d{3})+|\d+(?:,\d+)?");
re!(SPACES, r"\s+");
re!(SPACE_BEFORE_MARK, r"\s+([,.;:!?])");
// A number with its unit written on: "220gsm", "1,5kg", "10000mAh".
re!(UNIT, r"(\d[\d.,]*)\s*(gsm|kg|g|cm|mm|km|ml|mAh|GB|W)\b");

/// How a unit written after a number is said.
fn unit(u: &str) -> &'static str {
    match u {
        "gsm" => "gam trên mét vuông",
        "kg" => "ki lô gam",
        "g" => "gam",
        "cm" => "xăng ti mét",
        "mm" => "mi li mét",
        "km" => "ki lô mét",
        "ml" => "mi li lít",
        "mAh" => "mi li am pe giờ",
        "GB" => "gi ga bai",
        _ => "oát",
    }
}

/// Numbers, codes and symbols as words, on one sentence.
/// Sentences written for a screen, as a caller hears them: there is no button to
/// tap on a phone, and a caller speaks rather than types.
const FOR_THE_EAR: [(&str, &str); 12] = [
    // A caller is called back: "phản hồi" on a screen is a reply in the chat.
    (
        "nhân viên sẽ phản hồi anh/chị",
        "nhân viên sẽ gọi lại cho anh/chị",
    ),
    ("Nhân viên sẽ phản hồi", "Nhân viên sẽ gọi lại cho anh/chị"),
    ("TP.HCM", "thành phố Hồ Chí Minh"),
    ("TP. HCM", "thành phố Hồ Chí Minh"),
    ("TP HCM", "thành phố Hồ Chí Minh"),
    ("HCM", "Hồ Chí Minh"),
    ("bấm “Gặp nhân viên”", "nói “gặp nhân viên”"),
    ("bấm \"Gặp nhân viên\"", "nói “gặp nhân viên”"),
    (
        "bấm vào câu hoặc nhắn số thứ tự của câu",
        "nói số thứ tự của câu",
    ),
    ("nhắn câu hỏi khác", "hỏi câu khác"),
    ("nhắn em", "nói với em"),
    ("nhắn số", "nói số"),
];

pub fn words(text: &str) -> String {
    let mut text = text.to_string();
    for (screen, ear) in FOR_THE_EAR {
        text = text.replace(screen, ear);
    }
    // "25.000đ/đơn" is "hai mươi lăm nghìn đồng một đơn".
    let text = PER_UNIT.replace_all(&text, "$1 một $2");
    let s = URL.replace_all(&text, "");
    let s = s
        .replace("anh/chị", "anh chị")
        .replace("Anh/chị", "Anh chị");
    let s = PHONE.replace_all(&s, |c: &Captures| digits(&c[0]));
    let s = CODE.replace_all(&s, |c: &Captures| {
        // "99K" is money, said below.
        match c[0].strip_suffix('K') {
            Some(n) if n.chars().all(|d| d.is_ascii_digit()) => c[0].to_string(),
            _ => code(&c[0]),
        }
    });
    let s = MONEY.replace_all(&s, |c: &Captures| match (c.get(1), c.get(2)) {
        (Some(m), _) => format!("{} đồng", amount(m.as_str())),
        (_, Some(k)) => format!("{} nghìn", amount(k.as_str())),
        _ => c[0].to_string(),
    });
    let s = PERCENT.replace_all(&s, |c: &Captures| format!("{} phần trăm", amount(&c[1])));
    let s = DATE.replace_all(&s, |c: &Captures| {
        let mut out = format!(
            "ngày {} tháng {}",
            number(grouped(&c[1])),
            month(grouped(&c[2]))
        );
        if let Some(y) = c.get(3) {
            out.push_str(&format!(" năm {}", number(grouped(y.as_str()))));
        }
        out
    });
    let s = s.replace("ngày ngày ", "ngày ");
    let s = RANGE.replace_all(&s, "$1 đến $2");
    let s = TIME.replace_all(&s, |c: &Captures| match (c.get(1), c.get(2), c.get(3)) {
        (Some(h), Some(m), _) => {
            let m = grouped(m.as_str());
            if m == 0 {
                format!("{} giờ", number(grouped(h.as_str())))
            } else {
                format!("{} giờ {} phút", number(grouped(h.as_str())), number(m))
            }
        }
        (_, _, Some(h)) => format!("{} giờ", number(grouped(h.as_str()))),
        _ => c[0].to_string(),
    });
    let s = UNIT.replace_all(&s, |c: &Captures| {
        format!("{} {}", amount(&c[1]), unit(&c[2]))
    });
    let s = NUMBER.replace_all(&s, |c: &Captures| amount(&c[0]));
    let s = s
        .replace('&', " và ")
        .replace(['/', '*', '#', '_', '"', '“', '”', '«', '»'], " ");
    let s: String = s
        .chars()
        .filter(|c| !matches!(*c as u32, 0x1F000..=0x1FFFF | 0x2600..=0x27BF))
        .collect();
    let s = SPACES.replace_all(s.trim(), " ");
    // A quote taken out leaves a space before the comma after it.
    SPACE_BEFORE_MARK.replace_all(&s, "$1").to_string()
}

/// Splits into sentences on `.`, `!`, `?` followed by space (not inside numbers).
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        cur.push(*c);
        let end =
            matches!(c, '.' | '!' | '?') && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if end {
            let t = cur.trim().to_string();
            if !t.is_empty() {
                out.push(t);
            }
            cur.clear();
        }
    }
    let t = cur.trim().to_string();
    if !t.is_empty() {
        out.push(t);
    }
    out
}

/// A reply as spoken pieces: its prose sentences, then its list lines (`- x`,
/// `1. x`, `• x`) read as "thứ nhất, x;" … "thứ hai, y." — each in words.
fn pieces(text: &str) -> (Vec<String>, Vec<String>) {
    let mut prose = Vec::new();
    let mut items = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let item = line
            .strip_prefix("- ")
            .or_else(|| line.strip_prefix("• "))
            .or_else(|| line.strip_prefix("* "))
            .or_else(|| {
                let (n, rest) = line.split_once(". ")?;
                n.parse::<u32>().ok().map(|_| rest)
            });
        match item {
            Some(i) => items.push(i.trim_end_matches(['.', ';', '?']).to_string()),
            None => prose.push(line.to_string()),
        }
    }
    let n = items.len().min(ORDINALS.len());
    let items = items
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, it)| {
            let end = if i + 1 == n { '.' } else { ';' };
            words(&format!("{}, {}{end}", ORDINALS[i], it))
        })
        .collect();
    let prose = sentences(&prose.join(" "))
        .iter()
        .map(|s| words(s))
        .collect();
    (prose, items)
}

fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

/// A sentence longer than `max_words` split at its clauses ("…; …"), so a long
/// passage can stop between two of them.
fn clauses(sentence: &str, max_words: usize) -> Vec<String> {
    if word_count(sentence) <= max_words {
        return vec![sentence.to_string()];
    }
    let mut out: Vec<String> = Vec::new();
    for part in sentence.split_inclusive("; ") {
        out.push(part.trim().to_string());
    }
    out
}

/// What is said of a reply now, and what waits to be read on request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cut {
    pub said: String,
    /// Spoken pieces not read yet (sentences, clauses or list lines, in words).
    pub rest: Vec<String>,
    /// How many list lines are among `rest`.
    pub items_left: usize,
}

/// The spoken form of a reply, kept short: at most `max_sentences` sentences and
/// about `max_words` words; a list is read as "thứ nhất, …; thứ hai, …", at least
/// two lines of it, more while they fit. What is left is returned, not dropped.
pub fn cut(text: &str, max_sentences: usize, max_words: usize) -> Cut {
    let (prose, items) = pieces(text);
    let mut said: Vec<String> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    let mut words_said = 0;
    // Sentences past the limit are left out, as a screen reply's details are; a long
    // sentence stopped between its clauses (a passage listing places) keeps the rest
    // of the passage for the caller to ask for.
    let mut sentences_said = 0;
    let mut stopped_inside = false;
    'prose: for sentence in prose {
        let parts = clauses(&sentence, max_words);
        let last = parts.len() - 1;
        for (i, p) in parts.into_iter().enumerate() {
            let fits = said.is_empty()
                || (!stopped_inside
                    && sentences_said < max_sentences
                    && word_count(&p) <= max_words.saturating_sub(words_said));
            if fits {
                words_said += word_count(&p);
                said.push(p);
                if i == last {
                    sentences_said += 1;
                }
            } else if stopped_inside || last > 0 {
                stopped_inside = true;
                rest.push(p);
            } else {
                break 'prose;
            }
        }
    }
    let mut items_left = 0;
    for (i, it) in items.into_iter().enumerate() {
        let fits =
            i < 2 || (items_left == 0 && word_count(&it) <= max_words.saturating_sub(words_said));
        if fits && !stopped_inside {
            words_said += word_count(&it);
            said.push(it);
        } else {
            items_left += 1;
            rest.push(it);
        }
    }
    // A list or a passage stopped early ends what was read with a full stop.
    if !rest.is_empty() {
        if let Some(last) = said.last_mut() {
            if last.ends_with(';') {
                last.pop();
                last.push('.');
            }
        }
    }
    Cut {
        said: said.join(" "),
        rest,
        items_left,
    }
}

/// The next part of what was left unread, and what is still left after it.
pub fn more(rest: &[String]) -> (String, Vec<String>) {
    let mut said: Vec<&str> = Vec::new();
    let mut n = 0;
    for p in rest {
        if !said.is_empty() && n + word_count(p) > MAX_WORDS {
            break;
        }
        n += word_count(p);
        said.push(p);
    }
    let mut text = said.join(" ");
    if text.ends_with(';') {
        text.pop();
        text.push('.');
    }
    (text, rest[said.len()..].to_vec())
}

/// A reply read whole (a menu of choices: each one is said).
pub fn whole(text: &str) -> String {
    let (prose, items) = pieces(text);
    prose.into_iter().chain(items).collect::<Vec<_>>().join(" ")
}

/// The spoken form of a reply: at most `max_sentences` sentences (of any length)
/// and a list read as "thứ nhất, x; thứ hai, y" whole.
pub fn speakable(text: &str, max_sentences: usize) -> String {
    cut(text, max_sentences, usize::MAX).said
}

/// SSML for engines that take it: sentences separated by short pauses.
pub fn ssml(spoken: &str) -> String {
    let body: Vec<String> = sentences(spoken).iter().map(|s| xml_escape(s)).collect();
    format!("<speak>{}</speak>", body.join("<break time=\"250ms\"/>"))
}

pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let cases = [
            (0, "không"),
            (5, "năm"),
            (10, "mười"),
            (11, "mười một"),
            (15, "mười lăm"),
            (20, "hai mươi"),
            (21, "hai mươi mốt"),
            (24, "hai mươi tư"),
            (25, "hai mươi lăm"),
            (30, "ba mươi"),
            (101, "một trăm linh một"),
            (105, "một trăm linh năm"),
            (110, "một trăm mười"),
            (115, "một trăm mười lăm"),
            (999, "chín trăm chín mươi chín"),
            (1000, "một nghìn"),
            (1005, "một nghìn không trăm linh năm"),
            (2026, "hai nghìn không trăm hai mươi sáu"),
            (25_000, "hai mươi lăm nghìn"),
            (150_000, "một trăm năm mươi nghìn"),
            (1_250_000, "một triệu hai trăm năm mươi nghìn"),
            (1_050_000, "một triệu không trăm năm mươi nghìn"),
            (2_000_000_000, "hai tỷ"),
            (3_000_000_000_000, "ba nghìn tỷ"),
        ];
        for (n, want) in cases {
            assert_eq!(number(n), want, "{n}");
        }
    }

    #[test]
    fn spoken_forms() {
        let cases = [
            (
                "Phí giao hàng là 25.000đ/đơn.",
                "Phí giao hàng là hai mươi lăm nghìn đồng một đơn.",
            ),
            (
                "Anh/chị bấm “Gặp nhân viên” để nhân viên hỗ trợ, cần gì cứ nhắn em nhé.",
                "Anh chị nói gặp nhân viên để nhân viên hỗ trợ, cần gì cứ nói với em nhé.",
            ),
            (
                "Phí ship là 150.000đ.",
                "Phí ship là một trăm năm mươi nghìn đồng.",
            ),
            ("Phí 25.000 đ", "Phí hai mươi lăm nghìn đồng"),
            (
                "cotton định lượng 220gsm, nặng 1,5kg",
                "cotton định lượng hai trăm hai mươi gam trên mét vuông, nặng một phẩy năm ki lô gam",
            ),
            (
                "chọn \"Ví MoMo\", hệ thống ở TP.HCM",
                "chọn Ví MoMo, hệ thống ở thành phố Hồ Chí Minh",
            ),
            (
                "Hiện đã ngoài giờ làm việc, nhân viên sẽ phản hồi anh/chị từ 8 giờ sáng mai ạ.",
                "Hiện đã ngoài giờ làm việc, nhân viên sẽ gọi lại cho anh chị từ tám giờ sáng mai ạ.",
            ),
            ("chỉ 99k thôi", "chỉ chín mươi chín nghìn thôi"),
            (
                "tổng 1.250.000 VNĐ",
                "tổng một triệu hai trăm năm mươi nghìn đồng",
            ),
            ("Giảm 10% cho đơn đầu", "Giảm mười phần trăm cho đơn đầu"),
            ("lãi 1,5%", "lãi một phẩy năm phần trăm"),
            (
                "Dự kiến giao 30/11",
                "Dự kiến giao ngày ba mươi tháng mười một",
            ),
            (
                "ngày 30/11/2026",
                "ngày ba mươi tháng mười một năm hai nghìn không trăm hai mươi sáu",
            ),
            ("từ 5/4", "từ ngày năm tháng tư"),
            ("Mở cửa 8:00 - 21:00", "Mở cửa tám giờ đến hai mươi mốt giờ"),
            ("gọi lúc 9h30", "gọi lúc chín giờ ba mươi phút"),
            ("trước 17h", "trước mười bảy giờ"),
            (
                "Hotline 1900 6868",
                "Hotline một chín không không sáu tám sáu tám",
            ),
            (
                "SĐT 0912345678",
                "SĐT không chín một hai ba bốn năm sáu bảy tám",
            ),
            (
                "gọi 0912 345 678 nhé",
                "gọi không chín một hai ba bốn năm sáu bảy tám nhé",
            ),
            (
                "Đơn DH240517 đang giao",
                "Đơn D H hai bốn không năm một bảy đang giao",
            ),
            (
                "mã vận đơn GHN8K2M4Q7",
                "mã vận đơn G H N tám K hai M bốn Q bảy",
            ),
            ("đổi trả trong 7 ngày", "đổi trả trong bảy ngày"),
            ("giao 3-5 ngày", "giao ba đến năm ngày"),
            ("Anh/chị vui lòng chờ", "Anh chị vui lòng chờ"),
            ("xem tại https://mayxanh.vn/doi-tra nhé", "xem tại nhé"),
            ("Áo & quần", "Áo và quần"),
            ("Cảm ơn anh chị 😊", "Cảm ơn anh chị"),
            ("Mã yêu cầu YCAB12CD", "Mã yêu cầu Y C A B một hai C D"),
            ("Mã yêu cầu YCKMNPQR.", "Mã yêu cầu Y C K M N P Q R."),
            // Letters and digits spelled one by one wherever the digits fall.
            (
                "mã vận đơn GHNAQY6YZW.",
                "mã vận đơn G H N A Q Y sáu Y Z W.",
            ),
            ("mã 8K2M4Q7", "mã tám K hai M bốn Q bảy"),
            ("size 2XL", "size hai X L"),
            ("mạng 4G", "mạng bốn G"),
            ("giảm 50K", "giảm năm mươi nghìn"),
        ];
        for (text, want) in cases {
            assert_eq!(words(text), want, "{text}");
        }
    }

    #[test]
    fn replies_are_short_and_lists_read_in_order() {
        let long = "Dạ, shop giao toàn quốc. Nội thành Hà Nội 1-2 ngày. Các tỉnh khác 3-5 ngày. Phí ship tính theo khu vực.";
        assert_eq!(
            speakable(long, 2),
            "Dạ, shop giao toàn quốc. Nội thành Hà Nội một đến hai ngày."
        );
        let list =
            "Dạ, có phải anh/chị muốn hỏi:\n1. Phí ship ra Hà Nội?\n2. Đổi trả trong bao lâu?";
        assert_eq!(
            speakable(list, 2),
            "Dạ, có phải anh chị muốn hỏi: thứ nhất, Phí ship ra Hà Nội; thứ hai, Đổi trả trong bao lâu."
        );
        // A long list: two lines and the count of the rest, which waits for the
        // caller to ask for it.
        let stores = "Dạ, Mây Xanh có 3 cửa hàng tại TP.HCM ạ:\n- Mây Xanh Lê Thánh Tôn: 125 Lê Thánh Tôn, Phường Bến Thành, Quận 1 (9:00 - 22:00)\n- Mây Xanh Phan Xích Long: 210 Phan Xích Long, Phường 2, Quận Phú Nhuận (9:00 - 22:00)\n- Mây Xanh Thủ Đức: 45 Võ Văn Ngân, Phường Linh Chiểu, TP. Thủ Đức (9:00 - 22:00)";
        let c = cut(stores, 2, MAX_WORDS);
        assert!(
            c.said.starts_with("Dạ, Mây Xanh có ba cửa hàng tại thành phố Hồ Chí Minh ạ: thứ nhất, Mây Xanh Lê Thánh Tôn")
                && c.said.ends_with("Quận Phú Nhuận (chín giờ đến hai mươi hai giờ)."),
            "{c:?}"
        );
        assert_eq!(c.items_left, 1);
        assert_eq!(c.rest.len(), 1);
        assert!(c.rest[0].starts_with("thứ ba, Mây Xanh Thủ Đức"), "{c:?}");
        let (more_said, left) = more(&c.rest);
        assert!(more_said.ends_with("giờ)."), "{more_said}");
        assert!(left.is_empty());
        // A menu of three short choices is read whole.
        let menu = "Dạ, anh/chị muốn hỏi câu nào ạ:\n1. Phí ship ra Hà Nội\n2. Đổi trả trong bao lâu\n3. Có giao hỏa tốc không";
        assert_eq!(cut(menu, 2, MAX_WORDS).rest, Vec::<String>::new());
        // One long sentence of clauses stops between two of them.
        let parking = "Cửa hàng Lê Thánh Tôn (Quận 1) không có chỗ để xe riêng; khách gửi xe máy tại bãi giữ xe số 127 Lê Thánh Tôn ngay cạnh cửa hàng với giá 5.000đ/lượt và được hoàn phí gửi xe khi có hóa đơn từ 300.000đ; cửa hàng Phan Xích Long (Phú Nhuận) và Thủ Đức có chỗ để xe máy miễn phí ngay trước cửa hàng; cửa hàng Thủ Đức còn có 6 chỗ đỗ ô tô miễn phí trong thời gian mua sắm.";
        let c = cut(parking, 2, MAX_WORDS);
        assert!(c.said.split_whitespace().count() <= MAX_WORDS, "{c:?}");
        assert!(c.said.ends_with('.') && !c.rest.is_empty(), "{c:?}");
        assert_eq!(c.items_left, 0);
        // Sentences past the limit are left out, not offered.
        let c = cut(long, 2, MAX_WORDS);
        assert!(c.rest.is_empty(), "{c:?}");
        assert_eq!(
            ssml("Dạ vâng. Giá <50k> & rẻ."),
            "<speak>Dạ vâng.<break time=\"250ms\"/>Giá &lt;50k&gt; &amp; rẻ.</speak>"
        );
    }
}
