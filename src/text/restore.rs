//! Diacritic restoration for messages typed without marks ("phi ship ra ha noi"),
//! using a syllable bigram model learnt from the knowledge base's own text plus a small
//! table of everyday chat phrases. Only syllables typed without marks are changed.

use std::collections::HashMap;

use super::{fold, has_diacritics};

const COMMON_PHRASES: &str = include_str!("common_vi.txt");
/// Interpolation weight of the unigram model inside the bigram estimate.
const ALPHA: f64 = 2.0;
/// Weight of a form the model has never seen (the input as typed).
const UNSEEN: f64 = 0.3;

#[derive(Debug, Default, Clone)]
pub struct DiacriticRestorer {
    /// folded syllable → accented forms seen, with counts.
    forms: HashMap<String, Vec<(String, u32)>>,
    unigrams: HashMap<String, u32>,
    bigrams: HashMap<(String, String), u32>,
    total: u64,
}

impl DiacriticRestorer {
    /// Learns from tokenized sentences (lowercase NFC syllables).
    pub fn learn<'a, I>(sentences: I) -> Self
    where
        I: IntoIterator<Item = &'a [String]>,
    {
        let mut me = Self::default();
        let normalizer = super::Normalizer::default();
        let common: Vec<Vec<String>> = COMMON_PHRASES
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| normalizer.syllables(l))
            .collect();
        for s in &common {
            me.add(s);
        }
        for s in sentences {
            me.add(s);
        }
        for forms in me.forms.values_mut() {
            forms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            forms.truncate(8);
        }
        me
    }

    fn add(&mut self, sentence: &[String]) {
        for syl in sentence {
            *self.unigrams.entry(syl.clone()).or_default() += 1;
            self.total += 1;
            let forms = self.forms.entry(fold(syl)).or_default();
            match forms.iter_mut().find(|(f, _)| f == syl) {
                Some((_, n)) => *n += 1,
                None => forms.push((syl.clone(), 1)),
            }
        }
        for w in sentence.windows(2) {
            *self
                .bigrams
                .entry((w[0].clone(), w[1].clone()))
                .or_default() += 1;
        }
    }

    fn p_uni(&self, syl: &str) -> f64 {
        let n = self.unigrams.get(syl).copied().unwrap_or(0) as f64;
        let v = self.unigrams.len() as f64 + 1.0;
        (n + UNSEEN) / (self.total as f64 + UNSEEN * v)
    }

    fn log_p(&self, prev: Option<&str>, syl: &str) -> f64 {
        let uni = self.p_uni(syl);
        let Some(prev) = prev else {
            return uni.ln();
        };
        let big = self
            .bigrams
            .get(&(prev.to_string(), syl.to_string()))
            .copied()
            .unwrap_or(0) as f64;
        let ctx = self.unigrams.get(prev).copied().unwrap_or(0) as f64;
        ((big + ALPHA * uni) / (ctx + ALPHA)).ln()
    }

    /// Restores marks on the syllables typed without them; others are kept.
    pub fn restore(&self, syllables: &[String]) -> Vec<String> {
        if syllables.is_empty() {
            return Vec::new();
        }
        let candidates: Vec<Vec<String>> = syllables
            .iter()
            .map(|s| {
                if has_diacritics(s) || s.chars().any(|c| c.is_ascii_digit()) {
                    return vec![s.clone()];
                }
                let mut c: Vec<String> = self
                    .forms
                    .get(s.as_str())
                    .map(|f| f.iter().map(|(w, _)| w.clone()).collect())
                    .unwrap_or_default();
                if !c.contains(s) {
                    c.push(s.clone());
                }
                c
            })
            .collect();
        // Viterbi over the candidate lattice.
        let mut scores: Vec<Vec<(f64, usize)>> = Vec::with_capacity(candidates.len());
        scores.push(
            candidates[0]
                .iter()
                .map(|c| (self.log_p(None, c), 0))
                .collect(),
        );
        for i in 1..candidates.len() {
            let row = candidates[i]
                .iter()
                .map(|c| {
                    candidates[i - 1]
                        .iter()
                        .enumerate()
                        .map(|(j, p)| (scores[i - 1][j].0 + self.log_p(Some(p), c), j))
                        .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a })
                })
                .collect();
            scores.push(row);
        }
        let last = scores.len() - 1;
        let mut best = scores[last]
            .iter()
            .enumerate()
            .fold(
                (f64::NEG_INFINITY, 0),
                |a, (k, s)| {
                    if s.0 > a.0 {
                        (s.0, k)
                    } else {
                        a
                    }
                },
            )
            .1;
        let mut out = vec![String::new(); candidates.len()];
        for i in (0..candidates.len()).rev() {
            out[i] = candidates[i][best].clone();
            best = scores[i][best].1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Normalizer;

    fn restorer(corpus: &[&str]) -> (Normalizer, DiacriticRestorer) {
        let n = Normalizer::default();
        let sents: Vec<Vec<String>> = corpus.iter().map(|s| n.syllables(s)).collect();
        let r = DiacriticRestorer::learn(sents.iter().map(Vec::as_slice));
        (n, r)
    }

    #[test]
    fn restores_from_knowledge_vocabulary() {
        let (n, r) = restorer(&[
            "Phí giao hàng ra Hà Nội là 25.000đ",
            "Thời gian giao hàng đến các tỉnh miền Trung",
            "Đổi trả trong vòng 7 ngày",
        ]);
        let cases = [
            (
                "phi ship ra ha noi bao nhieu",
                "phí giao hàng ra hà nội bao nhiêu",
            ),
            ("doi tra trong may ngay", "đổi trả trong mấy ngày"),
            (
                "giao hang mien trung mat bao lau",
                "giao hàng miền trung mất bao lâu",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r.restore(&n.syllables(input)).join(" "), want, "{input}");
        }
    }

    #[test]
    fn keeps_marked_and_unknown_syllables() {
        let (n, r) = restorer(&["Phí giao hàng"]);
        assert_eq!(
            r.restore(&n.syllables("phí xyzq giao hang DH240517"))
                .join(" "),
            "phí xyzq giao hàng dh240517"
        );
        assert!(r.restore(&[]).is_empty());
    }
}
