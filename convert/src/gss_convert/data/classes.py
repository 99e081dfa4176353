"""Class lists: the built-in street8 classes and the `classes.json` format shared with the runtime."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

IGNORE_INDEX = 255


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    color: tuple[int, int, int]  # display colour, not the maskige palette


STREET8: tuple[ClassInfo, ...] = (
    ClassInfo(0, "road", (128, 64, 128)),
    ClassInfo(1, "sidewalk", (244, 35, 232)),
    ClassInfo(2, "building", (70, 70, 70)),
    ClassInfo(3, "vegetation", (107, 142, 35)),
    ClassInfo(4, "sky", (70, 130, 180)),
    ClassInfo(5, "person", (220, 20, 60)),
    ClassInfo(6, "vehicle", (0, 0, 142)),
    ClassInfo(7, "pole", (153, 153, 153)),
)


def write_classes_json(path: Path, classes: tuple[ClassInfo, ...] | list[ClassInfo]) -> None:
    items = [{"id": c.id, "name": c.name, "color": list(c.color)} for c in classes]
    path.write_text(json.dumps(items, indent=1) + "\n")


def read_classes_json(path: Path) -> list[ClassInfo]:
    try:
        items = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: classes.json not found; the dataset root needs one "
            f'(list of {{"id", "name", "color"}})'
        ) from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    out = []
    for i, it in enumerate(items):
        try:
            out.append(
                ClassInfo(int(it["id"]), str(it["name"]), tuple(int(v) for v in it["color"]))
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"{path}: entry {i} must have id, name and color [r,g,b] ({e})"
            ) from None
    ids = [c.id for c in out]
    if ids != list(range(len(out))):
        raise ValueError(f"{path}: class ids must be 0..{len(out) - 1} in order, got {ids}")
    return out


__all__ = ["ClassInfo", "STREET8", "IGNORE_INDEX", "write_classes_json", "read_classes_json"]
