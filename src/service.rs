//! The conversation service: one inbound message in, stored, answered by the bot,
//! replies stored, response out. Transport-agnostic: HTTP handlers and channel
//! adapters call [`ConversationService::handle`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use thiserror::Error;
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::answer::AskResult;
use crate::bot::entities::mask_phone;
use crate::bot::{verified_phone, Bot, DialogueState};
use crate::store::{
    CustomerMessage, Inbound, NewTicket, Outbound, Store, StoreError, StoredMessage, TicketRow,
    TurnRecord,
};

/// Longest customer message accepted through our own API and widget, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Longest message accepted from a messaging platform. Its limits are not ours to
/// enforce: a signed message refused here would be lost (the platform does not
/// resend it), so only an absurd size is refused.
pub const MAX_PLATFORM_TEXT_CHARS: usize = 20_000;

pub use crate::channels::Channel;

#[derive(Debug, Clone)]
pub struct IncomingMessage {
    pub channel: Channel,
    pub user_id: String,
    pub message_id: String,
    pub text: String,
    /// The page / OA written to (platform channels).
    pub account: Option<String>,
    /// An image, sticker, file or location (described in `text`).
    pub attachment: bool,
    /// Hand off without asking the bot (a key pressed for a person, speech that
    /// could not be recognized).
    pub escalate: Option<crate::bot::HandoffReason>,
}

impl IncomingMessage {
    /// A plain text message on a direct channel.
    pub fn text(channel: Channel, user_id: String, message_id: String, text: String) -> Self {
        Self {
            channel,
            user_id,
            message_id,
            text,
            account: None,
            attachment: false,
            escalate: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("retrieval failed: {0}")]
    Retrieval(String),
    /// The sender already sent another text under this message id.
    #[error("message_id was already used for a different text")]
    DuplicateMessageId,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ReplyOut {
    pub id: String,
    pub text: String,
    pub quick_replies: Vec<String>,
}

/// The response of `POST /api/v1/messages` (stored, so a retry gets it verbatim).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TurnResponse {
    pub conversation_id: String,
    pub replies: Vec<ReplyOut>,
    pub intent: String,
    pub decision: Option<AskResult>,
    pub handoff: bool,
    /// The ticket this turn opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_code: Option<String>,
}

/// A stored message pushed to live listeners (the web widget's event stream).
#[derive(Debug, Clone)]
pub struct LiveMessage {
    pub conversation_id: String,
    pub message: StoredMessage,
}

/// What a turn produced, whoever produced it (the bot, or silence during a hand-off).
struct Finished {
    ticket: Option<NewTicket>,
    /// The conversation's status after the turn.
    status: &'static str,
    replies: Vec<crate::bot::Reply>,
    intent: &'static str,
    decision: Option<AskResult>,
    handoff_reason: Option<&'static str>,
    handoff: bool,
    state: String,
}

pub struct ConversationService {
    store: Store,
    bot: Arc<Bot>,
    triage: crate::handoff::Triage,
    hours: crate::handoff::BusinessHours,
    /// Turns of one channel identity run one at a time.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    live: broadcast::Sender<LiveMessage>,
    /// Conversation ids whose hand-off queue entry changed (for the agent console).
    queue: broadcast::Sender<String>,
    /// Platform adapters (Messenger, Zalo) and the outbox worker's wake-up.
    adapters: crate::channels::Adapters,
    outbox: Arc<tokio::sync::Notify>,
    /// Writes hand-off summaries (optional).
    llm: Option<Arc<crate::llm::Llm>>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Rebuilds the answering core when the knowledge changes at run time.
    reloader: Option<Arc<crate::reload::Reloader>>,
}

/// What came of asking a customer the NPS question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpsAsked {
    Sent,
    NoConversation,
    /// The conversation is with an agent or asked for a rating: nothing was sent.
    Busy,
}

impl ConversationService {
    pub fn new(store: Store, bot: Arc<Bot>, hours: crate::handoff::BusinessHours) -> Self {
        let (live, _) = broadcast::channel(1024);
        let (queue, _) = broadcast::channel(256);
        Self {
            store,
            bot,
            triage: crate::handoff::Triage::default_rules(),
            hours,
            locks: Mutex::new(HashMap::new()),
            live,
            queue,
            adapters: Default::default(),
            outbox: Default::default(),
            llm: None,
            metrics: Default::default(),
            reloader: None,
        }
    }

    pub fn with_reloader(mut self, reloader: Arc<crate::reload::Reloader>) -> Self {
        self.reloader = Some(reloader);
        self
    }

    pub fn reloader(&self) -> Option<&Arc<crate::reload::Reloader>> {
        self.reloader.as_ref()
    }

    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn llm(&self) -> Option<&Arc<crate::llm::Llm>> {
        self.llm.as_ref()
    }

    pub fn with_llm(mut self, llm: Arc<crate::llm::Llm>) -> Self {
        self.llm = Some(llm);
        self
    }

    /// Asks the LLM for a 2–3 sentence summary of a new ticket, after the customer
    /// has been answered; the extractive summary stays if it fails.
    fn summarize_later(&self, conversation_id: &str, code: String, reason: String) {
        let Some(llm) = self.llm.clone() else {
            return;
        };
        let store = self.store.clone();
        let queue = self.queue.clone();
        let conversation_id = conversation_id.to_string();
        tokio::spawn(async move {
            let Ok(messages) = store.messages(&conversation_id).await else {
                return;
            };
            let transcript: Vec<(String, String)> = messages
                .into_iter()
                .map(|m| {
                    let who = match (m.direction.as_str(), m.author.as_str()) {
                        ("in", _) => "Khách",
                        (_, "agent") => "Nhân viên",
                        _ => "Bot",
                    };
                    (who.to_string(), m.text)
                })
                .collect();
            let reason = crate::handoff::reason_vietnamese(&reason);
            if let Some(summary) = llm.summary(reason, &transcript).await {
                match store.set_ai_summary(&code, &summary).await {
                    Ok(()) => {
                        let _ = queue.send(conversation_id);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot store the hand-off summary"),
                }
            }
        });
    }

    /// Adds the platform adapters; `outbox` wakes the worker that delivers through them.
    pub fn with_channels(
        mut self,
        adapters: crate::channels::Adapters,
        outbox: Arc<tokio::sync::Notify>,
    ) -> Self {
        self.adapters = adapters;
        self.outbox = outbox;
        self
    }

    pub fn adapter(&self, channel: Channel) -> Option<&Arc<dyn crate::channels::ChannelAdapter>> {
        self.adapters.get(channel)
    }

    /// The sender behind [`Self::subscribe_queue`] (the outbox reports failures there).
    pub fn queue_sender(&self) -> broadcast::Sender<String> {
        self.queue.clone()
    }

    /// Wakes the outbox worker after messages for a platform were stored.
    fn deliver_now(&self, channel: &str) {
        if Channel::parse(channel).is_some_and(Channel::pushes) {
            self.outbox.notify_one();
        }
    }

    /// Sends the NPS question to a channel identity's latest conversation, if it is
    /// with the bot (not with an agent, nor asked for a rating).
    pub async fn ask_nps(&self, channel: Channel, user_id: &str) -> Result<NpsAsked, ServiceError> {
        let Some(conv) = self
            .store
            .latest_conversation(channel.as_str(), user_id)
            .await?
        else {
            return Ok(NpsAsked::NoConversation);
        };
        let quick: Vec<String> = (0..=10).map(|i| i.to_string()).collect();
        let text = crate::bot::replies::NPS_QUESTION;
        let Some(id) = self
            .store
            .ask_nps(&conv.id, channel.as_str(), text, &quick, channel.pushes())
            .await?
        else {
            return Ok(NpsAsked::Busy);
        };
        self.deliver_now(channel.as_str());
        self.push_live(&conv.id, id, "bot", text, &quick);
        Ok(NpsAsked::Sent)
    }

    /// Webhook intake: stores the message (deduplicated on the platform's id) and
    /// says whether it is new. The turn runs later through [`Self::handle`], which
    /// finds the stored message and answers it once.
    pub async fn receive(&self, msg: &IncomingMessage) -> Result<bool, ServiceError> {
        let (text, _turn, conv) = self.intake(msg).await?;
        Ok(matches!(
            self.store
                .insert_inbound(
                    &conv.id,
                    msg.channel.as_str(),
                    &msg.user_id,
                    &msg.message_id,
                    &text
                )
                .await?,
            Inbound::New(_)
        ))
    }

    /// Answers platform messages that were stored but not answered before the last
    /// shutdown (a webhook acknowledged, then the process stopped).
    pub async fn recover(&self) -> Result<usize, ServiceError> {
        let pending = self
            .store
            .unanswered_inbound(&["messenger", "zalo"])
            .await?;
        let n = pending.len();
        for (channel, user_id, account, message_id, text) in pending {
            let Some(channel) = Channel::parse(&channel) else {
                continue;
            };
            let msg = IncomingMessage {
                channel,
                user_id,
                message_id,
                attachment: text.starts_with('['),
                text,
                account,
                escalate: None,
            };
            if let Err(e) = self.handle(msg).await {
                tracing::warn!(error = %e, "cannot answer a recovered message");
            }
        }
        Ok(n)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn bot(&self) -> &Arc<Bot> {
        &self.bot
    }

    /// The business's UTC offset (days in reports are local days).
    pub fn utc_offset(&self) -> chrono::FixedOffset {
        self.hours.offset()
    }

    /// Whether the team is at work now (voice transfers need someone to answer).
    pub fn is_open_now(&self) -> bool {
        self.hours.is_open(chrono::Utc::now())
    }

    /// Hand-off queue changes: a new ticket, a customer message on a handed-off
    /// conversation, an agent action.
    pub fn subscribe_queue(&self) -> broadcast::Receiver<String> {
        self.queue.subscribe()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveMessage> {
        self.live.subscribe()
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().expect("lock map");
        map.entry(key.to_string()).or_default().clone()
    }

    async fn open_ticket(
        &self,
        conv: &crate::store::Conversation,
        text: &str,
        intent: &str,
        reason: &str,
        outcome: &crate::bot::TurnOutcome,
        state: &DialogueState,
    ) -> Result<NewTicket, ServiceError> {
        // The request is what the customer said since their last ticket ended, without
        // their feedback on that one (a rating and its comment are not a new request).
        let mut said = self.store.request_messages(&conv.id).await?;
        if said.last().map(String::as_str) != Some(text) {
            said.push(text.to_string());
        }
        let seen = self.store.request_intents(&conv.id).await?;
        let mut intents: Vec<&str> = seen.iter().map(String::as_str).collect();
        intents.push(intent);
        let a = self.triage.assess(&said, &intents, reason);
        let now = chrono::Utc::now();
        let due = self.hours.due(now, a.sla_hours);
        // The order this conversation verified is the one the request is about, even
        // when the hand-off message itself names none.
        let e = &outcome.entities;
        let order_code = e
            .order_code
            .clone()
            .or_else(|| state.verified_orders.last().cloned());
        let mut context = serde_json::json!({
            "entities": {
                "order_code": order_code,
                "more_order_codes": e.more_order_codes,
                "verified_orders": state.verified_orders,
                "email": e.email,
                "phone_given": e.phone.is_some() || e.last4.is_some() || state.verified_phone.is_some(),
            },
            "candidates": outcome.decision.as_ref().map(|d| &d.candidates),
        });
        // A caller after hours is told a person will call back: the ticket says so.
        if conv.channel == Channel::Voice.as_str() && !self.hours.is_open(now) {
            context["callback"] =
                serde_json::json!({"number": conv.channel_user_id, "why": CALLBACK_AFTER_HOURS});
        }
        Ok(NewTicket {
            code: crate::handoff::ticket_code(&uuid::Uuid::now_v7()),
            customer_id: conv.customer_id.clone(),
            priority: a.priority,
            department: a.department,
            reason: reason.to_string(),
            intent: intent.to_string(),
            summary: self.triage.summary(reason, &said),
            context: context.to_string(),
            sla_due_at: due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }

    pub fn validate(msg: &IncomingMessage) -> Result<(), ServiceError> {
        let invalid = |field, message: &str| {
            Err(ServiceError::Invalid {
                field,
                message: message.to_string(),
            })
        };
        if msg.user_id.trim().is_empty() || msg.user_id.len() > 200 {
            return invalid("user_id", "must be 1-200 characters");
        }
        if msg.message_id.trim().is_empty() || msg.message_id.len() > 200 {
            return invalid("message_id", "must be 1-200 characters");
        }
        if !has_visible_text(&msg.text) {
            return invalid(
                "text",
                "must not be empty or made only of invisible or control characters",
            );
        }
        let max = if msg.channel.pushes() {
            MAX_PLATFORM_TEXT_CHARS
        } else {
            MAX_TEXT_CHARS
        };
        // Counted as stored: composed (NFC), so decomposed accents count once.
        if crate::text::nfc(&msg.text).chars().count() > max {
            return invalid("text", &format!("is longer than {max} characters"));
        }
        Ok(())
    }

    /// Validates, takes the identity's turn lock and finds its open conversation:
    /// (normalized text, the held lock, conversation).
    async fn intake(
        &self,
        msg: &IncomingMessage,
    ) -> Result<
        (
            String,
            tokio::sync::OwnedMutexGuard<()>,
            crate::store::Conversation,
        ),
        ServiceError,
    > {
        Self::validate(msg)?;
        let text = crate::text::nfc(msg.text.trim());
        let key = format!("{}:{}", msg.channel.as_str(), msg.user_id);
        let guard = self.lock_for(&key).lock_owned().await;
        let conv = self
            .store
            .resolve_conversation(msg.channel.as_str(), &msg.user_id, msg.account.as_deref())
            .await?;
        Ok((text, guard, conv))
    }

    pub async fn handle(&self, msg: IncomingMessage) -> Result<TurnResponse, ServiceError> {
        let (text, _turn, conv) = self.intake(&msg).await?;
        let span =
            tracing::info_span!("turn", conversation_id = %conv.id, channel = msg.channel.as_str());
        let channel = msg.channel.as_str();
        let t0 = std::time::Instant::now();
        let r = self.turn(conv, msg, text).instrument(span).await;
        self.metrics
            .turn_duration
            .with_label_values(&[channel])
            .observe(t0.elapsed().as_secs_f64());
        r
    }

    /// Records what the caller heard for a turn's bot messages: the whole spoken reply
    /// on the first, and "" on the others (their words were read out with it).
    pub async fn record_spoken(
        &self,
        replies: &[ReplyOut],
        spoken: &str,
    ) -> Result<(), ServiceError> {
        for (i, r) in replies.iter().enumerate() {
            let text = if i == 0 { spoken } else { "" };
            self.store.set_spoken(&r.id, text).await?;
        }
        Ok(())
    }

    async fn turn(
        &self,
        mut conv: crate::store::Conversation,
        msg: IncomingMessage,
        text: String,
    ) -> Result<TurnResponse, ServiceError> {
        let message_id = match self
            .store
            .insert_inbound(
                &conv.id,
                msg.channel.as_str(),
                &msg.user_id,
                &msg.message_id,
                &text,
            )
            .await?
        {
            Inbound::Duplicate { id, text: stored } => {
                if stored != text {
                    // A retry repeats the message; another text under the same id is
                    // a client bug that would silently lose the new question.
                    return Err(ServiceError::DuplicateMessageId);
                }
                if let Some(stored) = self.store.turn_response(&id).await? {
                    tracing::info!("duplicate delivery answered from the stored turn");
                    return Ok(serde_json::from_str(&stored).expect("stored response is valid"));
                }
                // Stored earlier but never answered (e.g. a crash): answer it now.
                id
            }
            Inbound::New(id) => id,
        };
        tracing::debug!(text = %text, "inbound");

        let mut state: DialogueState = serde_json::from_str(&conv.state).unwrap_or_default();
        if state.verified_phone.is_none() {
            // Verified earlier, maybe on another channel: not asked again.
            state.verified_phone = self.store.customer_phone(&conv.customer_id).await?;
        }
        if conv.status == "handoff" && !self.store.has_open_ticket(&conv.id).await? {
            // Handed off, but no ticket is open for anyone to answer (left by an older
            // version, or a ticket closed without the conversation): the bot answers
            // rather than leave the customer unheard.
            tracing::warn!("conversation in hand-off without an open ticket: back to the bot");
            conv.status = "bot".into();
        }
        let rating = (conv.status == "csat")
            .then(|| crate::bot::csat_rating(&text))
            .flatten();
        // Right after an NPS score, a remark that is neither "no" nor a question is
        // stored with the score; anything else is the bot's again.
        let nps_remark = if conv.status == "nps_comment" {
            conv.status = "bot".into();
            !msg.attachment
                && !self.declines_comment(&text)
                && !self.asks_instead(&text)
                && self
                    .store
                    .set_nps_comment(&conv.id, &text, FEEDBACK_MINUTES)
                    .await?
        } else {
            false
        };
        let quick = |text: &str, quick: Vec<String>| crate::bot::Reply {
            text: text.into(),
            quick_replies: quick,
        };
        let silent =
            |intent: &'static str, reply: crate::bot::Reply, status: &'static str| Finished {
                ticket: None,
                replies: vec![reply],
                intent,
                decision: None,
                handoff_reason: None,
                handoff: false,
                status,
                state: conv.state.clone(),
            };
        let turn = if let Some(rating) = rating {
            self.store.set_csat(&conv.id, rating).await?;
            let skip = vec![crate::bot::replies::CSAT_NO_COMMENT.to_string()];
            silent(
                "csat",
                quick(crate::bot::replies::CSAT_THANKS, skip),
                "csat_comment",
            )
        } else if conv.status == "csat_comment" && self.declines_comment(&text) {
            silent(
                "csat",
                quick(crate::bot::replies::CSAT_DONE, Vec::new()),
                "bot",
            )
        } else if conv.status == "csat_comment" && !self.asks_instead(&text) {
            // Whatever else the customer writes now is their comment on the help just
            // rated ("giao hàng chậm quá, lần sau cải thiện nhé" is no new complaint
            // about an order); a question or a request for a person is answered below.
            self.store.set_csat_comment(&conv.id, &text).await?;
            silent(
                "csat",
                quick(crate::bot::replies::CSAT_COMMENT_THANKS, Vec::new()),
                "bot",
            )
        } else if let Some(score) = (conv.status == "nps")
            .then(|| crate::bot::nps_score(&text))
            .flatten()
        {
            if (0..=10).contains(&score) {
                self.store.record_nps(&conv.id, score).await?;
                // A remark sent next is kept with the score.
                silent(
                    "nps",
                    quick(crate::bot::replies::NPS_THANKS, Vec::new()),
                    "nps_comment",
                )
            } else {
                // "11 điểm": the survey is still open; its scale is said again.
                silent(
                    "nps",
                    quick(crate::bot::replies::NPS_RANGE, Vec::new()),
                    "nps",
                )
            }
        } else if nps_remark {
            silent(
                "nps",
                quick(crate::bot::replies::CSAT_COMMENT_THANKS, Vec::new()),
                "bot",
            )
        } else if msg.attachment && conv.status == "bot" && crate::channels::only_stickers(&text) {
            silent(
                "attachment",
                quick(crate::bot::replies::STICKER_RECEIVED, Vec::new()),
                "bot",
            )
        } else if msg.attachment && conv.status == "bot" {
            silent(
                "attachment",
                quick(
                    crate::bot::replies::ATTACHMENT_RECEIVED,
                    vec![crate::bot::replies::QUICK_HUMAN.to_string()],
                ),
                "bot",
            )
        } else if conv.status == "handoff" {
            self.waiting_turn(&conv, &msg, &text, &state).await?
        } else {
            let before = state.clone();
            let outcome = match msg.escalate {
                Some(reason) => self.bot.escalation(reason),
                None => {
                    let written = crate::channels::written_text(&text);
                    let read = if written.trim().is_empty() {
                        &text
                    } else {
                        &written
                    };
                    self.bot.turn(&mut state, read).await
                }
            };
            if let Some(phone) = verified_phone(&before, &state) {
                let survivor = self
                    .store
                    .link_verified_phone(&conv.customer_id, &phone)
                    .await?;
                if survivor != conv.customer_id {
                    tracing::info!(phone = %mask_phone(&phone), customer_id = %survivor, "customer verified and linked to an existing customer");
                    conv.customer_id = survivor;
                } else {
                    tracing::info!(phone = %mask_phone(&phone), "customer verified");
                }
            }
            let mut replies = outcome.replies.clone();
            // Words the bot cannot answer sent with a photo or a file ("áo giao tới bị
            // thế này nè shop" + a photo): a person should look at it, and the
            // customer hears that it arrived.
            let with_file = crate::channels::holds_file(&text);
            let unanswered = replies.len() == 1 && replies[0].text == crate::bot::replies::FALLBACK;
            if with_file && unanswered && outcome.handoff.is_none() {
                replies = vec![quick(
                    crate::bot::replies::FILE_WITH_WORDS,
                    vec![crate::bot::replies::QUICK_HUMAN.to_string()],
                )];
            }
            let ticket = match outcome.handoff {
                Some(reason) => {
                    let t = self
                        .open_ticket(
                            &conv,
                            &text,
                            outcome.intent.as_str(),
                            reason.as_str(),
                            &outcome,
                            &state,
                        )
                        .await?;
                    let wait = self.wait_for(&t.priority, false).await?;
                    if let Some(last) = replies.last_mut() {
                        last.text.push(' ');
                        last.text
                            .push_str(&crate::bot::replies::ticket_notice(&t.code, &wait));
                    }
                    Some(t)
                }
                None => None,
            };
            Finished {
                status: if outcome.handoff.is_some() {
                    "handoff"
                } else {
                    "bot"
                },
                ticket,
                replies,
                intent: outcome.intent.as_str(),
                decision: outcome.decision,
                handoff_reason: outcome.handoff.map(|h| h.as_str()),
                handoff: outcome.handoff.is_some(),
                state: serde_json::to_string(&state).expect("json"),
            }
        };
        let outbound: Vec<Outbound> = turn
            .replies
            .iter()
            .map(|r| Outbound {
                text: r.text.clone(),
                quick_replies: r.quick_replies.clone(),
            })
            .collect();
        let ticket_code = turn.ticket.as_ref().map(|t| t.code.clone());
        let m = &self.metrics;
        m.intents
            .with_label_values(&[msg.channel.as_str(), turn.intent])
            .inc();
        if let Some(d) = &turn.decision {
            let label = match d.decision {
                crate::search::Decision::Answer => "answer",
                crate::search::Decision::Clarify => "clarify",
                crate::search::Decision::Handoff => "handoff",
            };
            m.decisions
                .with_label_values(&[msg.channel.as_str(), label])
                .inc();
        }
        if let Some(t) = &turn.ticket {
            m.handoffs
                .with_label_values(&[t.reason.as_str(), t.priority.as_str()])
                .inc();
        }
        let ticket_reason = turn.ticket.as_ref().map(|t| t.reason.clone());
        let make_response = |ids: &[String]| {
            serde_json::to_string(&TurnResponse {
                conversation_id: conv.id.clone(),
                replies: turn
                    .replies
                    .iter()
                    .zip(ids)
                    .map(|(r, id)| ReplyOut {
                        id: id.clone(),
                        text: r.text.clone(),
                        quick_replies: r.quick_replies.clone(),
                    })
                    .collect(),
                intent: turn.intent.to_string(),
                decision: turn.decision.clone(),
                handoff: turn.handoff,
                ticket_code: ticket_code.clone(),
            })
            .expect("json")
        };
        let stored = self
            .store
            .finish_turn(TurnRecord {
                ticket: turn.ticket,
                conversation_id: &conv.id,
                message_id: &message_id,
                channel: msg.channel.as_str(),
                outbound: &outbound,
                intent: turn.intent,
                decision: turn
                    .decision
                    .as_ref()
                    .map(|d| serde_json::to_string(d).expect("json")),
                handoff_reason: turn.handoff_reason,
                state: turn.state.clone(),
                status: turn.status,
                deliver: msg.channel.pushes(),
                response: &make_response,
            })
            .await?;
        self.deliver_now(msg.channel.as_str());
        if let (Some(code), Some(reason)) = (ticket_code.clone(), ticket_reason) {
            self.summarize_later(&conv.id, code, reason);
        }
        let response: TurnResponse = serde_json::from_str(&stored).expect("json");
        if response.handoff {
            self.changed(&conv.id);
        }
        tracing::info!(
            intent = turn.intent,
            decision = ?response.decision.as_ref().map(|d| d.decision),
            handoff = ?turn.handoff_reason,
            "turn answered"
        );
        for r in &response.replies {
            self.push_live(&conv.id, r.id.clone(), "bot", &r.text, &r.quick_replies);
        }
        Ok(response)
    }
}

/// Minutes after an NPS score within which a remark is its comment.
const FEEDBACK_MINUTES: i64 = 30;
/// A customer waiting for a person hears that their message was passed on at most
/// this often (the first message after the hand-off always does).
const ACK_EVERY_MINUTES: i64 = 30;
/// Why a ticket is a call-back (`context.callback.why`): a caller told after hours
/// that a person will call back.
const CALLBACK_AFTER_HOURS: &str = "after_hours";
/// Turn intents of messages sent while a ticket is open: not answered (a person is
/// talking, or the customer was told recently), acknowledged as passed on, or the
/// request taken back.
const WAITING_SILENT: &str = "handoff_active";
const WAITING_ACK: &str = "handoff_waiting";
const WITHDRAWAL: &str = "handoff_withdrawn";

/// Waiting for a person: what the bot still does for a customer whose ticket is open.
impl ConversationService {
    /// "không", "không có gì thêm đâu ạ", "cảm ơn shop", the button's "Không, cảm ơn".
    fn declines_comment(&self, text: &str) -> bool {
        text == crate::bot::replies::CSAT_NO_COMMENT || self.triage.declines_comment(text)
    }

    /// Whether a message sent where feedback is expected asks for something instead:
    /// a question, a person, an order looked up (not a remark about a late one).
    fn asks_instead(&self, text: &str) -> bool {
        use crate::bot::intents::{Intent, IntentRules};
        let rules = IntentRules::shared();
        !rules.questions(text).is_empty()
            || rules.read(text).is_some_and(|m| {
                m.intent == Intent::HumanRequest || (m.intent == Intent::OrderStatus && !m.waiting)
            })
    }

    /// A customer message on a handed-off conversation with an open ticket. Taking
    /// the request back closes it (nobody took it yet) or tells the agent; otherwise
    /// the ticket is triaged again with what the message adds. While no person has
    /// answered yet, a question the knowledge base answers confidently gets that
    /// answer, and anything else an acknowledgement (at most every
    /// [`ACK_EVERY_MINUTES`]); once a person talks, the bot is silent.
    async fn waiting_turn(
        &self,
        conv: &crate::store::Conversation,
        msg: &IncomingMessage,
        text: &str,
        state: &DialogueState,
    ) -> Result<Finished, ServiceError> {
        let done = |replies: Vec<String>, intent, status, handoff| Finished {
            ticket: None,
            status,
            replies: replies
                .into_iter()
                .map(|text| crate::bot::Reply {
                    text,
                    quick_replies: Vec::new(),
                })
                .collect(),
            intent,
            decision: None,
            handoff_reason: None,
            handoff,
            state: conv.state.clone(),
        };
        self.store.customer_replied(&conv.id).await?;
        let Some(ticket) = self.store.open_ticket_of(&conv.id).await? else {
            return Ok(done(Vec::new(), WAITING_SILENT, "handoff", true));
        };
        let engaged = self.store.agent_engaged(&ticket).await?;
        if self.triage.withdraws(text, &ticket.reason) {
            let closed = self.store.withdraw_ticket(&ticket.id, text).await?;
            self.changed(&conv.id);
            tracing::info!(ticket = %ticket.code, closed, "the customer withdrew the request");
            return Ok(if closed {
                let said = crate::bot::replies::withdrawn(&ticket.code, &ticket.reason);
                done(vec![said], WITHDRAWAL, "bot", false)
            } else {
                let said = crate::bot::replies::withdrawal_passed_on(&ticket.code);
                done(vec![said], WITHDRAWAL, "handoff", true)
            });
        }
        let ticket = self.retriage(&conv.id, ticket, engaged).await?;
        self.changed(&conv.id);
        let now = chrono::Utc::now();
        if msg.channel == Channel::Voice {
            // The hotline layer decides what a caller with an open ticket hears (a
            // transfer, or after hours the call-back promise, which the ticket keeps).
            if !self.hours.is_open(now) {
                self.store
                    .mark_callback(&ticket.id, &conv.channel_user_id, CALLBACK_AFTER_HOURS)
                    .await?;
            }
            return Ok(done(Vec::new(), WAITING_SILENT, "handoff", true));
        }
        if engaged {
            return Ok(done(Vec::new(), WAITING_SILENT, "handoff", true));
        }
        if !msg.attachment {
            if let Some((mut replies, outcome, new_state)) =
                self.knowledge_answer(state, text).await
            {
                if let Some(last) = replies.last_mut() {
                    last.text.push(' ');
                    last.text
                        .push_str(&crate::bot::replies::waiting_note(&ticket.code));
                }
                return Ok(Finished {
                    ticket: None,
                    status: "handoff",
                    replies,
                    intent: outcome.intent.as_str(),
                    decision: outcome.decision,
                    handoff_reason: None,
                    handoff: true,
                    state: serde_json::to_string(&new_state).expect("json"),
                });
            }
        }
        let last_ack = self
            .store
            .last_turn_at(&conv.id, WAITING_ACK, &ticket.created_at)
            .await?
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok());
        let ack_due = last_ack.is_none_or(|at| {
            now - at.with_timezone(&chrono::Utc) >= chrono::Duration::minutes(ACK_EVERY_MINUTES)
        });
        if !ack_due {
            return Ok(done(Vec::new(), WAITING_SILENT, "handoff", true));
        }
        let wait = self.wait_for(&ticket.priority, true).await?;
        let said = format!(
            "{} {} {}",
            crate::bot::replies::WAITING_PASSED_ON,
            crate::bot::replies::ticket_notice(&ticket.code, &wait),
            crate::bot::replies::WAITING_HOW_TO_WITHDRAW
        );
        Ok(done(vec![said], WAITING_ACK, "handoff", true))
    }

    /// What the customer can expect from a ticket of `priority`: its SLA and the
    /// tickets ahead within working hours (`queued`: the ticket itself is among the
    /// open ones), else when the team is back.
    async fn wait_for(
        &self,
        priority: &str,
        queued: bool,
    ) -> Result<crate::bot::replies::Wait, ServiceError> {
        let now = chrono::Utc::now();
        Ok(if self.hours.is_open(now) {
            let open = self.store.open_ticket_count().await?;
            crate::bot::replies::Wait::Within {
                hours: self.triage.sla_hours(priority),
                queue: if queued { (open - 1).max(0) } else { open },
            }
        } else {
            crate::bot::replies::Wait::AfterHours {
                open: self.hours.open.clone(),
                close: self.hours.close.clone(),
                today: self.hours.opens_later_today(now),
            }
        })
    }

    /// The bot's normal turn on a copy of the dialogue state, kept only when it is a
    /// confident knowledge-base answer: no order flow started, no hand-off, no
    /// fallback, choice or offer of a person. (replies, outcome, the copy's state).
    async fn knowledge_answer(
        &self,
        state: &DialogueState,
        text: &str,
    ) -> Option<(
        Vec<crate::bot::Reply>,
        crate::bot::TurnOutcome,
        DialogueState,
    )> {
        use crate::bot::replies as r;
        let mut copy = state.clone();
        let outcome = self.bot.turn(&mut copy, text).await;
        let unsure = [
            r::FALLBACK,
            r::STOCK_FALLBACK,
            r::PRICE_FALLBACK,
            r::SOME_UNANSWERED,
            r::CLARIFY,
            r::CLARIFY_AGAIN,
            r::CLARIFY_NONE,
        ];
        let confident = outcome.handoff.is_none()
            && outcome.intent == crate::bot::intents::Intent::Faq
            && outcome
                .decision
                .as_ref()
                .is_some_and(|d| d.decision == crate::search::Decision::Answer)
            && copy.pending == crate::bot::Pending::Nothing
            && copy.request.is_none()
            && copy.verified_orders == state.verified_orders
            && !outcome.replies.is_empty()
            && outcome.replies.iter().all(|x| {
                !unsure.contains(&x.text.as_str())
                    && !x.quick_replies.iter().any(|q| q == r::QUICK_HUMAN)
            });
        confident.then(|| (outcome.replies.clone(), outcome, copy))
    }

    /// Triage again with everything the customer has said for this request: the
    /// priority (and so the deadline) only rises, the department follows a rise while
    /// nobody holds the ticket, and the summary always shows the latest facts.
    async fn retriage(
        &self,
        conversation_id: &str,
        mut ticket: TicketRow,
        engaged: bool,
    ) -> Result<TicketRow, ServiceError> {
        let said = self.store.request_messages(conversation_id).await?;
        let seen = self.store.request_intents(conversation_id).await?;
        let intents: Vec<&str> = seen.iter().map(String::as_str).collect();
        let a = self.triage.assess(&said, &intents, &ticket.reason);
        let summary = self.triage.summary(&ticket.reason, &said);
        let raised = self.triage.raises(&ticket.priority, &a.priority);
        let mut due = None;
        let mut department = None;
        let mut detail = None;
        if raised {
            let sooner = self.hours.due(chrono::Utc::now(), a.sla_hours);
            let at = match chrono::DateTime::parse_from_rfc3339(&ticket.sla_due_at) {
                Ok(old) if old.with_timezone(&chrono::Utc) < sooner => ticket.sla_due_at.clone(),
                _ => sooner.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            };
            due = Some(at);
            if !engaged && a.department != ticket.department {
                department = Some(a.department.clone());
            }
            detail = Some(match &department {
                Some(d) => format!(
                    "{} → {}, {} → {d}",
                    ticket.priority, a.priority, ticket.department
                ),
                None => format!("{} → {}", ticket.priority, a.priority),
            });
            tracing::info!(ticket = %ticket.code, from = %ticket.priority, to = %a.priority, "priority raised by what the customer added");
        }
        self.store
            .retriage_ticket(&crate::store::Retriage {
                ticket_id: &ticket.id,
                summary: &summary,
                priority: raised.then_some(a.priority.as_str()),
                sla_due_at: due.as_deref(),
                department: department.as_deref(),
                detail: detail.as_deref(),
            })
            .await?;
        ticket.summary = summary;
        if raised {
            ticket.priority = a.priority;
        }
        if let Some(at) = due {
            ticket.sla_due_at = at;
        }
        if let Some(d) = department {
            ticket.department = d;
        }
        Ok(ticket)
    }
}

#[derive(Debug, Error)]
pub enum AgentError {
    #[error("invalid credentials")]
    Unauthorized,
    /// A sign-in with an unknown (or disabled) username or a wrong password.
    #[error("wrong username or password")]
    BadCredentials,
    #[error("no such ticket")]
    NotFound,
    #[error("{0}")]
    Invalid(&'static str),
    /// The platform will not accept a message now (its messaging window has closed).
    #[error("cannot be delivered: {0}")]
    Undeliverable(String),
    /// The ticket's state does not allow the action (resolved or closed, or held by
    /// another agent); nothing changed.
    #[error("refused: {0:?}")]
    Refused(crate::store::Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A ticket with everything an agent needs to take over.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    #[serde(flatten)]
    pub ticket: TicketRow,
    pub customer: serde_json::Value,
    pub transcript: Vec<StoredMessage>,
    /// Internal notes, transfers and actions (never shown to the customer).
    pub log: Vec<serde_json::Value>,
    /// Knowledge entries for the customer's latest questions (one ticket's view only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<crate::bot::Suggestion>,
}

/// Whether a text has something to read: not only white space and invisible
/// characters (zero-width spaces, byte-order marks, bidirectional and other format
/// marks, variation selectors, fillers), which some clients send as "empty" messages.
pub fn has_visible_text(text: &str) -> bool {
    text.chars().any(|c| !c.is_whitespace() && !invisible(c))
}

/// Control characters (Cc: NUL, escape, DEL, C1 controls), Unicode's
/// default-ignorable code points, the other format characters (Cf), and blank-looking
/// fillers (Hangul fillers, the braille blank).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{0600}'..='\u{0605}' | '\u{06DD}'
        | '\u{070F}' | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{115F}'..='\u{1160}'
        | '\u{17B4}'..='\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
        | '\u{110BD}' | '\u{110CD}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// How many entries an agent is offered for a ticket, and finds per search.
const TICKET_SUGGESTIONS: usize = 3;
const SEARCH_RESULTS: usize = 5;
/// An agent's reply or note, composed and trimmed: 1 to 2,000 visible characters.
fn agent_text(text: &str) -> Result<String, AgentError> {
    let text = crate::text::nfc(text.trim());
    if !has_visible_text(&text) || text.chars().count() > MAX_TEXT_CHARS {
        return Err(AgentError::Invalid("text must be 1-2000 characters"));
    }
    Ok(text)
}

/// The longest search an agent can type.
const MAX_SEARCH_CHARS: usize = 500;

/// A question typed into a knowledge search or "try a question", trimmed; empty or
/// too long is the caller's error.
fn search_text(query: &str) -> Result<String, ServiceError> {
    let q = query.trim();
    if !has_visible_text(q) || q.chars().count() > MAX_SEARCH_CHARS {
        return Err(ServiceError::Invalid {
            field: "q",
            message: format!("must be 1 to {MAX_SEARCH_CHARS} characters"),
        });
    }
    Ok(q.to_string())
}

/// Departments a ticket can be routed to.
pub const DEPARTMENTS: [&str; 5] = ["kỹ thuật", "kho vận", "kế toán", "bán hàng", "CSKH"];

/// The department a name means, written as [`DEPARTMENTS`] writes it: "Kế toán",
/// "kế toán" and a decomposed "kế toán" are one department.
fn department_named(name: &str) -> Option<&'static str> {
    let name = crate::text::nfc(name.trim()).to_lowercase();
    DEPARTMENTS.into_iter().find(|d| d.to_lowercase() == name)
}

/// Agent-side actions (the agent console and external helpdesks call these).
impl ConversationService {
    pub async fn agent_login(&self, username: &str, password: &str) -> Result<String, AgentError> {
        let username = crate::handoff::canonical_username(username);
        let Some((agent_id, hash)) = self.store.agent_credentials(&username).await? else {
            return Err(AgentError::BadCredentials);
        };
        if !crate::handoff::verify_password(password, &hash) {
            return Err(AgentError::BadCredentials);
        }
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let expires = chrono::Utc::now() + chrono::Duration::hours(12);
        self.store
            .insert_token(
                &crate::handoff::token_hash(&token),
                &agent_id,
                &expires.to_rfc3339(),
            )
            .await?;
        Ok(token)
    }

    pub async fn agent_for_token(&self, token: &str) -> Result<String, AgentError> {
        self.store
            .agent_for_token(&crate::handoff::token_hash(token))
            .await?
            .ok_or(AgentError::Unauthorized)
    }

    pub async fn tickets(&self, open_only: bool) -> Result<Vec<TicketView>, AgentError> {
        let mut out = Vec::new();
        for t in self.store.tickets(open_only).await? {
            out.push(self.view(t).await?);
        }
        Ok(out)
    }

    /// The queue without each ticket's context: what a desk with many tickets open
    /// lists and polls.
    pub async fn ticket_summaries(
        &self,
        open_only: bool,
    ) -> Result<Vec<crate::store::TicketSummary>, AgentError> {
        Ok(self.store.ticket_summaries(open_only).await?)
    }

    /// One ticket with its whole context (by id or code) and knowledge entries for
    /// the customer's latest questions.
    pub async fn ticket(&self, id: &str) -> Result<TicketView, AgentError> {
        let t = self.find_ticket(id).await?;
        let said = self.store.customer_messages(&t.conversation_id).await?;
        let mut view = self.view(t).await?;
        let bot = self.bot.clone();
        view.suggestions =
            tokio::task::spawn_blocking(move || bot.suggestions_for(&said, TICKET_SUGGESTIONS))
                .await
                .unwrap_or_default();
        Ok(view)
    }

    /// What retrieval decides for `query` on the knowledge base as it is now (the
    /// operator's "try a question"; no conversation is created or stored).
    pub async fn try_question(&self, query: &str) -> Result<serde_json::Value, ServiceError> {
        let q = search_text(query)?;
        let bot = self.bot.clone();
        tokio::task::spawn_blocking(move || {
            let core = bot.core();
            let r = core.ask(&q, crate::search::Mode::Hybrid)?;
            let kb = core.retriever.knowledge();
            let label = |id: &str| kb.get(id).map(|e| e.label().to_string());
            let mut v = serde_json::to_value(&r).expect("ask result");
            v["question"] = serde_json::json!(r.faq_id.as_deref().and_then(label));
            v["candidates"] = r
                .candidates
                .iter()
                .map(
                    |c| serde_json::json!({"id": c.id, "score": c.score, "question": label(&c.id)}),
                )
                .collect();
            Ok(v)
        })
        .await
        .map_err(|e| ServiceError::Retrieval(e.to_string()))?
        .map_err(|e: crate::search::SearchError| ServiceError::Retrieval(e.to_string()))
    }

    /// An agent's search of the knowledge base (to answer with the shop's own words).
    pub async fn search_knowledge(
        &self,
        query: &str,
    ) -> Result<Vec<crate::bot::Suggestion>, ServiceError> {
        let q = search_text(query)?;
        let bot = self.bot.clone();
        tokio::task::spawn_blocking(move || bot.search_knowledge(&q, SEARCH_RESULTS))
            .await
            .map_err(|e| ServiceError::Retrieval(e.to_string()))?
            .map_err(|e| ServiceError::Retrieval(e.to_string()))
    }

    async fn view(&self, ticket: TicketRow) -> Result<TicketView, AgentError> {
        let transcript = self.store.messages(&ticket.conversation_id).await?;
        let conv = self.store.conversation(&ticket.conversation_id).await?;
        let phone = self.store.customer_phone(&ticket.customer_id).await?;
        let past: Vec<serde_json::Value> = self
            .store
            .customer_tickets(&ticket.customer_id)
            .await?
            .into_iter()
            .filter(|(code, ..)| *code != ticket.code)
            .map(|(code, status, csat, created_at)| {
                serde_json::json!({"code": code, "status": status, "csat": csat, "created_at": created_at})
            })
            .collect();
        let orders = match &phone {
            Some(p) => self.store.orders_for_phone(p).await?,
            None => Vec::new(),
        };
        let identities: Vec<serde_json::Value> = self
            .store
            .customer_identities(&ticket.customer_id)
            .await?
            .into_iter()
            .map(|(channel, user)| serde_json::json!({"channel": channel, "user_id": user}))
            .collect();
        let mut history = Vec::new();
        for c in self
            .store
            .customer_conversations(&ticket.customer_id)
            .await?
        {
            let messages = self.store.messages(&c.id).await?;
            history.push(serde_json::json!({
                "conversation_id": c.id,
                "channel": c.channel,
                "created_at": c.created_at,
                "current": c.id == ticket.conversation_id,
                "messages": messages,
            }));
        }
        // What speech recognition heard on the caller's calls, with confidences.
        let mut calls = Vec::new();
        if let Some(c) = conv.as_ref().filter(|c| c.channel == "voice") {
            for (call_id, heard, at) in self.store.calls_of(&c.channel_user_id).await? {
                calls.push(serde_json::json!({
                    "call_id": call_id,
                    "started_at": at,
                    "heard": serde_json::from_str::<serde_json::Value>(&heard).unwrap_or_default(),
                }));
            }
        }
        let customer = serde_json::json!({
            "id": ticket.customer_id,
            "identities": identities,
            "calls": calls,
            "history": history,
            "verified_phone": phone,
            "orders": orders,
            "channel": conv.as_ref().map(|c| c.channel.clone()),
            "channel_user_id": conv.as_ref().map(|c| c.channel_user_id.clone()),
            "past_tickets": past,
        });
        let log = self
            .store
            .ticket_log(&ticket.id)
            .await?
            .into_iter()
            .map(|(action, detail, agent, at)| {
                serde_json::json!({"action": action, "detail": detail, "agent": agent, "at": at})
            })
            .collect();
        Ok(TicketView {
            suggestions: Vec::new(),
            ticket,
            customer,
            transcript,
            log,
        })
    }

    async fn find_ticket(&self, id: &str) -> Result<TicketRow, AgentError> {
        self.store.ticket(id).await?.ok_or(AgentError::NotFound)
    }

    async fn channel_of(&self, t: &TicketRow) -> Result<Channel, AgentError> {
        let conv = self.store.conversation(&t.conversation_id).await?;
        Ok(conv
            .and_then(|c| Channel::parse(&c.channel))
            .unwrap_or(Channel::Api))
    }

    /// Refuses, before anything is stored, a message the platform would reject.
    async fn check_window(
        &self,
        channel: Channel,
        t: &TicketRow,
        author: &str,
    ) -> Result<(), AgentError> {
        if channel == Channel::Voice {
            // A caller hears only the call: a written reply reaches nobody. The agent
            // calls back instead (the console shows the number).
            let caller = self
                .store
                .conversation(&t.conversation_id)
                .await?
                .map(|c| c.channel_user_id)
                .unwrap_or_default();
            return Err(AgentError::Undeliverable(format!(
                "the customer called the hotline and cannot read a reply; call them back on {caller}"
            )));
        }
        let Some(adapter) = self.adapters.get(channel) else {
            return Ok(());
        };
        let since = self
            .store
            .last_inbound_at(&t.conversation_id)
            .await?
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
            .map(|at| chrono::Utc::now() - at.with_timezone(&chrono::Utc));
        adapter
            .window(author, since)
            .map_err(AgentError::Undeliverable)
    }

    fn publish(
        &self,
        conversation_id: &str,
        id: Option<String>,
        author: &str,
        text: &str,
        quick: &[String],
    ) {
        self.changed(conversation_id);
        if let Some(id) = id {
            self.push_live(conversation_id, id, author, text, quick);
        }
    }

    /// A stored outbound message, to live listeners (the web widget).
    fn push_live(
        &self,
        conversation_id: &str,
        id: String,
        author: &str,
        text: &str,
        quick: &[String],
    ) {
        let _ = self.live.send(LiveMessage {
            conversation_id: conversation_id.to_string(),
            message: StoredMessage {
                id,
                direction: "out".into(),
                author: author.into(),
                text: text.into(),
                quick_replies: quick.to_vec(),
                created_at: crate::store::now(),
                delivery: None,
                delivery_error: None,
                spoken: None,
            },
        });
    }

    fn changed(&self, conversation_id: &str) {
        let _ = self.queue.send(conversation_id.to_string());
    }

    /// Takes a ticket. A ticket another agent holds is refused unless `take_over` is
    /// set (an explicit take-over, audited with whom it was taken from).
    pub async fn claim(
        &self,
        agent: &str,
        id: &str,
        take_over: bool,
    ) -> Result<TicketView, AgentError> {
        let t = self.find_ticket(id).await?;
        let action = if take_over { "take_over" } else { "claim" };
        self.store
            .agent_action(agent, &t, action, Some("in_progress"), "handoff", None)
            .await?
            .map_err(AgentError::Refused)?;
        self.changed(&t.conversation_id);
        self.ticket(id).await
    }

    pub async fn reply(&self, agent: &str, id: &str, text: &str) -> Result<TicketView, AgentError> {
        let text = agent_text(text)?;
        let t = self.find_ticket(id).await?;
        let channel = self.channel_of(&t).await?;
        self.check_window(channel, &t, "agent").await?;
        let mid = self
            .store
            .agent_action(
                agent,
                &t,
                "reply",
                // The customer's turn; their next message sets `in_progress` again.
                Some("waiting_customer"),
                "handoff",
                Some(CustomerMessage {
                    author: "agent",
                    text: &text,
                    quick_replies: &[],
                    deliver: channel.pushes(),
                }),
            )
            .await?
            .map_err(AgentError::Refused)?;
        self.deliver_now(channel.as_str());
        self.publish(&t.conversation_id, mid, "agent", &text, &[]);
        self.ticket(id).await
    }

    /// An internal note: visible to agents only.
    pub async fn note(&self, agent: &str, id: &str, text: &str) -> Result<TicketView, AgentError> {
        let text = agent_text(text)?;
        let t = self.find_ticket(id).await?;
        self.store
            .ticket_note(agent, &t.id, "note", &text, None)
            .await?
            .map_err(AgentError::Refused)?;
        self.ticket(id).await
    }

    pub async fn transfer(
        &self,
        agent: &str,
        id: &str,
        department: &str,
    ) -> Result<TicketView, AgentError> {
        let Some(department) = department_named(department) else {
            return Err(AgentError::Invalid(
                "unknown department (kỹ thuật, kho vận, kế toán, bán hàng or CSKH)",
            ));
        };
        let t = self.find_ticket(id).await?;
        let detail = format!("{} → {department}", t.department);
        self.store
            .ticket_note(agent, &t.id, "transfer", &detail, Some(department))
            .await?
            .map_err(AgentError::Refused)?;
        self.changed(&t.conversation_id);
        self.ticket(id).await
    }

    /// Resolves the ticket and asks the customer for a 1–5 rating.
    pub async fn resolve(&self, agent: &str, id: &str) -> Result<TicketView, AgentError> {
        let t = self.find_ticket(id).await?;
        let channel = self.channel_of(&t).await?;
        let quick: Vec<String> = (1..=5).map(|i| i.to_string()).collect();
        let q = crate::bot::replies::CSAT_QUESTION;
        let mid = self
            .store
            .agent_action(
                agent,
                &t,
                "resolve",
                Some("resolved"),
                "csat",
                Some(CustomerMessage {
                    author: "bot",
                    text: q,
                    quick_replies: &quick,
                    deliver: channel.pushes(),
                }),
            )
            .await?
            .map_err(AgentError::Refused)?;
        self.deliver_now(channel.as_str());
        self.publish(&t.conversation_id, mid, "bot", q, &quick);
        self.ticket(id).await
    }

    /// Hands the conversation back to the bot. A question the customer asked while
    /// waiting that nobody answered is answered now by the bot's normal turn (unless
    /// that turn would hand off again: then the plain hand-back is said).
    pub async fn release(&self, agent: &str, id: &str) -> Result<TicketView, AgentError> {
        let t = self.find_ticket(id).await?;
        let channel = self.channel_of(&t).await?;
        let conv = self.store.conversation(&t.conversation_id).await?;
        let _turn = match &conv {
            Some(c) => Some(
                self.lock_for(&format!("{}:{}", c.channel, c.channel_user_id))
                    .lock_owned()
                    .await,
            ),
            None => None,
        };
        let pending = match (&conv, channel) {
            (Some(c), ch) if ch != Channel::Voice => self
                .store
                .unanswered_last_message(&c.id, &[WAITING_SILENT, WAITING_ACK])
                .await?
                .map(|text| (c, text)),
            _ => None,
        };
        let mut answer = None;
        if let Some((c, text)) = pending {
            let mut state: DialogueState = serde_json::from_str(&c.state).unwrap_or_default();
            if state.verified_phone.is_none() {
                state.verified_phone = self.store.customer_phone(&c.customer_id).await?;
            }
            let read = crate::channels::written_text(&text);
            let read = if read.trim().is_empty() { text } else { read };
            let outcome = self.bot.turn(&mut state, &read).await;
            if outcome.handoff.is_none() && !outcome.replies.is_empty() {
                answer = Some((outcome.replies, state));
            }
        }
        let note = match answer {
            Some(_) => crate::bot::replies::HANDED_BACK_ANSWERING,
            None => crate::bot::replies::HANDED_BACK,
        };
        let mid = self
            .store
            .agent_action(
                agent,
                &t,
                "release",
                Some("closed"),
                "bot",
                Some(CustomerMessage {
                    author: "bot",
                    text: note,
                    quick_replies: &[],
                    deliver: channel.pushes(),
                }),
            )
            .await?
            .map_err(AgentError::Refused)?;
        self.publish(&t.conversation_id, mid, "bot", note, &[]);
        if let Some((replies, state)) = answer {
            let outbound: Vec<Outbound> = replies
                .iter()
                .map(|r| Outbound {
                    text: r.text.clone(),
                    quick_replies: r.quick_replies.clone(),
                })
                .collect();
            let ids = self
                .store
                .bot_followup(
                    &t.conversation_id,
                    channel.as_str(),
                    &outbound,
                    &serde_json::to_string(&state).expect("json"),
                    channel.pushes(),
                )
                .await?;
            for (id, r) in ids.into_iter().zip(&replies) {
                self.push_live(&t.conversation_id, id, "bot", &r.text, &r.quick_replies);
            }
        }
        self.deliver_now(channel.as_str());
        drop(_turn);
        self.ticket(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::{has_visible_text, search_text, ConversationService, IncomingMessage};
    use crate::channels::Channel;

    #[test]
    fn invisible_only_text_is_not_a_message() {
        for blank in [
            "",
            "   ",
            "\u{200b}",
            "\u{feff}",
            " \u{200b}\u{200c}\u{200d}\u{2060} ",
            "\u{00a0}\u{3000}\u{2800}",
            "\u{202e}\u{fe0f}\u{e0020}",
            "\u{0}",
            "\u{0}\u{1}\u{1b}\u{7f}\u{85}\u{9f}",
            "\t\u{0}\r\n",
        ] {
            assert!(!has_visible_text(blank), "{blank:?}");
        }
        for text in ["a", "\u{200b}chào", "5", "👍", "đ\u{fe0f}"] {
            assert!(has_visible_text(text), "{text:?}");
        }
    }

    #[test]
    fn a_message_is_measured_composed() {
        use unicode_normalization::UnicodeNormalization;
        let msg = |text: String| IncomingMessage {
            channel: Channel::Api,
            user_id: "u".into(),
            message_id: "m".into(),
            text,
            account: None,
            attachment: false,
            escalate: None,
        };
        // 1,500 "á" typed decomposed are 3,000 code points but 1,500 characters.
        let decomposed: String = "á".repeat(1500).nfd().collect();
        assert_eq!(decomposed.chars().count(), 3000);
        assert!(ConversationService::validate(&msg(decomposed)).is_ok());
        assert!(ConversationService::validate(&msg("á".repeat(2001))).is_err());
        assert!(search_text("\u{200b}").is_err());
    }
}
