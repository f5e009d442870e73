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
    max_words: usize,
}

/// Recognizes messages that only make sense with the previous question.
pub struct Followups {
    starts: Vec<Vec<String>>,
    ends: Vec<Vec<String>>,
    particles: Vec<String>,
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
            max_words: cues.max_words,
        }
    }
}

impl Followups {
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
}
