//! The optional hosted LLM (any OpenAI-compatible chat-completions endpoint) through
//! async-openai. It only rewrites what retrieval already chose and summarizes
//! hand-offs; every reply it writes is checked (citations, numbers) and replaced by
//! the knowledge base's own text when the check or the call fails.

pub mod grounding;
pub mod prompts;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::Semaphore;

pub use grounding::{Grounded, Rejection, SourceEntry};
pub use prompts::{PromptError, Prompts};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// OpenAI-compatible base URL (`https://api.openai.com/v1`, a vLLM or Ollama
    /// server's `/v1`). Unset: no LLM.
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub model: Option<String>,
    /// Budget of a customer-facing rewrite (the answer waits for it).
    pub timeout_ms: u64,
    /// Budget of a hand-off summary (written after the customer is answered).
    pub summary_timeout_ms: u64,
    pub max_concurrent: usize,
    /// Stream customer-facing completions (server-sent events).
    pub stream: bool,
    /// Directory of the prompt templates (built-in copies are used for missing files).
    pub prompts: std::path::PathBuf,
    /// How the bot names the shop in prompts.
    pub shop_name: String,
    pub temperature: f32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            api_key: None,
            model: None,
            timeout_ms: 4000,
            summary_timeout_ms: 15000,
            max_concurrent: 4,
            stream: true,
            prompts: "prompts".into(),
            shop_name: "cửa hàng".into(),
            temperature: 0.2,
        }
    }
}

impl LlmConfig {
    pub fn enabled(&self) -> bool {
        self.base_url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty())
            && self.model.as_deref().is_some_and(|m| !m.trim().is_empty())
    }
}

#[derive(Debug, Error)]
pub enum LlmError {
    #[error("timed out")]
    Timeout,
    #[error("temporary failure: {0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

/// Counters for the operations view.
#[derive(Debug, Default)]
pub struct LlmStats {
    pub calls: AtomicU64,
    pub accepted: AtomicU64,
    pub fallbacks: AtomicU64,
    pub timeouts: AtomicU64,
    pub errors: AtomicU64,
}

pub struct Llm {
    client: async_openai::Client<OpenAIConfig>,
    cfg: LlmConfig,
    model: String,
    prompts: Prompts,
    permits: Semaphore,
    warned: AtomicBool,
    pub stats: LlmStats,
}

fn classify(e: async_openai::error::OpenAIError) -> LlmError {
    use async_openai::error::OpenAIError as E;
    match e {
        E::Reqwest(e) if e.is_timeout() => LlmError::Timeout,
        E::Reqwest(e) => match e.status() {
            Some(s) if s.is_client_error() && s.as_u16() != 429 => {
                LlmError::Permanent(e.to_string())
            }
            _ => LlmError::Transient(e.to_string()),
        },
        E::ApiError(a) => {
            let m = a.to_string();
            // async-openai reports 5xx and 429 as API errors too.
            if matches!(
                a.r#type.as_deref(),
                Some("server_error") | Some("rate_limit_exceeded")
            ) || m.contains("overloaded")
            {
                LlmError::Transient(m)
            } else {
                LlmError::Permanent(m)
            }
        }
        E::StreamError(s) => LlmError::Transient(s.to_string()),
        other => LlmError::Permanent(other.to_string()),
    }
}

impl Llm {
    pub fn new(cfg: LlmConfig, prompts: Prompts) -> Self {
        let mut oc = OpenAIConfig::new().with_api_base(
            cfg.base_url
                .clone()
                .unwrap_or_default()
                .trim_end_matches('/'),
        );
        if let Some(k) = &cfg.api_key {
            oc = oc.with_api_key(k.clone());
        }
        // No hidden retries: the caller retries once within its own time budget.
        let backoff = backoff::ExponentialBackoff {
            max_elapsed_time: Some(Duration::ZERO),
            ..Default::default()
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        Self {
            client: async_openai::Client::with_config(oc)
                .with_http_client(http)
                .with_backoff(backoff),
            model: cfg.model.clone().unwrap_or_default(),
            permits: Semaphore::new(cfg.max_concurrent.max(1)),
            cfg,
            prompts,
            warned: AtomicBool::new(false),
            stats: LlmStats::default(),
        }
    }

    pub fn prompts(&self) -> &Prompts {
        &self.prompts
    }

    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    async fn once(&self, system: &str, user: &str, stream: bool) -> Result<String, LlmError> {
        let messages: Vec<ChatCompletionRequestMessage> = vec![
            ChatCompletionRequestSystemMessage::from(system).into(),
            ChatCompletionRequestUserMessage::from(user).into(),
        ];
        let request = CreateChatCompletionRequestArgs::default()
            .model(self.model.clone())
            .messages(messages)
            .temperature(self.cfg.temperature)
            .max_completion_tokens(400u32)
            .build()
            .map_err(|e| LlmError::Permanent(e.to_string()))?;
        if stream {
            use futures_util::StreamExt;
            let mut s = self
                .client
                .chat()
                .create_stream(request)
                .await
                .map_err(classify)?;
            let mut out = String::new();
            while let Some(chunk) = s.next().await {
                let chunk = chunk.map_err(classify)?;
                for c in chunk.choices {
                    if let Some(t) = c.delta.content {
                        out.push_str(&t);
                    }
                }
            }
            Ok(out)
        } else {
            let r = self.client.chat().create(request).await.map_err(classify)?;
            Ok(r.choices
                .into_iter()
                .next()
                .and_then(|c| c.message.content)
                .unwrap_or_default())
        }
    }

    /// One completion within `budget`: a temporary failure is retried once if time
    /// remains; a permanent one is logged once per process.
    pub async fn complete(
        &self,
        system: &str,
        user: &str,
        budget: Duration,
        stream: bool,
    ) -> Result<String, LlmError> {
        let start = Instant::now();
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let result = async {
            let _permit = tokio::time::timeout(budget, self.permits.acquire())
                .await
                .map_err(|_| LlmError::Timeout)?
                .map_err(|_| LlmError::Permanent("closed".into()))?;
            let mut tried = false;
            loop {
                let left = budget.saturating_sub(start.elapsed());
                let r = match tokio::time::timeout(left, self.once(system, user, stream)).await {
                    Ok(r) => r,
                    Err(_) => Err(LlmError::Timeout),
                };
                match r {
                    Err(LlmError::Transient(e)) if !tried && start.elapsed() < budget / 2 => {
                        tracing::debug!(error = %e, "LLM call failed, retrying once");
                        tried = true;
                    }
                    other => return other,
                }
            }
        }
        .await;
        match &result {
            Err(LlmError::Timeout) => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    elapsed_ms = start.elapsed().as_millis() as u64,
                    "LLM call timed out"
                );
            }
            Err(LlmError::Permanent(e)) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, "LLM call failed permanently; answers fall back to the knowledge base (logged once)");
                }
            }
            Err(LlmError::Transient(e)) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "LLM call failed");
            }
            Ok(_) => {}
        }
        result
    }

    /// A natural reply grounded in `entries` (retrieval's choice first), or why the
    /// knowledge base's own text must be sent instead.
    pub async fn grounded_answer(
        &self,
        customer: &str,
        entries: &[SourceEntry],
        max_sentences: usize,
    ) -> Result<Grounded, Rejection> {
        let system = self
            .prompts
            .system(&self.cfg.shop_name)
            .map_err(Rejection::Prompt)?;
        let user = self
            .prompts
            .grounded_answer(customer, entries, max_sentences)
            .map_err(Rejection::Prompt)?;
        let budget = Duration::from_millis(self.cfg.timeout_ms);
        let out = self
            .complete(&system, &user, budget, self.cfg.stream)
            .await
            .map_err(Rejection::Call);
        // The system prompt only: the user prompt holds the entries, which a good
        // reply may quote.
        let checked = out.and_then(|text| grounding::check(&text, entries, &system));
        match &checked {
            Ok(_) => self.stats.accepted.fetch_add(1, Ordering::Relaxed),
            Err(r) => {
                tracing::info!(reason = %r, "LLM reply rejected; the knowledge answer is sent");
                self.stats.fallbacks.fetch_add(1, Ordering::Relaxed)
            }
        };
        checked
    }

    /// The clarify question, phrased for the customer's words; `None` on any problem.
    pub async fn clarify(&self, customer: &str, options: &[String]) -> Option<String> {
        let system = self.prompts.system(&self.cfg.shop_name).ok()?;
        let user = self.prompts.clarify(customer, options).ok()?;
        let budget = Duration::from_millis(self.cfg.timeout_ms);
        let text = self
            .complete(&system, &user, budget, self.cfg.stream)
            .await
            .ok()?;
        match grounding::check_clarify(&text, options, &system) {
            Ok(t) => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                Some(t)
            }
            Err(r) => {
                tracing::info!(reason = %r, "LLM clarify rejected");
                self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// 2–3 sentences for the agent; `None` when the call fails.
    pub async fn summary(&self, reason: &str, transcript: &[(String, String)]) -> Option<String> {
        let system = self.prompts.system(&self.cfg.shop_name).ok()?;
        let user = self.prompts.handoff_summary(reason, transcript).ok()?;
        let budget = Duration::from_millis(self.cfg.summary_timeout_ms);
        let text = self.complete(&system, &user, budget, false).await.ok()?;
        let text = text.trim();
        (!text.is_empty() && text.chars().count() <= 1200).then(|| text.to_string())
    }
}
