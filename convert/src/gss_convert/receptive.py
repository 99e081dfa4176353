"""How far a token reaches in a decoder graph: its halo, in token cells.

A maskige pixel depends only on the tokens within the decoder's receptive field. The runtime's
token reuse re-decodes a window of the grid around each changed tile and keeps the rest of the
last maskige; that is exact only if the window holds every token the tile's pixels depend on,
and if the window's own zero padding cannot reach the tile. Both hold when the window extends
the tile by `halo` cells on each side, where halo = ceil(the sum of every convolution's reach,
each measured in token cells at the resolution it runs at).

The halo is read from the ONNX graph itself, not from the training config, so it describes the
file the runtime runs. A graph with an op whose reach is not known here gets no halo, and the
runtime decodes it in full.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import onnx
from onnx import numpy_helper

# Ops that map each position to itself (elementwise, or a permutation of axes that keeps the
# spatial neighbourhoods): their output reaches as far as their widest input.
_POINTWISE = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "Max",
    "Min",
    "Identity",
    "Cast",
    "Transpose",
    "Gather",
    "Squeeze",
    "Unsqueeze",
    "BatchNormalization",
    "Softmax",
    "Exp",
    "Neg",
    "Sqrt",
    "Pow",
    "Erf",
    "HardSigmoid",
    "HardSwish",
    "Mish",
    "Floor",
    "Round",
    "Ceil",
    "Abs",
    "QuantizeLinear",
    "DequantizeLinear",
    "Where",
    "Equal",
    "Not",
}


class UnknownReach(ValueError):
    pass


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def decoder_halo(model: onnx.ModelProto) -> int | None:
    """Token cells each side that bound the decoder's receptive field, or None if unknown.

    Tracked per tensor: `scale` (output pixels per token cell at that tensor's resolution) and
    `reach` (how many token cells away its values can depend on, a fraction).
    """
    try:
        reach = _graph_reach(model.graph)
    except UnknownReach:
        return None
    return math.ceil(reach)


def _graph_reach(graph: onnx.GraphProto) -> Fraction:
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state: dict[str, tuple[Fraction, Fraction]] = {}  # tensor → (scale, reach)
    feeds = [i.name for i in graph.input if i.name not in constants]
    if len(feeds) != 1:
        raise UnknownReach(f"expected one graph input, got {feeds}")
    state[feeds[0]] = (Fraction(1), Fraction(0))

    for node in graph.node:
        if node.op_type == "Constant":
            value = _attrs(node).get("value")
            if value is not None:
                constants[node.output[0]] = numpy_helper.to_array(value)
            continue
        tracked = [state[i] for i in node.input if i in state]
        if not tracked:  # a node on constants only (shape arithmetic folded by exporters)
            continue
        scales = {s for s, _ in tracked}
        if len(scales) != 1:
            raise UnknownReach(f"{node.name}: inputs at different resolutions")
        scale, reach = scales.pop(), max(r for _, r in tracked)
        op = node.op_type
        if op in _POINTWISE:
            pass
        elif op in ("Conv", "ConvInteger", "QLinearConv"):
            a = _attrs(node)
            weight = constants.get(node.input[3 if op == "QLinearConv" else 1])
            kernel = a.get("kernel_shape") or (
                list(weight.shape[2:]) if weight is not None else None
            )
            if kernel is None:
                raise UnknownReach(f"{node.name}: kernel shape unknown")
            if any(s != 1 for s in a.get("strides", [1] * len(kernel))):
                raise UnknownReach(f"{node.name}: strided conv")
            dilations = a.get("dilations", [1] * len(kernel))
            pixels = max((k - 1) // 2 * d for k, d in zip(kernel, dilations))
            if any(k % 2 == 0 for k in kernel):
                raise UnknownReach(f"{node.name}: even kernel")
            reach += Fraction(pixels) / scale
        elif op == "DepthToSpace":
            scale *= int(_attrs(node)["blocksize"])
        elif op in ("Resize", "Upsample"):
            scales_name = (
                node.input[2] if op == "Resize" and len(node.input) > 2 else node.input[-1]
            )
            factors = constants.get(scales_name)
            mode = _attrs(node).get("mode", b"nearest")
            if factors is None or len(factors) != 4 or mode not in (b"nearest", "nearest"):
                raise UnknownReach(
                    f"{node.name}: only nearest resizes by constant factors are understood"
                )
            fy, fx = float(factors[2]), float(factors[3])
            if fy != fx or fy != int(fy) or fy < 1:
                raise UnknownReach(f"{node.name}: non-integer resize factor {factors}")
            scale *= int(fy)
        else:
            raise UnknownReach(f"{node.name}: op {op} has no known reach")
        for out in node.output:
            state[out] = (scale, reach)

    outputs = [o.name for o in graph.output]
    if len(outputs) != 1 or outputs[0] not in state:
        raise UnknownReach("graph output not reached from its input")
    return state[outputs[0]][1]


def halo_entry(decoder: Path | str) -> dict:
    """model.json's `decoder.halo` for a decoder file, or nothing when its reach is unknown."""
    halo = decoder_halo(onnx.load(str(decoder)))
    return {} if halo is None else {"halo": halo}
