//! Vietnamese text handling: NFC, case folding, diacritic-free forms, abbreviation and
//! teencode expansion, syllable tokens and the index terms built from them.
//!
//! Everything here is pure and deterministic: the same function is applied to knowledge
//! entries and to customer messages so both sides meet on one normalized form.

mod followup;
mod places;
mod restore;

use std::collections::{HashMap, HashSet};

use thiserror::Error;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

pub use followup::Followups;
pub use places::Gazetteer;
pub use restore::DiacriticRestorer;

const DEFAULT_ABBREVIATIONS: &str = include_str!("abbreviations.tsv");

/// Raised whenever the code that turns text into terms changes what it gives
/// (tokenization, folding, tone placement); see [`analysis_id`].
const ANALYSIS_VERSION: u32 = 3;

/// Identifies how text becomes terms: the analysis code's version and the embedded
/// abbreviation table. A lexical index stored by a build that read text differently
/// is not reused.
pub fn analysis_id() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(ANALYSIS_VERSION.to_le_bytes());
    h.update(DEFAULT_ABBREVIATIONS.as_bytes());
    hex::encode(h.finalize())[..8].to_string()
}

#[derive(Debug, Error)]
pub enum TextError {
    #[error("{file}:{line}: {message}")]
    Abbreviations {
        file: String,
        line: usize,
        message: String,
    },
}

/// Reads a hand-written UTF-8 input file (knowledge, queries, orders, config,
/// prompts), which a person may have saved from Windows tools (Notepad,
/// Excel's "CSV UTF-8"): a leading byte-order mark is dropped, so the first line
/// reads like the others. Line ends (`\r\n` or `\n`) are left to `str::lines`.
pub fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// NFC-normalizes `text` (customers' keyboards and copy-paste often send NFD).
pub fn nfc(text: &str) -> String {
    text.nfc().collect()
}

/// The diacritic-free form: tone and vowel marks removed, `đ` → `d`.
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            other => other,
        })
        .collect()
}

/// True when `text` carries at least one Vietnamese diacritic.
pub fn has_diacritics(text: &str) -> bool {
    text.chars().any(|c| {
        if c == 'đ' || c == 'Đ' {
            return true;
        }
        let mut buf = [0u8; 4];
        fold(c.encode_utf8(&mut buf)) != c.to_string()
    })
}

/// Splits lowercase NFC text into word tokens. Numbers keep their thousands separators
/// together ("500.000đ" → "500000", "đồng"; "50k" → "50000").
fn raw_tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let mut num = String::new();
            while i < chars.len() {
                let d = chars[i];
                if d.is_ascii_digit() {
                    num.push(d);
                    i += 1;
                } else if (d == '.' || d == ',')
                    && chars
                        .get(i + 1..i + 4)
                        .is_some_and(|s| s.iter().all(|x| x.is_ascii_digit()))
                    && !chars.get(i + 4).is_some_and(|x| x.is_ascii_digit())
                {
                    i += 1;
                } else {
                    break;
                }
            }
            let next = chars.get(i).copied();
            let after = chars.get(i + 1).copied();
            let glued_end = |x: Option<char>| !x.is_some_and(|x| x.is_alphanumeric());
            match next {
                Some('k') if glued_end(after) => {
                    num.push_str("000");
                    out.push(num);
                    i += 1;
                }
                Some('đ') if glued_end(after) => {
                    out.push(num);
                    out.push("đồng".to_string());
                    i += 1;
                }
                _ => out.push(num),
            }
        } else if c.is_alphanumeric() {
            let start = i;
            while i < chars.len() && chars[i].is_alphanumeric() {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else {
            i += 1;
        }
    }
    out
}

/// Normalizes Vietnamese text for matching: NFC, lowercase, punctuation dropped,
/// abbreviations and teencode expanded from a data table: the built-in one, with a
/// shop's own table (see [`Normalizer::with_shop_table`]) laid over it.
#[derive(Debug, Clone)]
pub struct Normalizer {
    abbreviations: HashMap<String, Vec<String>>,
    /// The short forms the shop's table expands (the built-in table's words are
    /// general Vietnamese chat; these may be words only this shop's customers use).
    shop_keys: HashSet<String>,
}

impl Default for Normalizer {
    fn default() -> Self {
        Self::from_tsv("abbreviations.tsv", DEFAULT_ABBREVIATIONS)
            .expect("embedded abbreviation table is valid")
    }
}

/// One table's mappings, keys in the form tokens are matched in.
fn parse_table(file: &str, source: &str) -> Result<HashMap<String, Vec<String>>, TextError> {
    let mut abbreviations = HashMap::new();
    for (idx, line) in source.lines().enumerate() {
        let err = |message: &str| TextError::Abbreviations {
            file: file.to_string(),
            line: idx + 1,
            message: message.to_string(),
        };
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        // Split before trimming: `ip<TAB>` is a form without its meaning, not a line
        // without a tab.
        let (key, value) = line
            .split_once('\t')
            .ok_or_else(|| err("expected `short<TAB>expansion`"))?;
        let key = nfc(key.trim()).to_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(err("the short form must be one word"));
        }
        // Matched against whole tokens: a key the tokenizer splits ("13pm", "wi-fi")
        // would never match.
        let key = match raw_tokens(&key).as_slice() {
            [one] if *one == key => canonical_tone(key),
            _ => {
                return Err(err(&format!(
                    "`{key}` is not one word as messages are read: a short form is \
                     letters and digits, starting with a letter"
                )))
            }
        };
        let expansion: Vec<String> = raw_tokens(&nfc(value).to_lowercase())
            .into_iter()
            .map(canonical_tone)
            .collect();
        if expansion.is_empty() {
            return Err(err("empty expansion"));
        }
        if abbreviations.insert(key.clone(), expansion).is_some() {
            return Err(err(&format!("`{key}` is listed twice")));
        }
    }
    Ok(abbreviations)
}

impl Normalizer {
    /// Parses an abbreviation table: `short<TAB>expansion` per line, `#` comments.
    pub fn from_tsv(file: &str, source: &str) -> Result<Self, TextError> {
        Ok(Self {
            abbreviations: parse_table(file, source)?,
            shop_keys: HashSet::new(),
        })
    }

    /// The built-in table with a shop's own table (same format) laid over it: a
    /// short form in the shop's table replaces the built-in one ("ip" → "iphone" in a
    /// phone-repair shop; a form mapped to itself turns a built-in expansion off). A
    /// form listed twice in the shop's table is an error naming its line.
    pub fn with_shop_table(file: &str, source: &str) -> Result<Self, TextError> {
        let shop = parse_table(file, source)?;
        let mut me = Self::default();
        for (key, expansion) in shop {
            if expansion != [key.clone()] {
                me.shop_keys.insert(key.clone());
            }
            me.abbreviations.insert(key, expansion);
        }
        Ok(me)
    }

    /// How many short forms the shop's own table expands.
    pub fn shop_expansions(&self) -> usize {
        self.shop_keys.len()
    }

    /// Whether `text` holds a short form of the shop's own table: words a general
    /// reader of Vietnamese (the embedding model) cannot know.
    pub fn uses_shop_table(&self, text: &str) -> bool {
        !self.shop_keys.is_empty()
            && raw_tokens(&nfc(text).to_lowercase())
                .into_iter()
                .any(|t| self.shop_keys.contains(&canonical_tone(unstretch(t))))
    }

    /// Lowercase NFC syllables with abbreviations expanded.
    pub fn syllables(&self, text: &str) -> Vec<String> {
        let lower = nfc(text).to_lowercase();
        let mut out = Vec::new();
        let mut after_number = false;
        for tok in raw_tokens(&lower) {
            let tok = canonical_tone(unstretch(tok));
            // A letter after a number is its unit ("9h", "500 k"), not a word.
            let unit = after_number && tok.chars().count() == 1;
            after_number = tok.chars().all(|c| c.is_ascii_digit());
            match self.abbreviations.get(&tok).filter(|_| !unit) {
                Some(exp) => out.extend(exp.iter().cloned()),
                None => out.push(tok),
            }
        }
        out
    }

    /// The normalized sentence (syllables joined by single spaces).
    pub fn normalize(&self, text: &str) -> String {
        self.syllables(text).join(" ")
    }
}

/// Shortens a text to at most `max_chars` characters, on a character boundary, the
/// last one an ellipsis when it was cut (a quick-reply label, a gap's example).
pub fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// One tone placement for the open syllables written both ways: "hoà"/"hòa",
/// "khoẻ"/"khỏe", "huỷ"/"hủy", "thuý"/"thúy" (keyboards and schools differ). The tone
/// goes on the first vowel of a final "oa", "oe" or "uy", as most Vietnamese text and
/// most knowledge bases write it. "quý" keeps its tone on the "y" ("qu" is a
/// consonant there); syllables with a final consonant ("hoàng", "khuyến") have one
/// placement only and are left alone.
pub fn canonical_tone(syllable: String) -> String {
    const TONES: [char; 5] = ['\u{300}', '\u{301}', '\u{303}', '\u{309}', '\u{323}'];
    let decomposed: Vec<char> = syllable.nfd().collect();
    let n = decomposed.len();
    // ... V1 V2 TONE, with V1 a bare vowel and V2 a bare vowel carrying the tone.
    if n < 3 || !TONES.contains(&decomposed[n - 1]) {
        return syllable;
    }
    let (v1, v2) = (decomposed[n - 3], decomposed[n - 2]);
    let pair = matches!((v1, v2), ('o', 'a') | ('o', 'e') | ('u', 'y'));
    let after_q = n >= 4 && decomposed[n - 4] == 'q';
    if !pair || (v1 == 'u' && after_q) || n >= 4 && is_combining_mark(decomposed[n - 4]) {
        return syllable;
    }
    let mut out: Vec<char> = decomposed[..n - 2].to_vec();
    out.push(decomposed[n - 1]);
    out.push(v2);
    out.into_iter().nfc().collect()
}

/// A word stretched for emphasis back to its spelling: a letter typed three times or
/// more in a row is one letter ("ơiiiii" → "ơi", "hànhhhh" → "hành"). No Vietnamese
/// word repeats a letter three times; digits are left alone ("1000").
pub fn unstretch(tok: String) -> String {
    let chars: Vec<char> = tok.chars().collect();
    let stretched = chars
        .windows(3)
        .any(|w| w[0].is_alphabetic() && w[0] == w[1] && w[1] == w[2]);
    if !stretched {
        return tok;
    }
    let mut out = String::with_capacity(tok.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        let run = if c.is_alphabetic() && j - i >= 3 {
            1
        } else {
            j - i
        };
        out.extend(std::iter::repeat_n(c, run));
        i = j;
    }
    out
}

/// Index terms for a syllable sequence: every syllable plus every adjacent pair, so
/// "giao hàng" and "hàng giao" share unigrams but not their bigram.
pub fn index_terms(syllables: &[String]) -> Vec<String> {
    let mut terms: Vec<String> = syllables.to_vec();
    terms.extend(syllables.windows(2).map(|w| format!("{}_{}", w[0], w[1])));
    terms
}

/// Diacritic-free copy of a syllable sequence.
pub fn fold_all(syllables: &[String]) -> Vec<String> {
    syllables.iter().map(|s| fold(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_table() {
        let cases = [
            ("Đơn hàng của tôi đâu rồi", "Don hang cua toi dau roi"),
            ("phí ship ra Hà Nội", "phi ship ra Ha Noi"),
            ("Bảo hành", "Bao hanh"),
            ("ĐỔI TRẢ", "DOI TRA"),
            ("ươ ưở ữ ỹ", "uo uo u y"),
            ("already ascii", "already ascii"),
        ];
        for (input, want) in cases {
            assert_eq!(fold(input), want, "fold({input:?})");
        }
    }

    #[test]
    fn a_letter_after_a_number_is_its_unit() {
        let n = Normalizer::default();
        for (input, want) in [
            ("mấy h đóng cửa", "mấy giờ đóng cửa"),
            ("hẹn lúc 9h sáng", "hẹn lúc 9 h sáng"),
            ("tầm 500 k", "tầm 500 k"),
            ("có k", "có không"),
        ] {
            assert_eq!(n.normalize(input), want, "{input}");
        }
    }

    #[test]
    fn stretched_words_read_as_spelled() {
        let n = Normalizer::default();
        for (input, want) in [
            ("shop ơiiiii", "shop ơi"),
            ("bảo hànhhhh", "bảo hành"),
            ("okkkk", "ok"),
            ("phí 1000 đồng", "phí 1000 đồng"),
            ("xoong nồi", "xoong nồi"),
        ] {
            assert_eq!(n.normalize(input), want, "{input}");
        }
    }

    #[test]
    fn both_tone_placements_read_alike() {
        let n = Normalizer::default();
        for (input, want) in [
            ("huỷ đơn", "hủy đơn"),
            ("hoá đơn", "hóa đơn"),
            ("sức khoẻ", "sức khỏe"),
            ("thuỷ tinh", "thủy tinh"),
            ("uỷ quyền", "ủy quyền"),
            ("hoạ tiết", "họa tiết"),
            ("HOÀ BÌNH", "hòa bình"),
            // Already the usual placement, or one placement only: unchanged.
            ("hủy đơn", "hủy đơn"),
            ("quý khách", "quý khách"),
            ("hoàng khuyến toán", "hoàng khuyến toán"),
            ("thuở nhỏ", "thuở nhỏ"),
            ("của", "của"),
        ] {
            assert_eq!(n.normalize(input), want, "{input}");
        }
        let decomposed: String = "hoà".nfd().collect();
        assert_eq!(n.normalize(&decomposed), "hòa");
    }

    #[test]
    fn nfc_composes_decomposed_input() {
        let decomposed = "hàng".nfd().collect::<String>();
        assert_ne!(decomposed, "hàng");
        assert_eq!(nfc(&decomposed), "hàng");
        let n = Normalizer::default();
        assert_eq!(n.normalize(&decomposed), "hàng");
    }

    #[test]
    fn diacritic_detection() {
        for (input, want) in [
            ("don hang cua toi", false),
            ("đon hang", true),
            ("phí ship", true),
            ("DH240517", false),
            ("", false),
        ] {
            assert_eq!(has_diacritics(input), want, "{input:?}");
        }
    }

    #[test]
    fn abbreviation_table() {
        let n = Normalizer::default();
        let cases = [
            ("sp này có ship ko", "sản phẩm này có giao hàng không"),
            ("đc k shop", "được không shop"),
            ("Ship ra HN bn tiền?", "giao hàng ra hà nội bao nhiêu tiền"),
            ("ck rồi mà chưa thấy", "chuyển khoản rồi mà chưa thấy"),
            ("hok dc a", "không được a"),
            ("cho e hỏi sđt shop", "cho em hỏi số điện thoại shop"),
        ];
        for (input, want) in cases {
            assert_eq!(n.normalize(input), want, "normalize({input:?})");
        }
    }

    #[test]
    fn numbers_and_money() {
        let n = Normalizer::default();
        let cases = [
            ("đơn trên 500.000đ", "đơn trên 500000 đồng"),
            ("phí 25k", "phí 25000"),
            ("mã DH240517 nhé", "mã dh240517 nhé"),
            ("1,5 triệu", "1 5 triệu"),
            ("2.5kg", "2 5 kg"),
        ];
        for (input, want) in cases {
            assert_eq!(n.normalize(input), want, "normalize({input:?})");
        }
    }

    #[test]
    fn bigrams_keep_word_order() {
        let n = Normalizer::default();
        let a = index_terms(&n.syllables("giao hàng"));
        let b = index_terms(&n.syllables("hàng giao"));
        assert!(a.contains(&"giao_hàng".to_string()));
        assert!(!b.contains(&"giao_hàng".to_string()));
        assert!(b.contains(&"giao".to_string()));
    }

    #[test]
    fn bad_abbreviation_tables_are_rejected_with_line() {
        let err = Normalizer::from_tsv("x.tsv", "# c\nko\tkhông\nko\tkhông\n").unwrap_err();
        assert_eq!(err.to_string(), "x.tsv:3: `ko` is listed twice");
        let err = Normalizer::from_tsv("x.tsv", "no tab here\n").unwrap_err();
        assert!(err.to_string().starts_with("x.tsv:1:"));
        let err = Normalizer::from_tsv("x.tsv", "bao nhiu\tbao nhiêu\n").unwrap_err();
        assert!(err.to_string().contains("one word"));
    }

    #[test]
    fn a_shop_table_adds_to_and_overrides_the_built_in_one() {
        let shop = "# Tiệm sửa điện thoại\nip\tiPhone\nss\tSamsung\n\nk\tk\nbn\tbao nhiêu tiền\n";
        let n = Normalizer::with_shop_table("kb/abbreviations.tsv", shop).unwrap();
        for (input, want) in [
            // New forms.
            ("thay pin ip bn", "thay pin iphone bao nhiêu tiền"),
            ("màn SS A52", "màn samsung a52"),
            // Built-in forms the shop does not list still expand.
            ("dc ko shop", "được không shop"),
            // A form mapped to itself is no longer expanded.
            ("ip 13 k", "iphone 13 k"),
        ] {
            assert_eq!(n.normalize(input), want, "{input}");
        }
        assert_eq!(n.shop_expansions(), 3);
        assert!(n.uses_shop_table("Thay pin IP 11"));
        assert!(!n.uses_shop_table("thay pin k được"), "k maps to itself");
        assert!(!n.uses_shop_table("thay pin iphone"));
        // The built-in normalizer knows none of it.
        let plain = Normalizer::default();
        assert_eq!(plain.normalize("thay pin ip bn"), "thay pin ip bao nhiêu");
        assert!(!plain.uses_shop_table("ip"));
    }

    #[test]
    fn bad_shop_tables_name_file_and_line() {
        let cases = [
            // Listed twice in the shop's own file (a built-in key once is fine).
            (
                "ip\tiphone\nko\tkhông có\nip\tipad\n",
                "kb/abbreviations.tsv:3: `ip` is listed twice",
            ),
            (
                "ip iphone\n",
                "kb/abbreviations.tsv:1: expected `short<TAB>expansion`",
            ),
            ("# c\nip\t  \n", "kb/abbreviations.tsv:2: empty expansion"),
            (
                "ss\tsamsung\nip\t\n",
                "kb/abbreviations.tsv:2: empty expansion",
            ),
            (
                "\tiphone\n",
                "kb/abbreviations.tsv:1: the short form must be one word",
            ),
            (
                "ip 13\tiphone 13\n",
                "kb/abbreviations.tsv:1: the short form must be one word",
            ),
            (
                "13pm\tiphone 13 pro max\n",
                "kb/abbreviations.tsv:1: `13pm` is not one word",
            ),
            (
                "wi-fi\twifi\n",
                "kb/abbreviations.tsv:1: `wi-fi` is not one word",
            ),
        ];
        for (source, want) in cases {
            let err = Normalizer::with_shop_table("kb/abbreviations.tsv", source)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{source:?}: {err}");
        }
    }

    #[test]
    fn short_forms_match_whatever_tone_placement_they_are_written_with() {
        let n = Normalizer::with_shop_table("a.tsv", "hoà\tthoả thuận\n").unwrap();
        assert_eq!(n.normalize("giá hòa"), "giá thỏa thuận");
        assert_eq!(n.normalize("giá hoà"), "giá thỏa thuận");
    }

    #[test]
    fn the_built_in_table_is_written_in_the_form_tokens_are_matched_in() {
        // Key and expansion forms are canonicalized when read; the built-in table
        // needs none of it, so its terms (and stored indexes) are as before.
        for line in DEFAULT_ABBREVIATIONS.lines() {
            let Some((key, value)) = line.split_once('\t') else {
                continue;
            };
            if line.starts_with('#') {
                continue;
            }
            assert_eq!(canonical_tone(key.to_string()), key, "{line}");
            for t in raw_tokens(&nfc(value).to_lowercase()) {
                assert_eq!(canonical_tone(t.clone()), t, "{line}");
            }
        }
    }
}
