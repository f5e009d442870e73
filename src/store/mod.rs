//! Storage: the embedded SQLite database (one file under the data directory) with
//! migrations. The only module that writes SQL.

use std::path::Path;
use std::str::FromStr;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("data directory {0}: {1}")]
    Dir(String, std::io::Error),
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    pub id: String,
    pub customer_id: String,
    pub channel: String,
    pub channel_user_id: String,
    pub status: String,
    pub state: String,
    pub handoff_reason: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredMessage {
    pub id: String,
    pub direction: String,
    pub author: String,
    pub text: String,
    pub quick_replies: Vec<String>,
    pub created_at: String,
    /// For messages pushed to a platform: `pending`, `sent` or `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_error: Option<String>,
    /// On the hotline: what the caller heard for this bot message ("" for a message
    /// whose words were read out with the turn's first one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spoken: Option<String>,
}

pub enum Inbound {
    New(String),
    /// Already stored: its id and the text stored under the message id.
    Duplicate {
        id: String,
        text: String,
    },
}

pub struct Outbound {
    pub text: String,
    pub quick_replies: Vec<String>,
}

/// A message an agent action sends to the customer.
#[derive(Clone, Copy)]
pub struct CustomerMessage<'a> {
    pub author: &'a str,
    pub text: &'a str,
    pub quick_replies: &'a [String],
    /// Queue it in the outbox (platform channels).
    pub deliver: bool,
}

/// A ticket opened by a turn that hands the conversation to a human.
pub struct NewTicket {
    pub code: String,
    pub customer_id: String,
    pub priority: String,
    pub department: String,
    pub reason: String,
    pub intent: String,
    pub summary: String,
    pub context: String,
    pub sla_due_at: String,
}

/// Everything a finished turn writes, in one transaction.
pub struct TurnRecord<'a> {
    pub ticket: Option<NewTicket>,
    pub conversation_id: &'a str,
    pub message_id: &'a str,
    pub channel: &'a str,
    pub outbound: &'a [Outbound],
    pub intent: &'a str,
    pub decision: Option<String>,
    pub handoff_reason: Option<&'a str>,
    pub state: String,
    pub status: &'a str,
    /// Queue the replies in the outbox (platform channels).
    pub deliver: bool,
    /// Builds the stored response from the ids given to the outbound messages.
    pub response: &'a (dyn Fn(&[String]) -> String + Sync),
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// SQLite has one writer at a time; a transaction that starts reading and then
    /// writes fails with SQLITE_BUSY instead of waiting when another writer is active.
    /// Writers queue here instead (measured: 14 of 64 turns failed at concurrency 16
    /// without it).
    write: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Opens (creating if needed) `cskh.db` under `data` and applies migrations.
    pub async fn open(data: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data)
            .map_err(|e| StoreError::Dir(data.display().to_string(), e))?;
        let url = format!("sqlite://{}", data.join("cskh.db").display());
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            write: Default::default(),
        })
    }

    pub fn pool(&self) -> SqlitePool {
        self.pool.clone()
    }

    /// The open conversation of a channel identity, creating customer, identity and
    /// conversation as needed.
    pub async fn resolve_conversation(
        &self,
        channel: &str,
        user_id: &str,
        account: Option<&str>,
    ) -> Result<Conversation, StoreError> {
        let _writer = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let customer: Option<(String,)> = sqlx::query_as(
            "SELECT customer_id FROM identities WHERE channel = ? AND channel_user_id = ?",
        )
        .bind(channel)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let customer_id = match customer {
            Some((id,)) => id,
            None => {
                let id = new_id();
                let t = now();
                sqlx::query("INSERT INTO customers (id, created_at) VALUES (?, ?)")
                    .bind(&id)
                    .bind(&t)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO identities (channel, channel_user_id, customer_id, created_at, account)
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(channel)
                .bind(user_id)
                .bind(&id)
                .bind(&t)
                .bind(account)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        if let Some(a) = account {
            sqlx::query(
                "UPDATE identities SET account = ? WHERE channel = ? AND channel_user_id = ?
                 AND account IS NOT ?",
            )
            .bind(a)
            .bind(channel)
            .bind(user_id)
            .bind(a)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(
            "SELECT * FROM conversations WHERE channel = ? AND channel_user_id = ?
             AND status != 'closed' ORDER BY created_at DESC LIMIT 1",
        )
        .bind(channel)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let conv = match row {
            Some(r) => conversation_from_row(&r),
            None => {
                let t = now();
                let c = Conversation {
                    id: new_id(),
                    customer_id,
                    channel: channel.to_string(),
                    channel_user_id: user_id.to_string(),
                    status: "bot".into(),
                    state: "{}".into(),
                    handoff_reason: None,
                    created_at: t.clone(),
                };
                sqlx::query(
                    "INSERT INTO conversations (id, customer_id, channel, channel_user_id,
                     status, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&c.id)
                .bind(&c.customer_id)
                .bind(&c.channel)
                .bind(&c.channel_user_id)
                .bind(&c.status)
                .bind(&c.state)
                .bind(&t)
                .bind(&t)
                .execute(&mut *tx)
                .await?;
                c
            }
        };
        tx.commit().await?;
        Ok(conv)
    }

    pub async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query("SELECT * FROM conversations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(conversation_from_row))
    }

    /// The latest conversation of a channel identity, if any.
    pub async fn latest_conversation(
        &self,
        channel: &str,
        user_id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM conversations WHERE channel = ? AND channel_user_id = ?
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(channel)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(conversation_from_row))
    }

    /// Stores an inbound message before anything answers it; a repeated message id
    /// from the same sender on the same channel is reported as a duplicate (with the
    /// text stored under it) and stores nothing. Ids are per sender: another sender's
    /// message with the same id is a new message.
    pub async fn insert_inbound(
        &self,
        conversation_id: &str,
        channel: &str,
        sender: &str,
        channel_message_id: &str,
        text: &str,
    ) -> Result<Inbound, StoreError> {
        let _writer = self.write.lock().await;
        let id = new_id();
        let done = sqlx::query(
            "INSERT INTO messages (id, conversation_id, direction, author, text, channel,
             sender, channel_message_id, created_at)
             VALUES (?, ?, 'in', 'customer', ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(conversation_id)
        .bind(text)
        .bind(channel)
        .bind(sender)
        .bind(channel_message_id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Inbound::New(id));
        }
        let (id, text): (String, String) = sqlx::query_as(
            "SELECT id, text FROM messages WHERE channel = ? AND sender = ?
             AND channel_message_id = ? AND direction = 'in'",
        )
        .bind(channel)
        .bind(sender)
        .bind(channel_message_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Inbound::Duplicate { id, text })
    }

    /// The stored response of an answered inbound message.
    pub async fn turn_response(&self, message_id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT response FROM turns WHERE message_id = ?")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0))
    }

    /// Writes the bot's replies, the decision and the new conversation state at once.
    pub async fn finish_turn(&self, t: TurnRecord<'_>) -> Result<String, StoreError> {
        let _writer = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::with_capacity(t.outbound.len());
        for o in t.outbound {
            let m = CustomerMessage {
                author: "bot",
                text: &o.text,
                quick_replies: &o.quick_replies,
                deliver: t.deliver,
            };
            ids.push(insert_outbound(&mut tx, t.conversation_id, t.channel, m, &now()).await?);
        }
        let response = (t.response)(&ids);
        sqlx::query(
            "INSERT INTO turns (message_id, conversation_id, intent, decision, handoff_reason,
             response, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.message_id)
        .bind(t.conversation_id)
        .bind(t.intent)
        .bind(&t.decision)
        .bind(t.handoff_reason)
        .bind(&response)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE conversations SET state = ?, status = ?,
             handoff_reason = COALESCE(?, handoff_reason), updated_at = ? WHERE id = ?",
        )
        .bind(&t.state)
        .bind(t.status)
        .bind(t.handoff_reason)
        .bind(now())
        .bind(t.conversation_id)
        .execute(&mut *tx)
        .await?;
        if let Some(k) = &t.ticket {
            let at = now();
            sqlx::query(
                "INSERT INTO tickets (id, code, conversation_id, customer_id, priority, department,
                 status, reason, intent, summary, context, sla_due_at, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(new_id())
            .bind(&k.code)
            .bind(t.conversation_id)
            .bind(&k.customer_id)
            .bind(&k.priority)
            .bind(&k.department)
            .bind(&k.reason)
            .bind(&k.intent)
            .bind(&k.summary)
            .bind(&k.context)
            .bind(&k.sla_due_at)
            .bind(&at)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(response)
    }

    /// The customer's messages in a conversation, oldest first.
    pub async fn customer_messages(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT text FROM messages WHERE conversation_id = ? AND direction = 'in'
             ORDER BY created_at, rowid",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Records what a caller heard for a stored bot message.
    pub async fn set_spoken(&self, message_id: &str, spoken: &str) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query("UPDATE messages SET spoken = ? WHERE id = ? AND author = 'bot'")
            .bind(spoken)
            .bind(message_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn messages(&self, conversation_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.direction, m.author, m.text, m.quick_replies, m.created_at,
             m.spoken, o.status AS delivery, o.last_error AS delivery_error
             FROM messages m LEFT JOIN outbox o ON o.message_id = m.id
             WHERE m.conversation_id = ? ORDER BY m.created_at, m.rowid",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StoredMessage {
                id: r.get("id"),
                direction: r.get("direction"),
                author: r.get("author"),
                text: r.get("text"),
                quick_replies: r
                    .get::<Option<String>, _>("quick_replies")
                    .and_then(|q| serde_json::from_str(&q).ok())
                    .unwrap_or_default(),
                created_at: r.get("created_at"),
                delivery: r.get("delivery"),
                spoken: r.get("spoken"),
                delivery_error: r.get::<Option<String>, _>("delivery_error").filter(|_| {
                    r.get::<Option<String>, _>("delivery").as_deref() == Some("failed")
                }),
            })
            .collect())
    }

    /// Intents and hand-off reasons recorded for a conversation, oldest first.
    pub async fn turns(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT intent, handoff_reason FROM turns WHERE conversation_id = ? ORDER BY created_at",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

fn conversation_from_row(r: &sqlx::sqlite::SqliteRow) -> Conversation {
    Conversation {
        id: r.get("id"),
        customer_id: r.get("customer_id"),
        channel: r.get("channel"),
        channel_user_id: r.get("channel_user_id"),
        status: r.get("status"),
        state: r.get("state"),
        handoff_reason: r.get("handoff_reason"),
        created_at: r.get("created_at"),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketRow {
    pub id: String,
    pub code: String,
    pub conversation_id: String,
    pub customer_id: String,
    pub priority: String,
    pub department: String,
    pub status: String,
    pub reason: String,
    pub intent: String,
    pub summary: String,
    pub context: serde_json::Value,
    pub assignee: Option<String>,
    pub sla_due_at: String,
    pub created_at: String,
    pub csat: Option<i64>,
    pub csat_comment: Option<String>,
    /// Written by the LLM after the hand-off, when one is configured.
    pub ai_summary: Option<String>,
    /// How a ticket ended other than by an agent (`withdrawn`), if it did.
    pub resolution: Option<String>,
}

/// One line of the hand-off queue ([`Store::ticket_summaries`]).
#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub id: String,
    pub code: String,
    pub priority: String,
    pub department: String,
    pub status: String,
    pub reason: String,
    pub intent: String,
    pub summary: String,
    pub assignee: Option<String>,
    pub sla_due_at: String,
    pub created_at: String,
    pub ai_summary: Option<String>,
    /// The channel of the handed-off conversation.
    pub channel: Option<String>,
    /// The number to call back, for a caller promised a call-back.
    pub callback: Option<String>,
}

fn ticket_from_row(r: &sqlx::sqlite::SqliteRow) -> TicketRow {
    TicketRow {
        id: r.get("id"),
        code: r.get("code"),
        conversation_id: r.get("conversation_id"),
        customer_id: r.get("customer_id"),
        priority: r.get("priority"),
        department: r.get("department"),
        status: r.get("status"),
        reason: r.get("reason"),
        intent: r.get("intent"),
        summary: r.get("summary"),
        context: serde_json::from_str(&r.get::<String, _>("context")).unwrap_or_default(),
        assignee: r.get("assignee"),
        sla_due_at: r.get("sla_due_at"),
        created_at: r.get("created_at"),
        csat: r.get("csat"),
        csat_comment: r.get("csat_comment"),
        ai_summary: r.get("ai_summary"),
        resolution: r.get("resolution"),
    }
}

/// Agents, their bearer tokens, tickets and the audit log.
impl Store {
    /// Creates an account, or sets the password of an existing one (enabling it
    /// again if it was disabled). `username` is the canonical (lower-case) name.
    pub async fn create_agent(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query(
            "INSERT INTO agents (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT(username) DO UPDATE SET password_hash = excluded.password_hash,
             disabled_at = NULL",
        )
        .bind(new_id())
        .bind(username)
        .bind(password_hash)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// (agent id, password hash) of an enabled account's (canonical) username.
    pub async fn agent_credentials(
        &self,
        username: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, password_hash FROM agents WHERE username = ? AND disabled_at IS NULL",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every account: (username, created_at, disabled_at), by name.
    pub async fn agents(&self) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        Ok(
            sqlx::query_as(
                "SELECT username, created_at, disabled_at FROM agents ORDER BY username",
            )
            .fetch_all(&self.pool)
            .await?,
        )
    }

    /// Disables an account (by its exact stored name): it can no longer sign in, its
    /// tokens are deleted, and the open tickets it held go back to the queue (`new`,
    /// no holder), all in one transaction. `Ok(false)`: no such account.
    pub async fn disable_agent(&self, username: &str) -> Result<bool, StoreError> {
        let _writer = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM agents WHERE username = ?")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((id,)) = row else {
            return Ok(false);
        };
        let at = now();
        sqlx::query("UPDATE agents SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?")
            .bind(&at)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM agent_tokens WHERE agent_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE tickets SET assignee = NULL, status = 'new', updated_at = ?
             WHERE assignee = ? AND status IN ('new', 'in_progress', 'waiting_customer')",
        )
        .bind(&at)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn insert_token(
        &self,
        token_hash: &str,
        agent_id: &str,
        expires_at: &str,
    ) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query("INSERT INTO agent_tokens (token_hash, agent_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(token_hash)
            .bind(agent_id)
            .bind(now())
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The agent behind an unexpired token.
    pub async fn agent_for_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT t.agent_id FROM agent_tokens t JOIN agents a ON a.id = t.agent_id
             WHERE t.token_hash = ? AND t.expires_at > ? AND a.disabled_at IS NULL",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    pub async fn tickets(&self, open_only: bool) -> Result<Vec<TicketRow>, StoreError> {
        let sql = if open_only {
            "SELECT * FROM tickets WHERE status IN ('new', 'in_progress', 'waiting_customer')
             ORDER BY priority, sla_due_at"
        } else {
            "SELECT * FROM tickets ORDER BY priority, sla_due_at"
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(ticket_from_row).collect())
    }

    /// The queue as a list: each ticket's own fields and its channel, without the
    /// hand-off context (an agent opens one ticket at a time).
    pub async fn ticket_summaries(
        &self,
        open_only: bool,
    ) -> Result<Vec<TicketSummary>, StoreError> {
        let filter = if open_only {
            "WHERE t.status IN ('new', 'in_progress', 'waiting_customer')"
        } else {
            ""
        };
        let sql = format!(
            "SELECT t.id, t.code, t.priority, t.department, t.status, t.reason, t.intent,
                    t.summary, t.assignee, t.sla_due_at, t.created_at, t.ai_summary, c.channel,
                    json_extract(t.context, '$.callback.number') AS callback
             FROM tickets t LEFT JOIN conversations c ON c.id = t.conversation_id
             {filter} ORDER BY t.priority, t.sla_due_at"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| TicketSummary {
                id: r.get("id"),
                code: r.get("code"),
                priority: r.get("priority"),
                department: r.get("department"),
                status: r.get("status"),
                reason: r.get("reason"),
                intent: r.get("intent"),
                summary: r.get("summary"),
                assignee: r.get("assignee"),
                sla_due_at: r.get("sla_due_at"),
                created_at: r.get("created_at"),
                ai_summary: r.get("ai_summary"),
                channel: r.get("channel"),
                callback: r.get("callback"),
            })
            .collect())
    }

    /// A customer message on a handed-off conversation: `waiting_customer` → `in_progress`.
    pub async fn customer_replied(&self, conversation_id: &str) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query(
            "UPDATE tickets SET status = 'in_progress', updated_at = ? WHERE conversation_id = ?
             AND status = 'waiting_customer'",
        )
        .bind(now())
        .bind(conversation_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn open_ticket_count(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM tickets WHERE status IN ('new', 'in_progress', 'waiting_customer')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    pub async fn ticket(&self, id: &str) -> Result<Option<TicketRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM tickets WHERE id = ? OR code = ?")
            .bind(id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(ticket_from_row))
    }

    pub async fn customer_phone(&self, customer_id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT phone FROM customers WHERE id = ?")
                .bind(customer_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|r| r.0))
    }

    /// Applies an agent action to a ticket (and its conversation), with an audit row
    /// and, when given, a message to the customer — all in one transaction, after
    /// checking the ticket as it is in that transaction: an action on a resolved or
    /// closed ticket, or on a ticket another agent holds (except `take_over`), is
    /// refused and changes nothing. `claim`, `take_over` and `reply` make the agent
    /// the holder. `ticket_status` `None` keeps the status (a new ticket becomes
    /// `in_progress`).
    #[allow(clippy::too_many_arguments)]
    pub async fn agent_action(
        &self,
        agent_id: &str,
        ticket: &TicketRow,
        action: &str,
        ticket_status: Option<&str>,
        conversation_status: &str,
        message: Option<CustomerMessage<'_>>,
    ) -> Result<Result<Option<String>, Refusal>, StoreError> {
        let _writer = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let (status, assignee) = match holder_check(&mut tx, &ticket.id, agent_id).await? {
            Ok(held) => held,
            Err(Refusal::Taken) if action == "take_over" => {
                let (status, assignee): (String, Option<String>) =
                    sqlx::query_as("SELECT status, assignee FROM tickets WHERE id = ?")
                        .bind(&ticket.id)
                        .fetch_one(&mut *tx)
                        .await?;
                (status, assignee)
            }
            Err(refused) => return Ok(Err(refused)),
        };
        let ticket_status = match ticket_status {
            Some(s) => s.to_string(),
            None if status == "new" => "in_progress".to_string(),
            None => status,
        };
        let at = now();
        let resolved = matches!(ticket_status.as_str(), "resolved" | "closed");
        let holds = matches!(action, "claim" | "take_over" | "reply");
        sqlx::query(
            "UPDATE tickets SET status = ?, updated_at = ?,
             assignee = CASE WHEN ? THEN ? ELSE assignee END,
             resolved_at = CASE WHEN ? THEN ? ELSE resolved_at END WHERE id = ?",
        )
        .bind(&ticket_status)
        .bind(&at)
        .bind(holds)
        .bind(agent_id)
        .bind(resolved)
        .bind(&at)
        .bind(&ticket.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE conversations SET status = ?, updated_at = ? WHERE id = ?")
            .bind(conversation_status)
            .bind(&at)
            .bind(&ticket.conversation_id)
            .execute(&mut *tx)
            .await?;
        let mut message_id = None;
        if let Some(m) = message {
            let channel: (String,) =
                sqlx::query_as("SELECT channel FROM conversations WHERE id = ?")
                    .bind(&ticket.conversation_id)
                    .fetch_one(&mut *tx)
                    .await?;
            message_id =
                Some(insert_outbound(&mut tx, &ticket.conversation_id, &channel.0, m, &at).await?);
        }
        // A take-over records whom the ticket was taken from.
        let detail = match (message, action) {
            (Some(m), _) => Some(m.text.to_string()),
            (None, "take_over") => match &assignee {
                Some(previous) => Some(agent_name(&mut tx, previous).await?),
                None => None,
            },
            _ => None,
        };
        sqlx::query(
            "INSERT INTO audit_log (id, agent_id, ticket_id, action, detail, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(new_id())
        .bind(agent_id)
        .bind(&ticket.id)
        .bind(action)
        .bind(detail)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(message_id))
    }

    /// Whether a conversation has a ticket still open (new, in progress, waiting).
    pub async fn has_open_ticket(&self, conversation_id: &str) -> Result<bool, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM tickets WHERE conversation_id = ?
             AND status IN ('new', 'in_progress', 'waiting_customer')",
        )
        .bind(conversation_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Stores a CSAT rating on the conversation's latest resolved ticket.
    pub async fn set_csat(&self, conversation_id: &str, rating: i64) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query(
            "UPDATE tickets SET csat = ? WHERE id = (SELECT id FROM tickets WHERE conversation_id = ?
             AND status = 'resolved' ORDER BY resolved_at DESC LIMIT 1)",
        )
        .bind(rating)
        .bind(conversation_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Internal notes and transfers: audit rows that change no conversation. A note
    /// may be added to any ticket (closed ones too: it is internal); a transfer is
    /// refused on a closed ticket or one another agent holds, and puts the ticket back
    /// in the queue (no holder) of its new department.
    pub async fn ticket_note(
        &self,
        agent_id: &str,
        ticket_id: &str,
        action: &str,
        detail: &str,
        department: Option<&str>,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let _writer = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let at = now();
        if let Some(d) = department {
            if let Err(refused) = holder_check(&mut tx, ticket_id, agent_id).await? {
                return Ok(Err(refused));
            }
            let (current,): (String,) =
                sqlx::query_as("SELECT department FROM tickets WHERE id = ?")
                    .bind(ticket_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if current.to_lowercase() == d.to_lowercase() {
                return Ok(Err(Refusal::SameDepartment));
            }
            // Back in the new department's queue: unclaimed, so `new`.
            sqlx::query(
                "UPDATE tickets SET department = ?, assignee = NULL, status = 'new', updated_at = ?
                 WHERE id = ?",
            )
            .bind(d)
            .bind(&at)
            .bind(ticket_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO audit_log (id, agent_id, ticket_id, action, detail, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(new_id())
        .bind(agent_id)
        .bind(ticket_id)
        .bind(action)
        .bind(detail)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Notes and actions on a ticket, oldest first: (action, detail, agent, time).
    pub async fn ticket_log(
        &self,
        ticket_id: &str,
    ) -> Result<Vec<(String, Option<String>, String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT l.action, l.detail, COALESCE(a.username, l.agent_id), l.created_at
             FROM audit_log l LEFT JOIN agents a ON a.id = l.agent_id
             WHERE l.ticket_id = ? ORDER BY l.created_at",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The customer's other tickets: (code, status, csat, created_at).
    pub async fn customer_tickets(
        &self,
        customer_id: &str,
    ) -> Result<Vec<(String, String, Option<i64>, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT code, status, csat, created_at FROM tickets WHERE customer_id = ?
             ORDER BY created_at DESC",
        )
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The optional comment after a CSAT rating.
    pub async fn set_csat_comment(
        &self,
        conversation_id: &str,
        comment: &str,
    ) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query(
            "UPDATE tickets SET csat_comment = ? WHERE id = (SELECT id FROM tickets
             WHERE conversation_id = ? AND csat IS NOT NULL ORDER BY resolved_at DESC LIMIT 1)",
        )
        .bind(comment)
        .bind(conversation_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Orders in the demo store placed with this phone: (code, status, total).
    pub async fn orders_for_phone(
        &self,
        phone: &str,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT body FROM orders WHERE phone = ? ORDER BY code")
                .bind(phone)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(b,)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .map(|o| serde_json::json!({"code": o["code"], "status": o["status"], "total": o["total"], "created_at": o["created_at"]}))
            .collect())
    }

    pub async fn audit_count(&self, ticket_id: &str) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE ticket_id = ?")
            .bind(ticket_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}

/// Why an agent action on a ticket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The ticket is resolved or closed: nothing more can be done on it.
    Closed,
    /// Another agent holds the ticket (a take-over or a transfer moves it).
    Taken,
    /// A transfer to the department the ticket is already in.
    SameDepartment,
}

/// The ticket's (status, holder) inside a transaction, or why `agent_id` may not act
/// on it.
async fn holder_check(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ticket_id: &str,
    agent_id: &str,
) -> Result<Result<(String, Option<String>), Refusal>, StoreError> {
    let (status, assignee): (String, Option<String>) =
        sqlx::query_as("SELECT status, assignee FROM tickets WHERE id = ?")
            .bind(ticket_id)
            .fetch_one(&mut **tx)
            .await?;
    if matches!(status.as_str(), "resolved" | "closed") {
        return Ok(Err(Refusal::Closed));
    }
    if assignee.as_deref().is_some_and(|a| a != agent_id) {
        return Ok(Err(Refusal::Taken));
    }
    Ok(Ok((status, assignee)))
}

/// An agent's username (its id if it has none).
async fn agent_name(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    agent_id: &str,
) -> Result<String, StoreError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT username FROM agents WHERE id = ?")
        .bind(agent_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| r.0).unwrap_or_else(|| agent_id.to_string()))
}

/// Stores an outbound message (and, for platform channels, its outbox row) inside
/// the caller's transaction; returns its id.
async fn insert_outbound(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    conversation_id: &str,
    channel: &str,
    m: CustomerMessage<'_>,
    at: &str,
) -> Result<String, StoreError> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, direction, author, text, quick_replies,
         channel, created_at) VALUES (?, ?, 'out', ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(conversation_id)
    .bind(m.author)
    .bind(m.text)
    .bind(serde_json::to_string(m.quick_replies).expect("json"))
    .bind(channel)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    if m.deliver {
        enqueue(tx, &id, conversation_id, channel).await?;
    }
    Ok(id)
}

/// Queues an outbound message for delivery (inside the transaction that stores it).
async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    message_id: &str,
    conversation_id: &str,
    channel: &str,
) -> Result<(), StoreError> {
    let at = now();
    sqlx::query(
        "INSERT INTO outbox (message_id, conversation_id, channel, status, next_attempt_at, created_at)
         VALUES (?, ?, ?, 'pending', ?, ?)",
    )
    .bind(message_id)
    .bind(conversation_id)
    .bind(channel)
    .bind(&at)
    .bind(&at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A queued outbound message with what the platform needs to deliver it.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub message_id: String,
    pub conversation_id: String,
    pub channel: String,
    pub attempts: i64,
    pub recipient: String,
    pub account: Option<String>,
    pub author: String,
    pub text: String,
    pub quick_replies: Vec<String>,
    /// When the customer last wrote in this conversation.
    pub last_inbound_at: Option<String>,
    /// Leading parts of a long reply already delivered by an earlier attempt.
    pub parts_sent: usize,
}

/// The outbox, platform tokens, cross-channel customers.
impl Store {
    /// Due messages, at most one per conversation (the oldest pending one, so a
    /// conversation's messages arrive in order).
    pub async fn outbox_due(&self, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.message_id, o.conversation_id, o.channel, o.attempts, o.parts_sent,
                    i.channel_user_id,
                    i.account, m.author, m.text, m.quick_replies,
                    (SELECT MAX(created_at) FROM messages WHERE conversation_id = o.conversation_id
                     AND direction = 'in') AS last_in
             FROM outbox o
             JOIN messages m ON m.id = o.message_id
             JOIN conversations c ON c.id = o.conversation_id
             JOIN identities i ON i.channel = c.channel AND i.channel_user_id = c.channel_user_id
             WHERE o.status = 'pending' AND o.next_attempt_at <= ?
               AND o.message_id = (SELECT MIN(message_id) FROM outbox
                                   WHERE conversation_id = o.conversation_id AND status = 'pending')
             ORDER BY o.message_id LIMIT ?",
        )
        .bind(now())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| OutboxItem {
                message_id: r.get("message_id"),
                conversation_id: r.get("conversation_id"),
                channel: r.get("channel"),
                attempts: r.get("attempts"),
                parts_sent: r.get::<i64, _>("parts_sent").max(0) as usize,
                recipient: r.get("channel_user_id"),
                account: r.get("account"),
                author: r.get("author"),
                text: r.get("text"),
                quick_replies: r
                    .get::<Option<String>, _>("quick_replies")
                    .and_then(|q| serde_json::from_str(&q).ok())
                    .unwrap_or_default(),
                last_inbound_at: r.get("last_in"),
            })
            .collect())
    }

    /// When the next pending message is due, if any.
    pub async fn outbox_next_due(&self) -> Result<Option<String>, StoreError> {
        let (t,): (Option<String>,) =
            sqlx::query_as("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(t)
    }

    /// Records a delivery attempt: `sent`, `failed` (permanent) or `pending` again
    /// with the next attempt time.
    pub async fn outbox_attempt(
        &self,
        message_id: &str,
        status: &str,
        error: Option<&str>,
        platform_id: Option<&str>,
        next_attempt_at: Option<&str>,
    ) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        let at = now();
        sqlx::query(
            "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?,
             platform_id = COALESCE(?, platform_id),
             next_attempt_at = COALESCE(?, next_attempt_at),
             sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END
             WHERE message_id = ?",
        )
        .bind(status)
        .bind(error)
        .bind(platform_id)
        .bind(next_attempt_at)
        .bind(status)
        .bind(&at)
        .bind(message_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that the first `parts` parts of a long outbound message are delivered.
    pub async fn outbox_parts_sent(
        &self,
        message_id: &str,
        parts: usize,
    ) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query("UPDATE outbox SET parts_sent = MAX(parts_sent, ?) WHERE message_id = ?")
            .bind(parts as i64)
            .bind(message_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Messages that could not be delivered: (conversation, message id, text, error, time).
    pub async fn outbox_failed(
        &self,
    ) -> Result<Vec<(String, String, String, String, String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT o.conversation_id, o.message_id, o.channel, m.text,
                    COALESCE(o.last_error, ''), o.created_at
             FROM outbox o JOIN messages m ON m.id = o.message_id
             WHERE o.status = 'failed' ORDER BY o.created_at DESC LIMIT 200",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn save_channel_tokens(
        &self,
        channel: &str,
        access: &str,
        refresh: Option<&str>,
    ) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query(
            "INSERT INTO channel_tokens (channel, access_token, refresh_token, updated_at)
             VALUES (?, ?, ?, ?) ON CONFLICT(channel) DO UPDATE SET
             access_token = excluded.access_token, refresh_token = excluded.refresh_token,
             updated_at = excluded.updated_at",
        )
        .bind(channel)
        .bind(access)
        .bind(refresh)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Tokens saved after a refresh: (access, refresh).
    pub async fn channel_tokens(
        &self,
        channel: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT access_token, refresh_token FROM channel_tokens WHERE channel = ?",
        )
        .bind(channel)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// When the customer last wrote in a conversation.
    pub async fn last_inbound_at(
        &self,
        conversation_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let (t,): (Option<String>,) = sqlx::query_as(
            "SELECT MAX(created_at) FROM messages WHERE conversation_id = ? AND direction = 'in'",
        )
        .bind(conversation_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(t)
    }

    /// Records a verified phone. If another customer already verified the same phone,
    /// this customer is merged into that one (identities, conversations and tickets
    /// move) and the surviving customer's id is returned.
    pub async fn link_verified_phone(
        &self,
        customer_id: &str,
        phone: &str,
    ) -> Result<String, StoreError> {
        let _writer = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let existing: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM customers WHERE phone = ? AND id != ? AND merged_into IS NULL
             ORDER BY created_at LIMIT 1",
        )
        .bind(phone)
        .bind(customer_id)
        .fetch_optional(&mut *tx)
        .await?;
        let survivor = match existing {
            Some((target,)) => {
                for table in ["identities", "conversations", "tickets"] {
                    sqlx::query(&format!(
                        "UPDATE {table} SET customer_id = ? WHERE customer_id = ?"
                    ))
                    .bind(&target)
                    .bind(customer_id)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("UPDATE customers SET merged_into = ?, phone = ? WHERE id = ?")
                    .bind(&target)
                    .bind(phone)
                    .bind(customer_id)
                    .execute(&mut *tx)
                    .await?;
                target
            }
            None => {
                sqlx::query("UPDATE customers SET phone = ? WHERE id = ?")
                    .bind(phone)
                    .bind(customer_id)
                    .execute(&mut *tx)
                    .await?;
                customer_id.to_string()
            }
        };
        tx.commit().await?;
        Ok(survivor)
    }

    /// The channel identities of a customer: (channel, channel user id).
    pub async fn customer_identities(
        &self,
        customer_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT channel, channel_user_id FROM identities WHERE customer_id = ?
             ORDER BY created_at",
        )
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every conversation of a customer, on any channel, oldest first.
    pub async fn customer_conversations(
        &self,
        customer_id: &str,
    ) -> Result<Vec<Conversation>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM conversations WHERE customer_id = ? ORDER BY created_at")
                .bind(customer_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(conversation_from_row).collect())
    }

    /// Inbound messages on `channels` that were stored but never answered (the process
    /// stopped between acknowledging a webhook and finishing the turn):
    /// (channel, channel user id, account, channel message id, text).
    pub async fn unanswered_inbound(
        &self,
        channels: &[&str],
    ) -> Result<Vec<(String, String, Option<String>, String, String)>, StoreError> {
        let mut out = Vec::new();
        for ch in channels {
            let rows: Vec<(String, String, Option<String>, String, String)> = sqlx::query_as(
                "SELECT m.channel, c.channel_user_id, i.account, m.channel_message_id, m.text
                 FROM messages m
                 JOIN conversations c ON c.id = m.conversation_id
                 JOIN identities i ON i.channel = c.channel AND i.channel_user_id = c.channel_user_id
                 LEFT JOIN turns t ON t.message_id = m.id
                 WHERE m.direction = 'in' AND m.channel = ? AND t.message_id IS NULL
                   AND m.channel_message_id IS NOT NULL
                 ORDER BY m.created_at, m.rowid",
            )
            .bind(ch)
            .fetch_all(&self.pool)
            .await?;
            out.extend(rows);
        }
        Ok(out)
    }
}

/// Hotline calls.
impl Store {
    /// (state, heard) of a call.
    pub async fn call(&self, call_id: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT state, heard FROM calls WHERE call_id = ?")
                .bind(call_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn save_call(
        &self,
        call_id: &str,
        caller: &str,
        front_end: &str,
        state: &str,
        heard: &str,
    ) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        let at = now();
        sqlx::query(
            "INSERT INTO calls (call_id, caller, front_end, state, heard, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(call_id) DO UPDATE SET
             state = excluded.state, heard = excluded.heard, updated_at = excluded.updated_at",
        )
        .bind(call_id)
        .bind(caller)
        .bind(front_end)
        .bind(state)
        .bind(heard)
        .bind(&at)
        .bind(&at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The calls of a caller, newest first: (call id, heard JSON, started).
    pub async fn calls_of(
        &self,
        caller: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT call_id, heard, created_at FROM calls WHERE caller = ?
             ORDER BY created_at DESC LIMIT 20",
        )
        .bind(caller)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl Store {
    pub async fn set_ai_summary(&self, code: &str, summary: &str) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query("UPDATE tickets SET ai_summary = ? WHERE code = ?")
            .bind(summary)
            .bind(code)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Gauges for `/metrics`.
impl Store {
    /// (open tickets, overdue open tickets).
    pub async fn ticket_backlog(&self) -> Result<(i64, i64), StoreError> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(sla_due_at < ?), 0) FROM tickets
             WHERE status IN ('new', 'in_progress', 'waiting_customer')",
        )
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Outbox rows by status.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT status, COUNT(*) FROM outbox GROUP BY status")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

/// Rows behind the KPIs (`/api/v1/stats`).
#[derive(Debug, Clone)]
pub struct InboundRow {
    pub conversation_id: String,
    pub customer_id: String,
    pub channel: String,
    pub created_at: String,
    pub intent: Option<String>,
    pub faq_id: Option<String>,
    pub handoff_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TicketStatsRow {
    pub priority: String,
    pub status: String,
    /// `withdrawn`: the customer took the request back before any agent took it.
    pub resolution: Option<String>,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub sla_due_at: String,
    pub csat: Option<i64>,
    pub first_action_at: Option<String>,
    pub first_reply_at: Option<String>,
    /// The first agent reply that was not a failed delivery (what the SLA counts).
    pub first_delivered_reply_at: Option<String>,
}

impl Store {
    /// Customer messages from `from` (inclusive) to `to` (exclusive) with what the
    /// bot made of each.
    pub async fn inbound_between(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<InboundRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.conversation_id, c.customer_id, c.channel, m.created_at, t.intent,
                    json_extract(t.decision, '$.faq_id') AS faq_id,
                    json_extract(t.decision, '$.decision') AS decision, t.handoff_reason
             FROM messages m JOIN conversations c ON c.id = m.conversation_id
             LEFT JOIN turns t ON t.message_id = m.id
             WHERE m.direction = 'in' AND m.created_at >= ? AND m.created_at < ?
             ORDER BY m.created_at, m.rowid",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| InboundRow {
                conversation_id: r.get("conversation_id"),
                customer_id: r.get("customer_id"),
                channel: r.get("channel"),
                created_at: r.get("created_at"),
                intent: r.get("intent"),
                faq_id: r.get::<Option<String>, _>("faq_id").filter(|_| {
                    r.get::<Option<String>, _>("decision").as_deref() == Some("answer")
                }),
                handoff_reason: r.get("handoff_reason"),
            })
            .collect())
    }

    pub async fn tickets_between(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<TicketStatsRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.priority, t.status, t.resolution, t.created_at, t.resolved_at, t.sla_due_at,
                    t.csat,
                    (SELECT MIN(created_at) FROM audit_log WHERE ticket_id = t.id
                     AND action IN ('claim', 'reply')) AS first_action_at,
                    (SELECT MIN(created_at) FROM audit_log WHERE ticket_id = t.id
                     AND action = 'reply') AS first_reply_at,
                    -- A reply's message and audit row are written with one time; a reply
                    -- the platform refused for good reached nobody.
                    (SELECT MIN(a.created_at) FROM audit_log a WHERE a.ticket_id = t.id
                     AND a.action = 'reply' AND NOT EXISTS (
                        SELECT 1 FROM messages m JOIN outbox o ON o.message_id = m.id
                        WHERE m.conversation_id = t.conversation_id AND m.author = 'agent'
                          AND m.created_at = a.created_at AND o.status = 'failed'))
                     AS first_delivered_reply_at
             FROM tickets t WHERE t.created_at >= ? AND t.created_at < ? ORDER BY t.created_at",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TicketStatsRow {
                priority: r.get("priority"),
                status: r.get("status"),
                resolution: r.get("resolution"),
                created_at: r.get("created_at"),
                resolved_at: r.get("resolved_at"),
                sla_due_at: r.get("sla_due_at"),
                csat: r.get("csat"),
                first_action_at: r.get("first_action_at"),
                first_reply_at: r.get("first_reply_at"),
                first_delivered_reply_at: r.get("first_delivered_reply_at"),
            })
            .collect())
    }

    /// NPS answers: (channel, score, time).
    pub async fn nps_between(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT channel, score, created_at FROM nps WHERE created_at >= ? AND created_at < ?",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn record_nps(&self, conversation_id: &str, score: i64) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query(
            "INSERT INTO nps (id, conversation_id, customer_id, channel, score, created_at)
             SELECT ?, id, customer_id, channel, ?, ? FROM conversations WHERE id = ?",
        )
        .bind(new_id())
        .bind(score)
        .bind(now())
        .bind(conversation_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sends the NPS question on a conversation (with the outbox row for platform
    /// channels) and waits for the 0–10 answer.
    /// Asks the NPS question on a conversation with the bot; `None` (nothing
    /// changed) when the conversation is with an agent or asked for a rating.
    pub async fn ask_nps(
        &self,
        conversation_id: &str,
        channel: &str,
        text: &str,
        quick: &[String],
        deliver: bool,
    ) -> Result<Option<String>, StoreError> {
        let _writer = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let at = now();
        // Only a conversation with the bot (or past its rating, where a comment is
        // optional): one with an agent, or asked for a rating, keeps its state.
        let moved = sqlx::query(
            "UPDATE conversations SET status = 'nps', updated_at = ? WHERE id = ? AND status IN ('bot', 'csat_comment', 'nps', 'nps_comment')",
        )
        .bind(&at)
        .bind(conversation_id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(None);
        }
        let m = CustomerMessage {
            author: "bot",
            text,
            quick_replies: quick,
            deliver,
        };
        let id = insert_outbound(&mut tx, conversation_id, channel, m, &at).await?;
        tx.commit().await?;
        Ok(Some(id))
    }
}

/// A customer message the bot could not answer.
#[derive(Debug, Clone)]
pub struct GapMessage {
    pub id: String,
    pub conversation_id: String,
    pub text: String,
    pub created_at: String,
}

/// Knowledge gaps.
impl Store {
    /// Messages in `[from, to)` the bot handed off or could not answer, including
    /// questions answered with a choice of entries the customer did not take (their
    /// next turn is not a pick, or there is none yet).
    pub async fn unanswered_questions(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<GapMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.conversation_id, m.text, m.created_at FROM messages m
             JOIN turns t ON t.message_id = m.id
             WHERE m.created_at >= ? AND m.created_at < ?
               AND (json_extract(t.decision, '$.decision') = 'handoff'
                    OR t.handoff_reason IN ('repeated_fallback', 'low_confidence_after_clarify')
                    OR (json_extract(t.decision, '$.decision') = 'clarify'
                        AND COALESCE((SELECT n.decision IS NULL AND n.intent = 'faq'
                                      FROM turns n
                                      WHERE n.conversation_id = t.conversation_id
                                        AND n.created_at > t.created_at
                                      ORDER BY n.created_at LIMIT 1), 0) = 0))
             ORDER BY m.created_at, m.rowid",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| GapMessage {
                id: r.get("id"),
                conversation_id: r.get("conversation_id"),
                text: r.get("text"),
                created_at: r.get("created_at"),
            })
            .collect())
    }

    /// The first agent reply after `after` in a conversation whose ticket was resolved:
    /// (reply text, ticket code).
    pub async fn agent_answer(
        &self,
        conversation_id: &str,
        after: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT m.text, t.code FROM messages m
             JOIN tickets t ON t.conversation_id = m.conversation_id
             WHERE m.conversation_id = ? AND m.author = 'agent' AND m.created_at > ?
               AND t.status IN ('resolved', 'closed') AND t.created_at <= m.created_at
             ORDER BY m.created_at LIMIT 1",
        )
        .bind(conversation_id)
        .bind(after)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn gap_decisions(&self) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT cluster_id, decision, entry_id FROM gap_decisions")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// A gap's decision and entry, if it has one.
    pub async fn gap_decision(
        &self,
        cluster_id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT decision, entry_id FROM gap_decisions WHERE cluster_id = ?")
                .bind(cluster_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Marks a gap rejected unless it was accepted; then nothing changes and its
    /// entry id is returned (`Some`).
    pub async fn reject_gap(&self, cluster_id: &str) -> Result<Option<Option<String>>, StoreError> {
        let _writer = self.write.lock().await;
        let done = sqlx::query(
            "INSERT INTO gap_decisions (cluster_id, decision, entry_id, created_at)
             VALUES (?, 'rejected', NULL, ?)
             ON CONFLICT(cluster_id) DO UPDATE SET decision = 'rejected', entry_id = NULL,
             created_at = excluded.created_at WHERE gap_decisions.decision != 'accepted'",
        )
        .bind(cluster_id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(None);
        }
        let (entry,): (Option<String>,) =
            sqlx::query_as("SELECT entry_id FROM gap_decisions WHERE cluster_id = ?")
                .bind(cluster_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(Some(entry))
    }

    pub async fn decide_gap(
        &self,
        cluster_id: &str,
        decision: &str,
        entry_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query(
            "INSERT INTO gap_decisions (cluster_id, decision, entry_id, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT(cluster_id) DO UPDATE SET decision = excluded.decision,
             entry_id = excluded.entry_id, created_at = excluded.created_at",
        )
        .bind(cluster_id)
        .bind(decision)
        .bind(entry_id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The boundary of the current request in a conversation: after the last ticket
/// that ended (resolved, handed back, withdrawn); '' when none did.
const REQUEST_START: &str = "COALESCE((SELECT MAX(resolved_at) FROM tickets
     WHERE conversation_id = ?1 AND status IN ('resolved', 'closed')), '')";

/// Turn intents of feedback on earlier help (a rating, its comment, an NPS score and
/// remark): never part of a new request.
const FEEDBACK_INTENTS: &str = "('csat', 'nps')";

/// A conversation waiting for a person: its request, its ticket, the customer's
/// withdrawal.
impl Store {
    /// The customer's messages of the current request, oldest first: those after the
    /// last ticket of the conversation ended, without feedback on earlier help.
    pub async fn request_messages(&self, conversation_id: &str) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT m.text FROM messages m LEFT JOIN turns t ON t.message_id = m.id
             WHERE m.conversation_id = ?1 AND m.direction = 'in'
               AND m.created_at > {REQUEST_START}
               AND COALESCE(t.intent, '') NOT IN {FEEDBACK_INTENTS}
             ORDER BY m.created_at, m.rowid"
        );
        let rows: Vec<(String,)> = sqlx::query_as(&sql)
            .bind(conversation_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The intents of the current request's turns (see [`Self::request_messages`]).
    pub async fn request_intents(&self, conversation_id: &str) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT t.intent FROM turns t JOIN messages m ON m.id = t.message_id
             WHERE t.conversation_id = ?1 AND m.created_at > {REQUEST_START}
               AND t.intent NOT IN {FEEDBACK_INTENTS}
             ORDER BY t.created_at"
        );
        let rows: Vec<(String,)> = sqlx::query_as(&sql)
            .bind(conversation_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The conversation's open ticket, if any.
    pub async fn open_ticket_of(
        &self,
        conversation_id: &str,
    ) -> Result<Option<TicketRow>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM tickets WHERE conversation_id = ?
             AND status IN ('new', 'in_progress', 'waiting_customer')
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(ticket_from_row))
    }

    /// Whether a person is already talking on an open ticket: an agent holds it, or
    /// an agent has written to the customer since it opened (a transfer leaves it
    /// unheld, but the customer has met a person).
    pub async fn agent_engaged(&self, ticket: &TicketRow) -> Result<bool, StoreError> {
        if ticket.assignee.is_some() {
            return Ok(true);
        }
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND author = 'agent'
             AND created_at >= ?",
        )
        .bind(&ticket.conversation_id)
        .bind(&ticket.created_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// The customer takes a request back. A ticket nobody has taken (unheld, no
    /// agent reply) is closed with the resolution `withdrawn` (`true`); one a person
    /// is working on stays open with the withdrawal logged for them (`false`). Decided
    /// and written in one transaction, so a claim in between is never lost.
    pub async fn withdraw_ticket(&self, ticket_id: &str, text: &str) -> Result<bool, StoreError> {
        let _writer = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let at = now();
        let closed = sqlx::query(
            "UPDATE tickets SET status = 'closed', resolution = 'withdrawn', resolved_at = ?,
             updated_at = ? WHERE id = ? AND assignee IS NULL
             AND status IN ('new', 'in_progress', 'waiting_customer')
             AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = tickets.conversation_id
                             AND m.author = 'agent' AND m.created_at >= tickets.created_at)",
        )
        .bind(&at)
        .bind(&at)
        .bind(ticket_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let action = if closed {
            "withdrawn"
        } else {
            "customer_withdrew"
        };
        insert_audit(&mut tx, CUSTOMER_ACTOR, ticket_id, action, Some(text), &at).await?;
        tx.commit().await?;
        Ok(closed)
    }

    /// What the customer added while waiting: a new summary, and when the request
    /// became more urgent, a higher priority, an earlier deadline and perhaps another
    /// department (logged as `priority_raised` with `detail`).
    pub async fn retriage_ticket(&self, t: &Retriage<'_>) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let at = now();
        sqlx::query(
            "UPDATE tickets SET summary = ?, priority = COALESCE(?, priority),
             sla_due_at = COALESCE(?, sla_due_at), department = COALESCE(?, department),
             updated_at = ? WHERE id = ? AND status IN ('new', 'in_progress', 'waiting_customer')",
        )
        .bind(t.summary)
        .bind(t.priority)
        .bind(t.sla_due_at)
        .bind(t.department)
        .bind(&at)
        .bind(t.ticket_id)
        .execute(&mut *tx)
        .await?;
        if let Some(detail) = t.detail {
            insert_audit(
                &mut tx,
                BOT_ACTOR,
                t.ticket_id,
                "priority_raised",
                Some(detail),
                &at,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks a ticket as a call-back: the caller was promised a person would call
    /// (`callback` in its context: the number and why).
    pub async fn mark_callback(
        &self,
        ticket_id: &str,
        number: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query(
            "UPDATE tickets SET context = json_set(context, '$.callback', json(?)) WHERE id = ?
             AND json_extract(context, '$.callback') IS NULL",
        )
        .bind(serde_json::json!({"number": number, "why": why}).to_string())
        .bind(ticket_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When a turn with `intent` was last recorded in a conversation after `since`.
    pub async fn last_turn_at(
        &self,
        conversation_id: &str,
        intent: &str,
        since: &str,
    ) -> Result<Option<String>, StoreError> {
        let (t,): (Option<String>,) = sqlx::query_as(
            "SELECT MAX(created_at) FROM turns WHERE conversation_id = ? AND intent = ?
             AND created_at >= ?",
        )
        .bind(conversation_id)
        .bind(intent)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(t)
    }

    /// The customer's last message, if nobody has answered it: the bot stayed silent
    /// or only acknowledged it (turn intent in `silent`), and no agent wrote after it.
    pub async fn unanswered_last_message(
        &self,
        conversation_id: &str,
        silent: &[&str],
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT m.text, m.created_at, t.intent FROM messages m
             LEFT JOIN turns t ON t.message_id = m.id
             WHERE m.conversation_id = ? AND m.direction = 'in'
             ORDER BY m.created_at DESC, m.rowid DESC LIMIT 1",
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((text, at, Some(intent))) = row else {
            return Ok(None);
        };
        if !silent.contains(&intent.as_str()) {
            return Ok(None);
        }
        let (after,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND author = 'agent'
             AND created_at > ?",
        )
        .bind(conversation_id)
        .bind(&at)
        .fetch_one(&self.pool)
        .await?;
        Ok((after == 0).then_some(text))
    }

    /// Bot messages written outside a customer turn (the answer to a question left
    /// waiting when an agent hands the conversation back) with the new dialogue
    /// state, in one transaction; their ids.
    pub async fn bot_followup(
        &self,
        conversation_id: &str,
        channel: &str,
        outbound: &[Outbound],
        state: &str,
        deliver: bool,
    ) -> Result<Vec<String>, StoreError> {
        let _writer = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::new();
        for o in outbound {
            let m = CustomerMessage {
                author: "bot",
                text: &o.text,
                quick_replies: &o.quick_replies,
                deliver,
            };
            ids.push(insert_outbound(&mut tx, conversation_id, channel, m, &now()).await?);
        }
        sqlx::query("UPDATE conversations SET state = ?, updated_at = ? WHERE id = ?")
            .bind(state)
            .bind(now())
            .bind(conversation_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Stores a remark sent right after an NPS score on that answer, if it was given
    /// within `minutes` and has no remark yet; whether it was stored.
    pub async fn set_nps_comment(
        &self,
        conversation_id: &str,
        comment: &str,
        minutes: i64,
    ) -> Result<bool, StoreError> {
        let _writer = self.write.lock().await;
        let since = (chrono::Utc::now() - chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let done = sqlx::query(
            "UPDATE nps SET comment = ? WHERE id = (SELECT id FROM nps WHERE conversation_id = ?
             AND created_at >= ? AND comment IS NULL ORDER BY created_at DESC LIMIT 1)",
        )
        .bind(comment)
        .bind(conversation_id)
        .bind(since)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// The changes of [`Store::retriage_ticket`]; `None` keeps a field.
pub struct Retriage<'a> {
    pub ticket_id: &'a str,
    pub summary: &'a str,
    pub priority: Option<&'a str>,
    pub sla_due_at: Option<&'a str>,
    pub department: Option<&'a str>,
    /// The audit detail of a priority rise ("P3 → P1").
    pub detail: Option<&'a str>,
}

/// Who the audit log names for what the customer did (a withdrawal), and for what
/// the bot did on its own (a priority raised by what the customer added).
pub const CUSTOMER_ACTOR: &str = "customer";
pub const BOT_ACTOR: &str = "bot";

async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    actor: &str,
    ticket_id: &str,
    action: &str,
    detail: Option<&str>,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (id, agent_id, ticket_id, action, detail, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(new_id())
    .bind(actor)
    .bind(ticket_id)
    .bind(action)
    .bind(detail)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
