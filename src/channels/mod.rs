//! Messaging channels. [`Channel`] names every way a customer reaches us; the
//! [`ChannelAdapter`] trait is what a messaging platform (Messenger, Zalo OA) must
//! provide: verify a webhook, parse it into typed inbound events, send a message and
//! render quick replies. Platform wire types never leave their adapter module.
//! [`outbox`] pushes every stored outbound message through the adapters.

pub mod messenger;
pub mod outbox;
pub mod zalo;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Api,
    Web,
    Messenger,
    Zalo,
    /// Hotline calls through a speech front end; the user id is the caller's number.
    Voice,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Api,
        Channel::Web,
        Channel::Messenger,
        Channel::Zalo,
        Channel::Voice,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Api => "api",
            Channel::Web => "web",
            Channel::Messenger => "messenger",
            Channel::Zalo => "zalo",
            Channel::Voice => "voice",
        }
    }

    /// Replies on these channels are pushed to the platform (through the outbox);
    /// the others read them from the response, the history or the event stream.
    pub fn pushes(self) -> bool {
        matches!(self, Channel::Messenger | Channel::Zalo)
    }

    /// Channels a customer posts to directly through `POST /api/v1/messages`.
    pub fn direct(self) -> bool {
        matches!(self, Channel::Api | Channel::Web)
    }
}

/// One event of a webhook delivery, after verification and parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundEvent {
    Message(InboundMessage),
    /// A delivery or read receipt, an echo, a follow: acknowledged, not a message.
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The customer's id on the platform (Messenger PSID, Zalo user id).
    pub user_id: String,
    /// The page or OA the customer wrote to.
    pub account: Option<String>,
    /// The platform's message id (Messenger `mid`, Zalo `msg_id`): the dedup key.
    pub message_id: String,
    pub text: String,
    /// The customer sent an image, sticker, file or location rather than text.
    pub attachment: bool,
}

/// The label of a sticker among `ATTACHMENT_LABELS`.
const STICKER: &str = "Nhãn dán";

/// Labels the adapters write for an attachment, one line each: "[Ảnh] https://…".
pub const ATTACHMENT_LABELS: [&str; 9] = [
    "Ảnh",
    "Nhãn dán",
    "Video",
    "Ghi âm",
    "Tệp",
    "Vị trí",
    "Liên kết",
    "Danh thiếp",
    "Tệp đính kèm",
];

/// The label of an attachment line ("[Ảnh] https://x/a.jpg" → "Ảnh").
fn attachment_label(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix('[')?;
    let (label, _) = rest.split_once(']')?;
    ATTACHMENT_LABELS.contains(&label).then_some(label)
}

/// What the customer wrote, without the attachment lines kept for agents: the bot
/// reads "áo bị lỗi như này", not the photo's link below it.
pub fn written_text(text: &str) -> String {
    text.lines()
        .filter(|l| attachment_label(l).is_none())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a message carries a photo, a file or anything else but a sticker.
pub fn holds_file(text: &str) -> bool {
    text.lines()
        .any(|l| attachment_label(l).is_some_and(|k| k != STICKER))
}

/// A message of stickers only (a thumbs-up): an acknowledgement, not a file.
pub fn only_stickers(text: &str) -> bool {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    lines.peek().is_some() && lines.all(|l| attachment_label(l) == Some(STICKER))
}

#[derive(Debug, Error, PartialEq)]
pub enum VerifyError {
    #[error("missing signature")]
    Missing,
    #[error("signature does not match")]
    Invalid,
    #[error("event timestamp outside the accepted window")]
    Stale,
}

#[derive(Debug, Error)]
#[error("malformed webhook payload: {0}")]
pub struct ParseError(pub String);

/// An outbound message handed to an adapter by the outbox.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub recipient: String,
    pub account: Option<String>,
    pub text: String,
    pub quick_replies: Vec<String>,
    /// `bot` or `agent`: platforms apply different messaging windows.
    pub author: String,
    /// How long ago the customer last wrote (`None`: never).
    pub since_customer: Option<chrono::Duration>,
    /// Leading parts of a long reply ([`split_text`]) an earlier attempt delivered:
    /// not sent again.
    pub skip_parts: usize,
}

#[derive(Debug, Error, PartialEq)]
pub enum SendError {
    /// Worth retrying later (timeout, 5xx, rate limit).
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Retrying will not help (outside the messaging window, blocked, bad request).
    #[error("{0}")]
    Permanent(String),
    /// A long reply failed after `sent` of its parts (after those skipped) were
    /// delivered.
    #[error("{error} (after {sent} parts were delivered)")]
    Partial { sent: usize, error: Box<SendError> },
}

impl SendError {
    /// `self`, as the failure of a send that had delivered `sent` parts first.
    pub(crate) fn after(self, sent: usize) -> Self {
        match self {
            _ if sent == 0 => self,
            SendError::Partial { sent: more, error } => SendError::Partial {
                sent: sent + more,
                error,
            },
            e => SendError::Partial {
                sent,
                error: Box::new(e),
            },
        }
    }
}

#[async_trait::async_trait]
pub trait ChannelAdapter: Send + Sync {
    fn channel(&self) -> Channel;

    /// The request header carrying the signature.
    fn signature_header(&self) -> &'static str;

    /// Checks the signature over the raw body before anything is parsed or stored.
    fn verify(&self, signature: Option<&str>, body: &[u8]) -> Result<(), VerifyError>;

    fn parse(&self, body: &[u8]) -> Result<Vec<InboundEvent>, ParseError>;

    /// A `GET` subscription handshake (Messenger's `hub.*`): whether mode and
    /// token are right. Platforms without one refuse.
    fn subscription(&self, _mode: Option<&str>, _token: Option<&str>) -> bool {
        false
    }

    /// Whether a message by `author` may still be sent `since_customer` after the
    /// customer's last message (the platform's messaging window).
    fn window(&self, author: &str, since_customer: Option<chrono::Duration>) -> Result<(), String>;

    /// Sends one message; `Ok` carries the platform's message id when it gives one.
    async fn send(&self, delivery: &Delivery) -> Result<Option<String>, SendError>;
}

/// The configured platform adapters.
#[derive(Clone, Default)]
pub struct Adapters(HashMap<Channel, Arc<dyn ChannelAdapter>>);

impl Adapters {
    pub fn insert(&mut self, adapter: Arc<dyn ChannelAdapter>) {
        self.0.insert(adapter.channel(), adapter);
    }

    pub fn get(&self, channel: Channel) -> Option<&Arc<dyn ChannelAdapter>> {
        self.0.get(&channel)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Classifies a failed HTTP exchange with a platform.
fn transport_error(e: reqwest::Error) -> SendError {
    SendError::Transient(if e.is_timeout() {
        "timed out".to_string()
    } else {
        format!("request failed: {e}")
    })
}

/// Splits a reply into messages of at most `max_chars` characters for a platform
/// that caps a message's length, so a long answer arrives whole, in order, in several
/// messages. Each cut falls at the last paragraph break within the limit, else the
/// last sentence end, else the last space; only a single word longer than the limit
/// is cut inside. Whitespace at the cuts is dropped. Empty text gives no message.
pub(crate) fn split_text(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let mut out = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > max_chars {
        let limit = rest
            .char_indices()
            .nth(max_chars)
            .map_or(rest.len(), |(i, _)| i);
        let cut = cut_point(rest, limit);
        let (piece, tail) = rest.split_at(cut);
        out.push(piece.trim_end().to_string());
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Where to cut `text` at or before byte `limit` (see [`split_text`]): the end of
/// the last paragraph, sentence or word that fits, preferring the larger unit when
/// it keeps at least half of the room used.
fn cut_point(text: &str, limit: usize) -> usize {
    let head = &text[..limit];
    // A boundary at the limit itself: the next character is a space.
    let at_limit = text[limit..].starts_with(char::is_whitespace);
    let min = limit / 2;
    if let Some(i) = head.rfind("\n\n").filter(|&i| i >= min) {
        return i;
    }
    let mut sentence = None;
    let mut word = None;
    let mut prev = None;
    for (i, c) in head.char_indices() {
        if c.is_whitespace() && i > 0 {
            word = Some(i);
            if c == '\n' || matches!(prev, Some('.' | '!' | '?' | '…' | ':' | ';')) {
                sentence = Some(i);
            }
        }
        prev = Some(c);
    }
    if at_limit && matches!(prev, Some('.' | '!' | '?' | '…' | ':' | ';')) {
        sentence = Some(limit);
    }
    if let Some(i) = sentence.filter(|&i| i >= min) {
        return i;
    }
    if at_limit {
        return limit;
    }
    word.filter(|&i| i > 0).unwrap_or(limit)
}

#[cfg(test)]
mod tests {

    #[test]
    fn attachment_lines_are_for_agents_not_for_the_bot() {
        assert_eq!(
            written_text("áo bị lỗi như này\n[Ảnh] https://x/b.jpg"),
            "áo bị lỗi như này"
        );
        assert_eq!(written_text("[Tệp] https://x/a.pdf"), "");
        assert_eq!(written_text("[giá sốc] áo thun"), "[giá sốc] áo thun");
        assert!(only_stickers("[Nhãn dán] https://x/like.png"));
        assert!(!only_stickers("[Nhãn dán]\n[Ảnh] https://x/a.jpg"));
        assert!(!only_stickers("ok shop"));
    }
    use super::*;

    #[test]
    fn channels_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        assert_eq!(Channel::parse("sms"), None);
        assert!(Channel::Zalo.pushes() && !Channel::Web.pushes());
    }

    #[test]
    fn long_replies_split_at_paragraphs_sentences_or_words() {
        let norm = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let para = "Dạ, phí giao hàng nội thành là 25.000đ ạ. Đơn từ 500.000đ được miễn phí.";
        let cases: Vec<(String, usize, Vec<&str>)> = vec![
            // Fits: one message, trimmed; empty: none.
            ("  Dạ, được ạ.  ".into(), 20, vec!["Dạ, được ạ."]),
            ("   ".into(), 20, vec![]),
            // Paragraph break first.
            (format!("{para}\n\n{para}"), 100, vec![para, para]),
            // Else a sentence end.
            (
                para.into(),
                60,
                vec![
                    "Dạ, phí giao hàng nội thành là 25.000đ ạ.",
                    "Đơn từ 500.000đ được miễn phí.",
                ],
            ),
            // Else a space; a word longer than the limit is cut inside.
            (
                "một hai ba bốn năm".into(),
                9,
                vec!["một hai", "ba bốn", "năm"],
            ),
            ("aaaaaaaaaaaa bb".into(), 5, vec!["aaaaa", "aaaaa", "aa bb"]),
            // A boundary exactly at the limit.
            ("abcd efgh".into(), 4, vec!["abcd", "efgh"]),
        ];
        for (text, max, want) in cases {
            let got = split_text(&text, max);
            assert_eq!(got, want, "{text:?} at {max}");
            assert!(got.iter().all(|m| m.chars().count() <= max), "{got:?}");
        }
        // A long answer: nothing lost, nothing reordered, no word cut.
        let long = [para; 60].join(" ");
        let parts = split_text(&long, 2000);
        assert_eq!(parts.len(), 3);
        assert!(parts
            .iter()
            .all(|m| m.chars().count() <= 2000 && m.ends_with('.')));
        assert_eq!(norm(&parts.join(" ")), norm(&long));
    }

    #[test]
    fn clip_keeps_characters_whole() {
        assert_eq!(crate::text::clip("Phí giao hàng", 20), "Phí giao hàng");
        let c = crate::text::clip("Chính sách đổi trả hàng trong 7 ngày", 20);
        assert_eq!(c.chars().count(), 20);
        assert!(c.ends_with('…'));
    }
}
