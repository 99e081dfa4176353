//! Token logits → token ids, for packages whose prior ends before its ArgMax
//! (`"argmax_in_graph": false`). tract runs an ArgMax over the channel axis as a strided, scalar
//! reduction (2 ms of a 5 ms prior on 512 codes × 32×64 cells, `gss bench --profile`); here the
//! channels are walked in order and every cell of a row of cells is compared at once, which the
//! compiler vectorises.

/// `logits` is channel-major (`codes` planes of `cells` values, as NCHW with N = 1); writes the
/// index of the largest logit of every cell into `tokens` (the first one on a tie, as ONNX
/// ArgMax with `select_last_index = 0`). NaN logits never win.
pub fn argmax_channels_into(logits: &[f32], codes: usize, cells: usize, tokens: &mut Vec<i64>) {
    gss_kernels::dispatch!(argmax_portable(logits, codes, cells, tokens))
}

#[inline(always)]
fn argmax_portable(logits: &[f32], codes: usize, cells: usize, tokens: &mut Vec<i64>) {
    debug_assert_eq!(logits.len(), codes * cells);
    const BLOCK: usize = 256;
    tokens.clear();
    tokens.resize(cells, 0);
    let mut best = [0f32; BLOCK];
    // f32 lanes beside the f32 maxima, so the select vectorises (exact for up to 2^24 codes)
    let mut index = [0f32; BLOCK];
    for start in (0..cells).step_by(BLOCK) {
        let n = BLOCK.min(cells - start);
        best[..n].fill(f32::NEG_INFINITY);
        index[..n].fill(0.0);
        for k in 0..codes {
            let id = k as f32;
            let row = &logits[k * cells + start..k * cells + start + n];
            for i in 0..n {
                let better = row[i] > best[i];
                best[i] = if better { row[i] } else { best[i] };
                index[i] = if better { id } else { index[i] };
            }
        }
        for (t, &i) in tokens[start..start + n].iter_mut().zip(&index[..n]) {
            *t = i as i64;
        }
    }
}

/// Temporal stabiliser for a stream: a cell keeps its `previous` token unless the new argmax beats
/// it by at least `margin` in logits (that is, the new token is at least e^margin times as
/// likely). `tokens` (this frame's argmax) is edited in place and then copied into `previous`.
/// A `previous` of another size (the first frame, a new grid) is only replaced. Returns the cells
/// that kept their token against the argmax.
pub fn stabilise(
    logits: &[f32],
    cells: usize,
    margin: f32,
    previous: &mut Vec<i64>,
    tokens: &mut [i64],
) -> usize {
    debug_assert_eq!(tokens.len(), cells);
    let mut kept = 0;
    if previous.len() == cells {
        for (c, (t, &p)) in tokens.iter_mut().zip(previous.iter()).enumerate() {
            if *t != p && logits[*t as usize * cells + c] - logits[p as usize * cells + c] < margin
            {
                *t = p;
                kept += 1;
            }
        }
    }
    previous.clear();
    previous.extend_from_slice(tokens);
    kept
}

/// The prior's confidence per cell: the softmax probability of the chosen token,
/// `1 / Σ_k exp(l_k − l_max)`, written into `confidence` (one value per cell, in 0..1). `tokens`
/// are the cells' argmax from [`argmax_channels_into`]. A vectorisable exp (relative error below
/// 5e-6) keeps it near the argmax's own cost.
pub fn max_probability_into(
    logits: &[f32],
    codes: usize,
    cells: usize,
    tokens: &[i64],
    confidence: &mut Vec<f32>,
) {
    gss_kernels::dispatch!(max_probability_portable(
        logits, codes, cells, tokens, confidence
    ))
}

#[inline(always)]
fn max_probability_portable(
    logits: &[f32],
    codes: usize,
    cells: usize,
    tokens: &[i64],
    confidence: &mut Vec<f32>,
) {
    debug_assert_eq!(logits.len(), codes * cells);
    debug_assert_eq!(tokens.len(), cells);
    confidence.clear();
    confidence.resize(cells, 0.0);
    const BLOCK: usize = 256;
    let mut top = [0f32; BLOCK];
    let mut sum = [0f32; BLOCK];
    for start in (0..cells).step_by(BLOCK) {
        let n = BLOCK.min(cells - start);
        for (i, t) in top[..n].iter_mut().enumerate() {
            let c = start + i;
            *t = logits[(tokens[c].max(0) as usize).min(codes - 1) * cells + c];
        }
        sum[..n].fill(0.0);
        for k in 0..codes {
            let row = &logits[k * cells + start..k * cells + start + n];
            for i in 0..n {
                sum[i] += exp_nonpositive(row[i] - top[i]);
            }
        }
        for (dst, &s) in confidence[start..start + n].iter_mut().zip(&sum[..n]) {
            *dst = if s > 0.0 { 1.0 / s } else { 0.0 };
        }
    }
}

/// exp(x) for x ≤ 0 (larger x is clamped to 0), branch-free so it vectorises: 2^(x·log2 e)
/// split into an integer power built in the exponent bits and a degree-6 polynomial for the
/// fraction. Near −87 and below it is (about) 0.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    let t = (x.clamp(-87.0, 0.0)) * std::f32::consts::LOG2_E;
    let whole = t.round();
    let f = t - whole; // −0.5 ≤ f ≤ 0.5
                       // 2^f on [−0.5, 0.5], Taylor in f·ln 2 to degree 6 (|f·ln 2| ≤ 0.35: error ~1e-7)
    let y = f * std::f32::consts::LN_2;
    let p = 1.0
        + y * (1.0
            + y * (0.5
                + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y * (1.0 / 120.0 + y * (1.0 / 720.0))))));
    let scale = f32::from_bits((((whole as i32) + 127) as u32) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_probability_is_the_softmax_of_the_chosen_token() {
        let (codes, cells) = (7, 300);
        let mut state = 3u32;
        let logits: Vec<f32> = (0..codes * cells)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 20.0
            })
            .collect();
        let mut tokens = Vec::new();
        argmax_channels_into(&logits, codes, cells, &mut tokens);
        let mut confidence = Vec::new();
        max_probability_into(&logits, codes, cells, &tokens, &mut confidence);
        for c in 0..cells {
            let l: Vec<f64> = (0..codes).map(|k| logits[k * cells + c] as f64).collect();
            let max = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let want = 1.0 / l.iter().map(|v| (v - max).exp()).sum::<f64>();
            assert!(
                (confidence[c] as f64 - want).abs() < 1e-5,
                "cell {c}: {} vs {want}",
                confidence[c]
            );
        }
        // One code, or one clear winner: certain.
        max_probability_into(&logits[..cells], 1, cells, &vec![0; cells], &mut confidence);
        assert!(confidence.iter().all(|&p| (p - 1.0).abs() < 1e-6));
    }

    #[test]
    fn the_stabiliser_keeps_a_token_unless_the_new_one_wins_by_the_margin() {
        // 3 codes × 3 cells, channel-major
        let logits = [
            0.0, 0.0, 5.0, // code 0
            1.0, 3.0, 0.0, // code 1
            0.5, 0.0, 0.0, // code 2
        ];
        let mut tokens = Vec::new();
        argmax_channels_into(&logits, 3, 3, &mut tokens);
        assert_eq!(tokens, vec![1, 1, 0]);
        let mut previous = Vec::new();
        // First frame: nothing to keep.
        assert_eq!(
            stabilise(&logits, 3, 1.0, &mut previous, &mut tokens.clone()),
            0
        );
        previous = vec![2, 0, 0];
        let mut t = tokens.clone();
        // cell 0: 1 beats 2 by 0.5 < 1 → kept 2; cell 1: 1 beats 0 by 3 → switches; cell 2: same.
        assert_eq!(stabilise(&logits, 3, 1.0, &mut previous, &mut t), 1);
        assert_eq!(
            (t.clone(), previous.clone()),
            (vec![2, 1, 0], vec![2, 1, 0])
        );
        // Margin 0 is the plain argmax.
        let mut previous = vec![2, 0, 0];
        let mut t = tokens.clone();
        assert_eq!(stabilise(&logits, 3, 0.0, &mut previous, &mut t), 0);
        assert_eq!(t, tokens);
    }

    #[test]
    fn the_fast_exp_matches_the_library_one() {
        for i in 0..=2000 {
            let x = -(i as f32) * 0.05;
            let (got, want) = (exp_nonpositive(x) as f64, (x as f64).exp());
            assert!(
                (got - want).abs() <= 5e-6 * want + 1e-37,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert!(exp_nonpositive(-1000.0) < 1e-37);
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(
            exp_nonpositive(3.0),
            1.0,
            "positive arguments are clamped to 0"
        );
    }

    fn reference(logits: &[f32], codes: usize, cells: usize) -> Vec<i64> {
        (0..cells)
            .map(|c| {
                (0..codes).fold(0, |best, k| {
                    if logits[k * cells + c] > logits[best * cells + c] {
                        k
                    } else {
                        best
                    }
                }) as i64
            })
            .collect()
    }

    #[test]
    fn matches_a_cell_by_cell_search_with_ties_and_odd_sizes() {
        let (codes, cells) = (37, 256 * 2 + 13);
        let mut state = 7u32;
        let mut logits: Vec<f32> = (0..codes * cells)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                // few distinct values, so ties are common
                ((state >> 24) % 8) as f32
            })
            .collect();
        logits[5 * cells + 3] = 100.0;
        logits[9 * cells + 3] = 100.0; // a tie goes to the lower code
        let mut tokens = vec![-1; 3];
        argmax_channels_into(&logits, codes, cells, &mut tokens);
        assert_eq!(tokens, reference(&logits, codes, cells));
        assert_eq!(tokens[3], 5);
    }

    #[test]
    fn negative_logits_and_a_single_code() {
        let logits = [-3.0, -1.0, -2.0, -5.0, -0.5, -9.0];
        let mut tokens = Vec::new();
        argmax_channels_into(&logits, 2, 3, &mut tokens);
        assert_eq!(tokens, vec![0, 1, 0]);
        argmax_channels_into(&logits[..3], 1, 3, &mut tokens);
        assert_eq!(tokens, vec![0, 0, 0]);
    }
}
