"""Writing a street8 data set to disk in the shared folder layout (images/, labels/, classes.json)."""

from __future__ import annotations

import json
import multiprocessing as mp
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..classes import STREET8, write_classes_json
from .domains import Domain, get_domain
from .textures import texture_bank
from .world import World, check_size

IMAGE_FORMATS = ("png", "jpg")


def derive_seed(seed: int, split: str, index: int) -> int:
    """The seed of one image: from (seed, split, index) alone, so no image depends on any other."""
    seed_sequence = np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFF, zlib.crc32(split.encode()), int(index)]
    )
    return int(seed_sequence.generate_state(1, np.uint32)[0])


@dataclass(frozen=True)
class RenderJob:
    """Frames to render and save in one worker call: one image of a split, or a contiguous run of
    a sequence's frames (so the worker builds the sequence's world once for all of them)."""

    out: Path
    split: str
    indices: tuple[int, ...]
    size: tuple[int, int]
    image_format: str
    seed: int  # the split's seed (images) or the sequence's world seed
    sequence_length: int  # 0: independent images
    domain: Domain
    speed: float | None = None  # sequences: metres per frame (None: drawn per world)


def _save_pair(
    out: Path, split: str, stem: str, image: np.ndarray, labels: np.ndarray, image_format: str
) -> None:
    image_path = out / "images" / split / f"{stem}.{image_format}"
    label_path = out / "labels" / split / f"{stem}.png"
    if image_format == "jpg":
        Image.fromarray(image).save(image_path, format="JPEG", quality=90)
    else:
        Image.fromarray(image).save(image_path, format="PNG", compress_level=1)
    Image.fromarray(labels, mode="L").save(label_path, format="PNG", compress_level=6)


def _stem(job: RenderJob, index: int) -> str:
    return f"frame_{index:06d}" if job.sequence_length else f"street8_{job.split}_{index:06d}"


def _run_job(job: RenderJob) -> list[tuple[str, dict]]:
    """Render and save the job's frames; returns per frame its ``split/stem`` and the shifts it got."""
    done = []
    sequence_world = (
        World(job.seed, job.size, job.sequence_length, job.domain, speed=job.speed)
        if job.sequence_length
        else None
    )
    for i in job.indices:
        if sequence_world is not None:
            world, frame = sequence_world, i
        else:
            world, frame = World(derive_seed(job.seed, job.split, i), job.size, 1, job.domain), 0
        image, labels = world.render(frame)
        stem = _stem(job, i)
        _save_pair(job.out, job.split, stem, image, labels, job.image_format)
        done.append((f"{job.split}/{stem}", world.shift.record()))
    return done


def _contiguous_runs(n: int, runs: int) -> list[tuple[int, ...]]:
    step = max(1, n // runs)
    return [tuple(range(start, min(n, start + step))) for start in range(0, n, step)]


def _remove_stale_files(
    image_dir: Path, label_dir: Path, prefix: str, count: int, image_format: str
) -> None:
    """Files of an earlier run that this one would not write (more images, or the other format)."""
    keep = {f"{prefix}{i:06d}" for i in range(count)}
    for folder, suffixes in ((image_dir, (".png", ".jpg")), (label_dir, (".png",))):
        for p in folder.iterdir():
            if (
                p.name.startswith(prefix)
                and p.suffix in suffixes
                and (p.stem not in keep or (folder is image_dir and p.suffix != "." + image_format))
            ):
                p.unlink()


def generate_dataset(
    out: Path,
    size: tuple[int, int],
    splits: dict[str, int],
    seed: int,
    sequence: int | None = None,
    workers: int = 2,
    image_format: str = "png",
    domain: str | Domain = "street8",
    speed: float | None = None,
) -> dict[str, int]:
    """Write a street8 data set in the folder layout.

    ``<out>/images/<split>/<stem>.<png|jpg>``, ``<out>/labels/<split>/<stem>.png`` (8-bit L, pixel = class
    id, 255 unlabeled) and ``<out>/classes.json``.  Stems are ``street8_<split>_<index:06d>``; with
    ``sequence=N`` one split (``seq``, or the single split named in ``splits``) of N consecutive frames
    ``frame_000000``.. from :func:`render_sequence`.  Every image's seed derives from (seed, split,
    index), so the output does not depend on ``workers``.  Re-running overwrites (files of an earlier
    run that the new one would not write are removed).

    ``domain`` (a name from :data:`DOMAINS` or a :class:`Domain`): anything but street8 also writes
    ``<out>/domain.json`` (the preset, and per image the shifts it got, e.g. ``"cases": ["fog",
    "camera"]``); street8 writes exactly what it always did.  Returns how many images got each case.

    ``speed`` (sequences only): the camera's metres per frame instead of the world's own draw
    (0.35-1.1), e.g. 2.5 for a fast camera whose frames share less.
    """
    from tqdm import tqdm

    out = Path(out)
    dom = get_domain(domain)
    height, width = check_size(size)
    fmt = image_format.lower().lstrip(".")
    if fmt == "jpeg":
        fmt = "jpg"
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    workers = max(1, int(workers))
    jobs: list[RenderJob] = []
    if speed is not None and (sequence is None or not speed >= 0):
        raise ValueError(
            "speed applies to sequences only, in metres per frame, 0 (a parked camera) or more"
        )
    if sequence is not None:
        if len(splits) > 1:
            raise ValueError("sequence mode writes a single split; give at most one split name")
        name = next(iter(splits)) if splits else "seq"
        n = int(sequence)
        if n < 1:
            raise ValueError("sequence must be >= 1")
        plan = {name: n}
        world_seed = derive_seed(seed, name, 0)
        # one run per worker call; a few runs per worker keep the workers busy to the end
        runs = 1 if workers == 1 else workers * 4
        jobs = [
            RenderJob(out, name, run, (height, width), fmt, world_seed, n, dom, speed)
            for run in _contiguous_runs(n, runs)
        ]
        prefix = {name: "frame_"}
    else:
        plan = {k: int(v) for k, v in splits.items()}
        for name, count in plan.items():
            if count < 0:
                raise ValueError(f"split {name!r}: negative count")
            jobs += [
                RenderJob(out, name, (i,), (height, width), fmt, seed, 0, dom) for i in range(count)
            ]
        prefix = {name: f"street8_{name}_" for name in plan}
    out.mkdir(parents=True, exist_ok=True)
    for name, count in plan.items():
        image_dir, label_dir = out / "images" / name, out / "labels" / name
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_files(image_dir, label_dir, prefix[name], count, fmt)
    write_classes_json(out / "classes.json", STREET8)
    meta = out / "domain.json"
    meta.unlink(missing_ok=True)  # a stale one from a shifted run would mislabel this set
    texture_bank()  # built once in the parent: forked workers share it
    records: dict[str, dict] = {}
    total = sum(len(j.indices) for j in jobs)
    desc = f"street8{'' if dom.is_street8 else '/' + dom.name} -> {out}"
    bar = tqdm(total=total, desc=desc, unit="img", disable=total == 0)
    try:
        if workers == 1 or len(jobs) <= 1:
            for done in map(_run_job, jobs):
                records.update(done)
                bar.update(len(done))
        else:
            with mp.get_context().Pool(workers) as pool:
                for done in pool.imap_unordered(
                    _run_job, jobs, chunksize=1 if sequence is not None else 4
                ):
                    records.update(done)
                    bar.update(len(done))
    finally:
        bar.close()
    counts: dict[str, int] = {}
    # in job order, not completion order: the same domain.json whatever the number of workers
    for rec in (records[f"{j.split}/{_stem(j, i)}"] for j in jobs for i in j.indices):
        for c in rec["cases"]:
            counts[c] = counts.get(c, 0) + 1
    if not dom.is_street8:
        meta.write_text(
            json.dumps(
                {
                    "domain": dom.name,
                    "seed": int(seed),
                    "size": [height, width],
                    "preset": asdict(dom),
                    "cases": counts,
                    "images": {k: records[k] for k in sorted(records)},
                },
                indent=1,
            )
            + "\n"
        )
    return counts
