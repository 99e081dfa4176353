// Dense and grouped convolution as an implicit GEMM. Per group (wid.z),
// out[m, n] = Σ_k W[m, k] · X̂[k, n] with m an output channel, n an output pixel and
// k = (input channel, ky, kx). X̂ is the im2col matrix, never materialised: each workgroup
// gathers its BK×BN slice of it straight from the image into shared memory (zeros for padding).
// A 16×16 workgroup computes a BM×BN output tile, each thread a (BM/16)×(BN/16) register block
// of scalars acc_r_c, so every value loaded to shared memory is reused from registers.
//
// Placeholders (filled by kernels.rs):
//   BM, BN, BK        tile rows (output channels), columns (pixels) and depth
//   A_SIZE, B_SIZE    BK * BM and BK * BN
//   M, N, K           per group: output channels, output pixels, input channels * kernel size
//   MK, CGHW          per-group strides of the weights (M * K) and of the input image
//   ACC_DECL          `var acc_r_c = 0.0;` for the whole register block
//   GATHER            sets `v` to X̂[kk_g, nn_g] (left at 0.0 for padding)
//   FMA               the unrolled register-block update for one `kk`
//   STORE             bias, epilogue and store of the register block, bounds-checked
//   RESIDUALS         one binding per residual the epilogue adds (may be empty)

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
{{RESIDUALS}}

var<workgroup> As: array<f32, {{A_SIZE}}>;
var<workgroup> Bs: array<f32, {{B_SIZE}}>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let grp = wid.z;
    let m0 = wid.y * {{BM}}u; let n0 = wid.x * {{BN}}u;
    let tid = lid.y * 16u + lid.x;
    let wbase = grp * {{MK}}u; let xbase = grp * {{CGHW}}u;
    {{ACC_DECL}}
    for (var k0 = 0u; k0 < {{K}}u; k0 += {{BK}}u) {
        for (var t = tid; t < {{A_SIZE}}u; t += 256u) {
            let kk = t % {{BK}}u; let mm = t / {{BK}}u;
            let mm_g = m0 + mm; let kk_g = k0 + kk;
            var v = 0.0;
            if (mm_g < {{M}}u && kk_g < {{K}}u) { v = wt[wbase + mm_g * {{K}}u + kk_g]; }
            As[kk * {{BM}}u + mm] = v;
        }
        for (var t = tid; t < {{B_SIZE}}u; t += 256u) {
            let nn = t % {{BN}}u; let kk = t / {{BN}}u;
            let nn_g = n0 + nn; let kk_g = k0 + kk;
            var v = 0.0;
            if (nn_g < {{N}}u && kk_g < {{K}}u) {
                {{GATHER}}
            }
            Bs[kk * {{BN}}u + nn] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < {{BK}}u; kk++) {
            {{FMA}}
        }
        workgroupBarrier();
    }
    {{STORE}}
}
