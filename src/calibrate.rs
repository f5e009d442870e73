//! `cskh calibrate`: fits the confidence model — a logistic regression of "the best
//! candidate is the right entry" over a retrieval's [`Signals`] — on labelled queries,
//! and picks the answer and clarify thresholds from cross-validated predictions, so a
//! shop can calibrate the bot on its own knowledge base and its own customers' words.
//! The shipped defaults are this command's output: hybrid on `eval/dev.jsonl`, lexical on
//! it pooled with `eval/clinic` and `eval/bank` (`--also`).

use thiserror::Error;

use crate::answer::Core;
use crate::eval::Query;
use crate::search::{
    Candidate, ConfidenceModel, Logit, Mode, RetrievalParams, SearchError, Signals,
    RANK_FEATURE_COUNT, RERANK_DEPTH,
};

const N: usize = Signals::COUNT;
const R: usize = RANK_FEATURE_COUNT;

#[derive(Debug, Error)]
pub enum CalibrateError {
    #[error("calibration needs the embedding model (run `cskh model fetch`)")]
    NoModel,
    #[error(
        "calibration needs at least {min} queries with both outcomes \
         (got {n}: {right} with the right entry on top)"
    )]
    TooFew { n: usize, right: usize, min: usize },
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// One labelled query as the confidence model sees it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub signals: [f32; N],
    pub in_scope: bool,
    /// The best candidate is the expected entry.
    pub right: bool,
    /// The expected entry is among the first three candidates.
    pub right_in_top3: bool,
}

/// Retrieves every query (hybrid mode with the model, or lexical mode with
/// `lexical`) and records its signals and outcome.
pub fn samples(
    core: &Core,
    queries: &[Query],
    lexical: bool,
) -> Result<Vec<Sample>, CalibrateError> {
    if !lexical && !core.retriever.has_model() {
        return Err(CalibrateError::NoModel);
    }
    let mode = if lexical { Mode::Bm25 } else { Mode::Hybrid };
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let r = core.retrieve(&q.text, mode)?;
        if r.candidates.is_empty() {
            // Nothing retrieved: always a hand-off, whatever the weights.
            continue;
        }
        let pos = q
            .faq_id
            .as_ref()
            .and_then(|want| r.candidates.iter().position(|c| &c.id == want));
        out.push(Sample {
            signals: r.signals.values(),
            in_scope: q.faq_id.is_some(),
            right: pos == Some(0),
            right_in_top3: pos.is_some_and(|p| p < 3),
        });
    }
    Ok(out)
}

/// One labelled in-scope query as the reranker sees it: the rank features of the
/// first [`RERANK_DEPTH`] candidates in fused order and where the right entry is.
#[derive(Debug, Clone)]
pub struct RankList {
    pub features: Vec<[f32; R]>,
    pub right: usize,
}

/// The rank lists of the in-scope queries whose entry is among the first
/// [`RERANK_DEPTH`] fused candidates (the reranker cannot help the others). The core
/// must rank in fused order (`rank_weights` all zero).
pub fn rank_lists(core: &Core, queries: &[Query]) -> Result<Vec<RankList>, CalibrateError> {
    if !core.retriever.has_model() {
        return Err(CalibrateError::NoModel);
    }
    let mut out = Vec::new();
    for q in queries {
        let Some(want) = &q.faq_id else { continue };
        let r = core.retrieve(&q.text, Mode::Hybrid)?;
        let head = &r.candidates[..r.candidates.len().min(RERANK_DEPTH)];
        if let Some(right) = head.iter().position(|c| &c.id == want) {
            out.push(RankList {
                features: Candidate::rank_features(head),
                right,
            });
        }
    }
    Ok(out)
}

/// A fitted reranker and how it did in cross-validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankerFit {
    pub weights: [f32; R],
    pub l2: f64,
    /// Share of the lists whose right entry the reranker puts first (held out).
    pub cv_hit_at_1: f64,
    /// The same share in fused order.
    pub fused_hit_at_1: f64,
    pub lists: usize,
}

/// Pairwise logistic regression: the right candidate's features minus each other
/// candidate's, both ways round; the weights order a list.
fn fit_pairs(lists: &[&RankList], l2: f64) -> [f64; R] {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for l in lists {
        let right = l.features[l.right];
        for (j, other) in l.features.iter().enumerate() {
            if j == l.right {
                continue;
            }
            let d: [f32; R] = std::array::from_fn(|k| right[k] - other[k]);
            x.push(d);
            y.push(true);
            x.push(d.map(|v| -v));
            y.push(false);
        }
    }
    Logistic::<R>::fit(&x, &y, l2).weights
}

/// Where `w` puts a list's best candidate (the first of equals).
fn first(l: &RankList, w: &[f64; R]) -> usize {
    let keys: Vec<f64> = l
        .features
        .iter()
        .map(|f| f.iter().zip(w).map(|(a, b)| *a as f64 * b).sum())
        .collect();
    (0..keys.len()).fold(0, |best, i| if keys[i] > keys[best] { i } else { best })
}

/// Fits the reranker, the L2 penalty chosen by `folds`-fold cross-validated hit@1
/// (the larger penalty on a tie).
pub fn fit_ranker(lists: &[RankList], folds: usize) -> Result<RankerFit, CalibrateError> {
    let folds = folds.max(2);
    let moved = lists.iter().filter(|l| l.right > 0).count();
    if lists.len() < folds * 4 || moved == 0 {
        return Err(CalibrateError::TooFew {
            n: lists.len(),
            right: lists.len() - moved,
            min: folds * 4,
        });
    }
    let mut best: Option<(f64, f64)> = None;
    for l2 in L2_GRID {
        let mut hits = 0;
        for k in 0..folds {
            let train: Vec<&RankList> = lists
                .iter()
                .enumerate()
                .filter(|(i, _)| i % folds != k)
                .map(|(_, l)| l)
                .collect();
            let w = fit_pairs(&train, l2);
            hits += lists
                .iter()
                .enumerate()
                .filter(|(i, l)| i % folds == k && first(l, &w) == l.right)
                .count();
        }
        let hit = hits as f64 / lists.len() as f64;
        if best.is_none_or(|(_, b)| hit >= b) {
            best = Some((l2, hit));
        }
    }
    let (l2, cv_hit_at_1) = best.expect("the penalty grid is not empty");
    let all: Vec<&RankList> = lists.iter().collect();
    Ok(RankerFit {
        weights: fit_pairs(&all, l2).map(round),
        l2,
        cv_hit_at_1,
        fused_hit_at_1: (lists.len() - moved) as f64 / lists.len() as f64,
        lists: lists.len(),
    })
}

/// An L2-regularized logistic regression over `M` features, fitted by Newton's
/// method on standardized features and reported on the original scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Logistic<const M: usize = N> {
    pub bias: f64,
    pub weights: [f64; M],
}

impl<const M: usize> Logistic<M> {
    pub fn fit(x: &[[f32; M]], y: &[bool], l2: f64) -> Self {
        let n = x.len().max(1) as f64;
        let mut mean = [0f64; M];
        let mut sd = [0f64; M];
        for row in x {
            for j in 0..M {
                mean[j] += row[j] as f64 / n;
            }
        }
        for row in x {
            for j in 0..M {
                sd[j] += (row[j] as f64 - mean[j]).powi(2) / n;
            }
        }
        for s in &mut sd {
            *s = if *s > 1e-12 { s.sqrt() } else { 1.0 };
        }
        // Row 0 of each design row is the intercept (not penalized).
        let z: Vec<Vec<f64>> = x
            .iter()
            .map(|row| {
                std::iter::once(1.0)
                    .chain((0..M).map(|j| (row[j] as f64 - mean[j]) / sd[j]))
                    .collect()
            })
            .collect();
        let mut beta = vec![0f64; M + 1];
        for _ in 0..100 {
            let mut grad = vec![0f64; M + 1];
            let mut hess = vec![vec![0f64; M + 1]; M + 1];
            for (row, &yi) in z.iter().zip(y) {
                let t: f64 = row.iter().zip(&beta).map(|(a, b)| a * b).sum();
                let p = 1.0 / (1.0 + (-t).exp());
                let r = f64::from(u8::from(yi)) - p;
                let w = (p * (1.0 - p)).max(1e-9);
                for a in 0..=M {
                    grad[a] += row[a] * r;
                    for b in 0..=M {
                        hess[a][b] += w * row[a] * row[b];
                    }
                }
            }
            for j in 1..=M {
                grad[j] -= l2 * beta[j];
                hess[j][j] += l2;
            }
            let Some(step) = solve(hess, grad) else {
                break;
            };
            for (b, s) in beta.iter_mut().zip(&step) {
                *b += s;
            }
            if step.iter().all(|s| s.abs() < 1e-10) {
                break;
            }
        }
        let weights: [f64; M] = std::array::from_fn(|j| beta[j + 1] / sd[j]);
        let bias = beta[0] - (0..M).map(|j| weights[j] * mean[j]).sum::<f64>();
        Self { bias, weights }
    }

    pub fn prob(&self, x: &[f32; M]) -> f64 {
        let t = self.bias
            + self
                .weights
                .iter()
                .zip(x)
                .map(|(w, &v)| w * v as f64)
                .sum::<f64>();
        1.0 / (1.0 + (-t).exp())
    }
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let m = b.len();
    for col in 0..m {
        let pivot = (col..m).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, below) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (i, row) in below.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + i] -= f * b[col];
        }
    }
    let mut x = vec![0f64; m];
    for row in (0..m).rev() {
        let s: f64 = (row + 1..m).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// What answering at a threshold gives on held-out predictions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Operating {
    pub threshold: f64,
    /// Answers naming the right entry ÷ all answers (out-of-scope answers are wrong).
    pub precision: f64,
    /// In-scope queries answered with the right entry ÷ in-scope queries.
    pub coverage: f64,
    /// Out-of-scope queries not answered ÷ out-of-scope queries.
    pub oos_rejection: f64,
}

fn operating(samples: &[Sample], probs: &[f64], threshold: f64) -> Operating {
    let (mut answered, mut right, mut in_scope, mut oos, mut oos_answered) = (0, 0, 0, 0, 0);
    for (s, &p) in samples.iter().zip(probs) {
        let answers = p >= threshold;
        if s.in_scope {
            in_scope += 1;
        } else {
            oos += 1;
            oos_answered += usize::from(answers);
        }
        if answers {
            answered += 1;
            right += usize::from(s.right);
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    Operating {
        threshold,
        precision: ratio(right, answered),
        coverage: if in_scope == 0 {
            0.0
        } else {
            right as f64 / in_scope as f64
        },
        oos_rejection: ratio(oos - oos_answered, oos),
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    /// The input parameters with the fitted confidence model and thresholds.
    pub params: RetrievalParams,
    pub samples: usize,
    pub folds: usize,
    /// Cross-validated result at the chosen answer threshold.
    pub at_answer: Operating,
    /// Whether the target precision was reached (else the most precise threshold).
    pub reached: bool,
    /// Share of the unanswered queries offered a choice (cross-validated) whose
    /// first three candidates hold the right entry (0 when no band qualifies).
    pub clarify_useful: f64,
    /// The L2 penalty cross-validation chose.
    pub l2: f64,
}

/// Lowest threshold considered: below it the bot would answer (or offer) when the
/// model thinks it more likely wrong than right.
const MIN_ANSWER: f64 = 0.5;
/// A clarify band is worth offering while at least this share of the customers who
/// get one find the right entry among the offered candidates (a menu of wrong
/// choices, as an out-of-scope question gets, costs the customer a turn).
const CLARIFY_USEFUL: f64 = 0.75;
/// L2 penalties on standardized weights tried; cross-validation picks one.
const L2_GRID: [f64; 4] = [1.0, 3.0, 10.0, 30.0];

/// Fits the two decision models on all samples and picks thresholds from
/// `folds`-fold cross-validated predictions: the lowest answer threshold whose
/// held-out answer precision reaches `target`, and the lowest clarify threshold at
/// which, of the queries not answered, those offered a choice mostly find the right
/// entry in it. `lexical` says which of the two kinds in [`RetrievalParams`] the
/// result replaces.
pub fn calibrate(
    samples: &[Sample],
    base: &RetrievalParams,
    target: f64,
    folds: usize,
    lexical: bool,
) -> Result<Outcome, CalibrateError> {
    let folds = folds.max(2);
    let right = samples.iter().filter(|s| s.right).count();
    let min = folds * 4;
    if samples.len() < min || right == 0 || right == samples.len() {
        return Err(CalibrateError::TooFew {
            n: samples.len(),
            right,
            min,
        });
    }
    let is_right: fn(&Sample) -> bool = |s| s.right;
    let in_offer: fn(&Sample) -> bool = |s| s.right_in_top3;
    // Per penalty, strongest first: held-out predictions and the operating point
    // they give; the penalty whose point reaches the target with the most coverage
    // wins (the most precise point when none reaches it). A weaker penalty must win
    // by more than one query: within that the difference is noise, and the smoother
    // model carries over better to messages and knowledge bases it was not fitted on.
    let in_scope = samples.iter().filter(|s| s.in_scope).count().max(1);
    let one_query = 1.0 / in_scope as f64 + 1e-9;
    let mut best: Option<(f64, Vec<f64>, Operating, bool)> = None;
    for l2 in L2_GRID.into_iter().rev() {
        let held_out = cross_validated(samples, folds, l2, is_right);
        let (point, reached) = choose_threshold(samples, &held_out, target);
        let better = match &best {
            None => true,
            Some((_, _, b, b_reached)) => match (reached, *b_reached) {
                (true, false) => true,
                (false, true) => false,
                (true, true) => point.coverage > b.coverage + one_query,
                (false, false) => point.precision > b.precision,
            },
        };
        if better {
            best = Some((l2, held_out, point, reached));
        }
    }
    let (l2, held_out, at_answer, reached) = best.expect("the penalty grid is not empty");

    // The offer model, judged on the queries the answer model leaves unanswered.
    let offer_held_out = cross_validated(samples, folds, l2, in_offer);
    let unanswered: Vec<(&Sample, f64)> = samples
        .iter()
        .zip(&held_out)
        .zip(&offer_held_out)
        .filter(|((_, &p), _)| p < at_answer.threshold)
        .map(|((s, _), &q)| (s, q))
        .collect();
    let useful_at = |t: f64| {
        let offered: Vec<&Sample> = unanswered
            .iter()
            .filter(|(_, q)| *q >= t)
            .map(|(s, _)| *s)
            .collect();
        (!offered.is_empty()).then(|| {
            offered.iter().filter(|s| s.right_in_top3).count() as f64 / offered.len() as f64
        })
    };
    let (clarify, clarify_useful) = threshold_grid()
        .find_map(|t| {
            useful_at(t)
                .filter(|u| *u >= CLARIFY_USEFUL)
                .map(|u| (t, u))
        })
        .unwrap_or((1.0, 0.0));

    let fit = |label: fn(&Sample) -> bool| {
        let (x, y): (Vec<_>, Vec<_>) = samples.iter().map(|s| (s.signals, label(s))).unzip();
        let m = Logistic::fit(&x, &y, l2);
        Logit {
            bias: round(m.bias),
            weights: m.weights.map(round),
        }
    };
    let mut params = base.clone();
    params.set_confidence_model(
        lexical,
        ConfidenceModel {
            answer: fit(is_right),
            offer: fit(in_offer),
            answer_threshold: round(at_answer.threshold),
            clarify_threshold: round(clarify),
        },
    );
    Ok(Outcome {
        params,
        samples: samples.len(),
        folds,
        at_answer,
        reached,
        clarify_useful,
        l2,
    })
}

/// The thresholds tried: [`MIN_ANSWER`] to 0.99 in steps of 0.01.
fn threshold_grid() -> impl Iterator<Item = f64> {
    (0..=49).map(|i| MIN_ANSWER + i as f64 * 0.01)
}

fn round(v: f64) -> f32 {
    ((v * 1000.0).round() / 1000.0) as f32
}

/// Out-of-fold probabilities of `label`: each sample scored by a model fitted
/// without its fold.
fn cross_validated(
    samples: &[Sample],
    folds: usize,
    l2: f64,
    label: impl Fn(&Sample) -> bool,
) -> Vec<f64> {
    let mut held_out = vec![0f64; samples.len()];
    for k in 0..folds {
        let (x, y): (Vec<_>, Vec<_>) = samples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % folds != k)
            .map(|(_, s)| (s.signals, label(s)))
            .unzip();
        let model = Logistic::fit(&x, &y, l2);
        for (i, s) in samples.iter().enumerate() {
            if i % folds == k {
                held_out[i] = model.prob(&s.signals);
            }
        }
    }
    held_out
}

/// The lowest answer threshold (from [`MIN_ANSWER`] up, in steps of 0.01) whose
/// precision reaches `target`; else the most precise one, flagged `false`.
fn choose_threshold(samples: &[Sample], probs: &[f64], target: f64) -> (Operating, bool) {
    let points: Vec<Operating> = threshold_grid()
        .map(|t| operating(samples, probs, t))
        .collect();
    match points.iter().find(|p| p.precision >= target) {
        Some(p) => (*p, true),
        None => (
            *points
                .iter()
                .max_by(|a, b| a.precision.total_cmp(&b.precision))
                .expect("the threshold grid is not empty"),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random stream (no test dependency on `rand`).
    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn logistic_fit_recovers_the_generating_model() {
        let mut seed = 7;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..4000 {
            let row: [f32; N] = std::array::from_fn(|_| (lcg(&mut seed) * 4.0 - 2.0) as f32);
            // True model: 1.5·x0 − 2·x1 + 0.5, other signals irrelevant.
            let t = 1.5 * row[0] as f64 - 2.0 * row[1] as f64 + 0.5;
            y.push(lcg(&mut seed) < 1.0 / (1.0 + (-t).exp()));
            x.push(row);
        }
        let m = Logistic::fit(&x, &y, 1.0);
        assert!((m.weights[0] - 1.5).abs() < 0.2, "{m:?}");
        assert!((m.weights[1] + 2.0).abs() < 0.25, "{m:?}");
        assert!((m.bias - 0.5).abs() < 0.2, "{m:?}");
        for w in &m.weights[2..] {
            assert!(w.abs() < 0.2, "{m:?}");
        }
    }

    #[test]
    fn solve_handles_pivoting_and_rejects_singular_systems() {
        let x = solve(vec![vec![0.0, 2.0], vec![3.0, 1.0]], vec![4.0, 5.0]).unwrap();
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12);
        assert!(solve(vec![vec![1.0, 2.0], vec![2.0, 4.0]], vec![1.0, 2.0]).is_none());
    }

    #[test]
    fn the_ranker_learns_which_signal_finds_the_right_entry() {
        // Fused order puts a decoy first; the right entry always has the best
        // coverage (feature 1) and a random dense cosine (feature 0).
        let mut seed = 3;
        let lists: Vec<RankList> = (0..60)
            .map(|i| {
                let right = 1 + i % 3;
                let features = (0..5)
                    .map(|j| {
                        let mut f = [0f32; R];
                        f[0] = lcg(&mut seed) as f32;
                        f[1] = if j == right {
                            0.9
                        } else {
                            lcg(&mut seed) as f32 * 0.5
                        };
                        f
                    })
                    .collect();
                RankList { features, right }
            })
            .collect();
        let fit = fit_ranker(&lists, 5).unwrap();
        assert_eq!(fit.fused_hit_at_1, 0.0);
        assert!(fit.cv_hit_at_1 > 0.95, "{fit:?}");
        assert!(
            fit.weights[1] > 1.0 && fit.weights[1] > 5.0 * fit.weights[0].abs(),
            "{fit:?}"
        );
        assert!(matches!(
            fit_ranker(&lists[..10], 5),
            Err(CalibrateError::TooFew { n: 10, .. })
        ));
    }

    fn sample(top: f32, in_scope: bool, right: bool) -> Sample {
        let mut signals = [0f32; N];
        signals[0] = top;
        Sample {
            signals,
            in_scope,
            right,
            right_in_top3: right,
        }
    }

    #[test]
    fn thresholds_reach_the_target_precision_on_held_out_predictions() {
        let mut seed = 3;
        let mut samples = Vec::new();
        for _ in 0..600 {
            let top = (lcg(&mut seed) * 6.0 - 3.0) as f32;
            let p = 1.0 / (1.0 + (-(2.0 * top as f64)).exp());
            let in_scope = lcg(&mut seed) < 0.8;
            samples.push(sample(top, in_scope, in_scope && lcg(&mut seed) < p));
        }
        let base = RetrievalParams::default();
        let out = calibrate(&samples, &base, 0.9, 5, false).unwrap();
        assert!(out.reached);
        assert!(out.at_answer.precision >= 0.9, "{:?}", out.at_answer);
        let m = out.params.confidence_model(false);
        assert!(m.answer_threshold >= 0.5);
        assert!(m.answer.weights[0] > 0.5, "{m:?}");
        assert!(m.offer.weights[0] > 0.5, "{m:?}");
        // The lexical model is left alone by a hybrid calibration, and vice versa.
        assert_eq!(
            out.params.confidence_model(true),
            base.confidence_model(true)
        );
        let lex = calibrate(&samples, &base, 0.9, 5, true).unwrap();
        assert_eq!(
            lex.params.confidence_model(false),
            base.confidence_model(false)
        );
        assert!(lex.params.confidence_model(true).answer.weights[0] > 0.5);
        // An unreachable target falls back to the most precise threshold, flagged.
        let strict = calibrate(&samples, &base, 1.01, 5, false).unwrap();
        assert!(!strict.reached);
    }

    #[test]
    fn too_few_or_one_sided_samples_are_refused() {
        let one_sided: Vec<Sample> = (0..50).map(|i| sample(i as f32, true, true)).collect();
        assert!(matches!(
            calibrate(&one_sided, &RetrievalParams::default(), 0.95, 5, false),
            Err(CalibrateError::TooFew { .. })
        ));
        let few: Vec<Sample> = (0..5).map(|i| sample(i as f32, true, i % 2 == 0)).collect();
        assert!(calibrate(&few, &RetrievalParams::default(), 0.95, 5, false).is_err());
    }
}
