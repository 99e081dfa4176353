# Type hints of the extension module (python/src/); the docstrings live there.
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

UNSEEN: int
WGPU: bool

class GssError(Exception): ...
class ModelError(GssError): ...

class ClassInfo:
    id: int
    name: str
    color: tuple[int, int, int]

class Timings:
    preprocess_ms: float
    prior_ms: float
    decoder_ms: float
    inverse_ms: float
    resize_ms: float
    total_ms: float

class SegmentResult:
    classes: np.ndarray
    confidence: np.ndarray | None
    timings: Timings
    timestamp_ns: int | None
    index: int | None
    path: str | None
    latency_ms: float | None
    dropped: int | None
    frame: np.ndarray | None

class ModelInfo:
    @property
    def classes(self) -> list[ClassInfo]: ...
    @property
    def colors(self) -> list[tuple[int, int, int]]: ...

class Segmenter(ModelInfo):
    def __init__(
        self,
        model: str | None = None,
        *,
        threads: int | None = None,
        backend: str = "auto",
        variant: str | None = None,
        fit: str | None = None,
        kernels: str = "auto",
        confidence: bool | None = None,
    ) -> None: ...
    def segment(self, frame: np.ndarray, channel_order: str = "RGB") -> SegmentResult: ...
    @property
    def model(self) -> str: ...
    @property
    def grid(self) -> tuple[int, int]: ...
    @property
    def input_size(self) -> tuple[int, int]: ...
    @property
    def backend(self) -> str | None: ...

class LiveSegmenter(ModelInfo):
    def __init__(
        self,
        callback: Callable[[SegmentResult], Any],
        model: str | None = None,
        *,
        threads: int | None = None,
        backend: str = "auto",
        variant: str | None = None,
        fit: str | None = None,
        kernels: str = "auto",
        confidence: bool | None = None,
        mode: str = "auto",
        frame_size: tuple[int, int] | None = None,
    ) -> None: ...
    def push(self, frame: np.ndarray, timestamp_ns: int, channel_order: str = "RGB") -> None: ...
    @property
    def dropped(self) -> int: ...
    @property
    def stats(self) -> dict[str, int]: ...
    @property
    def running(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> LiveSegmenter: ...
    def __exit__(self, *exc: Any) -> None: ...

class Stream(ModelInfo):
    def __iter__(self) -> Stream: ...
    def __next__(self) -> SegmentResult: ...
    @property
    def stats(self) -> dict[str, int]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Stream: ...
    def __exit__(self, *exc: Any) -> None: ...

def stream(
    source: str,
    model: str | None = None,
    *,
    lossless: bool = True,
    fps: float | None = None,
    frames: bool = False,
    threads: int | None = None,
    backend: str = "auto",
    variant: str | None = None,
    fit: str | None = None,
    kernels: str = "auto",
    confidence: bool | None = None,
    mode: str = "auto",
) -> Stream: ...
def classes(model: str | None = None) -> list[ClassInfo]: ...
def configure() -> str: ...
def overlay(
    frame: np.ndarray,
    classes: np.ndarray,
    colors: Sequence[tuple[int, int, int]],
    channel_order: str = "RGB",
) -> np.ndarray: ...
def _close_all() -> None: ...
