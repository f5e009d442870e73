//! Sentence embeddings. [`Embedder`] is the boundary; [`CandleEmbedder`] runs any
//! Hugging Face-style BERT or XLM-R directory with candle. This module (with `fetch`)
//! is the only importer of candle and tokenizers.

pub mod batch;
mod cache;
mod encoder;
pub mod fetch;
mod int8;
#[cfg(test)]
pub(crate) mod toy;
pub mod unigram;
mod weights;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokenizers::{Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

pub use cache::EmbeddingCache;
use weights::WeightsFile;

#[derive(Debug, Error)]
pub enum EmbedError {
    #[error("no embedding model at {0} (run `cskh model fetch`)")]
    Missing(PathBuf),
    #[error("model directory {dir}: {message}")]
    BadModel { dir: PathBuf, message: String },
    #[error("embedding failed: {0}")]
    Inference(String),
    #[error("embedding has {got} dimensions, the index expects {want}")]
    DimensionMismatch { got: usize, want: usize },
}

impl From<candle_core::Error> for EmbedError {
    fn from(e: candle_core::Error) -> Self {
        Self::Inference(first_line(&e))
    }
}

/// candle appends a backtrace to some errors; users get the first line only.
fn first_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Whether a text is a customer's question or a document to be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextKind {
    Query,
    Passage,
}

/// Turns texts into L2-normalized vectors. Implementations are CPU-heavy: call them
/// from blocking threads, never directly on the async executor.
pub trait Embedder: Send + Sync {
    /// Stable identity of the model (weights + tokenizer + recipe), for cache keys.
    fn model_id(&self) -> &str;
    fn ndims(&self) -> usize;
    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Optional `cskh-model.json` beside the weights: the recipe facts of the model.
#[derive(Debug, Clone, Deserialize)]
pub struct Recipe {
    #[serde(default = "default_query_prefix")]
    pub query_prefix: String,
    #[serde(default = "default_passage_prefix")]
    pub passage_prefix: String,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// `auto` (default): `i8` where the CPU has AVX-512 VNNI, else `compact`; `f32`:
    /// the fast encoder with f32 weights; `compact`: f32 layers with an i8 token table;
    /// `i8`: its linear layers with i8 weights and u8 activations ([`int8`]) and the
    /// i8 token table; `q8`: as Q8_0 quantized matmuls (candle's kernels,
    /// slower on AVX-512 machines); `reference`: the `candle_transformers` BERT as is,
    /// for checks.
    #[serde(default)]
    pub precision: Precision,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    Q8,
    Reference,
    I8,
    /// `i8` where the CPU has AVX-512 VNNI, `compact` elsewhere.
    #[default]
    Auto,
    /// f32 linear layers with the token table as i8 rows (96 MB instead of 384 MB):
    /// the small footprint on any CPU.
    Compact,
}

impl Precision {
    /// What runs on this CPU.
    fn resolve(self) -> Self {
        match self {
            Precision::Auto if int8::supported() => Precision::I8,
            Precision::Auto => Precision::Compact,
            Precision::I8 if !int8::supported() => {
                tracing::warn!(
                    "this CPU has no AVX-512 VNNI: running the model's layers in f32 instead of i8"
                );
                Precision::Compact
            }
            p => p,
        }
    }
}

fn default_query_prefix() -> String {
    "query: ".into()
}
fn default_passage_prefix() -> String {
    "passage: ".into()
}
fn default_max_tokens() -> usize {
    256
}

impl Default for Recipe {
    fn default() -> Self {
        Self {
            query_prefix: default_query_prefix(),
            passage_prefix: default_passage_prefix(),
            max_tokens: default_max_tokens(),
            precision: Precision::default(),
        }
    }
}

pub const RECIPE_FILE: &str = "cskh-model.json";

/// The model's tokenizer. A plain Unigram vocabulary (XLM-R, e5) is held by the
/// memory-lean [`unigram::CompactUnigram`] with identical output; any other
/// `tokenizer.json` is loaded by `tokenizers` as it is.
pub enum TextTokenizer {
    Compact(Box<unigram::CompactTokenizer>),
    Other(Box<Tokenizer>),
}

impl TextTokenizer {
    pub fn load(path: &Path) -> Result<Self, String> {
        let json = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        match unigram::from_json(&json)? {
            Some(t) => Ok(Self::Compact(Box::new(t))),
            None => json
                .parse::<Tokenizer>()
                .map(|t| Self::Other(Box::new(t)))
                .map_err(|e| e.to_string()),
        }
    }

    pub fn with_truncation(&mut self, p: TruncationParams) -> Result<(), String> {
        match self {
            Self::Compact(t) => t.with_truncation(Some(p)).map(|_| ()),
            Self::Other(t) => t.with_truncation(Some(p)).map(|_| ()),
        }
        .map_err(|e| e.to_string())
    }

    pub fn with_padding(&mut self, p: PaddingParams) {
        match self {
            Self::Compact(t) => {
                t.with_padding(Some(p));
            }
            Self::Other(t) => {
                t.with_padding(Some(p));
            }
        }
    }

    /// Encodes texts with the model's special tokens.
    pub fn encode_batch(&self, texts: Vec<String>) -> Result<Vec<Encoding>, String> {
        match self {
            Self::Compact(t) => t.encode_batch(texts, true),
            Self::Other(t) => t.encode_batch(texts, true),
        }
        .map_err(|e| e.to_string())
    }
}

enum Encoder {
    Fast(encoder::FastEncoder),
    Reference(bert::BertModel),
}

pub struct CandleEmbedder {
    /// Inference runs inside this pool: candle's many small parallel ops then stay on
    /// worker threads instead of paying a cross-thread wake-up each (measured: the
    /// wake-ups cost more than the arithmetic for a 20-token query).
    pool: rayon::ThreadPool,
    encoder: Encoder,
    tokenizer: TextTokenizer,
    recipe: Recipe,
    dims: usize,
    id: String,
    device: Device,
}

impl CandleEmbedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        Self::load_with(dir, None)
    }

    /// Like [`load`](Self::load), overriding the recipe's precision.
    pub fn load_with(dir: &Path, precision: Option<Precision>) -> Result<Self, EmbedError> {
        let bad = |message: String| EmbedError::BadModel {
            dir: dir.to_path_buf(),
            message,
        };
        let config_path = dir.join("config.json");
        let weights_path = dir.join("model.safetensors");
        let tokenizer_path = dir.join("tokenizer.json");
        if !config_path.exists() || !weights_path.exists() || !tokenizer_path.exists() {
            return Err(EmbedError::Missing(dir.to_path_buf()));
        }
        let config_src =
            std::fs::read_to_string(&config_path).map_err(|e| bad(format!("config.json: {e}")))?;
        let mut recipe: Recipe = match std::fs::read_to_string(dir.join(RECIPE_FILE)) {
            Ok(s) => serde_json::from_str(&s).map_err(|e| bad(format!("{RECIPE_FILE}: {e}")))?,
            Err(_) => Recipe::default(),
        };
        if let Some(p) = precision {
            recipe.precision = p;
        }
        recipe.precision = recipe.precision.resolve();
        let cfg: encoder::EncoderConfig =
            serde_json::from_str(&config_src).map_err(|e| bad(format!("config.json: {e}")))?;
        let weights = Arc::new(
            WeightsFile::open(&weights_path)
                .map_err(|e| bad(format!("model.safetensors: {}", first_line(&e))))?,
        );
        let id = model_identity(&config_src, &recipe, &weights, &tokenizer_path)
            .map_err(|e| bad(format!("model.safetensors: {}", first_line(&e))))?;
        let device = Device::Cpu;
        let encoder = match recipe.precision {
            Precision::Reference => {
                if cfg.position_offset() != 0 {
                    return Err(bad(
                        "the f32 reference path supports BERT models only".into()
                    ));
                }
                let bcfg: bert::Config = serde_json::from_str(&config_src)
                    .map_err(|e| bad(format!("config.json: {e}")))?;
                Encoder::Reference(
                    bert::BertModel::load(weights.var_builder(DType::F32, &device), &bcfg)
                        .map_err(|e| bad(format!("weights: {}", first_line(&e))))?,
                )
            }
            // `resolve` left F32, Compact, Q8 or I8.
            p => {
                let kind = match p {
                    Precision::Q8 => encoder::LinearKind::Q8,
                    Precision::I8 => encoder::LinearKind::I8,
                    _ => encoder::LinearKind::F32,
                };
                let i8_table = matches!(p, Precision::I8 | Precision::Compact);
                Encoder::Fast(
                    encoder::FastEncoder::load(&weights, &cfg, kind, i8_table)
                        .map_err(|e| bad(format!("weights: {}", first_line(&e))))?,
                )
            }
        };
        let max_pos = cfg.max_position_embeddings - cfg.position_offset();
        let mut tokenizer = TextTokenizer::load(&tokenizer_path)
            .map_err(|e| bad(format!("tokenizer.json: {e}")))?;
        tokenizer
            .with_truncation(TruncationParams {
                max_length: recipe.max_tokens.min(max_pos),
                ..Default::default()
            })
            .map_err(|e| bad(format!("tokenizer.json: {e}")))?;
        if matches!(encoder, Encoder::Reference(_)) {
            // The reference model takes a padded batch; the fast encoder packs texts.
            tokenizer.with_padding(PaddingParams {
                strategy: PaddingStrategy::BatchLongest,
                pad_id: cfg.pad_token_id as u32,
                ..Default::default()
            });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("cskh-embed-{i}"))
            .build()
            .map_err(|e| bad(format!("thread pool: {e}")))?;
        Ok(Self {
            pool,
            encoder,
            tokenizer,
            recipe,
            dims: cfg.hidden_size,
            id,
            device,
        })
    }

    fn embed_batch(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts)
            .map_err(EmbedError::Inference)?;
        let reference = match &self.encoder {
            Encoder::Fast(m) => {
                // Unpadded token ids: the fast encoder packs the texts end to end.
                let seqs: Vec<Vec<u32>> = encodings.iter().map(|e| e.get_ids().to_vec()).collect();
                return Ok(m.embed_packed(&seqs)?.to_vec2::<f32>()?);
            }
            Encoder::Reference(m) => m,
        };
        let rows = encodings.len();
        let cols = encodings.first().map(|e| e.get_ids().len()).unwrap_or(0);
        let mut ids = Vec::with_capacity(rows * cols);
        let mut mask = Vec::with_capacity(rows * cols);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let ids = Tensor::from_vec(ids, (rows, cols), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, cols), &self.device)?;
        let hidden = reference.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        // Mean pooling over real tokens, then L2 normalization (the e5 recipe).
        let unit = encoder::mean_pool_normalize(&hidden, &mask)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}

fn model_identity(
    config: &str,
    recipe: &Recipe,
    weights: &WeightsFile,
    tokenizer: &Path,
) -> candle_core::Result<String> {
    let mut h = Sha256::new();
    h.update(config.as_bytes());
    h.update(recipe.query_prefix.as_bytes());
    h.update([0]);
    h.update(recipe.passage_prefix.as_bytes());
    h.update(recipe.max_tokens.to_le_bytes());
    h.update([recipe.precision as u8]);
    h.update(weights.len().to_le_bytes());
    // Sampling the weights keeps start-up fast while still telling models apart: the
    // first 4 KiB of every seventh MiB.
    for offset in (0..weights.len()).step_by(7 << 20) {
        h.update(weights.bytes_at(offset, 4096)?);
    }
    if let Ok(meta) = std::fs::metadata(tokenizer) {
        h.update(meta.len().to_le_bytes());
    }
    Ok(hex::encode(&h.finalize()[..12]))
}

/// Texts per forward pass; sorted by length first so the reference model's padding
/// stays small.
const BATCH: usize = 16;

impl Embedder for CandleEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn ndims(&self) -> usize {
        self.dims
    }

    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        let prefix = match kind {
            TextKind::Query => &self.recipe.query_prefix,
            TextKind::Passage => &self.recipe.passage_prefix,
        };
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<String> = chunk
                .iter()
                .map(|&i| format!("{prefix}{}", texts[i]))
                .collect();
            let vectors = self.pool.install(|| self.embed_batch(batch))?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
