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
        Ok(Self {
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
        let department = self
            .departments
            .iter()
            .find(|m| m.hit(&msgs, intents, reason))
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
        "change_request" => {
            "khách yêu cầu thay đổi đơn: địa chỉ, số điện thoại, sản phẩm (đã xác minh)"
        }
        _ => "khác",
    }
}

/// Extractive summary (no LLM): the reason and the customer's last messages.
pub fn summary(reason: &str, customer_messages: &[String]) -> String {
    let last: Vec<&str> = customer_messages
        .iter()
        .rev()
        .take(3)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "Lý do chuyển: {}. Khách nhắn gần nhất: «{}».",
        reason_vietnamese(reason),
        last.join("» «")
    )
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
        let s = summary("complaint", &msgs(&["a", "b", "c", "d"]));
        assert_eq!(s, "Lý do chuyển: khách phàn nàn / tình huống nghiêm trọng. Khách nhắn gần nhất: «b» «c» «d».");
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
