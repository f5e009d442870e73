//! The one integration test binary: every test drives the real `cskh` binary (or the
//! real server process) with temporary data directories.

mod architecture;
mod browser;
mod channels;
mod core_cli;
mod followups;
mod gaps;
mod handoff;
mod llm;
mod ops;
mod reload;
mod server;
mod support;
mod tokenizer;
mod voice;
mod waiting;
