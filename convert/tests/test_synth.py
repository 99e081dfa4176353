"""street8 generator: determinism, label contents, dataset layout, worker independence, sequences,
and the shifted domains (street8 unchanged, fog / dusk / camera / texture shifts, domain.json, CLI)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gss_convert.data.classes import IGNORE_INDEX, STREET8
from gss_convert.data.synth import (
    DOMAINS,
    Domain,
    World,
    derive_seed,
    draw_shift,
    generate_dataset,
    render_scene,
    render_sequence,
)

SMALL = (64, 128)
VALID = set(range(8)) | {IGNORE_INDEX}


@pytest.fixture(scope="module")
def frames() -> list[tuple[np.ndarray, np.ndarray]]:
    return [render_scene(s, (96, 192)) for s in range(8)]


def test_shapes_dtypes_and_label_values(frames):
    for img, lab in frames:
        assert img.shape == (96, 192, 3) and img.dtype == np.uint8
        assert lab.shape == (96, 192) and lab.dtype == np.uint8
        assert set(np.unique(lab).tolist()) <= VALID
    img, lab = render_scene(0)  # default size
    assert img.shape == (256, 512, 3) and lab.shape == (256, 512)


def test_odd_sizes():
    for size in [(33, 47), (40, 200)]:
        img, lab = render_scene(5, size)
        assert img.shape == size + (3,) and lab.shape == size
        assert set(np.unique(lab).tolist()) <= VALID


def test_deterministic_per_seed():
    a_img, a_lab = render_scene(123, SMALL)
    b_img, b_lab = render_scene(123, SMALL)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    c_img, c_lab = render_scene(124, SMALL)
    assert not np.array_equal(a_img, c_img)
    assert not np.array_equal(a_lab, c_lab)


def test_every_class_appears_and_ignore_share(frames):
    seen = set()
    for _, lab in frames:
        seen |= set(np.unique(lab).tolist())
    assert set(range(8)) <= seen, f"missing classes: {set(range(8)) - seen}"
    shares = np.array([(lab == IGNORE_INDEX).mean() for _, lab in frames])
    assert 0.002 < shares.mean() < 0.08
    assert shares.max() < 0.3
    # road, building and sky are large, people and poles small
    total = np.bincount(np.concatenate([lab.ravel() for _, lab in frames]), minlength=256) / sum(
        lab.size for _, lab in frames
    )
    assert total[0] > 0.1 and total[2] > 0.05 and total[4] > 0.01
    assert 0 < total[5] < 0.06 and 0 < total[7] < 0.06


def test_classes_not_identified_by_colour(frames):
    # mean colour of a class varies a lot across frames (colour alone must not give the class away)
    for cls in (0, 2, 3, 6):
        means = [img[lab == cls].mean(0) for img, lab in frames if (lab == cls).sum() > 50]
        assert len(means) >= 3
        assert np.ptp(np.array(means), axis=0).max() > 25, cls


def _load(path: Path) -> tuple[str, str, tuple[int, int], np.ndarray]:
    with Image.open(path) as im:
        return im.format, im.mode, im.size, np.asarray(im)


def _read_tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_generate_dataset_layout_and_classes_json(tmp_path):
    out = tmp_path / "ds"
    generate_dataset(out, SMALL, {"train": 3, "val": 2}, seed=1, workers=1)
    assert json.loads((out / "classes.json").read_text()) == [
        {"id": c.id, "name": c.name, "color": list(c.color)} for c in STREET8
    ]
    for split, n in (("train", 3), ("val", 2)):
        imgs = sorted((out / "images" / split).iterdir())
        labs = sorted((out / "labels" / split).iterdir())
        assert [p.name for p in imgs] == [f"street8_{split}_{i:06d}.png" for i in range(n)]
        assert [p.name for p in labs] == [f"street8_{split}_{i:06d}.png" for i in range(n)]
        for ip, lp in zip(imgs, labs):
            fmt, mode, size, _ = _load(ip)
            assert fmt == "PNG" and mode == "RGB" and size == (SMALL[1], SMALL[0])
            fmt, mode, size, lab = _load(lp)
            assert fmt == "PNG" and mode == "L" and size == (SMALL[1], SMALL[0])
            assert set(np.unique(lab).tolist()) <= VALID
    # the split's images differ from each other
    a = _load(out / "images" / "train" / "street8_train_000000.png")[3]
    b = _load(out / "images" / "train" / "street8_train_000001.png")[3]
    assert not np.array_equal(a, b)
    # re-running with fewer images overwrites and removes the stale ones
    generate_dataset(out, SMALL, {"train": 2}, seed=1, workers=1)
    assert len(list((out / "images" / "train").iterdir())) == 2
    assert len(list((out / "labels" / "train").iterdir())) == 2


def test_workers_do_not_change_output(tmp_path):
    splits = {"train": 4, "test": 2}
    generate_dataset(tmp_path / "w1", SMALL, splits, seed=3, workers=1)
    generate_dataset(tmp_path / "w2", SMALL, splits, seed=3, workers=2)
    t1, t2 = _read_tree(tmp_path / "w1"), _read_tree(tmp_path / "w2")
    assert t1.keys() == t2.keys() and len(t1) == 1 + 2 * 6
    assert all(t1[k] == t2[k] for k in t1)


def test_jpg_images_and_lossless_labels(tmp_path):
    generate_dataset(tmp_path, SMALL, {"val": 2}, seed=4, workers=1, image_format="jpg")
    imgs = sorted((tmp_path / "images" / "val").iterdir())
    assert [p.suffix for p in imgs] == [".jpg", ".jpg"]
    assert _load(imgs[0])[0] == "JPEG"
    # the written label equals the rendered one (PNG, lossless)
    _, lab = render_scene(derive_seed(4, "val", 1), SMALL)
    assert np.array_equal(_load(tmp_path / "labels" / "val" / "street8_val_000001.png")[3], lab)


def test_sequence_frames_are_coherent():
    seq = list(render_sequence(9, 4, SMALL))
    assert len(seq) == 4
    for (a_img, a_lab), (b_img, b_lab) in zip(seq, seq[1:]):
        assert not np.array_equal(a_img, b_img)
        diff = np.abs(a_img.astype(np.int16) - b_img).mean()
        assert diff < 40, diff  # same scene, camera moved a little
        assert (a_lab == b_lab).mean() > 0.6
    # much closer to each other than two unrelated scenes
    other = render_scene(10, SMALL)[0]
    d_seq = np.abs(seq[0][0].astype(np.int16) - seq[1][0]).mean()
    d_other = np.abs(seq[0][0].astype(np.int16) - other).mean()
    assert d_seq < d_other
    again = list(render_sequence(9, 4, SMALL))
    assert all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(seq, again)
    )


def test_generate_sequence_mode(tmp_path):
    generate_dataset(tmp_path / "s", SMALL, {}, seed=2, sequence=5, workers=2)
    names = sorted(p.name for p in (tmp_path / "s" / "images" / "seq").iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(5)]
    assert len(list((tmp_path / "s" / "labels" / "seq").iterdir())) == 5
    # a single named split is used instead of `seq`; frames equal those of a 1-worker run
    generate_dataset(tmp_path / "t", SMALL, {"clip": 1}, seed=2, sequence=3, workers=1)
    generate_dataset(tmp_path / "u", SMALL, {"clip": 1}, seed=2, sequence=3, workers=2)
    assert sorted(p.name for p in (tmp_path / "t" / "images" / "clip").iterdir()) == [
        f"frame_{i:06d}.png" for i in range(3)
    ]
    assert _read_tree(tmp_path / "t") == _read_tree(tmp_path / "u")
    f0 = _load(tmp_path / "t" / "images" / "clip" / "frame_000000.png")[3]
    f1 = _load(tmp_path / "t" / "images" / "clip" / "frame_000001.png")[3]
    assert not np.array_equal(f0, f1)
    with pytest.raises(ValueError):
        generate_dataset(tmp_path / "v", SMALL, {"a": 1, "b": 1}, seed=2, sequence=3)


# ----------------------------------------------------------------------------------------------
# domains
# ----------------------------------------------------------------------------------------------


def test_street8_domain_is_unchanged(tmp_path):
    # no domain argument, the street8 preset and any preset that cannot draw a shift: the same bytes
    idle = Domain("idle")
    for seed in (0, 11):
        img, lab = render_scene(seed, SMALL)
        for dom in ("street8", DOMAINS["street8"], idle):
            i2, l2 = render_scene(seed, SMALL, dom)
            assert np.array_equal(img, i2) and np.array_equal(lab, l2)
    a = list(render_sequence(9, 2, SMALL))
    b = list(render_sequence(9, 2, SMALL, "street8"))
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    generate_dataset(tmp_path / "a", SMALL, {"test": 2}, seed=7, workers=1)
    generate_dataset(tmp_path / "b", SMALL, {"test": 2}, seed=7, workers=1, domain="street8")
    ta, tb = _read_tree(tmp_path / "a"), _read_tree(tmp_path / "b")
    assert ta == tb and "domain.json" not in ta


@pytest.mark.parametrize("name", ["fog", "dusk", "texture"])
def test_image_shifts_keep_the_scene_and_its_labels(name):
    # same seed -> same scene: fog, dusk and the restyle change the image, never the labels
    for seed in (1, 2, 3):
        img, lab = render_scene(seed, SMALL)
        si, sl = render_scene(seed, SMALL, name)
        assert not np.array_equal(img, si)
        assert np.array_equal(lab, sl)
    seq = list(render_sequence(9, 2, SMALL, name))
    ref = list(render_sequence(9, 2, SMALL))
    assert all(
        np.array_equal(a[1], b[1]) and not np.array_equal(a[0], b[0]) for a, b in zip(seq, ref)
    )


def test_camera_shift_changes_the_view_with_valid_labels():
    for seed in (1, 2, 3):
        img, lab = render_scene(seed, SMALL)
        si, sl = render_scene(seed, SMALL, "camera")
        assert not np.array_equal(img, si) and not np.array_equal(lab, sl)
        assert set(np.unique(sl).tolist()) <= VALID
        assert (
            len(set(np.unique(sl).tolist()) - {IGNORE_INDEX}) >= 3
        )  # still a street, not one wall


def test_shift_mix_draws_every_case_outside_street8_ranges():
    shift = DOMAINS["shift"]
    draws = [draw_shift(shift, derive_seed(7, "test", i))[0] for i in range(200)]
    counts = {c: sum(c in d.cases for d in draws) for c in ("fog", "dusk", "camera", "texture")}
    assert all(40 <= n <= 130 for n in counts.values()), counts
    assert all(d.cases for d in draws)  # every image is off the training domain
    assert sum(len(d.cases) > 1 for d in draws) > 40  # and combinations occur
    for d in draws:
        if d.fog_distance:
            assert 15 <= d.fog_distance <= 60  # street8's haze: 120-900 m
        if d.camera_height is not None:
            assert not 1.2 <= d.camera_height <= 2.3
        if d.horizon is not None:
            assert not 0.35 <= d.horizon <= 0.55
        if d.hfov is not None:
            assert d.hfov > 75
    dusk = next(i for i, d in enumerate(draws) if d.dusk)
    w = World(derive_seed(7, "test", dusk), SMALL, 1, shift)
    assert (
        math.degrees(math.asin(w.light.sun[1])) < 18 and w.light.glow > 0 and w.light.ambient < 0.45
    )
    # the street8 draws are not consumed: the shifted world has street8's scene
    w8 = World(derive_seed(7, "test", dusk), SMALL, 1)
    assert len(w.objects) == len(w8.objects) and w.speed == w8.speed and w.camera_x == w8.camera_x


def test_fog_lowers_contrast_with_depth():
    fog = Domain("fog25", p_fog=1.0, fog_distance=(25.0, 25.0))
    for seed in (0, 1, 3):
        a, la, za = World(seed, (96, 192), 1).render(0, return_depth=True)
        b, lb, zb = World(seed, (96, 192), 1, fog).render(0, return_depth=True)
        assert np.array_equal(la, lb) and np.array_equal(za, zb)
        ga, gb = a.mean(-1), b.mean(-1)
        ratios = []
        for lo, hi in ((0, 12), (12, 30), (30, np.inf)):  # metres; the sky (inf) is left out
            m = (za >= lo) & (za < hi)
            assert m.sum() > 500
            ratios.append(gb[m].std() / ga[m].std())
        assert ratios[0] > ratios[1] > ratios[2], ratios  # contrast falls with depth
        assert ratios[2] < 0.6 and ratios[0] > 0.75, ratios


def test_shift_dataset_writes_domain_json(tmp_path):
    out = tmp_path / "shift"
    counts = generate_dataset(out, SMALL, {"test": 4}, seed=7, workers=1, domain="shift")
    meta = json.loads((out / "domain.json").read_text())
    assert meta["domain"] == "shift" and meta["seed"] == 7 and meta["preset"]["p_fog"] == 0.4
    assert sorted(meta["images"]) == [f"test/street8_test_{i:06d}" for i in range(4)]
    assert all(rec["cases"] for rec in meta["images"].values())
    assert counts == meta["cases"] and sum(counts.values()) >= 4
    for i in range(4):
        lab = _load(out / "labels" / "test" / f"street8_test_{i:06d}.png")[3]
        assert set(np.unique(lab).tolist()) <= VALID
        img = _load(out / "images" / "test" / f"street8_test_{i:06d}.png")[3]
        assert not np.array_equal(img, render_scene(derive_seed(7, "test", i), SMALL)[0])
    # street8 written over it: the stale domain.json goes
    generate_dataset(out, SMALL, {"test": 1}, seed=7, workers=1)
    assert not (out / "domain.json").exists()


def test_cli_domain(tmp_path, capsys):
    from gss_convert.cli import main

    out = tmp_path / "cli"
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(out),
                "--size",
                "32x64",
                "--split",
                "test=2",
                "--seed",
                "7",
                "--domain",
                "shift",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert json.loads((out / "domain.json").read_text())["domain"] == "shift"
    assert len(list((out / "images" / "test").iterdir())) == 2
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(tmp_path / "bad"),
                "--split",
                "test=1",
                "--domain",
                "nowhere",
            ]
        )
        == 2
    )
    assert "unknown domain 'nowhere'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    # the help text lists every preset (the parser does not import synth to get them)
    with pytest.raises(SystemExit):
        main(["data", "synth", "--help"])
    synth_help = capsys.readouterr().out
    assert "--domain" in synth_help and all(name in synth_help for name in DOMAINS)


def test_a_faster_camera_moves_further_per_frame_and_speed_needs_a_sequence(tmp_path):
    import pytest

    from gss_convert.data.synth import generate_dataset
    from gss_convert.data.synth.world import World

    default = World(5, (32, 64), 10)
    fast = World(5, (32, 64), 10, speed=3.0)
    assert fast.speed == 3.0 and fast.camera(2).z == pytest.approx(6.0)
    # the draws after the speed are the same: same lens and camera position across the street
    assert (fast.lens, fast.camera(0).x) == (default.lens, default.camera(0).x)
    with pytest.raises(ValueError, match="sequences only"):
        generate_dataset(tmp_path / "x", (32, 64), {"test": 1}, 0, speed=2.0)
    generate_dataset(tmp_path / "seq", (32, 64), {}, 0, sequence=3, speed=2.0, workers=1)
    assert len(list((tmp_path / "seq" / "images" / "seq").iterdir())) == 3
    parked = World(5, (32, 64), 10, speed=0.0)
    assert parked.camera(0).z == parked.camera(9).z
    with pytest.raises(ValueError, match="sequences only"):
        generate_dataset(tmp_path / "y", (32, 64), {}, 0, sequence=3, speed=-1.0)
