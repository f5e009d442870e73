//! Shopify-style Admin REST connector (`GET /admin/orders.json?name=…` with an access
//! token header); Haravan and Sapo expose the same shape. Wire types stay here.

use std::time::Duration;

use serde::Deserialize;

use super::{Order, OrderBackend, OrderError, OrderItem, OrderStatus};

pub struct ShopifyBackend {
    client: reqwest::Client,
    base: String,
    token: String,
    token_header: String,
}

impl ShopifyBackend {
    pub fn new(base: &str, token: &str, token_header: &str, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("http client");
        Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            token_header: token_header.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct OrdersResponse {
    orders: Vec<WireOrder>,
}

#[derive(Deserialize)]
struct WireOrder {
    name: String,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    cancelled_at: Option<String>,
    #[serde(default)]
    financial_status: Option<String>,
    #[serde(default)]
    fulfillment_status: Option<String>,
    #[serde(default)]
    total_price: Option<String>,
    #[serde(default)]
    line_items: Vec<WireItem>,
    #[serde(default)]
    fulfillments: Vec<WireFulfillment>,
    #[serde(default)]
    customer: Option<WireCustomer>,
    #[serde(default)]
    shipping_address: Option<WireAddress>,
}

#[derive(Deserialize)]
struct WireItem {
    name: String,
    quantity: u32,
    price: String,
}

#[derive(Deserialize)]
struct WireFulfillment {
    #[serde(default)]
    tracking_company: Option<String>,
    #[serde(default)]
    tracking_number: Option<String>,
    #[serde(default)]
    shipment_status: Option<String>,
    #[serde(default)]
    estimated_delivery_at: Option<String>,
}

#[derive(Deserialize)]
struct WireCustomer {
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

#[derive(Deserialize)]
struct WireAddress {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

fn money(s: &str) -> i64 {
    s.parse::<f64>().map(|v| v.round() as i64).unwrap_or(0)
}

impl WireOrder {
    fn into_order(self) -> Order {
        let last = self.fulfillments.last();
        let status = if self.cancelled_at.is_some() {
            if self.financial_status.as_deref() == Some("refunded") {
                OrderStatus::Returned
            } else {
                OrderStatus::Cancelled
            }
        } else if last.and_then(|f| f.shipment_status.as_deref()) == Some("delivered") {
            OrderStatus::Delivered
        } else if self.fulfillment_status.is_some() || last.is_some() {
            OrderStatus::Shipping
        } else if matches!(
            self.financial_status.as_deref(),
            Some("paid") | Some("authorized")
        ) {
            OrderStatus::Confirmed
        } else {
            OrderStatus::Pending
        };
        let phone = self
            .phone
            .clone()
            .or_else(|| self.customer.as_ref().and_then(|c| c.phone.clone()))
            .or_else(|| self.shipping_address.as_ref().and_then(|a| a.phone.clone()));
        let customer_name = self
            .shipping_address
            .as_ref()
            .and_then(|a| a.name.clone())
            .or_else(|| {
                self.customer.as_ref().map(|c| {
                    format!(
                        "{} {}",
                        c.last_name.as_deref().unwrap_or_default(),
                        c.first_name.as_deref().unwrap_or_default()
                    )
                    .trim()
                    .to_string()
                })
            });
        Order {
            code: self.name.clone(),
            customer_name,
            phone,
            email: self.email,
            status,
            items: self
                .line_items
                .iter()
                .map(|i| OrderItem {
                    name: i.name.clone(),
                    qty: i.quantity,
                    price: money(&i.price),
                })
                .collect(),
            total: self.total_price.as_deref().map(money).unwrap_or(0),
            carrier: last.and_then(|f| f.tracking_company.clone()),
            tracking_code: last.and_then(|f| f.tracking_number.clone()),
            eta: last
                .and_then(|f| f.estimated_delivery_at.clone())
                .map(|d| d.chars().take(10).collect()),
            created_at: self.created_at,
        }
    }
}

#[async_trait::async_trait]
impl OrderBackend for ShopifyBackend {
    async fn find(&self, code: &str) -> Result<Option<Order>, OrderError> {
        let url = format!("{}/admin/orders.json", self.base);
        let resp = self
            .client
            .get(&url)
            .query(&[("name", code), ("status", "any")])
            .header(self.token_header.as_str(), &self.token)
            .send()
            .await
            .map_err(|e| OrderError::Unavailable(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(OrderError::Unavailable(format!("HTTP {}", resp.status())));
        }
        let body: OrdersResponse = resp
            .json()
            .await
            .map_err(|e| OrderError::Protocol(e.without_url().to_string()))?;
        let wanted = code.trim_start_matches('#').to_uppercase();
        Ok(body
            .orders
            .into_iter()
            .find(|o| o.name.trim_start_matches('#').to_uppercase() == wanted)
            .map(WireOrder::into_order))
    }
}
