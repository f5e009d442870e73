//! Rule-based intents from a data table (`intents.toml`); messages no rule claims are
//! decided by retrieval (faq / out_of_scope) in the dialogue policy.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::text::{fold, has_diacritics, Normalizer};

const DEFAULT_RULES: &str = include_str!("intents.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Faq,
    OrderStatus,
    HumanRequest,
    Complaint,
    Greeting,
    Thanks,
    Goodbye,
    OutOfScope,
}

impl Intent {
    pub const ALL: [Intent; 8] = [
        Intent::Faq,
        Intent::OrderStatus,
        Intent::HumanRequest,
        Intent::Complaint,
        Intent::Greeting,
        Intent::Thanks,
        Intent::Goodbye,
        Intent::OutOfScope,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Faq => "faq",
            Intent::OrderStatus => "order_status",
            Intent::HumanRequest => "human_request",
            Intent::Complaint => "complaint",
            Intent::Greeting => "greeting",
            Intent::Thanks => "thanks",
            Intent::Goodbye => "goodbye",
            Intent::OutOfScope => "out_of_scope",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.as_str() == s)
    }
}

#[derive(Debug, Error)]
pub enum IntentError {
    #[error("intent rules: {0}")]
    Parse(String),
}

#[derive(Deserialize)]
struct RuleFile {
    priority: Vec<String>,
    #[serde(flatten)]
    rules: HashMap<String, RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    phrases: Vec<String>,
    #[serde(default)]
    waiting: Vec<String>,
    max_words: Option<usize>,
}

struct Phrase {
    exact: String,
    folded: Option<String>,
}

/// Whole-word phrases matched on normalized text. A phrase written with diacritics
/// matches messages typed with them exactly, and messages typed without any
/// diacritics by its folded form; one-syllable phrases only match as typed (folded,
/// "điên" would match "điện" and "ngu" would match "ngủ").
pub struct PhraseSet {
    phrases: Vec<Phrase>,
}

/// A message prepared once for matching against many phrase sets.
pub struct Prepared {
    words: usize,
    exact: String,
    folded: Option<String>,
}

impl Prepared {
    pub fn new(normalizer: &Normalizer, text: &str) -> Self {
        let syl = normalizer.syllables(text);
        let exact = format!(" {} ", syl.join(" "));
        let folded = (!has_diacritics(text)).then(|| fold(&exact));
        Self {
            words: syl.len(),
            exact,
            folded,
        }
    }
}

impl PhraseSet {
    pub fn new<S: AsRef<str>>(normalizer: &Normalizer, phrases: &[S]) -> Self {
        let phrases = phrases
            .iter()
            .map(|p| {
                let syl = normalizer.syllables(p.as_ref());
                let exact = syl.join(" ");
                let folded = (syl.len() >= 2).then(|| fold(&exact));
                Phrase { exact, folded }
            })
            .filter(|p| !p.exact.is_empty())
            .collect();
        Self { phrases }
    }

    pub fn matches(&self, msg: &Prepared) -> bool {
        self.phrases.iter().any(|p| {
            msg.exact.contains(&format!(" {} ", p.exact))
                || match (&msg.folded, &p.folded) {
                    (Some(m), Some(ph)) => m.contains(&format!(" {ph} ")),
                    _ => false,
                }
        })
    }
}

struct Rule {
    intent: Intent,
    phrases: PhraseSet,
    /// Phrases that also claim the intent and say the customer has been kept waiting.
    waiting: PhraseSet,
    max_words: Option<usize>,
}

/// What the rules read in a message: its intent, and whether the customer says they
/// have been kept waiting ("đặt 5 ngày rồi chưa thấy").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleMatch {
    pub intent: Intent,
    pub waiting: bool,
}

pub struct IntentRules {
    rules: Vec<Rule>,
    normalizer: Normalizer,
}

impl IntentRules {
    pub fn default_rules() -> Self {
        Self::parse(DEFAULT_RULES).expect("embedded intent rules are valid")
    }

    pub fn parse(src: &str) -> Result<Self, IntentError> {
        let file: RuleFile = toml::from_str(src).map_err(|e| IntentError::Parse(e.to_string()))?;
        let normalizer = Normalizer::default();
        let mut rules = Vec::new();
        for name in &file.priority {
            let intent = Intent::parse(name)
                .ok_or_else(|| IntentError::Parse(format!("unknown intent `{name}`")))?;
            let spec = file
                .rules
                .get(name)
                .ok_or_else(|| IntentError::Parse(format!("no [{name}] table")))?;
            rules.push(Rule {
                intent,
                phrases: PhraseSet::new(&normalizer, &spec.phrases),
                waiting: PhraseSet::new(&normalizer, &spec.waiting),
                max_words: spec.max_words,
            });
        }
        for name in file.rules.keys() {
            if !file.priority.contains(name) {
                return Err(IntentError::Parse(format!("[{name}] is not in `priority`")));
            }
        }
        Ok(Self { rules, normalizer })
    }

    /// The first rule-based intent that claims `text`, if any.
    pub fn classify(&self, text: &str) -> Option<Intent> {
        self.read(text).map(|m| m.intent)
    }

    /// The first rule that claims `text`, and whether it says the customer waited.
    pub fn read(&self, text: &str) -> Option<RuleMatch> {
        let msg = Prepared::new(&self.normalizer, text);
        if msg.words == 0 {
            return None;
        }
        self.rules
            .iter()
            .filter(|r| r.max_words.is_none_or(|m| msg.words <= m))
            .find_map(|r| {
                let waiting = r.waiting.matches(&msg);
                (waiting || r.phrases.matches(&msg)).then_some(RuleMatch {
                    intent: r.intent,
                    waiting,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_table() {
        let r = IntentRules::default_rules();
        let cases = [
            ("em bị trừ tiền 2 lần", Some(Intent::Complaint)),
            ("em bi tru tien 2 lan roi", Some(Intent::Complaint)),
            ("hàng nhận về bị vỡ hết", Some(Intent::Complaint)),
            ("cho gặp nhân viên", Some(Intent::HumanRequest)),
            ("cho gap nv tu van", Some(Intent::HumanRequest)),
            (
                "tôi muốn nói chuyện với người thật",
                Some(Intent::HumanRequest),
            ),
            ("đơn của em đâu rồi", Some(Intent::OrderStatus)),
            ("don hang cua toi dau roi", Some(Intent::OrderStatus)),
            ("cảm ơn shop nhiều", Some(Intent::Thanks)),
            ("tks ad", Some(Intent::Thanks)),
            ("chào shop", Some(Intent::Greeting)),
            ("alo", Some(Intent::Greeting)),
            ("bye shop", Some(Intent::Goodbye)),
            ("ok vậy thôi", Some(Intent::Goodbye)),
            ("thoi khoi, cam on", Some(Intent::Thanks)),
            ("chào shop, cho em hỏi phí ship ra Hà Nội bao nhiêu", None),
            ("so dien thoai cua shop la gi", None),
            ("phí ship ra Hà Nội bao nhiêu", None),
            ("em buồn ngủ quá", None),
        ];
        for (text, want) in cases {
            assert_eq!(r.classify(text), want, "{text}");
        }
    }

    #[test]
    fn a_customer_kept_waiting_is_read_as_such() {
        let r = IntentRules::default_rules();
        let waited = |text: &str| r.read(text).filter(|m| m.intent == Intent::OrderStatus);
        for text in [
            "sao giao cham qua vay, dat 5 ngay roi chua thay",
            "đơn em đặt 3 hôm rồi chưa thấy đâu",
            "đơn đứng yên mấy hôm nay",
        ] {
            assert_eq!(waited(text).map(|m| m.waiting), Some(true), "{text}");
        }
        assert_eq!(
            r.read("đơn của em đâu rồi"),
            Some(RuleMatch {
                intent: Intent::OrderStatus,
                waiting: false
            })
        );
        // A complaint still wins over the wait.
        assert_eq!(
            r.classify("giao trễ làm hỏng việc của tôi, quá tệ"),
            Some(Intent::Complaint)
        );
        assert_eq!(r.read("shop giao hàng mất bao lâu"), None);
    }

    #[test]
    fn bad_rule_files_are_rejected() {
        assert!(IntentRules::parse("priority = [\"nope\"]\n[nope]\nphrases=[]").is_err());
        assert!(IntentRules::parse("priority = []\n[thanks]\nphrases=[\"x\"]").is_err());
        assert!(IntentRules::parse("priority = [\"thanks\"]").is_err());
    }

    #[test]
    fn intent_names_round_trip() {
        for i in Intent::ALL {
            assert_eq!(Intent::parse(i.as_str()), Some(i));
        }
    }
}
