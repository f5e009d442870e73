//! Answering-core benches: embedding, retrieval and the whole `ask` pipeline on the
//! demo knowledge base. Needs `cskh model fetch` first (skips the model benches
//! otherwise). Run: `cargo bench --bench core`.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "common/questions.rs"]
mod questions;

use cskh::answer::{Core, CoreOptions};
use cskh::embed::{CandleEmbedder, Embedder, TextKind};
use cskh::knowledge::KnowledgeBase;
use cskh::search::{Mode, RetrievalParams};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const QUERIES: &[&str] = &[
    "phí ship ra Hà Nội bao nhiêu",
    "don hang giao mat may ngay vay shop",
    "cho mình hỏi đổi size được ko, mua hôm qua mà mặc hơi chật",
    "thanh toan bang momo duoc khong",
    "shop mở cửa đến mấy giờ",
    "điểm thưởng có hết hạn không",
    "xuất hóa đơn công ty thì cần gửi thông tin gì",
    "quen mat khau tai khoan thi lam sao",
];

fn benches(c: &mut Criterion) {
    let model_dir = root().join("models/multilingual-e5-small");
    let model = match CandleEmbedder::load(&model_dir) {
        Ok(m) => Some(Arc::new(m)),
        Err(e) => {
            eprintln!("model benches skipped: {e}");
            None
        }
    };
    if let Some(m) = &model {
        c.bench_function("embed one query", |b| {
            b.iter(|| m.embed(&[QUERIES[2]], TextKind::Query).unwrap())
        });
        // What micro-batching concurrent customers' queries buys: 8 queries one
        // forward pass each, then all 8 in one padded pass.
        c.bench_function("embed 8 queries one by one", |b| {
            b.iter(|| {
                for q in QUERIES {
                    m.embed(&[q], TextKind::Query).unwrap();
                }
            })
        });
        c.bench_function("embed 8 queries as one batch", |b| {
            b.iter(|| m.embed(QUERIES, TextKind::Query).unwrap())
        });
        let kb = KnowledgeBase::load(&root().join("knowledge")).unwrap();
        let passages: Vec<String> = kb
            .entries
            .iter()
            .take(32)
            .map(|e| e.passage_text())
            .collect();
        let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
        let mut g = c.benchmark_group("batch");
        g.sample_size(10);
        g.bench_function("embed 32 passages", |b| {
            b.iter(|| m.embed(&refs, TextKind::Passage).unwrap())
        });
        g.finish();
    }
    let data = tempfile::tempdir().unwrap();
    let core = Core::load(&CoreOptions {
        knowledge: root().join("knowledge"),
        data: Some(data.path().to_path_buf()),
        model: model_dir.clone(),
        cache: None,
        params: RetrievalParams::default(),
    })
    .unwrap();
    let mut i = 0;
    c.bench_function("retrieve bm25 (demo kb)", |b| {
        b.iter(|| {
            i += 1;
            core.retrieve(QUERIES[i % QUERIES.len()], Mode::Bm25)
                .unwrap()
        })
    });
    if core.retriever.has_model() {
        // The 170 holdout questions in turn: far more distinct texts than the
        // retriever's recent-query memo holds, so every ask runs the model.
        let holdout = questions::holdout();
        c.bench_function(
            "ask hybrid (demo kb, holdout questions, whole pipeline)",
            |b| {
                b.iter(|| {
                    i += 1;
                    core.ask(&holdout[i % holdout.len()], Mode::Hybrid).unwrap()
                })
            },
        );
    }
}

criterion_group!(core_benches, benches);
criterion_main!(core_benches);
