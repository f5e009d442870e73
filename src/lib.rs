//! cskh — a self-hosted Vietnamese customer-service bot.
//!
//! Code map (see ARCHITECTURE.md for the invariants):
//! - [`text`]: Vietnamese normalization (NFC, case, diacritic folding, abbreviations).
//! - [`knowledge`]: loading and validating knowledge files.
//! - [`embed`]: the embedding boundary and its candle implementation; model install.
//! - [`search`]: tantivy BM25 + dense retrieval, fusion, confidence, decision.
//! - [`answer`]: the answering core composed from the pieces above.
//! - [`eval`]: retrieval and intent quality measurement.
//! - [`calibrate`]: fits the confidence model and thresholds on labelled queries.
//! - [`gaps`]: knowledge gaps: unanswered questions grouped by meaning, learned entries.
//! - [`bot`]: intents, entities, dialogue state and policy.
//! - [`handoff`]: triage rules (priority, department, SLA), ticket codes, agent passwords.
//! - [`llm`]: the optional OpenAI-compatible LLM: prompts as files, grounded rewrites
//!   checked for citations and numbers, hand-off summaries.
//! - [`metrics`]: Prometheus metrics.
//! - [`orders`]: order lookup behind a trait (SQLite demo store, Shopify-style HTTP).
//! - [`store`]: SQLite storage with migrations (the only SQL).
//! - [`channels`]: channel names, Messenger and Zalo OA adapters, the outbox worker.
//! - [`service`]: the transport-agnostic conversation service.
//! - [`voice`]: the hotline voicebot: speakable replies, spoken digits, the recognition
//!   ladder, Twilio signatures and TwiML.
//! - [`stats`]: customer-care KPIs (containment, FCR, AHT, SLA, CSAT, NPS, …).
//! - [`http`]: the axum edge: routes, error mapping, widget assets.
//! - [`config`]: layered configuration; [`app`]: the composition root.

/// mimalloc for every binary built on this crate (server, CLI, tests, benches): glibc
/// maps and unmaps each buffer over 128 KiB, so every encoder pass page-faulted its
/// activations in again; mimalloc reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod answer;
pub mod app;
pub mod bot;
pub mod calibrate;
pub mod channels;
pub mod config;
pub mod embed;
pub mod eval;
pub mod gaps;
pub mod handoff;
pub mod http;
pub mod knowledge;
pub mod llm;
pub mod metrics;
pub mod orders;
pub mod reload;
pub mod search;
pub mod secret;
pub mod service;
pub mod stats;
pub mod store;
pub mod text;
pub mod voice;
