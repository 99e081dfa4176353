"""The GIL is released while the model runs: two threads with a segmenter each run in
parallel on two cores. Asserted loosely (a shared machine is noisy); the speed itself is
measured by scripts/bench-python.py, not here."""

from __future__ import annotations

import os
import threading
import time

import gss
import numpy as np
import pytest

FRAMES = 6


def run(segmenter: gss.Segmenter, frame: np.ndarray, n: int) -> None:
    for _ in range(n):
        segmenter.segment(frame)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_two_threads_run_faster_than_one(clip_frames: list) -> None:
    from conftest import load_rgb

    frame = load_rgb(clip_frames[0])
    a, b = gss.Segmenter(threads=1), gss.Segmenter(threads=1)
    run(a, frame, 2)  # warm both up: caches, allocator, lazy plans
    run(b, frame, 2)

    start = time.perf_counter()
    run(a, frame, 2 * FRAMES)
    one = time.perf_counter() - start

    workers = [threading.Thread(target=run, args=(s, frame, FRAMES)) for s in (a, b)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    two = time.perf_counter() - start
    assert one / two >= 1.3, f"one thread {one:.2f} s, two threads {two:.2f} s"
