//! A memory-lean Unigram model for `tokenizers`.
//!
//! The `tokenizers` crate keeps a Unigram vocabulary as owned strings, a hash map and a
//! byte trie of hash-map nodes: for XLM-R's 250 002 pieces that is about 290 MB of
//! resident memory, most of `cskh serve`'s footprint. This model holds the same
//! vocabulary as one string arena, its scores, and the piece ids sorted by bytes
//! (about 6 MB), and finds the pieces that start at a position by narrowing that
//! sorted range a byte at a time. The Viterbi search, unknown-character handling and
//! fusing of unknown runs follow `tokenizers`' optimized Unigram encoder step for
//! step, so encodings are identical (an integration test compares the two on every
//! knowledge-base text and evaluation query, and on awkward input). Normalizer,
//! pre-tokenizer, post-processor, decoder and added tokens are `tokenizers`' own,
//! read from the same `tokenizer.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokenizers::models::unigram::UnigramTrainer;
use tokenizers::{
    AddedToken, DecoderWrapper, Model, NormalizerWrapper, PaddingParams, PostProcessorWrapper,
    PreTokenizerWrapper, Token, TokenizerBuilder, TokenizerImpl, TruncationParams,
};

/// `tokenizers`' penalty below the lowest piece score for an unknown character.
const UNK_PENALTY: f64 = 10.0;

pub type CompactTokenizer = TokenizerImpl<
    CompactUnigram,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

pub struct CompactUnigram {
    /// Every piece, concatenated in id order.
    arena: String,
    /// Byte offset of piece `id` in `arena`; one more entry than pieces.
    starts: Vec<u32>,
    scores: Vec<f64>,
    /// Piece ids sorted by their bytes. A piece listed twice keeps its last id, as
    /// `tokenizers` does.
    sorted: Vec<u32>,
    /// `sorted[by_first[b]..by_first[b + 1]]` are the pieces starting with byte `b`.
    by_first: Vec<u32>,
    /// The longest piece, in bytes.
    max_len: usize,
    unk_id: u32,
    min_score: f64,
}

impl CompactUnigram {
    pub fn new(vocab: Vec<(String, f64)>, unk_id: usize) -> Result<Self, String> {
        if unk_id >= vocab.len() {
            return Err(format!(
                "unk_id {unk_id} is outside the vocabulary of {}",
                vocab.len()
            ));
        }
        let mut arena = String::with_capacity(vocab.iter().map(|(p, _)| p.len()).sum());
        let mut starts = Vec::with_capacity(vocab.len() + 1);
        let mut scores = Vec::with_capacity(vocab.len());
        let mut min_score = f64::INFINITY;
        for (piece, score) in &vocab {
            starts.push(arena.len() as u32);
            arena.push_str(piece);
            scores.push(*score);
            min_score = min_score.min(*score);
        }
        starts.push(arena.len() as u32);
        drop(vocab);
        let mut m = Self {
            arena,
            starts,
            scores,
            sorted: Vec::new(),
            by_first: Vec::new(),
            max_len: 0,
            unk_id: unk_id as u32,
            min_score,
        };
        let mut sorted: Vec<u32> = (0..m.scores.len() as u32).collect();
        sorted.sort_by(|&a, &b| m.piece(a).cmp(m.piece(b)).then(a.cmp(&b)));
        // Of equal pieces keep the last id (the one a string lookup gives).
        let mut kept: Vec<u32> = Vec::with_capacity(sorted.len());
        for id in sorted {
            match kept.last_mut() {
                Some(last) if m.piece(*last) == m.piece(id) => *last = id,
                _ => kept.push(id),
            }
        }
        kept.shrink_to_fit();
        m.max_len = kept.iter().map(|&id| m.piece(id).len()).max().unwrap_or(0);
        m.by_first = (0..=256usize)
            .map(|b| {
                kept.partition_point(|&id| {
                    m.piece(id)
                        .as_bytes()
                        .first()
                        .is_none_or(|&x| (x as usize) < b)
                }) as u32
            })
            .collect();
        m.sorted = kept;
        Ok(m)
    }

    fn piece(&self, id: u32) -> &str {
        &self.arena[self.starts[id as usize] as usize..self.starts[id as usize + 1] as usize]
    }

    fn lookup(&self, piece: &str) -> Option<u32> {
        self.sorted
            .binary_search_by(|&id| self.piece(id).cmp(piece))
            .ok()
            .map(|i| self.sorted[i])
    }

    /// Every piece that `text` starts with, as (byte length, id), shortest first.
    fn prefixes(&self, text: &[u8], out: &mut Vec<(usize, u32)>) {
        out.clear();
        let Some(&b0) = text.first() else {
            return;
        };
        // The first byte from the table, then one byte at a time.
        let (mut lo, mut hi) = (
            self.by_first[b0 as usize] as usize,
            self.by_first[b0 as usize + 1] as usize,
        );
        if lo == hi {
            return;
        }
        if self.piece(self.sorted[lo]).len() == 1 {
            out.push((1, self.sorted[lo]));
        }
        for (depth, &b) in text.iter().take(self.max_len).enumerate().skip(1) {
            // All pieces in lo..hi start with text[..depth]; the one equal to it (if
            // any) sorts first, the rest by their byte at `depth`.
            let range = &self.sorted[lo..hi];
            let byte_at = |id: u32| self.piece(id).as_bytes().get(depth).copied();
            let first = range.partition_point(|&id| byte_at(id).is_none_or(|x| x < b));
            let last = range.partition_point(|&id| byte_at(id).is_none_or(|x| x <= b));
            (lo, hi) = (lo + first, lo + last);
            if lo == hi {
                break;
            }
            let shortest = self.sorted[lo];
            if self.piece(shortest).len() == depth + 1 {
                out.push((depth + 1, shortest));
            }
        }
    }

    /// The best segmentation of `text`, runs of unknown characters fused.
    fn encode(&self, text: &str) -> Vec<(String, Option<u32>)> {
        #[derive(Clone, Copy)]
        struct Best {
            id: u32,
            score: f64,
            from: Option<usize>,
        }
        let size = text.len();
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best = vec![
            Best {
                id: 0,
                score: 0.0,
                from: None
            };
            size + 1
        ];
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        let mut at = 0;
        while at < size {
            let here = best[at].score;
            let char_len = text[at..].chars().next().map_or(1, char::len_utf8);
            self.prefixes(&bytes[at..], &mut found);
            let mut single = false;
            for &(len, id) in &found {
                let candidate = self.scores[id as usize] + here;
                let target = &mut best[at + len];
                if target.from.is_none() || candidate > target.score {
                    *target = Best {
                        id,
                        score: candidate,
                        from: Some(at),
                    };
                }
                single |= len == char_len;
            }
            if !single {
                let candidate = unk_score + here;
                let target = &mut best[at + char_len];
                if target.from.is_none() || candidate > target.score {
                    *target = Best {
                        id: self.unk_id,
                        score: candidate,
                        from: Some(at),
                    };
                }
            }
            at += char_len;
        }
        let mut out: Vec<(String, Option<u32>)> = Vec::new();
        let mut unknown: Option<usize> = None;
        let mut end = size;
        while end > 0 {
            let node = best[end];
            let start = node.from.expect("every character boundary is reached");
            if node.id == self.unk_id {
                unknown.get_or_insert(end);
            } else {
                if let Some(u) = unknown.take() {
                    out.push((text[end..u].to_string(), None));
                }
                out.push((text[start..end].to_string(), Some(node.id)));
            }
            end = start;
        }
        if let Some(u) = unknown {
            out.push((text[..u].to_string(), None));
        }
        out.reverse();
        out
    }
}

impl Model for CompactUnigram {
    type Trainer = UnigramTrainer;

    fn tokenize(&self, sequence: &str) -> tokenizers::Result<Vec<Token>> {
        let mut offset = 0;
        Ok(self
            .encode(sequence)
            .into_iter()
            .map(|(value, id)| {
                // A fused unknown run is looked up as a whole, as `tokenizers` does.
                let id = id.or_else(|| self.lookup(&value)).unwrap_or(self.unk_id);
                let len = value.len();
                let token = Token::new(id, value, (offset, offset + len));
                offset += len;
                token
            })
            .collect())
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.lookup(token)
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        ((id as usize) < self.scores.len()).then(|| self.piece(id).to_string())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        self.sorted
            .iter()
            .map(|&id| (self.piece(id).to_string(), id))
            .collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.scores.len()
    }

    fn save(&self, _folder: &Path, _prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        Err("the compact Unigram model is read-only".into())
    }

    fn get_trainer(&self) -> UnigramTrainer {
        UnigramTrainer::default()
    }
}

#[derive(Deserialize)]
struct Probe {
    model: ProbeModel,
}

#[derive(Deserialize)]
struct ProbeModel {
    #[serde(rename = "type")]
    kind: Option<String>,
    unk_id: Option<usize>,
    #[serde(default)]
    byte_fallback: bool,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    added_tokens: Vec<AddedTokenWithId>,
    normalizer: Option<NormalizerWrapper>,
    pre_tokenizer: Option<PreTokenizerWrapper>,
    post_processor: Option<PostProcessorWrapper>,
    decoder: Option<DecoderWrapper>,
    truncation: Option<TruncationParams>,
    padding: Option<PaddingParams>,
    model: UnigramFile,
}

#[derive(Deserialize)]
struct AddedTokenWithId {
    #[serde(flatten)]
    token: AddedToken,
}

#[derive(Deserialize)]
struct UnigramFile {
    unk_id: usize,
    vocab: Vec<(String, f64)>,
}

/// Builds the compact tokenizer from a `tokenizer.json`'s text, or `None` when its
/// model is not a Unigram this module reproduces (another model type, byte
/// fallback, no unknown piece): load it with `tokenizers` as it is.
pub fn from_json(json: &str) -> Result<Option<CompactTokenizer>, String> {
    let probe: Probe = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let m = probe.model;
    if m.kind.as_deref() != Some("Unigram") || m.byte_fallback || m.unk_id.is_none() {
        return Ok(None);
    }
    let file: File = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let model = CompactUnigram::new(file.model.vocab, file.model.unk_id)?;
    let mut tokenizer = TokenizerBuilder::new()
        .with_model(model)
        .with_normalizer(file.normalizer)
        .with_pre_tokenizer(file.pre_tokenizer)
        .with_post_processor(file.post_processor)
        .with_decoder(file.decoder)
        .with_truncation(file.truncation)
        .with_padding(file.padding)
        .build()
        .map_err(|e| e.to_string())?;
    let added: Vec<AddedToken> = file.added_tokens.into_iter().map(|t| t.token).collect();
    tokenizer.add_tokens(&added);
    Ok(Some(tokenizer))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: "<unk>" at 0 and "ab" listed twice (ids 3 and 6).
    const TOY: [(&str, f64); 7] = [
        ("<unk>", 0.0),
        ("a", -1.0),
        ("b", -2.0),
        ("ab", -1.5),
        ("abc", -4.5),
        ("c", -3.0),
        ("ab", -1.2),
    ];

    fn vocab(pieces: &[(&str, f64)]) -> Vec<(String, f64)> {
        pieces.iter().map(|(p, s)| (p.to_string(), *s)).collect()
    }

    fn model() -> CompactUnigram {
        CompactUnigram::new(vocab(&TOY), 0).unwrap()
    }

    /// (id, value, offsets) of each token.
    fn tokens(m: &impl Model, text: &str) -> Vec<(u32, String, (usize, usize))> {
        m.tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| (t.id, t.value, t.offsets))
            .collect()
    }

    #[test]
    fn finds_every_prefix_and_keeps_the_last_of_duplicates() {
        let m = model();
        let mut out = Vec::new();
        m.prefixes(b"abcd", &mut out);
        assert_eq!(out, vec![(1, 1), (2, 6), (3, 4)]);
        m.prefixes(b"x", &mut out);
        assert!(out.is_empty());
        assert_eq!(m.token_to_id("ab"), Some(6));
        assert_eq!(m.token_to_id("abcd"), None);
        assert_eq!(m.id_to_token(4).as_deref(), Some("abc"));
    }

    #[test]
    fn viterbi_picks_the_best_path_and_fuses_unknown_runs() {
        let m = model();
        // "ab"+"c" = -1.2 - 3.0 beats "abc" = -4.5 and "a"+"b"+"c" = -6.0.
        let ids: Vec<u32> = m.tokenize("abc").unwrap().iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![6, 5]);
        assert_eq!(
            tokens(&m, "xéab"),
            vec![(0, "xé".to_string(), (0, 3)), (6, "ab".to_string(), (3, 5))]
        );
        assert!(m.tokenize("").unwrap().is_empty());
    }

    #[test]
    fn agrees_with_the_tokenizers_unigram_on_a_toy_vocabulary() {
        let mut pieces = TOY.to_vec();
        pieces.extend([("bc", -2.5), ("é", -6.0), ("ca", -0.5)]);
        let ours = CompactUnigram::new(vocab(&pieces), 0).unwrap();
        let theirs =
            tokenizers::models::unigram::Unigram::from(vocab(&pieces), Some(0), false).unwrap();
        for text in [
            "abc",
            "cabcab",
            "xxabéyzc",
            "bcbcbca",
            "ééx",
            "zz",
            "<unk>ab",
        ] {
            assert_eq!(tokens(&ours, text), tokens(&theirs, text), "{text}");
        }
    }

    fn unigram_json(byte_fallback: bool) -> String {
        serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false,
                              "rstrip": false, "normalized": false, "special": true}],
            "normalizer": null,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": true},
            "post_processor": null, "decoder": null,
            "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": byte_fallback,
                      "vocab": [["<unk>", 0.0], ["▁", -3.0], ["▁phí", -2.0], ["▁ship", -2.5],
                                ["▁s", -4.0], ["hip", -3.5], ["p", -5.0], ["h", -5.0], ["í", -5.0]]}
        })
        .to_string()
    }

    #[test]
    fn a_plain_unigram_file_loads_compact_and_encodes_like_tokenizers() {
        let json = unigram_json(false);
        let ours = from_json(&json).unwrap().expect("plain Unigram");
        let theirs: tokenizers::Tokenizer = json.parse().unwrap();
        for text in ["phí ship", "ship phí <unk> x", "shipp  phíí", ""] {
            let a = ours.encode(text, true).unwrap();
            let b = theirs.encode(text, true).unwrap();
            assert_eq!(a.get_ids(), b.get_ids(), "{text}");
            assert_eq!(a.get_offsets(), b.get_offsets(), "{text}");
        }
    }

    #[test]
    fn other_tokenizers_are_left_to_tokenizers() {
        assert!(
            from_json(&unigram_json(true)).unwrap().is_none(),
            "byte fallback"
        );
        let wordpiece = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": {"[UNK]": 0, "phi": 1, "ship": 2}}
        })
        .to_string();
        assert!(from_json(&wordpiece).unwrap().is_none());
        assert!(from_json("{not json").is_err());
    }
}
