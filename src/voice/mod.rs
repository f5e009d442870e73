//! The hotline voicebot: a speech front end (Twilio, or any ASR/TTS pair through the
//! generic API) sends what the caller said; the same conversation service decides;
//! the answer comes back short and speakable. Recognition failures follow a ladder:
//! re-prompt → confirm the best guess → offer keys (DTMF) → transfer to a person.

pub mod heard;
pub mod replies;
pub mod speech;
pub mod twilio;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::bot::replies as bot_replies;
use crate::bot::{HandoffReason, MessageClassifier};
use crate::service::{Channel, ConversationService, IncomingMessage, ServiceError, TurnResponse};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceConfig {
    /// ASR results below this confidence go through the recognition ladder.
    pub min_confidence: f32,
    /// Sentences spoken per answer.
    pub max_sentences: usize,
    /// Phone number or `sip:` address for `<Dial>`, `queue:NAME` or `workflow:WW…`
    /// for `<Enqueue>`; unset: `<Enqueue>cskh</Enqueue>`.
    pub transfer_to: Option<String>,
    /// Twilio `<Say>` voice.
    pub voice: String,
    /// The base URL Twilio calls (the signature covers it).
    pub public_url: Option<String>,
    pub twilio_auth_token: Option<String>,
    /// Bearer token of `POST /api/v1/voice/turn`.
    pub token: Option<String>,
    /// Phrases that help recognition (Twilio `hints`).
    pub hints: Vec<String>,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            min_confidence: 0.5,
            max_sentences: 2,
            transfer_to: None,
            voice: "Google.vi-VN-Standard-A".into(),
            public_url: None,
            twilio_auth_token: None,
            token: None,
            hints: [
                "mã đơn hàng",
                "số điện thoại",
                "gặp nhân viên",
                "phí ship",
                "đổi trả",
                "bảo hành",
                "giao hàng",
                "thanh toán",
                "có",
                "không",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Alternative {
    pub text: String,
    #[serde(default)]
    pub confidence: Option<f32>,
}

/// One recognized utterance (or key press) of a call.
#[derive(Debug, Clone)]
pub struct VoiceTurn {
    pub call_id: String,
    pub from: String,
    pub text: String,
    pub confidence: Option<f32>,
    pub alternatives: Vec<Alternative>,
    pub dtmf: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Continue,
    Transfer,
    Hangup,
}

#[derive(Debug, Clone, Serialize)]
pub struct VoiceReply {
    pub say: String,
    pub ssml: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_code: Option<String>,
    /// Listen for a key press too.
    pub dtmf: bool,
}

/// The recognition ladder's memory for one call.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct CallState {
    turn: u32,
    misses: u32,
    confirm: Option<String>,
    dtmf_offered: bool,
    /// The last answer read options out ("thứ nhất…").
    options: bool,
    /// The caller got an answer in this call: a "chào em" now takes leave.
    served: bool,
    /// The call was handed to a person and waits for one.
    transferred: bool,
    /// The last answer asked for the order's phone number (or its last four digits).
    asked_phone: bool,
    /// What a long answer left unread, said on "nghe tiếp".
    rest: Vec<String>,
}

pub struct Voice {
    svc: Arc<ConversationService>,
    cfg: VoiceConfig,
    classifier: MessageClassifier,
}

fn reply(say: &str, action: Action) -> VoiceReply {
    let spoken = speech::words(say);
    VoiceReply {
        ssml: speech::ssml(&spoken),
        say: spoken,
        action,
        transfer_to: None,
        ticket_code: None,
        dtmf: false,
    }
}

impl Voice {
    pub fn new(svc: Arc<ConversationService>, cfg: VoiceConfig) -> Self {
        Self {
            svc,
            cfg,
            classifier: MessageClassifier::new(),
        }
    }

    pub fn config(&self) -> &VoiceConfig {
        &self.cfg
    }

    /// The caller's number as the channel identity (normalized like any phone).
    fn caller(from: &str) -> String {
        crate::bot::entities::normalize_phone(from).unwrap_or_else(|| from.trim().to_string())
    }

    /// The opening line of a call.
    pub async fn start(
        &self,
        call_id: &str,
        from: &str,
        front_end: &str,
    ) -> Result<VoiceReply, ServiceError> {
        for (field, v) in [("call_id", call_id), ("from", from)] {
            if v.trim().is_empty() || v.len() > 200 {
                return Err(ServiceError::Invalid {
                    field,
                    message: "must be 1-200 characters".into(),
                });
            }
        }
        let caller = Self::caller(from);
        if self.svc.store().call(call_id).await?.is_none() {
            self.svc
                .store()
                .save_call(call_id, &caller, front_end, "{}", "[]")
                .await?;
        }
        Ok(reply(bot_replies::VOICE_GREETING, Action::Continue))
    }

    pub async fn turn(&self, front_end: &str, t: VoiceTurn) -> Result<VoiceReply, ServiceError> {
        let invalid = |field, message: &str| {
            Err(ServiceError::Invalid {
                field,
                message: message.into(),
            })
        };
        if t.call_id.trim().is_empty() || t.call_id.len() > 200 {
            return invalid("call_id", "must be 1-200 characters");
        }
        if t.from.trim().is_empty() || t.from.len() > 200 {
            return invalid("from", "must be 1-200 characters");
        }
        if t.text.chars().count() > crate::service::MAX_TEXT_CHARS {
            return invalid("text", "is longer than 2000 characters");
        }
        if t.confidence.is_some_and(|c| !(0.0..=1.0).contains(&c)) {
            return invalid("confidence", "must be between 0 and 1");
        }
        let caller = Self::caller(&t.from);
        let (state, heard) = self
            .svc
            .store()
            .call(&t.call_id)
            .await?
            .unwrap_or_else(|| ("{}".into(), "[]".into()));
        let mut st: CallState = serde_json::from_str(&state).unwrap_or_default();
        let mut heard: Vec<serde_json::Value> = serde_json::from_str(&heard).unwrap_or_default();
        heard.push(serde_json::json!({
            "text": t.text,
            "confidence": t.confidence,
            "alternatives": t.alternatives,
            "dtmf": t.dtmf,
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }));
        let out = self.decide(&mut st, &caller, &t).await?;
        self.svc
            .store()
            .save_call(
                &t.call_id,
                &caller,
                front_end,
                &serde_json::to_string(&st).expect("json"),
                &serde_json::Value::Array(heard).to_string(),
            )
            .await?;
        Ok(out)
    }

    async fn decide(
        &self,
        st: &mut CallState,
        caller: &str,
        t: &VoiceTurn,
    ) -> Result<VoiceReply, ServiceError> {
        st.turn += 1;
        if let Some(key) = t.dtmf.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            st.misses = 0;
            st.dtmf_offered = false;
            return match key {
                "0" => {
                    self.bot(
                        st,
                        caller,
                        t,
                        "[Phím 0] Gặp nhân viên",
                        Some(HandoffReason::CustomerRequest),
                    )
                    .await
                }
                "1" => {
                    self.bot(st, caller, t, "[Phím 1] Tra cứu đơn hàng", None)
                        .await
                }
                _ => {
                    let mut r = reply(bot_replies::VOICE_KEYS, Action::Continue);
                    r.dtmf = true;
                    st.dtmf_offered = true;
                    Ok(r)
                }
            };
        }
        let text = t.text.trim();
        if let Some(guess) = st.confirm.take() {
            match heard::yes_no(text) {
                Some(true) => {
                    st.misses = 0;
                    return self.bot(st, caller, t, &guess, None).await;
                }
                Some(false) => {
                    st.misses = 0;
                    return Ok(reply(bot_replies::VOICE_SAY_AGAIN, Action::Continue));
                }
                None => {}
            }
        }
        let rest = std::mem::take(&mut st.rest);
        let low = text.is_empty() || t.confidence.is_some_and(|c| c < self.cfg.min_confidence);
        if st.transferred && low {
            // The call waits for a person: silence is not the start of a new ladder.
            return Ok(self.transfer_reply(replies::STILL_TRANSFERRING, None));
        }
        if !low && !rest.is_empty() && heard::wants_more(text) {
            let (said, left) = speech::more(&rest);
            let mut say = said;
            if !left.is_empty() {
                say = format!("{say} {}", replies::OFFER_MORE);
            }
            st.rest = left;
            return Ok(reply(&say, Action::Continue));
        }
        if !low && st.asked_phone {
            // Digits, but not a phone's last four nor a whole number: asked again for
            // exactly that, rather than read as a question the bot cannot answer.
            match heard::digits_given(text) {
                Some(n @ 2..=3) => return Ok(reply(&replies::digits_short(n), Action::Continue)),
                Some(n @ 5..=9) => return Ok(reply(&replies::digits_between(n), Action::Continue)),
                _ => {}
            }
        }
        // An unsure top hypothesis with an alternative the bot understands: the
        // alternative, rather than asking the caller again.
        let alternative = match low {
            true => self.understood_alternative(&t.alternatives).await,
            false => None,
        };
        if let Some(a) = alternative {
            st.misses = 0;
            let chosen = match (st.options, heard::pick(&a)) {
                (true, Some(n)) => n,
                _ => heard::normalize(&a),
            };
            return self.bot(st, caller, t, &chosen, None).await;
        }
        if low {
            st.misses += 1;
            return match st.misses {
                1 => Ok(reply(bot_replies::VOICE_REPROMPT, Action::Continue)),
                // A filler sound ("ờ", "ừm") is nothing heard, not a guess to confirm.
                2 if !text.is_empty() && !heard::only_filler(text) => {
                    let guess = heard::normalize(text);
                    let r = reply(&bot_replies::voice_confirm(&guess), Action::Continue);
                    st.confirm = Some(guess);
                    Ok(r)
                }
                2 | 3 if !st.dtmf_offered => {
                    st.dtmf_offered = true;
                    let mut r = reply(bot_replies::VOICE_KEYS, Action::Continue);
                    r.dtmf = true;
                    Ok(r)
                }
                _ => {
                    let said = if text.is_empty() {
                        "[Không nghe rõ]"
                    } else {
                        text
                    };
                    self.bot(st, caller, t, said, Some(HandoffReason::SpeechUnrecognized))
                        .await
                }
            };
        }
        st.misses = 0;
        let chosen = self.choose(text, &t.alternatives).await;
        let chosen = match (st.options, heard::pick(&chosen)) {
            (true, Some(n)) => n,
            _ => heard::normalize(&chosen),
        };
        self.bot(st, caller, t, &chosen, None).await
    }

    /// The first of the recognition hypotheses the bot understands (n-best), or the
    /// top one.
    async fn choose(&self, text: &str, alternatives: &[Alternative]) -> String {
        if alternatives.is_empty() || self.understood(text).await {
            return text.to_string();
        }
        self.understood_alternative(alternatives)
            .await
            .unwrap_or_else(|| text.to_string())
    }

    /// The first alternative hypothesis, not too unsure, that the bot understands.
    async fn understood_alternative(&self, alternatives: &[Alternative]) -> Option<String> {
        for a in alternatives {
            if a.confidence.unwrap_or(1.0) >= self.cfg.min_confidence / 2.0
                && self.understood(&a.text).await
            {
                tracing::debug!(alternative = %a.text, "n-best alternative chosen");
                return Some(a.text.clone());
            }
        }
        None
    }

    async fn understood(&self, text: &str) -> bool {
        let core = self.svc.bot().core();
        let t = heard::normalize(text);
        let r = tokio::task::spawn_blocking(move || {
            core.ask(&t, crate::search::Mode::Hybrid).map(|a| (t, a))
        })
        .await;
        match r {
            Ok(Ok((t, ask))) => {
                self.classifier.intent_of(&t, &ask) != crate::bot::intents::Intent::OutOfScope
            }
            _ => false,
        }
    }

    async fn bot(
        &self,
        st: &mut CallState,
        caller: &str,
        t: &VoiceTurn,
        text: &str,
        escalate: Option<HandoffReason>,
    ) -> Result<VoiceReply, ServiceError> {
        let msg = IncomingMessage {
            channel: Channel::Voice,
            user_id: caller.to_string(),
            message_id: format!("{}:{}", t.call_id, st.turn),
            text: text.to_string(),
            account: None,
            attachment: false,
            escalate,
        };
        let r = self.svc.handle(msg).await?;
        // Leave-taking ends the call: thanks that also say goodbye ("vậy thôi, cảm ơn em
        // nhé, chào em"), a "chào em" once the caller has been served, and thanks or a
        // goodbye while the call waits for a person.
        let leaves = || heard::takes_leave(text) || self.classifier.says_goodbye(text);
        let leaving = match r.intent.as_str() {
            "thanks" => leaves(),
            "greeting" => st.served && heard::takes_leave(text),
            "handoff_active" => leaves() || heard::thanks(text),
            _ => false,
        };
        if !matches!(r.intent.as_str(), "greeting" | "handoff_active") {
            st.served = true;
        }
        let out = self.spoken_reply(st, &r, leaving);
        // The transcript an agent reads holds what the caller heard.
        self.svc.record_spoken(&r.replies, &out.say).await?;
        Ok(out)
    }

    /// A transfer to a person as the caller hears it.
    fn transfer_reply(&self, say: &str, code: Option<String>) -> VoiceReply {
        let mut out = reply(say, Action::Transfer);
        out.transfer_to = self.cfg.transfer_to.clone();
        out.ticket_code = code;
        out
    }

    /// The turn's replies as the caller hears them: a transfer, the out-of-hours
    /// promise, a farewell, or the answer read out (choices numbered), with the way
    /// to a person and to the rest of a long answer said.
    fn spoken_reply(&self, st: &mut CallState, r: &TurnResponse, leaving: bool) -> VoiceReply {
        st.options = false;
        st.rest.clear();
        st.asked_phone = r.replies.iter().any(|x| {
            x.text.contains(bot_replies::ASK_VERIFICATION)
                || x.text.contains(bot_replies::VERIFICATION_MISMATCH)
        });
        if r.handoff && !self.svc.is_open_now() {
            st.transferred = false;
            // Nobody to take the call: say what the ticket promises, then end. A
            // caller whose ticket is already open hears that it waits for a person.
            let text: Vec<&str> = r.replies.iter().map(|x| x.text.as_str()).collect();
            let text = match text.is_empty() {
                true => bot_replies::VOICE_TICKET_WAITING.to_string(),
                false => text.join(" "),
            };
            let mut out = reply(&speech::speakable(&text, 4), Action::Hangup);
            out.ticket_code = r.ticket_code.clone();
            return out;
        }
        if leaving {
            // A farewell, not an offer of more help nor "please hold".
            let say = match r.intent.as_str() {
                "handoff_active" => replies::GOODBYE_AFTER_TRANSFER,
                _ => bot_replies::GOODBYE,
            };
            return reply(say, Action::Hangup);
        }
        if r.handoff {
            st.transferred = true;
            let mut say = bot_replies::VOICE_TRANSFER.to_string();
            if let Some(c) = &r.ticket_code {
                say.push(' ');
                say.push_str(&bot_replies::voice_ticket(c));
            }
            return self.transfer_reply(&say, r.ticket_code.clone());
        }
        st.transferred = false;
        if r.intent == "greeting" {
            // The call opened with who is speaking: a hello is answered briefly.
            return reply(replies::LISTENING, Action::Continue);
        }
        let goodbye = r.intent == "goodbye";
        let mut parts = Vec::new();
        let mut rest = Vec::new();
        let mut items_left = 0;
        let mut human = false;
        for x in &r.replies {
            human |= x
                .quick_replies
                .iter()
                .any(|q| q == bot_replies::QUICK_HUMAN);
            let options: Vec<&String> = x
                .quick_replies
                .iter()
                .filter(|q| q.as_str() != bot_replies::QUICK_HUMAN)
                .collect();
            if options.len() >= 2 {
                st.options = true;
                let list: Vec<String> = options
                    .iter()
                    .enumerate()
                    .map(|(i, q)| format!("{}. {}", i + 1, q.trim_end_matches('?')))
                    .collect();
                parts.push(speech::whole(&format!(
                    "{}\n{}",
                    bot_replies::VOICE_CHOOSE,
                    list.join("\n")
                )));
            } else {
                // Each answer of a message that asked several questions is read.
                let cut = speech::cut(&x.text, self.cfg.max_sentences, speech::MAX_WORDS);
                parts.push(cut.said);
                if rest.is_empty() {
                    rest = cut.rest;
                    items_left = cut.items_left;
                }
            }
        }
        let mut say = parts.join(" ");
        // The way to a person a screen shows as a button, said when the words do not.
        let human = human && !goodbye && !speech::words(&say).contains("gặp nhân viên");
        if !rest.is_empty() && !goodbye {
            if items_left > 0 {
                say = format!("{say} {}", replies::items_left(items_left));
            }
            let offer = match human {
                true => replies::OFFER_MORE_OR_HUMAN,
                false => replies::OFFER_MORE,
            };
            say = format!("{say} {offer}");
            st.rest = rest;
        } else if human {
            say = format!("{say} {}", replies::OFFER_HUMAN);
        }
        let mut out = reply(
            &say,
            if goodbye {
                Action::Hangup
            } else {
                Action::Continue
            },
        );
        out.dtmf = human;
        out
    }
}
