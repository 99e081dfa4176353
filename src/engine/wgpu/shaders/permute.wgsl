// Permute: the input transposed (output axis a is input axis perm[a]); one thread per output
// element, flat index `i`. WALK peels the output coordinates off `r`, last output axis first,
// and adds each one times its input stride to `src`.
//
// Placeholders (filled by kernels.rs):
//   WG, GX, TOTAL  threads per workgroup, workgroups along x, elements
//   WALK           one statement per axis: src += (r % dim) * stride; r = r / dim;
//   RESIDUALS      one binding per residual the epilogue adds (may be empty)
//   EPILOGUE       statements on `v`, the value about to be stored at `idx` (may be empty)

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
{{RESIDUALS}}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * {{GX}}u + wid.x) * {{WG}}u + lid;
    if (i >= {{TOTAL}}u) { return; }
    let idx = i;
    var r = i; var src = 0u;
    {{WALK}}
    var v = x[src];
    {{EPILOGUE}}
    y[i] = v;
}
