"""A Raspberry Pi camera through picamera2, segmented live: picamera2's request callback
pushes each frame into a gss.LiveSegmenter, which never holds the camera up (a frame the
model has no time for is dropped and counted), and gss calls back with each class map.

    sudo apt install python3-picamera2      # on Raspberry Pi OS
    python examples/python/picamera2_live.py --seconds 30 --save-every 50 out/

Runs only on a Raspberry Pi with a camera (picamera2 and libcamera); it is linted and
imported by the tests elsewhere, never run there.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import gss
import numpy as np


class Saver:
    """The LiveSegmenter's callback: counts results and saves every Nth class map."""

    def __init__(self, out: Path | None, every: int) -> None:
        self.out, self.every = out, every
        self.results = 0
        self.lock = threading.Lock()

    def __call__(self, result: gss.SegmentResult) -> None:
        with self.lock:
            self.results += 1
            n = self.results
        if self.out is not None and n % self.every == 0:
            # A plain .npy: no image library needed on the Pi.
            np.save(self.out / f"classes_{result.timestamp_ns}.npy", result.classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, help="folder for saved class maps")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--save-every", type=int, default=50)
    parser.add_argument("--size", default="640x480", help="camera frame size, WxH")
    parser.add_argument("--model", help="model package directory (default: the bundled one)")
    args = parser.parse_args()

    from picamera2 import Picamera2  # imported here: this file imports without a Pi

    width, height = (int(v) for v in args.size.split("x"))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    saver = Saver(args.out, args.save_every)

    gss.configure()
    camera = Picamera2()
    # picamera2's "RGB888" is B, G, R in memory: handed over as BGR, no conversion.
    config = camera.create_video_configuration(main={"size": (width, height), "format": "RGB888"})
    camera.configure(config)

    with gss.LiveSegmenter(saver, args.model, frame_size=(width, height)) as live:

        def on_request(request) -> None:  # picamera2's thread: must return quickly
            frame = request.make_array("main")
            live.push(frame, time.monotonic_ns(), channel_order="BGR")

        camera.pre_callback = on_request
        camera.start()
        try:
            time.sleep(args.seconds)
        finally:
            camera.stop()
            camera.pre_callback = None
        stats = live.stats
    print(
        f"{stats['pushed']} frames from the camera, {stats['delivered']} segmented, "
        f"{stats['dropped']} dropped while the model was busy"
    )


if __name__ == "__main__":
    main()
