"""The model package manifest (`model.json`): its schema, writing it, and checking a package on disk.

The Rust runtime validates the same fields before it runs anything; `MODEL_SCHEMA` is the contract
and ships beside the package code as `model.schema.json`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FORMAT = "gss-model/1"
SCHEMA_PATH = Path(__file__).parent / "model.schema.json"


class ManifestError(ValueError):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate_manifest(manifest: dict[str, Any], where: str = "model.json") -> None:
    """Schema check (jsonschema) plus the cross-field rules a schema cannot say."""
    import jsonschema

    try:
        jsonschema.validate(manifest, load_schema())
    except jsonschema.ValidationError as e:
        path = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ManifestError(f"{where}: {path}: {e.message}") from None
    major = manifest["format"].split("/")[-1].split(".")[0]
    if manifest["format"].split("/")[0] != "gss-model" or major != "1":
        raise ManifestError(
            f"{where}: format {manifest['format']!r} is not {FORMAT}; "
            "this gss_convert reads format 1 only"
        )
    k = len(manifest["classes"])
    if [c["id"] for c in manifest["classes"]] != list(range(k)):
        raise ManifestError(f"{where}: classes must have ids 0..{k - 1} in order")
    if len(manifest["maskige"]["palette"]) != k:
        raise ManifestError(
            f"{where}: maskige.palette has {len(manifest['maskige']['palette'])} colours "
            f"for {k} classes"
        )
    grid = manifest["prior"]["grid"]
    up = manifest["decoder"]["upsample"]
    size = [manifest["input"]["height"], manifest["input"]["width"]]
    if [g * up for g in grid] != size:
        raise ManifestError(
            f"{where}: prior.grid {grid} × decoder.upsample {up} != input size {size}"
        )
    listed = {manifest["prior"]["file"], manifest["decoder"]["file"]}
    for v in manifest.get("variants", {}).values():
        listed |= {v["prior"], v["decoder"]}
    missing = listed - set(manifest["files"])
    if missing:
        raise ManifestError(
            f"{where}: files {sorted(missing)} are referenced but have no sha256 entry"
        )


def check_package(package: Path) -> dict[str, Any]:
    """Loads `package/model.json`, validates it and verifies every file's size and sha256."""
    package = Path(package)
    path = package / "model.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(
            f"{path}: not found; is {package} a model package (gss-convert export)?"
        ) from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    validate_manifest(manifest, str(path))
    for name, info in manifest["files"].items():
        f = package / name
        if not f.is_file():
            raise ManifestError(f"{f}: listed in model.json but missing; re-export the package")
        size = f.stat().st_size
        if size != info["bytes"]:
            raise ManifestError(
                f"{f}: {size} bytes, model.json says {info['bytes']}: the file is "
                "truncated or was replaced; re-export or restore it"
            )
        digest = sha256_file(f)
        if digest != info["sha256"]:
            raise ManifestError(
                f"{f}: sha256 {digest} does not match model.json ({info['sha256']}): "
                "the file is corrupt or was replaced; re-export or restore it"
            )
    return manifest


def file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}
