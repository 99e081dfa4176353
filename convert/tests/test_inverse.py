"""GSS-FT (a trained X⁻¹) and the class-map ONNX path (export-baseline, eval-onnx); seconds each."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from gss_convert.cli import main
from gss_convert.inverse import InverseConfig, NearestInverse, TrainedInverse, palette_in_range
from gss_convert.manifest import check_package, validate_manifest
from gss_convert.maskige import Palette, maskige_tensor_to_labels
from gss_convert.onnxeval import eval_onnx
from gss_convert.runtime import OnnxSegmenter

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_untrained_inverse_is_the_nearest_colour():
    manifest = json.loads((FIXTURES / "gss-tiny" / "model.json").read_text())
    palette = palette_in_range(manifest)
    x = torch.rand(2, 3, 16, 24)
    ft = TrainedInverse(palette, InverseConfig(hidden=8, kernel=3))
    ff = Palette(np.array(manifest["maskige"]["palette"], np.uint8), (0, 0, 0))
    assert torch.equal(ft(x).argmax(1), maskige_tensor_to_labels(x, ff))
    assert torch.equal(NearestInverse(palette)(x).argmax(1), maskige_tensor_to_labels(x, ff))


def test_argmax_chain_is_argmax_with_first_index_on_ties():
    from gss_convert.inverse import InverseClasses

    logits = torch.randint(0, 3, (2, 8, 5, 7)).float()  # many ties
    ids = {form: InverseClasses(torch.nn.Identity(), form)(logits) for form in ("chain", "node")}
    assert torch.equal(ids["chain"], logits.argmax(1)) and torch.equal(
        ids["node"], logits.argmax(1)
    )
    assert ids["chain"].dtype == torch.int64 and ids["chain"].shape == (2, 5, 7)


def test_train_inverse_exports_installs_and_runs(tmp_path):
    package = tmp_path / "gss-tiny"
    shutil.copytree(FIXTURES / "gss-tiny", package)
    out = tmp_path / "ft" / "inverse-ft.onnx"
    assert (
        main(
            [
                "train-inverse",
                str(package),
                "--data",
                str(FIXTURES / "street8-tiny"),
                "--split",
                "test",
                "--val-split",
                "",
                "--out",
                str(out),
                "--iters",
                "3",
                "--crop",
                "32",
                "--hidden",
                "4",
                "--install",
                "--cache",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    assert (tmp_path / "cache" / "maskiges-test.npz").is_file()
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["gmac"] > 0 and set(report["mIoU"]["test"]) == {"nearest", "trained"}
    # the graph: maskige f32 [1, 3, H, W] → int64 class ids [1, H, W], the argmax inside (as a chain)
    model = onnx.load(str(out))
    assert {"Greater", "Max", "Where"} <= {n.op_type for n in model.graph.node}
    sess = _session(out)
    assert [i.name for i in sess.get_inputs()] == ["maskige"] and sess.get_outputs()[
        0
    ].name == "classes"
    ids = sess.run(None, {"maskige": np.random.default_rng(0).random((1, 3, 64, 128), np.float32)})[
        0
    ]
    assert ids.shape == (1, 64, 128) and ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < 8
    # fully convolutional: it runs at another size too (the runtime's --fit native)
    from gss_convert.export import _with_input_size

    other = ort.InferenceSession(
        _with_input_size(model, [1, 3, 96, 160]).SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    assert other.run(None, {"maskige": np.zeros((1, 3, 96, 160), np.float32)})[0].shape == (
        1,
        96,
        160,
    )
    # --install: copied into the package, hashed, and a manifest that validates
    manifest = check_package(package)
    validate_manifest(manifest)
    assert manifest["maskige"]["inverse"] == {
        "kind": "onnx",
        "file": "inverse-ft.onnx",
        "input": "maskige",
        "output": "classes",
    }
    assert manifest["files"]["inverse-ft.onnx"]["bytes"] == out.stat().st_size
    assert manifest["cost"]["inverse_gmac"] == report["gmac"]
    assert not (package / "inverse-ft.pt").exists()
    # the Python reference pipeline runs the package's ONNX inverse
    seg = OnnxSegmenter.load(package)
    assert seg.inverse is not None
    _, classes = seg.segment(np.zeros((64, 128, 3), np.uint8))
    assert classes.shape == (64, 128) and classes.dtype == np.uint8
    # `inverse --from FILE --install`: the same graph into another copy, cost taken from FILE.json
    other = tmp_path / "other"
    shutil.copytree(FIXTURES / "gss-tiny", other)
    assert main(["inverse", str(other), "--from", str(out), "--install"]) == 0
    installed = check_package(other)
    assert installed["maskige"]["inverse"] == manifest["maskige"]["inverse"]
    assert installed["cost"]["inverse_gmac"] == report["gmac"]


def test_default_inverse_installs_as_linear_and_every_side_agrees(tmp_path):
    from gss_convert.export import export_onnx, inverse_entry
    from gss_convert.inverse import InverseClasses

    manifest = json.loads((FIXTURES / "gss-tiny" / "model.json").read_text())
    torch.manual_seed(3)
    ft = TrainedInverse(palette_in_range(manifest), InverseConfig())
    with torch.no_grad():  # move the planes off nearest colour, as training would
        ft.palette.weight.add_(torch.randn_like(ft.palette.weight))
        ft.palette.bias.add_(torch.randn_like(ft.palette.bias))
    graph = tmp_path / "ft.onnx"
    export_onnx(
        InverseClasses(ft),
        torch.zeros(1, 3, 16, 24),
        graph,
        "maskige",
        "classes",
        spatial_axes=(2, 3),
    )
    entry = inverse_entry(graph)
    assert entry["kind"] == "linear" and len(entry["weight"]) == len(entry["bias"]) == 8
    assert inverse_entry(graph, "onnx")["kind"] == "onnx"
    # installed: weights in model.json, no file; the reference pipeline's X⁻¹ equals the graph's
    package = tmp_path / "pkg"
    shutil.copytree(FIXTURES / "gss-tiny", package)
    assert main(["inverse", str(package), "--from", str(graph), "--install"]) == 0
    installed = check_package(package)
    assert installed["maskige"]["inverse"] == entry and not (package / "ft.onnx").exists()
    seg = OnnxSegmenter.load(package)
    x = np.random.default_rng(1).random((1, 3, 16, 24), np.float32)
    want = _session(graph).run(None, {"maskige": x})[0][0]
    assert (seg.classes_of(x) == want).mean() > 0.999
    assert np.array_equal(ft(torch.from_numpy(x)).argmax(1)[0].numpy(), want)
    # a network with a branch is not linear: auto keeps the graph, --kind linear refuses it
    branch = tmp_path / "branch.onnx"
    export_onnx(
        InverseClasses(TrainedInverse(palette_in_range(manifest), InverseConfig(hidden=4))),
        torch.zeros(1, 3, 16, 24),
        branch,
        "maskige",
        "classes",
        spatial_axes=(2, 3),
    )
    assert inverse_entry(branch)["kind"] == "onnx"
    with pytest.raises(ValueError, match="--kind onnx"):
        inverse_entry(branch, "linear")


def test_baseline_export_and_eval_onnx(tiny_street8, tmp_path):
    from gss_convert.config import load_config
    from gss_convert.evaluate import Predictors
    from gss_convert.train import Trainer

    cfg = load_config("tiny")
    cfg.baseline.iters = 3
    torch.manual_seed(0)
    Trainer(cfg, tiny_street8, tmp_path / "run", torch.device("cpu")).run("baseline")
    out = tmp_path / "baseline.onnx"
    assert main(["export-baseline", str(tmp_path / "run"), "--out", str(out)]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["input_size"] == [64, 128] and info["gmac"] > 0
    sess = _session(out)
    ids = sess.run(None, {"image": np.full((1, 3, 64, 128), 128, np.float32)})[0]
    assert ids.shape == (1, 64, 128) and ids.dtype == np.int64
    # eval-onnx scores the graph as PyTorch's baseline scores itself (same resize, same metric)
    report = eval_onnx(out, tiny_street8, "test", progress=False)
    pred = Predictors.from_run(tmp_path / "run", torch.device("cpu"))
    from gss_convert.data.datasets import open_dataset
    from gss_convert.metrics import ConfusionMatrix

    cm = ConfusionMatrix(8)
    for s in open_dataset(tiny_street8, "test"):
        img = torch.from_numpy(s.image).permute(2, 0, 1)[None].float()
        cm.update(pred.discriminative(img)[0].numpy().astype(np.uint8), s.label)
    assert abs(report["mIoU"] - cm.miou()) < 0.5 and report["images"] == 3
    assert (
        main(["eval-onnx", str(out), "--data", str(tiny_street8), "--split", "test", "--json"]) == 0
    )


def test_eval_onnx_on_a_package_matches_the_reference_pipeline():
    package, data = FIXTURES / "gss-tiny", FIXTURES / "street8-tiny"
    report = eval_onnx(package, data, "test", progress=False)
    from gss_convert.data.datasets import open_dataset
    from gss_convert.metrics import ConfusionMatrix

    seg, cm = OnnxSegmenter.load(package), ConfusionMatrix(8)
    for s in open_dataset(data, "test"):
        cm.update(seg.segment(s.image)[1], s.label)
    assert report["mIoU"] == cm.miou() and report["fit"] == "stretch"
    assert set(report) >= {"mIoU", "mAcc", "aAcc", "per_class", "confusion", "images"}


def test_verify_runs_the_installed_inverse_on_both_sides(
    tiny_package, tiny_run, tiny_street8, tmp_path
):
    from gss_convert.verify import verify

    package = tmp_path / "pkg"
    shutil.copytree(tiny_package, package)
    assert (
        main(
            [
                "train-inverse",
                str(package),
                "--data",
                str(tiny_street8),
                "--split",
                "train",
                "--val-split",
                "",
                "--out",
                str(package / "inverse.onnx"),
                "--iters",
                "2",
                "--crop",
                "32",
                "--install",
            ]
        )
        == 0
    )
    assert not (package / "inverse.pt").exists()  # the package holds the graph alone
    r = verify(package, tiny_run, tiny_street8, "test")
    assert r["class_agreement"] >= 99.9 and abs(r["mIoU_pytorch"] - r["mIoU_onnxruntime"]) < 0.5
