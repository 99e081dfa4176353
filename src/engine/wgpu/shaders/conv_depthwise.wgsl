// Depthwise convolution: one channel per workgroup layer (wid.z), a TX×TY output tile per
// workgroup. The input patch the tile needs (with its halo, strided) is staged once in shared
// memory, so each input value is read from memory once instead of KH·KW times; the channel's
// KH·KW weights are the same for the whole workgroup.
//
// Placeholders (filled by kernels.rs):
//   TX, TY, NTHREADS  workgroup size (output tile) and TX * TY
//   TW, TILE_SIZE     staged patch width and TH * TW elements
//   H, W, HW          input plane size and H * W
//   OH, OW, OHW       output plane size and OH * OW
//   KH, KW, KHW       kernel size and KH * KW
//   SY, SX            stride; DY, DX dilation; PT, PL top and left padding
//   RESIDUALS         one binding per residual the epilogue adds (may be empty)
//   EPILOGUE          statements on `v`, the value about to be stored at `idx` (may be empty)

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
{{RESIDUALS}}

var<workgroup> tile: array<f32, {{TILE_SIZE}}>;

@compute @workgroup_size({{TX}}, {{TY}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wid.z;
    let oy0 = wid.y * {{TY}}u; let ox0 = wid.x * {{TX}}u;
    let iy0 = i32(oy0 * {{SY}}u) - {{PT}}; let ix0 = i32(ox0 * {{SX}}u) - {{PL}};
    let xbase = c * {{HW}}u;
    for (var t = lid.y * {{TX}}u + lid.x; t < {{TILE_SIZE}}u; t += {{NTHREADS}}u) {
        let iy = iy0 + i32(t / {{TW}}u); let ix = ix0 + i32(t % {{TW}}u);
        var v = 0.0;
        if (iy >= 0 && iy < {{H}} && ix >= 0 && ix < {{W}}) { v = x[xbase + u32(iy) * {{W}}u + u32(ix)]; }
        tile[t] = v;
    }
    workgroupBarrier();
    let oy = oy0 + lid.y; let ox = ox0 + lid.x;
    if (oy >= {{OH}}u || ox >= {{OW}}u) { return; }
    var v = bias[c];
    let wb = c * {{KHW}}u;
    for (var ky = 0u; ky < {{KH}}u; ky++) {
        for (var kx = 0u; kx < {{KW}}u; kx++) {
            let t = (lid.y * {{SY}}u + ky * {{DY}}u) * {{TW}}u + lid.x * {{SX}}u + kx * {{DX}}u;
            v = fma(wt[wb + ky * {{KW}}u + kx], tile[t], v);
        }
    }
    let idx = c * {{OHW}}u + oy * {{OW}}u + ox;
    {{EPILOGUE}}
    y[idx] = v;
}
