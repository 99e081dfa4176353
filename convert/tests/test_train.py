import json

import numpy as np
import pytest
import torch

from gss_convert.cli import main
from gss_convert.config import load_config
from gss_convert.train import Trainer, lr_factor


def test_lr_schedule_warms_up_then_decays():
    s = load_config("default").stage2
    f = [lr_factor(i, s) for i in range(s.iters)]
    assert f[0] < f[s.warmup_iters - 1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[s.warmup_iters :], f[s.warmup_iters + 1 :]))
    assert f[-1] < 0.01


@pytest.mark.parametrize("stage", ["stage1", "stage2", "baseline"])
def test_a_few_steps_lower_the_loss(tiny_street8, tmp_path, stage):
    cfg = load_config("tiny")
    for s in ("stage1", "stage2", "baseline"):
        getattr(cfg, s).iters = 40
        getattr(cfg, s).scale = (1.0, 1.0)
        getattr(cfg, s).log_every = 1
    torch.manual_seed(0)
    trainer = Trainer(cfg, tiny_street8, tmp_path, torch.device("cpu"))
    if stage == "stage2":
        trainer.run("stage1")
    losses = []
    orig = trainer._loop

    def spy(name, model, batcher, step_fn, extra):
        def recording(images, labels):
            out = step_fn(images, labels)
            losses.append(float(sum(v.item() for v in out.values())))
            return out

        return orig(name, model, batcher, recording, extra)

    trainer._loop = spy
    trainer.run(stage)
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < first, f"{stage}: loss {first:.4f} -> {last:.4f}"


def test_cli_trains_and_evaluates_end_to_end(tiny_street8, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "all",
                "--config",
                "tiny",
                "--data",
                str(tiny_street8),
                "--out",
                str(run),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    for name in ("vqvae.pt", "prior.pt", "baseline.pt", "train.log", "config.yaml"):
        assert (run / name).is_file(), name
    assert (
        main(
            [
                "eval",
                "--run",
                str(run),
                "--data",
                str(tiny_street8),
                "--split",
                "test",
                "--device",
                "cpu",
                "--panels",
                "2",
            ]
        )
        == 0
    )
    report = json.loads((run / "eval-test" / "metrics.json").read_text())
    assert set(report["methods"]) == {"reconstruction", "GSS prior", "discriminative"}
    # every labelled test pixel is counted once per method, and mIoU is the mean of the classes' IoU
    from gss_convert.data.datasets import open_dataset

    test = open_dataset(tiny_street8, "test")
    labelled = sum(int((test[i].label != 255).sum()) for i in range(len(test)))
    for name, m in report["methods"].items():
        assert int(np.sum(m["confusion"])) + int(np.sum(m["pred_out_of_range"])) == labelled, name
        ious = [c["IoU"] for c in m["per_class"].values() if c["IoU"] is not None]
        assert m["mIoU"] == pytest.approx(np.mean(ious), abs=1e-6), name
    assert len(list((run / "eval-test" / "panels").glob("*.png"))) >= 1
    assert "mIoU" in capsys.readouterr().out


def test_cli_reports_missing_checkpoint_clearly(tmp_path, tiny_street8, capsys):
    assert main(["eval", "--run", str(tmp_path / "nothing"), "--data", str(tiny_street8)]) == 2
    assert "train" in capsys.readouterr().err


def test_bad_config_key_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage1: {iterz: 3}\n")
    assert (
        main(
            [
                "train",
                "stage1",
                "--config",
                str(bad),
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "iterz" in err and str(bad) in err


def test_cli_synth_and_check(tmp_path, capsys):
    root = tmp_path / "s8"
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(root),
                "--size",
                "32x64",
                "--split",
                "train=2,test=1",
                "--seed",
                "3",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert len(list((root / "images" / "train").iterdir())) == 2
    assert main(["data", "check", str(root), "--split", "test"]) == 0
    assert "1 samples ok" in capsys.readouterr().out


def test_cli_rejects_bad_size():
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", "x", "--size", "256by512"])


def test_cli_macs_json(capsys):
    assert main(["macs", "--config", "tiny", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["part"] for r in rows} >= {"prior", "decoder"} and all(r["macs"] > 0 for r in rows)


def test_resume_skips_finished_stages(tiny_run, tiny_street8):
    before = (tiny_run / "vqvae.pt").stat().st_mtime_ns
    trainer = Trainer(load_config("tiny"), tiny_street8, tiny_run, torch.device("cpu"), resume=True)
    assert trainer.run("stage1")["stage"] == "stage1"
    assert (tiny_run / "vqvae.pt").stat().st_mtime_ns == before


def test_resume_after_interruption_matches_an_uninterrupted_run(
    tiny_street8, tmp_path, monkeypatch
):
    import gss_convert.train as train_mod

    cfg = load_config("tiny")
    cfg.stage1.iters, cfg.stage1.ckpt_every = 20, 10
    torch.manual_seed(0)
    whole = Trainer(cfg, tiny_street8, tmp_path / "a", torch.device("cpu")).run("stage1")

    class Interrupted(Exception):
        pass

    real_save = train_mod._save

    def save_then_die(path, payload):
        real_save(path, payload)
        if path.name.endswith("_last.pt"):
            raise Interrupted

    monkeypatch.setattr(train_mod, "_save", save_then_die)
    torch.manual_seed(0)
    with pytest.raises(Interrupted):
        Trainer(cfg, tiny_street8, tmp_path / "b", torch.device("cpu")).run("stage1")
    monkeypatch.setattr(train_mod, "_save", real_save)
    resumed = Trainer(cfg, tiny_street8, tmp_path / "b", torch.device("cpu"), resume=True).run(
        "stage1"
    )
    for k, v in whole["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


def test_stage1_with_a_frozen_package_decoder_trains_only_the_encoder(
    tiny_package, tiny_street8, tmp_path
):
    """`--decoder-from`: the package's decoder and codebook are copied and never move."""
    import onnx
    from onnx import numpy_helper

    cfg = load_config("tiny")
    cfg.stage1.iters = 6
    trainer = Trainer(cfg, tiny_street8, tmp_path, torch.device("cpu"), decoder_from=tiny_package)
    ckpt = trainer.run("stage1")
    weights = {
        i.name: numpy_helper.to_array(i)
        for i in onnx.load(str(tiny_package / "decoder.onnx")).graph.initializer
    }
    assert np.array_equal(ckpt["model"]["quantizer.embed"].numpy(), weights["embed"])
    for key, value in ckpt["model"].items():
        if key.startswith("decoder."):
            assert np.array_equal(value.numpy(), weights[key]), key
    assert ckpt["decoder_from"] == str(tiny_package)


def test_stage1_refuses_a_package_with_another_palette(tiny_package, tiny_street8, tmp_path):
    import shutil

    pkg = tmp_path / "pkg"
    shutil.copytree(tiny_package, pkg)
    manifest = json.loads((pkg / "model.json").read_text())
    manifest["maskige"]["palette"][0] = [1, 2, 3]
    (pkg / "model.json").write_text(json.dumps(manifest))
    cfg = load_config("tiny")
    cfg.stage1.iters = 2
    with pytest.raises(ValueError, match="palette"):
        Trainer(cfg, tiny_street8, tmp_path / "run", torch.device("cpu"), decoder_from=pkg).run(
            "stage1"
        )


def test_stage2_distills_from_a_package_and_starts_from_a_checkpoint(
    tiny_run, tiny_package, tiny_street8, tmp_path
):
    """Distillation runs the teacher package on each crop; `stage2_init` takes all weights but the
    skipped ones from an earlier prior."""
    import shutil

    cfg = load_config("tiny")
    cfg.stage2.iters = 4
    cfg.stage2.lr = (
        0.0  # the weights stay where stage2_init put them, so the test can see where that was
    )
    cfg.distill.package = str(tiny_package)
    cfg.stage2_init = str(tiny_run / "prior.pt")
    cfg.stage2_init_skip = ["token_logits."]
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(tiny_run / "vqvae.pt", out / "vqvae.pt")
    ckpt = Trainer(cfg, tiny_street8, out, torch.device("cpu")).run("stage2")
    # the student's token head is new (skipped), so it disagrees with the teacher: KL strictly positive
    assert ckpt["final_loss"]["distill_kl"] > 1e-4
    init = torch.load(tiny_run / "prior.pt", map_location="cpu", weights_only=False)["model"]
    from gss_convert.train import build_prior

    for name, _ in build_prior(ckpt).named_parameters():
        taken = torch.equal(ckpt["model"][name], init[name])
        assert taken != name.startswith("token_logits."), name
    bad = load_config("tiny")
    bad.stage2.iters = 1
    bad.stage2_init = str(tiny_run / "vqvae.pt")  # a VQ-VAE checkpoint is no prior
    (tmp_path / "run2").mkdir()
    shutil.copy(tiny_run / "vqvae.pt", tmp_path / "run2" / "vqvae.pt")
    with pytest.raises(ValueError, match="does not fit"):
        Trainer(bad, tiny_street8, tmp_path / "run2", torch.device("cpu")).run("stage2")
