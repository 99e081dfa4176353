// Copy: out = input. Only used to carry an epilogue when no other kernel can.
// One thread per element, flat index `i`.
//
// Placeholders (filled by kernels.rs):
//   WG         threads per workgroup
//   GX         workgroups along x (the dispatch spreads its workgroups over x and y)
//   TOTAL      elements
//   RESIDUALS  one binding per residual the epilogue adds (may be empty)
//   EPILOGUE   statements on `v`, the value about to be stored at `idx` (may be empty)

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
{{RESIDUALS}}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * {{GX}}u + wid.x) * {{WG}}u + lid;
    if (i >= {{TOTAL}}u) { return; }
    let idx = i;
    var v = x[i];
    {{EPILOGUE}}
    y[i] = v;
}
