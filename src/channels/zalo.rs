//! Zalo Official Account (OpenAPI v3): `X-ZEvent-Signature` verification, webhook
//! events, customer-service messages, access-token refresh and the 48-hour window.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    transport_error, Channel, ChannelAdapter, Delivery, InboundEvent, InboundMessage, ParseError,
    SendError, VerifyError,
};
use crate::secret::same_bytes;
use crate::store::Store;
use crate::text::clip;

const MAX_TEXT: usize = 2000;
/// Choices are sent as buttons (`oa.query.show`: a tap sends the button's payload
/// as the customer's own message, shown in the chat) when there are at most this
/// many; longer lists go as numbered text.
const MAX_BUTTONS: usize = 5;
const BUTTON_TITLE_CHARS: usize = 100;
const BUTTON_PAYLOAD_CHARS: usize = 1000;
/// Zalo's "access token is invalid or expired" error.
const TOKEN_EXPIRED: i64 = -216;

#[derive(Debug, Clone)]
pub struct ZaloSettings {
    pub app_id: String,
    pub oa_secret: String,
    pub app_secret: Option<String>,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub api_base: String,
    pub oauth_base: String,
    /// Events whose signed timestamp is further than this from now are rejected.
    pub max_event_age: Duration,
}

#[derive(Debug, Clone, PartialEq)]
struct Tokens {
    access: String,
    refresh: Option<String>,
}

pub struct Zalo {
    settings: ZaloSettings,
    http: reqwest::Client,
    tokens: tokio::sync::RwLock<Tokens>,
    /// One refresh at a time: Zalo refresh tokens are single-use.
    refreshing: tokio::sync::Mutex<()>,
    store: Option<Store>,
}

/// `mac` of a webhook: hex SHA-256 of app id + raw body + timestamp + OA secret key.
pub fn mac(app_id: &str, body: &[u8], timestamp: &str, oa_secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(app_id.as_bytes());
    h.update(body);
    h.update(timestamp.as_bytes());
    h.update(oa_secret.as_bytes());
    hex::encode(h.finalize())
}

/// The body's `timestamp` (a string of milliseconds, or a number).
fn timestamp_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    match &v["timestamp"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Zalo {
    /// `stored` tokens (refreshed earlier and saved) win over the configured ones.
    pub fn new(
        settings: ZaloSettings,
        stored: Option<(String, Option<String>)>,
        store: Option<Store>,
        timeout: Duration,
    ) -> Self {
        let tokens = match stored {
            Some((access, refresh)) => Tokens {
                access,
                refresh: refresh.or(settings.refresh_token.clone()),
            },
            None => Tokens {
                access: settings.access_token.clone(),
                refresh: settings.refresh_token.clone(),
            },
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("http client");
        Self {
            settings,
            http,
            tokens: tokio::sync::RwLock::new(tokens),
            refreshing: tokio::sync::Mutex::new(()),
            store,
        }
    }

    /// The reply as plain text, choices appended as a numbered list: the customer
    /// answers with the number or the label. A plain 1-5 rating scale is already
    /// explained in the question.
    fn render(text: &str, choices: &[String]) -> String {
        let mut text = text.to_string();
        let numeric = choices.iter().all(|q| q.parse::<u32>().is_ok());
        if !choices.is_empty() && !numeric {
            for (i, q) in choices.iter().enumerate() {
                text.push_str(&format!("\n{}. {}", i + 1, q));
            }
        }
        text
    }

    /// The `message`s of a customer-service send, in order: the text in as many
    /// messages as Zalo's length limit needs, with the choices as buttons on the
    /// last when there are few enough (else as a numbered list). A button's payload
    /// is the whole choice, so a tap reads exactly as if the customer had typed it.
    fn messages(d: &Delivery) -> Vec<serde_json::Value> {
        let plain = |text: &str| -> Vec<serde_json::Value> {
            super::split_text(text, MAX_TEXT)
                .into_iter()
                .map(|t| json!({ "text": t }))
                .collect()
        };
        if d.quick_replies.is_empty() || d.quick_replies.len() > MAX_BUTTONS {
            return plain(&Self::render(&d.text, &d.quick_replies));
        }
        let buttons: Vec<serde_json::Value> = d
            .quick_replies
            .iter()
            .map(|q| {
                json!({
                    "title": clip(q, BUTTON_TITLE_CHARS),
                    "type": "oa.query.show",
                    "payload": clip(q, BUTTON_PAYLOAD_CHARS),
                })
            })
            .collect();
        let mut out = plain(&d.text);
        let last = out.pop().map(|m| m["text"].clone()).unwrap_or(json!(""));
        out.push(json!({
            "text": last,
            "attachment": {"type": "template", "payload": {"buttons": buttons}},
        }));
        out
    }

    async fn post(
        &self,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, SendError> {
        let url = format!(
            "{}/v3.0/oa/message/cs",
            self.settings.api_base.trim_end_matches('/')
        );
        let r = self
            .http
            .post(url)
            .header("access_token", token)
            .json(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = r.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(SendError::Transient(format!("Zalo API {status}")));
        }
        r.json()
            .await
            .map_err(|e| SendError::Transient(format!("unreadable Zalo response: {e}")))
    }

    /// Exchanges the refresh token for new tokens and stores them; `used` is the
    /// access token that was rejected (another task may have refreshed already).
    async fn refresh(&self, used: &str) -> Result<(), SendError> {
        let _one = self.refreshing.lock().await;
        let current = self.tokens.read().await.clone();
        if current.access != used {
            return Ok(());
        }
        let (Some(secret), Some(refresh)) = (&self.settings.app_secret, &current.refresh) else {
            return Err(SendError::Permanent(
                "Zalo access token expired and no refresh token / app secret is configured".into(),
            ));
        };
        let url = format!(
            "{}/v4/oa/access_token",
            self.settings.oauth_base.trim_end_matches('/')
        );
        let r = self
            .http
            .post(url)
            .header("secret_key", secret)
            .form(&[
                ("refresh_token", refresh.as_str()),
                ("app_id", self.settings.app_id.as_str()),
                ("grant_type", "refresh_token"),
            ])
            .send()
            .await
            .map_err(transport_error)?;
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        let Some(access) = v["access_token"].as_str().filter(|s| !s.is_empty()) else {
            let detail = format!(
                "Zalo token refresh failed ({status}): {}",
                v["error_description"]
                    .as_str()
                    .or(v["message"].as_str())
                    .unwrap_or("no detail")
            );
            return Err(if status.is_server_error() {
                SendError::Transient(detail)
            } else {
                SendError::Permanent(detail)
            });
        };
        let next = Tokens {
            access: access.to_string(),
            refresh: v["refresh_token"]
                .as_str()
                .map(String::from)
                .or(current.refresh),
        };
        if let Some(store) = &self.store {
            store
                .save_channel_tokens("zalo", &next.access, next.refresh.as_deref())
                .await
                .map_err(|e| SendError::Transient(format!("cannot store refreshed tokens: {e}")))?;
        }
        tracing::info!("Zalo access token refreshed");
        *self.tokens.write().await = next;
        Ok(())
    }
}

#[derive(Deserialize)]
struct Event {
    event_name: String,
    sender: Option<Id>,
    recipient: Option<Id>,
    /// Shaped differently per event: read only for `user_send_*`.
    message: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct Message {
    msg_id: String,
    text: Option<String>,
    #[serde(default)]
    attachments: Vec<serde_json::Value>,
}

fn attachment_label(event: &str) -> &'static str {
    match event {
        "user_send_image" | "user_send_gif" => "Ảnh",
        "user_send_sticker" => "Nhãn dán",
        "user_send_audio" => "Ghi âm",
        "user_send_video" => "Video",
        "user_send_file" => "Tệp",
        "user_send_location" => "Vị trí",
        "user_send_link" => "Liên kết",
        "user_send_business_card" => "Danh thiếp",
        _ => "Tệp đính kèm",
    }
}

#[async_trait::async_trait]
impl ChannelAdapter for Zalo {
    fn channel(&self) -> Channel {
        Channel::Zalo
    }

    fn signature_header(&self) -> &'static str {
        "x-zevent-signature"
    }

    fn verify(&self, sig: Option<&str>, body: &[u8]) -> Result<(), VerifyError> {
        let sig = sig.map(str::trim).filter(|s| !s.is_empty());
        let sig = sig.ok_or(VerifyError::Missing)?;
        let sig = sig.strip_prefix("mac=").unwrap_or(sig).to_ascii_lowercase();
        let ts = timestamp_of(body).ok_or(VerifyError::Invalid)?;
        let want = mac(&self.settings.app_id, body, &ts, &self.settings.oa_secret);
        if !same_bytes(sig.as_bytes(), want.as_bytes()) {
            return Err(VerifyError::Invalid);
        }
        let at = ts.parse::<i64>().map_err(|_| VerifyError::Invalid)?;
        let age = (chrono::Utc::now().timestamp_millis() - at).unsigned_abs();
        if age > self.settings.max_event_age.as_millis() as u64 {
            return Err(VerifyError::Stale);
        }
        Ok(())
    }

    fn parse(&self, body: &[u8]) -> Result<Vec<InboundEvent>, ParseError> {
        let e: Event = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
        if !e.event_name.starts_with("user_send_") {
            // user_received_message, user_seen_message, oa_send_*, follow, unfollow…
            return Ok(vec![InboundEvent::Ignored(e.event_name)]);
        }
        let (Some(sender), Some(m)) = (e.sender, e.message) else {
            return Err(ParseError(format!(
                "{} without sender or message",
                e.event_name
            )));
        };
        let m: Message = serde_json::from_value(m)
            .map_err(|err| ParseError(format!("{}: {err}", e.event_name)))?;
        let attachment = e.event_name != "user_send_text";
        let text = if attachment {
            let label = attachment_label(&e.event_name);
            let url = m
                .attachments
                .first()
                .and_then(|a| a["payload"]["url"].as_str().map(String::from));
            let mut t = format!("[{label}]");
            if let Some(u) = url {
                t.push(' ');
                t.push_str(&u);
            }
            if let Some(caption) = m.text.filter(|c| !c.trim().is_empty()) {
                t.push(' ');
                t.push_str(&caption);
            }
            t
        } else {
            m.text.unwrap_or_default()
        };
        if text.trim().is_empty() {
            return Ok(vec![InboundEvent::Ignored("empty text".into())]);
        }
        Ok(vec![InboundEvent::Message(InboundMessage {
            user_id: sender.id,
            account: e.recipient.map(|r| r.id),
            message_id: m.msg_id,
            text,
            attachment,
        })])
    }

    fn window(&self, _author: &str, since: Option<chrono::Duration>) -> Result<(), String> {
        match since {
            Some(s) if s <= chrono::Duration::hours(48) => Ok(()),
            Some(_) => Err("outside Zalo's 48-hour customer-service window".into()),
            None => Err("the customer has never written to the OA".into()),
        }
    }

    async fn send(&self, d: &Delivery) -> Result<Option<String>, SendError> {
        self.window(&d.author, d.since_customer)
            .map_err(SendError::Permanent)?;
        // Each queued message with whether delivering it completes one of the
        // reply's parts (a part resent as a numbered list completes with its last
        // piece).
        let mut queue: std::collections::VecDeque<(serde_json::Value, bool)> = Self::messages(d)
            .into_iter()
            .skip(d.skip_parts)
            .map(|m| (m, true))
            .collect();
        let mut refreshed = false;
        let mut last_id = None;
        let mut done = 0;
        while let Some((message, completes)) = queue.pop_front() {
            loop {
                let body = json!({"recipient": {"user_id": d.recipient}, "message": message});
                let token = self.tokens.read().await.access.clone();
                let v = self.post(&token, &body).await.map_err(|e| e.after(done))?;
                let code = v["error"].as_i64().unwrap_or(i64::MIN);
                if code == 0 {
                    last_id = v["data"]["message_id"].as_str().map(String::from);
                    done += usize::from(completes);
                    break;
                }
                if code == TOKEN_EXPIRED && !refreshed {
                    self.refresh(&token).await.map_err(|e| e.after(done))?;
                    refreshed = true;
                    continue;
                }
                let detail = format!(
                    "Zalo error {code}: {}",
                    v["message"].as_str().unwrap_or("no message")
                );
                // -32: rate limit exceeded.
                if code == -32 {
                    return Err(SendError::Transient(detail).after(done));
                }
                if message.get("attachment").is_some() {
                    // An OA or API version that refuses the button template still gets
                    // the reply: its last part once more, with the choices as a
                    // numbered list.
                    tracing::warn!(%detail, "Zalo refused the choice buttons; sending them as a numbered list");
                    let text = Self::render(
                        message["text"].as_str().unwrap_or_default(),
                        &d.quick_replies,
                    );
                    let pieces = super::split_text(&text, MAX_TEXT);
                    let n = pieces.len();
                    for (i, piece) in pieces.into_iter().enumerate().rev() {
                        queue.push_front((json!({ "text": piece }), completes && i + 1 == n));
                    }
                    break;
                }
                return Err(SendError::Permanent(detail).after(done));
            }
        }
        Ok(last_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_labels_are_the_ones_the_service_knows() {
        for event in [
            "user_send_image",
            "user_send_gif",
            "user_send_sticker",
            "user_send_audio",
            "user_send_video",
            "user_send_file",
            "user_send_location",
            "user_send_link",
            "user_send_business_card",
            "user_send_other",
        ] {
            assert!(
                crate::channels::ATTACHMENT_LABELS.contains(&attachment_label(event)),
                "{event}"
            );
        }
    }

    fn adapter() -> Zalo {
        Zalo::new(
            ZaloSettings {
                app_id: "1234567890".into(),
                oa_secret: "oa-bi-mat".into(),
                app_secret: None,
                access_token: "a".into(),
                refresh_token: None,
                api_base: "http://127.0.0.1:9".into(),
                oauth_base: "http://127.0.0.1:9".into(),
                max_event_age: Duration::from_secs(600),
            },
            None,
            None,
            Duration::from_secs(1),
        )
    }

    /// Vector computed independently with Python:
    /// `hashlib.sha256(app_id + body + timestamp + secret).hexdigest()`.
    #[test]
    fn mac_matches_python_sha256() {
        let body = r#"{"app_id":"1234567890","event_name":"user_send_text","timestamp":"1764000000000","sender":{"id":"z1"},"recipient":{"id":"oa1"},"message":{"msg_id":"zm1","text":"Đơn của em đâu"}}"#;
        assert_eq!(
            mac("1234567890", body.as_bytes(), "1764000000000", "oa-bi-mat"),
            "67a780d84dbb04fc838556f877b931f913944a69b747b594b9510de247baf744"
        );
        let a = adapter();
        // Correctly signed but old: stale.
        let sig = format!(
            "mac={}",
            mac("1234567890", body.as_bytes(), "1764000000000", "oa-bi-mat")
        );
        assert_eq!(
            a.verify(Some(&sig), body.as_bytes()),
            Err(VerifyError::Stale)
        );
        let now = chrono::Utc::now().timestamp_millis().to_string();
        let fresh = body.replace("1764000000000", &now);
        let m = mac("1234567890", fresh.as_bytes(), &now, "oa-bi-mat");
        assert_eq!(
            a.verify(Some(&format!("mac={m}")), fresh.as_bytes()),
            Ok(())
        );
        assert_eq!(a.verify(Some(&m), fresh.as_bytes()), Ok(()));
        assert_eq!(a.verify(None, fresh.as_bytes()), Err(VerifyError::Missing));
        let wrong = mac("1234567890", fresh.as_bytes(), &now, "khac");
        assert_eq!(
            a.verify(Some(&wrong), fresh.as_bytes()),
            Err(VerifyError::Invalid)
        );
    }

    #[test]
    fn parses_messages_and_ignores_other_events() {
        let a = adapter();
        let text = json!({"app_id": "1", "user_id_by_app": "x", "event_name": "user_send_text", "timestamp": "1",
            "sender": {"id": "z1"}, "recipient": {"id": "oa1"}, "message": {"msg_id": "zm1", "text": "phí ship"}});
        assert_eq!(
            a.parse(text.to_string().as_bytes()).unwrap(),
            vec![InboundEvent::Message(InboundMessage {
                user_id: "z1".into(),
                account: Some("oa1".into()),
                message_id: "zm1".into(),
                text: "phí ship".into(),
                attachment: false,
            })]
        );
        let image = json!({"event_name": "user_send_image", "timestamp": "1", "sender": {"id": "z1"},
            "recipient": {"id": "oa1"}, "message": {"msg_id": "zm2", "attachments": [{"type": "image", "payload": {"url": "https://z/i.jpg"}}]}});
        match &a.parse(image.to_string().as_bytes()).unwrap()[0] {
            InboundEvent::Message(m) => {
                assert!(m.attachment);
                assert_eq!(m.text, "[Ảnh] https://z/i.jpg");
            }
            other => panic!("{other:?}"),
        }
        for name in [
            "user_seen_message",
            "user_received_message",
            "oa_send_text",
            "follow",
            "unfollow",
        ] {
            let e = json!({"event_name": name, "timestamp": "1", "sender": {"id": "z1"},
                           "message": {"msg_ids": ["a"]}});
            assert_eq!(
                a.parse(e.to_string().as_bytes()).unwrap(),
                vec![InboundEvent::Ignored(name.into())]
            );
        }
        assert!(a.parse(b"{}").is_err());
    }

    #[test]
    fn numbered_options_and_window() {
        let d = Delivery {
            recipient: "z1".into(),
            account: None,
            text: "Anh/chị hỏi câu nào ạ?".into(),
            quick_replies: vec!["Phí ship".into(), "Đổi trả".into()],
            author: "bot".into(),
            since_customer: Some(chrono::Duration::minutes(1)),
            skip_parts: 0,
        };
        assert_eq!(
            Zalo::render(&d.text, &d.quick_replies),
            "Anh/chị hỏi câu nào ạ?\n1. Phí ship\n2. Đổi trả"
        );
        let rating = Delivery {
            quick_replies: (1..=5).map(|i| i.to_string()).collect(),
            ..d
        };
        assert_eq!(
            Zalo::render(&rating.text, &rating.quick_replies),
            "Anh/chị hỏi câu nào ạ?"
        );
        let a = adapter();
        assert!(a.window("agent", Some(chrono::Duration::hours(47))).is_ok());
        assert!(a
            .window("agent", Some(chrono::Duration::hours(49)))
            .is_err());
    }

    #[test]
    fn few_choices_go_as_buttons_that_send_the_choice_back() {
        let long = "Chính sách đổi trả hàng điện tử ".repeat(5);
        let d = Delivery {
            recipient: "z1".into(),
            account: None,
            text: "Dạ anh/chị muốn hỏi về mục nào ạ?".into(),
            quick_replies: vec!["Phí ship".into(), long.trim().to_string()],
            author: "bot".into(),
            since_customer: Some(chrono::Duration::minutes(1)),
            skip_parts: 0,
        };
        let m = one(&d);
        assert_eq!(m["text"], "Dạ anh/chị muốn hỏi về mục nào ạ?");
        assert_eq!(m["attachment"]["type"], "template");
        let buttons = m["attachment"]["payload"]["buttons"].as_array().unwrap();
        assert_eq!(buttons.len(), 2);
        assert_eq!(
            buttons[0],
            json!({"title": "Phí ship", "type": "oa.query.show", "payload": "Phí ship"})
        );
        let title = buttons[1]["title"].as_str().unwrap();
        assert_eq!(title.chars().count(), BUTTON_TITLE_CHARS);
        assert!(title.ends_with('…'));
        assert_eq!(
            buttons[1]["payload"],
            long.trim(),
            "the payload is the whole choice"
        );

        let rating = Delivery {
            quick_replies: (1..=5).map(|i| i.to_string()).collect(),
            ..d.clone()
        };
        let m = one(&rating);
        let titles: Vec<&str> = m["attachment"]["payload"]["buttons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, ["1", "2", "3", "4", "5"]);

        let many = Delivery {
            quick_replies: (1..=6).map(|i| format!("Mục {i}")).collect(),
            ..d.clone()
        };
        let m = one(&many);
        assert!(m.get("attachment").is_none());
        assert!(m["text"].as_str().unwrap().ends_with("\n6. Mục 6"));
        let plain = Delivery {
            quick_replies: Vec::new(),
            ..d.clone()
        };
        assert_eq!(
            one(&plain),
            json!({"text": "Dạ anh/chị muốn hỏi về mục nào ạ?"})
        );

        // Longer than Zalo's 2,000 characters: several messages, the buttons on the
        // last; without buttons, the numbered list ends the last.
        let sentence = "Dạ, sản phẩm được đổi trong 7 ngày nếu còn nguyên tem mác ạ. ";
        let long = Delivery {
            text: sentence.repeat(70),
            ..d.clone()
        };
        let ms = Zalo::messages(&long);
        assert_eq!(ms.len(), 3);
        for m in &ms[..2] {
            assert!(m.get("attachment").is_none());
        }
        assert!(ms[2]["attachment"]["payload"]["buttons"].is_array());
        let texts: Vec<&str> = ms.iter().map(|m| m["text"].as_str().unwrap()).collect();
        assert!(texts.iter().all(|t| t.chars().count() <= MAX_TEXT));
        assert_eq!(texts.join(" "), long.text.trim());
        let ms = Zalo::messages(&Delivery {
            quick_replies: (1..=6).map(|i| format!("Mục {i}")).collect(),
            ..long
        });
        assert_eq!(ms.len(), 3);
        assert!(ms[2]["text"].as_str().unwrap().ends_with("\n6. Mục 6"));
    }

    /// The one message of a short reply.
    fn one(d: &Delivery) -> serde_json::Value {
        let mut ms = Zalo::messages(d);
        assert_eq!(ms.len(), 1, "{ms:?}");
        ms.remove(0)
    }
}
