//! The import rules of ARCHITECTURE.md, checked on the source tree.

use crate::support::root;

fn sources() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root()).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("src"), &mut out);
    out
}

#[test]
fn each_heavy_dependency_is_imported_in_one_place() {
    let rules: [(&str, &[&str]); 5] = [
        ("axum::", &["src/http/"]),
        ("sqlx::", &["src/store/", "src/orders/sqlite.rs"]),
        ("candle_", &["src/embed/"]),
        ("tokenizers::", &["src/embed/"]),
        ("tantivy::", &["src/search/"]),
    ];
    let files = sources();
    assert!(files.len() > 20);
    for (needle, allowed) in rules {
        for (path, src) in &files {
            if src.contains(needle) {
                assert!(
                    allowed.iter().any(|a| path.starts_with(a)),
                    "{path} uses {needle}; only {allowed:?} may"
                );
            }
        }
    }
}
