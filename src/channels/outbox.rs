//! The outbox worker: every message for a platform channel is stored with an outbox
//! row in the same transaction as the message; this worker sends them through the
//! adapters, retries temporary failures with exponential backoff, records permanent
//! failures (agents see them), and resumes whatever is pending after a restart.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Notify};

use super::{Adapters, Channel, Delivery, SendError};
use crate::store::{OutboxItem, Store};

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// First retry delay; doubles on each further failure.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Attempts before a temporary failure is recorded as permanent.
    pub max_attempts: u32,
    /// Timeout of one platform request.
    pub timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retry_base_ms: 2_000,
            retry_max_ms: 300_000,
            max_attempts: 12,
            timeout_ms: 10_000,
        }
    }
}

impl RetryPolicy {
    /// Delay before the next attempt after `failures` failed ones.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u64 << failures.saturating_sub(1).min(20);
        Duration::from_millis(
            self.retry_base_ms
                .saturating_mul(factor)
                .min(self.retry_max_ms),
        )
    }
}

pub struct Outbox {
    store: Store,
    adapters: Adapters,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    /// Conversation ids whose delivery failed for good (the agent console listens).
    failed: broadcast::Sender<String>,
}

impl Outbox {
    pub fn new(
        store: Store,
        adapters: Adapters,
        policy: RetryPolicy,
        wake: Arc<Notify>,
        failed: broadcast::Sender<String>,
    ) -> Self {
        Self {
            store,
            adapters,
            policy,
            wake,
            failed,
        }
    }

    /// Runs until the process stops.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.clone().pass().await {
                tracing::warn!(error = %e, "outbox pass failed");
            }
            let wait = match self.store.outbox_next_due().await {
                Ok(Some(t)) => chrono::DateTime::parse_from_rfc3339(&t)
                    .map(|t| {
                        (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
                            .to_std()
                            .unwrap_or(Duration::ZERO)
                    })
                    .unwrap_or(Duration::ZERO)
                    .min(Duration::from_secs(5)),
                Ok(None) => Duration::from_secs(5),
                Err(_) => Duration::from_secs(1),
            };
            if !wait.is_zero() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// Sends every due message once (conversations in parallel, each in order).
    async fn pass(self: Arc<Self>) -> Result<usize, crate::store::StoreError> {
        let items = self.store.outbox_due(64).await?;
        let n = items.len();
        let mut set = tokio::task::JoinSet::new();
        for item in items {
            let me = self.clone();
            set.spawn(async move { me.deliver(item).await });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot record a delivery"),
                Err(e) => tracing::error!(error = %e, "delivery task panicked"),
                Ok(Ok(())) => {}
            }
        }
        Ok(n)
    }

    async fn deliver(&self, item: OutboxItem) -> Result<(), crate::store::StoreError> {
        let adapter = Channel::parse(&item.channel).and_then(|c| self.adapters.get(c));
        let Some(adapter) = adapter else {
            return self
                .fail(
                    &item,
                    &format!("channel {} is not configured", item.channel),
                )
                .await;
        };
        let since_customer = item
            .last_inbound_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| chrono::Utc::now() - t.with_timezone(&chrono::Utc));
        let delivery = Delivery {
            recipient: item.recipient.clone(),
            account: item.account.clone(),
            text: item.text.clone(),
            quick_replies: item.quick_replies.clone(),
            author: item.author.clone(),
            since_customer,
            skip_parts: item.parts_sent,
        };
        let result = match adapter.send(&delivery).await {
            // Parts delivered before the failure are kept, so a retry sends only
            // the rest and the customer does not read them twice.
            Err(SendError::Partial { sent, error }) => {
                self.store
                    .outbox_parts_sent(&item.message_id, item.parts_sent + sent)
                    .await?;
                Err(*error)
            }
            other => other,
        };
        match result {
            Ok(platform_id) => {
                tracing::info!(conversation_id = %item.conversation_id, channel = %item.channel, attempts = item.attempts + 1, "delivered");
                self.store
                    .outbox_attempt(&item.message_id, "sent", None, platform_id.as_deref(), None)
                    .await
            }
            Err(SendError::Permanent(e)) => self.fail(&item, &e).await,
            Err(e @ SendError::Partial { .. }) => self.fail(&item, &e.to_string()).await,
            Err(SendError::Transient(e)) => {
                let failures = item.attempts as u32 + 1;
                if failures >= self.policy.max_attempts {
                    return self
                        .fail(&item, &format!("gave up after {failures} attempts: {e}"))
                        .await;
                }
                let next = chrono::Utc::now()
                    + chrono::Duration::from_std(self.policy.backoff(failures)).unwrap_or_default();
                tracing::warn!(conversation_id = %item.conversation_id, channel = %item.channel, error = %e, failures, "delivery failed, will retry");
                self.store
                    .outbox_attempt(
                        &item.message_id,
                        "pending",
                        Some(&e),
                        None,
                        Some(&next.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
                    )
                    .await
            }
        }
    }

    async fn fail(&self, item: &OutboxItem, error: &str) -> Result<(), crate::store::StoreError> {
        tracing::error!(conversation_id = %item.conversation_id, channel = %item.channel, error, "delivery failed permanently");
        self.store
            .outbox_attempt(&item.message_id, "failed", Some(error), None, None)
            .await?;
        let _ = self.failed.send(item.conversation_id.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            retry_base_ms: 1000,
            retry_max_ms: 5000,
            ..Default::default()
        };
        let got: Vec<Duration> = (1..=5).map(|f| p.backoff(f)).collect();
        let ms = |v: u64| Duration::from_millis(v);
        assert_eq!(got, vec![ms(1000), ms(2000), ms(4000), ms(5000), ms(5000)]);
    }
}
