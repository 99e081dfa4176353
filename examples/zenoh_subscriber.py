#!/usr/bin/env python3
"""Reads the class maps `gss stream --zenoh KEY` publishes (format gss-mask/1, see README
"Masks over zenoh"): the classes from KEY/meta, then each frame's seq, shape and class shares.

    pip install 'eclipse-zenoh==1.10.*'
    gss stream --zenoh gss/masks --zenoh-listen tcp/127.0.0.1:7447 &
    python examples/zenoh_subscriber.py --connect tcp/127.0.0.1:7447 --key gss/masks --count 10
"""

import argparse
import json
import struct
import sys
import time

import zenoh

HEADER = struct.Struct(
    "<4sBBHIIQQ"
)  # magic, version, format, reserved, width, height, seq, source index


def parse_frame(payload: bytes):
    """(width, height, seq, source_index, class ids) of a gss-mask/1 payload."""
    magic, version, fmt, _, width, height, seq, source_index = HEADER.unpack_from(payload)
    if magic != b"GSSM" or version != 1 or fmt != 0:
        raise ValueError("not a gss-mask/1 frame")
    pixels = payload[HEADER.size :]
    if len(pixels) != width * height:
        raise ValueError(f"{len(pixels)} pixels for a {width}x{height} frame")
    return width, height, seq, source_index, pixels


def class_shares(pixels: bytes, names: dict) -> dict:
    """Share of the frame (in %) each class covers, largest first."""
    counts = {}
    for value in set(pixels):
        counts[names.get(value, "unlabeled" if value == 255 else str(value))] = (
            pixels.count(value) * 100.0 / len(pixels)
        )
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--connect",
        default="tcp/127.0.0.1:7447",
        help="zenoh locator of gss or a router",
    )
    parser.add_argument("--key", default="gss/masks")
    parser.add_argument("--count", type=int, default=10, help="frames to print before exiting")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for them at most"
    )
    args = parser.parse_args()

    config = zenoh.Config()
    config.insert_json5("mode", '"peer"')
    config.insert_json5("connect/endpoints", json.dumps([args.connect]))
    config.insert_json5("scouting/multicast/enabled", "false")
    deadline = time.monotonic() + args.timeout
    with zenoh.open(config) as session:
        frames = session.declare_subscriber(args.key)
        # The first frame names its publisher (the attachment's zid); the meta is taken from that
        # session's queryable only, never from whichever peer answers KEY/meta first.
        first = None
        while first is None and time.monotonic() < deadline:
            first = frames.try_recv()
            if first is None:
                time.sleep(0.01)
        if first is None:
            print(f"no frame on {args.key} within {args.timeout} s", file=sys.stderr)
            return 1
        publisher = (
            json.loads(first.attachment.to_bytes()).get("zid")
            if first.attachment is not None
            else None
        )
        if publisher is None:
            print(
                f"the frames on {args.key} do not name their publisher (a gss older than this example?)",
                file=sys.stderr,
            )
            return 1
        meta = None
        # The connection may still be coming up: ask again until the deadline.
        while meta is None and time.monotonic() < deadline:
            for reply in session.get(f"{args.key}/meta", timeout=2.0):
                if reply.ok is None:
                    continue
                # replier_id: the replying entity (its session's zid and the queryable's id).
                replier = getattr(reply.replier_id, "zid", None)
                if replier is None or str(replier) != publisher:
                    print(
                        f"ignoring a meta reply from {replier}, not the publisher {publisher}",
                        file=sys.stderr,
                    )
                    continue
                meta = json.loads(reply.ok.payload.to_bytes())
            if meta is None:
                time.sleep(0.2)
        if meta is None:
            print(
                f"no reply on {args.key}/meta from the publisher {publisher} within {args.timeout} s",
                file=sys.stderr,
            )
            return 1
        names = {c["id"]: c["name"] for c in meta["classes"]}
        print(
            f"meta: model {meta['model']}, grid {meta['grid']}, classes {', '.join(names.values())}",
            flush=True,
        )

        printed = 0
        while printed < args.count and time.monotonic() < deadline:
            sample = frames.try_recv()
            if sample is None:
                time.sleep(0.01)
                continue
            width, height, seq, source_index, pixels = parse_frame(sample.payload.to_bytes())
            info = json.loads(sample.attachment.to_bytes()) if sample.attachment is not None else {}
            shares = ", ".join(
                f"{name} {share:.1f}%"
                for name, share in list(class_shares(pixels, names).items())[:4]
            )
            print(
                f"frame seq {seq} source {source_index} shape {height}x{width} "
                f"latency {info.get('latency_ms', float('nan')):.1f} ms: {shares}",
                flush=True,
            )
            printed += 1
        if printed < args.count:
            print(
                f"only {printed} of {args.count} frames within {args.timeout} s",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
