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
use crate::store::{Inbound, Outbound, Store, StoreError, StoredMessage, TurnRecord};

/// Longest customer message accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Api,
    Web,
}

impl Channel {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api" => Some(Channel::Api),
            "web" => Some(Channel::Web),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Api => "api",
            Channel::Web => "web",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IncomingMessage {
    pub channel: Channel,
    pub user_id: String,
    pub message_id: String,
    pub text: String,
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
}

/// A stored message pushed to live listeners (the web widget's event stream).
#[derive(Debug, Clone)]
pub struct LiveMessage {
    pub conversation_id: String,
    pub message: StoredMessage,
}

/// What a turn produced, whoever produced it (the bot, or silence during a hand-off).
struct Finished {
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
    /// Turns of one channel identity run one at a time.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    live: broadcast::Sender<LiveMessage>,
}

impl ConversationService {
    pub fn new(store: Store, bot: Arc<Bot>) -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            store,
            bot,
            locks: Mutex::new(HashMap::new()),
            live,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn bot(&self) -> &Arc<Bot> {
        &self.bot
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveMessage> {
        self.live.subscribe()
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().expect("lock map");
        map.entry(key.to_string()).or_default().clone()
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
        if msg.text.trim().is_empty() {
            return invalid("text", "must not be empty");
        }
        if msg.text.chars().count() > MAX_TEXT_CHARS {
            return invalid("text", "is longer than 2000 characters");
        }
        Ok(())
    }

    pub async fn handle(&self, msg: IncomingMessage) -> Result<TurnResponse, ServiceError> {
        Self::validate(&msg)?;
        let text = crate::text::nfc(msg.text.trim());
        let key = format!("{}:{}", msg.channel.as_str(), msg.user_id);
        let lock = self.lock_for(&key);
        let _turn = lock.lock().await;

        let conv = self
            .store
            .resolve_conversation(msg.channel.as_str(), &msg.user_id)
            .await?;
        let span =
            tracing::info_span!("turn", conversation_id = %conv.id, channel = msg.channel.as_str());
        self.turn(conv, msg, text).instrument(span).await
    }

    async fn turn(
        &self,
        conv: crate::store::Conversation,
        msg: IncomingMessage,
        text: String,
    ) -> Result<TurnResponse, ServiceError> {
        let message_id = match self
            .store
            .insert_inbound(&conv.id, msg.channel.as_str(), &msg.message_id, &text)
            .await?
        {
            Inbound::Duplicate(id) => {
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
        let turn = if conv.status == "handoff" {
            // A human owns the conversation: the bot stays silent.
            Finished {
                replies: Vec::new(),
                intent: "handoff_active",
                decision: None,
                handoff_reason: None,
                handoff: true,
                state: conv.state.clone(),
            }
        } else {
            let before = state.clone();
            let outcome = self.bot.turn(&mut state, &text).await;
            if let Some(phone) = verified_phone(&before, &state) {
                tracing::info!(phone = %mask_phone(&phone), "customer verified");
                self.store
                    .set_customer_phone(&conv.customer_id, &phone)
                    .await?;
            }
            Finished {
                replies: outcome.replies,
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
            })
            .expect("json")
        };
        let stored = self
            .store
            .finish_turn(TurnRecord {
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
                status: if turn.handoff { "handoff" } else { "bot" },
                response: &make_response,
            })
            .await?;
        let response: TurnResponse = serde_json::from_str(&stored).expect("json");
        tracing::info!(
            intent = turn.intent,
            decision = ?response.decision.as_ref().map(|d| d.decision),
            handoff = ?turn.handoff_reason,
            "turn answered"
        );
        for r in &response.replies {
            let _ = self.live.send(LiveMessage {
                conversation_id: conv.id.clone(),
                message: StoredMessage {
                    id: r.id.clone(),
                    direction: "out".into(),
                    author: "bot".into(),
                    text: r.text.clone(),
                    quick_replies: r.quick_replies.clone(),
                    created_at: String::new(),
                },
            });
        }
        Ok(response)
    }
}
