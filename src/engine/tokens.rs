//! Token logits → token ids, for packages whose prior ends before its ArgMax
//! (`"argmax_in_graph": false`). tract runs an ArgMax over the channel axis as a strided, scalar
//! reduction (2 ms of a 5 ms prior on 512 codes × 32×64 cells, `gss bench --profile`); here the
//! channels are walked in order and every cell of a row of cells is compared at once, which the
//! compiler vectorises.

/// `logits` is channel-major (`codes` planes of `cells` values, as NCHW with N = 1); writes the
/// index of the largest logit of every cell into `tokens` (the first one on a tie, as ONNX
/// ArgMax with `select_last_index = 0`). NaN logits never win.
pub fn argmax_channels_into(logits: &[f32], codes: usize, cells: usize, tokens: &mut Vec<i64>) {
    crate::simd::dispatch!(argmax_portable(logits, codes, cells, tokens))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(logits: &[f32], codes: usize, cells: usize) -> Vec<i64> {
        (0..cells)
            .map(|c| (0..codes).fold(0, |best, k| if logits[k * cells + c] > logits[best * cells + c] { k } else { best }) as i64)
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
