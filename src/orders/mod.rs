//! Order lookup behind [`OrderBackend`]: the embedded SQLite demo store (filled by
//! `cskh orders import`) and an HTTP connector for Shopify-style Admin REST APIs.

mod shopify;
mod sqlite;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use shopify::ShopifyBackend;
pub use sqlite::SqliteOrders;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Packing,
    Shipping,
    Delivered,
    Cancelled,
    Returned,
}

impl OrderStatus {
    /// How the bot names the status to a customer.
    pub fn vietnamese(self) -> &'static str {
        match self {
            OrderStatus::Pending => "đang chờ xác nhận",
            OrderStatus::Confirmed => "đã được xác nhận",
            OrderStatus::Packing => "đang được đóng gói",
            OrderStatus::Shipping => "đang được giao",
            OrderStatus::Delivered => "đã giao thành công",
            OrderStatus::Cancelled => "đã bị hủy",
            OrderStatus::Returned => "đã được hoàn trả",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub name: String,
    pub qty: u32,
    pub price: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub code: String,
    #[serde(default)]
    pub customer_name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub status: OrderStatus,
    #[serde(default)]
    pub items: Vec<OrderItem>,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub tracking_code: Option<String>,
    #[serde(default)]
    pub eta: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl Order {
    /// Verification: the full phone on the order or its last four digits.
    pub fn phone_matches(&self, phone: Option<&str>, last4: Option<&str>) -> bool {
        let Some(own) = self
            .phone
            .as_deref()
            .and_then(crate::bot::entities::normalize_phone)
        else {
            return false;
        };
        match (phone, last4) {
            (Some(p), _) => p == own,
            (None, Some(l)) => own.ends_with(l),
            _ => false,
        }
    }
}

#[derive(Debug, Error)]
pub enum OrderError {
    #[error("order backend unavailable: {0}")]
    Unavailable(String),
    #[error("order backend answered something unexpected: {0}")]
    Protocol(String),
}

#[async_trait::async_trait]
pub trait OrderBackend: Send + Sync {
    /// The order with this code (as the customer wrote it, e.g. `DH240517`, `#10023`).
    async fn find(&self, code: &str) -> Result<Option<Order>, OrderError>;
}
