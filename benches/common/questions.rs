//! Bench questions; also included on its own by the in-process `core` bench.

/// The questions of `eval/holdout.jsonl` (never used to tune anything).
pub fn holdout() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/holdout.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}
