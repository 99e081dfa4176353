"""`gss stream --zenoh/--ros2` against independent readers: examples/zenoh_subscriber.py (with
eclipse-zenoh) reads the masks and the meta of a real gss process over loopback, and rosbags'
own CDR decoder reads the sensor_msgs/msg/Image it publishes the rmw_zenoh way.

The gss binary must be built with the `zenoh` feature: $GSS_BIN, else the debug build under
$CARGO_TARGET_DIR or target/ (scripts/test.sh builds it before pytest)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

zenoh = pytest.importorskip("zenoh")
typesys = pytest.importorskip("rosbags.typesys")

ROOT = Path(__file__).resolve().parents[2]
IMAGE_KEY = (
    "0/gss/test/classes/sensor_msgs::msg::dds_::Image_/"
    "RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47"
)


def gss_binary() -> Path | None:
    candidates = [os.environ.get("GSS_BIN")]
    candidates += [
        str(Path(d) / "debug" / "gss")
        for d in (os.environ.get("CARGO_TARGET_DIR"), ROOT / "target")
        if d
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gss_stream():
    """A `gss stream` publishing masks on gss/test and ROS 2 images on /gss/test/classes, on a
    loopback port of its own, until the module's tests are done."""
    binary = gss_binary()
    if binary is None:
        pytest.skip("no gss binary: set GSS_BIN or run `cargo build --features zenoh,cli` first")
    port = free_port()
    env = dict(os.environ, GSS_MODEL=str(ROOT / "tests/fixtures/gss-tiny"), RUST_LOG="warn")
    proc = subprocess.Popen(
        [
            str(binary),
            "stream",
            "--dir",
            str(ROOT / "assets/street8-clip/images/seq"),
            "--loop",
            "--fps",
            "20",
            "--save",
            "none",
            "--zenoh",
            "gss/test",
            "--ros2",
            "/gss/test/classes",
            "--ros2-frame-id",
            "cam",
            "--zenoh-listen",
            f"tcp/127.0.0.1:{port}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.2)
        if proc.poll() is not None:
            err = proc.stderr.read()
            if "without the zenoh feature" in err:
                pytest.skip(f"{binary} was built without the zenoh feature")
            pytest.fail(f"gss stream exited: {err}")
        yield f"tcp/127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_example_subscriber_reads_meta_and_frames(gss_stream):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/zenoh_subscriber.py"),
            "--connect",
            gss_stream,
            "--key",
            "gss/test",
            "--count",
            "3",
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("meta: model gss-tiny"), lines
    assert "road" in lines[0] and "sky" in lines[0]
    frames = [row for row in lines if row.startswith("frame seq")]
    assert len(frames) == 3, lines
    seqs = [int(row.split()[2]) for row in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    for line in frames:
        # the clip's frames are 512 wide, 256 high
        assert "shape 256x512" in line, line
        shares = [
            float(part.split()[-1].rstrip("%")) for part in line.split(": ", 1)[1].split(", ")
        ]
        assert all(0 < s <= 100 for s in shares) and sum(shares) <= 100.01


def test_ros2_image_decodes_with_rosbags(gss_stream):
    config = zenoh.Config()
    config.insert_json5("mode", '"peer"')
    config.insert_json5("connect/endpoints", json.dumps([gss_stream]))
    config.insert_json5("scouting/multicast/enabled", "false")
    store = typesys.get_typestore(typesys.Stores.ROS2_JAZZY)
    with zenoh.open(config) as session:
        sub = session.declare_subscriber(IMAGE_KEY)
        samples = []
        deadline = time.monotonic() + 60
        while len(samples) < 2 and time.monotonic() < deadline:
            sample = sub.try_recv()
            if sample is None:
                time.sleep(0.01)
            else:
                samples.append((sample.payload.to_bytes(), sample.attachment.to_bytes()))
    assert len(samples) == 2, "no ROS 2 images within 60 s"
    seqs = []
    for payload, attachment in samples:
        msg = store.deserialize_cdr(payload, "sensor_msgs/msg/Image")
        assert (msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian) == (
            256,
            512,
            "mono8",
            512,
            0,
        )
        assert msg.header.frame_id == "cam"
        assert msg.header.stamp.sec > 1_600_000_000
        assert len(msg.data) == 256 * 512 and max(msg.data) < 8
        # rmw_zenoh's attachment: sequence number, source timestamp (ns), GID length, GID
        assert len(attachment) == 33 and attachment[16] == 16
        seq = int.from_bytes(attachment[:8], "little", signed=True)
        stamp_ns = int.from_bytes(attachment[8:16], "little", signed=True)
        assert stamp_ns == msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        seqs.append(seq)
    assert seqs[0] < seqs[1]
