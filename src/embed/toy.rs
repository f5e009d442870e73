//! A deterministic toy [`Embedder`] for unit tests: a text becomes the unit vector
//! of (its length in characters, 1). It counts the texts it embeds per kind, records
//! each call's size, and can take a while per call so that concurrent callers pile up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::{EmbedError, Embedder, TextKind};

#[derive(Default)]
pub struct Toy {
    pub queries: AtomicUsize,
    pub passages: AtomicUsize,
    pub calls: Mutex<Vec<usize>>,
    pub delay: Duration,
}

impl Toy {
    pub fn slow(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// What [`Embedder::embed`] returns for `text`.
    pub fn vector(text: &str) -> Vec<f32> {
        let x = text.chars().count() as f32;
        let n = (x * x + 1.0).sqrt();
        vec![x / n, 1.0 / n]
    }

    pub fn embedded(&self) -> usize {
        self.queries.load(Ordering::SeqCst) + self.passages.load(Ordering::SeqCst)
    }
}

impl Embedder for Toy {
    fn model_id(&self) -> &str {
        "toy"
    }
    fn ndims(&self) -> usize {
        2
    }
    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        let counter = match kind {
            TextKind::Query => &self.queries,
            TextKind::Passage => &self.passages,
        };
        counter.fetch_add(texts.len(), Ordering::SeqCst);
        self.calls.lock().unwrap().push(texts.len());
        std::thread::sleep(self.delay);
        Ok(texts.iter().map(|t| Self::vector(t)).collect())
    }
}
