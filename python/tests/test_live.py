"""Live mode: push never blocks, a slow callback loses frames (counted), every result carries
its own frame's timestamp, and closing ends gss's threads."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import gss
import numpy as np
import pytest
from conftest import load_rgb

STAGE_THREADS = ("gss-callback", "gss-capture", "gss-segment", "gss-encode", "gss-decode",
                 "gss-publish")  # fmt: skip


def gss_threads() -> list:
    """Names of this process's threads that gss started (Linux: /proc/self/task)."""
    names = []
    for comm in Path("/proc/self/task").glob("*/comm"):
        try:
            names.append(comm.read_text().strip())
        except OSError:
            pass  # the thread ended meanwhile
    return [n for n in names if n in STAGE_THREADS]


@pytest.fixture(scope="module")
def frames(clip_frames: list, frame_640: Path) -> list:
    return [load_rgb(p) for p in clip_frames] + [load_rgb(frame_640)]


def test_a_slow_callback_loses_frames_counted_and_push_never_waits(
    segmenter: gss.Segmenter, frames: list
) -> None:
    want = [segmenter.segment(f).classes for f in frames]
    got = []
    calls = threading.Event()

    def slow(result: gss.SegmentResult) -> None:
        got.append((result.timestamp_ns, result.classes, threading.current_thread().name))
        calls.set()
        time.sleep(0.3)

    live = gss.LiveSegmenter(slow, threads=1)
    slowest_push = 0.0
    pushed = 40
    for i in range(pushed):
        frame = frames[i % len(frames)]
        start = time.perf_counter()
        live.push(frame, timestamp_ns=1_000_000 * i + 7)
        slowest_push = max(slowest_push, time.perf_counter() - start)
        time.sleep(0.01)
    assert calls.wait(30), "no result reached the callback"
    live.close()
    stats = live.stats

    # A push that waited for the callback (0.3 s a result) would take that long at least.
    assert slowest_push < 0.15, f"a push took {slowest_push * 1e3:.0f} ms"
    assert stats["pushed"] == pushed
    assert stats["dropped"] > 0 and live.dropped == stats["dropped"]
    assert stats["delivered"] == len(got) > 0
    ended = stats["dropped"] + stats["delivered"] + stats["failed"] + stats["callback_errors"]
    assert ended == pushed, stats
    # Each result is its own frame's, under its own timestamp, in push order.
    stamps = [ts for ts, _, _ in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    for ts, classes, _ in got:
        i = (ts - 7) // 1_000_000
        assert ts == 1_000_000 * i + 7
        assert np.array_equal(classes, want[i % len(frames)]), f"result {ts}"
    assert all(name != threading.main_thread().name for _, _, name in got)


def test_closing_ends_the_threads_and_refuses_more_frames(frames: list) -> None:
    results = []
    with gss.LiveSegmenter(results.append, threads=1, mode="pipelined") as live:
        assert live.running
        # A new thread names itself once it runs: give them a moment.
        deadline = time.monotonic() + 10
        want = {"gss-callback", "gss-capture", "gss-encode", "gss-decode", "gss-publish"}
        while not want <= set(gss_threads()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert want <= set(gss_threads())
        live.push(frames[0], 1)
    assert not live.running
    assert gss_threads() == []
    assert [r.timestamp_ns for r in results] == [1], "the frame in flight is delivered"
    assert results[0].classes.shape == frames[0].shape[:2]
    with pytest.raises(RuntimeError, match="closed"):
        live.push(frames[0], 2)
    live.close()  # a second close does nothing


def test_a_callback_that_raises_does_not_stop_the_stream(
    frames: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, reported = [], []

    def failing(result: gss.SegmentResult) -> None:
        seen.append(result.timestamp_ns)
        raise KeyError("from the callback")

    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    live = gss.LiveSegmenter(failing, threads=1)
    for ts in range(3):
        live.push(frames[0], ts)
        deadline = time.monotonic() + 30
        while len(seen) <= ts and time.monotonic() < deadline:
            time.sleep(0.01)
    live.close()
    assert seen == [0, 1, 2]
    assert live.stats["callback_errors"] == 3
    assert [type(r.exc_value) for r in reported] == [KeyError] * 3


def test_live_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="callable"):
        gss.LiveSegmenter(42)
    with pytest.raises(ValueError, match="mode"):
        gss.LiveSegmenter(print, mode="turbo")
    live = gss.LiveSegmenter(print, threads=1)
    try:
        with pytest.raises(TypeError, match="uint8"):
            live.push(np.zeros((8, 8, 3), np.float64), 0)
        with pytest.raises(OverflowError):
            live.push(np.zeros((8, 8, 3), np.uint8), -1)
    finally:
        live.close()
