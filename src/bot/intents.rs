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
    /// Words that say nothing on their own ("shop", "ạ", "nhé"): a small-talk rule
    /// (`alone`) claims a message made of its phrases and these only.
    #[serde(default)]
    filler: Vec<String>,
    /// Cues that a message asks something ("thì sao", "được không", "thế nào"): a
    /// rule's `soft` phrases do not claim such a message.
    #[serde(default)]
    asking: Vec<String>,
    /// "không nhớ mã đơn": the customer cannot give what the order flow asks for.
    #[serde(default)]
    cannot_give: Vec<String>,
    /// "không có gì thêm": nothing to add (to a survey's "any comment?").
    #[serde(default)]
    declining: Vec<String>,
    /// Words that address the shop or the customer ("shop", "ạ", "em"): left out
    /// with the small talk that opens a question (matched as typed).
    #[serde(default)]
    address: Vec<String>,
    /// "còn hàng", "còn size": a question about stock, answered only by an entry
    /// about stock.
    #[serde(default)]
    stock: Vec<String>,
    /// "giá bao nhiêu", "bao nhiêu tiền": a question about a price, answered only by
    /// an entry that speaks of prices (`priced` words or an amount of money).
    #[serde(default)]
    price: Vec<String>,
    /// "hủy giúp em đơn DH…": a request to cancel the order being looked up.
    #[serde(default)]
    cancel: Vec<String>,
    /// "đổi địa chỉ giao cho đơn DH…": a request to change it.
    #[serde(default)]
    change: Vec<String>,
    /// Words that make a sentence a question ("không", "bao nhiêu", "mấy"), with
    /// `asking`: a message of several such sentences asks several questions.
    #[serde(default)]
    question_words: Vec<String>,
    #[serde(default)]
    question_ends: Vec<String>,
    /// Words that join a second question to a first inside one sentence ("với lại",
    /// "còn nữa"): "có ship cod không, với lại phí ship về quận 3 bao nhiêu".
    #[serde(default)]
    joiners: Vec<String>,
    #[serde(default)]
    cancel_unless: Vec<String>,
    /// "thế nào", "làm sao": a request phrase in a question about how it is done.
    #[serde(default)]
    how_to: Vec<String>,
    /// "đơn này", "giúp em": a request about the order just checked.
    #[serde(default)]
    this_order: Vec<String>,
    /// "đơn này", "đơn đó": an order named without its code.
    #[serde(default)]
    named_order: Vec<String>,
    /// "bao giờ", "khi nào": a question about when, after a sentence naming an order.
    #[serde(default)]
    order_time: Vec<String>,
    #[serde(default)]
    priced: Vec<String>,
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
    /// Small talk: the rule claims a message only when nothing is left of it but
    /// small-talk phrases and filler words ("chào shop ạ"), never one that also asks
    /// something ("shop ơi có cod ko", "em cảm ơn, đổi size được không").
    #[serde(default)]
    alone: bool,
    /// Phrases that claim the intent only in a message that does not ask anything:
    /// "hàng nhận về bị vỡ hết" is a complaint, "nhận hàng bị vỡ thì sao shop" a
    /// question the knowledge base answers.
    #[serde(default)]
    soft: Vec<String>,
    /// Phrases that keep the rule from claiming a message at all ("hóa đơn" holds
    /// "đơn" but is not an order).
    #[serde(default)]
    unless: Vec<String>,
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
    syllables: Vec<String>,
    /// The syllables folded, for a message typed without marks (else as typed).
    folded_syllables: Vec<String>,
}

impl Prepared {
    pub fn new(normalizer: &Normalizer, text: &str) -> Self {
        let syl = normalizer.syllables(text);
        let exact = format!(" {} ", syl.join(" "));
        let folded = (!has_diacritics(text)).then(|| fold(&exact));
        let folded_syllables = match folded {
            Some(_) => syl.iter().map(|s| fold(s)).collect(),
            None => syl.clone(),
        };
        Self {
            words: syl.len(),
            exact,
            folded,
            syllables: syl,
            folded_syllables,
        }
    }
}

impl PhraseSet {
    pub fn new<S: AsRef<str>>(normalizer: &Normalizer, phrases: &[S]) -> Self {
        Self::build(normalizer, phrases, 2)
    }

    /// Phrases of `fold_from` syllables or more also match their folded form.
    fn build<S: AsRef<str>>(normalizer: &Normalizer, phrases: &[S], fold_from: usize) -> Self {
        let phrases = phrases
            .iter()
            .map(|p| {
                let syl = normalizer.syllables(p.as_ref());
                let exact = syl.join(" ");
                let folded = (syl.len() >= fold_from).then(|| fold(&exact));
                Phrase { exact, folded }
            })
            .filter(|p| !p.exact.is_empty())
            .collect();
        Self { phrases }
    }

    /// Marks the message's syllables that some phrase of the set covers (as
    /// [`PhraseSet::matches`] matches them).
    fn cover(&self, msg: &Prepared, covered: &mut [bool]) {
        let unmarked = msg.folded.is_some();
        let syl = &msg.folded_syllables;
        for p in &self.phrases {
            let words: Vec<&str> = match (&p.folded, unmarked) {
                (Some(f), true) => f.split(' ').collect(),
                _ => p.exact.split(' ').collect(),
            };
            if words.is_empty() || words.len() > syl.len() {
                continue;
            }
            for start in 0..=syl.len() - words.len() {
                let hit = words
                    .iter()
                    .enumerate()
                    .all(|(k, w)| msg.syllables[start + k] == *w || syl[start + k] == *w);
                if hit {
                    covered[start..start + words.len()].fill(true);
                }
            }
        }
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
    alone: bool,
    soft: PhraseSet,
    unless: PhraseSet,
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
    filler: PhraseSet,
    asking: PhraseSet,
    cannot_give: PhraseSet,
    declining: PhraseSet,
    address: PhraseSet,
    stock: PhraseSet,
    price: PhraseSet,
    priced: PhraseSet,
    cancel: PhraseSet,
    cancel_unless: PhraseSet,
    how_to: PhraseSet,
    this_order: PhraseSet,
    named_order: PhraseSet,
    order_time: PhraseSet,
    change: PhraseSet,
    question_words: PhraseSet,
    question_ends: std::collections::HashSet<String>,
    joiners: Vec<String>,
    filler_words: std::collections::HashSet<String>,
    normalizer: Normalizer,
}

impl IntentRules {
    pub fn default_rules() -> Self {
        Self::parse(DEFAULT_RULES).expect("embedded intent rules are valid")
    }

    /// The embedded rules, parsed once for the whole process (the dialogue, the
    /// answering core and the knowledge gaps read messages alike).
    pub fn shared() -> &'static Self {
        static RULES: std::sync::LazyLock<IntentRules> =
            std::sync::LazyLock::new(IntentRules::default_rules);
        &RULES
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
                alone: spec.alone,
                soft: PhraseSet::new(&normalizer, &spec.soft),
                unless: PhraseSet::new(&normalizer, &spec.unless),
            });
        }
        for name in file.rules.keys() {
            if !file.priority.contains(name) {
                return Err(IntentError::Parse(format!("[{name}] is not in `priority`")));
            }
        }
        // Filler says nothing whichever word it is: "a" typed for "ạ" is filler too.
        let filler = PhraseSet::build(&normalizer, &file.filler, 1);
        let asking = PhraseSet::new(&normalizer, &file.asking);
        let cannot_give = PhraseSet::new(&normalizer, &file.cannot_give);
        let declining = PhraseSet::new(&normalizer, &file.declining);
        let address = PhraseSet::new(&normalizer, &file.address);
        let stock = PhraseSet::new(&normalizer, &file.stock);
        let price = PhraseSet::new(&normalizer, &file.price);
        let priced = PhraseSet::new(&normalizer, &file.priced);
        let cancel = PhraseSet::new(&normalizer, &file.cancel);
        let cancel_unless = PhraseSet::new(&normalizer, &file.cancel_unless);
        let change = PhraseSet::new(&normalizer, &file.change);
        let how_to = PhraseSet::new(&normalizer, &file.how_to);
        let this_order = PhraseSet::new(&normalizer, &file.this_order);
        let named_order = PhraseSet::new(&normalizer, &file.named_order);
        let order_time = PhraseSet::new(&normalizer, &file.order_time);
        let question_words = PhraseSet::build(&normalizer, &file.question_words, 1);
        let joiners = file
            .joiners
            .iter()
            .map(|j| fold(&normalizer.normalize(j)))
            .collect();
        let question_ends = file
            .question_ends
            .iter()
            .map(|j| normalizer.normalize(j))
            .collect();
        let filler_words = file
            .filler
            .iter()
            .chain(&file.address)
            .map(|w| normalizer.normalize(w))
            .filter(|w| !w.is_empty() && !w.contains(' '))
            .collect();
        Ok(Self {
            rules,
            filler,
            asking,
            cannot_give,
            declining,
            address,
            stock,
            price,
            priced,
            cancel,
            cancel_unless,
            how_to,
            this_order,
            named_order,
            order_time,
            change,
            question_words,
            question_ends,
            joiners,
            filler_words,
            normalizer,
        })
    }

    /// The first rule-based intent that claims `text`, if any.
    pub fn classify(&self, text: &str) -> Option<Intent> {
        self.read(text).map(|m| m.intent)
    }

    /// The first rule that claims `text`, and whether it says the customer waited.
    pub fn read(&self, text: &str) -> Option<RuleMatch> {
        let named = without_introduction(text);
        let msg = Prepared::new(&self.normalizer, &named);
        if msg.words == 0 {
            return match named.len() < text.len() {
                // "em là Lan": the customer only said who they are.
                true => Some(RuleMatch {
                    intent: Intent::Greeting,
                    waiting: false,
                }),
                false => wordless(text),
            };
        }
        let mut talk = self.small_talk(&msg);
        self.filler.cover(&msg, &mut talk);
        let only_small_talk = talk.iter().all(|&c| c);
        self.rules
            .iter()
            .filter(|r| r.max_words.is_none_or(|m| msg.words <= m))
            .filter(|r| !r.alone || only_small_talk)
            .filter(|r| !r.unless.matches(&msg))
            .find_map(|r| {
                let waiting = r.waiting.matches(&msg);
                // A question mark alone does not make a question of a complaint: "sao
                // shop bán hàng giả vậy?" blames.
                let soft = || {
                    r.soft.matches(&msg) && !self.asking.matches(&msg) && !self.ends_asking(&msg)
                };
                (waiting || r.phrases.matches(&msg) || soft()).then_some(RuleMatch {
                    intent: r.intent,
                    waiting,
                })
            })
            .or_else(|| {
                // Filler alone ("ok", "dạ vâng", "ừ"): an acknowledgement.
                let mut filler = vec![false; msg.syllables.len()];
                self.filler.cover(&msg, &mut filler);
                filler.iter().all(|&c| c).then_some(RuleMatch {
                    intent: Intent::Thanks,
                    waiting: false,
                })
            })
    }

    /// Whether a message asks something or needs something done: a question mark,
    /// a question cue (`asking`), an order lookup, a request for a person or a
    /// complaint. Praise of the staff ("nhân viên tư vấn nhiệt tình") does not.
    pub fn asks(&self, text: &str) -> bool {
        let msg = Prepared::new(&self.normalizer, text);
        text.contains('?')
            || self.asking.matches(&msg)
            || self.read(text).is_some_and(|m| {
                matches!(
                    m.intent,
                    Intent::OrderStatus | Intent::HumanRequest | Intent::Complaint
                )
            })
    }

    /// Whether a message declines to add anything: small talk alone ("ok", "cảm ơn
    /// shop") or a `declining` phrase ("không có gì thêm").
    pub fn declines(&self, text: &str) -> bool {
        let msg = Prepared::new(&self.normalizer, text);
        self.declining.matches(&msg)
            || self.read(text).is_some_and(|m| {
                matches!(
                    m.intent,
                    Intent::Thanks | Intent::Goodbye | Intent::Greeting
                )
            })
    }

    /// Whether a text speaks of stock ("còn hàng", "còn size M", "hết hàng").
    pub fn asks_stock(&self, text: &str) -> bool {
        self.stock.matches(&Prepared::new(&self.normalizer, text))
    }

    /// Whether a message holds one of `intent`'s phrases, whichever rule claims it
    /// ("vậy thôi, cảm ơn em nhé" is thanks, and also says goodbye).
    pub fn says(&self, intent: Intent, text: &str) -> bool {
        let msg = Prepared::new(&self.normalizer, text);
        self.rules
            .iter()
            .any(|r| r.intent == intent && r.phrases.matches(&msg))
    }

    /// Whether a word (a normalized syllable) says nothing on its own: a one-word
    /// `filler` or `address` entry ("ơi", "vậy", "shop", "ạ").
    pub fn is_filler_word(&self, word: &str) -> bool {
        self.filler_words.contains(word)
    }

    /// Whether a message asks to cancel an order ("hủy giúp em đơn DH240517",
    /// "đơn #10023 em không lấy nữa") or to change one ("đổi địa chỉ giao cho đơn
    /// DH240517"); a cancellation wins.
    pub fn order_request(&self, text: &str) -> Option<crate::bot::OrderRequest> {
        let msg = Prepared::new(&self.normalizer, text);
        if self.cancel.matches(&msg) && !self.cancel_unless.matches(&msg) {
            Some(crate::bot::OrderRequest::Cancel)
        } else if self.change.matches(&msg) {
            Some(crate::bot::OrderRequest::Change)
        } else {
            None
        }
    }

    /// Whether a request without an order code is about the order the customer has
    /// just checked: it names it ("đơn này") or asks for it to be done ("giúp em"),
    /// and does not ask how it is done.
    pub fn about_this_order(&self, text: &str) -> bool {
        let msg = Prepared::new(&self.normalizer, text);
        self.this_order.matches(&msg) && !self.how_to.matches(&msg)
    }

    /// Whether a message speaks of an order it names without a code ("đơn này ship
    /// bằng gì"), other than to ask how something is done.
    pub fn names_an_order(&self, text: &str) -> bool {
        let msg = Prepared::new(&self.normalizer, text);
        self.named_order.matches(&msg) && !self.how_to.matches(&msg)
    }

    /// Whether a message asks what something costs ("áo này giá bao nhiêu").
    pub fn asks_price(&self, text: &str) -> bool {
        self.price.matches(&Prepared::new(&self.normalizer, text))
    }

    /// Whether a text speaks of prices: a price or fee word, or an amount of money
    /// ("25.000đ", "50k", "1,5 triệu").
    pub fn speaks_of_price(&self, text: &str) -> bool {
        static AMOUNT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"(?i)\d[\d.,]*\s*(?:đ|₫|k\b|nghìn|ngàn|triệu|tr\b|vnđ|vnd)")
                .expect("valid amount pattern")
        });
        AMOUNT.is_match(text) || self.priced.matches(&Prepared::new(&self.normalizer, text))
    }

    /// Whether the customer says they cannot give an order code or phone ("em ko nhớ
    /// mã đơn", "quên mất số đặt hàng rồi").
    pub fn cannot_give(&self, text: &str) -> bool {
        self.cannot_give
            .matches(&Prepared::new(&self.normalizer, text))
    }

    /// The message without the small talk that opens it ("hi shop đổi size dc ko"
    /// → "đổi size được không", "em cảm ơn. đổi size được không" → "đổi size được
    /// không") or closes it ("đổi size được không ạ, cảm ơn shop"): what retrieval
    /// should read. Only an opening or a closing that holds a small-talk phrase is
    /// left out, with the words addressing someone; other words at the end ("… bao
    /// nhiêu", "… mấy ngày ạ") are the question's own. `None` when nothing opens or
    /// closes it so, or nothing else is in it.
    pub fn question_part(&self, text: &str) -> Option<String> {
        let msg = Prepared::new(&self.normalizer, text);
        let talk = self.small_talk(&msg);
        let mut covered = talk.clone();
        self.address.cover(&msg, &mut covered);
        let first = covered.iter().position(|&c| !c)?;
        let start = match first > 0 && talk[..first].contains(&true) {
            true => first,
            false => 0,
        };
        // At the end, a run of small talk and words addressing someone that holds a
        // small-talk phrase ("…, cảm ơn shop", "… shop ơi"); a lone "ạ" or "vậy shop"
        // stays, as the decision models were fitted with them.
        let tail = covered.iter().rposition(|&c| !c)? + 1;
        let end = match talk[tail..].contains(&true) && tail > start {
            true => tail,
            false => msg.syllables.len(),
        };
        (start > 0 || end < msg.syllables.len()).then(|| msg.syllables[start..end].join(" "))
    }

    /// The questions of a message that asks several ("có ship cod không? phí ship về
    /// quận 3 bao nhiêu?"), each with the sentences before it that ask nothing (its
    /// context: "em ở Đà Nẵng. ship ra đó mấy ngày?"); empty when it asks one or none.
    /// Sentences end at ".", "?", "!", ";" or a line break; a `joiners` phrase after
    /// three words or more also starts a new one, and is left out ("…không, với lại
    /// …"). A part asks when it ends with
    /// "?", holds an `asking` or `question_words` phrase or ends with a `question_ends`
    /// word, and has three words or more.
    pub fn question_parts(&self, text: &str) -> Vec<String> {
        let parts = self.questions(text);
        match parts.len() {
            0 | 1 => Vec::new(),
            _ => parts,
        }
    }

    /// Every question of a message, read as `question_parts` reads them (each with
    /// the sentences before it that ask nothing), however many there are.
    pub fn questions(&self, text: &str) -> Vec<String> {
        self.questions_besides(text, |_, _| false)
    }

    /// The questions of a message besides its sentences that `another` claims (it
    /// is told whether the sentence asks; a sentence naming an order is the order
    /// flow's). A question about when (`order_time`) right after such a sentence
    /// that asked nothing belongs to it ("em đặt đơn DH240517 hôm qua. bao giờ giao
    /// ạ"), unless a joiner opens it.
    /// The sentences of a message as `questions` reads them: cut at ".", "?", "!",
    /// ";", a line break, and before a joiner after three words or more.
    pub fn sentences(&self, text: &str) -> Vec<String> {
        self.pieces(text).into_iter().map(|(s, _)| s).collect()
    }

    /// The message's sentences, each with whether a joiner opened it.
    fn pieces(&self, text: &str) -> Vec<(String, bool)> {
        let mut sentences: Vec<String> = Vec::new();
        let mut current = String::new();
        for c in text.chars() {
            current.push(c);
            if matches!(c, '.' | '?' | '!' | ';' | '\n') {
                sentences.push(std::mem::take(&mut current));
            }
        }
        sentences.push(current);
        // "…, với lại …": a joiner starts a new question (after three words or more),
        // and is no part of it. Each piece says whether a joiner opened it.
        let mut split: Vec<(String, bool)> = Vec::new();
        for sentence in sentences {
            let words: Vec<(usize, &str)> = sentence
                .split_whitespace()
                .map(|w| (w.as_ptr() as usize - sentence.as_ptr() as usize, w))
                .collect();
            // Folded: "voi lai" typed without marks joins too.
            let folded: Vec<String> = words
                .iter()
                .map(|(_, w)| fold(&self.normalizer.normalize(w)))
                .collect();
            let joiner_at = |i: usize| -> Option<usize> {
                self.joiners.iter().find_map(|j| {
                    let mut said = String::new();
                    for (n, f) in folded[i..].iter().enumerate() {
                        if !said.is_empty() {
                            said.push(' ');
                        }
                        said.push_str(f);
                        if said == *j {
                            return Some(n + 1);
                        }
                        if !j.starts_with(&said) {
                            return None;
                        }
                    }
                    None
                })
            };
            let mut begin = 0; // word index where the current part starts
            let mut joined = false;
            let mut i = 0;
            while i < words.len() {
                match joiner_at(i) {
                    Some(n) if i == begin => {
                        begin = i + n;
                        joined = true;
                        i += n;
                    }
                    Some(n) if i - begin >= 3 => {
                        split.push((sentence[words[begin].0..words[i].0].to_string(), joined));
                        begin = i + n;
                        joined = true;
                        i += n;
                    }
                    _ => i += 1,
                }
            }
            if begin < words.len() {
                split.push((sentence[words[begin].0..].to_string(), joined));
            }
        }
        split
    }

    pub fn questions_besides(
        &self,
        text: &str,
        another: impl Fn(&str, bool) -> bool,
    ) -> Vec<String> {
        let split = self.pieces(text);
        let mut parts = Vec::new();
        let mut context = String::new();
        // Right after a sentence of another flow that asked nothing: a question about
        // when is that flow's ("em đặt đơn DH240517 hôm qua. bao giờ giao ạ").
        let mut held = false;
        let mut other_since_last = false;
        for (sentence, joined) in split {
            let msg = Prepared::new(&self.normalizer, &sentence);
            if msg.words == 0 {
                continue;
            }
            let asks = self.sentence_asks(&sentence, &msg);
            if another(&sentence, asks) {
                // A question set off by a comma in that sentence ("cho em hỏi phí ship
                // về quận 3 bao nhiêu, và đơn DH240541 giao chưa") is still one.
                for piece in sentence.split(',').filter(|_| sentence.contains(',')) {
                    let m = Prepared::new(&self.normalizer, piece);
                    let asks = self.sentence_asks(piece, &m);
                    if asks && m.words >= 3 && !another(piece, asks) && !self.order_time.matches(&m)
                    {
                        parts.push(piece.trim().to_string());
                    }
                }
                context.clear();
                held = !asks;
                other_since_last = true;
                continue;
            }
            if held && context.is_empty() && !joined && self.order_time.matches(&msg) {
                held = false;
                continue;
            }
            held = false;
            if !context.is_empty() && !context.ends_with(char::is_whitespace) {
                context.push(' ');
            }
            context.push_str(&sentence);
            if asks && msg.words >= 3 {
                parts.push(std::mem::take(&mut context).trim().to_string());
                other_since_last = false;
            }
        }
        // What follows the last question (a thanks, a "shop ơi") belongs to it.
        if let Some(last) = parts.last_mut().filter(|_| !other_since_last) {
            let tail = context.trim();
            if !tail.is_empty() {
                last.push(' ');
                last.push_str(tail);
            }
        }
        parts
    }

    /// Whether a sentence asks: it ends with "?", holds an `asking` or
    /// `question_words` phrase, or ends with a `question_ends` word.
    fn sentence_asks(&self, sentence: &str, msg: &Prepared) -> bool {
        sentence.trim_end().ends_with('?')
            || self.asking.matches(msg)
            || self.question_words.matches(msg)
            || self.ends_asking(msg)
    }

    /// Whether a message's last word, before filler words, asks: "có đổi không
    /// shop", "giao chưa ạ" (`question_ends`).
    fn ends_asking(&self, msg: &Prepared) -> bool {
        // A message typed without marks compares folded words ("khong a").
        let plain = msg.folded.is_some();
        let is = |set: &std::collections::HashSet<String>, w: &str| {
            set.contains(w) || plain && set.iter().any(|x| fold(x) == w)
        };
        msg.syllables
            .iter()
            .rev()
            .find(|w| !is(&self.filler_words, w))
            .is_some_and(|w| is(&self.question_ends, w))
    }

    /// The message's syllables that small-talk phrases (of the `alone` rules) cover.
    fn small_talk(&self, msg: &Prepared) -> Vec<bool> {
        let mut covered = vec![false; msg.syllables.len()];
        for r in self.rules.iter().filter(|r| r.alone) {
            r.phrases.cover(msg, &mut covered);
        }
        covered
    }
}

/// The text without the customer saying who they are ("chào shop, em là Lan",
/// "shop ơi em Lan đây", "mình tên Hoa"): a name is one to three capitalized words
/// after "là"/"tên", or before "đây". Names are no question and no small talk phrase.
fn without_introduction(text: &str) -> std::borrow::Cow<'_, str> {
    static NAME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        let who = r"(?:[Ee]m|[Mm]ình|[Tt]ôi|[Aa]nh|[Cc]hị|[Cc]on|[Cc]háu)";
        let name = r"\p{Lu}\p{Ll}*(?:\s+\p{Lu}\p{Ll}*){0,2}";
        regex::Regex::new(&format!(
            r"\b{who}\s+(?:(?:tên\s+)?là|tên)\s+{name}\b|\b{who}\s+{name}\s+đây\b"
        ))
        .expect("introduction pattern")
    });
    NAME.replace_all(text, " ")
}

/// A message without a word: "👍", "🙏", "❤️" acknowledge (read as thanks); anything
/// else ("?", "...", "😡") is read as a greeting, so the bot asks what the customer
/// needs. Neither is a question retrieval failed on.
fn wordless(text: &str) -> Option<RuleMatch> {
    const KIND: &[char] = &[
        '👍', '👌', '🙏', '❤', '♥', '💕', '💖', '💗', '😊', '☺', '🥰', '😍', '😘', '🤗', '😁',
        '😄', '😀', '😃', '🥳', '👏', '✌', '🌹', '🌸', '💯', '✅', '🆗',
    ];
    let shown = |c: &char| !c.is_whitespace() && !matches!(c, '\u{fe0f}' | '\u{200d}');
    if !text.chars().any(|c| shown(&c)) {
        return None;
    }
    let kind = text
        .chars()
        .filter(shown)
        .all(|c| KIND.contains(&c) || ('\u{1f3fb}'..='\u{1f3ff}').contains(&c));
    Some(RuleMatch {
        intent: if kind {
            Intent::Thanks
        } else {
            Intent::Greeting
        },
        waiting: false,
    })
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
            // Small talk before a question: the question is what the message is.
            ("shop ơi có cod ko", None),
            ("chào shop có cod không ạ", None),
            ("hi shop đổi size dc ko", None),
            ("alo shop có trả góp ko", None),
            ("ad ơi freeship từ bn", None),
            ("em cảm ơn. đổi size được không", None),
            ("em cam on, cho em hoi doi size duoc khong", None),
            ("dạ em chào shop ạ", Some(Intent::Greeting)),
            ("hi ad", Some(Intent::Greeting)),
            ("ok em cảm ơn shop nhiều nha", Some(Intent::Thanks)),
            ("dạ vâng", Some(Intent::Thanks)),
            ("ok", Some(Intent::Thanks)),
            ("uk", Some(Intent::Thanks)),
            (
                "e đặt 1 đơn hôm qua rồi mà giờ muốn thêm 1 cái áo nữa vào đơn đc ko shop",
                None,
            ),
            ("👍", Some(Intent::Thanks)),
            ("🙏🏻", Some(Intent::Thanks)),
            ("❤️ ❤️", Some(Intent::Thanks)),
            ("?", Some(Intent::Greeting)),
            ("😡", Some(Intent::Greeting)),
            ("...", Some(Intent::Greeting)),
            ("ok em đợi chút", Some(Intent::Thanks)),
            ("cảm ơn bạn đã hỗ trợ", Some(Intent::Thanks)),
            ("shop ơi cho em hỏi", Some(Intent::Greeting)),
            ("alo shop ơi tư vấn giúp em", Some(Intent::Greeting)),
            ("xin chào ạ em cần tư vấn", Some(Intent::Greeting)),
            // Words inside other words, and questions about damage or fakes, are not
            // complaints; a report of them is.
            ("đổi trả cần điều kiện gì", None),
            (
                "đơn hàng tách nhiều kiện có tính phí ship nhiều lần ko",
                None,
            ),
            ("máy xay sinh tố bị hư còn bảo hành ko", None),
            ("nhận hàng bị vỡ thì sao shop", None),
            ("sao shop bán hàng giả vậy?", Some(Intent::Complaint)),
            ("sao hàng nhận về bị vỡ hết vậy?", Some(Intent::Complaint)),
            ("hàng ở shop có phải hàng giả không", None),
            ("muốn hợp tác làm ăn lấy sỉ về bán", None),
            ("cach chua mat ngu", None),
            ("tôi muốn khiếu nại", Some(Intent::Complaint)),
            ("shop bán hàng giả, tôi sẽ kiện", Some(Intent::Complaint)),
            ("bot ngu quá", Some(Intent::Complaint)),
            // "đơn" of "hóa đơn", and how-to questions about orders, are not lookups.
            ("hóa đơn vat gửi đâu rồi shop", None),
            ("hủy đơn thế nào", None),
            ("sao đơn của mình không chọn được COD", None),
            ("so dien thoai cua shop la gi", None),
            ("phí ship ra Hà Nội bao nhiêu", None),
            ("em buồn ngủ quá", None),
        ];
        for (text, want) in cases {
            assert_eq!(r.classify(text), want, "{text}");
        }
    }

    #[test]
    fn after_a_survey_questions_ask_and_thanks_decline() {
        let r = IntentRules::default_rules();
        for text in [
            "phí ship bao nhiêu",
            "cho gặp nhân viên",
            "tôi muốn khiếu nại",
            "đơn của tôi đâu rồi",
        ] {
            assert!(r.asks(text), "{text}");
        }
        for text in [
            "nhân viên tư vấn nhiệt tình",
            "giao nhanh, đóng gói cẩn thận",
        ] {
            assert!(!r.asks(text) && !r.declines(text), "{text}");
        }
        for text in ["ok", "cảm ơn shop", "không có gì thêm", "ko co gi"] {
            assert!(r.declines(text), "{text}");
        }
    }

    #[test]
    fn the_question_is_read_without_the_small_talk_around_it() {
        let r = IntentRules::default_rules();
        for (text, want) in [
            ("hi shop đổi size dc ko", Some("đổi size được không")),
            (
                "em cảm ơn. đổi size được không",
                Some("đổi size được không"),
            ),
            ("ad ơi freeship từ bn", Some("freeship từ bao nhiêu")),
            ("phí ship ra hà nội bao nhiêu", None),
            ("phi ship ra ha noi bao nhieu", None),
            ("giao hàng mất mấy ngày ạ", None),
            (
                "đổi size được không vậy ạ, cảm ơn shop",
                Some("đổi size được không vậy"),
            ),
            (
                "có giao cuối tuần không shop ơi",
                Some("có giao cuối tuần không"),
            ),
            (
                "shop ơi giao mấy ngày vậy shop",
                Some("giao mấy ngày vậy shop"),
            ),
            ("ship mấy ngày", None),
            ("em muốn hỏi phí ship", Some("phí giao hàng")),
            (
                "chào shop, sáng mai giao không",
                Some("sáng mai giao không"),
            ),
            ("chào shop ạ", None),
        ] {
            assert_eq!(r.question_part(text).as_deref(), want, "{text}");
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
    fn price_questions_and_entries_that_speak_of_prices() {
        let r = IntentRules::default_rules();
        for q in [
            "áo sơ mi linen trắng giá bao nhiêu vậy shop",
            "dong ho casio gia bn",
            "đôi này bao nhiêu tiền ạ",
            "mẫu này giá sao shop",
        ] {
            assert!(r.asks_price(q), "{q}");
        }
        for q in [
            "phí ship ra Hà Nội bao nhiêu",
            "áo này chất liệu gì",
            "đơn giá trên hóa đơn",
        ] {
            assert!(!r.asks_price(q), "{q}");
        }
        for t in [
            "Phí giao hàng nội thành là 25.000đ/đơn",
            "Đơn từ 500k được miễn phí giao hàng",
            "Giá niêm yết đã gồm VAT",
            "Hạn mức 1,5 triệu mỗi ngày",
        ] {
            assert!(r.speaks_of_price(t), "{t}");
        }
        for t in [
            "Áo thun dùng cotton 100% định lượng 220gsm",
            "Tai nghe, giá đỡ điện thoại, đồng hồ thông minh bảo hành 6 tháng",
            "Anh/chị trả bằng tiền mặt khi nhận hàng",
            "Cửa hàng mở cửa từ 8 giờ đến 22 giờ",
        ] {
            assert!(!r.speaks_of_price(t), "{t}");
        }
    }

    #[test]
    fn requests_to_cancel_or_change_an_order() {
        use crate::bot::OrderRequest;
        let r = IntentRules::default_rules();
        for q in [
            "hủy giúp em đơn DH240517",
            "huỷ đơn DH240517 cho mình",
            "huy don DH240517 giup em",
            "đơn #10023 em không lấy nữa",
            "em muốn hủy đơn DH240517 ạ",
        ] {
            assert_eq!(r.order_request(q), Some(OrderRequest::Cancel), "{q}");
        }
        for q in [
            "sao đơn DH240517 bị hủy vậy shop",
            "đơn DH240517 đã hủy thành công chưa",
            "kiểm tra đơn DH240517",
            "đơn DH240517 giao chưa",
        ] {
            assert_eq!(r.order_request(q), None, "{q}");
        }
        for q in ["hủy đơn này giúp em", "thôi em không lấy nữa, hủy giúp em"] {
            assert!(r.about_this_order(q), "{q}");
        }
        for q in ["đổi size được không", "hủy đơn thế nào", "em muốn hủy đơn"]
        {
            assert!(!r.about_this_order(q), "{q}");
        }
        for q in [
            "đơn này ship bằng gì v shop",
            "đơn đó bao giờ tới",
            "bao giờ giao vậy shop",
        ] {
            assert!(r.names_an_order(q), "{q}");
        }
        for q in [
            "đơn hàng trên 500k có freeship không",
            "hủy đơn này thế nào",
        ] {
            assert!(!r.names_an_order(q), "{q}");
        }
        for q in [
            "em muốn đổi địa chỉ giao cho đơn DH240517",
            "sửa giúp em số điện thoại người nhận đơn DH240517",
            "doi dia chi nhan hang don DH240517",
        ] {
            assert_eq!(r.order_request(q), Some(OrderRequest::Change), "{q}");
        }
    }

    #[test]
    fn a_message_of_several_questions_is_read_as_its_questions() {
        let r = IntentRules::default_rules();
        let cases: [(&str, &[&str]); 10] = [
            (
                "có ship cod không, với lại phí ship về quận 3 bao nhiêu",
                &["có ship cod không,", "phí ship về quận 3 bao nhiêu"],
            ),
            (
                "Em ở Đà Nẵng. Ship ra đó mấy ngày? Có được kiểm tra hàng không ạ?",
                &["Em ở Đà Nẵng. Ship ra đó mấy ngày?", "Có được kiểm tra hàng không ạ?"],
            ),
            (
                "shop ơi đổi size được không? còn bảo hành bao lâu vậy, cảm ơn shop",
                &["shop ơi đổi size được không?", "còn bảo hành bao lâu vậy, cảm ơn shop"],
            ),
            // One question, however long: no parts.
            ("phí ship ra Hà Nội bao nhiêu và mấy ngày thì nhận được hàng", &[]),
            (
                "Tuần trước em chuyển khoản cho một đơn rồi hủy. Giờ em vẫn chưa thấy tiền về. Mấy ngày thì được hoàn ạ?",
                &[],
            ),
            ("phí ship bao nhiêu?", &[]),
            (
                "co ship cod khong a, voi lai phi ship ve quan 3 bao nhieu",
                &["co ship cod khong a,", "phi ship ve quan 3 bao nhieu"],
            ),
            (
                "thanh toán momo được không với lại giao hàng mất mấy ngày",
                &["thanh toán momo được không", "giao hàng mất mấy ngày"],
            ),
            (
                "Em quên mật khẩu rồi, lấy lại sao ạ? Với lại không nhận được OTP thì sao?",
                &["Em quên mật khẩu rồi, lấy lại sao ạ?", "không nhận được OTP thì sao?"],
            ),
            // "ok?" is too short to be a question of its own.
            ("đổi size được không? ok?", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(r.question_parts(text), want.to_vec(), "{text}");
        }
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
