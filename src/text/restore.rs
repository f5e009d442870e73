//! Diacritic restoration for messages typed without marks ("phi ship ra ha noi") and
//! respelling of syllables the vocabulary does not know ("hàg", "giãm", "sip"), using
//! a syllable bigram model learnt from the knowledge base's own text plus a small
//! table of everyday chat phrases, interpolated with a bigram model of general
//! informal Vietnamese (`syllables_vi.txt.gz`). Syllables the vocabulary knows keep
//! their marks.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::{fold, has_diacritics};

const COMMON_PHRASES: &str = include_str!("common_vi.txt");
/// Syllable unigram and bigram counts of informal Vietnamese forum text
/// (`scripts/vi-syllable-lm.py` documents the source).
const GENERAL_SYLLABLES: &[u8] = include_bytes!("syllables_vi.txt.gz");
/// Weight of the general-text model; the rest is the knowledge base's own text, which
/// knows the shop's words and phrasing.
const GENERAL_WEIGHT: f64 = 0.5;
/// Interpolation weight of the unigram inside the general bigram estimate.
const GENERAL_ALPHA: f64 = 2.0;
/// Most common forms of one folded syllable taken from the general table.
const GENERAL_FORMS: usize = 6;
/// Count from which a syllable of the general table is a word (below it, forum typos).
const GENERAL_KNOWN: u32 = 200;
/// Interpolation weight of the unigram model inside the bigram estimate.
const ALPHA: f64 = 2.0;
/// Weight of a form the model has never seen (the input as typed).
const UNSEEN: f64 = 0.3;
/// Channel model of a respelling, for a syllable the vocabulary does not know. Only
/// two slips are corrected, both common and both leaving a form the vocabulary would
/// not otherwise explain: the hỏi and ngã marks swapped ("giãm" for "giảm", "chĩ" for
/// "chỉ"), and the n of a final "ng" dropped ("hàg" for "hàng", "trog" for "trong";
/// no Vietnamese syllable ends in a bare g). Wider respelling (any one-letter edit)
/// was tried and turned real words the knowledge base does not use ("phố", "mưa",
/// "tuổi") into ones it does.
const P_HOI_NGA: f64 = 0.1;
const P_DROPPED_N: f64 = 0.1;

/// Vowels with the hỏi mark and the same vowel with ngã, pairwise.
const HOI: &str = "ảẳẩẻểỉỏổởủửỷ";
const NGA: &str = "ãẵẫẽễĩõỗỡũữỹ";

fn swap_hoi_nga(s: &str) -> Option<String> {
    let mut changed = false;
    let out = s
        .chars()
        .map(|c| {
            if let Some(i) = HOI.chars().position(|h| h == c) {
                changed = true;
                NGA.chars().nth(i).unwrap_or(c)
            } else if let Some(i) = NGA.chars().position(|n| n == c) {
                changed = true;
                HOI.chars().nth(i).unwrap_or(c)
            } else {
                c
            }
        })
        .collect();
    changed.then_some(out)
}

/// "hàg" → "hàng": a syllable ending in a bare g, with the n put back.
fn restore_final_ng(s: &str) -> Option<String> {
    let stem = s.strip_suffix('g')?;
    // "ng" and "gg" are not the slip; an empty stem is not a syllable.
    stem.chars()
        .last()
        .is_some_and(|c| !"gn".contains(c))
        .then(|| format!("{stem}ng"))
}

/// Syllable counts of general informal Vietnamese: unigrams, bigrams, and the most
/// common forms of each folded syllable.
struct General {
    ids: HashMap<String, u32>,
    words: Vec<String>,
    counts: Vec<u32>,
    total: f64,
    /// (first, second) syllable ids packed as `first << 32 | second`, sorted, and
    /// the count of each pair.
    pair_keys: Vec<u64>,
    pair_counts: Vec<u32>,
    forms: HashMap<String, Vec<u32>>,
}

impl General {
    fn parse(text: &str) -> Self {
        let mut me = General {
            ids: HashMap::new(),
            words: Vec::new(),
            counts: Vec::new(),
            total: 0.0,
            pair_keys: Vec::new(),
            pair_counts: Vec::new(),
            forms: HashMap::new(),
        };
        let mut pairs: Vec<(u64, u32)> = Vec::new();
        // Sections: "@unigrams" (syllable, count), then "@bigrams" (syllable, pairs).
        let mut in_unigrams = false;
        for line in text.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('@') {
                in_unigrams = name == "unigrams";
                continue;
            }
            let Some((word, rest)) = line.split_once('\t') else {
                continue;
            };
            if in_unigrams {
                let Ok(n) = rest.parse::<u32>() else { continue };
                let id = me.words.len() as u32;
                me.ids.insert(word.to_string(), id);
                me.words.push(word.to_string());
                me.counts.push(n);
                me.total += f64::from(n);
                // The section is sorted by count: each list comes out most common first.
                let list = me.forms.entry(fold(word)).or_default();
                if list.len() < GENERAL_FORMS {
                    list.push(id);
                }
            } else if let Some(&a) = me.ids.get(word) {
                for pair in rest.split(' ') {
                    let Some((next, n)) = pair.rsplit_once(':') else {
                        continue;
                    };
                    if let (Some(&b), Ok(n)) = (me.ids.get(next), n.parse::<u32>()) {
                        pairs.push(((u64::from(a) << 32) | u64::from(b), n));
                    }
                }
            }
        }
        pairs.sort_unstable();
        (me.pair_keys, me.pair_counts) = pairs.into_iter().unzip();
        me
    }

    fn load() -> Self {
        let mut text = String::new();
        let mut gz = flate2::read::GzDecoder::new(GENERAL_SYLLABLES);
        // The table is compiled in; a broken one is a build defect, and the restorer
        // then works from the knowledge base alone.
        if std::io::Read::read_to_string(&mut gz, &mut text).is_err() {
            text.clear();
        }
        Self::parse(&text)
    }

    fn count(&self, w: &str) -> u32 {
        self.ids.get(w).map_or(0, |&i| self.counts[i as usize])
    }

    fn p_uni(&self, w: &str) -> f64 {
        let v = self.words.len() as f64 + 1.0;
        (f64::from(self.count(w)) + UNSEEN) / (self.total + UNSEEN * v)
    }

    fn p(&self, prev: Option<&str>, w: &str) -> f64 {
        let uni = self.p_uni(w);
        let Some(prev) = prev else {
            return uni;
        };
        let (Some(&a), ctx) = (self.ids.get(prev), f64::from(self.count(prev))) else {
            return uni;
        };
        let big = self.ids.get(w).map_or(0, |&b| {
            let key = (u64::from(a) << 32) | u64::from(b);
            self.pair_keys
                .binary_search(&key)
                .map_or(0, |i| self.pair_counts[i])
        });
        (f64::from(big) + GENERAL_ALPHA * uni) / (ctx + GENERAL_ALPHA)
    }

    fn forms_of(&self, folded: &str) -> impl Iterator<Item = &String> {
        self.forms
            .get(folded)
            .into_iter()
            .flatten()
            .map(|&i| &self.words[i as usize])
    }
}

static GENERAL: LazyLock<General> = LazyLock::new(General::load);

#[derive(Debug, Default, Clone)]
pub struct DiacriticRestorer {
    /// folded syllable → accented forms seen, with counts.
    forms: HashMap<String, Vec<(String, u32)>>,
    unigrams: HashMap<String, u32>,
    bigrams: HashMap<(String, String), u32>,
    total: u64,
}

impl DiacriticRestorer {
    /// Learns from tokenized sentences (lowercase NFC syllables, as `normalizer` reads
    /// them: the everyday phrases it also learns are read the same way).
    pub fn learn<'a, I>(normalizer: &super::Normalizer, sentences: I) -> Self
    where
        I: IntoIterator<Item = &'a [String]>,
    {
        // Load the general table now rather than on the first customer message.
        LazyLock::force(&GENERAL);
        let mut me = Self::default();
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

    /// Whether the syllable is a word: in the knowledge base's text or common in
    /// general text.
    fn known(&self, syl: &str) -> bool {
        self.unigrams.contains_key(syl) || GENERAL.count(syl) >= GENERAL_KNOWN
    }

    /// Log-probability of `syl` after `prev`: the knowledge base's bigram model
    /// interpolated with the general one.
    fn log_p(&self, prev: Option<&str>, syl: &str) -> f64 {
        let uni = self.p_uni(syl);
        let own = match prev {
            None => uni,
            Some(prev) => {
                let big = self
                    .bigrams
                    .get(&(prev.to_string(), syl.to_string()))
                    .copied()
                    .unwrap_or(0) as f64;
                let ctx = self.unigrams.get(prev).copied().unwrap_or(0) as f64;
                (big + ALPHA * uni) / (ctx + ALPHA)
            }
        };
        ((1.0 - GENERAL_WEIGHT) * own + GENERAL_WEIGHT * GENERAL.p(prev, syl)).ln()
    }

    /// Known accented forms of a folded syllable: the knowledge base's, then the
    /// most common ones of general text.
    fn forms_of(&self, folded: &str) -> impl Iterator<Item = &String> {
        self.forms
            .get(folded)
            .into_iter()
            .flatten()
            .map(|(w, _)| w)
            .chain(GENERAL.forms_of(folded))
    }

    /// What a typed syllable may have meant, with the log-probability that it was
    /// typed so: itself (0), its known marked forms when typed without marks, and —
    /// for one the vocabulary does not know — the two slips above.
    /// In a message typed with marks (`marked_text`), a known syllable is taken as
    /// typed even without marks ("ship", "ok").
    fn candidates(&self, s: &str, marked_text: bool) -> Vec<(String, f64)> {
        if s.chars().any(|c| !c.is_alphabetic()) {
            return vec![(s.to_string(), 0.0)];
        }
        let known = self.known(s);
        let marked = has_diacritics(s);
        if known && (marked || marked_text) {
            return vec![(s.to_string(), 0.0)];
        }
        let mut out = vec![(s.to_string(), 0.0)];
        let push = |w: &str, cost: f64, out: &mut Vec<(String, f64)>| {
            if !out.iter().any(|(x, _)| x == w) {
                out.push((w.to_string(), cost));
            }
        };
        // Unmarked text gets its marks restored at no cost (that is how it was typed).
        if !marked_text {
            for w in self.forms_of(&fold(s)) {
                push(w, 0.0, &mut out);
            }
        }
        if known {
            return out;
        }
        if let Some(w) = swap_hoi_nga(s).filter(|w| self.known(w)) {
            push(&w, P_HOI_NGA.ln(), &mut out);
        }
        if let Some(w) = restore_final_ng(s) {
            if self.known(&w) && (marked || marked_text) {
                push(&w, P_DROPPED_N.ln(), &mut out);
            }
            if !marked {
                for f in self.forms_of(&fold(&w)) {
                    push(f, P_DROPPED_N.ln(), &mut out);
                }
            }
        }
        out
    }

    /// Restores marks on syllables typed without them and respells the ones the
    /// vocabulary does not know; known marked syllables are kept. For a message
    /// typed with marks, see [`DiacriticRestorer::respell`].
    pub fn restore(&self, syllables: &[String]) -> Vec<String> {
        self.decode(syllables, false)
    }

    /// For a message typed with marks: only the syllables the vocabulary does not
    /// know are respelled ("phí sip ra hà lội" → "phí ship ra hà nội").
    pub fn respell(&self, syllables: &[String]) -> Vec<String> {
        self.decode(syllables, true)
    }

    fn decode(&self, syllables: &[String], marked_text: bool) -> Vec<String> {
        if syllables.is_empty() {
            return Vec::new();
        }
        let lattice: Vec<Vec<(String, f64)>> = syllables
            .iter()
            .map(|s| self.candidates(s, marked_text))
            .collect();
        let candidates: Vec<Vec<String>> = lattice
            .iter()
            .map(|c| c.iter().map(|(w, _)| w.clone()).collect())
            .collect();
        let channel = |i: usize, k: usize| lattice[i][k].1;
        // Viterbi over the candidate lattice.
        let mut scores: Vec<Vec<(f64, usize)>> = Vec::with_capacity(candidates.len());
        scores.push(
            candidates[0]
                .iter()
                .enumerate()
                .map(|(k, c)| (self.log_p(None, c) + channel(0, k), 0))
                .collect(),
        );
        for i in 1..candidates.len() {
            let row = candidates[i]
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let (best, from) = candidates[i - 1]
                        .iter()
                        .enumerate()
                        .map(|(j, p)| (scores[i - 1][j].0 + self.log_p(Some(p), c), j))
                        .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a });
                    (best + channel(i, k), from)
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
        let r = DiacriticRestorer::learn(&n, sents.iter().map(Vec::as_slice));
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
    fn respells_syllables_the_vocabulary_does_not_know() {
        let (n, r) = restorer(&[
            "Phí ship ra Hà Nội là 25.000đ",
            "Cửa hàng ở Hà Nội mở cửa lúc 8 giờ",
            "Mã giảm giá dùng một lần",
        ]);
        let cases = [
            // The n of a final ng dropped, in marked and in unmarked text.
            ("cửa hàg hà nội", "cửa hàng hà nội"),
            ("cua hag ha noi", "cửa hàng hà nội"),
            // Hỏi and ngã swapped on a syllable the vocabulary does not know.
            ("mã giãm giá", "mã giảm giá"),
            // Known syllables, and real words the knowledge base does not use, stay
            // as typed ("mưa" is not "mua", "phố" is not "phí").
            ("cửa hàng ở hà nội", "cửa hàng ở hà nội"),
            ("trời mưa phố đông", "trời mưa phố đông"),
            ("phí sip ra hà lội", "phí sip ra hà lội"),
        ];
        for (input, want) in cases {
            let syl = n.syllables(input);
            let got = if crate::text::has_diacritics(input) {
                r.respell(&syl)
            } else {
                r.restore(&syl)
            };
            assert_eq!(got.join(" "), want, "{input}");
        }
    }

    #[test]
    fn restores_everyday_words_the_knowledge_base_lacks() {
        // The knowledge base knows none of these words; the general table does.
        let (n, r) = restorer(&["Phí giao hàng ra Hà Nội là 25.000đ"]);
        let cases = [
            ("toi muon hoi mot chut", "tôi muốn hỏi một chút"),
            ("ban co the giup minh khong", "bạn có thể giúp mình không"),
            (
                "quen dong tien thi bi cat mang",
                "quên đóng tiền thì bị cắt mạng",
            ),
            // The knowledge base's own words still come out as it writes them.
            ("phi giao hang ra ha noi", "phí giao hàng ra hà nội"),
        ];
        for (input, want) in cases {
            assert_eq!(r.restore(&n.syllables(input)).join(" "), want, "{input}");
        }
    }

    #[test]
    fn general_table_parses_counts_and_pairs() {
        let g = General::parse(
            "# comment\n@unigrams\ncảm\t50\nơn\t40\nờn\t2\n@bigrams\ncảm\tơn:30 ờn:1 xyz:9\n",
        );
        assert_eq!(g.count("cảm"), 50);
        assert_eq!(g.count("xyz"), 0);
        assert!(g.p(Some("cảm"), "ơn") > 10.0 * g.p(Some("cảm"), "ờn"));
        // An unknown context falls back to the unigram estimate.
        assert_eq!(g.p(Some("abc"), "ơn"), g.p(None, "ơn"));
        assert_eq!(g.forms_of("on").collect::<Vec<_>>(), ["ơn", "ờn"]);
        // The compiled-in table is the real one.
        assert!(GENERAL.words.len() > 10_000);
        assert!(GENERAL.count("không") > 100 * GENERAL.count("khong"));
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
