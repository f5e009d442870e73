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
        let mut syl = normalizer.syllables(text);
        let mut folded: Vec<String> = syl.iter().map(|s| fold(&s.to_lowercase())).collect();
        if folded.is_empty() || folded.len() > self.max_words {
            return None;
        }
        let longest = |cues: &[Vec<String>], hit: &dyn Fn(&[String]) -> bool| {
            cues.iter().filter(|p| hit(p)).map(Vec::len).max()
        };
        let start = longest(&self.starts, &|p| folded.starts_with(p));
        if let Some(n) = start {
            syl.drain(..n);
            folded.drain(..n);
        }
        while folded.len() > 1 && folded.last().is_some_and(|l| self.particles.contains(l)) {
            syl.pop();
            folded.pop();
        }
        match longest(&self.ends, &|p| folded.ends_with(p)) {
            Some(n) => syl.truncate(syl.len() - n),
            None if start.is_none() => return None,
            None => {}
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
        self.content(normalizer, text).is_some()
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
