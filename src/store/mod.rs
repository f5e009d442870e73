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

fn now() -> String {
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
}

pub enum Inbound {
    New(String),
    Duplicate(String),
}

pub struct Outbound {
    pub text: String,
    pub quick_replies: Vec<String>,
}

/// Everything a finished turn writes, in one transaction.
pub struct TurnRecord<'a> {
    pub conversation_id: &'a str,
    pub message_id: &'a str,
    pub channel: &'a str,
    pub outbound: &'a [Outbound],
    pub intent: &'a str,
    pub decision: Option<String>,
    pub handoff_reason: Option<&'a str>,
    pub state: String,
    pub status: &'a str,
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
                    "INSERT INTO identities (channel, channel_user_id, customer_id, created_at)
                     VALUES (?, ?, ?, ?)",
                )
                .bind(channel)
                .bind(user_id)
                .bind(&id)
                .bind(&t)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
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

    /// Stores an inbound message before anything answers it; a platform retry of the
    /// same message id is reported as a duplicate and stores nothing.
    pub async fn insert_inbound(
        &self,
        conversation_id: &str,
        channel: &str,
        channel_message_id: &str,
        text: &str,
    ) -> Result<Inbound, StoreError> {
        let _writer = self.write.lock().await;
        let id = new_id();
        let done = sqlx::query(
            "INSERT INTO messages (id, conversation_id, direction, author, text, channel,
             channel_message_id, created_at) VALUES (?, ?, 'in', 'customer', ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(conversation_id)
        .bind(text)
        .bind(channel)
        .bind(channel_message_id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Inbound::New(id));
        }
        let (existing,): (String,) = sqlx::query_as(
            "SELECT id FROM messages WHERE channel = ? AND channel_message_id = ? AND direction = 'in'",
        )
        .bind(channel)
        .bind(channel_message_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Inbound::Duplicate(existing))
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
            let id = new_id();
            sqlx::query(
                "INSERT INTO messages (id, conversation_id, direction, author, text,
                 quick_replies, channel, created_at) VALUES (?, ?, 'out', 'bot', ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(t.conversation_id)
            .bind(&o.text)
            .bind(serde_json::to_string(&o.quick_replies).expect("json"))
            .bind(t.channel)
            .bind(now())
            .execute(&mut *tx)
            .await?;
            ids.push(id);
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
        tx.commit().await?;
        Ok(response)
    }

    pub async fn messages(&self, conversation_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, direction, author, text, quick_replies, created_at FROM messages
             WHERE conversation_id = ? ORDER BY created_at, rowid",
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

    /// Records a verified phone on the customer.
    pub async fn set_customer_phone(
        &self,
        customer_id: &str,
        phone: &str,
    ) -> Result<(), StoreError> {
        let _writer = self.write.lock().await;
        sqlx::query("UPDATE customers SET phone = ? WHERE id = ?")
            .bind(phone)
            .bind(customer_id)
            .execute(&self.pool)
            .await?;
        Ok(())
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
