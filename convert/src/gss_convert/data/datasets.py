"""Dataset loaders: the shared folder format, Cityscapes and ADE20K, all yielding validated `Sample`s.

This module owns finding (image, label) pairs on disk, reading them, converting labels to the
shared convention (uint8 class ids 0..K-1, 255 = unlabeled) and turning every problem with the
files into a `DatasetError` that names the file and says how to fix it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .classes import IGNORE_INDEX, ClassInfo, read_classes_json

IMAGE_EXTS: tuple[str, ...] = (".png", ".jpg", ".jpeg")
LAYOUTS: tuple[str, ...] = ("auto", "folder", "cityscapes", "ade20k")


class DatasetError(ValueError):
    """A problem with dataset files; the message names the file/dir and what to do about it."""


@dataclass
class Sample:
    image: np.ndarray  # uint8 HxWx3 RGB
    label: np.ndarray  # uint8 HxW, class ids 0..K-1, 255 = unlabeled
    name: str  # stem, for output file names


def _fmt_size(size: tuple[int, int]) -> str:
    # PIL sizes are (W, H); spell the order out so nobody has to guess.
    return f"{size[0]}x{size[1]} (WxH)"


def _read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()  # force decoding here so truncated files fail inside the try
            rgb = im.convert("RGB")
    except FileNotFoundError:
        raise DatasetError(f"image file {path} does not exist (was it moved or deleted?)") from None
    except Exception as e:  # PIL raises a zoo of types for corrupt data
        raise DatasetError(
            f"cannot read image {path}: {e}; re-export the file or remove it "
            f"(and its label) from the dataset"
        ) from None
    return np.asarray(rgb, dtype=np.uint8)


def _open_label(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()
    except FileNotFoundError:
        raise DatasetError(f"label file {path} does not exist (was it moved or deleted?)") from None
    except Exception as e:
        raise DatasetError(f"cannot read label {path}: {e}; re-export the label PNG") from None
    if im.mode not in ("L", "P"):
        raise DatasetError(
            f"label {path} has image mode {im.mode!r}; labels must be single-channel "
            f"8-bit PNGs (mode L or P) with pixel value = class id, 255 = unlabeled"
        )
    return im


class SegmentationDataset:
    """A sorted list of (image_path, label_path) pairs plus the class list; items load lazily."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        classes: Sequence[ClassInfo],
        names: Sequence[str] | None = None,
        source: str = "dataset",
    ) -> None:
        pairs = [(Path(a), Path(b)) for a, b in pairs]
        if names is None:
            names = [p[0].stem for p in pairs]
        if len(names) != len(pairs):
            raise ValueError(f"{len(names)} names for {len(pairs)} pairs")
        if not pairs:
            raise DatasetError(
                f"{source}: no images found; check the root directory and split name"
            )
        seen: dict[str, Path] = {}
        for name, (img, _) in zip(names, pairs):
            # names become output file names, so a collision would silently overwrite results
            if name in seen:
                raise DatasetError(
                    f"duplicate sample name {name!r}: {seen[name]} and {img}; "
                    f"rename or remove one of them"
                )
            seen[name] = img
        order = sorted(range(len(pairs)), key=lambda i: names[i])
        self.pairs: list[tuple[Path, Path]] = [pairs[i] for i in order]
        self.names: list[str] = [names[i] for i in order]
        self.classes: list[ClassInfo] = list(classes)
        self.source = source

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r}, {len(self)} samples, {self.num_classes} classes)"

    def __getitem__(self, i: int) -> Sample:
        img_path, lab_path = self.pairs[i]
        name = self.names[i]
        image = _read_rgb(img_path)
        lab_im = _open_label(lab_path)
        if lab_im.size != (image.shape[1], image.shape[0]):
            raise DatasetError(
                f"size mismatch: image {img_path} is {_fmt_size((image.shape[1], image.shape[0]))} "
                f"but label {lab_path} is {_fmt_size(lab_im.size)}; "
                f"labels must have exactly the image's size"
            )
        # For mode P, asarray gives the raw palette indices, which is what the ids are.
        raw = np.asarray(lab_im, dtype=np.uint8)
        lab_im.close()
        label = self._convert_label(raw, lab_path)
        return Sample(image=image, label=label, name=name)

    def _convert_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Map raw on-disk label values to 0..K-1 / 255 and validate; subclasses override the mapping."""
        bad = np.unique(raw[(raw >= self.num_classes) & (raw != IGNORE_INDEX)])
        if bad.size:
            raise DatasetError(
                f"label {path} contains class ids {bad.tolist()[:20]} outside 0..{self.num_classes - 1} "
                f"(and not {IGNORE_INDEX} = unlabeled); fix the label or the class list"
            )
        return raw


def _list_images(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _splits_in(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


def _require_dir(d: Path, what: str, parent: Path) -> None:
    if not d.is_dir():
        avail = _splits_in(parent)
        raise DatasetError(
            f"{what} directory {d} not found (available: {avail or 'none'}); "
            f"check the dataset root and split name"
        )


class FolderDataset(SegmentationDataset):
    """The shared format: images/<split>/<stem>.png|jpg, labels/<split>/<stem>.png, classes.json."""

    def __init__(self, root: Path, split: str) -> None:
        root = Path(root)
        try:
            classes = read_classes_json(root / "classes.json")
        except (FileNotFoundError, ValueError) as e:
            raise DatasetError(str(e)) from None
        img_dir, lab_dir = root / "images" / split, root / "labels" / split
        _require_dir(img_dir, "image split", root / "images")
        _require_dir(lab_dir, "label split", root / "labels")
        pairs = []
        for img in _list_images(img_dir):
            lab = lab_dir / f"{img.stem}.png"
            if not lab.is_file():
                raise DatasetError(
                    f"missing label file {lab} for image {img}; add the label or remove the image"
                )
            pairs.append((img, lab))
        if not pairs:
            raise DatasetError(
                f"split directory {img_dir} contains no images ({', '.join(IMAGE_EXTS)})"
            )
        super().__init__(pairs, classes, source=f"{root} [{split}]")
        self.root, self.split = root, split


CITYSCAPES_CLASSES: tuple[ClassInfo, ...] = tuple(
    ClassInfo(i, n, c)
    for i, (n, c) in enumerate(
        [
            ("road", (128, 64, 128)),
            ("sidewalk", (244, 35, 232)),
            ("building", (70, 70, 70)),
            ("wall", (102, 102, 156)),
            ("fence", (190, 153, 153)),
            ("pole", (153, 153, 153)),
            ("traffic light", (250, 170, 30)),
            ("traffic sign", (220, 220, 0)),
            ("vegetation", (107, 142, 35)),
            ("terrain", (152, 251, 152)),
            ("sky", (70, 130, 180)),
            ("person", (220, 20, 60)),
            ("rider", (255, 0, 0)),
            ("car", (0, 0, 142)),
            ("truck", (0, 0, 70)),
            ("bus", (0, 60, 100)),
            ("train", (0, 80, 100)),
            ("motorcycle", (0, 0, 230)),
            ("bicycle", (119, 11, 32)),
        ]
    )
)

_CS_IMG_SUFFIX = "_leftImg8bit.png"
_CS_LAB_SUFFIX = "_gtFine_labelTrainIds.png"


class CityscapesDataset(SegmentationDataset):
    """leftImg8bit/<split>/<city>/<x>_leftImg8bit.png + gtFine/<split>/<city>/<x>_gtFine_labelTrainIds.png."""

    def __init__(self, root: Path, split: str) -> None:
        root = Path(root)
        img_dir, lab_dir = root / "leftImg8bit" / split, root / "gtFine" / split
        _require_dir(img_dir, "Cityscapes image split", root / "leftImg8bit")
        _require_dir(lab_dir, "Cityscapes label split", root / "gtFine")
        pairs, names = [], []
        for img in sorted(img_dir.glob(f"*/*{_CS_IMG_SUFFIX}")):
            stem = img.name[: -len(_CS_IMG_SUFFIX)]
            lab = lab_dir / img.parent.name / f"{stem}{_CS_LAB_SUFFIX}"
            if not lab.is_file():
                hint = "add the label or remove the image"
                if (lab.parent / f"{stem}_gtFine_labelIds.png").is_file():
                    # the raw download has only labelIds; trainIds come from cityscapesScripts
                    hint = "labelTrainIds are generated by cityscapesscripts' createTrainIdLabelImgs.py"
                raise DatasetError(f"missing label file {lab} for image {img}; {hint}")
            pairs.append((img, lab))
            names.append(stem)
        if not pairs:
            raise DatasetError(
                f"split directory {img_dir} contains no <city>/*{_CS_IMG_SUFFIX} images"
            )
        super().__init__(
            pairs, CITYSCAPES_CLASSES, names=names, source=f"{root} [cityscapes {split}]"
        )
        self.root, self.split = root, split


ADE_NUM_CLASSES = 150
_ADE_SPLITS = {
    "train": "training",
    "training": "training",
    "val": "validation",
    "validation": "validation",
}


def label_palette(n: int) -> list[tuple[int, int, int]]:
    """Deterministic, well-spread colours (the PASCAL VOC bit-interleaving scheme), skipping black."""
    out = []
    for i in range(1, n + 1):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def _ade_classes(root: Path) -> list[ClassInfo]:
    colors = label_palette(ADE_NUM_CLASSES)
    names = [f"class_{i + 1:03d}" for i in range(ADE_NUM_CLASSES)]
    info = root / "objectInfo150.csv"
    if info.is_file():
        try:
            with info.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            by_idx = {int(r["Idx"]): r["Name"].split(";")[0].strip() for r in rows}
        except (KeyError, ValueError, TypeError, csv.Error) as e:
            raise DatasetError(
                f"{info}: expected a CSV with columns Idx and Name ({e}); "
                f"restore the file from the ADEChallengeData2016 download or delete it"
            ) from None
        for k, name in by_idx.items():
            if 1 <= k <= ADE_NUM_CLASSES and name:
                names[k - 1] = name
    return [ClassInfo(i, names[i], colors[i]) for i in range(ADE_NUM_CLASSES)]


class ADE20KDataset(SegmentationDataset):
    """images/<training|validation>/<x>.jpg + annotations/<...>/<x>.png; raw 0 = unlabeled, k -> k-1."""

    def __init__(self, root: Path, split: str) -> None:
        root = Path(root)
        if split not in _ADE_SPLITS:
            raise DatasetError(
                f"ADE20K split {split!r} under {root} not understood; "
                f"use one of {sorted(_ADE_SPLITS)}"
            )
        sub = _ADE_SPLITS[split]
        img_dir, lab_dir = root / "images" / sub, root / "annotations" / sub
        _require_dir(img_dir, "ADE20K image split", root / "images")
        _require_dir(lab_dir, "ADE20K annotation split", root / "annotations")
        pairs = []
        for img in _list_images(img_dir):
            lab = lab_dir / f"{img.stem}.png"
            if not lab.is_file():
                raise DatasetError(
                    f"missing label file {lab} for image {img}; add the annotation or remove the image"
                )
            pairs.append((img, lab))
        if not pairs:
            raise DatasetError(
                f"split directory {img_dir} contains no images ({', '.join(IMAGE_EXTS)})"
            )
        super().__init__(pairs, _ade_classes(root), source=f"{root} [ade20k {sub}]")
        self.root, self.split = root, sub

    def _convert_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        bad = np.unique(raw[raw > ADE_NUM_CLASSES])
        if bad.size:
            raise DatasetError(
                f"label {path} contains raw ADE20K values {bad.tolist()[:20]} outside "
                f"0..{ADE_NUM_CLASSES} (0 = unlabeled); is this really an ADE20K SceneParsing annotation?"
            )
        # uint8 wrap-around does the whole mapping: 0 - 1 = 255 (unlabeled), k -> k-1
        return (raw - np.uint8(1)).astype(np.uint8)


def detect_layout(root: Path) -> str | None:
    """Guess the layout from the directory structure; None if nothing matches."""
    root = Path(root)
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        return "cityscapes"
    if (root / "images").is_dir() and (root / "annotations").is_dir():
        return "ade20k"
    # images+labels without classes.json still counts, so FolderDataset can say classes.json is missing
    if (root / "classes.json").is_file() or (
        (root / "images").is_dir() and (root / "labels").is_dir()
    ):
        return "folder"
    return None


def open_dataset(root: Path, split: str, layout: str = "auto") -> SegmentationDataset:
    """Open `root` in the given layout (or the auto-detected one) for `split`."""
    root = Path(root)
    if layout not in LAYOUTS:
        raise DatasetError(
            f"unknown dataset layout {layout!r} for {root}; use one of {list(LAYOUTS)}"
        )
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} is not a directory; check the path")
    if layout == "auto":
        found = detect_layout(root)
        if found is None:
            raise DatasetError(
                f"cannot detect the dataset layout of {root}; looked for: "
                f"cityscapes (leftImg8bit/ and gtFine/), ade20k (images/ and annotations/), "
                f"folder (classes.json, or images/ and labels/). Pass the layout explicitly or fix the root path"
            )
        layout = found
    cls = {"folder": FolderDataset, "cityscapes": CityscapesDataset, "ade20k": ADE20KDataset}[
        layout
    ]
    return cls(root, split)


def load_all(
    ds: SegmentationDataset, max_items: int | None = None, progress: bool = True
) -> list[Sample]:
    """Decode the (first `max_items`) samples into memory so training epochs don't re-read PNGs."""
    n = len(ds) if max_items is None else max(0, min(max_items, len(ds)))
    indices: Iterable[int] = range(n)
    if progress:
        try:
            from tqdm import tqdm

            indices = tqdm(indices, desc=f"loading {ds.source}", unit="img")
        except ImportError:  # tqdm is only for the progress bar; loading works without it
            pass
    return [ds[i] for i in indices]


__all__ = [
    "DatasetError",
    "Sample",
    "SegmentationDataset",
    "FolderDataset",
    "CityscapesDataset",
    "ADE20KDataset",
    "CITYSCAPES_CLASSES",
    "ADE_NUM_CLASSES",
    "label_palette",
    "detect_layout",
    "open_dataset",
    "load_all",
]
