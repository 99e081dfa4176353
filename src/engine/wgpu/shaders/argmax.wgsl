// ArgMax: index of the first (CMP `>`) or last (CMP `>=`) maximum along the middle axis of an
// (outer, N, INNER) array; one thread per (outer, inner) pair, flat index `i`.
//
// Placeholders (filled by kernels.rs):
//   WG, GX, TOTAL  threads per workgroup, workgroups along x, outputs (outer * INNER)
//   N              length of the reduced axis
//   INNER          elements after the reduced axis
//   CMP            `>` keeps the first maximum, `>=` the last

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<u32>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * {{GX}}u + wid.x) * {{WG}}u + lid;
    if (i >= {{TOTAL}}u) { return; }
    let o = i / {{INNER}}u; let r = i % {{INNER}}u;
    let base = o * {{N}}u * {{INNER}}u + r;
    var best = x[base]; var arg = 0u;
    for (var c = 1u; c < {{N}}u; c++) {
        let v = x[base + c * {{INNER}}u];
        if (v {{CMP}} best) { best = v; arg = c; }
    }
    y[i] = arg;
}
