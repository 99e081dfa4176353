// Bilinear resize of the last two axes, plane by plane (IH×IW → OH×OW); one thread per output
// element, flat index `i`. SRC_Y / SRC_X map an output coordinate (`oy`, `ox`) to a source one
// as the ONNX coordinate transform says; the result is clamped to the input.
//
// Placeholders (filled by kernels.rs):
//   WG, GX, TOTAL   threads per workgroup, workgroups along x, output elements
//   IH, IW, OH, OW  input and output plane sizes; IHW = IH * IW, OHW = OH * OW
//   IH_MAX, IW_MAX  IH - 1 and IW - 1 as f32 literals
//   SRC_Y, SRC_X    f32 expressions of `oy` and `ox`
//   RESIDUALS       one binding per residual the epilogue adds (may be empty)
//   EPILOGUE        statements on `v`, the value about to be stored at `idx` (may be empty)

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
{{RESIDUALS}}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * {{GX}}u + wid.x) * {{WG}}u + lid;
    if (i >= {{TOTAL}}u) { return; }
    let idx = i;
    let ox = i % {{OW}}u; let oy = (i / {{OW}}u) % {{OH}}u; let plane = i / {{OHW}}u;
    let fy = clamp({{SRC_Y}}, 0.0, {{IH_MAX}});
    let fx = clamp({{SRC_X}}, 0.0, {{IW_MAX}});
    let y0 = u32(floor(fy)); let x0 = u32(floor(fx));
    let y1 = min(y0 + 1u, {{IH}}u - 1u); let x1 = min(x0 + 1u, {{IW}}u - 1u);
    let dy = fy - f32(y0); let dx = fx - f32(x0);
    let base = plane * {{IHW}}u;
    let top = mix(x[base + y0 * {{IW}}u + x0], x[base + y0 * {{IW}}u + x1], dx);
    let bot = mix(x[base + y1 * {{IW}}u + x0], x[base + y1 * {{IW}}u + x1], dx);
    var v = mix(top, bot, dy);
    {{EPILOGUE}}
    y[i] = v;
}
