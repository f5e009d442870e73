//! A BERT / XLM-R encoder with the same architecture and weights as
//! `candle_transformers::models::bert::BertModel`, laid out for fast CPU inference on
//! the short texts customers send:
//!
//! - f32 weights are stored transposed, `(in, out)` row-major. candle hands a row-major
//!   product to `gemm` as its transpose, so the weight becomes gemm's left operand, and
//!   in this layout it is already column-major: gemm uses it in place instead of
//!   re-packing the whole matrix on every call (measured: packing was 28 % of a query's
//!   time with the `(out, in)` layout).
//! - the query, key and value projections run as one matmul.
//! - alternatively the linear layers run as i8 × u8 products on AVX-512 VNNI
//!   ([`super::int8`]; the token table is then kept as i8 rows too), or as Q8_0
//!   quantized matmuls (candle's AVX2 kernels).
//!
//! The reference model stays available for checks.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::VarBuilder;
use serde::Deserialize;
use std::sync::Arc;

use super::int8::{quantize_symmetric, QLinear};
use super::weights::WeightsFile;

#[derive(Debug, Clone, Deserialize)]
pub struct EncoderConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub hidden_act: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

impl EncoderConfig {
    /// XLM-R numbers positions from `pad_token_id + 1`; BERT from 0.
    pub fn position_offset(&self) -> usize {
        match self.model_type.as_deref() {
            Some("xlm-roberta") | Some("xlm_roberta") | Some("roberta") => self.pad_token_id + 1,
            _ => 0,
        }
    }
}

/// How the linear layers hold their weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearKind {
    /// f32, transposed to `(in, out)`.
    F32,
    /// Q8_0 blocks.
    Q8,
    /// i8 rows with u8 activations on AVX-512 VNNI ([`super::int8`]).
    I8,
}

enum Weight {
    /// `(in, out)`, contiguous.
    F32(Tensor),
    Q8(QMatMul),
    I8(QLinear),
}

struct Linear {
    weight: Weight,
    /// Added in [`Linear::forward_then`]'s pass over the output (by the kernel itself
    /// for `I8`).
    bias: Vec<f32>,
}

impl Linear {
    fn load(vb: VarBuilder, out_dim: usize, in_dim: usize, kind: LinearKind) -> Result<Self> {
        Self::fuse(&[vb], out_dim, in_dim, kind)
    }

    /// One linear layer computing the outputs of several same-shaped ones side by side.
    fn fuse(parts: &[VarBuilder], out_dim: usize, in_dim: usize, kind: LinearKind) -> Result<Self> {
        let mut ws = Vec::with_capacity(parts.len());
        let mut bs = Vec::with_capacity(parts.len());
        for vb in parts {
            ws.push(vb.get((out_dim, in_dim), "weight")?);
            bs.push(vb.get(out_dim, "bias")?);
        }
        let w = Tensor::cat(&ws, 0)?;
        let bias = Tensor::cat(&bs, 0)?.to_vec1::<f32>()?;
        let out = out_dim * parts.len();
        let weight = match kind {
            LinearKind::I8 => match QLinear::new(&w.flatten_all()?.to_vec1()?, out, in_dim) {
                Some(q) => Weight::I8(q),
                None => Weight::F32(w.t()?.contiguous()?),
            },
            LinearKind::F32 => Weight::F32(w.t()?.contiguous()?),
            LinearKind::Q8 => Weight::Q8(QMatMul::from_qtensor(QTensor::quantize(
                &w,
                GgmlDType::Q8_0,
            )?)?),
        };
        Ok(Self { weight, bias })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_then(x, None, false)
    }

    /// `x W + b`, then optionally `+ residual` and GELU, in one pass over the output
    /// (instead of one tensor operation, and one buffer, per step).
    fn forward_then(&self, x: &Tensor, residual: Option<&Tensor>, gelu: bool) -> Result<Tensor> {
        let (b, len, i) = x.dims3()?;
        let (mut out, biased) = match &self.weight {
            Weight::F32(wt) => {
                let y = x.reshape((b * len, i))?.matmul(wt)?;
                (y.flatten_all()?.to_vec1::<f32>()?, false)
            }
            Weight::Q8(w) => (w.forward(x)?.flatten_all()?.to_vec1::<f32>()?, false),
            Weight::I8(w) => {
                let x = x.flatten_all()?.to_vec1::<f32>()?;
                (w.matmul(&x, b * len, &self.bias), true)
            }
        };
        let o = self.bias.len();
        let residual = match residual {
            Some(r) => Some(r.flatten_all()?.to_vec1::<f32>()?),
            None => None,
        };
        for (row, chunk) in out.chunks_exact_mut(o).enumerate() {
            if !biased {
                for (v, b) in chunk.iter_mut().zip(&self.bias) {
                    *v += b;
                }
            }
            if let Some(r) = &residual {
                for (v, r) in chunk.iter_mut().zip(&r[row * o..(row + 1) * o]) {
                    *v += r;
                }
            }
            if gelu {
                gelu_erf(chunk);
            }
        }
        Tensor::from_vec(out, (b, len, o), x.device())
    }
}

/// GELU with the exact (erf) form, `x/2 (1 + erf(x/sqrt 2))`, written so the compiler
/// vectorizes it: erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7) and `exp` by
/// range reduction to a degree-6 polynomial. libm's scalar `erff` was 7 % of a query.
fn gelu_erf(xs: &mut [f32]) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    for x in xs {
        let z = *x * std::f32::consts::FRAC_1_SQRT_2;
        let a = z.abs();
        let t = 1.0 / (1.0 + P * a);
        let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
        let erf = (1.0 - poly * exp_neg(a * a)).copysign(z);
        *x = 0.5 * *x * (1.0 + erf);
    }
}

/// `e^-v` for `v >= 0` (relative error below 2e-7 where the result is a normal float;
/// 0 beyond `v = 87`).
#[inline(always)]
fn exp_neg(v: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = (-v).max(-87.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r / 720.0)))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    let y = p * scale;
    if v > 87.0 {
        0.0
    } else {
        y
    }
}

struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            bias: vb.get(dim, "bias")?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    /// Query, key and value projections, fused: `hidden -> 3 * hidden`.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    intermediate: Linear,
    output: Linear,
    out_norm: Norm,
}

/// The token embedding table: a quarter of a billion parameters for XLM-R's vocabulary
/// (384 MB in f32 for e5-small), of which a query reads a few dozen rows.
enum WordTable {
    F32(Tensor),
    /// One i8 row per token with its own scale (96 MB), dequantized on lookup.
    I8 {
        rows: Vec<i8>,
        scale: Vec<f32>,
        dim: usize,
    },
}

impl WordTable {
    /// Built in slices of rows from `slice(start, n)` (row-major f32), so that the
    /// table is never held twice: the i8 table keeps only its bytes and scales, the
    /// f32 one fills its own buffer.
    fn build(
        n: usize,
        dim: usize,
        i8_rows: bool,
        slice: impl Fn(usize, usize) -> Result<Vec<f32>>,
    ) -> Result<Self> {
        const SLICE: usize = 4096;
        let (mut values, mut rows, mut scale) = if i8_rows {
            (
                Vec::new(),
                Vec::with_capacity(n * dim),
                Vec::with_capacity(n),
            )
        } else {
            (Vec::with_capacity(n * dim), Vec::new(), Vec::new())
        };
        for start in (0..n).step_by(SLICE) {
            let part = slice(start, SLICE.min(n - start))?;
            if i8_rows {
                for row in part.chunks_exact(dim) {
                    scale.push(quantize_symmetric(row, &mut rows));
                }
            } else {
                values.extend(part);
            }
        }
        Ok(if i8_rows {
            Self::I8 { rows, scale, dim }
        } else {
            Self::F32(Tensor::from_vec(
                values,
                (n, dim),
                &candle_core::Device::Cpu,
            )?)
        })
    }

    fn lookup(&self, ids: &[u32], device: &candle_core::Device) -> Result<Tensor> {
        match self {
            Self::F32(t) => t.index_select(&Tensor::new(ids, device)?, 0),
            Self::I8 { rows, scale, dim } => {
                let mut out = Vec::with_capacity(ids.len() * dim);
                for &id in ids {
                    let id = id as usize;
                    let Some(row) = rows.get(id * dim..(id + 1) * dim) else {
                        candle_core::bail!("token id {id} outside the embedding table");
                    };
                    out.extend(row.iter().map(|&q| q as f32 * scale[id]));
                }
                Tensor::from_vec(out, (ids.len(), *dim), device)
            }
        }
    }
}

pub struct FastEncoder {
    word: WordTable,
    hidden: usize,
    device: candle_core::Device,
    position: Tensor,
    token_type: Tensor,
    emb_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    position_offset: usize,
}

impl FastEncoder {
    /// Reads the weights it needs from `weights`, a tensor at a time; `i8_table`
    /// keeps the token table as i8 rows.
    pub fn load(
        weights: &Arc<WeightsFile>,
        cfg: &EncoderConfig,
        kind: LinearKind,
        i8_table: bool,
    ) -> Result<Self> {
        if cfg.hidden_act.as_deref().is_some_and(|a| a != "gelu") {
            candle_core::bail!("unsupported hidden_act {:?}", cfg.hidden_act);
        }
        // Checkpoints saved from task models carry a `bert.` or `roberta.` prefix.
        let prefix = ["", "bert.", "roberta."]
            .into_iter()
            .find(|p| weights.contains(&format!("{p}embeddings.word_embeddings.weight")))
            .unwrap_or("");
        let vb = weights.var_builder(DType::F32, &candle_core::Device::Cpu);
        let vb = match prefix.strip_suffix('.') {
            Some(p) => vb.pp(p),
            None => vb,
        };
        let h = cfg.hidden_size;
        let e = vb.pp("embeddings");
        let word_name = format!("{prefix}embeddings.word_embeddings.weight");
        if weights.shape(&word_name) != Some(&[cfg.vocab_size, h][..]) {
            candle_core::bail!(
                "{word_name} has shape {:?}, config.json says ({}, {h})",
                weights.shape(&word_name),
                cfg.vocab_size
            );
        }
        let word = WordTable::build(cfg.vocab_size, h, i8_table, |start, n| {
            weights.rows_f32(&word_name, start, n)
        })?;
        let position = e.get(
            (cfg.max_position_embeddings, h),
            "position_embeddings.weight",
        )?;
        let token_type = e.get_unchecked("token_type_embeddings.weight")?;
        let emb_norm = Norm::load(e.pp("LayerNorm"), h, cfg.layer_norm_eps)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            layers.push(Layer {
                qkv: Linear::fuse(
                    &[a.pp("self.query"), a.pp("self.key"), a.pp("self.value")],
                    h,
                    h,
                    kind,
                )?,
                attn_out: Linear::load(a.pp("output.dense"), h, h, kind)?,
                attn_norm: Norm::load(a.pp("output.LayerNorm"), h, cfg.layer_norm_eps)?,
                intermediate: Linear::load(
                    l.pp("intermediate.dense"),
                    cfg.intermediate_size,
                    h,
                    kind,
                )?,
                output: Linear::load(l.pp("output.dense"), h, cfg.intermediate_size, kind)?,
                out_norm: Norm::load(l.pp("output.LayerNorm"), h, cfg.layer_norm_eps)?,
            });
        }
        Ok(Self {
            word,
            hidden: h,
            device: position.device().clone(),
            position,
            token_type,
            emb_norm,
            layers,
            heads: cfg.num_attention_heads,
            position_offset: cfg.position_offset(),
        })
    }

    /// Unit-length mean-pooled embeddings `(n, hidden)` of `seqs` (token ids, no
    /// padding). The sequences are packed end to end: every linear layer runs once over
    /// all their tokens and only attention runs per sequence, so a batch of texts of
    /// mixed lengths costs no padding.
    pub fn embed_packed(&self, seqs: &[Vec<u32>]) -> Result<Tensor> {
        let h = self.hidden;
        let device = &self.device;
        let total: usize = seqs.iter().map(Vec::len).sum();
        if seqs.iter().any(Vec::is_empty) {
            candle_core::bail!("empty token sequence");
        }
        let ids: Vec<u32> = seqs.iter().flatten().copied().collect();
        let positions: Vec<u32> = seqs
            .iter()
            .flat_map(|s| (0..s.len()).map(|p| (p + self.position_offset) as u32))
            .collect();
        let positions = Tensor::from_vec(positions, total, device)?;
        let words = self.word.lookup(&ids, device)?;
        let pos = self.position.index_select(&positions, 0)?;
        let types = self.token_type.get(0)?;
        let x = (words + pos)?.broadcast_add(&types)?.unsqueeze(0)?;
        let mut x = self.emb_norm.forward(&x)?;
        let hd = h / self.heads;
        let scale = 1.0 / (hd as f64).sqrt();
        for l in &self.layers {
            let qkv = l.qkv.forward(&x)?;
            let mut ctx = Vec::with_capacity(seqs.len());
            let mut start = 0;
            for s in seqs {
                let len = s.len();
                let part = qkv.narrow(1, start, len)?;
                start += len;
                let split = |from: usize| -> Result<Tensor> {
                    part.narrow(2, from, h)?
                        .reshape((1, len, self.heads, hd))?
                        .transpose(1, 2)?
                        .contiguous()
                };
                let (q, k, v) = (split(0)?, split(h)?, split(2 * h)?);
                let scores = (q.matmul(&k.t()?)? * scale)?;
                let probs = candle_nn::ops::softmax_last_dim(&scores)?;
                ctx.push(probs.matmul(&v)?.transpose(1, 2)?.reshape((1, len, h))?);
            }
            let ctx = Tensor::cat(&ctx, 1)?;
            let a = l
                .attn_norm
                .forward(&l.attn_out.forward_then(&ctx, Some(&x), false)?)?;
            let f = l.intermediate.forward_then(&a, None, true)?;
            x = l
                .out_norm
                .forward(&l.output.forward_then(&f, Some(&a), false)?)?;
        }
        let x = x.squeeze(0)?;
        let mut pooled = Vec::with_capacity(seqs.len());
        let mut start = 0;
        for s in seqs {
            pooled.push(x.narrow(0, start, s.len())?.mean_keepdim(0)?);
            start += s.len();
        }
        unit_rows(&Tensor::cat(&pooled, 0)?)
    }
}

/// Mean over real tokens, then L2 normalization.
pub fn mean_pool_normalize(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&m)?.sum(1)?;
    unit_rows(&summed.broadcast_div(&m.sum(1)?)?)
}

/// Each row scaled to unit length.
fn unit_rows(x: &Tensor) -> Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Maclaurin series in f64 (exact enough for |x| <= 3).
    fn erf_series(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn i8_word_table_looks_up_close_rows_and_refuses_unknown_ids() {
        let dev = candle_core::Device::Cpu;
        let (n, dim) = (5000, 8);
        let values: Vec<f32> = (0..n * dim)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0)
            .collect();
        let table = Tensor::from_vec(values.clone(), (n, dim), &dev).unwrap();
        let slice = |start: usize, len: usize| {
            table
                .narrow(0, start, len)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
        };
        let exact = WordTable::build(n, dim, false, slice).unwrap();
        let small = WordTable::build(n, dim, true, slice).unwrap();
        let ids = [0u32, 4097, 4999];
        let a = exact.lookup(&ids, &dev).unwrap().to_vec2::<f32>().unwrap();
        let b = small.lookup(&ids, &dev).unwrap().to_vec2::<f32>().unwrap();
        for (ra, rb) in a.iter().zip(&b) {
            let max = ra.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (x, y) in ra.iter().zip(rb) {
                assert!((x - y).abs() <= max / 254.0 + 1e-6, "{x} vs {y}");
            }
        }
        assert_eq!(a[1], values[4097 * dim..4098 * dim].to_vec());
        assert!(small.lookup(&[5000], &dev).is_err());
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        let xs: Vec<f32> = (-400..=400).map(|i| i as f32 / 100.0).collect();
        let mut ys = xs.clone();
        gelu_erf(&mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            let x = *x as f64;
            let want = 0.5 * x * (1.0 + erf_series(x / std::f64::consts::SQRT_2));
            assert!(
                (*y as f64 - want).abs() < 1e-6,
                "gelu({x}) = {y}, want {want}"
            );
        }
        let mut big = [-30.0f32, 30.0, 0.0];
        gelu_erf(&mut big);
        assert_eq!(big, [0.0, 30.0, 0.0]);
    }

    #[test]
    fn exp_neg_is_accurate() {
        for i in 0..=870 {
            let v = i as f32 / 10.0;
            let want = (-(v as f64)).exp();
            let got = exp_neg(v) as f64;
            assert!(
                (got - want).abs() <= want * 1e-6,
                "exp(-{v}) = {got}, want {want}"
            );
        }
        assert_eq!(exp_neg(100.0), 0.0);
    }
}
