//! Entities in customer text: order codes (configurable pattern), Vietnamese phone
//! numbers in their many spellings, e-mail addresses, and a bare 4-digit group (the
//! last digits of a phone, used for verification).

use regex::Regex;

/// Default order-code pattern: `DH240517`-style codes (also typed "dh 240517" or
/// "DH-240517"), `#10023`, or a number of four or five digits right after "đơn"
/// ("đơn 10088 khi nào giao"; not one ending in 00, an amount), read as `#10088`. See `EntityExtractor::extract`
/// for how a match becomes a code.
pub const DEFAULT_ORDER_PATTERN: &str = r"(?i)\b(DH)[\s\-]?([0-9]{4,10})\b|#\s?([0-9]{4,10})\b|\b(?:đơn|don)(?:\s+(?:hàng|hang))?(?:\s+(?:của|cua)\s+(?:em|e|mình|minh|anh|chị|chi|tôi|toi))?(?:\s+(?:số|so|là|la))?\s+([1-9][0-9]{3,4})\b";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entities {
    pub order_code: Option<String>,
    /// Codes named after the first one, each once ("đơn DH240517 với DH240449 giao
    /// chưa").
    pub more_order_codes: Vec<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub last4: Option<String>,
}

pub struct EntityExtractor {
    order: Regex,
    phone: Regex,
    email: Regex,
    four: Regex,
}

impl EntityExtractor {
    pub fn new(order_pattern: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            order: Regex::new(order_pattern)?,
            // 0xxx / +84 / 84, with spaces, dots or dashes between digit groups.
            phone: Regex::new(r"(?:\+?84|0)(?:[\s.\-]?\d){9}\b")?,
            email: Regex::new(r"(?i)\b[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}\b")?,
            four: Regex::new(r"(?:^|[^\d])(\d{4})(?:$|[^\d])")?,
        })
    }

    /// The text with its order codes left out ("đơn DH240449 bị thiếu hàng thì làm
    /// sao" → "đơn bị thiếu hàng thì làm sao"): what retrieval reads of it.
    pub fn without_order_codes(&self, text: &str) -> String {
        let cut = self.order.replace_all(text, " ");
        cut.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The entities of a message. An order code is the pattern's capture groups
    /// joined (the whole match when it has none), upper-cased, with a `#` before a
    /// code of digits only: "dh 240517" → `DH240517`, "đơn 10088" → `#10088`.
    pub fn extract(&self, text: &str) -> Entities {
        let mut codes: Vec<String> = Vec::new();
        for code in self.order.captures_iter(text).filter_map(|c| {
            let groups: String = c.iter().skip(1).flatten().map(|m| m.as_str()).collect();
            let code = match groups.is_empty() {
                true => c[0].to_uppercase(),
                false => groups.to_uppercase(),
            };
            if !code.chars().all(|ch| ch.is_ascii_digit()) {
                return Some(code);
            }
            // "đơn 5000 có freeship không" is an amount, not an order.
            let amount = !c[0].contains('#') && code.ends_with("00");
            (!amount).then(|| format!("#{code}"))
        }) {
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        let mut codes = codes.into_iter();
        let order_code = codes.next();
        let more_order_codes = codes.collect();
        let email = self.email.find(text).map(|m| m.as_str().to_lowercase());
        // Order codes and e-mails must not be read as phone digits.
        let mut rest = text.to_string();
        for m in self.order.find_iter(text).chain(self.email.find_iter(text)) {
            rest = rest.replace(m.as_str(), " ");
        }
        let phone = self
            .phone
            .find(&rest)
            .and_then(|m| normalize_phone(m.as_str()));
        let last4 = if phone.is_none() {
            self.four.captures(&rest).map(|c| c[1].to_string())
        } else {
            None
        };
        Entities {
            order_code,
            more_order_codes,
            phone,
            email,
            last4,
        }
    }
}

/// `+84 912.345.678` → `0912345678`; `None` unless it is a 10-digit mobile/landline.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let national = if let Some(rest) = digits.strip_prefix("84") {
        if raw.trim_start().starts_with('0') {
            return None;
        }
        format!("0{rest}")
    } else {
        digits
    };
    (national.len() == 10 && national.starts_with('0')).then_some(national)
}

/// `0912345678` → `091****678`, for logs.
pub fn mask_phone(phone: &str) -> String {
    if phone.len() < 7 {
        return "***".into();
    }
    format!("{}****{}", &phone[..3], &phone[phone.len() - 3..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex() -> EntityExtractor {
        EntityExtractor::new(DEFAULT_ORDER_PATTERN).unwrap()
    }

    #[test]
    fn order_codes() {
        let cases = [
            ("đơn DH240517 của em đâu", Some("DH240517")),
            ("kiểm tra giúp mình đơn #10023 nhé", Some("#10023")),
            ("ma don dh241102 a", Some("DH241102")),
            ("dh 240517", Some("DH240517")),
            ("mã đơn DH-240517 ạ", Some("DH240517")),
            ("đơn 10088 khi nào giao", Some("#10088")),
            ("don hang so 10088", Some("#10088")),
            ("mã đơn là 10045", Some("#10045")),
            ("đơn của em là 10045 ạ", Some("#10045")),
            ("# 10088", Some("#10088")),
            // A phone after "đơn" is not an order code; nor is a small number.
            ("đơn 0912345678", None),
            ("em đặt đơn 2 cái áo", None),
            ("đơn 500000 có được freeship không", None),
            ("đơn 299900 có freeship không", None),
            ("đơn 2000 có freeship không", None),
            ("đơn #20000", Some("#20000")),
            ("đơn của em đâu rồi", None),
            ("em đặt 2 cái áo", None),
        ];
        for (text, want) in cases {
            assert_eq!(ex().extract(text).order_code.as_deref(), want, "{text}");
        }
    }

    #[test]
    fn several_order_codes() {
        let e = ex().extract("đơn DH240517 với dh 240449 và DH-240517 giao chưa");
        assert_eq!(e.order_code.as_deref(), Some("DH240517"));
        assert_eq!(e.more_order_codes, vec!["DH240449".to_string()]);
        assert!(ex()
            .extract("đơn DH240517 giao chưa")
            .more_order_codes
            .is_empty());
    }

    #[test]
    fn phone_numbers() {
        let cases = [
            ("sdt em 0912345678", Some("0912345678")),
            ("số của mình là 0912 345 678 nha", Some("0912345678")),
            ("+84 912 345 678", Some("0912345678")),
            ("84912345678", Some("0912345678")),
            ("0912.345.678", Some("0912345678")),
            ("0912-345-678", Some("0912345678")),
            ("đơn DH240517", None),
            ("091234", None),
        ];
        for (text, want) in cases {
            assert_eq!(ex().extract(text).phone.as_deref(), want, "{text}");
        }
    }

    #[test]
    fn emails_and_last_four_digits() {
        let e = ex().extract("email em là Lan.Nguyen@Example.com ạ");
        assert_eq!(e.email.as_deref(), Some("lan.nguyen@example.com"));
        assert_eq!(e.phone, None);
        assert_eq!(
            ex().extract("4 số cuối là 5678").last4.as_deref(),
            Some("5678")
        );
        assert_eq!(ex().extract("5678").last4.as_deref(), Some("5678"));
        assert_eq!(ex().extract("0912345678").last4, None);
        assert_eq!(ex().extract("đơn DH240517").last4, None);
    }

    #[test]
    fn masks_phones_for_logs() {
        assert_eq!(mask_phone("0912345678"), "091****678");
    }
}
