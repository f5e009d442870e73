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

/// A date as orders write it: `YYYY-MM-DD`, or an RFC 3339 time (whose date is read).
fn is_date(v: &str) -> bool {
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
        || chrono::DateTime::parse_from_rfc3339(v).is_ok()
}

impl Order {
    /// What an imported order must be for the bot to find it and say it right: a code a
    /// customer's message is read as (`codes`: the configured order-code pattern), a
    /// phone to verify against, dates that are dates, no negative money, no empty
    /// text. The problem, naming the field, or `Ok`.
    pub fn check(&self, codes: &crate::bot::entities::EntityExtractor) -> Result<(), String> {
        let code = self.code.as_str();
        if code.trim().is_empty() {
            return Err("`code` is empty".into());
        }
        if code.chars().any(char::is_whitespace)
            || codes.extract(code).order_code.as_deref() != Some(code.to_uppercase().as_str())
        {
            return Err(format!(
                "`code` {code:?} is not an order code as customers write them (the \
                 order-code pattern, dialogue.order_code_pattern, does not read it whole): \
                 no customer could ask about this order"
            ));
        }
        match self.phone.as_deref() {
            None => {
                return Err(
                    "`phone` is missing: an order's details are given only to a customer who \
                     gives its phone"
                        .into(),
                )
            }
            Some(p) if crate::bot::entities::normalize_phone(p).is_none() => {
                return Err(format!(
                    "`phone` {p:?} is not a Vietnamese phone number (10 digits starting \
                     with 0, or +84 and 9 digits)"
                ))
            }
            Some(_) => {}
        }
        if let Some(e) = self.email.as_deref() {
            let shaped = e.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty() && domain.contains('.') && !domain.contains('@')
            });
            if !shaped || e.chars().any(char::is_whitespace) {
                return Err(format!("`email` {e:?} is not an e-mail address"));
            }
        }
        for (field, value) in [
            ("customer_name", &self.customer_name),
            ("carrier", &self.carrier),
            ("tracking_code", &self.tracking_code),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("`{field}` is empty (leave it out or null instead)"));
            }
        }
        if self.total < 0 {
            return Err(format!("`total` {} is negative", self.total));
        }
        for (i, item) in self.items.iter().enumerate() {
            let n = i + 1;
            if item.name.trim().is_empty() {
                return Err(format!("`items` {n}: `name` is empty"));
            }
            if item.qty == 0 {
                return Err(format!("`items` {n}: `qty` must be at least 1"));
            }
            if item.price < 0 {
                return Err(format!("`items` {n}: `price` {} is negative", item.price));
            }
        }
        for (field, value) in [("eta", &self.eta), ("created_at", &self.created_at)] {
            if let Some(v) = value.as_deref().filter(|v| !is_date(v)) {
                return Err(format!(
                    "`{field}` {v:?} is not a date (YYYY-MM-DD, or an RFC 3339 time such as \
                     2026-11-26T10:00:00+07:00)"
                ));
            }
        }
        Ok(())
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::entities::{EntityExtractor, DEFAULT_ORDER_PATTERN};

    const GOOD: &str = r#"{"code": "DH240517", "customer_name": "Nguyễn Thị Lan", "phone": "0912345678", "email": "lan@example.com", "status": "shipping", "items": [{"name": "Áo", "qty": 1, "price": 350000}], "total": 375000, "carrier": "GHN", "tracking_code": "GHN8K2M4Q7", "eta": "2026-11-30", "created_at": "2026-11-26T10:00:00+07:00"}"#;

    fn check(edit: &[(&str, serde_json::Value)]) -> Result<(), String> {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        for (k, x) in edit {
            v[*k] = x.clone();
        }
        let o: Order = serde_json::from_value(v).unwrap();
        o.check(&EntityExtractor::new(DEFAULT_ORDER_PATTERN).unwrap())
    }

    #[test]
    fn an_order_the_bot_can_find_and_tell_passes() {
        use serde_json::json;
        assert_eq!(check(&[]), Ok(()));
        for ok in [
            ("code", json!("#10023")),
            ("code", json!("dh240517")),
            ("phone", json!("+84 912 345 678")),
            ("eta", json!(null)),
            ("eta", json!("2026-11-30T18:00:00+07:00")),
            ("created_at", json!("2026-11-26")),
            ("customer_name", json!(null)),
            ("email", json!(null)),
            ("tracking_code", json!(null)),
            ("total", json!(0)),
        ] {
            assert_eq!(check(std::slice::from_ref(&ok)), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        use serde_json::json;
        for (field, value) in [
            ("code", json!("")),
            ("code", json!("DH 240517")),
            ("code", json!("10023")),
            ("code", json!("ABC")),
            ("code", json!("DH240517x")),
            ("phone", json!("abc")),
            ("phone", json!(null)),
            ("email", json!("lan at example")),
            ("customer_name", json!("  ")),
            ("carrier", json!("")),
            ("total", json!(-5)),
            ("eta", json!("soon")),
            ("eta", json!("30/11/2026")),
            ("created_at", json!("yesterday")),
        ] {
            let e = check(&[(field, value.clone())]).unwrap_err();
            assert!(e.contains(&format!("`{field}`")), "{field} {value}: {e}");
        }
        for (item, needle) in [
            (json!({"name": "", "qty": 1, "price": 1}), "`name`"),
            (json!({"name": "Áo", "qty": 0, "price": 1}), "`qty`"),
            (json!({"name": "Áo", "qty": 1, "price": -1}), "`price`"),
        ] {
            let e = check(&[("items", json!([item]))]).unwrap_err();
            assert!(e.contains("`items` 1") && e.contains(needle), "{e}");
        }
    }
}
