//! Shared helpers: paths, the binary, and the installed model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn model_dir() -> PathBuf {
    root().join("models/multilingual-e5-small")
}

/// The tests measure the real pipeline: the model must be installed
/// (`bash scripts/setup.sh` does it).
pub fn require_model() {
    assert!(
        model_dir().join("model.safetensors").exists(),
        "the embedding model is not installed: run `bash scripts/setup.sh` first"
    );
}

/// One embedding cache for the whole test run: vectors are keyed by model and text,
/// so every temporary data directory can share it instead of re-embedding the demo
/// knowledge base (about 40 s of CPU) in each test.
pub fn shared_cache() -> PathBuf {
    static WARM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    WARM.get_or_init(|| {
        let dir = root().join("target/test-embed-cache");
        std::fs::create_dir_all(&dir).unwrap();
        if model_dir().join("model.safetensors").exists() {
            let data = tempfile::tempdir().unwrap();
            let o = Command::new(env!("CARGO_BIN_EXE_cskh"))
                .current_dir(root())
                .env("CSKH_MODEL", model_dir())
                .env("CSKH_EMBED_CACHE", &dir)
                .args(["ask", "--data"])
                .arg(data.path())
                .arg("xin chào")
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "warm-up failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        dir
    })
    .clone()
}

pub fn cskh() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cskh"));
    c.current_dir(root());
    c.env("CSKH_MODEL", model_dir());
    c.env("CSKH_EMBED_CACHE", shared_cache());
    c.env_remove("RUST_BACKTRACE");
    c.env_remove("CSKH_LOG");
    c
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("cskh runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Files and directories below `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if p.is_dir() {
                    walk(base, &p, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `cskh agent create` on a data directory.
pub fn create_agent(data: &Path, username: &str, password: &str) {
    let o = run(cskh()
        .args([
            "agent",
            "create",
            "--username",
            username,
            "--password",
            password,
            "--data",
        ])
        .arg(data));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Copies the files of a directory (not its subdirectories) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
