//! Hand-off triage: a ticket's priority, department, SLA deadline, short code and
//! extractive summary, from rules that are data (`rules.toml`).

use serde::Deserialize;
use thiserror::Error;

use crate::bot::intents::{PhraseSet, Prepared};
use crate::text::Normalizer;

const DEFAULT_RULES: &str = include_str!("rules.toml");

#[derive(Debug, Error)]
#[error("hand-off rules: {0}")]
pub struct RulesError(String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    sla_hours: std::collections::BTreeMap<String, u32>,
    priority: Vec<RuleSpec>,
    default_priority: String,
    department: Vec<DeptSpec>,
    default_department: String,
    #[serde(default)]
    withdraw: WithdrawSpec,
    #[serde(default)]
    change_kind: Vec<KindSpec>,
}

/// How a customer takes a request for a person back ("hủy yêu cầu", "thôi em hỏi
/// bot"): `phrases` unless an `unless` phrase is there too (a new request: "hủy đơn
/// giúp em"), or a phrase that takes back one kind of request ("vẫn lấy" a cancel).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WithdrawSpec {
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    unless: Vec<String>,
    #[serde(default)]
    cancel_request: Vec<String>,
    #[serde(default)]
    change_request: Vec<String>,
}

/// What a request to change an order is about ("địa chỉ", "số điện thoại").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindSpec {
    name: String,
    phrases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    level: String,
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    reasons: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeptSpec {
    name: String,
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    intents: Vec<String>,
    #[serde(default)]
    reasons: Vec<String>,
}

struct Matcher {
    label: String,
    phrases: PhraseSet,
    intents: Vec<String>,
    reasons: Vec<String>,
}

impl Matcher {
    fn hit(&self, msgs: &[Prepared], intents: &[&str], reason: &str) -> bool {
        self.intents.iter().any(|i| intents.contains(&i.as_str()))
            || self.reasons.iter().any(|r| r == reason)
            || msgs.iter().any(|m| self.phrases.matches(m))
    }
}

pub struct Triage {
    normalizer: Normalizer,
    priorities: Vec<Matcher>,
    default_priority: String,
    departments: Vec<Matcher>,
    default_department: String,
    sla_hours: std::collections::BTreeMap<String, u32>,
    withdraw: PhraseSet,
    withdraw_unless: PhraseSet,
    withdraw_cancel: PhraseSet,
    withdraw_change: PhraseSet,
    change_kinds: Vec<(String, PhraseSet)>,
}

/// The outcome of triage for one hand-off.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub priority: String,
    pub department: String,
    pub sla_hours: u32,
}

impl Triage {
    pub fn default_rules() -> Self {
        Self::parse(DEFAULT_RULES).expect("embedded hand-off rules are valid")
    }

    pub fn parse(src: &str) -> Result<Self, RulesError> {
        let f: RuleFile = toml::from_str(src).map_err(|e| RulesError(e.to_string()))?;
        let normalizer = Normalizer::default();
        for level in f
            .priority
            .iter()
            .map(|p| &p.level)
            .chain([&f.default_priority])
        {
            if !f.sla_hours.contains_key(level) {
                return Err(RulesError(format!("priority {level} has no sla_hours")));
            }
        }
        let priorities = f
            .priority
            .iter()
            .map(|p| Matcher {
                label: p.level.clone(),
                phrases: PhraseSet::new(&normalizer, &p.phrases),
                intents: Vec::new(),
                reasons: p.reasons.clone(),
            })
            .collect();
        let departments = f
            .department
            .iter()
            .map(|d| Matcher {
                label: d.name.clone(),
                phrases: PhraseSet::new(&normalizer, &d.phrases),
                intents: d.intents.clone(),
                reasons: d.reasons.clone(),
            })
            .collect();
        let w = &f.withdraw;
        Ok(Self {
            withdraw: PhraseSet::new(&normalizer, &w.phrases),
            withdraw_unless: PhraseSet::new(&normalizer, &w.unless),
            withdraw_cancel: PhraseSet::new(&normalizer, &w.cancel_request),
            withdraw_change: PhraseSet::new(&normalizer, &w.change_request),
            change_kinds: f
                .change_kind
                .iter()
                .map(|k| (k.name.clone(), PhraseSet::new(&normalizer, &k.phrases)))
                .collect(),
            normalizer,
            priorities,
            default_priority: f.default_priority,
            departments,
            default_department: f.default_department,
            sla_hours: f.sla_hours,
        })
    }

    pub fn sla_hours(&self, priority: &str) -> u32 {
        self.sla_hours.get(priority).copied().unwrap_or(24)
    }

    /// How urgent a priority is: 0 for the first rule's, the default last.
    fn rank(&self, priority: &str) -> usize {
        self.priorities
            .iter()
            .position(|m| m.label == priority)
            .unwrap_or(self.priorities.len())
    }

    /// Whether `new` is more urgent than `current` (a ticket's priority only rises).
    pub fn raises(&self, current: &str, new: &str) -> bool {
        self.rank(new) < self.rank(current)
    }

    /// Whether a message takes back a request for a person opened for `reason`:
    /// "hủy yêu cầu", "thôi không cần gặp nhân viên nữa", "thôi em hỏi bot"; for a
    /// request to cancel an order also "à thôi khỏi, em vẫn lấy". A new request ("hủy
    /// đơn giúp em", "đổi địa chỉ giúp em") is not.
    pub fn withdraws(&self, text: &str, reason: &str) -> bool {
        let m = Prepared::new(&self.normalizer, text);
        let general = self.withdraw.matches(&m) && !self.withdraw_unless.matches(&m);
        general
            || match reason {
                "cancel_request" => self.withdraw_cancel.matches(&m),
                "change_request" => self.withdraw_change.matches(&m),
                _ => false,
            }
    }

    /// What the customer's requests to change an order are about, in the order the
    /// rules list them: only the messages that ask for a change count.
    pub fn change_kinds(&self, customer_messages: &[String]) -> Vec<String> {
        let rules = crate::bot::intents::IntentRules::shared();
        let asked: Vec<Prepared> = customer_messages
            .iter()
            .filter(|m| rules.order_request(m) == Some(crate::bot::OrderRequest::Change))
            .map(|m| Prepared::new(&self.normalizer, m))
            .collect();
        self.change_kinds
            .iter()
            .filter(|(_, phrases)| asked.iter().any(|m| phrases.matches(m)))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Whether a message answers "any comment?" with none: small talk alone ("cảm ơn
    /// shop", "ok") or a refusal with nothing else in it but words that carry nothing
    /// ("không có gì thêm đâu ạ", "hết rồi", "vậy thôi"). "không tốt" is a comment.
    pub fn declines_comment(&self, text: &str) -> bool {
        use crate::bot::intents::{Intent, IntentRules};
        let rules = IntentRules::shared();
        if rules
            .classify(text)
            .is_some_and(|i| matches!(i, Intent::Thanks | Intent::Goodbye | Intent::Greeting))
        {
            return true;
        }
        let said: Vec<String> = self
            .normalizer
            .syllables(text)
            .into_iter()
            .filter(|w| !rules.is_filler_word(w))
            .map(|w| crate::text::fold(&w))
            .filter(|w| !DECLINE_FILLER.iter().any(|f| crate::text::fold(f) == *w))
            .collect();
        let said = said.join(" ");
        DECLINES.iter().any(|d| crate::text::fold(d) == said)
    }

    /// The customer's messages that made the ticket urgent (a priority rule's words:
    /// "bị trừ tiền 2 lần", "phát nổ").
    fn urgent_messages<'a>(&self, customer_messages: &'a [String]) -> Vec<&'a str> {
        customer_messages
            .iter()
            .filter(|m| {
                let p = Prepared::new(&self.normalizer, m);
                self.priorities.iter().any(|r| r.phrases.matches(&p))
            })
            .map(String::as_str)
            .collect()
    }

    /// Extractive summary (no LLM): the reason (for a change request, what the
    /// customer asked to change), the urgent facts the customer gave that are not
    /// among their last messages, and their last three messages.
    pub fn summary(&self, reason: &str, customer_messages: &[String]) -> String {
        let recent = &customer_messages[customer_messages.len().saturating_sub(3)..];
        let why = match reason {
            "change_request" => {
                let kinds = self.change_kinds(customer_messages);
                match kinds.is_empty() {
                    true => "khách yêu cầu thay đổi đơn (đã xác minh)".to_string(),
                    false => format!(
                        "khách yêu cầu thay đổi đơn: {} (đã xác minh)",
                        kinds.join(", ")
                    ),
                }
            }
            _ => reason_vietnamese(reason).to_string(),
        };
        let earlier = &customer_messages[..customer_messages.len() - recent.len()];
        let urgent = self.urgent_messages(earlier);
        let facts = match urgent.is_empty() {
            true => String::new(),
            false => format!(" Khách đã báo: «{}».", urgent.join("» «")),
        };
        let recent: Vec<&str> = recent.iter().map(String::as_str).collect();
        format!(
            "Lý do chuyển: {why}.{facts} Khách nhắn gần nhất: «{}».",
            recent.join("» «")
        )
    }

    /// Priority, department and SLA from the customer's messages, the intents seen in
    /// the conversation and the hand-off reason.
    pub fn assess(
        &self,
        customer_messages: &[String],
        intents: &[&str],
        reason: &str,
    ) -> Assessment {
        let msgs: Vec<Prepared> = customer_messages
            .iter()
            .map(|m| Prepared::new(&self.normalizer, m))
            .collect();
        let priority = self
            .priorities
            .iter()
            .find(|m| m.hit(&msgs, intents, reason))
            .map(|m| m.label.clone())
            .unwrap_or_else(|| self.default_priority.clone());
        // The request decides first: its reason ("change_request" is the warehouse
        // team's), then the words of the message that made it, then the intent it was
        // read as; only then the rest of the conversation ("quên mật khẩu" … "cho gặp
        // người thật"). An earlier, unrelated question (a VAT invoice) does not route
        // a later request.
        let last = msgs.last().map(std::slice::from_ref).unwrap_or_default();
        let current = intents.last().map(std::slice::from_ref).unwrap_or_default();
        let department = [
            self.departments
                .iter()
                .find(|m| m.reasons.iter().any(|r| r == reason)),
            self.departments.iter().find(|m| m.hit(last, &[], "")),
            self.departments.iter().find(|m| m.hit(&[], current, "")),
            self.departments
                .iter()
                .find(|m| m.hit(&msgs, intents, reason)),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|m| m.label.clone())
        .unwrap_or_else(|| self.default_department.clone());
        let sla_hours = self.sla_hours[&priority];
        Assessment {
            priority,
            department,
            sla_hours,
        }
    }
}

/// Words that add nothing to a refusal to comment ("không có gì thêm đâu ạ").
const DECLINE_FILLER: [&str; 27] = [
    "em", "anh", "chị", "mình", "shop", "bạn", "ạ", "dạ", "vâng", "nhé", "nha", "đâu", "cảm",
    "cám", "ơn", "nữa", "thêm", "gì", "có", "ý", "kiến", "góp", "rồi", "ok", "oke", "để", "cả",
];
/// What is left of a refusal to comment once those words are dropped.
const DECLINES: [&str; 9] = [
    "",
    "không",
    "thôi",
    "vậy thôi",
    "thế thôi",
    "hết",
    "không cần",
    "không sao",
    "được",
];

/// A short code the customer can quote: `YC` + 6 characters without look-alikes.
pub fn ticket_code(seed: &uuid::Uuid) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = seed.as_bytes();
    let tail: String = bytes[10..16]
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    format!("YC{tail}")
}

/// How an agent reads the reason.
pub fn reason_vietnamese(reason: &str) -> &'static str {
    match reason {
        "customer_request" => "khách yêu cầu gặp nhân viên",
        "complaint" => "khách phàn nàn / tình huống nghiêm trọng",
        "repeated_fallback" => "bot không hiểu hai lần liên tiếp",
        "low_confidence_after_clarify" => {
            "bot đã gợi ý câu hỏi nhưng vẫn chưa tìm được câu trả lời phù hợp"
        }
        "verification_failed" => "xác minh đơn hàng không thành công",
        "speech_unrecognized" => "tổng đài không nhận dạng được giọng nói của khách",
        "cancel_request" => "khách yêu cầu hủy đơn (đã xác minh)",
        "change_request" => "khách yêu cầu thay đổi đơn (đã xác minh)",
        _ => "khác",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn triage_table() {
        let t = Triage::default_rules();
        let cases = [
            (
                &["em bị trừ tiền 2 lần"][..],
                "complaint",
                "complaint",
                "P1",
                "kế toán",
                1,
            ),
            (
                &["em bi tru tien 2 lan"][..],
                "complaint",
                "complaint",
                "P1",
                "kế toán",
                1,
            ),
            (
                &["sạc dự phòng phát nổ"][..],
                "complaint",
                "complaint",
                "P1",
                "kỹ thuật",
                1,
            ),
            (
                &["thái độ nhân viên quá tệ"][..],
                "complaint",
                "complaint",
                "P2",
                "CSKH",
                8,
            ),
            (
                &["DH240517", "0900000000"][..],
                "order_status",
                "verification_failed",
                "P2",
                "kho vận",
                8,
            ),
            (
                &["cho gặp nhân viên"][..],
                "human_request",
                "customer_request",
                "P3",
                "CSKH",
                24,
            ),
            (
                &["quên mật khẩu", "cho gặp người thật"][..],
                "human_request",
                "customer_request",
                "P3",
                "kỹ thuật",
                24,
            ),
        ];
        for (m, intent, reason, p, d, h) in cases {
            let a = t.assess(&msgs(m), &[intent], reason);
            assert_eq!(
                (a.priority.as_str(), a.department.as_str(), a.sla_hours),
                (p, d, h),
                "{m:?}"
            );
        }
    }

    #[test]
    fn codes_and_summaries() {
        let code = ticket_code(&uuid::Uuid::now_v7());
        assert_eq!(code.len(), 8);
        assert!(code.starts_with("YC"));
        assert!(!code.contains('O') && !code.contains('0') && !code.contains('I'));
        let s = Triage::default_rules().summary("complaint", &msgs(&["a", "b", "c", "d"]));
        assert_eq!(s, "Lý do chuyển: khách phàn nàn / tình huống nghiêm trọng. Khách nhắn gần nhất: «b» «c» «d».");
    }

    #[test]
    fn withdrawals_and_new_requests() {
        let t = Triage::default_rules();
        for (text, reason) in [
            ("hủy yêu cầu", "customer_request"),
            ("huy yeu cau giup em", "customer_request"),
            ("thôi không cần gặp nhân viên nữa", "customer_request"),
            (
                "thôi em không cần nhân viên nữa, em hỏi bot",
                "repeated_fallback",
            ),
            ("thôi em hỏi bot", "complaint"),
            ("à thôi khỏi, em vẫn lấy", "cancel_request"),
            ("em vẫn lấy đơn này nhé", "cancel_request"),
            ("đừng hủy đơn của em nha", "cancel_request"),
            ("thôi giữ nguyên địa chỉ cũ", "change_request"),
        ] {
            assert!(t.withdraws(text, reason), "{text}");
        }
        for (text, reason) in [
            ("hủy đơn giúp em", "customer_request"),
            ("thôi hủy đơn này giúp em đi", "cancel_request"),
            ("đơn này em không cần nữa đâu", "customer_request"),
            ("em vẫn lấy", "customer_request"),
            ("đổi sang 12 Nguyễn Huệ quận 1 giúp em", "change_request"),
            ("bao giờ có người trả lời ạ", "customer_request"),
            ("thôi không gấp đâu", "customer_request"),
        ] {
            assert!(!t.withdraws(text, reason), "{text}");
        }
    }

    #[test]
    fn refusals_to_comment() {
        let t = Triage::default_rules();
        for text in [
            "không",
            "không có gì thêm",
            "không có gì thêm đâu ạ",
            "khong co gi them",
            "dạ không ạ, cảm ơn em",
            "hết rồi",
            "ok",
            "cảm ơn shop",
        ] {
            assert!(t.declines_comment(text), "{text}");
        }
        for text in [
            "không tốt lắm",
            "giao hàng chậm quá, lần sau cải thiện nhé",
            "nhân viên không nhiệt tình",
            "tốt",
        ] {
            assert!(!t.declines_comment(text), "{text}");
        }
    }

    #[test]
    fn the_request_routes_and_names_its_changes() {
        let t = Triage::default_rules();
        let vat_then_address = msgs(&[
            "shop có xuất hóa đơn VAT không",
            "em muốn đổi địa chỉ giao cho đơn DH240174",
            "0827291714",
        ]);
        let a = t.assess(
            &vat_then_address,
            &["faq", "order_status", "order_status"],
            "change_request",
        );
        assert_eq!(a.department, "kho vận");
        assert_eq!(t.change_kinds(&vat_then_address), vec!["địa chỉ"]);
        let s = t.summary("change_request", &vat_then_address);
        assert!(
            s.starts_with("Lý do chuyển: khách yêu cầu thay đổi đơn: địa chỉ (đã xác minh)."),
            "{s}"
        );
        // Urgent facts stay in the summary after newer messages.
        let s = t.summary(
            "customer_request",
            &msgs(&[
                "cho em gặp nhân viên",
                "em bị trừ tiền 2 lần",
                "gấp lắm",
                "ok",
                "alo",
            ]),
        );
        assert!(s.contains("Khách đã báo: «em bị trừ tiền 2 lần»."), "{s}");
        assert!(t.raises("P3", "P1") && t.raises("P2", "P1") && !t.raises("P1", "P3"));
        assert!(!t.raises("P2", "P2"));
    }

    #[test]
    fn rules_without_sla_are_rejected() {
        let src = "default_priority = \"P9\"\ndefault_department = \"x\"\npriority = []\ndepartment = []\n[sla_hours]\nP1 = 1\n";
        assert!(Triage::parse(src).is_err());
    }
}

/// An agent's username as stored and compared: trimmed, composed (NFC) and
/// lower-case, so `Lan`, `lan` and ` LAN ` sign in to one account.
pub fn canonical_username(name: &str) -> String {
    crate::text::nfc(name.trim()).to_lowercase()
}

/// Argon2id hash (PHC string) of an agent password.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).expect("16-byte salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing")
        .to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// sha256 of a bearer token: only hashes are stored.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod password_tests {
    #[test]
    fn passwords_verify_and_reject() {
        let h = super::hash_password("mật-khẩu-1");
        assert!(h.starts_with("$argon2"));
        assert!(super::verify_password("mật-khẩu-1", &h));
        assert!(!super::verify_password("sai", &h));
        assert!(!super::verify_password("x", "not a hash"));
    }
}

/// Working hours for SLA clocks, in the business's local time (fixed UTC offset:
/// Asia/Ho_Chi_Minh has no daylight saving).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusinessHours {
    /// `HH:MM` local opening and closing time; equal values mean round the clock.
    pub open: String,
    pub close: String,
    pub utc_offset_minutes: i32,
}

impl Default for BusinessHours {
    fn default() -> Self {
        Self {
            open: "08:00".into(),
            close: "21:00".into(),
            utc_offset_minutes: 7 * 60,
        }
    }
}

fn parse_hhmm(s: &str) -> Option<chrono::NaiveTime> {
    chrono::NaiveTime::parse_from_str(s, "%H:%M").ok()
}

impl BusinessHours {
    pub fn validate(&self) -> Result<(), String> {
        match (parse_hhmm(&self.open), parse_hhmm(&self.close)) {
            (Some(o), Some(c)) if o <= c => Ok(()),
            _ => Err(format!(
                "handoff hours must be HH:MM with open <= close (got {}–{})",
                self.open, self.close
            )),
        }
    }

    pub fn offset(&self) -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(self.utc_offset_minutes * 60)
            .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"))
    }

    /// Whether `at` falls inside working hours.
    pub fn is_open(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        let (Some(open), Some(close)) = (parse_hhmm(&self.open), parse_hhmm(&self.close)) else {
            return true;
        };
        if open == close {
            return true;
        }
        let t = at.with_timezone(&self.offset()).time();
        t >= open && t < close
    }

    /// Outside working hours, whether they open later the same local day (before
    /// opening time) rather than the next (after closing time).
    pub fn opens_later_today(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        parse_hhmm(&self.open).is_some_and(|open| at.with_timezone(&self.offset()).time() < open)
    }

    /// The SLA deadline: `hours` of working time counted from `start`.
    pub fn due(
        &self,
        start: chrono::DateTime<chrono::Utc>,
        hours: u32,
    ) -> chrono::DateTime<chrono::Utc> {
        let (Some(open), Some(close)) = (parse_hhmm(&self.open), parse_hhmm(&self.close)) else {
            return start + chrono::Duration::hours(hours as i64);
        };
        if open == close {
            return start + chrono::Duration::hours(hours as i64);
        }
        let tz = self.offset();
        let mut left = chrono::Duration::hours(hours as i64);
        let mut now = start.with_timezone(&tz);
        loop {
            let day = now.date_naive();
            let opens = day
                .and_time(open)
                .and_local_timezone(tz)
                .single()
                .expect("fixed offset");
            let closes = day
                .and_time(close)
                .and_local_timezone(tz)
                .single()
                .expect("fixed offset");
            if now < opens {
                now = opens;
            }
            if now < closes {
                let room = closes - now;
                if left <= room {
                    return (now + left).with_timezone(&chrono::Utc);
                }
                left -= room;
            }
            let next = (day + chrono::Duration::days(1)).and_time(open);
            now = next.and_local_timezone(tz).single().expect("fixed offset");
        }
    }
}

#[cfg(test)]
mod hours_tests {
    use super::BusinessHours;
    use chrono::{TimeZone, Utc};

    /// Local (UTC+7) wall-clock time as UTC.
    fn local(d: u32, h: u32, m: u32) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap() - chrono::Duration::hours(7)
    }

    #[test]
    fn sla_counts_working_hours_only() {
        let b = BusinessHours::default();
        let cases = [
            (local(26, 10, 0), 1, local(26, 11, 0)),
            (local(26, 20, 30), 1, local(27, 8, 30)),
            (local(26, 22, 0), 1, local(27, 9, 0)),
            (local(26, 6, 0), 8, local(26, 16, 0)),
            (local(26, 15, 0), 8, local(27, 10, 0)),
            // 24 working hours from 10:00: 11 h today, 13 h tomorrow, none left.
            (local(26, 10, 0), 24, local(27, 21, 0)),
        ];
        for (start, hours, want) in cases {
            assert_eq!(b.due(start, hours), want, "{start} +{hours}h");
        }
        assert!(b.is_open(local(26, 8, 0)));
        assert!(!b.is_open(local(26, 21, 0)));
        assert!(!b.is_open(local(26, 3, 0)));
        let always = BusinessHours {
            open: "00:00".into(),
            close: "00:00".into(),
            utc_offset_minutes: 420,
        };
        assert_eq!(always.due(local(26, 22, 0), 1), local(26, 23, 0));
        assert!(BusinessHours {
            open: "21:00".into(),
            close: "08:00".into(),
            utc_offset_minutes: 0
        }
        .validate()
        .is_err());
    }
}
