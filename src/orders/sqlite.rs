//! The embedded demo order store (a table in the service's SQLite file).

use std::collections::HashMap;

use sqlx::SqlitePool;

use crate::bot::entities::EntityExtractor;

use super::{Order, OrderBackend, OrderError};

pub struct SqliteOrders {
    pool: SqlitePool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl SqliteOrders {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Validates every line first ([`Order::check`] with the order-code pattern of
    /// `codes`, and no code twice), then writes all orders in one transaction: a bad
    /// line changes nothing.
    pub async fn import(
        &self,
        file: &str,
        src: &str,
        codes: &EntityExtractor,
    ) -> Result<usize, ImportError> {
        let mut orders = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, line) in src.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let invalid = |message: String| ImportError::Invalid {
                file: file.to_string(),
                line: i + 1,
                message,
            };
            let o: Order =
                serde_json::from_str(line).map_err(|e| invalid(format!("invalid order: {e}")))?;
            o.check(codes).map_err(invalid)?;
            if let Some(first) = seen.insert(o.code.to_uppercase(), i + 1) {
                return Err(invalid(format!(
                    "`code` {:?} is also on line {first}: each order once per file",
                    o.code
                )));
            }
            orders.push(o);
        }
        let mut tx = self.pool.begin().await?;
        for o in &orders {
            sqlx::query(
                "INSERT INTO orders (code, phone, body) VALUES (?, ?, ?)
                 ON CONFLICT(code) DO UPDATE SET phone = excluded.phone, body = excluded.body",
            )
            .bind(o.code.to_uppercase())
            .bind(&o.phone)
            .bind(serde_json::to_string(o).expect("order serializes"))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(orders.len())
    }
}

#[async_trait::async_trait]
impl OrderBackend for SqliteOrders {
    async fn find(&self, code: &str) -> Result<Option<Order>, OrderError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT body FROM orders WHERE code = ?")
            .bind(code.to_uppercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| OrderError::Unavailable(e.to_string()))?;
        row.map(|(body,)| {
            serde_json::from_str(&body).map_err(|e| OrderError::Protocol(e.to_string()))
        })
        .transpose()
    }
}
