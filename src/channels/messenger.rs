//! Facebook Messenger (Graph API): `X-Hub-Signature-256` verification, webhook
//! parsing, the Send API, the 24-hour window and the `HUMAN_AGENT` tag.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use crate::secret::same_bytes;
use crate::text::clip;

use super::{
    transport_error, Channel, ChannelAdapter, Delivery, InboundEvent, InboundMessage, ParseError,
    SendError, VerifyError,
};

/// Longest text the Send API takes in one message.
const MAX_TEXT: usize = 2000;
const MAX_QUICK_REPLIES: usize = 13;
const QUICK_TITLE_CHARS: usize = 20;

#[derive(Debug, Clone)]
pub struct MessengerSettings {
    pub app_secret: String,
    pub verify_token: String,
    pub page_token: String,
    pub api_base: String,
}

pub struct Messenger {
    settings: MessengerSettings,
    http: reqwest::Client,
}

/// `sha256=<hex>` of HMAC-SHA256(app secret, body): the header Meta sends.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Messenger {
    pub fn new(settings: MessengerSettings, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("http client");
        Self { settings, http }
    }

    /// The `messaging_type` (and tag) for a message, or why it cannot be sent.
    fn messaging_type(
        author: &str,
        since: Option<chrono::Duration>,
    ) -> Result<(&'static str, Option<&'static str>), String> {
        let Some(since) = since else {
            return Err("the customer has never written to the page".into());
        };
        if since <= chrono::Duration::hours(24) {
            Ok(("RESPONSE", None))
        } else if author == "agent" && since <= chrono::Duration::days(7) {
            Ok(("MESSAGE_TAG", Some("HUMAN_AGENT")))
        } else if author == "agent" {
            Err(
                "Messenger allows human replies only within 7 days of the customer's last message"
                    .into(),
            )
        } else {
            Err("outside Messenger's 24-hour messaging window".into())
        }
    }

    async fn post(&self, page: &str, body: serde_json::Value) -> Result<Option<String>, SendError> {
        let url = format!(
            "{}/{}/messages",
            self.settings.api_base.trim_end_matches('/'),
            page
        );
        let r = self
            .http
            .post(url)
            .query(&[("access_token", &self.settings.page_token)])
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        if status.is_success() {
            return Ok(v["message_id"].as_str().map(String::from));
        }
        let code = v["error"]["code"].as_i64().unwrap_or_default();
        let message = v["error"]["message"].as_str().unwrap_or("no error message");
        let detail = format!("Graph API {status} (code {code}): {message}");
        // Server errors, throttling and Graph's "temporary" codes are retried.
        if status.is_server_error()
            || status.as_u16() == 429
            || matches!(code, 1 | 2 | 4 | 17 | 32 | 613)
        {
            Err(SendError::Transient(detail))
        } else {
            Err(SendError::Permanent(detail))
        }
    }
}

#[derive(Deserialize)]
struct Webhook {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    messaging: Vec<Event>,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct Event {
    sender: Id,
    recipient: Option<Id>,
    #[serde(default)]
    timestamp: i64,
    message: Option<Message>,
    postback: Option<Postback>,
}

#[derive(Deserialize)]
struct Message {
    mid: String,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    quick_reply: Option<Payload>,
    #[serde(default)]
    attachments: Vec<Attachment>,
}

#[derive(Deserialize)]
struct Payload {
    payload: String,
}

#[derive(Deserialize)]
struct Postback {
    mid: Option<String>,
    title: Option<String>,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct Attachment {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: serde_json::Value,
}

/// A machine code rather than words ("GET_STARTED", "MENU_ORDERS").
fn is_code(payload: &str) -> bool {
    !payload.is_empty()
        && payload.contains('_')
        && payload
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// How an attachment appears in the transcript (agents read it).
fn attachment_text(list: &[Attachment]) -> String {
    list.iter()
        .map(|a| {
            let label = match a.kind.as_str() {
                "image" if a.payload.get("sticker_id").is_some() => "Nhãn dán",
                "image" => "Ảnh",
                "video" => "Video",
                "audio" => "Ghi âm",
                "file" => "Tệp",
                "location" => "Vị trí",
                _ => "Tệp đính kèm",
            };
            match a.payload["url"].as_str() {
                Some(url) => format!("[{label}] {url}"),
                None => format!("[{label}]"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[async_trait::async_trait]
impl ChannelAdapter for Messenger {
    fn channel(&self) -> Channel {
        Channel::Messenger
    }

    fn signature_header(&self) -> &'static str {
        "x-hub-signature-256"
    }

    fn verify(&self, sig: Option<&str>, body: &[u8]) -> Result<(), VerifyError> {
        let sig = sig.map(str::trim).filter(|s| !s.is_empty());
        let sig = sig.ok_or(VerifyError::Missing)?;
        let want = signature(&self.settings.app_secret, body);
        if same_bytes(sig.to_ascii_lowercase().as_bytes(), want.as_bytes()) {
            Ok(())
        } else {
            Err(VerifyError::Invalid)
        }
    }

    fn parse(&self, body: &[u8]) -> Result<Vec<InboundEvent>, ParseError> {
        let hook: Webhook = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
        if hook.object != "page" {
            return Ok(vec![InboundEvent::Ignored(format!(
                "object {}",
                hook.object
            ))]);
        }
        let mut out = Vec::new();
        for event in hook.entry.into_iter().flat_map(|e| e.messaging) {
            let account = event.recipient.map(|r| r.id);
            let user_id = event.sender.id;
            if let Some(m) = event.message {
                if m.is_echo {
                    out.push(InboundEvent::Ignored("echo".into()));
                    continue;
                }
                let attachment = m.text.is_none() && !m.attachments.is_empty();
                // A quick reply carries the full option text in its payload. Text sent
                // with a photo keeps the photo's link below it, for the agent.
                let text = match (m.quick_reply.map(|q| q.payload).or(m.text), &m.attachments) {
                    (Some(t), list) if list.is_empty() => t,
                    (Some(t), list) => format!("{t}\n{}", attachment_text(list)),
                    (None, list) => attachment_text(list),
                };
                if text.trim().is_empty() {
                    out.push(InboundEvent::Ignored("empty message".into()));
                    continue;
                }
                out.push(InboundEvent::Message(InboundMessage {
                    user_id,
                    account,
                    message_id: m.mid,
                    text,
                    attachment,
                }));
            } else if let Some(p) = event.postback {
                // Our own buttons carry their text as the payload; a page's buttons
                // ("Get Started", a persistent menu) carry a code like GET_STARTED,
                // and then the customer tapped the title.
                let payload = p.payload.unwrap_or_default();
                let text = match p.title {
                    Some(title) if is_code(&payload) && !title.trim().is_empty() => title,
                    title if payload.trim().is_empty() => title.unwrap_or_default(),
                    _ => payload.clone(),
                };
                if text.trim().is_empty() {
                    out.push(InboundEvent::Ignored("empty postback".into()));
                    continue;
                }
                // Without a mid, two taps in the same millisecond differ by payload.
                let message_id = p.mid.unwrap_or_else(|| {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    std::hash::Hash::hash(&payload, &mut h);
                    let tag = std::hash::Hasher::finish(&h);
                    format!("postback:{user_id}:{}:{tag:016x}", event.timestamp)
                });
                out.push(InboundEvent::Message(InboundMessage {
                    user_id,
                    account,
                    message_id,
                    text,
                    attachment: false,
                }));
            } else {
                out.push(InboundEvent::Ignored(
                    "delivery, read or other event".into(),
                ));
            }
        }
        Ok(out)
    }

    fn subscription(&self, mode: Option<&str>, token: Option<&str>) -> bool {
        let token_ok =
            token.is_some_and(|t| same_bytes(t.as_bytes(), self.settings.verify_token.as_bytes()));
        mode == Some("subscribe") && token_ok && !self.settings.verify_token.is_empty()
    }

    fn window(&self, author: &str, since: Option<chrono::Duration>) -> Result<(), String> {
        Self::messaging_type(author, since).map(|_| ())
    }

    async fn send(&self, d: &Delivery) -> Result<Option<String>, SendError> {
        let (kind, tag) =
            Self::messaging_type(&d.author, d.since_customer).map_err(SendError::Permanent)?;
        let page = d.account.as_deref().unwrap_or("me");
        // Messenger shows 20 characters of a quick reply: when a choice is longer,
        // the text lists every choice in full, numbered, and each button starts with
        // its number ("2. Quy trình bảo hà…"); its payload stays the whole choice.
        let shown = d.quick_replies.iter().take(MAX_QUICK_REPLIES);
        let numbered = shown.clone().any(|q| q.chars().count() > QUICK_TITLE_CHARS);
        let mut text = d.text.clone();
        if numbered {
            for (n, q) in shown.clone().enumerate() {
                text.push_str(&format!("\n{}. {q}", n + 1));
            }
        }
        let chunks = super::split_text(&text, MAX_TEXT);
        let mut last_id = None;
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.iter().enumerate().skip(d.skip_parts) {
            let mut message = json!({ "text": chunk });
            if i == last && !d.quick_replies.is_empty() {
                message["quick_replies"] = shown
                    .clone()
                    .enumerate()
                    .map(|(n, q)| {
                        let title = match numbered {
                            true => clip(&format!("{}. {q}", n + 1), QUICK_TITLE_CHARS),
                            false => q.clone(),
                        };
                        json!({"content_type": "text", "title": title, "payload": q})
                    })
                    .collect();
            }
            let mut body = json!({
                "recipient": {"id": d.recipient},
                "messaging_type": kind,
                "message": message,
            });
            if let Some(tag) = tag {
                body["tag"] = json!(tag);
            }
            last_id = self
                .post(page, body)
                .await
                .map_err(|e| e.after(i - d.skip_parts))?;
        }
        Ok(last_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_labels_are_the_ones_the_service_knows() {
        for kind in ["image", "video", "audio", "file", "location", "fallback"] {
            for payload in [serde_json::json!({}), serde_json::json!({"sticker_id": 1})] {
                let a = Attachment {
                    kind: kind.into(),
                    payload,
                };
                let line = attachment_text(&[a]);
                assert_eq!(crate::channels::written_text(&line), "", "{line}");
            }
        }
    }

    fn adapter() -> Messenger {
        Messenger::new(
            MessengerSettings {
                app_secret: "bi-mat-ung-dung".into(),
                verify_token: "xac-minh".into(),
                page_token: "page".into(),
                api_base: "http://127.0.0.1:9".into(),
            },
            Duration::from_secs(1),
        )
    }

    /// Vector computed independently with Python:
    /// `hmac.new(b"bi-mat-ung-dung", body, hashlib.sha256).hexdigest()`.
    #[test]
    fn signature_matches_python_hmac() {
        let body = r#"{"object":"page","entry":[{"messaging":[{"sender":{"id":"u1"},"recipient":{"id":"p1"},"timestamp":1,"message":{"mid":"m1","text":"Xin chào shop"}}]}]}"#;
        assert_eq!(
            signature("bi-mat-ung-dung", body.as_bytes()),
            "sha256=4f274281c0a410075d1a9fbb6ab15dd9295062cfced26dc286413d5658d42521"
        );
        let a = adapter();
        let sig = signature("bi-mat-ung-dung", body.as_bytes());
        assert_eq!(a.verify(Some(&sig), body.as_bytes()), Ok(()));
        assert_eq!(
            a.verify(
                Some(&sig.to_uppercase().replace("SHA256=", "sha256=")),
                body.as_bytes()
            ),
            Ok(())
        );
        assert_eq!(a.verify(None, body.as_bytes()), Err(VerifyError::Missing));
        assert_eq!(
            a.verify(Some(&signature("cu", body.as_bytes())), body.as_bytes()),
            Err(VerifyError::Invalid)
        );
        assert_eq!(
            a.verify(Some(&sig), b"{\"object\":\"page\"}"),
            Err(VerifyError::Invalid)
        );
    }

    #[test]
    fn get_started_text_with_a_photo_and_taps_in_the_same_millisecond() {
        let body = serde_json::json!({"object": "page", "entry": [{"id": "p1", "messaging": [
            {"sender": {"id": "u1"}, "recipient": {"id": "p1"}, "timestamp": 7,
             "postback": {"title": "Bắt đầu", "payload": "GET_STARTED"}},
            {"sender": {"id": "u1"}, "recipient": {"id": "p1"}, "timestamp": 7,
             "postback": {"title": "Gặp nhân viên", "payload": "Gặp nhân viên"}},
            {"sender": {"id": "u1"}, "recipient": {"id": "p1"}, "timestamp": 8,
             "message": {"mid": "m8", "text": "áo bị lỗi như này",
                         "attachments": [{"type": "image", "payload": {"url": "https://x/b.jpg"}}]}},
        ]}]});
        let events = adapter().parse(body.to_string().as_bytes()).unwrap();
        let msgs: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                InboundEvent::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].text, "Bắt đầu");
        assert_eq!(msgs[1].text, "Gặp nhân viên");
        assert_ne!(msgs[0].message_id, msgs[1].message_id);
        assert_eq!(msgs[2].text, "áo bị lỗi như này\n[Ảnh] https://x/b.jpg");
        assert!(!msgs[2].attachment);
    }

    #[test]
    fn parses_text_quick_replies_postbacks_and_skips_echoes() {
        let body = serde_json::json!({"object": "page", "entry": [
            {"id": "p1", "messaging": [
                {"sender": {"id": "u1"}, "recipient": {"id": "p1"}, "timestamp": 1,
                 "message": {"mid": "m1", "text": "ship bao lâu"}},
                {"sender": {"id": "p1"}, "recipient": {"id": "u1"}, "timestamp": 2,
                 "message": {"mid": "m2", "text": "echo", "is_echo": true}},
            ]},
            {"id": "p1", "messaging": [
                {"sender": {"id": "u2"}, "recipient": {"id": "p1"}, "timestamp": 3,
                 "message": {"mid": "m3", "text": "Chính sách đổi…", "quick_reply": {"payload": "Chính sách đổi trả trong 7 ngày"}}},
                {"sender": {"id": "u2"}, "recipient": {"id": "p1"}, "timestamp": 4,
                 "postback": {"title": "Gặp nhân viên", "payload": "Gặp nhân viên"}},
                {"sender": {"id": "u2"}, "recipient": {"id": "p1"}, "timestamp": 5,
                 "message": {"mid": "m5", "attachments": [{"type": "image", "payload": {"url": "https://x/a.jpg"}}]}},
                {"sender": {"id": "u2"}, "recipient": {"id": "p1"}, "timestamp": 6, "read": {"watermark": 5}},
            ]},
        ]});
        let events = adapter().parse(body.to_string().as_bytes()).unwrap();
        let msgs: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                InboundEvent::Message(m) => Some((
                    m.user_id.as_str(),
                    m.message_id.as_str(),
                    m.text.as_str(),
                    m.attachment,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            msgs,
            vec![
                ("u1", "m1", "ship bao lâu", false),
                ("u2", "m3", "Chính sách đổi trả trong 7 ngày", false),
                ("u2", msgs[2].1, "Gặp nhân viên", false),
                ("u2", "m5", "[Ảnh] https://x/a.jpg", true),
            ]
        );
        assert!(msgs[2].1.starts_with("postback:u2:4:"), "{msgs:?}");
        assert_eq!(events.len(), 6);
        assert!(adapter().parse(b"not json").is_err());
    }

    #[test]
    fn windows() {
        let h = chrono::Duration::hours;
        assert_eq!(
            Messenger::messaging_type("bot", Some(h(1))),
            Ok(("RESPONSE", None))
        );
        assert!(Messenger::messaging_type("bot", Some(h(25))).is_err());
        assert_eq!(
            Messenger::messaging_type("agent", Some(h(25))),
            Ok(("MESSAGE_TAG", Some("HUMAN_AGENT")))
        );
        assert!(Messenger::messaging_type("agent", Some(h(24 * 8))).is_err());
        assert!(Messenger::messaging_type("agent", None).is_err());
    }

    #[test]
    fn subscription_handshake() {
        let a = adapter();
        assert!(a.subscription(Some("subscribe"), Some("xac-minh")));
        assert!(!a.subscription(Some("subscribe"), Some("sai")));
        assert!(!a.subscription(Some("unsubscribe"), Some("xac-minh")));
        assert!(!a.subscription(None, None));
    }
}
