import numpy as np
import torch

from gss_convert.maskige import (
    Palette,
    fill_ignore_nearest,
    labels_to_maskige_tensor,
    mask_to_maskige,
    maskige_tensor_to_labels,
    maskige_to_mask,
    max_distance_palette,
    nearest_scores,
)


def test_palette_is_far_apart_and_deterministic():
    p = max_distance_palette(8)
    assert p.colors.shape == (8, 3)
    assert len({tuple(c) for c in p.colors.tolist()}) == 8
    assert tuple(p.ignore_color) not in {tuple(c) for c in p.colors.tolist()}
    # 9 points in the RGB cube (8 classes + ignore): corners and centre give 220.8; greedy must reach it
    assert p.min_distance() > 200
    assert np.array_equal(p.colors, max_distance_palette(8).colors)


def test_palette_for_many_classes_still_separates():
    p = max_distance_palette(19, levels=5)
    assert p.min_distance() >= 63  # one grid step of a 5-level grid


def test_round_trip_exact_on_clean_maskige():
    p = max_distance_palette(8)
    rng = np.random.default_rng(0)
    label = rng.integers(0, 8, (37, 53)).astype(np.uint8)
    assert np.array_equal(maskige_to_mask(mask_to_maskige(label, p), p), label)
    t = torch.from_numpy(label).long()[None]
    assert torch.equal(maskige_tensor_to_labels(labels_to_maskige_tensor(t, p), p), t)


def test_numpy_and_torch_forms_of_the_nearest_colour_agree_ties_included():
    """The distances (numpy) and the linear planes (torch) are one rule: on integer colours both
    are exact, so they must give the same class everywhere, the first of equidistant ones too."""
    rng = np.random.default_rng(2)
    for k in (8, 19):
        p = max_distance_palette(k, restarts=2)
        colours = rng.integers(0, 256, (64, 96, 3)).astype(np.float32)
        colours[0, :k] = p.colors  # the palette itself
        colours[1, : k - 1] = (p.colors[:-1].astype(np.float32) + p.colors[1:]) / 2  # midpoints
        colours = np.rint(colours)
        cols = torch.from_numpy(p.colors.astype(np.float32))
        batch = torch.from_numpy(colours).permute(2, 0, 1)[None]
        ours = nearest_scores(batch, cols).argmax(1)[0].numpy()
        assert np.array_equal(ours, maskige_to_mask(colours, p))


def test_inverse_tolerates_noise_below_half_the_distance():
    p = max_distance_palette(8)
    rng = np.random.default_rng(1)
    label = rng.integers(0, 8, (40, 40)).astype(np.uint8)
    noisy = mask_to_maskige(label, p).astype(np.float32) + rng.uniform(-50, 50, (40, 40, 3))
    assert np.array_equal(maskige_to_mask(noisy, p), label)


def test_ignore_gets_ignore_colour_and_fill_uses_neighbours():
    p = max_distance_palette(3)
    label = np.array([[0, 255, 1], [0, 0, 1]], np.uint8)
    m = mask_to_maskige(label, p)
    assert tuple(m[0, 1]) == p.ignore_color
    filled = fill_ignore_nearest(label)
    assert filled[0, 1] in (0, 1) and (filled != 255).all()
    assert np.array_equal(filled[label != 255], label[label != 255])


def test_palette_dict_round_trip():
    p = max_distance_palette(5)
    q = Palette.from_dict(p.to_dict())
    assert np.array_equal(p.colors, q.colors) and p.ignore_color == q.ignore_color
