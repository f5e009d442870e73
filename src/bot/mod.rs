//! Understand and decide: intents, entities, the per-conversation dialogue state and
//! the policy that turns a customer message into replies. Knows nothing of HTTP or
//! storage: it takes the state in and gives the new state back.

pub mod entities;
pub mod intents;
pub mod replies;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::answer::{AskResult, Core};
use crate::orders::OrderBackend;
use crate::search::{Decision, Mode};
use entities::{Entities, EntityExtractor};
use intents::{Intent, IntentRules};

/// At most this many questions of one message are answered one by one.
const MAX_PARTS: usize = 3;

/// What retrieval gave a message: the answer (or choice) for it, and for a message of
/// several questions, the question the first answer is for and the other answers.
struct Retrieved {
    ask: AskResult,
    offer: Vec<usize>,
    /// The earlier question a follow-up was read with.
    context: Option<Answered>,
    question: Option<String>,
    more: Vec<(String, AskResult)>,
    /// Questions of the message that were not answered.
    unanswered: usize,
}

impl Retrieved {
    /// One question's retrieval, read alone or (`context`) after an earlier one.
    fn single(core: &Core, r: &crate::search::Retrieval, context: Option<Answered>) -> Self {
        Self {
            ask: core.to_result(r),
            offer: r.offer.clone(),
            context,
            question: None,
            more: Vec::new(),
            unanswered: 0,
        }
    }
}

/// What a question asks about that only some entries can answer (see `Bot::turn`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Guard {
    /// "còn hàng không": one product's stock.
    Stock,
    /// "giá bao nhiêu": one product's price.
    Price,
}

/// Why a conversation goes to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    CustomerRequest,
    Complaint,
    RepeatedFallback,
    LowConfidenceAfterClarify,
    VerificationFailed,
    /// Speech recognition kept failing on a call.
    SpeechUnrecognized,
    /// The customer asked to cancel an order (verified): a person cancels it.
    CancelRequest,
    /// The customer asked to change an order (address, phone, items; verified).
    ChangeRequest,
}

impl HandoffReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffReason::CustomerRequest => "customer_request",
            HandoffReason::Complaint => "complaint",
            HandoffReason::RepeatedFallback => "repeated_fallback",
            HandoffReason::LowConfidenceAfterClarify => "low_confidence_after_clarify",
            HandoffReason::VerificationFailed => "verification_failed",
            HandoffReason::SpeechUnrecognized => "speech_unrecognized",
            HandoffReason::CancelRequest => "cancel_request",
            HandoffReason::ChangeRequest => "change_request",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pending {
    #[default]
    Nothing,
    OrderCode,
    Verification {
        code: String,
    },
}

/// What a customer asks the shop to do with an order; only a person does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderRequest {
    Cancel,
    /// A new address, phone or recipient, other items.
    Change,
}

/// What the bot remembers about a conversation between turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DialogueState {
    pub pending: Pending,
    pub verify_failures: u32,
    pub fallbacks: u32,
    /// Entry ids offered in the last clarify, in the order shown.
    pub offered: Vec<String>,
    pub verified_phone: Option<String>,
    pub verified_orders: Vec<String>,
    /// The customer asked to cancel or change the order the flow is about ("hủy
    /// giúp em đơn DH240517", "đổi địa chỉ giao cho đơn DH240517"): once verified, the
    /// request goes to a person instead of a status.
    pub request: Option<OrderRequest>,
    /// The last question answered from the knowledge base, for follow-ups like "còn
    /// Đà Nẵng thì sao?".
    pub last_answered: Option<Answered>,
    /// An order whose verification the customer left for another question ("đơn
    /// DH240517 tới đâu rồi" → phone asked → "à mà có ship cod không"): a phone
    /// given next still opens it.
    pub left_order: Option<String>,
    /// The question the last menu (`offered`) was shown for: a follow-up sent while
    /// it shows ("nếu hàng sale thì sao") reads after it.
    pub menu_question: Option<String>,
    /// Orders named after the first in one message ("đơn DH240517 với DH240449 giao
    /// chưa"): answered once the first is verified, if the same phone placed them.
    pub queued_orders: Vec<String>,
}

impl DialogueState {
    /// The order flow ends with a person (verification failed or locked): nothing
    /// of it is pending or remembered as asked.
    fn hand_order_to_a_person(&mut self) {
        self.pending = Pending::Nothing;
        self.verify_failures = 0;
        self.request = None;
        self.queued_orders.clear();
    }
}

/// A question the bot answered, and the entry it answered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    /// Self-contained: for a follow-up answered in context, the question it followed.
    pub question: String,
    /// The entry the last answer gave.
    pub entry: String,
    /// The entry `question` itself was answered with (equal to `entry` unless the
    /// last answer was a follow-up's).
    #[serde(default)]
    pub question_entry: String,
    /// When the last answer was given.
    #[serde(default)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Answered {
    /// `question`, answered now with `entry`.
    fn now(question: String, entry: String) -> Self {
        Self {
            question,
            question_entry: entry.clone(),
            entry,
            at: Some(chrono::Utc::now()),
        }
    }

    /// Whether a follow-up now can still mean this question.
    fn recent(&self, minutes: u32) -> bool {
        self.at.is_some_and(|at| {
            chrono::Utc::now() - at <= chrono::Duration::minutes(i64::from(minutes))
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    pub text: String,
    pub quick_replies: Vec<String>,
}

impl Reply {
    fn text(t: impl Into<String>) -> Self {
        Self {
            text: t.into(),
            quick_replies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TurnOutcome {
    pub replies: Vec<Reply>,
    pub intent: Intent,
    pub decision: Option<AskResult>,
    pub handoff: Option<HandoffReason>,
    pub entities: Entities,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialogueConfig {
    /// Consecutive fallbacks before a hand-off.
    pub fallbacks_before_handoff: u32,
    /// Failed verifications before a hand-off.
    pub verification_attempts: u32,
    pub order_code_pattern: String,
    /// How long after an answer a follow-up ("còn Đà Nẵng thì sao?") is still read
    /// with the question before it (0: never).
    pub followup_minutes: u32,
}

impl Default for DialogueConfig {
    fn default() -> Self {
        Self {
            fallbacks_before_handoff: 2,
            verification_attempts: 3,
            order_code_pattern: entities::DEFAULT_ORDER_PATTERN.to_string(),
            followup_minutes: 30,
        }
    }
}

/// How many of the customer's latest messages [`Bot::suggestions_for`] looks up.
const SUGGESTION_MESSAGES: usize = 3;

/// A knowledge entry an agent may send as it is, or adapt.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub id: String,
    /// The entry's question (a passage's title).
    pub question: String,
    pub answer: String,
    pub score: f32,
}

impl Suggestion {
    fn of(e: &crate::knowledge::Entry, score: f32) -> Self {
        Self {
            id: e.id.clone(),
            question: e.label().to_string(),
            answer: e.answer.clone(),
            score: crate::answer::round3(score),
        }
    }
}

pub struct Bot {
    /// Swapped whole when the knowledge base changes (no restart).
    core: std::sync::RwLock<Arc<Core>>,
    rules: &'static IntentRules,
    extractor: EntityExtractor,
    orders: Arc<dyn OrderBackend>,
    config: DialogueConfig,
    /// Rewrites retrieval's choice into a natural reply (checked; optional).
    llm: Option<Arc<crate::llm::Llm>>,
    followups: crate::text::Followups,
    /// Failed verifications per order code across all conversations (in memory): a
    /// code that fails [`ORDER_LOCK_FAILURES`] times within [`ORDER_LOCK_WINDOW`] is
    /// not checked again until the window has passed, so switching conversations
    /// (or user ids) does not give unlimited guesses at a phone's last four digits.
    order_failures: std::sync::Mutex<std::collections::HashMap<String, Vec<std::time::Instant>>>,
    utc_offset: chrono::FixedOffset,
}

/// Failed verifications of one order code, over all conversations, that lock it.
pub const ORDER_LOCK_FAILURES: usize = 5;
/// How long failed verifications count towards the lock.
pub const ORDER_LOCK_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

impl Bot {
    pub fn new(
        core: Arc<Core>,
        orders: Arc<dyn OrderBackend>,
        config: DialogueConfig,
    ) -> Result<Self, regex::Error> {
        Ok(Self {
            core: std::sync::RwLock::new(core),
            rules: IntentRules::shared(),
            extractor: EntityExtractor::new(&config.order_code_pattern)?,
            orders,
            config,
            llm: None,
            followups: crate::text::Followups::default(),
            order_failures: Default::default(),
            utc_offset: chrono::FixedOffset::east_opt(7 * 3600).expect("valid offset"),
        })
    }

    /// The shop's UTC offset, for its calendar date (a delivery estimate is late from
    /// the shop's next day, not UTC's).
    pub fn with_utc_offset(mut self, offset: chrono::FixedOffset) -> Self {
        self.utc_offset = offset;
        self
    }

    fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now()
            .with_timezone(&self.utc_offset)
            .date_naive()
    }

    /// A verified customer's order: its details, with a way to a person when it is late.
    fn order_reply(&self, o: &crate::orders::Order) -> Reply {
        let today = self.today();
        Reply {
            text: replies::order_details(o, today),
            quick_replies: if replies::order_late(o, today) {
                vec![replies::QUICK_HUMAN.into()]
            } else {
                Vec::new()
            },
        }
    }

    /// What a verified customer gets for an order: its status, or for a request to
    /// cancel or change it, a person (the shop decides and does it; the bot never
    /// does) unless the order is already cancelled or delivered.
    fn order_answer(
        &self,
        state: &mut DialogueState,
        o: &crate::orders::Order,
    ) -> (Vec<Reply>, Option<HandoffReason>) {
        use crate::orders::OrderStatus::*;
        match (state.request.take(), o.status) {
            (None, _) => (vec![self.order_reply(o)], None),
            (Some(_), Cancelled) => (vec![Reply::text(replies::already_cancelled(o))], None),
            (Some(request), Delivered | Returned) => {
                (vec![Reply::text(replies::too_late(o, request))], None)
            }
            (Some(OrderRequest::Cancel), Pending | Confirmed | Packing | Shipping) => (
                vec![Reply::text(replies::cancel_requested(o))],
                Some(HandoffReason::CancelRequest),
            ),
            (Some(OrderRequest::Change), Pending | Confirmed | Packing | Shipping) => (
                vec![Reply::text(replies::change_requested(o))],
                Some(HandoffReason::ChangeRequest),
            ),
        }
    }

    /// Whether `code` has failed verification too often lately, in any conversation.
    fn order_locked(&self, code: &str) -> bool {
        let now = std::time::Instant::now();
        let failures = self.order_failures.lock().expect("order failures lock");
        failures.get(&code.to_uppercase()).is_some_and(|at| {
            at.iter()
                .filter(|t| now.duration_since(**t) < ORDER_LOCK_WINDOW)
                .count()
                >= ORDER_LOCK_FAILURES
        })
    }

    fn order_failed(&self, code: &str) {
        let now = std::time::Instant::now();
        let mut failures = self.order_failures.lock().expect("order failures lock");
        // Forget what no longer counts, for every code (the map stays small).
        failures.retain(|_, at| {
            at.retain(|t| now.duration_since(*t) < ORDER_LOCK_WINDOW);
            !at.is_empty()
        });
        failures.entry(code.to_uppercase()).or_default().push(now);
    }

    pub fn with_llm(mut self, llm: Arc<crate::llm::Llm>) -> Self {
        self.llm = Some(llm);
        self
    }

    /// The LLM's grounded reply for an answer, or `None` (the knowledge text is sent).
    async fn rewrite(&self, text: &str, ask: &AskResult) -> Option<String> {
        let llm = self.llm.as_ref()?;
        let core = self.core();
        let kb = core.retriever.knowledge();
        let entries: Vec<crate::llm::SourceEntry> = ask
            .candidates
            .iter()
            .take(3)
            .filter_map(|c| kb.get(&c.id))
            .map(|e| crate::llm::SourceEntry {
                id: e.id.clone(),
                question: e.question.clone().or(e.title.clone()),
                answer: e.answer.clone(),
            })
            .collect();
        llm.grounded_answer(text, &entries, 3)
            .await
            .ok()
            .map(|g| g.text)
    }

    /// A hand-off decided outside the dialogue (a caller pressing the key for a
    /// person, or speech that could not be recognized).
    /// An answer as the customer gets it: rewritten by the LLM when one is set up
    /// and it succeeds, else the entry's own answer.
    async fn answer_reply(&self, question: &str, ask: &AskResult) -> Reply {
        let text = match self.rewrite(question, ask).await {
            Some(t) => t,
            None => ask.answer.clone().unwrap_or_default(),
        };
        Reply::text(text)
    }

    pub fn escalation(&self, reason: HandoffReason) -> TurnOutcome {
        let (text, intent) = match reason {
            HandoffReason::SpeechUnrecognized => (replies::HANDOFF_UNHEARD, Intent::OutOfScope),
            _ => (replies::HANDOFF_REQUESTED, Intent::HumanRequest),
        };
        TurnOutcome {
            replies: vec![Reply::text(text)],
            intent,
            decision: None,
            handoff: Some(reason),
            entities: Entities::default(),
        }
    }

    pub fn core(&self) -> Arc<Core> {
        self.core.read().expect("core lock").clone()
    }

    /// Knowledge entries for an agent taking over a conversation: for the customer's
    /// latest messages, the entry retrieval would answer with, the ones it would
    /// offer as a choice, or, for a message it would hand off, its first two
    /// candidates (the agent judges; a hand-off is where a lead helps most), each
    /// message's first before any second, newest first.
    /// Messages of fewer than three words, and those the intent rules claim
    /// (greetings, requests for a person, complaints, …), are not questions to look
    /// up. CPU-heavy: call it off the async executor.
    pub fn suggestions_for(&self, said: &[String], limit: usize) -> Vec<Suggestion> {
        let core = self.core();
        let kb = core.retriever.knowledge();
        let mut per_message: Vec<Vec<(usize, f32)>> = Vec::new();
        for text in said.iter().rev().take(SUGGESTION_MESSAGES) {
            if text.split_whitespace().count() < 3 || self.rules.read(text).is_some() {
                continue;
            }
            // As the bot read it: without the small talk that opens it.
            let question = self.rules.question_part(text);
            let Ok(r) = core.retrieve(question.as_deref().unwrap_or(text), Mode::Hybrid) else {
                continue;
            };
            let picked: Vec<(usize, f32)> = match r.decision {
                Decision::Answer => r.best().map(|c| (c.index, c.score)).into_iter().collect(),
                Decision::Clarify => r
                    .offer
                    .iter()
                    .filter_map(|&i| r.candidates.iter().find(|c| c.index == i))
                    .map(|c| (c.index, c.score))
                    .collect(),
                Decision::Handoff => r
                    .candidates
                    .iter()
                    .take(2)
                    .map(|c| (c.index, c.score))
                    .collect(),
            };
            per_message.push(picked);
        }
        // Round robin (each question's best entry before any question's second), so
        // one vague message offered three choices does not crowd out the others.
        let mut out: Vec<Suggestion> = Vec::new();
        let depth = per_message.iter().map(Vec::len).max().unwrap_or(0);
        for rank in 0..depth {
            for &(i, score) in per_message.iter().filter_map(|p| p.get(rank)) {
                let e = &kb.entries[i];
                if out.len() < limit && !out.iter().any(|s| s.id == e.id) {
                    out.push(Suggestion::of(e, score));
                }
            }
        }
        out
    }

    /// An agent's search of the knowledge base: the first `limit` candidates, whatever
    /// retrieval would decide (the agent judges). CPU-heavy.
    pub fn search_knowledge(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Suggestion>, crate::search::SearchError> {
        let core = self.core();
        let kb = core.retriever.knowledge();
        let r = core.retrieve(query, Mode::Hybrid)?;
        Ok(r.candidates
            .iter()
            .take(limit)
            .map(|c| Suggestion::of(&kb.entries[c.index], c.score))
            .collect())
    }

    /// Whether a message asks something (a question mark, a question cue, or an
    /// intent beyond small talk): after a survey, such a message is a new question,
    /// not a comment on the help.
    pub fn asks_something(&self, text: &str) -> bool {
        self.rules.asks(text)
    }

    /// Whether a message answers "any comment?" with no comment: "không", "ok",
    /// "cảm ơn", "không có gì thêm".
    pub fn declines_comment(&self, text: &str) -> bool {
        self.rules.declines(text)
    }

    /// Replaces the answering core (a reloaded knowledge base); turns in flight
    /// finish on the old one.
    pub fn swap_core(&self, core: Arc<Core>) {
        *self.core.write().expect("core lock") = core;
    }

    fn entry_label(&self, id: &str) -> Option<String> {
        let core = self.core();
        Some(core.retriever.knowledge().get(id)?.label().to_string())
    }

    fn answer_entry(&self, id: &str) -> Option<Reply> {
        let core = self.core();
        let e = core.retriever.knowledge().get(id)?;
        Some(Reply::text(e.answer.clone()))
    }

    /// One turn. Retrieval runs on the blocking pool; order lookups are awaited.
    pub async fn turn(self: &Arc<Self>, state: &mut DialogueState, text: &str) -> TurnOutcome {
        let mut ents = self.extractor.extract(text);
        let names_codes = ents.order_code.is_some();
        let outcome = |replies, intent, decision, handoff, ents: &Entities| TurnOutcome {
            replies,
            intent,
            decision,
            handoff,
            entities: ents.clone(),
        };

        // A click on a clarify option (its label, or its number).
        if !state.offered.is_empty() {
            let norm = self.core().retriever.normalizer().normalize(text);
            let picked = state.offered.iter().enumerate().find(|(i, id)| {
                norm == (i + 1).to_string()
                    || self
                        .entry_label(id)
                        .is_some_and(|l| self.core().retriever.normalizer().normalize(&l) == norm)
            });
            let picked = picked.or_else(|| match menu_reply(text) {
                Some(MenuReply::Pick(LAST)) => state.offered.iter().enumerate().next_back(),
                Some(MenuReply::Pick(n)) => n
                    .checked_sub(1)
                    .and_then(|i| state.offered.get(i).map(|id| (i, id))),
                _ => None,
            });
            if let Some((_, id)) = picked {
                let id = id.clone();
                state.offered.clear();
                state.fallbacks = 0;
                if let Some(r) = self.answer_entry(&id) {
                    state.last_answered = self
                        .entry_label(&id)
                        .map(|question| Answered::now(question, id.clone()));
                    return outcome(vec![r], Intent::Faq, None, None, &ents);
                }
            }
        }

        // Not a pick, but about the menu: a number it does not have, or a bare "ok"
        // shows it again; "không" (none of these) asks the question again in other
        // words. Neither is a question retrieval failed on.
        if !state.offered.is_empty() {
            let menu = |text: &str, offered: &[String]| Reply {
                text: text.into(),
                quick_replies: offered
                    .iter()
                    .filter_map(|id| self.entry_label(id))
                    .collect(),
            };
            match menu_reply(text) {
                Some(MenuReply::Pick(_) | MenuReply::Ack) => {
                    let reply = menu(replies::CLARIFY_AGAIN, &state.offered);
                    return outcome(vec![reply], Intent::Faq, None, None, &ents);
                }
                Some(MenuReply::NoneOfThese) => {
                    state.offered.clear();
                    state.fallbacks += 1;
                    let reply = Reply {
                        text: replies::CLARIFY_NONE.into(),
                        quick_replies: vec![replies::QUICK_HUMAN.into()],
                    };
                    return outcome(vec![reply], Intent::OutOfScope, None, None, &ents);
                }
                None => {}
            }
        }

        let read = self.rules.read(text);
        let rule = read.map(|m| m.intent);
        let direct = match rule {
            Some(Intent::Complaint) => Some((replies::HANDOFF_COMPLAINT, HandoffReason::Complaint)),
            Some(Intent::HumanRequest) => {
                Some((replies::HANDOFF_REQUESTED, HandoffReason::CustomerRequest))
            }
            _ => None,
        };
        if let (Some((reply, reason)), Some(intent)) = (direct, rule) {
            state.offered.clear();
            return outcome(vec![Reply::text(reply)], intent, None, Some(reason), &ents);
        }

        // A request to cancel or change an order: with its code, or without one about
        // the order the customer has just had verified ("hủy đơn này giúp em").
        let mut request = self.rules.order_request(text);
        // In a message of several questions, only the one about the order asks for
        // something to be done with it: "đơn DH240517 giao chưa, với lại áo mặc không
        // vừa thì đổi size được không" asks a status and a question.
        // So in a message of several sentences: "em nhận đơn DH240517 rồi. áo mặc
        // không vừa thì đổi size được không" asks a question.
        if request.is_some() && ents.order_code.is_some() {
            let sentences = self.rules.sentences(text);
            if sentences.len() >= 2 {
                request = sentences
                    .iter()
                    .filter(|p| {
                        self.extractor.extract(p).order_code.is_some()
                            || self.rules.about_this_order(p)
                    })
                    .find_map(|p| self.rules.order_request(p));
            }
        }
        if request.is_some()
            && ents.order_code.is_none()
            && state.pending == Pending::Nothing
            && self.rules.about_this_order(text)
        {
            ents.order_code = state.verified_orders.last().cloned();
        }

        // An order named without its code after a status check ("đơn này ship bằng
        // gì") is that order.
        // Unless the knowledge base answers it: "đơn này đổi trả được không" asks
        // the policy.
        if ents.order_code.is_none()
            && state.pending == Pending::Nothing
            && !state.verified_orders.is_empty()
            && self.rules.names_an_order(text)
            && !self.answers_alone(text).await
        {
            ents.order_code = state.verified_orders.last().cloned();
        }

        // Order status: an explicit ask, a code, or the answer to our own question.
        let gives_proof = ents.phone.is_some() || ents.last4.is_some();
        // A short message giving a phone after the customer left a verification for
        // another question answers that verification.
        if let Some(code) = state.left_order.take() {
            let short = text.split_whitespace().count() <= 8;
            if gives_proof
                && short
                && ents.order_code.is_none()
                && state.pending == Pending::Nothing
            {
                state.pending = Pending::Verification { code };
            }
        }
        let verifying = matches!(state.pending, Pending::Verification { .. });
        if rule == Some(Intent::OrderStatus)
            || ents.order_code.is_some()
            || (state.pending == Pending::OrderCode && ents.order_code.is_some())
            || (verifying && gives_proof)
        {
            state.offered.clear();
            state.fallbacks = 0;
            if request.is_some() {
                state.request = request;
            }
            // The ticket names the order even when this message only gave the phone.
            let mut ents = ents.clone();
            if let Pending::Verification { code } = &state.pending {
                ents.order_code.get_or_insert_with(|| code.clone());
            }
            if names_codes {
                state.queued_orders = ents.more_order_codes.clone();
            }
            // The ticket names every order the customer asked about.
            ents.more_order_codes = state.queued_orders.clone();
            let asked = state.request;
            let others = self.answer_besides_order(text).await;
            let (mut out, mut handoff) = self.order_turn(state, &ents).await;
            if state.pending == Pending::Nothing && !state.queued_orders.is_empty() {
                let (more, more_handoff) = self.queued_orders(state, asked).await;
                out.extend(more);
                handoff = handoff.or(more_handoff);
            }
            if !others.is_empty() && handoff.is_none() {
                let mut answers = Vec::with_capacity(others.len());
                for (q, a) in &others {
                    answers.push(self.answer_reply(q, a).await);
                }
                // The order's answer first; but a question the bot asks back (the
                // code, the phone) comes last, where the customer's next message
                // answers it.
                if state.pending == Pending::Nothing {
                    out.extend(answers);
                } else {
                    answers.extend(out);
                    out = answers;
                }
                if let Some((q, a)) = others.last() {
                    state.last_answered = a.faq_id.clone().map(|e| Answered::now(q.clone(), e));
                }
            }
            if read.is_some_and(|m| m.waiting) {
                out.insert(0, Reply::text(replies::SORRY_FOR_THE_WAIT));
            }
            return outcome(out, Intent::OrderStatus, None, handoff, &ents);
        }
        if state.pending != Pending::Nothing && self.rules.cannot_give(text) {
            // No code or no phone to give: the order flow cannot go on; a person can
            // find the order another way.
            state.pending = Pending::Nothing;
            state.offered.clear();
            return outcome(
                vec![Reply::text(replies::CANNOT_GIVE)],
                Intent::OrderStatus,
                None,
                Some(HandoffReason::CustomerRequest),
                &ents,
            );
        }
        // An acknowledgement ("ok", "dạ", "ok em đợi chút") while the bot waits for an
        // order code or a phone keeps the step: the request is repeated. So is a phone
        // given when the bot still needs the code.
        let small_talk = matches!(
            rule,
            Some(Intent::Thanks | Intent::Greeting | Intent::Goodbye)
        );
        match &state.pending {
            Pending::OrderCode if small_talk || gives_proof => {
                let text = if gives_proof {
                    replies::ASK_ORDER_CODE_TOO
                } else {
                    replies::ASK_ORDER_CODE
                };
                return outcome(
                    vec![Reply::text(text)],
                    Intent::OrderStatus,
                    None,
                    None,
                    &ents,
                );
            }
            Pending::Verification { .. } if small_talk => {
                let reply = Reply::text(replies::ASK_VERIFICATION);
                return outcome(vec![reply], Intent::OrderStatus, None, None, &ents);
            }
            _ => {}
        }
        if state.pending != Pending::Nothing {
            // The customer moved on to something else; an order waiting for its
            // proof is kept for one more message.
            if let Pending::Verification { code } = &state.pending {
                state.left_order = Some(code.clone());
            }
            state.pending = Pending::Nothing;
            state.request = None;
        }

        if let Some(small) = rule {
            let text = match small {
                Intent::Thanks => replies::THANKS,
                Intent::Goodbye => replies::GOODBYE,
                _ => replies::GREETING,
            };
            state.fallbacks = 0;
            return outcome(vec![Reply::text(text)], small, None, None, &ents);
        }

        // Retrieval. A follow-up ("còn Đà Nẵng thì sao?") that is not answerable on its
        // own is read again with the last answered question: that question with its
        // most specific words replaced by the follow-up's, then both together. A
        // reading is taken only when it answers, with an entry other than the ones
        // that question and the last answer got (its own words must not simply win
        // again), and with an entry that holds the words the follow-up adds (else
        // "thế còn giá vàng thì sao" after a warranty question gets the warranty).
        // A question about stock ("áo này còn hàng không") or about a price ("áo sơ mi
        // linen giá bao nhiêu") is answered only by an entry that speaks of stock or of
        // prices: another one that merely shares its words ("áo này chất liệu gì") is
        // no answer, and only a person can look at one product's stock or price.
        // ("còn hàng sale thì sao" is a follow-up about sale items, not stock.)
        let follows_up = self
            .followups
            .content(self.core().retriever.normalizer(), text)
            .is_some();
        let guard = if follows_up { None } else { self.guard(text) };
        // A wish to cancel or change an order said without its code ("em muốn hủy
        // đơn": the how-to entry answers) holds for the order the customer names next.
        state.request = request;
        // A message of several questions ("có ship cod không, với lại phí ship về quận 3
        // bao nhiêu") is answered question by question when two or more of them are
        // answered on their own (a stock or price question is read whole).
        let parts: Vec<String> = match guard {
            Some(_) => Vec::new(),
            None => self
                .rules
                .question_parts(text)
                .into_iter()
                .take(MAX_PARTS)
                .map(|p| self.rules.question_part(&p).unwrap_or(p))
                .collect(),
        };
        let me = Arc::clone(self);
        // Retrieval reads the question without the small talk around it.
        let owned = self
            .rules
            .question_part(text)
            .unwrap_or_else(|| text.to_string());
        let window = self.config.followup_minutes;
        // While a menu shows, its question; else the last question answered.
        let menu_question = state
            .menu_question
            .clone()
            .filter(|_| !state.offered.is_empty())
            .map(|question| Answered {
                question,
                entry: state.offered[0].clone(),
                question_entry: state.offered[0].clone(),
                at: None,
            });
        let previous = menu_question
            .or_else(|| state.last_answered.clone().filter(|p| p.recent(window)))
            .and_then(|prev| {
                let content = self
                    .followups
                    .content(self.core().retriever.normalizer(), text)?;
                Some((prev, content))
            });
        let result = tokio::task::spawn_blocking(move || {
            let core = me.core();
            let mut answered: Vec<(String, AskResult)> = Vec::new();
            let mut open: Vec<AskResult> = Vec::new();
            for part in &parts {
                let r = core.to_result(&core.retrieve(part, Mode::Hybrid)?);
                if r.decision != Decision::Answer {
                    open.push(r);
                } else if answered.iter().all(|(_, a)| a.faq_id != r.faq_id) {
                    answered.push((part.clone(), r));
                }
            }
            // A question not answered on its own whose best entry is one the answers
            // give ("Lắp mạng cần giấy tờ gì? Có cần sổ hộ khẩu ko") is covered by it.
            let unanswered = open
                .iter()
                .filter(|r| {
                    let best = r.candidates.first().map(|c| c.id.as_str());
                    !answered.iter().any(|(_, a)| a.faq_id.as_deref() == best)
                })
                .count();
            // Its questions, when any is answered on its own: the whole message, read
            // at once, may answer none of them ("thanh toán momo được không, với lại
            // giao hàng mất mấy ngày" read whole got an entry on charges).
            if !answered.is_empty() {
                tracing::debug!(
                    answered = answered.len(),
                    unanswered,
                    "several questions read one by one"
                );
                let (question, first) = answered.remove(0);
                return Ok(Retrieved {
                    ask: first,
                    offer: Vec::new(),
                    context: None,
                    question: Some(question),
                    more: answered,
                    unanswered,
                });
            }
            let alone = core.retrieve(&owned, Mode::Hybrid)?;
            if alone.decision != Decision::Answer {
                if let Some((prev, content)) = &previous {
                    let again = [prev.entry.as_str(), prev.question_entry.as_str()];
                    // The substitution of a span as long as the follow-up's words,
                    // both questions together, then a span of the other length.
                    let mut readings = core.retriever.substitutions(
                        &prev.question,
                        content,
                        crate::text::has_diacritics(&owned),
                        &|s| me.followups.is_frame(s),
                    );
                    readings.insert(
                        readings.len().min(1),
                        format!("{} {owned}", prev.question),
                    );
                    // Words the follow-up adds that the last question did not have:
                    // an entry already given may answer again only when it speaks
                    // of them ("thay pin iphone 11" → "thế còn iphone 13 thì sao",
                    // both in one price table).
                    let asked = core.retriever.normalizer().syllables(&prev.question);
                    let new_words: Vec<String> = content
                        .iter()
                        .filter(|w| {
                            let w = crate::text::fold(w);
                            !asked.iter().any(|a| crate::text::fold(a) == w)
                        })
                        .cloned()
                        .collect();
                    // A reading that offers a choice led by such an entry is shown
                    // when nothing answers and the follow-up alone gets nothing.
                    let mut menu = None;
                    // An answer by an entry already given, kept for when no other
                    // entry answers.
                    let mut same: Option<crate::search::Retrieval> = None;
                    for reading in &readings {
                        let r = core.retrieve(reading, Mode::Hybrid)?;
                        let best = r.best();
                        let entry = best.map(|c| c.id.as_str());
                        let has = |words: &[String]| {
                            best.is_some_and(|c| core.retriever.entry_has_words(c.index, words))
                        };
                        // The entry must be about what the follow-up adds.
                        let about = has(content) && entry.is_some_and(|e| !again.contains(&e));
                        // Not when another entry asks about those words itself
                        // ("còn thẻ quà tặng thì sao" has its own entry).
                        let asked_elsewhere = || {
                            r.candidates.iter().skip(1).take(3).any(|c| {
                                core.retriever.knowledge().get(&c.id).is_some_and(|e| {
                                    let asks: Vec<String> = e
                                        .questions()
                                        .flat_map(|q| core.retriever.normalizer().syllables(q))
                                        .map(|w| crate::text::fold(&w))
                                        .collect();
                                    new_words
                                        .iter()
                                        .all(|w| asks.contains(&crate::text::fold(w)))
                                })
                            })
                        };
                        if !about
                            && same.is_none()
                            && r.decision == Decision::Answer
                            && has(content)
                            && has(&new_words)
                            && !asked_elsewhere()
                        {
                            same = Some(r.clone());
                        }
                        if about && r.decision == Decision::Answer {
                            tracing::debug!(entry = ?entry, reading, "follow-up answered in context");
                            return Ok(Retrieved::single(&core, &r, Some(prev.clone())));
                        }
                        if about && r.decision == Decision::Clarify && menu.is_none() {
                            menu = Some(r);
                        }
                    }
                    if let Some(r) = same {
                        tracing::debug!("follow-up answered in context by the same entry");
                        return Ok(Retrieved::single(&core, &r, Some(prev.clone())));
                    }
                    if let Some(r) = menu.filter(|_| alone.decision == Decision::Handoff) {
                        tracing::debug!("follow-up offered a choice in context");
                        return Ok(Retrieved::single(&core, &r, None));
                    }
                }
            }
            Ok::<_, crate::search::SearchError>(Retrieved::single(&core, &alone, None))
        })
        .await;
        let Retrieved {
            ask,
            offer,
            context,
            question,
            more,
            unanswered,
        } = match result {
            Ok(Ok(x)) => x,
            other => {
                tracing::error!(error = ?other.err(), "retrieval failed");
                return outcome(
                    vec![Reply::text(replies::FALLBACK)],
                    Intent::OutOfScope,
                    None,
                    None,
                    &ents,
                );
            }
        };
        let mut ask = ask;
        if let (Some(guard), Decision::Answer) = (guard, ask.decision) {
            if !self.fits(guard, ask.faq_id.as_deref()) {
                tracing::debug!(entry = ?ask.faq_id, ?guard, "not answered: the entry does not speak of what was asked");
                ask.decision = Decision::Handoff;
                ask.faq_id = None;
                ask.answer = None;
            }
        }
        // Still nothing that fits right after we offered choices (not a follow-up,
        // which asks about something else): named as the reason if it hands over.
        let after_clarify = !state.offered.is_empty() && !follows_up;
        state.offered.clear();
        match ask.decision {
            Decision::Answer => {
                state.fallbacks = 0;
                state.last_answered = ask.faq_id.clone().map(|entry| match context {
                    // A follow-up: the next one still reads after the first question.
                    Some(prev) => Answered {
                        question: prev.question,
                        question_entry: prev.question_entry,
                        entry,
                        at: Some(chrono::Utc::now()),
                    },
                    None => {
                        Answered::now(question.clone().unwrap_or_else(|| text.to_string()), entry)
                    }
                });
                // Of several questions answered, a follow-up reads after the last one
                // ("… với lại phí ship về quận 3 bao nhiêu" → "còn Hà Nội thì sao").
                if let Some((q, a)) = more.last() {
                    state.last_answered = a.faq_id.clone().map(|e| Answered::now(q.clone(), e));
                }
                let asked = question.as_deref().unwrap_or(text);
                let mut replies = Vec::with_capacity(1 + more.len());
                for (q, a) in
                    std::iter::once((asked, &ask)).chain(more.iter().map(|(q, a)| (q.as_str(), a)))
                {
                    replies.push(self.answer_reply(q, a).await);
                }
                if unanswered > 0 {
                    // Say so rather than drop a question without a word.
                    replies.push(Reply {
                        text: replies::SOME_UNANSWERED.into(),
                        quick_replies: vec![replies::QUICK_HUMAN.into()],
                    });
                }
                outcome(replies, Intent::Faq, Some(ask), None, &ents)
            }
            Decision::Clarify => {
                state.fallbacks = 0;
                let core = self.core();
                let kb = core.retriever.knowledge();
                state.offered = offer.iter().map(|&i| kb.entries[i].id.clone()).collect();
                state.menu_question = Some(
                    self.rules
                        .question_part(text)
                        .unwrap_or_else(|| text.to_string()),
                );
                let quick: Vec<String> = state
                    .offered
                    .iter()
                    .filter_map(|id| self.entry_label(id))
                    .collect();
                let intro = match &self.llm {
                    Some(llm) => llm.clarify(text, &quick).await,
                    None => None,
                };
                let reply = Reply {
                    text: intro.unwrap_or_else(|| replies::CLARIFY.into()),
                    quick_replies: quick,
                };
                outcome(vec![reply], Intent::Faq, Some(ask), None, &ents)
            }
            Decision::Handoff => {
                // A stock or price question the bot cannot look up is no failure to
                // understand: its reply offers a person, and it does not count toward
                // handing the conversation over. Nor does one miss right after a
                // menu hand it over at once ("ao polo nam gia bao nhieu" after a menu
                // on points is a new question): it counts like any other miss.
                if guard.is_none() {
                    state.fallbacks += 1;
                }
                if state.fallbacks >= self.config.fallbacks_before_handoff {
                    state.fallbacks = 0;
                    return outcome(
                        vec![Reply::text(replies::HANDOFF_FALLBACK)],
                        Intent::OutOfScope,
                        Some(ask),
                        Some(if after_clarify {
                            HandoffReason::LowConfidenceAfterClarify
                        } else {
                            HandoffReason::RepeatedFallback
                        }),
                        &ents,
                    );
                }
                let reply = Reply {
                    text: match guard {
                        Some(Guard::Stock) => replies::STOCK_FALLBACK,
                        Some(Guard::Price) => replies::PRICE_FALLBACK,
                        None => replies::FALLBACK,
                    }
                    .into(),
                    quick_replies: vec![replies::QUICK_HUMAN.into()],
                };
                outcome(vec![reply], Intent::OutOfScope, Some(ask), None, &ents)
            }
        }
    }

    /// Whether the knowledge base answers a message on its own (read without its
    /// small talk).
    async fn answers_alone(self: &Arc<Self>, text: &str) -> bool {
        let question = self
            .rules
            .question_part(text)
            .unwrap_or_else(|| text.to_string());
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let core = me.core();
            core.retrieve(&question, Mode::Hybrid)
                .is_ok_and(|r| r.decision == Decision::Answer)
        })
        .await
        .unwrap_or(false)
    }

    /// What a message's question asks about (`Guard`), if only some entries can
    /// answer it.
    fn guard(&self, text: &str) -> Option<Guard> {
        if self.rules.asks_stock(text) {
            Some(Guard::Stock)
        } else if self.rules.asks_price(text) {
            Some(Guard::Price)
        } else {
            None
        }
    }

    /// Whether an entry speaks of what a guarded question asks about.
    fn fits(&self, guard: Guard, entry: Option<&str>) -> bool {
        let core = self.core();
        entry
            .and_then(|id| core.retriever.knowledge().get(id))
            .is_some_and(|e| {
                let words = e.questions().chain(e.tags.iter().map(String::as_str));
                let text = words
                    .chain([e.answer.as_str()])
                    .collect::<Vec<_>>()
                    .join(". ");
                match guard {
                    Guard::Stock => self.rules.asks_stock(&text),
                    Guard::Price => self.rules.speaks_of_price(&text),
                }
            })
    }

    /// The answers to the other questions of a message about an order ("đơn DH240517
    /// giao chưa shop? với lại có xuất hóa đơn công ty không"): each question that
    /// does not name the order, give a phone, or ask about an order, and that the
    /// knowledge base answers on its own; the rest of the message is the order
    /// flow's (`IntentRules::questions_besides`: "em đặt đơn DH240517 hôm qua. bao
    /// giờ giao ạ" is all the order's).
    async fn answer_besides_order(self: &Arc<Self>, text: &str) -> Vec<(String, AskResult)> {
        // A sentence naming the order is the order's, unless it also asks something
        // that is no order lookup ("đơn DH240449 bị thiếu hàng thì làm sao"): that
        // is read without the code.
        let questions: Vec<String> = self
            .rules
            .questions_besides(text, |q, asks| {
                let e = self.extractor.extract(q);
                let request = self.rules.order_request(q).is_some();
                e.phone.is_some()
                    || e.last4.is_some()
                    || self.rules.says(Intent::OrderStatus, q)
                    || request && self.rules.about_this_order(q)
                    || e.order_code.is_some() && (request || self.rules.cannot_give(q) || !asks)
            })
            .into_iter()
            .take(MAX_PARTS)
            .map(|q| self.extractor.without_order_codes(&q))
            .map(|q| self.rules.question_part(&q).unwrap_or(q))
            .collect();
        if questions.is_empty() {
            return Vec::new();
        }
        let me = Arc::clone(self);
        let found = tokio::task::spawn_blocking(move || {
            let core = me.core();
            let mut answered: Vec<(String, AskResult)> = Vec::new();
            for q in questions {
                let r = core.to_result(&core.retrieve(&q, Mode::Hybrid)?);
                let fits = me.guard(&q).is_none_or(|g| me.fits(g, r.faq_id.as_deref()));
                if r.decision == Decision::Answer
                    && fits
                    && answered.iter().all(|(_, a)| a.faq_id != r.faq_id)
                {
                    answered.push((q, r));
                }
            }
            Ok::<_, crate::search::SearchError>(answered)
        })
        .await;
        match found {
            Ok(Ok(answered)) => answered,
            other => {
                tracing::error!(error = ?other.err(), "retrieval failed");
                Vec::new()
            }
        }
    }

    async fn order_turn(
        &self,
        state: &mut DialogueState,
        ents: &Entities,
    ) -> (Vec<Reply>, Option<HandoffReason>) {
        let code = ents.order_code.clone().or(match &state.pending {
            Pending::Verification { code } => Some(code.clone()),
            _ => None,
        });
        // Without a code, the order verified last in this conversation ("đơn của em
        // khi nào giao" right after its status).
        let code = code.or_else(|| state.verified_orders.last().cloned());
        let Some(code) = code else {
            state.pending = Pending::OrderCode;
            return (vec![Reply::text(replies::ASK_ORDER_CODE)], None);
        };
        let proof = ents.phone.is_some() || ents.last4.is_some();
        let known =
            state.verified_orders.contains(&code.to_uppercase()) || state.verified_phone.is_some();
        if !proof && !known {
            // Ask before looking anything up: nothing about the order leaks.
            state.pending = Pending::Verification { code };
            return (vec![Reply::text(replies::ASK_VERIFICATION)], None);
        }
        let order = match self.orders.find(&code).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "order lookup failed");
                state.pending = Pending::Verification { code };
                let reply = Reply {
                    text: replies::ORDER_BACKEND_DOWN.into(),
                    quick_replies: vec![replies::QUICK_HUMAN.into()],
                };
                return (vec![reply], None);
            }
        };
        let already = order.as_ref().is_some_and(|o| {
            state.verified_orders.contains(&o.code.to_uppercase())
                || o.phone_matches(state.verified_phone.as_deref(), None)
        });
        if already {
            state.pending = Pending::Nothing;
            let o = order.expect("checked");
            return self.order_answer(state, &o);
        }
        if !proof {
            state.pending = Pending::Verification { code };
            return (vec![Reply::text(replies::ASK_VERIFICATION)], None);
        }
        if self.order_locked(&code) {
            // Not even a right answer is checked now; unknown codes lock the same way,
            // so the lock does not tell whether a code exists.
            state.hand_order_to_a_person();
            return (
                vec![Reply::text(replies::VERIFICATION_LOCKED)],
                Some(HandoffReason::VerificationFailed),
            );
        }
        // Never reveal whether the code exists: an unknown code fails like a wrong phone.
        match order.filter(|o| o.phone_matches(ents.phone.as_deref(), ents.last4.as_deref())) {
            Some(o) => {
                state.pending = Pending::Nothing;
                state.verify_failures = 0;
                state.verified_orders.push(o.code.to_uppercase());
                state.verified_phone = o.phone.as_deref().and_then(entities::normalize_phone);
                self.order_answer(state, &o)
            }
            None => {
                self.order_failed(&code);
                state.verify_failures += 1;
                if state.verify_failures >= self.config.verification_attempts {
                    state.hand_order_to_a_person();
                    return (
                        vec![Reply::text(replies::VERIFICATION_FAILED)],
                        Some(HandoffReason::VerificationFailed),
                    );
                }
                state.pending = Pending::Verification { code };
                (vec![Reply::text(replies::VERIFICATION_MISMATCH)], None)
            }
        }
    }

    /// The other orders the message named, once the first is verified: each placed
    /// with the verified phone gets its answer (with the same request, if any); any
    /// other is not looked into and counts as a failed verification of its code, so
    /// codes cannot be tried by adding them to a verified one.
    async fn queued_orders(
        &self,
        state: &mut DialogueState,
        request: Option<OrderRequest>,
    ) -> (Vec<Reply>, Option<HandoffReason>) {
        let mut out = Vec::new();
        let mut handoff = None;
        for code in std::mem::take(&mut state.queued_orders) {
            let order = match self.orders.find(&code).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %e, "order lookup failed");
                    out.push(Reply::text(replies::other_order_unreachable(&code)));
                    continue;
                }
            };
            let ours = order.filter(|o| {
                !self.order_locked(&code)
                    && (state.verified_orders.contains(&o.code.to_uppercase())
                        || o.phone_matches(state.verified_phone.as_deref(), None))
            });
            match ours {
                Some(o) => {
                    if !state.verified_orders.contains(&o.code.to_uppercase()) {
                        state.verified_orders.push(o.code.to_uppercase());
                    }
                    state.request = request;
                    let (replies, h) = self.order_answer(state, &o);
                    out.extend(replies);
                    handoff = handoff.or(h);
                }
                None => {
                    self.order_failed(&code);
                    out.push(Reply::text(replies::other_order_unverified(&code)));
                }
            }
        }
        (out, handoff)
    }
}

/// Context-free intent of one message: rules, then an order code, then the
/// retrieval decision (for `cskh ask --json` and `cskh eval --intents`).
pub struct MessageClassifier {
    rules: &'static IntentRules,
    entities: EntityExtractor,
}

impl Default for MessageClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageClassifier {
    pub fn new() -> Self {
        Self {
            rules: IntentRules::shared(),
            entities: EntityExtractor::new(entities::DEFAULT_ORDER_PATTERN)
                .expect("default pattern is valid"),
        }
    }

    /// Whether a message also says goodbye ("vậy thôi, cảm ơn em nhé, chào em").
    pub fn says_goodbye(&self, text: &str) -> bool {
        self.rules.says(Intent::Goodbye, text)
    }

    pub fn intent_of(&self, text: &str, retrieval: &AskResult) -> Intent {
        if let Some(i) = self.rules.classify(text) {
            return i;
        }
        if self.entities.extract(text).order_code.is_some() {
            return Intent::OrderStatus;
        }
        if retrieval.decision == Decision::Handoff {
            Intent::OutOfScope
        } else {
            Intent::Faq
        }
    }
}

/// A satisfaction rating on the 1–5 scale the survey gives: "5", "5 sao", "4/5",
/// "⭐⭐⭐⭐⭐", or in words ("rất hài lòng" 5, "hài lòng" 4, "bình thường" 3,
/// "chưa hài lòng" 1, as the survey defines its ends).
pub fn csat_rating(text: &str) -> Option<i64> {
    let t = text.trim().to_lowercase();
    let stars = t.chars().filter(|&c| c == '⭐' || c == '★').count();
    if stars > 0
        && t.chars()
            .all(|c| c == '⭐' || c == '★' || c.is_whitespace())
    {
        return (stars <= 5).then_some(stars as i64);
    }
    let folded = crate::text::fold(&t);
    let words: Vec<&str> = folded
        .split(|c: char| !c.is_alphanumeric() && c != '/')
        .filter(|w| !w.is_empty())
        .collect();
    let meant = |w: &&str| {
        !matches!(
            *w,
            "a" | "nhe" | "nha" | "em" | "shop" | "ad" | "lam" | "cho" | "minh" | "toi" | "nhieu"
        )
    };
    let said: Vec<&str> = words.iter().copied().filter(meant).collect();
    let in_words = match said.join(" ").as_str() {
        "rat hai long" | "qua hai long" | "tuyet voi" | "rat tot" | "xuat sac" => Some(5),
        "hai long" | "tot" | "on" | "kha tot" => Some(4),
        "binh thuong" | "tam duoc" | "tam" => Some(3),
        "chua hai long" | "khong hai long" | "te" | "qua te" | "rat te" => Some(1),
        _ => None,
    };
    if in_words.is_some() {
        return in_words;
    }
    // A number on the scale that opens a short message or counts stars or points:
    // "5", "5 sao nhé shop, cảm ơn", "4/5", "cho 4 điểm".
    let number = |w: &str| -> Option<i64> {
        let w = w.strip_suffix("/5").unwrap_or(w);
        let w = w.strip_suffix('d').unwrap_or(w);
        w.parse::<i64>().ok().filter(|n| (1..=5).contains(n))
    };
    if said.len() > 8 {
        return None;
    }
    said.iter().enumerate().find_map(|(i, w)| {
        let counted = matches!(said.get(i + 1), Some(&("sao" | "diem" | "d")));
        (i == 0 || counted).then(|| number(w)).flatten()
    })
}

/// An answer to the 0–10 recommendation survey: "8", "8 điểm", "8/10", "điểm 8",
/// "tám", "chắc tầm 7 điểm thôi". A number outside 0–10 is returned as said, for the
/// caller to ask again; `None` when the message gives no score.
pub fn nps_score(text: &str) -> Option<i64> {
    const WORDS: [&str; 11] = [
        "không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín", "mười",
    ];
    // Number words compare with their marks ("tầm" is no "tám"), unless the
    // message is typed without any.
    let lower = crate::text::nfc(&text.trim().to_lowercase());
    let plain = !crate::text::has_diacritics(&lower);
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '/')
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() || words.len() > 8 {
        return None;
    }
    let number = |w: &str| -> Option<i64> {
        let w = w.strip_suffix("/10").unwrap_or(w);
        w.parse::<i64>().ok()
    };
    // Only a score and words around one ("chắc tầm 7 điểm thôi ạ"): "8 ngày rồi chưa
    // nhận được hàng" or "đơn 10088 giao chưa" is no score.
    const AROUND: [&str; 24] = [
        "diem", "d", "cho", "chac", "tam", "khoang", "thoi", "nhe", "nha", "a", "shop", "em",
        "minh", "toi", "la", "thi", "chi", "anh", "ad", "duoc", "cham", "da", "vang", "ok",
    ];
    let around = |w: &str| {
        let f = crate::text::fold(w);
        AROUND.contains(&f.as_str()) || number(w).is_some()
    };
    let spelled = |w: &str| {
        WORDS
            .iter()
            .any(|x| *x == w || plain && crate::text::fold(x) == w)
    };
    if !words.iter().all(|w| around(w) || spelled(w)) {
        return None;
    }
    // A number anywhere in a short message, or one in words alone or beside "điểm".
    if let Some(n) = words.iter().find_map(|w| number(w)) {
        return Some(n);
    }
    let point = |w: &str| w == "điểm" || w == "diem";
    let points = |i: usize| {
        words.len() == 1
            || words.get(i + 1).is_some_and(|w| point(w))
            || i > 0 && point(words[i - 1])
    };
    words.iter().enumerate().find_map(|(i, w)| {
        let n = WORDS
            .iter()
            .position(|x| x == w || plain && crate::text::fold(x) == *w)?;
        points(i).then_some(n as i64)
    })
}

/// What a customer's message says about a menu of choices they were offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MenuReply {
    /// The n-th choice (1-based): "2", "số 3", "câu 1", "cái đầu tiên", "thứ hai".
    Pick(usize),
    /// "ok", "dạ", "vâng": neither a choice nor a question.
    Ack,
    /// "không", "không phải": none of the choices.
    NoneOfThese,
}

/// "câu cuối": the menu's last choice.
const LAST: usize = usize::MAX;

fn menu_reply(text: &str) -> Option<MenuReply> {
    let folded = crate::text::fold(&text.to_lowercase());
    let words: Vec<&str> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .filter(|w| {
            !matches!(
                *w,
                "a" | "nhe" | "nha" | "oi" | "em" | "shop" | "ad" | "voi" | "di" | "ca" | "dung"
            )
        })
        .collect();
    let mut rest: &[&str] = &words;
    if let [first, tail @ ..] = rest {
        if matches!(*first, "so" | "cau" | "cai" | "y" | "muc" | "chon" | "lay") {
            rest = tail;
        }
    }
    if let [first, tail @ ..] = rest {
        if matches!(*first, "so" | "cau" | "cai" | "y" | "thu") && !tail.is_empty() {
            rest = tail;
        }
    }
    let n = match rest {
        [n] if n.chars().all(|c| c.is_ascii_digit()) && n.len() <= 2 => n.parse().ok(),
        ["dau"] | ["dau", "tien"] | ["nhat"] | ["mot"] => Some(1),
        ["cuoi"] | ["cuoi", "cung"] => Some(LAST),
        ["hai"] => Some(2),
        ["ba"] => Some(3),
        ["bon"] | ["tu"] => Some(4),
        ["nam"] => Some(5),
        _ => None,
    };
    if let Some(n) = n {
        return Some(MenuReply::Pick(n));
    }
    match words.join(" ").as_str() {
        "ok" | "oke" | "okie" | "da" | "vang" | "da vang" | "u" | "uh" | "um" | "uk" | "vay a" => {
            Some(MenuReply::Ack)
        }
        "khong" | "ko" | "k" | "khong phai" | "ko phai" | "khong co" | "chua"
        | "khong co cau nao" | "khong phai cau nao" | "khong cau nao" | "ko co cau nao" => {
            Some(MenuReply::NoneOfThese)
        }
        _ => None,
    }
}

/// The verified phone a turn established, for the customer profile.
pub fn verified_phone(before: &DialogueState, after: &DialogueState) -> Option<String> {
    (after.verified_phone != before.verified_phone)
        .then(|| after.verified_phone.clone())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::{menu_reply, nps_score, MenuReply::*};

    #[test]
    fn replies_to_a_menu() {
        let cases = [
            ("2", Some(Pick(2))),
            ("số 3", Some(Pick(3))),
            ("so 3 a", Some(Pick(3))),
            ("câu 1 nhé", Some(Pick(1))),
            ("cái đầu tiên", Some(Pick(1))),
            ("câu thứ hai", Some(Pick(2))),
            ("thứ ba", Some(Pick(3))),
            ("chọn số 2", Some(Pick(2))),
            ("4", Some(Pick(4))),
            ("0", Some(Pick(0))),
            ("ok", Some(Ack)),
            ("dạ", Some(Ack)),
            ("dạ vâng ạ", Some(Ack)),
            ("không", Some(NoneOfThese)),
            ("ko phải", Some(NoneOfThese)),
            ("không phải câu nào", Some(NoneOfThese)),
            ("không phải câu nào cả", Some(NoneOfThese)),
            ("không có câu nào đúng", Some(NoneOfThese)),
            ("số 1 đi", Some(Pick(1))),
            ("câu cuối", Some(Pick(super::LAST))),
            ("uk", Some(Ack)),
            ("phí ship 2 ngày", None),
            ("bảo hành điện thoại", None),
            ("không có cod à", None),
        ];
        for (text, want) in cases {
            assert_eq!(menu_reply(text), want, "{text}");
        }
    }

    #[test]
    fn recommendation_scores() {
        let cases = [
            ("8", Some(8)),
            ("8 điểm", Some(8)),
            ("8/10", Some(8)),
            ("điểm 8", Some(8)),
            ("tám", Some(8)),
            ("tam diem", Some(8)),
            ("chắc tầm 7 điểm thôi", Some(7)),
            ("chắc tầm điểm sáu thôi", Some(6)),
            ("10 điểm nhé shop", Some(10)),
            ("không điểm", Some(0)),
            ("chắc 11 điểm", Some(11)),
            ("ship hơi chậm", None),
            ("8 ngày rồi chưa nhận được hàng", None),
            ("đơn 10088 giao chưa", None),
            ("cho em hỏi phí ship bao nhiêu", None),
        ];
        for (text, want) in cases {
            assert_eq!(nps_score(text), want, "{text}");
        }
    }

    #[test]
    fn satisfaction_ratings() {
        use super::csat_rating;
        let cases = [
            ("5", Some(5)),
            ("5 sao", Some(5)),
            ("4 điểm ạ", Some(4)),
            ("4/5", Some(4)),
            ("⭐⭐⭐", Some(3)),
            ("rất hài lòng", Some(5)),
            ("hài lòng ạ", Some(4)),
            ("chưa hài lòng", Some(1)),
            ("10", None),
            ("0", None),
            ("5 sao nhé shop, cảm ơn", Some(5)),
            ("tệ", Some(1)),
            ("chưa hài lòng lắm", Some(1)),
            ("đơn DH240517 giao 3 ngày", None),
            ("phí ship ra hà nội bao nhiêu", None),
        ];
        for (text, want) in cases {
            assert_eq!(csat_rating(text), want, "{text}");
        }
    }
}
