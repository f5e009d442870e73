//! The answering core as one service: knowledge base + optional embedding model +
//! retriever, and the `ask` result shape shared by the CLI and the HTTP API.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use crate::embed::batch::Batching;
use crate::embed::{CandleEmbedder, EmbedError, Embedder};
use crate::knowledge::{KnowledgeBase, KnowledgeError};
use crate::search::{Decision, Mode, Retrieval, RetrievalParams, Retriever, SearchError};

#[derive(Debug, Error)]
pub enum CoreError {
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

#[derive(Debug, Clone)]
pub struct CoreOptions {
    pub knowledge: PathBuf,
    pub data: Option<PathBuf>,
    pub model: PathBuf,
    /// Where embedding vectors are cached (default: the data directory). Safe to share
    /// between data directories: entries are keyed by model and text.
    pub cache: Option<PathBuf>,
    pub params: RetrievalParams,
}

/// Loads the embedding model if present. A missing model is not an error: the core
/// runs on BM25 alone and says so once; a broken model directory is an error.
pub fn load_model(dir: &Path) -> Result<Option<Arc<dyn Embedder>>, EmbedError> {
    let dir = &model_dir(dir);
    match CandleEmbedder::load(dir) {
        // Concurrent customers' queries share forward passes.
        Ok(m) => Ok(Some(Arc::new(Batching::new(Arc::new(m))))),
        Err(EmbedError::Missing(_)) => {
            tracing::warn!(
                model = %dir.display(),
                "no embedding model found: answering with BM25 only (run `cskh model fetch`)"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Where a model directory given relative to the working directory is: there, or,
/// when the program runs from elsewhere (`/path/to/cskh/target/release/cskh eval` in
/// another directory), the same path under the program's own install (the first of
/// its executable's three nearest ancestors that holds it), so the model that
/// `scripts/setup.sh` installed is not silently left out.
pub fn model_dir(dir: &Path) -> PathBuf {
    let installed = |d: &Path| d.join("config.json").is_file();
    if dir.is_absolute() || installed(dir) {
        return dir.to_path_buf();
    }
    let exe = std::env::current_exe().and_then(|e| e.canonicalize());
    let found = exe.ok().and_then(|exe| {
        exe.ancestors()
            .skip(1)
            .take(3)
            .map(|a| a.join(dir))
            .find(|d| installed(d))
    });
    match found {
        Some(d) => {
            tracing::info!(model = %d.display(), "using the model installed with the program");
            d
        }
        None => dir.to_path_buf(),
    }
}

pub struct Core {
    pub retriever: Retriever,
    /// Reads the small talk that opens a question, which retrieval leaves out.
    rules: &'static crate::bot::intents::IntentRules,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AskCandidate {
    pub id: String,
    pub score: f32,
}

/// The `cskh ask --json` object.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AskResult {
    pub decision: Decision,
    pub faq_id: Option<String>,
    pub confidence: f32,
    pub answer: Option<String>,
    pub candidates: Vec<AskCandidate>,
}

impl Core {
    pub fn load(opts: &CoreOptions) -> Result<Self, CoreError> {
        let kb = Arc::new(KnowledgeBase::load(&opts.knowledge)?);
        let model = load_model(&opts.model)?;
        Self::build(opts, kb, model)
    }

    /// A core over the knowledge files as they are now, sharing this core's model
    /// (no second copy of the weights while both are alive). CPU-heavy: only new or
    /// edited entries are embedded, the rest come from the embedding cache.
    pub fn rebuild(&self, opts: &CoreOptions) -> Result<Self, CoreError> {
        let kb = Arc::new(KnowledgeBase::load(&opts.knowledge)?);
        Self::build(opts, kb, self.retriever.embedder())
    }

    fn build(
        opts: &CoreOptions,
        kb: Arc<KnowledgeBase>,
        model: Option<Arc<dyn Embedder>>,
    ) -> Result<Self, CoreError> {
        let cache = opts.cache.clone().or_else(|| opts.data.clone());
        let retriever = Retriever::build(
            kb,
            model,
            opts.data.as_deref(),
            cache.as_deref(),
            opts.params.clone(),
        )?;
        Ok(Self {
            retriever,
            rules: crate::bot::intents::IntentRules::shared(),
        })
    }

    /// Retrieval for a customer's message, read without the small talk that opens it
    /// ("shop ơi cho em hỏi đổi size được không" → "đổi size được không"): greetings
    /// are no part of the question, and they diluted its words' coverage (and, typed
    /// with marks before a question typed without, kept its marks from being
    /// restored). The same reading for `ask`, `eval`, `calibrate` and the dialogue.
    pub fn retrieve(&self, text: &str, mode: Mode) -> Result<Retrieval, SearchError> {
        match self.rules.question_part(text) {
            Some(question) => self.retriever.retrieve(&question, mode),
            None => self.retriever.retrieve(text, mode),
        }
    }

    pub fn ask(&self, text: &str, mode: Mode) -> Result<AskResult, SearchError> {
        let r = self.retrieve(text, mode)?;
        Ok(self.to_result(&r))
    }

    pub fn to_result(&self, r: &Retrieval) -> AskResult {
        let chosen = (r.decision == Decision::Answer)
            .then(|| r.best())
            .flatten()
            .map(|c| self.retriever.entry(c.index));
        AskResult {
            decision: r.decision,
            faq_id: chosen.map(|e| e.id.clone()),
            confidence: round3(r.confidence),
            answer: chosen.map(|e| e.answer.clone()),
            candidates: r
                .candidates
                .iter()
                .take(5)
                .map(|c| AskCandidate {
                    id: c.id.clone(),
                    score: round3(c.score),
                })
                .collect(),
        }
    }
}

pub(crate) fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}
