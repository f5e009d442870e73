//! The one integration test binary: every test drives the real `cskh` binary (or the
//! real server process) with temporary data directories.

mod core_cli;
mod server;
mod support;
