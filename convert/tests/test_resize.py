"""resize.py, the one definition of frame <-> model-input resizing: stretch equals torch's bilinear
(align_corners=False, no antialiasing) and nearest-exact; crop and letterbox on small cases worked
out by hand; numpy and torch agree; the round trip keeps the frame's shape."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gss_convert.resize import (
    UNKNOWN_CLASS,
    Fit,
    resize_classes,
    resize_classes_torch,
    resize_image,
    resize_image_torch,
)

# (frame H, W) -> (model h, w): down- and upsampling, 4:3 and odd sizes, both axes independently
SIZE_PAIRS = [
    ((480, 640), (64, 128)),
    ((64, 128), (256, 512)),
    ((37, 53), (16, 24)),
    ((20, 30), (64, 40)),
    ((256, 512), (256, 512)),
]


def test_fit_scales_and_offsets():
    stretch = Fit.of("stretch", (480, 640), (64, 128))
    assert (stretch.cols.scale, stretch.rows.scale) == (0.2, 64 / 480)
    assert stretch.cols.offset == 0.0
    crop = Fit.of("crop", (480, 640), (64, 128))  # 4:3 into 2:1: the width decides, rows are cut
    assert crop.cols.scale == crop.rows.scale == 0.2
    assert (crop.cols.offset, crop.rows.offset) == (
        0.0,
        (64 - 480 * 0.2) / 2,
    ) and crop.rows.offset < 0
    letterbox = Fit.of(
        "letterbox", (480, 640), (64, 128)
    )  # the height decides, bars left and right
    assert letterbox.cols.scale == letterbox.rows.scale == 64 / 480
    assert letterbox.cols.offset > 0 and letterbox.rows.offset == 0.0
    with pytest.raises(ValueError, match="unknown fit"):
        Fit.of("zoom", (4, 4), (2, 2))


@pytest.mark.parametrize("frame, model", SIZE_PAIRS)
def test_stretch_image_equals_torch_bilinear(frame, model):
    rng = np.random.default_rng(0)
    image = rng.random(frame + (3,)).astype(np.float32)
    want = (
        F.interpolate(
            torch.from_numpy(image).permute(2, 0, 1)[None],
            size=model,
            mode="bilinear",
            align_corners=False,
            antialias=False,
        )[0]
        .permute(1, 2, 0)
        .numpy()
    )
    got = resize_image(image, model)
    assert got.shape == model + (3,) and got.dtype == np.float32
    # torch computes its source coordinates in float32, the definition in float64
    np.testing.assert_allclose(got, want, atol=2e-5)
    batch = torch.from_numpy(np.stack([image, image[::-1].copy()])).permute(0, 3, 1, 2)
    want_batch = F.interpolate(
        batch, size=model, mode="bilinear", align_corners=False, antialias=False
    )
    torch.testing.assert_close(resize_image_torch(batch, model), want_batch, atol=2e-5, rtol=0)


def _exact_boundaries(model_len: int, frame_len: int) -> bool:
    """Whether some frame centre maps exactly onto a model pixel edge, where float rounding (torch's
    float32, the definition's float64) decides the side."""
    return any(
        (Fraction(2 * x + 1, 2) * Fraction(model_len, frame_len)).denominator == 1
        for x in range(frame_len)
    )


# model -> frame sizes without exact ties (a tie needs fewer factors of 2 in the frame's side than in
# the model's); at a tie the float64 rounding of the definition decides, as it does in the runtime
@pytest.mark.parametrize(
    "model, frame",
    [
        ((64, 128), (320, 640)),
        ((8, 16), (24, 48)),
        ((15, 21), (37, 53)),
        ((40, 24), (24, 8)),
        ((64, 128), (64, 128)),
    ],
)
def test_stretch_classes_equal_torch_nearest_exact(model, frame):
    assert not any(_exact_boundaries(m, f) for m, f in zip(model, frame)), (
        "pick sizes without exact ties"
    )
    rng = np.random.default_rng(1)
    classes = rng.integers(0, 8, (2,) + model).astype(np.int64)
    want = F.interpolate(
        torch.from_numpy(classes)[:, None].float(), size=frame, mode="nearest-exact"
    )[:, 0].long()
    got = resize_classes_torch(torch.from_numpy(classes), frame)
    assert torch.equal(got, want)
    assert np.array_equal(
        resize_classes(classes[0].astype(np.uint8), frame), want[0].numpy().astype(np.uint8)
    )


def test_letterbox_pads_rows_with_the_pad_value():
    # frame 2 wide x 1 high into 4x4: s = min(4/2, 4/1) = 2, o_x = 0, o_y = (4 - 1*2)/2 = 1
    frame = np.array([[[10.0, 0.0], [30.0, 0.0]]])  # H=1, W=2, two channels
    out = resize_image(frame, (4, 4), "letterbox", pad_value=(7.0, 9.0))
    # columns: u = (i + 0.5)/2 = .25 .75 1.25 1.75 -> f = 0 .25 .75 1.25 -> 10, 15, 25, 30 (last clamps)
    # rows: u = (i + 0.5 - 1)/2 = -.25 (pad), .25, .75, 1.25 (>= H: pad)
    np.testing.assert_array_equal(out[1:3, :, 0], [[10, 15, 25, 30]] * 2)
    np.testing.assert_array_equal(out[[0, 3], :, 0], 7.0)
    np.testing.assert_array_equal(out[[0, 3], :, 1], 9.0)
    torch_out = resize_image_torch(
        torch.from_numpy(frame).permute(2, 0, 1)[None].float(),
        (4, 4),
        "letterbox",
        pad_value=(7.0, 9.0),
    )
    np.testing.assert_array_equal(torch_out[0].permute(1, 2, 0).numpy(), out)


def test_letterbox_classes_skip_the_padding_rows():
    # frame 4 wide x 2 high, model 4x4: s = 1, o_y = 1 -> frame rows read model rows 1 and 2
    model = np.arange(16, dtype=np.uint8).reshape(4, 4)
    out = resize_classes(model, (2, 4), "letterbox")
    np.testing.assert_array_equal(out, model[1:3])


def test_crop_takes_the_centre_and_marks_the_rest_unknown():
    # frame 4 wide x 2 high into 2x2: s = max(2/4, 2/2) = 1, o_x = (2 - 4)/2 = -1, o_y = 0
    frame = np.arange(8, dtype=np.float64).reshape(2, 4)
    np.testing.assert_array_equal(
        resize_image(frame, (2, 2), "crop"), frame[:, 1:3]
    )  # u = 1.5, 2.5 -> cols 1, 2
    # back: m = -1 + (X + 0.5) = -.5 (unknown), .5, 1.5, 2.5 (>= w: unknown)
    model = np.array([[1, 2], [3, 4]], np.uint8)
    want = np.array(
        [[UNKNOWN_CLASS, 1, 2, UNKNOWN_CLASS], [UNKNOWN_CLASS, 3, 4, UNKNOWN_CLASS]], np.uint8
    )
    np.testing.assert_array_equal(resize_classes(model, (2, 4), "crop"), want)
    got = resize_classes_torch(torch.from_numpy(model)[None].long(), (2, 4), "crop")[0].numpy()
    np.testing.assert_array_equal(got, want)


def test_crop_with_scaling_hand_checked():
    # frame 4 wide x 6 high into 2x2: s = max(2/4, 2/6) = 0.5, o_x = (2 - 4*0.5)/2 = 0, o_y = (2 - 6*0.5)/2 = -0.5
    geometry = Fit.of("crop", (6, 4), (2, 2))
    assert (
        geometry.cols.scale,
        geometry.rows.scale,
        geometry.cols.offset,
        geometry.rows.offset,
    ) == (0.5, 0.5, 0, -0.5)
    ramp = (
        np.arange(6, dtype=np.float64)[:, None] * 10 + np.arange(4)[None, :]
    )  # value = 10 row + column
    out = resize_image(ramp, (2, 2), "crop")
    # rows: u = (i + 0.5 + 0.5) / 0.5 = 2, 4 -> f = 1.5, 3.5; columns: u = 1, 3 -> f = 0.5, 2.5
    np.testing.assert_allclose(out, [[15.5, 17.5], [35.5, 37.5]])
    # back, rows: m = -0.5 + (Y + 0.5) * 0.5 = -.25 (unknown), .25, .75, 1.25, 1.75, 2.25 (>= h: unknown)
    classes = resize_classes(np.array([[1, 1], [2, 2]], np.uint8), (6, 4), "crop")
    np.testing.assert_array_equal(classes[:, 0], [UNKNOWN_CLASS, 1, 1, 2, 2, UNKNOWN_CLASS])
    # columns: m = (X + 0.5) * 0.5 = .25, .75, 1.25, 1.75: all seen
    np.testing.assert_array_equal(classes[1], [1, 1, 1, 1])


@pytest.mark.parametrize("fit", ["stretch", "crop", "letterbox"])
@pytest.mark.parametrize("frame", [(480, 640), (64, 128), (100, 37)])
def test_round_trip_keeps_the_frame_shape(fit, frame):
    model = (64, 128)
    image = np.random.default_rng(2).integers(0, 256, frame + (3,), dtype=np.uint8)
    x = resize_image(image, model, fit, pad_value=(1.0, 2.0, 3.0))
    assert x.shape == model + (3,)
    classes = np.random.default_rng(3).integers(0, 8, model).astype(np.uint8)
    back = resize_classes(classes, frame, fit)
    assert back.shape == frame and back.dtype == np.uint8
    unknown = (back == UNKNOWN_CLASS).mean()
    if fit == "crop" and frame != model:
        assert unknown > 0  # the cut-off part of the frame
    else:
        assert unknown == 0
    # numpy and torch give the same maps
    torch_back = resize_classes_torch(torch.from_numpy(classes)[None].long(), frame, fit)[0].numpy()
    np.testing.assert_array_equal(torch_back, back)
    torch_x = (
        resize_image_torch(
            torch.from_numpy(image).permute(2, 0, 1)[None].float(),
            model,
            fit,
            pad_value=(1.0, 2.0, 3.0),
        )[0]
        .permute(1, 2, 0)
        .numpy()
    )
    np.testing.assert_allclose(torch_x, x, atol=1e-3)


def test_same_size_is_the_identity_for_every_fit():
    image = np.random.default_rng(4).integers(0, 256, (16, 32, 3), dtype=np.uint8)
    classes = np.random.default_rng(5).integers(0, 8, (16, 32)).astype(np.uint8)
    for fit in ("stretch", "crop", "letterbox"):
        np.testing.assert_array_equal(resize_image(image, (16, 32), fit), image.astype(np.float32))
        np.testing.assert_array_equal(resize_classes(classes, (16, 32), fit), classes)


def test_torch_resize_is_differentiable():
    x = torch.rand(1, 2, 5, 7, requires_grad=True)
    resize_image_torch(x, (8, 9)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
