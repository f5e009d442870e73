//! Twilio's voice wire format: `X-Twilio-Signature` and TwiML.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::speech::xml_escape;
use super::{Action, VoiceReply};

/// base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value, sorted
/// by name)).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> bool {
    header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .is_some_and(|given| {
            crate::secret::same_bytes(
                given.as_bytes(),
                signature(auth_token, url, params).as_bytes(),
            )
        })
}

/// How a hand-off leaves the bot: a phone number or SIP address to `<Dial>`, or a
/// queue (`queue:NAME`, or `workflow:WW…` for TaskRouter with the ticket as the task).
fn transfer(to: Option<&str>, reply: &VoiceReply) -> String {
    match to {
        Some(sip) if sip.starts_with("sip:") => {
            format!("<Dial><Sip>{}</Sip></Dial>", xml_escape(sip))
        }
        Some(q) if q.starts_with("queue:") => {
            format!("<Enqueue>{}</Enqueue>", xml_escape(&q[6..]))
        }
        Some(w) if w.starts_with("workflow:") => {
            let task = serde_json::json!({
                "ticket_code": reply.ticket_code,
                "summary": reply.say,
            });
            format!(
                "<Enqueue workflowSid=\"{}\"><Task>{}</Task></Enqueue>",
                xml_escape(&w[9..]),
                xml_escape(&task.to_string())
            )
        }
        Some(number) => format!("<Dial>{}</Dial>", xml_escape(number)),
        None => "<Enqueue>cskh</Enqueue>".into(),
    }
}

/// The TwiML document for a reply: speak, then listen again (`<Gather>` loop), or
/// transfer, or hang up.
pub fn twiml(reply: &VoiceReply, voice: &str, action_url: &str, hints: &[String]) -> String {
    let say = format!(
        "<Say language=\"vi-VN\" voice=\"{}\">{}</Say>",
        xml_escape(voice),
        xml_escape(&reply.say)
    );
    let body = match reply.action {
        Action::Continue => {
            let input = if reply.dtmf { "speech dtmf" } else { "speech" };
            let digits = if reply.dtmf { " numDigits=\"1\"" } else { "" };
            format!(
                "<Gather input=\"{input}\" language=\"vi-VN\" action=\"{a}\" method=\"POST\" speechTimeout=\"auto\"{digits} hints=\"{h}\">{say}</Gather><Redirect method=\"POST\">{a}</Redirect>",
                a = xml_escape(action_url),
                h = xml_escape(&hints.join(", ")),
            )
        }
        Action::Transfer => format!("{say}{}", transfer(reply.transfer_to.as_deref(), reply)),
        Action::Hangup => format!("{say}<Hangup/>"),
    };
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{body}</Response>")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's published example.
    #[test]
    fn published_signature_vector() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert!(verify(
            "12345",
            url,
            &params,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        ));
        assert!(!verify(
            "12345",
            url,
            &params,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgX=")
        ));
        assert!(!verify("12345", url, &params, None));
        assert!(!verify(
            "54321",
            url,
            &params,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        ));
    }
}
