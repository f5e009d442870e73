//! Follow-up questions: "còn Đà Nẵng thì sao?" continues the question before it. The
//! cue phrases are data (`followup.toml`); matching is on whole words without
//! diacritics, so "con da nang thi sao" reads the same.

use serde::Deserialize;

use super::{fold, Normalizer};

#[derive(Deserialize)]
struct Cues {
    starts: Vec<String>,
    ends: Vec<String>,
    particles: Vec<String>,
    frame: Vec<String>,
    max_words: usize,
}

/// Recognizes messages that only make sense with the previous question.
pub struct Followups {
    starts: Vec<Vec<String>>,
    ends: Vec<Vec<String>>,
    particles: Vec<String>,
    frame: std::collections::HashSet<String>,
    max_words: usize,
}

fn words(s: &str) -> Vec<String> {
    fold(&s.to_lowercase())
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

impl Default for Followups {
    fn default() -> Self {
        let cues: Cues =
            toml::from_str(include_str!("followup.toml")).expect("followup.toml is valid");
        let phrases = |v: &[String]| v.iter().map(|p| words(p)).collect();
        Self {
            starts: phrases(&cues.starts),
            ends: phrases(&cues.ends),
            particles: cues.particles.iter().flat_map(|p| words(p)).collect(),
            frame: cues.frame.iter().flat_map(|p| words(p)).collect(),
            max_words: cues.max_words,
        }
    }
}

impl Followups {
    /// The words of a continuation without its cue phrases and trailing particles
    /// ("còn Đà Nẵng thì sao ạ" → "đà nẵng"), as syllables; `None` if `text` is not a
    /// continuation.
    pub fn content(&self, normalizer: &Normalizer, text: &str) -> Option<Vec<String>> {
        if !self.continues(normalizer, text) {
            return None;
        }
        let mut syl = normalizer.syllables(text);
        let folded = |s: &[String]| -> Vec<String> { s.iter().flat_map(|x| words(x)).collect() };
        if syl.len() != folded(&syl).len() {
            return Some(Vec::new());
        }
        if let Some(p) = self
            .starts
            .iter()
            .filter(|p| folded(&syl).starts_with(p))
            .max_by_key(|p| p.len())
        {
            syl.drain(..p.len());
        }
        while syl.len() > 1 && self.particles.contains(&fold(&syl[syl.len() - 1])) {
            syl.pop();
        }
        if let Some(p) = self
            .ends
            .iter()
            .filter(|p| folded(&syl).ends_with(p))
            .max_by_key(|p| p.len())
        {
            syl.truncate(syl.len() - p.len());
        }
        Some(syl)
    }

    /// Whether a syllable frames a question ("bao nhiêu", "không", "shop") rather
    /// than names what it is about; diacritics ignored.
    pub fn is_frame(&self, syllable: &str) -> bool {
        self.frame.contains(&fold(&syllable.to_lowercase()))
    }

    /// Whether `text` reads as a continuation of the question before it.
    pub fn continues(&self, normalizer: &Normalizer, text: &str) -> bool {
        let mut w: Vec<String> = normalizer
            .syllables(text)
            .iter()
            .flat_map(|s| words(s))
            .collect();
        if w.is_empty() || w.len() > self.max_words {
            return false;
        }
        if self.starts.iter().any(|p| w.starts_with(p)) {
            return true;
        }
        while w.len() > 1 && w.last().is_some_and(|l| self.particles.contains(l)) {
            w.pop();
        }
        self.ends.iter().any(|p| w.ends_with(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_are_recognized_with_or_without_diacritics() {
        let f = Followups::default();
        let n = Normalizer::default();
        let cases = [
            ("còn Đà Nẵng thì sao?", true),
            ("con da nang thi sao", true),
            ("thế khách mới thì sao ạ", true),
            ("vậy dùng điểm thế nào", true),
            ("nếu mất hóa đơn thì sao shop", true),
            ("ship ra cần thơ thì sao vậy ạ", true),
            ("cá nhân thì như nào", true),
            ("phí ship ra Hà Nội bao nhiêu", false),
            ("shop có bán vé máy bay không", false),
            ("sao thanh toán online cứ báo lỗi", false),
            ("thì sao", true),
            ("", false),
            (
                "còn một chuyện nữa là hôm trước em đặt hai đơn mà giờ chỉ nhận được một đơn thôi",
                false,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(f.continues(&n, text), want, "{text}");
        }
    }

    #[test]
    fn a_continuation_s_content_is_what_it_adds() {
        let f = Followups::default();
        let n = Normalizer::default();
        let cases = [
            ("còn Đà Nẵng thì sao ạ", Some("đà nẵng")),
            ("thế còn hàng sale thì sao shop", Some("hàng sale")),
            ("vậy dùng điểm thế nào", Some("dùng điểm thế nào")),
            ("con ve cu chi thi sao", Some("ve cu chi")),
            ("phí ship ra Hà Nội bao nhiêu", None),
        ];
        for (text, want) in cases {
            let got = f.content(&n, text).map(|w| w.join(" "));
            assert_eq!(got.as_deref(), want, "{text}");
        }
    }
}
