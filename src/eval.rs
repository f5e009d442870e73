//! `cskh eval`: retrieval quality and latency over a JSONL query set.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::answer::Core;
use crate::search::{Decision, Mode, SearchError, Signals};

#[derive(Debug, Error)]
pub enum EvalError {
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Search(#[from] SearchError),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Query {
    pub text: String,
    /// The expected entry; null (or absent, or empty) for an out-of-scope query. A
    /// number is read as the id it names, as knowledge files' numeric ids are.
    #[serde(default, deserialize_with = "entry_id")]
    pub faq_id: Option<String>,
    /// The line of the query file it was read from (for error messages).
    #[serde(skip)]
    pub line: usize,
}

/// An entry id as knowledge files accept it ([`crate::knowledge::entry_id`]); null,
/// absent or an empty string: out of scope.
fn entry_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v) => crate::knowledge::entry_id(&v).map(Some).ok_or_else(|| {
            D::Error::custom(format!(
                "`faq_id` must be a string, a number or null, not {v}"
            ))
        }),
    }
}

pub fn load_queries(path: &Path) -> Result<Vec<Query>, EvalError> {
    let src =
        crate::text::read_text(path).map_err(|e| EvalError::Io(path.display().to_string(), e))?;
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut q: Query = serde_json::from_str(line).map_err(|e| EvalError::Invalid {
            file: path.display().to_string(),
            line: i + 1,
            message: format!("invalid query line: {e}"),
        })?;
        q.line = i + 1;
        out.push(q);
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub n: usize,
    pub n_in_scope: usize,
    pub n_out_of_scope: usize,
    pub hit_at_1: f64,
    pub hit_at_3: f64,
    pub mrr: f64,
    pub answer_precision: f64,
    pub coverage: f64,
    pub oos_rejection: f64,
    pub clarify_rate: f64,
    /// Of the words of the queries typed with marks, the share the restorer gives
    /// back exactly once every mark is removed (how well a customer who types
    /// without marks is read).
    pub restoration_accuracy: f64,
    pub restoration_words: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// One query's outcome, for error analysis and calibration.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub text: String,
    pub expected: Option<String>,
    pub decision: Decision,
    pub confidence: f32,
    pub understood: String,
    pub signals: Signals,
    pub candidates: Vec<(String, f32, f32, f32, f32, f32, f32)>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn run(core: &Core, queries: &[Query], mode: Mode) -> Result<(Report, Vec<Trace>), EvalError> {
    let (mut in_scope, mut oos) = (0usize, 0usize);
    let (mut hit1, mut hit3, mut rr) = (0usize, 0usize, 0f64);
    let (mut answered, mut answered_right, mut oos_rejected, mut clarified) = (0, 0, 0, 0);
    let mut latencies = Vec::with_capacity(queries.len());
    let mut traces = Vec::with_capacity(queries.len());
    let (mut restored_right, mut restored_words) = (0usize, 0usize);
    for q in queries {
        if let Some((right, words)) = core.retriever.restoration_check(&q.text) {
            restored_right += right;
            restored_words += words;
        }
        let t0 = Instant::now();
        let r = core.retrieve(&q.text, mode)?;
        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        let answered_id = (r.decision == Decision::Answer)
            .then(|| r.best().map(|c| c.id.clone()))
            .flatten();
        if r.decision == Decision::Clarify {
            clarified += 1;
        }
        match &q.faq_id {
            Some(want) => {
                in_scope += 1;
                if let Some(pos) = r.candidates.iter().position(|c| &c.id == want) {
                    if pos == 0 {
                        hit1 += 1;
                    }
                    if pos < 3 {
                        hit3 += 1;
                    }
                    rr += 1.0 / (pos as f64 + 1.0);
                }
                if let Some(id) = &answered_id {
                    answered += 1;
                    if id == want {
                        answered_right += 1;
                    }
                }
            }
            None => {
                oos += 1;
                if answered_id.is_some() {
                    answered += 1;
                } else {
                    oos_rejected += 1;
                }
            }
        }
        traces.push(Trace {
            text: q.text.clone(),
            expected: q.faq_id.clone(),
            decision: r.decision,
            confidence: r.confidence,
            understood: r.understood.clone(),
            signals: r.signals,
            candidates: r
                .candidates
                .iter()
                .map(|c| {
                    (
                        c.id.clone(),
                        c.score,
                        c.features.dense,
                        c.features.coverage,
                        c.features.bm25,
                        c.features.dense_q,
                        c.features.dense_p,
                    )
                })
                .collect(),
        });
    }
    latencies.sort_by(f64::total_cmp);
    let report = Report {
        n: queries.len(),
        n_in_scope: in_scope,
        n_out_of_scope: oos,
        hit_at_1: ratio(hit1, in_scope),
        hit_at_3: ratio(hit3, in_scope),
        mrr: if in_scope == 0 {
            0.0
        } else {
            rr / in_scope as f64
        },
        answer_precision: ratio(answered_right, answered),
        coverage: ratio(answered_right, in_scope),
        oos_rejection: ratio(oos_rejected, oos),
        clarify_rate: ratio(clarified, queries.len()),
        restoration_accuracy: ratio(restored_right, restored_words),
        restoration_words: restored_words,
        p50_ms: percentile(&latencies, 50.0),
        p95_ms: percentile(&latencies, 95.0),
    };
    Ok((report, traces))
}

/// Reads `{"text": "...", "intent": "..."}` lines.
pub fn load_intents(path: &Path) -> Result<Vec<(String, crate::bot::intents::Intent)>, EvalError> {
    let src =
        crate::text::read_text(path).map_err(|e| EvalError::Io(path.display().to_string(), e))?;
    #[derive(Deserialize)]
    struct Row {
        text: String,
        intent: String,
    }
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let invalid = |message: String| EvalError::Invalid {
            file: path.display().to_string(),
            line: i + 1,
            message,
        };
        let row: Row =
            serde_json::from_str(line).map_err(|e| invalid(format!("invalid line: {e}")))?;
        let intent = crate::bot::intents::Intent::parse(&row.intent)
            .ok_or_else(|| invalid(format!("unknown intent `{}`", row.intent)))?;
        out.push((row.text, intent));
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct IntentScore {
    pub precision: f64,
    pub recall: f64,
    pub n: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct IntentReport {
    pub n: usize,
    pub accuracy: f64,
    pub per_intent: std::collections::BTreeMap<String, IntentScore>,
}

/// Accuracy and per-intent precision/recall from (expected, predicted) pairs.
pub fn intent_report(
    pairs: &[(crate::bot::intents::Intent, crate::bot::intents::Intent)],
) -> IntentReport {
    use crate::bot::intents::Intent;
    let correct = pairs.iter().filter(|(a, b)| a == b).count();
    let mut per_intent = std::collections::BTreeMap::new();
    for intent in Intent::ALL {
        let n = pairs.iter().filter(|(w, _)| *w == intent).count();
        let predicted = pairs.iter().filter(|(_, p)| *p == intent).count();
        let tp = pairs
            .iter()
            .filter(|(w, p)| *w == intent && *p == intent)
            .count();
        if n == 0 && predicted == 0 {
            continue;
        }
        per_intent.insert(
            intent.as_str().to_string(),
            IntentScore {
                precision: ratio(tp, predicted),
                recall: ratio(tp, n),
                n,
            },
        );
    }
    IntentReport {
        n: pairs.len(),
        accuracy: ratio(correct, pairs.len()),
        per_intent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_files_and_ids_are_read_as_knowledge_files_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.jsonl");
        let lines = [
            r#"{"text": "phí ship", "faq_id": 17}"#,
            r#"{"text": "đổi trả", "faq_id": " doi-tra "}"#,
            r#"{"text": "giá vàng", "faq_id": null}"#,
            r#"{"text": "thời tiết"}"#,
            "",
            r#"{"text": "bóng đá", "faq_id": "", "extra": 1}"#,
        ];
        // Saved by a Windows tool: a byte-order mark and CRLF line ends.
        std::fs::write(&path, format!("\u{feff}{}", lines.join("\r\n"))).unwrap();
        let ids: Vec<Option<String>> = load_queries(&path)
            .unwrap()
            .into_iter()
            .map(|q| q.faq_id)
            .collect();
        assert_eq!(
            ids,
            vec![Some("17".into()), Some("doi-tra".into()), None, None, None]
        );
        std::fs::write(
            &path,
            "{\"text\": \"a\"}\n{\"text\": \"b\", \"faq_id\": [1]}\n",
        )
        .unwrap();
        let e = load_queries(&path).unwrap_err().to_string();
        assert!(e.contains(":2") && e.contains("faq_id"), "{e}");
    }
}
