"""Loaders for the folder / Cityscapes / ADE20K layouts: mapping, auto-detection and every error message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gss_convert.data.classes import STREET8, write_classes_json
from gss_convert.data.datasets import (
    ADE20KDataset,
    CityscapesDataset,
    DatasetError,
    FolderDataset,
    Sample,
    detect_layout,
    load_all,
    open_dataset,
)

H, W = 8, 12


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _label(seed: int, hi: int) -> np.ndarray:
    lab = np.random.default_rng(100 + seed).integers(0, hi, (H, W), dtype=np.uint8)
    lab[0, 0] = 255
    return lab


def _save(arr: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def make_folder(
    root: Path, split: str = "train", stems: tuple[str, ...] = ("b", "a", "c")
) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    write_classes_json(root / "classes.json", STREET8)
    labels = {}
    for i, s in enumerate(stems):
        _save(_rgb(i), root / "images" / split / f"{s}.png")
        labels[s] = _save_label(root / "labels" / split / f"{s}.png", _label(i, 8))
    return labels


def _save_label(path: Path, lab: np.ndarray) -> np.ndarray:
    _save(lab, path)
    return lab


def make_cityscapes(root: Path, split: str = "val") -> dict[str, np.ndarray]:
    labels = {}
    for i, (city, x) in enumerate(
        [("lindau", "lindau_000001_000019"), ("frankfurt", "frankfurt_000000_000294")]
    ):
        _save(_rgb(i), root / "leftImg8bit" / split / city / f"{x}_leftImg8bit.png")
        labels[x] = _save_label(
            root / "gtFine" / split / city / f"{x}_gtFine_labelTrainIds.png", _label(i, 19)
        )
    return labels


def make_ade(root: Path, sub: str = "training", csv: bool = True) -> dict[str, np.ndarray]:
    raws = {}
    for i, x in enumerate(["ADE_train_00000002", "ADE_train_00000001"]):
        (root / "images" / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(_rgb(i)).save(root / "images" / sub / f"{x}.jpg", quality=95)
        raw = np.random.default_rng(i).integers(0, 151, (H, W), dtype=np.uint8)
        raw[0, :3] = [0, 1, 150]  # unlabeled and both ends of the range
        raws[x] = _save_label(root / "annotations" / sub / f"{x}.png", raw)
    if csv:
        (root / "objectInfo150.csv").write_text(
            "Idx,Ratio,Train,Val,Name\n1,0.1576,11664,1172,wall\n2,0.1072,6046,612,building;edifice\n"
            "3,0.0878,8265,796,sky\n"
        )
    return raws


# --- loading -------------------------------------------------------------------------------------


def test_folder_loads_sorted_and_exact(tmp_path: Path) -> None:
    labels = make_folder(tmp_path)
    ds = FolderDataset(tmp_path, "train")
    assert len(ds) == 3 and ds.num_classes == 8
    assert [p[0].stem for p in ds.pairs] == ["a", "b", "c"]
    s = ds[0]
    assert isinstance(s, Sample) and s.name == "a"
    assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8
    assert s.label.shape == (H, W) and s.label.dtype == np.uint8
    np.testing.assert_array_equal(s.label, labels["a"])
    np.testing.assert_array_equal(s.image, _rgb(1))  # "a" was written second
    assert [x.name for x in load_all(ds, max_items=2, progress=False)] == ["a", "b"]
    assert len(load_all(ds, progress=False)) == 3


def test_folder_converts_images_and_reads_palette_labels(tmp_path: Path) -> None:
    write_classes_json(tmp_path / "classes.json", STREET8)
    d = tmp_path / "images" / "val"
    _save(np.full((H, W), 77, np.uint8), d / "grey.png")
    _save(np.full((H, W, 4), 200, np.uint8), d / "rgba.png")
    lab = _label(0, 8)
    for s in ("grey", "rgba"):
        p = tmp_path / "labels" / "val" / f"{s}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(lab).convert("P")  # P mode: the raw indices are the ids
        im.putpalette([v for i in range(256) for v in (255 - i, i, 0)])
        im.save(p)
    ds = FolderDataset(tmp_path, "val")
    g, r = ds[0], ds[1]
    assert g.image.shape == (H, W, 3) and (g.image == 77).all()
    assert r.image.shape == (H, W, 3) and (r.image == 200).all()
    np.testing.assert_array_equal(g.label, lab)


def test_cityscapes(tmp_path: Path) -> None:
    labels = make_cityscapes(tmp_path)
    ds = CityscapesDataset(tmp_path, "val")
    assert ds.num_classes == 19
    assert ds.classes[0].name == "road" and ds.classes[18].name == "bicycle"
    assert ds.classes[13].name == "car" and ds.classes[13].color == (0, 0, 142)
    assert [ds[i].name for i in range(len(ds))] == [
        "frankfurt_000000_000294",
        "lindau_000001_000019",
    ]
    np.testing.assert_array_equal(ds[1].label, labels["lindau_000001_000019"])


def test_ade20k_mapping_and_names(tmp_path: Path) -> None:
    raws = make_ade(tmp_path)
    for split in ("train", "training"):
        ds = ADE20KDataset(tmp_path, split)
        assert ds.num_classes == 150 and len(ds) == 2
    s = ds[0]
    assert s.name == "ADE_train_00000001"
    raw = raws[s.name]
    assert s.label[0, 0] == 255 and s.label[0, 1] == 0 and s.label[0, 2] == 149
    expect = np.where(raw == 0, 255, raw.astype(np.int16) - 1).astype(np.uint8)
    np.testing.assert_array_equal(s.label, expect)
    assert [c.name for c in ds.classes[:3]] == ["wall", "building", "sky"]
    assert ds.classes[3].name == "class_004"
    colors = [c.color for c in ds.classes]
    assert len(set(colors)) == 150
    assert colors == [c.color for c in ADE20KDataset(tmp_path, "train").classes]  # deterministic


def test_ade20k_default_names_and_val_split(tmp_path: Path) -> None:
    make_ade(tmp_path, "validation", csv=False)
    ds = ADE20KDataset(tmp_path, "val")
    assert ds.classes[0].name == "class_001" and ds.classes[149].name == "class_150"
    with pytest.raises(DatasetError, match="test"):
        ADE20KDataset(tmp_path, "test")


def test_auto_detection(tmp_path: Path) -> None:
    make_folder(tmp_path / "f")
    make_cityscapes(tmp_path / "cs")
    make_ade(tmp_path / "ade")
    assert type(open_dataset(tmp_path / "f", "train")) is FolderDataset
    assert type(open_dataset(tmp_path / "cs", "val")) is CityscapesDataset
    assert type(open_dataset(tmp_path / "ade", "train")) is ADE20KDataset
    assert type(open_dataset(tmp_path / "f", "train", layout="folder")) is FolderDataset
    assert detect_layout(tmp_path) is None
    with pytest.raises(DatasetError) as e:
        open_dataset(tmp_path, "train")
    assert (
        str(tmp_path) in str(e.value)
        and "leftImg8bit" in str(e.value)
        and "annotations" in str(e.value)
    )
    with pytest.raises(DatasetError, match="layout"):
        open_dataset(tmp_path / "f", "train", layout="coco")
    with pytest.raises(DatasetError) as e:
        open_dataset(tmp_path / "nope", "train")
    assert str(tmp_path / "nope") in str(e.value)


# --- errors --------------------------------------------------------------------------------------


def test_missing_split_dir(tmp_path: Path) -> None:
    make_folder(tmp_path)
    with pytest.raises(DatasetError) as e:
        FolderDataset(tmp_path, "val")
    assert str(tmp_path / "images" / "val") in str(e.value) and "train" in str(e.value)
    make_cityscapes(tmp_path / "cs")
    with pytest.raises(DatasetError) as e:
        CityscapesDataset(tmp_path / "cs", "train")
    assert str(tmp_path / "cs" / "leftImg8bit" / "train") in str(e.value)


def test_empty_split(tmp_path: Path) -> None:
    make_folder(tmp_path)
    (tmp_path / "images" / "test").mkdir()
    (tmp_path / "labels" / "test").mkdir()
    with pytest.raises(DatasetError) as e:
        FolderDataset(tmp_path, "test")
    assert str(tmp_path / "images" / "test") in str(e.value)


def test_missing_classes_json(tmp_path: Path) -> None:
    make_folder(tmp_path)
    (tmp_path / "classes.json").unlink()
    with pytest.raises(DatasetError) as e:
        open_dataset(tmp_path, "train")
    assert str(tmp_path / "classes.json") in str(e.value)


@pytest.mark.parametrize("layout", ["folder", "cityscapes", "ade20k"])
def test_missing_label(tmp_path: Path, layout: str) -> None:
    if layout == "folder":
        make_folder(tmp_path)
        lab = tmp_path / "labels" / "train" / "b.png"
        img, split = tmp_path / "images" / "train" / "b.png", "train"
    elif layout == "cityscapes":
        make_cityscapes(tmp_path)
        x = "lindau_000001_000019"
        lab = tmp_path / "gtFine" / "val" / "lindau" / f"{x}_gtFine_labelTrainIds.png"
        img, split = tmp_path / "leftImg8bit" / "val" / "lindau" / f"{x}_leftImg8bit.png", "val"
    else:
        make_ade(tmp_path)
        lab = tmp_path / "annotations" / "training" / "ADE_train_00000002.png"
        img, split = tmp_path / "images" / "training" / "ADE_train_00000002.jpg", "train"
    lab.unlink()
    with pytest.raises(DatasetError) as e:
        open_dataset(tmp_path, split)
    assert f"missing label file {lab} for image {img}" in str(e.value)


def test_label_not_8bit(tmp_path: Path) -> None:
    make_folder(tmp_path)
    bad = tmp_path / "labels" / "train" / "b.png"
    _save(np.zeros((H, W, 3), np.uint8), bad)  # RGB label
    ds = FolderDataset(tmp_path, "train")
    with pytest.raises(DatasetError) as e:
        ds[1]
    assert str(bad) in str(e.value) and "RGB" in str(e.value)
    _save(np.zeros((H, W), np.uint16) + 300, bad)  # 16-bit label
    with pytest.raises(DatasetError) as e:
        ds[1]
    assert str(bad) in str(e.value)


def test_label_id_out_of_range(tmp_path: Path) -> None:
    make_folder(tmp_path)
    bad = tmp_path / "labels" / "train" / "c.png"
    lab = _label(0, 8)
    lab[1, 1], lab[2, 2] = 8, 42
    _save(lab, bad)
    ds = FolderDataset(tmp_path, "train")
    with pytest.raises(DatasetError) as e:
        ds[2]
    assert str(bad) in str(e.value) and "[8, 42]" in str(e.value)
    ds[0]  # the other samples are unaffected


def test_ade_raw_value_out_of_range(tmp_path: Path) -> None:
    make_ade(tmp_path)
    bad = tmp_path / "annotations" / "training" / "ADE_train_00000001.png"
    _save(np.full((H, W), 151, np.uint8), bad)
    with pytest.raises(DatasetError) as e:
        ADE20KDataset(tmp_path, "train")[0]
    assert str(bad) in str(e.value) and "151" in str(e.value)


def test_size_mismatch(tmp_path: Path) -> None:
    make_folder(tmp_path)
    bad = tmp_path / "labels" / "train" / "a.png"
    _save(np.zeros((H, W + 1), np.uint8), bad)
    with pytest.raises(DatasetError) as e:
        FolderDataset(tmp_path, "train")[0]
    msg = str(e.value)
    assert str(bad) in msg and str(tmp_path / "images" / "train" / "a.png") in msg
    assert "12x8" in msg and "13x8" in msg


def test_corrupt_image(tmp_path: Path) -> None:
    make_folder(tmp_path)
    bad = tmp_path / "images" / "train" / "a.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    ds = FolderDataset(tmp_path, "train")
    with pytest.raises(DatasetError) as e:
        ds[0]
    assert str(bad) in str(e.value)
    # truncated: a valid header with the pixel data cut off
    good = tmp_path / "images" / "train" / "b.png"
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError) as e:
        ds[1]
    assert str(good) in str(e.value)


def test_corrupt_label_and_bad_classes_json(tmp_path: Path) -> None:
    make_folder(tmp_path)
    bad = tmp_path / "labels" / "train" / "a.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(DatasetError) as e:
        FolderDataset(tmp_path, "train")[0]
    assert str(bad) in str(e.value)
    (tmp_path / "classes.json").write_text(json.dumps([{"id": 1, "name": "x", "color": [0, 0, 0]}]))
    with pytest.raises(DatasetError) as e:
        FolderDataset(tmp_path, "train")
    assert str(tmp_path / "classes.json") in str(e.value)


def test_duplicate_stems(tmp_path: Path) -> None:
    make_folder(tmp_path)
    _save(_rgb(9), tmp_path / "images" / "train" / "a.jpg")
    with pytest.raises(DatasetError) as e:
        FolderDataset(tmp_path, "train")
    assert str(tmp_path / "images" / "train" / "a.jpg") in str(e.value)
