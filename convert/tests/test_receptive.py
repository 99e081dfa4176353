"""The decoder halo in model.json bounds what a token changes, and window decodes are exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from gss_convert.receptive import decoder_halo

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
PACKAGES = ["gss-tiny", "gss-tiny-logits"]


def _session(package: str) -> tuple[ort.InferenceSession, int, int]:
    import json

    manifest = json.loads((FIXTURES / package / "model.json").read_text())
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    model = onnx.load(str(FIXTURES / package / manifest["decoder"]["file"]))
    # The fixtures were exported at one size; the graph itself is fully convolutional.
    for dim, name in zip(model.graph.input[0].type.tensor_type.shape.dim, ("n", "h", "w")):
        dim.ClearField("dim_value")
        dim.dim_param = name
    del model.graph.value_info[:]
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    sess = ort.InferenceSession(model.SerializeToString(), so)
    return sess, manifest["decoder"]["upsample"], manifest["decoder"]["halo"]


@pytest.mark.parametrize("package", PACKAGES)
def test_manifest_halo_is_the_graphs(package):
    import json

    manifest = json.loads((FIXTURES / package / "model.json").read_text())
    assert manifest["decoder"]["halo"] == decoder_halo(
        onnx.load(str(FIXTURES / package / "decoder.onnx"))
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_a_changed_token_reaches_no_further_than_the_halo(package):
    sess, s, halo = _session(package)
    rng = np.random.default_rng(0)
    h, w = 24, 24
    base = rng.integers(0, 32, (1, h, w), dtype=np.int64)
    ref = sess.run(None, {"tokens": base})[0]
    farthest = 0
    for trial in range(8):
        changed = base.copy()
        cy, cx = h // 2, w // 2
        changed[0, cy, cx] = (base[0, cy, cx] + 1 + trial) % 32
        out = sess.run(None, {"tokens": changed})[0]
        diff = np.abs(out - ref).max(axis=1)[0] > 0
        ys, xs = np.nonzero(diff)
        if len(ys):
            farthest = max(
                farthest, int(np.abs(ys // s - cy).max()), int(np.abs(xs // s - cx).max())
            )
    assert 0 < farthest <= halo, f"a token changed pixels {farthest} cells away, halo {halo}"


@pytest.mark.parametrize("package", PACKAGES)
def test_a_window_with_its_halo_decodes_its_core_as_the_full_grid_does(package):
    sess, s, halo = _session(package)
    rng = np.random.default_rng(1)
    h, w = 16, 32
    tokens = rng.integers(0, 32, (1, h, w), dtype=np.int64)
    full = sess.run(None, {"tokens": tokens})[0]
    for y0, y1, x0, x1 in [(4, 8, 8, 16), (0, 4, 0, 8), (12, 16, 24, 32), (0, 16, 12, 20)]:
        wy0, wy1, wx0, wx1 = (
            max(0, y0 - halo),
            min(h, y1 + halo),
            max(0, x0 - halo),
            min(w, x1 + halo),
        )
        part = sess.run(None, {"tokens": tokens[:, wy0:wy1, wx0:wx1]})[0]
        core = part[:, :, (y0 - wy0) * s : (y1 - wy0) * s, (x0 - wx0) * s : (x1 - wx0) * s]
        np.testing.assert_allclose(core, full[:, :, y0 * s : y1 * s, x0 * s : x1 * s], atol=1e-6)


def _graph(op: str, **attrs) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    wt = helper.make_tensor("w", TensorProto.FLOAT, [4, 4, 3, 3], np.zeros(4 * 4 * 9, np.float32))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node(op, ["c"], ["y"], **attrs),
    ]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], [wt]))


def test_reach_accumulates_across_resolutions_and_unknown_ops_give_none():
    assert decoder_halo(_graph("Relu")) == 1
    assert decoder_halo(_graph("DepthToSpace", blocksize=2)) == 1
    assert decoder_halo(_graph("MaxPool", kernel_shape=[3, 3])) is None
