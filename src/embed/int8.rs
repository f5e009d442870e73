//! Int8 linear layers for CPUs with AVX-512 VNNI.
//!
//! For the short texts customers send, a forward pass is bound by streaming the weights
//! (85 MB in f32 for e5-small, more than the L3 cache) and by f32 multiply-adds. Here
//! each weight row is quantized symmetrically to i8 with its own scale (21 MB, which
//! stays in L3 between messages), each activation row asymmetrically to u8 with its own
//! scale and zero point, and the products are summed exactly in i32 by `vpdpbusd`
//! (64 multiply-adds per instruction). With `x ≈ s (u - z)` and `w ≈ t q`:
//!
//! `x · w ≈ s t (Σ u q - z Σ q)`, so one precomputed row sum of `q` per output removes
//! the zero point.
//!
//! The packed layout serves `vpdpbusd` directly: outputs in blocks of 16 (one 512-bit
//! lane each), inputs in groups of 4 bytes, `[block][group][lane][4]`.
//!
//! [`QLinear::matmul`] uses the AVX-512 kernel when the CPU has it and a scalar loop
//! (same integers, same result) otherwise. Invariant: the vector and scalar paths give
//! bit-identical outputs; a unit test holds them to it.

// The one module allowed unsafe code: SIMD intrinsics and disjoint parallel writes.
#![allow(unsafe_code)]

use rayon::prelude::*;

/// Outputs per block: one i32 lane of a 512-bit register each.
const LANES: usize = 16;
/// Row tile and block tile of the kernel (16 accumulators in registers).
const TILE_ROWS: usize = 4;
const TILE_BLOCKS: usize = 4;
/// Rows per parallel task.
const ROW_CHUNK: usize = 128;

/// Whether this CPU runs the vector kernel.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A linear layer `y = x Wᵀ + b` with i8 weights.
pub struct QLinear {
    out_dim: usize,
    in_dim: usize,
    /// Input groups of 4 (the input padded with zero weights to a multiple of 4).
    groups: usize,
    /// `[out_dim / 16][groups][16][4]`.
    packed: Vec<i8>,
    scale: Vec<f32>,
    /// Σ q over each output's weights.
    qsum: Vec<i32>,
}

/// Rows of activations as u8 with per-row scale and zero point.
pub struct QRows {
    rows: usize,
    /// Bytes per row (the input padded to a multiple of 4, padding 0).
    stride: usize,
    data: Vec<u8>,
    scale: Vec<f32>,
    zero: Vec<i32>,
}

impl QRows {
    /// Quantizes `rows` rows of `cols` values (row-major).
    pub fn quantize(x: &[f32], rows: usize, cols: usize) -> Self {
        Self::quantize_with(x, rows, cols, supported())
    }

    fn quantize_with(x: &[f32], rows: usize, cols: usize, vector: bool) -> Self {
        assert_eq!(x.len(), rows * cols, "activation shape");
        let stride = cols.div_ceil(4) * 4;
        let mut data = vec![0u8; rows * stride];
        let mut scale = Vec::with_capacity(rows);
        let mut zero = Vec::with_capacity(rows);
        for (row, out) in x.chunks_exact(cols).zip(data.chunks_exact_mut(stride)) {
            let out = &mut out[..cols];
            #[cfg(target_arch = "x86_64")]
            let (s, z) = if vector {
                // SAFETY: `vector` is only set when `supported()` said so.
                unsafe { avx512::quantize_row(row, out) }
            } else {
                quantize_row(row, out)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let (s, z) = {
                let _ = vector;
                quantize_row(row, out)
            };
            scale.push(s);
            zero.push(z);
        }
        Self {
            rows,
            stride,
            data,
            scale,
            zero,
        }
    }
}

/// Scale, its inverse and the zero point of a row whose range is `lo..=hi` (both
/// include 0, so the zero point is a whole byte value).
fn row_params(lo: f32, hi: f32) -> (f32, f32, f32) {
    let s = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let inv = 1.0 / s;
    let z = (-lo * inv).round().clamp(0.0, 255.0);
    (s, inv, z)
}

/// The scalar twin of `avx512::quantize_row`: the same float operations, rounding half
/// to even like `vcvtps2dq`.
fn quantize_row(row: &[f32], out: &mut [u8]) -> (f32, i32) {
    let lo = row.iter().fold(0.0f32, |m, &v| m.min(v));
    let hi = row.iter().fold(0.0f32, |m, &v| m.max(v));
    let (s, inv, z) = row_params(lo, hi);
    for (o, &v) in out.iter_mut().zip(row) {
        *o = ((v * inv + z).round_ties_even() as i32).clamp(0, 255) as u8;
    }
    (s, z as i32)
}

/// Appends `row` as i8 values in -127..=127 to `out` and returns their scale
/// (`value ≈ q · scale`, one scale for the row's largest magnitude).
pub fn quantize_symmetric(row: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let s = if max > 0.0 { max / 127.0 } else { 1.0 };
    out.extend(
        row.iter()
            .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8),
    );
    s
}

impl QLinear {
    /// `weight` is `(out_dim, in_dim)` row-major. `out_dim` must be a multiple of 16.
    pub fn new(weight: &[f32], out_dim: usize, in_dim: usize) -> Option<Self> {
        if !out_dim.is_multiple_of(LANES) || weight.len() != out_dim * in_dim {
            return None;
        }
        let groups = in_dim.div_ceil(4);
        let mut packed = vec![0i8; out_dim * groups * 4];
        let mut scale = Vec::with_capacity(out_dim);
        let mut qsum = Vec::with_capacity(out_dim);
        let mut row_q = Vec::with_capacity(in_dim);
        for (o, row) in weight.chunks_exact(in_dim).enumerate() {
            row_q.clear();
            scale.push(quantize_symmetric(row, &mut row_q));
            qsum.push(row_q.iter().map(|&q| q as i32).sum());
            let (block, lane) = (o / LANES, o % LANES);
            for (k, &q) in row_q.iter().enumerate() {
                packed[((block * groups + k / 4) * LANES + lane) * 4 + k % 4] = q;
            }
        }
        Some(Self {
            out_dim,
            in_dim,
            groups,
            packed,
            scale,
            qsum,
        })
    }

    /// `x Wᵀ + bias` for `rows` rows of `in_dim` values, row-major `(rows, out_dim)`.
    pub fn matmul(&self, x: &[f32], rows: usize, bias: &[f32]) -> Vec<f32> {
        let q = QRows::quantize(x, rows, self.in_dim);
        self.matmul_quantized(&q, bias, supported())
    }

    fn matmul_quantized(&self, q: &QRows, bias: &[f32], vector: bool) -> Vec<f32> {
        assert_eq!(q.stride, self.groups * 4, "activation width");
        assert_eq!(bias.len(), self.out_dim, "bias length");
        let mut out = vec![0.0f32; q.rows * self.out_dim];
        let blocks = self.out_dim / LANES;
        let block_tiles = blocks.div_ceil(TILE_BLOCKS);
        let row_chunks = q.rows.div_ceil(ROW_CHUNK);
        let dst = OutPtr(out.as_mut_ptr());
        let task = |task: usize| {
            let rows = (task / block_tiles) * ROW_CHUNK;
            let rows = rows..(rows + ROW_CHUNK).min(q.rows);
            let first = (task % block_tiles) * TILE_BLOCKS;
            let blocks = first..(first + TILE_BLOCKS).min(blocks);
            // SAFETY: tasks cover disjoint (row range × block range) rectangles of
            // `out`, which outlives the parallel loop.
            unsafe { self.run(q, bias, rows, blocks, dst, vector) };
        };
        // Parallel even for one short query: measured faster than one thread.
        (0..row_chunks * block_tiles).into_par_iter().for_each(task);
        out
    }

    /// Computes the outputs of `rows × blocks` into `dst`.
    ///
    /// # Safety
    /// `dst` points to a `(q.rows, out_dim)` buffer nobody else writes in this rectangle.
    unsafe fn run(
        &self,
        q: &QRows,
        bias: &[f32],
        rows: std::ops::Range<usize>,
        blocks: std::ops::Range<usize>,
        dst: OutPtr,
        vector: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        if vector {
            // SAFETY: `vector` is only set when `supported()` said so.
            unsafe { avx512::run(self, q, bias, rows, blocks, dst.0) };
            return;
        }
        let _ = vector;
        for r in rows {
            for b in blocks.clone() {
                for lane in 0..LANES {
                    let o = b * LANES + lane;
                    let mut acc = 0i32;
                    for g in 0..self.groups {
                        for t in 0..4 {
                            let w = self.packed[((b * self.groups + g) * LANES + lane) * 4 + t];
                            acc += q.data[r * q.stride + g * 4 + t] as i32 * w as i32;
                        }
                    }
                    let v = self.finish(q, bias, r, o, acc);
                    // SAFETY: (r, o) is inside this task's rectangle.
                    unsafe { *dst.0.add(r * self.out_dim + o) = v };
                }
            }
        }
    }

    /// The f32 output from the exact integer sum (the same float operations as the
    /// vector epilogue, in the same order).
    #[inline]
    fn finish(&self, q: &QRows, bias: &[f32], r: usize, o: usize, acc: i32) -> f32 {
        let v = (acc - q.zero[r] * self.qsum[o]) as f32;
        v * q.scale[r] * self.scale[o] + bias[o]
    }
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: used only for disjoint writes, see `matmul_quantized`.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{QLinear, QRows, LANES, TILE_BLOCKS, TILE_ROWS};

    /// # Safety
    /// The CPU has AVX-512 F, BW and VNNI; `out` as in [`QLinear::run`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn run(
        w: &QLinear,
        q: &QRows,
        bias: &[f32],
        rows: Range<usize>,
        blocks: Range<usize>,
        out: *mut f32,
    ) {
        let mut r = rows.start;
        while r < rows.end {
            let full_rows = rows.end - r >= TILE_ROWS;
            let mut b = blocks.start;
            while b < blocks.end {
                let full_blocks = blocks.end - b >= TILE_BLOCKS;
                // SAFETY: forwarded.
                unsafe {
                    match (full_rows, full_blocks) {
                        (true, true) => tile::<TILE_ROWS, TILE_BLOCKS>(w, q, bias, r, b, out),
                        (true, false) => tile::<TILE_ROWS, 1>(w, q, bias, r, b, out),
                        (false, true) => tile::<1, TILE_BLOCKS>(w, q, bias, r, b, out),
                        (false, false) => tile::<1, 1>(w, q, bias, r, b, out),
                    }
                }
                b += if full_blocks { TILE_BLOCKS } else { 1 };
            }
            r += if full_rows { TILE_ROWS } else { 1 };
        }
    }

    /// Quantizes one row into `out` (as long as the row); returns scale and zero point.
    ///
    /// # Safety
    /// The CPU has AVX-512 F and BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn quantize_row(row: &[f32], out: &mut [u8]) -> (f32, i32) {
        let n = row.len();
        assert_eq!(out.len(), n);
        let tail = n % 16;
        let tail_mask: __mmask16 = ((1u32 << tail) - 1) as __mmask16;
        // SAFETY: every load and store is inside `row` / `out`: full lanes below
        // `n - tail`, masked lanes for the tail.
        unsafe {
            let p = row.as_ptr();
            let mut lo = _mm512_setzero_ps();
            let mut hi = _mm512_setzero_ps();
            let mut i = 0;
            while i + 16 <= n {
                let v = _mm512_loadu_ps(p.add(i));
                lo = _mm512_min_ps(lo, v);
                hi = _mm512_max_ps(hi, v);
                i += 16;
            }
            if tail > 0 {
                // Masked-off lanes read as 0, which the range holds anyway.
                let v = _mm512_maskz_loadu_ps(tail_mask, p.add(i));
                lo = _mm512_min_ps(lo, v);
                hi = _mm512_max_ps(hi, v);
            }
            let (s, inv, z) = super::row_params(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
            let (inv_v, z_v) = (_mm512_set1_ps(inv), _mm512_set1_ps(z));
            let (floor, ceil) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
            let convert = |v: __m512| {
                let q = _mm512_cvtps_epi32(_mm512_add_ps(_mm512_mul_ps(v, inv_v), z_v));
                _mm512_min_epi32(_mm512_max_epi32(q, floor), ceil)
            };
            let o = out.as_mut_ptr();
            let mut i = 0;
            while i + 16 <= n {
                let q = convert(_mm512_loadu_ps(p.add(i)));
                _mm_storeu_si128(o.add(i) as *mut __m128i, _mm512_cvtepi32_epi8(q));
                i += 16;
            }
            if tail > 0 {
                let q = convert(_mm512_maskz_loadu_ps(tail_mask, p.add(i)));
                _mm512_mask_cvtepi32_storeu_epi8(o.add(i) as *mut _, tail_mask, q);
            }
            (s, z as i32)
        }
    }

    /// Rows `r..r+R` × output blocks `b..b+C`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile<const R: usize, const C: usize>(
        w: &QLinear,
        q: &QRows,
        bias: &[f32],
        r: usize,
        b: usize,
        out: *mut f32,
    ) {
        let groups = w.groups;
        let mut acc = [[_mm512_setzero_si512(); C]; R];
        // SAFETY: all reads are inside `q.data` and `w.packed`: rows r..r+R < q.rows,
        // blocks b..b+C < out_dim / 16, groups < w.groups, and q.stride = 4 groups.
        unsafe {
            let a = q.data.as_ptr().add(r * q.stride);
            let p = w.packed.as_ptr().add(b * groups * LANES * 4);
            for g in 0..groups {
                let mut wv = [_mm512_setzero_si512(); C];
                for (c, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(p.add((c * groups + g) * LANES * 4) as *const _);
                }
                for (i, row) in acc.iter_mut().enumerate() {
                    let x = (a.add(i * q.stride + g * 4) as *const i32).read_unaligned();
                    let xv = _mm512_set1_epi32(x);
                    for (s, v) in row.iter_mut().zip(&wv) {
                        *s = _mm512_dpbusd_epi32(*s, xv, *v);
                    }
                }
            }
            for (i, row) in acc.iter().enumerate() {
                let rr = r + i;
                let zero = _mm512_set1_epi32(q.zero[rr]);
                let rs = _mm512_set1_ps(q.scale[rr]);
                for (c, s) in row.iter().enumerate() {
                    let o = (b + c) * LANES;
                    let qsum = _mm512_loadu_si512(w.qsum.as_ptr().add(o) as *const _);
                    let v =
                        _mm512_cvtepi32_ps(_mm512_sub_epi32(*s, _mm512_mullo_epi32(zero, qsum)));
                    let v = _mm512_mul_ps(
                        _mm512_mul_ps(v, rs),
                        _mm512_loadu_ps(w.scale.as_ptr().add(o)),
                    );
                    let v = _mm512_add_ps(v, _mm512_loadu_ps(bias.as_ptr().add(o)));
                    _mm512_storeu_ps(out.add(rr * w.out_dim + o), v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence in -1..1.
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn reference(w: &[f32], b: &[f32], x: &[f32], rows: usize, out: usize, inp: usize) -> Vec<f32> {
        let mut y = vec![0.0; rows * out];
        for r in 0..rows {
            for o in 0..out {
                let dot: f32 = (0..inp).map(|k| x[r * inp + k] * w[o * inp + k]).sum();
                y[r * out + o] = dot + b[o];
            }
        }
        y
    }

    #[test]
    fn close_to_f32_and_vector_equals_scalar() {
        // Odd sizes: remainder rows, remainder blocks, an input not a multiple of 4.
        for &(rows, out, inp) in &[(7, 48, 30), (1, 16, 4), (133, 96, 64), (5, 80, 385)] {
            let w = noise(out * inp, 1);
            let b = noise(out, 2);
            let mut x = noise(rows * inp, 3);
            // Shifted activations exercise the zero point.
            for v in x.iter_mut().step_by(3) {
                *v += 0.7;
            }
            let lin = QLinear::new(&w, out, inp).unwrap();
            let q = QRows::quantize_with(&x, rows, inp, false);
            if supported() {
                let v = QRows::quantize_with(&x, rows, inp, true);
                assert_eq!((&v.data, &v.scale, &v.zero), (&q.data, &q.scale, &q.zero));
            }
            let scalar = lin.matmul_quantized(&q, &b, false);
            let want = reference(&w, &b, &x, rows, out, inp);
            let scale = (inp as f32).sqrt();
            for (g, w) in scalar.iter().zip(&want) {
                assert!((g - w).abs() < 0.02 * scale, "{g} vs {w}");
            }
            if supported() {
                let vector = lin.matmul_quantized(&q, &b, true);
                assert_eq!(vector, scalar, "shape {rows}x{out}x{inp}");
            }
        }
    }

    #[test]
    fn refuses_outputs_not_in_blocks_of_16() {
        assert!(QLinear::new(&[0.0; 10 * 4], 10, 4).is_none());
    }

    #[test]
    fn constant_rows_quantize_exactly() {
        let q = QRows::quantize_with(&[0.0, 0.0, 2.0, 2.0], 2, 2, false);
        assert_eq!(q.zero, vec![0, 0]);
        let lin = QLinear::new(&[1.0; 32], 16, 2).unwrap();
        let y = lin.matmul_quantized(&q, &[0.5; 16], false);
        assert!(y[..16].iter().all(|v| (*v - 0.5).abs() < 1e-6));
        assert!(y[16..].iter().all(|v| (*v - 4.5).abs() < 1e-4));
    }
}
