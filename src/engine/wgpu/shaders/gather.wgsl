// Gather: rows of a constant table picked by u32 ids, out[i, :] = table[ids[i], :];
// one thread per output element, flat index `i`.
//
// Out-of-range ids cannot come from the prior's ArgMax; host-supplied ids are checked before
// upload. The clamp only keeps a stray id from reading outside the table.
//
// Placeholders (filled by kernels.rs):
//   WG, GX, TOTAL  threads per workgroup, workgroups along x, output elements
//   ROWS, COLS     table shape
//   RESIDUALS      one binding per residual the epilogue adds (may be empty)
//   EPILOGUE       statements on `v`, the value about to be stored at `idx` (may be empty)

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
{{RESIDUALS}}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * {{GX}}u + wid.x) * {{WG}}u + lid;
    if (i >= {{TOTAL}}u) { return; }
    let idx = i;
    let row = min(ids[i / {{COLS}}u], {{ROWS}}u - 1u);
    var v = table[row * {{COLS}}u + i % {{COLS}}u];
    {{EPILOGUE}}
    y[i] = v;
}
