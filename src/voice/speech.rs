//! Text → speakable Vietnamese: short replies, lists read as "thứ nhất…", and the
//! numbers TTS engines get wrong (money, dates, times, percentages, phone numbers and
//! order codes) written out as words.

use std::sync::LazyLock;

use regex::{Captures, Regex};

const DIGITS: [&str; 10] = [
    "không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín",
];
const ORDINALS: [&str; 5] = ["thứ nhất", "thứ hai", "thứ ba", "thứ tư", "thứ năm"];

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
re!(CODE, r"\b(?:[A-Z]{1,5}[0-9][A-Z0-9]{2,}|YC[A-Z0-9]{6})\b");
re!(
    MONEY,
    r"(\d{1,3}(?:\.\d{3})+|\d+(?:,\d+)?)\s*(?:đ|₫|đồng|vnđ|VNĐ|vnd|VND)(?:\b|$)|(\d+(?:,\d+)?)\s*k\b"
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
    let s = CODE.replace_all(&s, |c: &Captures| code(&c[0]));
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

/// The spoken form of a reply: at most `max_sentences` sentences; list lines
/// (`- x`, `1. x`, `• x`) read as "thứ nhất, x; thứ hai, y".
pub fn speakable(text: &str, max_sentences: usize) -> String {
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
    let mut said: Vec<String> = sentences(&prose.join(" "))
        .into_iter()
        .take(max_sentences)
        .collect();
    if !items.is_empty() {
        let list: Vec<String> = items
            .iter()
            .take(ORDINALS.len())
            .enumerate()
            .map(|(i, it)| format!("{}, {}", ORDINALS[i], it))
            .collect();
        said.push(format!("{}.", list.join("; ")));
    }
    words(&said.join(" "))
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
        assert_eq!(
            ssml("Dạ vâng. Giá <50k> & rẻ."),
            "<speak>Dạ vâng.<break time=\"250ms\"/>Giá &lt;50k&gt; &amp; rẻ.</speak>"
        );
    }
}
