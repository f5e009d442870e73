//! On-disk embedding cache keyed by model identity, text kind and text content, so a
//! restart or a one-entry edit re-embeds only what changed.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{EmbedError, Embedder, TextKind};

const MAGIC: &[u8; 8] = b"CSKHEMB1";

pub struct EmbeddingCache {
    path: PathBuf,
    dims: usize,
    vectors: HashMap<[u8; 32], Vec<f32>>,
}

fn key(model: &str, kind: TextKind, text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    h.update([0, kind as u8]);
    h.update(text.as_bytes());
    h.finalize().into()
}

impl EmbeddingCache {
    /// Opens (or starts) the cache file for `model_id` under `dir`. A corrupt file is
    /// ignored (and later replaced): the cache is only an optimisation.
    pub fn open(dir: &Path, model_id: &str, dims: usize) -> Self {
        let path = dir.join(format!("embeddings-{model_id}.bin"));
        let mut vectors = HashMap::new();
        if let Ok(bytes) = fs::read(&path) {
            let rec = 32 + dims * 4;
            let header_ok = bytes.len() >= 12
                && &bytes[..8] == MAGIC
                && u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize == dims;
            if header_ok && (bytes.len() - 12) % rec == 0 {
                for r in bytes[12..].chunks_exact(rec) {
                    let k: [u8; 32] = r[..32].try_into().expect("32 bytes");
                    let v = r[32..]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                        .collect();
                    vectors.insert(k, v);
                }
            } else {
                tracing::warn!(path = %path.display(), "ignoring unreadable embedding cache");
            }
        }
        Self {
            path,
            dims,
            vectors,
        }
    }

    /// A cache that is never written (no data directory).
    pub fn in_memory(model_id: &str, dims: usize) -> Self {
        Self {
            path: PathBuf::from(format!("embeddings-{model_id}.bin")),
            dims,
            vectors: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Embeds `texts`, reusing cached vectors; returns them in order and how many were
    /// computed fresh.
    pub fn embed_all(
        &mut self,
        embedder: &dyn Embedder,
        texts: &[String],
        kind: TextKind,
    ) -> Result<(Vec<Vec<f32>>, usize), EmbedError> {
        let keys: Vec<[u8; 32]> = texts
            .iter()
            .map(|t| key(embedder.model_id(), kind, t))
            .collect();
        let mut missing: Vec<usize> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if !self.vectors.contains_key(k) && !missing.iter().any(|&j| keys[j] == *k) {
                missing.push(i);
            }
        }
        if !missing.is_empty() {
            let batch: Vec<&str> = missing.iter().map(|&i| texts[i].as_str()).collect();
            let fresh = embedder.embed(&batch, kind)?;
            for (&i, v) in missing.iter().zip(fresh) {
                if v.len() != self.dims {
                    return Err(EmbedError::DimensionMismatch {
                        got: v.len(),
                        want: self.dims,
                    });
                }
                self.vectors.insert(keys[i], v);
            }
        }
        let out = keys.iter().map(|k| self.vectors[k].clone()).collect();
        Ok((out, missing.len()))
    }

    /// Writes the cache atomically (temp file + rename).
    pub fn save(&self) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            w.write_all(MAGIC)?;
            w.write_all(&(self.dims as u32).to_le_bytes())?;
            let mut keys: Vec<&[u8; 32]> = self.vectors.keys().collect();
            keys.sort();
            for k in keys {
                w.write_all(k)?;
                for x in &self.vectors[k] {
                    w.write_all(&x.to_le_bytes())?;
                }
            }
            w.flush()?;
        }
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::toy::Toy;

    #[test]
    fn reuses_vectors_across_restarts_and_edits() {
        let dir = tempfile::tempdir().unwrap();
        let e = Toy::default();
        let texts: Vec<String> = ["a", "bb", "a"].iter().map(|s| s.to_string()).collect();
        let mut c = EmbeddingCache::open(dir.path(), "toy", 2);
        let (v, fresh) = c.embed_all(&e, &texts, TextKind::Passage).unwrap();
        assert_eq!(fresh, 2);
        assert_eq!(v[2], Toy::vector("a"));
        c.save().unwrap();

        let mut c = EmbeddingCache::open(dir.path(), "toy", 2);
        assert_eq!(c.len(), 2);
        let edited: Vec<String> = ["a", "ccc"].iter().map(|s| s.to_string()).collect();
        let (_, fresh) = c.embed_all(&e, &edited, TextKind::Passage).unwrap();
        assert_eq!(fresh, 1, "only the edited text is embedded again");
        let (_, fresh) = c.embed_all(&e, &edited, TextKind::Query).unwrap();
        assert_eq!(fresh, 2, "query and passage vectors are cached apart");
        assert_eq!(e.embedded(), 5);
    }

    #[test]
    fn corrupt_cache_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("embeddings-toy.bin"), b"garbage").unwrap();
        let c = EmbeddingCache::open(dir.path(), "toy", 2);
        assert!(c.is_empty());
    }
}
