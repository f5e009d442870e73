//! cskh — a self-hosted Vietnamese customer-service bot.
//!
//! Code map (see ARCHITECTURE.md for the invariants):
//! - [`text`]: Vietnamese normalization (NFC, case, diacritic folding, abbreviations).
//! - [`knowledge`]: loading and validating knowledge files.
//! - [`embed`]: the embedding boundary and its candle implementation; model install.
//! - [`search`]: tantivy BM25 + dense retrieval, fusion, confidence, decision.
//! - [`answer`]: the answering core composed from the pieces above.
//! - [`eval`]: retrieval quality measurement.

pub mod answer;
pub mod embed;
pub mod eval;
pub mod knowledge;
pub mod search;
pub mod text;
