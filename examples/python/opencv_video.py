"""A video file or a USB camera through OpenCV, segmented by gss frame by frame, with the
overlay shown in a window or written to a video file.

    pip install opencv-python
    python examples/python/opencv_video.py clip.mp4 --write overlay.mp4
    python examples/python/opencv_video.py /dev/video0          # a window; q quits

OpenCV hands out BGR frames: they go to gss as they are (channel_order="BGR", no copy, no
conversion), and the overlay comes back in BGR for OpenCV to show or write.
"""

from __future__ import annotations

import argparse
import time

import gss


def open_capture(source: str):  # -> cv2.VideoCapture
    import cv2  # imported here so that this file imports without OpenCV installed

    device = source.removeprefix("/dev/video")
    capture = cv2.VideoCapture(int(device) if device.isdigit() else source)
    if not capture.isOpened():
        raise SystemExit(f"{source}: OpenCV cannot open it (a video file, or /dev/videoN)")
    return capture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a video file, or a camera such as /dev/video0")
    parser.add_argument("--write", metavar="FILE.mp4", help="write the overlays here")
    parser.add_argument("--model", help="model package directory (default: the bundled one)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: every core)")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames")
    args = parser.parse_args()

    import cv2

    gss.configure()  # the process-wide settings the gss command applies (see its docstring)
    segmenter = gss.Segmenter(args.model, threads=args.threads)
    capture = open_capture(args.source)
    writer = None
    frames, started = 0, time.perf_counter()
    try:
        while args.max_frames == 0 or frames < args.max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            result = segmenter.segment(frame, channel_order="BGR")
            picture = gss.overlay(frame, result.classes, segmenter.colors, channel_order="BGR")
            frames += 1
            if args.write:
                if writer is None:
                    fps = capture.get(cv2.CAP_PROP_FPS) or 15.0
                    height, width = picture.shape[:2]
                    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                    writer = cv2.VideoWriter(args.write, fourcc, fps, (width, height))
                writer.write(picture)
            else:
                cv2.imshow("gss", picture)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        cv2.destroyAllWindows()
    seconds = time.perf_counter() - started
    print(f"{frames} frames in {seconds:.1f} s ({frames / max(seconds, 1e-9):.1f} fps)")


if __name__ == "__main__":
    main()
