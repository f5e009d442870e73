//! Hybrid retrieval: tantivy BM25 over accented and diacritic-free terms, dense cosine
//! over local embeddings, a fused score, a calibrated confidence and the decision
//! (answer / clarify / hand off). Knows nothing about channels or conversations.

mod lexical;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::embed::{cosine, EmbedError, Embedder, EmbeddingCache, TextKind};
use crate::knowledge::{Entry, KnowledgeBase};
use crate::text::{
    fold, fold_all, has_diacritics, index_terms, DiacriticRestorer, Gazetteer, Normalizer,
};
use lexical::{EntryTerms, LexicalIndex};

#[derive(Debug, Error)]
pub enum SearchError {
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("index files: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("dense mode needs an embedding model (run `cskh model fetch`)")]
    NoModel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Hybrid,
    Bm25,
    Dense,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Answer,
    Clarify,
    Handoff,
}

/// Retrieval and decision parameters. Defaults were chosen on `eval/dev.jsonl` (the
/// confidence models and thresholds are `cskh calibrate` output; see README, "How the
/// defaults were chosen"); operators can override them in config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalParams {
    /// BM25 weight of answer/passage text relative to question text.
    pub answer_weight: f32,
    /// Added to query-passage cosines to put them on the query-query scale.
    pub passage_offset: f32,
    /// Fusion weights of dense cosine, IDF-weighted term coverage and relative BM25.
    pub w_dense: f32,
    pub w_coverage: f32,
    pub w_bm25: f32,
    /// Weight of a query word the knowledge base never uses, relative to the rarest
    /// known word, in the coverage feature.
    pub unknown_word_weight: f32,
    /// Confidence that the best candidate is the right entry: a logistic model over
    /// the [`Signals`] of a retrieval (hybrid retrieval with an embedding model).
    pub answer_model: Logit,
    /// Confidence that the right entry is among the first three candidates: decides
    /// whether offering a choice is worth the customer's turn.
    pub offer_model: Logit,
    /// Answer when the answer model gives at least this.
    pub answer_threshold: f32,
    /// Otherwise offer a choice when the offer model gives at least this.
    pub clarify_threshold: f32,
    /// The same for lexical retrieval (`--mode bm25`, and hybrid without an
    /// embedding model): no dense signals, so their weights are zero. The defaults
    /// are fitted on the dev set pooled with the clinic and bank sets (`cskh
    /// calibrate --mode bm25 --also ...`): pooled, they carried over better to a
    /// knowledge base left out of the fit; the hybrid ones did not, and are dev's.
    pub lexical_answer_model: Logit,
    pub lexical_offer_model: Logit,
    pub lexical_answer_threshold: f32,
    pub lexical_clarify_threshold: f32,
    /// The reranker of hybrid retrieval (with an embedding model): weights of the
    /// first [`RERANK_DEPTH`] candidates' [`Candidate::rank_features`], in
    /// that order; they are re-sorted by the weighted sum. All zero keeps
    /// the fused order. Fitted by `cskh calibrate`.
    pub rank_weights: [f32; RANK_FEATURE_COUNT],
    /// Candidates within this fused-score distance of the best are offered.
    pub clarify_gap: f32,
    /// Messages of at most this many words ("bảo hành", "đổi size") are too vague to
    /// answer outright: the bot offers its best candidates instead.
    pub vague_max_words: usize,
}

impl Default for RetrievalParams {
    fn default() -> Self {
        Self {
            answer_weight: 0.4,
            passage_offset: 0.04,
            w_dense: 4.0,
            w_coverage: 1.0,
            w_bm25: 0.5,
            unknown_word_weight: 0.5,
            answer_model: Logit {
                bias: -32.475,
                weights: [
                    1.961, 0.409, 18.764, 28.379, 2.066, 2.253, 1.399, -0.39, 1.265,
                ],
            },
            offer_model: Logit {
                bias: -53.331,
                weights: [
                    2.933, 0.095, 31.203, 27.153, 2.656, 1.251, 2.846, -0.694, 3.375,
                ],
            },
            answer_threshold: 0.82,
            clarify_threshold: 0.5,
            rank_weights: [57.143, 6.084, 3.559, -0.505, -0.507, 0.384, 0.39, 0.685],
            lexical_answer_model: Logit {
                bias: -11.725,
                weights: [3.198, 6.558, 0.0, 0.0, 3.07, -2.122, 1.726, 0.0, 1.586],
            },
            lexical_offer_model: Logit {
                bias: -13.832,
                weights: [4.756, 4.307, 0.0, 0.0, 4.731, -3.743, 1.0, -0.0, 2.14],
            },
            lexical_answer_threshold: 0.86,
            lexical_clarify_threshold: 0.5,
            clarify_gap: 0.15,
            vague_max_words: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    #[serde(skip)]
    pub index: usize,
    pub id: String,
    pub score: f32,
    #[serde(skip)]
    pub features: Features,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Features {
    pub dense: f32,
    /// Best cosine against the entry's questions / against its passage text.
    pub dense_q: f32,
    pub dense_p: f32,
    pub coverage: f32,
    pub bm25: f32,
}

/// How many of the best fused candidates the reranker re-sorts.
pub const RERANK_DEPTH: usize = 10;
/// Length of [`Candidate::rank_features`].
pub const RANK_FEATURE_COUNT: usize = 8;

impl Candidate {
    /// Per candidate of a list, in this order: dense cosine, coverage, BM25; whether
    /// the entry has written questions (a passage-only entry is found from its text
    /// alone); how much better its questions match than its text; whether it is the
    /// list's best on dense cosine, on BM25 and on coverage (the first such in list
    /// order).
    pub fn rank_features(list: &[Candidate]) -> Vec<[f32; RANK_FEATURE_COUNT]> {
        let best = |f: fn(&Features) -> f32| {
            list.iter()
                .enumerate()
                .fold(None::<(usize, f32)>, |acc, (i, c)| match acc {
                    Some((_, v)) if v >= f(&c.features) => acc,
                    _ => Some((i, f(&c.features))),
                })
                .map(|(i, _)| i)
        };
        let (bd, bb, bc) = (best(|f| f.dense), best(|f| f.bm25), best(|f| f.coverage));
        let flag = |b: Option<usize>, i: usize| if b == Some(i) { 1.0 } else { 0.0 };
        list.iter()
            .enumerate()
            .map(|(i, c)| {
                let f = &c.features;
                let has_q = f.dense_q > -0.5;
                [
                    f.dense,
                    f.coverage,
                    f.bm25,
                    if has_q { 1.0 } else { 0.0 },
                    if has_q { f.dense_q } else { 0.0 } - f.dense_p,
                    flag(bd, i),
                    flag(bb, i),
                    flag(bc, i),
                ]
            })
            .collect()
    }
}

/// Re-sorts the first [`RERANK_DEPTH`] candidates by `weights` · their rank features
/// (stable: ties keep the fused order) and returns by how much the new first leads
/// the new second on that sum. Scores stay the fused ones. `None` (nothing moved)
/// when the weights are all zero.
pub fn rerank(candidates: &mut [Candidate], weights: &[f32; RANK_FEATURE_COUNT]) -> Option<f32> {
    if weights.iter().all(|w| *w == 0.0) {
        return None;
    }
    let depth = candidates.len().min(RERANK_DEPTH);
    let head = &mut candidates[..depth];
    let keys: Vec<f32> = Candidate::rank_features(head)
        .iter()
        .map(|x| x.iter().zip(weights).map(|(a, w)| a * w).sum())
        .collect();
    let mut keyed: Vec<(f32, Candidate)> = keys.into_iter().zip(head.iter().cloned()).collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    let lead = match keyed[..] {
        [(a, _), (b, _), ..] => a - b,
        [_] => 1.0,
        [] => 0.0,
    };
    for (slot, (_, c)) in head.iter_mut().zip(keyed) {
        *slot = c;
    }
    Some(lead)
}

/// What the confidence model reads of one retrieval: how strong the best candidate
/// is and how far it stands from the rest, on each signal, plus the message length
/// (long messages score lower for the same fit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Signals {
    pub top: f32,
    pub margin: f32,
    pub dense: f32,
    pub dense_margin: f32,
    pub coverage: f32,
    pub coverage_margin: f32,
    pub bm25: f32,
    pub dense_agrees: f32,
    pub log_words: f32,
}

impl Signals {
    pub const COUNT: usize = 9;
    /// The names used in config (`conf_<name>`), in [`Signals::values`] order.
    pub const NAMES: [&'static str; Self::COUNT] = [
        "top",
        "margin",
        "dense",
        "dense_margin",
        "coverage",
        "coverage_margin",
        "bm25",
        "dense_agrees",
        "log_words",
    ];

    /// From candidates sorted best first; `None` when there are none.
    pub fn of(c: &[Candidate], words: usize) -> Option<Self> {
        let top = c.first()?;
        let rest = &c[1..];
        let best_other = |f: fn(&Candidate) -> f32, alone: f32| {
            rest.iter().map(f).reduce(f32::max).unwrap_or(alone)
        };
        let dense_other = best_other(|x| x.features.dense, top.features.dense - 0.5);
        Some(Self {
            top: top.score,
            margin: top.score - rest.first().map_or(top.score - 1.0, |x| x.score),
            dense: top.features.dense,
            dense_margin: top.features.dense - dense_other,
            coverage: top.features.coverage,
            coverage_margin: top.features.coverage
                - best_other(|x| x.features.coverage, top.features.coverage - 0.5),
            bm25: top.features.bm25,
            dense_agrees: if top.features.dense >= dense_other {
                1.0
            } else {
                0.0
            },
            log_words: (1.0 + words as f32).ln(),
        })
    }

    pub fn values(&self) -> [f32; Self::COUNT] {
        [
            self.top,
            self.margin,
            self.dense,
            self.dense_margin,
            self.coverage,
            self.coverage_margin,
            self.bm25,
            self.dense_agrees,
            self.log_words,
        ]
    }
}

/// A logistic model over retrieval [`Signals`]: sigmoid(bias + weights · values),
/// weights in [`Signals::NAMES`] order. Fitted by `cskh calibrate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logit {
    pub bias: f32,
    pub weights: [f32; Signals::COUNT],
}

impl Logit {
    pub fn prob(&self, s: &Signals) -> f32 {
        let z = self.bias
            + self
                .weights
                .iter()
                .zip(s.values())
                .map(|(w, x)| w * x)
                .sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }
}

/// The models and thresholds one kind of retrieval decides with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceModel {
    pub answer: Logit,
    pub offer: Logit,
    pub answer_threshold: f32,
    pub clarify_threshold: f32,
}

impl RetrievalParams {
    /// The decision models of hybrid retrieval with an embedding model (`lexical`
    /// false) or of lexical retrieval.
    pub fn confidence_model(&self, lexical: bool) -> ConfidenceModel {
        if lexical {
            ConfidenceModel {
                answer: self.lexical_answer_model,
                offer: self.lexical_offer_model,
                answer_threshold: self.lexical_answer_threshold,
                clarify_threshold: self.lexical_clarify_threshold,
            }
        } else {
            ConfidenceModel {
                answer: self.answer_model,
                offer: self.offer_model,
                answer_threshold: self.answer_threshold,
                clarify_threshold: self.clarify_threshold,
            }
        }
    }

    /// Replaces one kind's decision models.
    pub fn set_confidence_model(&mut self, lexical: bool, m: ConfidenceModel) {
        if lexical {
            self.lexical_answer_model = m.answer;
            self.lexical_offer_model = m.offer;
            self.lexical_answer_threshold = m.answer_threshold;
            self.lexical_clarify_threshold = m.clarify_threshold;
        } else {
            self.answer_model = m.answer;
            self.offer_model = m.offer;
            self.answer_threshold = m.answer_threshold;
            self.clarify_threshold = m.clarify_threshold;
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Retrieval {
    pub decision: Decision,
    pub confidence: f32,
    /// What the confidence was computed from (hybrid mode).
    #[serde(skip)]
    pub signals: Signals,
    /// Best first; at most twenty.
    pub candidates: Vec<Candidate>,
    /// For a clarify: the candidates to offer.
    #[serde(skip)]
    pub offer: Vec<usize>,
    /// The text as understood (normalized, diacritics restored).
    pub understood: String,
}

impl Retrieval {
    pub fn best(&self) -> Option<&Candidate> {
        self.candidates.first()
    }
}

struct DenseIndex {
    vectors: Vec<Vec<f32>>,
    owner: Vec<usize>,
    passage: Vec<bool>,
}

pub struct Retriever {
    kb: Arc<KnowledgeBase>,
    normalizer: Normalizer,
    restorer: DiacriticRestorer,
    gazetteer: Gazetteer,
    lexical: LexicalIndex,
    dense: Option<DenseIndex>,
    embedder: Option<Arc<dyn Embedder>>,
    /// Folded syllable sets per entry, for the coverage feature.
    entry_words: Vec<HashSet<String>>,
    /// For a passage read in several windows ([`Entry::passage_windows`]), each
    /// window's words with the entry's questions, title and tags; empty otherwise.
    window_words: Vec<Vec<HashSet<String>>>,
    idf: HashMap<String, f32>,
    max_idf: f32,
    /// Per entry: its question names a place or a delivery area ("Phí ship ra Hà
    /// Nội bao nhiêu?").
    placed: Vec<bool>,
    /// Every syllable the knowledge base uses, with its marks.
    marked_words: HashSet<String>,
    /// The last few query embeddings, newest last. The same text is often read twice
    /// within one turn (a voice turn checks the recognizer's hypotheses before the bot
    /// answers the chosen one); this keeps that from running the model twice. Small on
    /// purpose: it is a memo for the turn at hand, not a cache of popular questions.
    recent: Mutex<VecDeque<(String, Arc<Vec<f32>>)>>,
    pub params: RetrievalParams,
}

/// How many query embeddings [`Retriever`] remembers.
const RECENT_QUERIES: usize = 8;

/// What the model reads of a customer's text: natural text as typed when it has
/// diacritics and retrieval read it unchanged (`typed` and `understood`, from
/// [`Retriever::read`], are equal), else the form retrieval understood (marks
/// restored, typos respelled, zones added, or the shop's own abbreviations
/// expanded: the model knows general chat shorthand, not a shop's "ip" for iPhone).
fn model_text(
    normalizer: &Normalizer,
    text: &str,
    typed: &[String],
    understood: &[String],
) -> String {
    if has_diacritics(text) && typed == understood && !normalizer.uses_shop_table(text) {
        crate::text::nfc(&crate::text::unstretch(text.to_string()))
    } else {
        understood.join(" ")
    }
}

/// Where the index and caches of a knowledge base live under the data directory.
pub fn index_dir(data: &Path, kb: &KnowledgeBase) -> PathBuf {
    let name = format!(
        "{}-{}",
        &kb.content_hash()[..16],
        crate::text::analysis_id()
    );
    data.join("index").join(name)
}

impl Retriever {
    /// Builds (or reopens) the lexical index and the dense vectors. CPU-heavy: call
    /// it off the async executor.
    pub fn build(
        kb: Arc<KnowledgeBase>,
        embedder: Option<Arc<dyn Embedder>>,
        data: Option<&Path>,
        cache: Option<&Path>,
        params: RetrievalParams,
    ) -> Result<Self, SearchError> {
        let normalizer = kb.normalizer().clone();
        let mut all_sentences: Vec<Vec<String>> = Vec::new();
        let mut terms = Vec::with_capacity(kb.len());
        let mut entry_words = Vec::with_capacity(kb.len());
        let mut window_words = Vec::with_capacity(kb.len());
        let mut marked_words: HashSet<String> = HashSet::new();
        for e in &kb.entries {
            let asked: Vec<Vec<String>> = e
                .questions()
                .chain(e.title.as_deref())
                .chain(e.tags.iter().map(String::as_str))
                .map(|q| normalizer.syllables(q))
                .collect();
            let answer = normalizer.syllables(&e.answer);
            let answer_folded = fold_all(&answer);
            let mut entry = EntryTerms {
                question: Vec::new(),
                question_folded: Vec::new(),
                answer: index_terms(&answer),
                answer_folded: index_terms(&answer_folded),
            };
            let mut asked_words: HashSet<String> = HashSet::new();
            for s in &asked {
                let f = fold_all(s);
                entry.question.extend(index_terms(s));
                entry.question_folded.extend(index_terms(&f));
                asked_words.extend(f);
            }
            let windows = e.passage_windows(COVERAGE_WINDOW_WORDS);
            window_words.push(if windows.len() > 1 {
                windows
                    .iter()
                    .map(|w| {
                        let mut set = asked_words.clone();
                        set.extend(fold_all(&normalizer.syllables(w)));
                        set
                    })
                    .collect()
            } else {
                Vec::new()
            });
            marked_words.extend(asked.iter().flatten().cloned());
            marked_words.extend(answer.iter().cloned());
            let mut words = asked_words;
            words.extend(answer_folded);
            terms.push(entry);
            entry_words.push(words);
            all_sentences.extend(asked);
            all_sentences.push(answer);
        }
        let restorer =
            DiacriticRestorer::learn(&normalizer, all_sentences.iter().map(Vec::as_slice));
        let gazetteer = Gazetteer::new(&normalizer);
        let placed = kb
            .entries
            .iter()
            .map(|e| {
                e.question
                    .as_deref()
                    .is_some_and(|q| gazetteer.names_place(&normalizer.syllables(q)))
            })
            .collect();
        let mut df: HashMap<String, u32> = HashMap::new();
        for w in &entry_words {
            for s in w {
                *df.entry(s.clone()).or_default() += 1;
            }
        }
        let n = kb.len() as f32;
        let idf: HashMap<String, f32> = df
            .into_iter()
            .map(|(k, d)| (k, (1.0 + n / d as f32).ln()))
            .collect();
        let max_idf = (1.0 + n).ln();

        let index_path = data.map(|d| index_dir(d, &kb));
        let lexical = LexicalIndex::open_or_build(index_path.as_deref(), &terms)?;
        let dense = match &embedder {
            Some(emb) => Some(build_dense(&kb, emb.as_ref(), cache)?),
            None => None,
        };
        Ok(Self {
            kb,
            normalizer,
            restorer,
            gazetteer,
            lexical,
            dense,
            embedder,
            entry_words,
            window_words,
            placed,
            marked_words,
            idf,
            max_idf,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_QUERIES)),
            params,
        })
    }

    pub fn knowledge(&self) -> &KnowledgeBase {
        &self.kb
    }

    /// The embedding model this retriever queries (shared by a rebuilt retriever).
    pub fn embedder(&self) -> Option<Arc<dyn Embedder>> {
        self.embedder.clone()
    }

    pub fn has_model(&self) -> bool {
        self.dense.is_some()
    }

    pub fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }

    /// The customer's words as the retriever reads them: normalized, abbreviations
    /// expanded, marks restored on text typed without them, unknown syllables
    /// respelled, and the delivery zone of a named place added in the words the
    /// knowledge base uses ("đông anh" → "ngoại thành hà nội").
    pub fn understand(&self, text: &str) -> Vec<String> {
        self.read(text).1
    }

    /// Whether entry `index` holds every word of `words` that the knowledge base
    /// knows, and `words` has at least one such word (diacritics ignored).
    pub fn entry_has_words(&self, index: usize, words: &[String]) -> bool {
        let known: Vec<String> = words
            .iter()
            .map(|w| fold(w))
            .filter(|w| self.idf.contains_key(w))
            .collect();
        !known.is_empty() && known.iter().all(|w| self.entry_words[index].contains(w))
    }

    /// `previous` with its most specific words replaced by `content`: "phí ship ra
    /// Hà Nội bao nhiêu" + "đà nẵng" → "phí ship ra đà nẵng bao nhiêu". The replaced
    /// span is as long as `content` (at most two syllables), holds no word that only
    /// frames the question (`is_frame`: "bao nhiêu", "không", …) and has the highest
    /// IDF in the knowledge base; words the knowledge base does not know weigh 0.
    /// `content_marked`: the follow-up was typed with diacritics (its marks are
    /// restored otherwise, as retrieval does for any message).
    pub fn substitute(
        &self,
        previous: &str,
        content: &[String],
        content_marked: bool,
        is_frame: &dyn Fn(&str) -> bool,
    ) -> Option<String> {
        let k = content.len().min(2);
        self.substitute_span(previous, content, content_marked, is_frame, k)
    }

    /// The readings of a follow-up in `previous`'s words: [`Self::substitute`], then
    /// for a one-syllable follow-up the same with a two-syllable span, as a word
    /// may stand for a longer one ("thay chân sạc bao nhiêu" + "loa" → "thay loa
    /// bao nhiêu"). Each reading once.
    pub fn substitutions(
        &self,
        previous: &str,
        content: &[String],
        content_marked: bool,
        is_frame: &dyn Fn(&str) -> bool,
    ) -> Vec<String> {
        let k = content.len().min(2);
        let mut out: Vec<String> = Vec::new();
        let spans: &[usize] = match k {
            0 => &[],
            1 => &[1, 2],
            _ => &[2],
        };
        for &span in spans {
            if let Some(r) = self.substitute_span(previous, content, content_marked, is_frame, span)
            {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    }

    fn substitute_span(
        &self,
        previous: &str,
        content: &[String],
        content_marked: bool,
        is_frame: &dyn Fn(&str) -> bool,
        k: usize,
    ) -> Option<String> {
        let prev = self.marks(
            &self.normalizer.syllables(previous),
            has_diacritics(previous),
        );
        let content = self.marks(content, content_marked);
        if k == 0 || content.is_empty() || prev.len() < k {
            return None;
        }
        let weight = |w: &[String]| -> f32 {
            w.iter()
                .map(|s| self.idf.get(&fold(s)).copied().unwrap_or(0.0))
                .sum()
        };
        let spans: Vec<usize> = (0..=prev.len() - k)
            .rev()
            .filter(|&a| prev[a..a + k].iter().all(|s| !is_frame(s)))
            .collect();
        // A follow-up usually sets its words against words of the same kind:
        // "còn ngoại thành?" after "phí ship nội thành sài gòn" replaces "nội thành",
        // not the place. A span sharing a syllable in the same place with the
        // addition (and not the same) is taken first.
        let folded: Vec<String> = content.iter().take(k).map(|s| fold(s)).collect();
        let contrast: Vec<usize> = spans
            .iter()
            .copied()
            .filter(|&a| {
                let span: Vec<String> = prev[a..a + k].iter().map(|s| fold(s)).collect();
                span != folded && span.iter().zip(&folded).any(|(x, y)| x == y)
            })
            .collect();
        let pool = if contrast.is_empty() {
            &spans
        } else {
            &contrast
        };
        let at = pool
            .iter()
            .copied()
            .max_by(|&a, &b| weight(&prev[a..a + k]).total_cmp(&weight(&prev[b..b + k])))?;
        let mut out: Vec<String> = prev[..at].to_vec();
        out.extend(content.iter().cloned());
        out.extend(prev[at + k..].iter().cloned());
        Some(out.join(" "))
    }

    /// How well marks are restored on this message: its words as typed against the
    /// restorer's reading of the same words with every mark removed, as (restored
    /// exactly, words). `None` for a message typed without marks.
    pub fn restoration_check(&self, text: &str) -> Option<(usize, usize)> {
        if !has_diacritics(text) {
            return None;
        }
        let typed = self.normalizer.syllables(text);
        let restored = self.restorer.restore(&fold_all(&typed));
        let words = typed
            .iter()
            .zip(&restored)
            .filter(|(t, _)| t.chars().any(char::is_alphabetic));
        let (mut right, mut total) = (0, 0);
        for (t, r) in words {
            total += 1;
            right += usize::from(t == r);
        }
        Some((right, total))
    }

    /// The syllables as typed (normalized) and as understood ([`Self::understand`]).
    /// Syllables with their marks as retrieval reads them: typed with marks, only
    /// the two known slips respelled; typed without, the marks restored.
    fn marks(&self, syl: &[String], typed_with_marks: bool) -> Vec<String> {
        if typed_with_marks {
            self.restorer.respell(syl)
        } else {
            self.restorer.restore(syl)
        }
    }

    fn read(&self, text: &str) -> (Vec<String>, Vec<String>) {
        let syl = self.normalizer.syllables(text);
        let mut out = self.marks(&syl, has_diacritics(text));
        // Places as typed ("dong anh") and, where that changed them, as respelled
        // ("an giag" → "an giang").
        let mut zones: Vec<&[String]> = self.gazetteer.zones(&syl);
        let respelled = (out != syl).then(|| self.gazetteer.zones(&out));
        zones.extend(respelled.iter().flatten());
        let added: Vec<String> = zones
            .into_iter()
            .flatten()
            .filter(|w| self.idf.contains_key(&fold(w)))
            .cloned()
            .collect();
        for w in added {
            if !out.contains(&w) {
                out.push(w);
            }
        }
        (syl, out)
    }

    fn coverage(&self, query_words: &[String], entry: usize) -> f32 {
        match self.window_words[entry].as_slice() {
            [] => self.coverage_of(query_words, &self.entry_words[entry]),
            windows => windows
                .iter()
                .map(|w| self.coverage_of(query_words, w))
                .fold(0.0, f32::max),
        }
    }

    fn coverage_of(&self, query_words: &[String], words: &HashSet<String>) -> f32 {
        let unknown = self.params.unknown_word_weight * self.max_idf;
        let mut total = 0.0;
        let mut hit = 0.0;
        let mut seen = HashSet::new();
        for w in query_words {
            if !seen.insert(w) {
                continue;
            }
            let weight = self.idf.get(w).copied().unwrap_or(unknown);
            total += weight;
            if words.contains(w) {
                hit += weight;
            }
        }
        if total == 0.0 {
            0.0
        } else {
            hit / total
        }
    }

    pub fn retrieve(&self, text: &str, mode: Mode) -> Result<Retrieval, SearchError> {
        let (typed, understood) = self.read(text);
        let folded = fold_all(&understood);
        let p = &self.params;
        let use_lex = mode != Mode::Dense;
        let use_dense = mode != Mode::Bm25 && self.dense.is_some();
        if mode == Mode::Dense && self.dense.is_none() {
            return Err(SearchError::NoModel);
        }
        let mut pool: HashMap<usize, Features> = HashMap::new();
        if use_lex {
            let hits = self.lexical.search(
                &index_terms(&understood),
                &index_terms(&folded),
                p.answer_weight,
                20,
            )?;
            let top = hits.first().map(|h| h.1).unwrap_or(1.0).max(1e-6);
            for (idx, s) in hits {
                pool.entry(idx).or_default().bm25 = s / top;
            }
        }
        if use_dense {
            let (qs, ps) =
                self.dense_scores(&model_text(&self.normalizer, text, &typed, &understood))?;
            let off = self.params.passage_offset;
            let scores: Vec<f32> = qs.iter().zip(&ps).map(|(q, p)| q.max(p + off)).collect();
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            for &i in order.iter().take(20) {
                pool.entry(i).or_default();
            }
            for (i, f) in pool.iter_mut() {
                f.dense = scores[*i];
                f.dense_q = qs[*i];
                f.dense_p = ps[*i];
            }
        }
        let mut candidates: Vec<Candidate> = pool
            .into_iter()
            .map(|(index, mut f)| {
                f.coverage = self.coverage(&folded, index);
                let score = match mode {
                    Mode::Hybrid if use_dense => {
                        p.w_dense * f.dense + p.w_coverage * f.coverage + p.w_bm25 * f.bm25
                    }
                    // Without a model, hybrid is lexical: coverage and BM25 only.
                    Mode::Hybrid | Mode::Bm25 => f.coverage + 0.5 * f.bm25,
                    Mode::Dense => f.dense,
                };
                Candidate {
                    index,
                    id: self.kb.entries[index].id.clone(),
                    score,
                    features: f,
                }
            })
            .collect();
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
        candidates.truncate(20);
        let lead = if mode == Mode::Hybrid && use_dense {
            rerank(&mut candidates, &p.rank_weights)
        } else {
            None
        };
        let mut signals = Signals::of(&candidates, understood.len()).unwrap_or_default();
        if let Some(lead) = lead {
            // Reranked: the margin is the lead on the score that ordered the list.
            signals.margin = lead;
        }
        let (mut decision, confidence, mut offer) =
            self.decide(&candidates, &signals, mode, use_dense);
        if decision == Decision::Answer
            && text.split_whitespace().count() <= p.vague_max_words
            && candidates.len() >= 2
        {
            decision = Decision::Clarify;
            offer = candidates.iter().take(3).map(|c| c.index).collect();
        }
        // A delivery question that names no place ("phí ship bao nhiêu", "giao hàng
        // mất mấy ngày"), in words the knowledge base knows, is not answered by an entry for one place or area ("Phí ship
        // ra Hà Nội"): the customer chooses.
        if decision == Decision::Answer
            && candidates.len() >= 2
            && candidates.first().is_some_and(|c| self.placed[c.index])
            && self.gazetteer.about_delivery(&typed)
            && !self.gazetteer.names_place(&typed)
            && !self.gazetteer.names_place(&understood)
            // A word the knowledge base does not know may be a place the table
            // lacks ("ship về Ea Kar") or one misheard ("ra hà lội").
            && understood.iter().all(|w| self.marked_words.contains(w) || self.idf.contains_key(w))
        {
            decision = Decision::Clarify;
            offer = candidates.iter().take(3).map(|c| c.index).collect();
        }
        Ok(Retrieval {
            decision,
            confidence,
            signals,
            candidates,
            offer,
            understood: understood.join(" "),
        })
    }

    /// IDF-weighted overlap coefficient of two questions' words, as retrieval reads
    /// them: the shared weight over the smaller question's weight (a paraphrase that
    /// adds words is not penalized as it is by Jaccard). Shared rare words count,
    /// shared frame words ("shop", "có", "không") barely do; words the knowledge
    /// base never uses weigh the most, so words that say nothing ("ơi", "vậy": the
    /// caller's `skip`) are left out first.
    pub fn overlap(&self, a: &str, b: &str, skip: &dyn Fn(&str) -> bool) -> f32 {
        let words = |t: &str| -> HashSet<String> {
            let read: Vec<String> = self
                .understand(t)
                .into_iter()
                .filter(|w| !skip(w))
                .collect();
            fold_all(&read).into_iter().collect()
        };
        let (wa, wb) = (words(a), words(b));
        let w = |x: &String| self.idf.get(x).copied().unwrap_or(self.max_idf);
        let shared: f32 = wa.intersection(&wb).map(w).sum();
        let smaller = wa.iter().map(w).sum::<f32>().min(wb.iter().map(w).sum());
        if smaller == 0.0 {
            0.0
        } else {
            shared / smaller
        }
    }

    /// The embedding of a customer question as retrieval reads it (diacritics
    /// restored when typed without), if a model is loaded.
    pub fn embed_query(&self, text: &str) -> Option<Vec<f32>> {
        let (typed, understood) = self.read(text);
        self.query_vector(&model_text(&self.normalizer, text, &typed, &understood))
            .ok()
            .map(|v| v.to_vec())
    }

    /// The model's vector for a query text, from the recent-query memo when it was
    /// just embedded.
    fn query_vector(&self, text: &str) -> Result<Arc<Vec<f32>>, SearchError> {
        let Some(emb) = &self.embedder else {
            return Err(SearchError::NoModel);
        };
        let remembered = |recent: &VecDeque<(String, Arc<Vec<f32>>)>| {
            recent
                .iter()
                .find(|(t, _)| t == text)
                .map(|(_, v)| v.clone())
        };
        if let Some(v) = remembered(&self.recent.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(v);
        }
        let v = Arc::new(
            emb.embed(&[text], TextKind::Query)?
                .pop()
                .unwrap_or_default(),
        );
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if remembered(&recent).is_none() {
            if recent.len() == RECENT_QUERIES {
                recent.pop_front();
            }
            recent.push_back((text.to_string(), v.clone()));
        }
        Ok(v)
    }

    /// Per entry: best cosine over its question vectors (-1 when it has none) and the
    /// cosine with its passage vector.
    fn dense_scores(&self, query: &str) -> Result<(Vec<f32>, Vec<f32>), SearchError> {
        let Some(dense) = &self.dense else {
            return Err(SearchError::NoModel);
        };
        let q = self.query_vector(query)?;
        let mut best_q = vec![-1.0f32; self.kb.len()];
        let mut best_p = vec![-1.0f32; self.kb.len()];
        for ((v, &owner), &is_passage) in dense.vectors.iter().zip(&dense.owner).zip(&dense.passage)
        {
            let s = cosine(&q, v);
            let slot = if is_passage {
                &mut best_p[owner]
            } else {
                &mut best_q[owner]
            };
            if s > *slot {
                *slot = s;
            }
        }
        Ok((best_q, best_p))
    }

    fn decide(
        &self,
        c: &[Candidate],
        signals: &Signals,
        mode: Mode,
        dense: bool,
    ) -> (Decision, f32, Vec<usize>) {
        let p = &self.params;
        let Some(top) = c.first() else {
            return (Decision::Handoff, 0.0, Vec::new());
        };
        let (confidence, offer_confidence, answer_at, clarify_at) = if mode == Mode::Dense {
            // Dense alone is a baseline for `eval --mode`: a fixed, rough calibration
            // around a cosine of 0.9 and the margin to the second candidate.
            let z = 40.0 * (top.score - 0.9) + 40.0 * signals.margin;
            let conf = 1.0 / (1.0 + (-z).exp());
            (conf, conf, 0.5, 0.2)
        } else {
            let m = p.confidence_model(!(mode == Mode::Hybrid && dense));
            (
                m.answer.prob(signals),
                m.offer.prob(signals),
                m.answer_threshold,
                m.clarify_threshold,
            )
        };
        if confidence >= answer_at {
            return (Decision::Answer, confidence, vec![top.index]);
        }
        if offer_confidence >= clarify_at && c.len() >= 2 {
            let gap = if mode == Mode::Hybrid && dense {
                p.clarify_gap * p.w_dense
            } else {
                p.clarify_gap
            };
            let offer: Vec<usize> = c
                .iter()
                .take(3)
                .filter(|x| x.score >= top.score - gap)
                .map(|x| x.index)
                .collect();
            let offer = if offer.len() >= 2 {
                offer
            } else {
                c.iter().take(2).map(|x| x.index).collect()
            };
            return (Decision::Clarify, confidence, offer);
        }
        (Decision::Handoff, confidence, Vec::new())
    }

    pub fn entry(&self, index: usize) -> &Entry {
        &self.kb.entries[index]
    }
}

/// Words per embedded piece of a long passage (DPR's 100-word passages): about 130 of
/// the model's tokens for Vietnamese (1.3 a syllable), well inside the 256 it reads,
/// so no part of a long passage goes unread and one topic of it is not averaged away
/// by the others. Measured on the other knowledge base merged into articles of 3 and
/// 5 entries, dense hit@1 read 0.55 / 0.48 with one truncated vector, 0.58 / 0.63 at
/// 160 words, 0.63 / 0.72 at 100, 0.54 / 0.61 at 60.
const PASSAGE_WINDOW_WORDS: usize = 100;

/// Words per window of a long passage for the coverage feature: about the 256 tokens
/// the model reads at once. A message's words spread over a long article are not
/// the article answering it; over the whole of a few-hundred-word policy they often
/// are (at 100 words, bm25-only dev hit@1 fell 0.846 → 0.829). On the merged articles
/// of 3 and 5 entries, hybrid hit@1 read 0.675 / 0.708 with the whole entry's words,
/// 0.700 / 0.767 with these windows.
const COVERAGE_WINDOW_WORDS: usize = 2 * PASSAGE_WINDOW_WORDS;

fn build_dense(
    kb: &KnowledgeBase,
    embedder: &dyn Embedder,
    cache_dir: Option<&Path>,
) -> Result<DenseIndex, SearchError> {
    let mut questions = Vec::new();
    let mut q_owner = Vec::new();
    let mut passages = Vec::new();
    let mut p_owner = Vec::new();
    for (i, e) in kb.entries.iter().enumerate() {
        for q in e.questions() {
            questions.push(crate::text::nfc(q));
            q_owner.push(i);
        }
        for w in e.passage_windows(PASSAGE_WINDOW_WORDS) {
            passages.push(w);
            p_owner.push(i);
        }
    }
    let mut cache = match cache_dir {
        Some(d) => EmbeddingCache::open(d, embedder.model_id(), embedder.ndims()),
        None => EmbeddingCache::in_memory(embedder.model_id(), embedder.ndims()),
    };
    let (qv, fresh_q) = cache.embed_all(embedder, &questions, TextKind::Query)?;
    let (pv, fresh_p) = cache.embed_all(embedder, &passages, TextKind::Passage)?;
    if cache_dir.is_some() && fresh_q + fresh_p > 0 {
        if let Err(e) = cache.save() {
            tracing::warn!(error = %e, "cannot save the embedding cache");
        }
    }
    tracing::info!(
        entries = kb.len(),
        vectors = qv.len() + pv.len(),
        embedded_fresh = fresh_q + fresh_p,
        "knowledge vectors ready"
    );
    let mut passage = vec![false; qv.len()];
    passage.extend(std::iter::repeat_n(true, pv.len()));
    let mut owner = q_owner;
    owner.extend(p_owner);
    let mut vectors = qv;
    vectors.extend(pv);
    Ok(DenseIndex {
        vectors,
        owner,
        passage,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::embed::toy::Toy;
    use crate::knowledge::{Entry, Origin};

    fn entry(id: &str, q: &str, a: &str) -> Entry {
        Entry {
            id: id.into(),
            question: Some(q.into()),
            title: None,
            variants: Vec::new(),
            answer: a.into(),
            category: None,
            tags: Vec::new(),
            origin: Origin {
                file: "kb.md".into(),
                line: 1,
            },
        }
    }

    fn cand(index: usize, dense: f32, dense_q: f32, coverage: f32, bm25: f32) -> Candidate {
        Candidate {
            index,
            id: format!("e{index}"),
            score: 10.0 - index as f32,
            features: Features {
                dense,
                dense_q,
                dense_p: dense - 0.05,
                coverage,
                bm25,
            },
        }
    }

    #[test]
    fn rank_features_flag_the_first_best_of_each_signal() {
        let list = [
            cand(0, 0.90, 0.90, 0.8, 1.0),
            cand(1, 0.93, -1.0, 0.8, 0.5),
            cand(2, 0.93, 0.93, 0.9, 1.0),
        ];
        let f = Candidate::rank_features(&list);
        // has_question, question minus passage (passage-only: minus the passage).
        assert_eq!((f[0][3], f[1][3]), (1.0, 0.0));
        assert!((f[0][4] - 0.05).abs() < 1e-6 && (f[1][4] + 0.88).abs() < 1e-6);
        // Best dense: the first of the two 0.93s; best BM25: the first 1.0.
        let flags: Vec<[f32; 3]> = f.iter().map(|x| [x[5], x[6], x[7]]).collect();
        assert_eq!(
            flags,
            vec![[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
        );
    }

    #[test]
    fn rerank_sorts_the_head_by_its_weights_and_reports_the_lead() {
        let mut list: Vec<Candidate> = (0..RERANK_DEPTH + 2)
            .map(|i| cand(i, 0.8, 0.8, 0.1 * (i % 4) as f32, 0.0))
            .collect();
        // All-zero weights: the fused order stays.
        assert_eq!(rerank(&mut list, &[0.0; RANK_FEATURE_COUNT]), None);
        assert_eq!(list[0].index, 0);
        // Coverage alone: 3 and 7 (0.3) lead, in fused order; the tail is untouched.
        let mut w = [0.0; RANK_FEATURE_COUNT];
        w[1] = 10.0;
        let lead = rerank(&mut list, &w).unwrap();
        let order: Vec<usize> = list.iter().map(|c| c.index).collect();
        assert_eq!(&order[..3], &[3, 7, 2]);
        assert_eq!(&order[RERANK_DEPTH..], &[RERANK_DEPTH, RERANK_DEPTH + 1]);
        assert!(lead.abs() < 1e-6, "3 and 7 tie: {lead}");
        assert_eq!(list[0].score, 7.0, "scores stay the fused ones");
    }

    #[test]
    fn a_follow_up_replaces_the_previous_question_s_most_specific_words() {
        let kb = KnowledgeBase::new(vec![
            entry("hn", "Phí ship ra Hà Nội bao nhiêu?", "Dạ, 25.000đ ạ."),
            entry("dn", "Phí ship ra Đà Nẵng bao nhiêu?", "Dạ, 35.000đ ạ."),
            entry("momo", "Thanh toán bằng MoMo được không?", "Dạ được ạ."),
            entry("zalo", "Có thanh toán qua ZaloPay không?", "Dạ có ạ."),
            entry(
                "sg",
                "Phí ship nội thành Sài Gòn bao nhiêu?",
                "Dạ, 20.000đ ạ.",
            ),
            entry(
                "hn-ngoai",
                "Phí ship ngoại thành Hà Nội bao nhiêu?",
                "Dạ, 30.000đ ạ.",
            ),
        ])
        .unwrap();
        let r =
            Retriever::build(Arc::new(kb), None, None, None, RetrievalParams::default()).unwrap();
        let frame = |s: &str| ["bao", "nhiêu", "được", "không", "ra", "bằng"].contains(&s);
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let cases = [
            (
                "phí ship ra Hà Nội bao nhiêu",
                "đà nẵng",
                true,
                "phí giao hàng ra đà nẵng bao nhiêu",
            ),
            (
                "phi ship ra ha noi bao nhieu",
                "da nang",
                false,
                "phí giao hàng ra đà nẵng bao nhiêu",
            ),
            (
                "Thanh toán bằng MoMo được không",
                "zalopay",
                true,
                "thanh toán bằng zalopay được không",
            ),
            // Set against words of its kind: "nội thành", not the place.
            (
                "phí ship nội thành Sài Gòn bao nhiêu",
                "ngoại thành",
                true,
                "phí giao hàng ngoại thành sài gòn bao nhiêu",
            ),
        ];
        for (prev, content, marked, want) in cases {
            let got = r.substitute(prev, &words(content), marked, &frame);
            assert_eq!(got.as_deref(), Some(want), "{prev} + {content}");
        }
        // Nothing to put in, or only frame words to replace: no reading.
        assert_eq!(r.substitute("phí ship", &[], true, &frame), None);
        assert_eq!(
            r.substitute("bao nhiêu", &words("đà nẵng"), true, &frame),
            None
        );
    }

    #[test]
    fn a_named_place_adds_its_zone_in_the_knowledge_base_words_even_when_mistyped() {
        let kb = KnowledgeBase::new(vec![
            entry(
                "mien-nam",
                "Ship về các tỉnh miền Nam mất bao lâu?",
                "Dạ, các tỉnh miền Nam (An Giang, Cà Mau) giao trong 2–3 ngày ạ.",
            ),
            entry("doi", "Đổi trả thế nào?", "Dạ, đổi trong 7 ngày ạ."),
        ])
        .unwrap();
        let r =
            Retriever::build(Arc::new(kb), None, None, None, RetrievalParams::default()).unwrap();
        for text in ["gửi về an giang bao lâu", "gửi hàg về an giag bao lâu"] {
            let u = r.understand(text);
            assert!(
                u.iter().any(|w| w == "miền") && u.iter().any(|w| w == "nam"),
                "{text}: {u:?}"
            );
        }
        // No delivery cue, no zone; zone words the knowledge base lacks are not added.
        assert!(!r
            .understand("an giang có gì đẹp")
            .contains(&"miền".to_string()));
        assert!(!r
            .understand("ship về đông anh")
            .contains(&"ngoại".to_string()));
    }

    #[test]
    fn a_query_read_twice_is_embedded_once_but_new_ones_are_not_mixed_up() {
        let kb = KnowledgeBase::new(vec![
            entry(
                "ship",
                "Phí giao hàng bao nhiêu?",
                "Dạ, phí giao hàng là 30.000đ ạ.",
            ),
            entry(
                "doi",
                "Đổi trả thế nào?",
                "Dạ, anh/chị được đổi trong 7 ngày ạ.",
            ),
        ])
        .unwrap();
        let emb = Arc::new(Toy::default());
        let r = Retriever::build(
            Arc::new(kb),
            Some(emb.clone()),
            None,
            None,
            RetrievalParams::default(),
        )
        .unwrap();
        let before = emb.queries.load(Ordering::SeqCst);
        let a = r.retrieve("phí giao hàng bao nhiêu", Mode::Hybrid).unwrap();
        let b = r.retrieve("phí giao hàng bao nhiêu", Mode::Hybrid).unwrap();
        assert_eq!(emb.queries.load(Ordering::SeqCst) - before, 1);
        assert_eq!(a.best().unwrap().score, b.best().unwrap().score);
        // More distinct queries than the memo holds: the oldest is embedded again.
        for i in 0..RECENT_QUERIES {
            r.retrieve(&format!("đổi trả lần {i}"), Mode::Hybrid)
                .unwrap();
        }
        r.retrieve("phí giao hàng bao nhiêu", Mode::Hybrid).unwrap();
        assert_eq!(
            emb.queries.load(Ordering::SeqCst) - before,
            RECENT_QUERIES + 2
        );
    }
}
