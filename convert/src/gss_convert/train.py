"""Two-stage GSS-edge training and the discriminative baseline.

Stage 1 fits the maskige VQ-VAE (posterior). Stage 2 fits the prior to predict the posterior's
tokens from the image, with targets encoded on the fly from maskiges whose unlabeled pixels are
filled by the prior's own auxiliary head. The baseline trains the same backbone and head as a
per-pixel classifier on the same data and schedule.

Every checkpoint carries the full config, the palette and the class list, so evaluation and export
need nothing else; `*_last.pt` files carry optimizer and RNG state for `--resume`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from .augment import RandomBatcher
from .config import Config, StageConfig, config_from_dict
from .data.classes import IGNORE_INDEX, ClassInfo
from .data.datasets import load_all, open_dataset
from .maskige import Palette, fill_ignore_nearest, labels_to_maskige_tensor, max_distance_palette
from .models import VQVAE, PixelBaseline, Prior
from .resize import resize_image_torch
from .utils import autocast, grad_scaler, log, set_seed

STAGES = ("stage1", "stage2", "baseline")
CKPT_NAMES = {"stage1": "vqvae.pt", "stage2": "prior.pt", "baseline": "baseline.pt"}


@dataclass
class RunPaths:
    root: Path

    def final(self, stage: str) -> Path:
        return self.root / CKPT_NAMES[stage]

    def last(self, stage: str) -> Path:
        return self.root / CKPT_NAMES[stage].replace(".pt", "_last.pt")


def lr_factor(it: int, cfg: StageConfig) -> float:
    """Linear warmup, then polynomial decay to zero at `iters`."""
    if it < cfg.warmup_iters:
        return (it + 1) / cfg.warmup_iters
    progress = (it - cfg.warmup_iters) / max(1, cfg.iters - cfg.warmup_iters)
    return max(0.0, 1.0 - progress) ** cfg.poly_power


def class_weights(labels: list[np.ndarray], num_classes: int, power: float) -> torch.Tensor:
    """frequency^-power, normalised to mean 1: thin classes (poles, people) are not drowned out."""
    counts = np.zeros(num_classes, np.float64)
    for lab in labels:
        counts += np.bincount(lab.ravel(), minlength=256)[:num_classes]
    freq = counts / max(1.0, counts.sum())
    w = np.maximum(freq, 1e-4) ** -power
    return torch.tensor(w / w.mean(), dtype=torch.float32)


def _save(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


def load_checkpoint(path: Path) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found; train it first (gss-convert train)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise ValueError(f"{path}: not a readable gss_convert checkpoint ({e})") from None
    if not isinstance(ckpt, dict) or "stage" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path}: not a gss_convert checkpoint (no stage/config)")
    return ckpt


def build_vqvae(ckpt: dict) -> VQVAE:
    cfg = config_from_dict(ckpt["config"])
    model = VQVAE(cfg.vqvae)
    model.load_state_dict(ckpt["vqvae"] if "vqvae" in ckpt else ckpt["model"])
    return model.eval()


def build_prior(ckpt: dict) -> Prior:
    cfg = config_from_dict(ckpt["config"])
    cfg.prior.pretrained = False  # the checkpoint carries the weights
    model = Prior(cfg.prior, cfg.vqvae.codebook_size, len(ckpt["classes"]))
    model.load_state_dict(ckpt["model"])
    return model.eval()


def build_baseline(ckpt: dict) -> PixelBaseline:
    cfg = config_from_dict(ckpt["config"])
    cfg.prior.pretrained = False
    model = PixelBaseline(cfg.prior, len(ckpt["classes"]))
    model.load_state_dict(ckpt["model"])
    return model.eval()


class Trainer:
    """Runs one stage: data, model, optimiser, schedule, checkpoints and resume."""

    def __init__(self, cfg: Config, data_root: Path, out: Path, device: torch.device,
                 resume: bool = False, max_train: int | None = None, decoder_from: Path | None = None):
        self.cfg, self.data_root, self.device, self.resume = cfg, Path(data_root), device, resume
        # A package whose decoder and codebook stage 1 keeps frozen, training only a new encoder:
        # a new prior then runs with that package's decoder unchanged (same tokens, same maskiges).
        self.decoder_from = Path(decoder_from) if decoder_from else None
        self.paths = RunPaths(Path(out))
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.max_train = max_train
        self._train = None

    def train_samples(self):
        if self._train is None:
            ds = open_dataset(self.data_root, "train")
            self.classes: list[ClassInfo] = ds.classes
            log.info("loading %s train split (%d images)", self.data_root, len(ds))
            self._train = load_all(ds, self.max_train)
        return self._train

    # ---------------------------------------------------------------- shared loop

    def _loop(self, stage: str, model: nn.Module, batcher: RandomBatcher, step_fn, extra: dict) -> dict:
        scfg: StageConfig = getattr(self.cfg, stage)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=scfg.lr, weight_decay=scfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(it, scfg))
        scaler = grad_scaler(self.device)
        start, elapsed = 0, 0.0
        last = self.paths.last(stage)
        if self.resume and last.is_file():
            ck = load_checkpoint(last)
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            batcher.set_state(ck["batcher_rng"])
            torch.set_rng_state(ck["torch_rng"])
            start, elapsed = ck["iter"], ck["train_seconds"]
            log.info("%s: resuming from %s at iteration %d", stage, last, start)
        model.to(self.device).train()
        t0 = time.perf_counter() - elapsed
        running: dict[str, float] = {}
        bar = tqdm(range(start, scfg.iters), desc=stage, initial=start, total=scfg.iters, dynamic_ncols=True,
                   disable=None)  # no bar when logging to a file: the log lines carry progress

        def payload(it: int) -> dict:
            return {"stage": stage, "config": self.cfg.to_dict(), "model": model.state_dict(),
                    "classes": [c.__dict__ for c in self.classes], "iter": it,
                    "train_seconds": time.perf_counter() - t0, **extra}

        for it in bar:
            images, labels = batcher.next()
            with autocast(self.device):
                losses = step_fn(images, labels)
            total = sum(losses.values())
            if not torch.isfinite(total):
                raise FloatingPointError(f"{stage}: loss became {total.item()} at iteration {it}; "
                                         "lower the learning rate")
            opt.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            for k, v in losses.items():
                v = v.item()
                running[k] = running.get(k, v) * 0.9 + v * 0.1
            if (it + 1) % scfg.log_every == 0 or it + 1 == scfg.iters:
                msg = " ".join(f"{k}={v:.4f}" for k, v in running.items())
                bar.set_postfix_str(msg)
                log.info("%s it %d/%d lr %.2e %s", stage, it + 1, scfg.iters, sched.get_last_lr()[0], msg)
            if (it + 1) % scfg.ckpt_every == 0 and it + 1 < scfg.iters:
                p = payload(it + 1)
                p.update(optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                         batcher_rng=batcher.state(), torch_rng=torch.get_rng_state())
                _save(last, p)
        bar.close()
        model.eval()
        final = payload(scfg.iters)
        final["model"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        final["final_loss"] = running
        _save(self.paths.final(stage), final)
        last.unlink(missing_ok=True)
        log.info("%s: done in %.1f min -> %s", stage, final["train_seconds"] / 60, self.paths.final(stage))
        return final

    # ---------------------------------------------------------------- stages

    def stage1(self) -> dict:
        samples = self.train_samples()
        set_seed(self.cfg.seed)
        palette = max_distance_palette(len(self.classes))
        log.info("maskige palette (min pairwise RGB distance %.1f): %s", palette.min_distance(),
                 palette.colors.tolist())
        # Unlabeled pixels take the nearest labelled class: the posterior learns complete masks,
        # which is what the prior's filled targets and its predictions look like.
        filled = [fill_ignore_nearest(s.label) for s in tqdm(samples, desc="fill ignore", leave=False)]
        weights = class_weights(filled, len(self.classes), self.cfg.class_weight_power).to(self.device)
        model = VQVAE(self.cfg.vqvae)
        extra: dict = {"palette": palette.to_dict()}
        if self.decoder_from is not None:
            load_package_decoder(model, self.decoder_from, palette)
            extra["decoder_from"] = str(self.decoder_from)
            log.info("stage1: decoder and codebook frozen from %s; training the encoder only", self.decoder_from)
        batcher = RandomBatcher(None, filled, self.cfg.stage1, self.cfg.seed + 1)
        commitment = self.cfg.vqvae.commitment

        def step(_images, labels):
            labels = labels.to(self.device)
            if (labels == IGNORE_INDEX).any():  # only padding can be unlabeled here
                labels = labels.clone()
                labels[labels == IGNORE_INDEX] = 0
            x = labels_to_maskige_tensor(labels, palette)
            recon, _, commit = model(x)
            w = weights[labels][:, None]
            mse = ((recon.float() - x) ** 2 * w).mean()
            return {"recon": mse, "commit": commitment * commit.float()}

        out = self._loop("stage1", model, batcher, step, extra)
        usage = codebook_usage(model, filled[: min(200, len(filled))], palette, self.device)
        log.info("codebook usage on %d train masks: %d of %d codes (%.1f %%), perplexity %.1f",
                 usage["masks"], usage["used"], usage["size"], 100 * usage["used"] / usage["size"],
                 usage["perplexity"])
        out["codebook_usage"] = usage
        _save(self.paths.final("stage1"), out)
        return out

    def stage2(self) -> dict:
        vq_ckpt = load_checkpoint(self.paths.final("stage1"))
        palette = Palette.from_dict(vq_ckpt["palette"])
        vqvae = build_vqvae(vq_ckpt).to(self.device)
        for p in vqvae.parameters():
            p.requires_grad_(False)
        samples = self.train_samples()
        set_seed(self.cfg.seed)
        model = Prior(self.cfg.prior, self.cfg.vqvae.codebook_size, len(self.classes))
        if self.cfg.stage2_init:
            init = load_checkpoint(Path(self.cfg.stage2_init))
            skip = tuple(self.cfg.stage2_init_skip)
            state = {k: v for k, v in init["model"].items() if not (skip and k.startswith(skip))}
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or any(not k.startswith(skip) for k in missing):
                raise ValueError(f"{self.cfg.stage2_init}: does not fit this prior (missing {missing}, "
                                 f"unexpected {unexpected})")
            log.info("stage2: starting from the weights of %s (not taken: %s)", self.cfg.stage2_init,
                     sorted(missing) or "none")
        teacher = Teacher(Path(self.cfg.distill.package)) if self.cfg.distill.package else None
        if teacher is not None:
            log.info("stage2: distilling from %s (weight %.2f, temperature %.1f)", self.cfg.distill.package,
                     self.cfg.distill.weight, self.cfg.distill.temperature)
        batcher = RandomBatcher([s.image for s in samples], [s.label for s in samples],
                                self.cfg.stage2, self.cfg.seed + 2)
        stride = self.cfg.vqvae.downsample
        temp = self.cfg.distill.temperature

        def step(images, labels):
            images, labels = images.to(self.device), labels.to(self.device)
            token_logits, aux = model(images)
            # the aux head's class logits, resized like an image (resize.py) to the crop's labels
            aux_full = resize_image_torch(aux.float(), tuple(labels.shape[-2:]), "stretch")
            aux_loss = F.cross_entropy(aux_full, labels, ignore_index=IGNORE_INDEX)
            with torch.no_grad():
                unlabeled = labels == IGNORE_INDEX
                filled = torch.where(unlabeled, aux_full.argmax(1), labels)
                targets = vqvae.encode(labels_to_maskige_tensor(filled, palette))
                # a cell with no labelled pixel has no ground truth to learn from
                labelled_share = F.avg_pool2d((~unlabeled).float()[:, None], stride)[:, 0]
                targets[labelled_share == 0] = -1
            tok_loss = F.cross_entropy(token_logits.float(), targets, ignore_index=-1)
            losses = {"token_ce": tok_loss, "aux_ce": self.cfg.aux_weight * aux_loss}
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher.logits(images).to(self.device)
                s_log = F.log_softmax(token_logits.float() / temp, dim=1)
                t_prob = F.softmax(t_logits / temp, dim=1)
                kl = (t_prob * (torch.log(t_prob.clamp_min(1e-8)) - s_log)).sum(1).mean()
                losses["distill_kl"] = self.cfg.distill.weight * temp * temp * kl
            return losses

        return self._loop("stage2", model, batcher, step,
                          {"palette": palette.to_dict(), "vqvae": vqvae.state_dict()})

    def baseline(self) -> dict:
        samples = self.train_samples()
        set_seed(self.cfg.seed)
        model = PixelBaseline(self.cfg.prior, len(self.classes))
        batcher = RandomBatcher([s.image for s in samples], [s.label for s in samples],
                                self.cfg.baseline, self.cfg.seed + 3)

        def step(images, labels):
            logits = model(images.to(self.device))
            return {"ce": F.cross_entropy(logits.float(), labels.to(self.device), ignore_index=IGNORE_INDEX)}

        return self._loop("baseline", model, batcher, step, {})

    def run(self, stage: str) -> dict:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage}; expected one of {STAGES}")
        final = self.paths.final(stage)
        if self.resume and final.is_file():
            log.info("%s: %s exists, nothing to resume (delete it to retrain)", stage, final)
            return load_checkpoint(final)
        return getattr(self, stage)()


class Teacher:
    """An exported prior run by onnxruntime on training crops: the package's prior graph with its
    ArgMax (if any) removed, so it returns token logits. Its graph has static shapes, so a crop
    smaller than its input is padded (at the mean colour, i.e. zero after normalisation) to its
    size and the logits of the crop's cells are kept; the batch runs image by image."""

    def __init__(self, package: Path):
        import json

        import onnx
        import onnxruntime as ort

        manifest = json.loads((package / "model.json").read_text())
        model = onnx.load(str(package / manifest["prior"]["file"]))
        g = model.graph
        self.size = (manifest["input"]["height"], manifest["input"]["width"])
        self.stride = manifest["decoder"]["upsample"]
        argmax = [n for n in g.node if n.op_type == "ArgMax"]
        if argmax:
            logits = argmax[-1].input[0]
            g.node.remove(argmax[-1])
            del g.output[:]
            g.output.append(onnx.helper.make_tensor_value_info(logits, onnx.TensorProto.FLOAT, None))
        self.input = g.input[0].name
        self.mean = np.array(manifest["input"]["mean"], np.float32).reshape(1, 3, 1, 1)
        self.std = np.array(manifest["input"]["std"], np.float32).reshape(1, 3, 1, 1)
        opts = ort.SessionOptions()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.detach().cpu().numpy().astype(np.float32) - self.mean) / self.std
        n, _, h, w = x.shape
        (th, tw), s = self.size, self.stride
        if h > th or w > tw or h % s or w % s:
            raise ValueError(f"distillation: crop {h}x{w} does not fit the teacher's {th}x{tw} input "
                             f"in whole {s}-pixel cells; use a smaller stage2.crop")
        canvas = np.zeros((1, 3, th, tw), np.float32)
        out = []
        for i in range(n):
            canvas[:, :, :h, :w] = x[i : i + 1]
            out.append(self.session.run(None, {self.input: canvas})[0][:, :, : h // s, : w // s])
        return torch.from_numpy(np.concatenate(out))


def load_package_decoder(model: VQVAE, package: Path, palette: Palette) -> None:
    """Copies a package's decoder.onnx weights (codebook gather + convs) into `model` and freezes
    them, after checking that the package's maskige palette and sizes are the ones trained here."""
    import json

    import onnx
    from onnx import numpy_helper

    manifest_path = Path(package) / "model.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{package}: no model.json; --decoder-from takes a model package folder")
    manifest = json.loads(manifest_path.read_text())
    if [list(c) for c in manifest["maskige"]["palette"]] != palette.colors.tolist():
        raise ValueError(f"{package}: its maskige palette {manifest['maskige']['palette']} differs from this "
                         f"dataset's {palette.colors.tolist()}; the decoder cannot be reused")
    graph = onnx.load(str(Path(package) / manifest["decoder"]["file"])).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    want = {f"decoder.{k}": v for k, v in model.decoder.state_dict().items()}
    want["embed"] = model.quantizer.embed
    missing = sorted(k for k in want if k not in weights)
    wrong = sorted(k for k in want if k in weights and weights[k].shape != want[k].shape)
    if missing or wrong:
        raise ValueError(f"{package}: decoder does not match vqvae config: missing {missing}, "
                         f"wrong shapes {[(k, tuple(weights[k].shape), tuple(want[k].shape)) for k in wrong]}")
    model.decoder.load_state_dict({k[len("decoder."):]: weights[k] for k in want if k != "embed"})
    q = model.quantizer
    q.embed.copy_(weights["embed"])
    q.embed_sum.copy_(weights["embed"])
    q.frozen = True
    for p in model.decoder.parameters():
        p.requires_grad_(False)


@torch.no_grad()
def codebook_usage(model: VQVAE, labels: list[np.ndarray], palette: Palette, device: torch.device) -> dict:
    counts = torch.zeros(model.cfg.codebook_size, dtype=torch.long)
    model.eval()
    for lab in labels:
        x = labels_to_maskige_tensor(torch.from_numpy(lab).long()[None].to(device), palette)
        idx = model.encode(x).cpu()
        counts += torch.bincount(idx.ravel(), minlength=model.cfg.codebook_size)
    p = counts.float() / counts.sum()
    nz = p[p > 0]
    return {"masks": len(labels), "used": int((counts > 0).sum()), "size": model.cfg.codebook_size,
            "perplexity": float(torch.exp(-(nz * nz.log()).sum()))}


__all__ = ["Trainer", "STAGES", "load_checkpoint", "build_vqvae", "build_prior", "build_baseline",
           "lr_factor", "codebook_usage"]
