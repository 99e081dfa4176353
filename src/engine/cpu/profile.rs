//! Per-node timing of a graph as the backend runs it: per tract node for a tract plan, per
//! kernel for gss's own (its own knobs and thread pool), so design and export choices rest on
//! measurements.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;

use super::program::Program;
use super::State;

/// Time spent in one node over the profiled runs.
#[derive(Debug, Clone)]
pub struct NodeTime {
    pub name: String,
    /// tract's op name after optimisation (`OptMatMul`, `DepthWise`, ...), or the gss kernel
    /// (`gss depthwise 3×3/2`, ...).
    pub op: String,
    /// Mean per run.
    pub mean: Duration,
}

/// A graph's per-node profile: the sum of node times (what the graph costs without tract's own
/// bookkeeping), and each node's share.
#[derive(Debug, Clone)]
pub struct GraphProfile {
    pub runs: usize,
    pub nodes: Vec<NodeTime>,
}

/// Nodes grouped by op: (op, nodes, mean per run).
pub type OpTotal = (String, usize, Duration);

impl GraphProfile {
    pub fn total(&self) -> Duration {
        self.nodes.iter().map(|n| n.mean).sum()
    }

    /// Per-op totals, the most expensive first.
    pub fn by_op(&self) -> Vec<OpTotal> {
        let mut ops: BTreeMap<&str, (usize, Duration)> = BTreeMap::new();
        for n in &self.nodes {
            let e = ops.entry(&n.op).or_default();
            e.0 += 1;
            e.1 += n.mean;
        }
        let mut out: Vec<OpTotal> = ops
            .into_iter()
            .map(|(op, (count, t))| (op.to_string(), count, t))
            .collect();
        out.sort_by_key(|o| std::cmp::Reverse(o.2));
        out
    }

    /// The `n` most expensive nodes.
    pub fn top_nodes(&self, n: usize) -> Vec<&NodeTime> {
        let mut v: Vec<&NodeTime> = self.nodes.iter().collect();
        v.sort_by_key(|n| std::cmp::Reverse(n.mean));
        v.truncate(n);
        v
    }
}

/// Runs `state` on `input` `runs` times (after one untimed run) and times every node. Nodes that
/// take no time (sources, constants) are left out.
pub(crate) fn profile_state(
    state: &mut State,
    input: &Tensor,
    runs: usize,
) -> TractResult<GraphProfile> {
    state.run(tvec!(input.clone().into()))?;
    let nodes = state.model().nodes().len();
    let mut total = vec![Duration::ZERO; nodes];
    for _ in 0..runs.max(1) {
        state.run_plan_with_eval(
            tvec!(input.clone().into()),
            |ctx, op_state, node, inputs| {
                let t = Instant::now();
                let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                total[node.id] += t.elapsed();
                out
            },
        )?;
    }
    let runs = runs.max(1);
    let model = state.model();
    let nodes = model
        .nodes()
        .iter()
        .filter(|n| {
            !total[n.id].is_zero() && !n.op_is::<tract_onnx::tract_core::ops::source::TypedSource>()
        })
        .map(|n| NodeTime {
            name: n.name.clone(),
            op: n.op().name().to_string(),
            mean: total[n.id] / runs as u32,
        })
        .collect();
    Ok(GraphProfile { runs, nodes })
}

/// The per-kernel times a gss program collected over `runs` timed runs.
pub fn from_program(program: &Program, runs: usize) -> GraphProfile {
    let nodes = program
        .kernels()
        .into_iter()
        .zip(&program.times)
        .map(|((name, op), t)| NodeTime {
            name,
            op,
            mean: *t / runs as u32,
        })
        .collect();
    GraphProfile { runs, nodes }
}
