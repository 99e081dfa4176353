"""Two-stage GSS-edge training and the discriminative baseline.

Stage 1 fits the maskige VQ-VAE (posterior). Stage 2 fits the prior to predict the posterior's
tokens from the image, with targets encoded on the fly from maskiges whose unlabeled pixels are
filled by the prior's own auxiliary head. The baseline trains the same backbone and head as a
per-pixel classifier on the same data and schedule.

Every checkpoint carries the full config, the palette and the class list, so evaluation and export
need nothing else; `*_last.pt` files carry optimizer and RNG state for `--resume`.

Under torchrun every stage runs as DistributedDataParallel (see `distributed.py`): each rank
augments its slice of the global batch, rank 0 alone logs and writes checkpoints, and the others
receive what rank 0 reads (the stage-1 checkpoint in stage 2, the `*_last.pt` of a resumed run), so
the run directory need only exist on rank 0's machine.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable
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
from .distributed import DistEnv
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


def check_batches(cfg: Config, stages: Iterable[str], dist: DistEnv) -> None:
    """Each stage's batch_size is the global batch: it must split evenly over the ranks. The CLI
    checks before the process group and the data, so a bad torchrun command fails at once."""
    for stage in stages:
        dist.local_batch(getattr(cfg, stage).batch_size, f"{stage}.batch_size")


def global_mean_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, dist: DistEnv
) -> torch.Tensor:
    """Cross-entropy averaged over the labelled pixels of the whole global batch.

    In one process it is F.cross_entropy itself. Under DDP, whose gradient is the mean of the ranks'
    gradients, a per-rank mean would weigh a rank's pixels by 1 / (its own labelled count): unequal
    where unlabeled pixels are unevenly spread over the shards. Rank r's loss is instead its sum
    times W / N (N = labelled pixels over all ranks), so the ranks' mean is the single-process loss
    and gradient. A shard with no labelled pixel adds 0 here, not the 0/0 of a per-rank mean."""
    if not dist.enabled:
        return F.cross_entropy(logits, target, ignore_index=ignore_index)
    labelled = dist.all_reduce_sum((target != ignore_index).sum().float())
    summed = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="sum")
    return summed * (dist.world_size / labelled.clamp_min(1.0))


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

    def __init__(
        self,
        cfg: Config,
        data_root: Path,
        out: Path,
        device: torch.device,
        resume: bool = False,
        max_train: int | None = None,
        decoder_from: Path | None = None,
        dist: DistEnv | None = None,
    ):
        self.cfg, self.data_root, self.device, self.resume = cfg, Path(data_root), device, resume
        # A package whose decoder and codebook stage 1 keeps frozen, training only a new encoder:
        # a new prior then runs with that package's decoder unchanged (same tokens, same maskiges).
        self.decoder_from = Path(decoder_from) if decoder_from else None
        # this process among the training processes (distributed.py); one process by default
        self.dist = dist or DistEnv()
        self.paths = RunPaths(Path(out))
        if self.dist.is_main:  # the only writer
            self.paths.root.mkdir(parents=True, exist_ok=True)
        self.max_train = max_train
        self._train = None
        # per stage, every iteration's losses over the global batch (the same on every rank)
        self.losses: dict[str, list[dict[str, float]]] = {}

    def _read_checkpoint(self, path: Path, required: bool = True) -> dict | None:
        """`load_checkpoint(path)` as rank 0 sees it, on every rank (None: not required and absent).

        Rank 0 reads and broadcasts, so only its machine needs the file, and every rank takes the
        same branch: a file visible on one machine only must not split the ranks' control flow.
        A failure is re-raised on every rank, not left to hang the others in the broadcast."""
        if not self.dist.enabled:
            return load_checkpoint(path) if required or Path(path).is_file() else None
        result: tuple = ("ok", None)
        if self.dist.is_main:
            try:
                result = ("ok", load_checkpoint(path) if required or Path(path).is_file() else None)
            except (FileNotFoundError, ValueError) as e:
                result = ("error", type(e), str(e))
        result = self.dist.broadcast_object(result)
        if result[0] == "error":
            raise result[1](result[2])
        return result[1]

    def _parallel(self, model: nn.Module) -> nn.Module:
        """The module a training step calls: `model` itself in one process, DDP around it otherwise.

        `model` keeps its identity (the loop saves its state_dict, without DDP's "module." prefix).
        BatchNorm: on CUDA the BN layers become SyncBatchNorm, so the statistics are the global
        batch's, as in one process: Cityscapes' 16 crops over 8 GPUs leave 2 per GPU, too few for
        batch statistics. On the CPU (gloo) SyncBatchNorm does not run, so BN stays per rank
        (statistics of the rank's slice; rank 0's running statistics are the ones saved); CPU
        processes are for tests and small runs. The MobileNetV2 backbone keeps its BN in eval
        mode anyway (prior.Backbone.train), so this concerns the head and the dense backbone.
        Frozen parameters (requires_grad False) are left out by DDP, and every trainable one gets
        a gradient at every step, so find_unused_parameters (an extra graph walk per step) stays off.
        Buffers are not broadcast from rank 0 at every forward: the VQ codebook is kept equal by its
        own all-reduce (vqvae.VectorQuantizerEMA), and broadcasting would hide a rank drifting."""
        model.to(self.device)
        if not self.dist.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = None
        if self.device.type == "cuda":
            # replaces the BN children in place (the model itself is no BN layer, so it stays `model`)
            nn.SyncBatchNorm.convert_sync_batchnorm(model)
            ids = [self.device.index]
        # newer PyTorch calls broadcast_buffers forward_sync_buffers; either way the buffers are still
        # synced once at construction, so every rank starts from rank 0's codebook and statistics
        known = inspect.signature(DistributedDataParallel).parameters
        no_forward_sync = {
            "forward_sync_buffers"
            if "forward_sync_buffers" in known
            else "broadcast_buffers": False
        }
        return DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=False, **no_forward_sync
        )

    def _batcher(
        self,
        images: list[np.ndarray] | None,
        labels: list[np.ndarray],
        scfg: StageConfig,
        seed: int,
    ) -> RandomBatcher:
        # The same seed on every rank: each draws the whole global batch and augments its own slice
        # (augment.RandomBatcher), so the ranks' shards are disjoint and together one process's batch.
        return RandomBatcher(images, labels, scfg, seed, self.dist.rank, self.dist.world_size)

    def train_samples(self):
        if self._train is None:
            ds = open_dataset(self.data_root, "train")
            self.classes: list[ClassInfo] = ds.classes
            log.info("loading %s train split (%d images)", self.data_root, len(ds))
            self._train = load_all(ds, self.max_train, progress=self.dist.is_main)
        return self._train

    # ---------------------------------------------------------------- shared loop

    def _loop(
        self, stage: str, model: nn.Module, batcher: RandomBatcher, step_fn, extra: dict
    ) -> dict:
        scfg: StageConfig = getattr(self.cfg, stage)
        # on the device before the optimizer exists, so a resumed optimizer state lands there too
        model.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=scfg.lr, weight_decay=scfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(it, scfg))
        scaler = grad_scaler(self.device)
        start, elapsed = 0, 0.0
        last = self.paths.last(stage)
        # every rank resumes from rank 0's last checkpoint, so they start alike
        ck = self._read_checkpoint(last, required=False) if self.resume else None
        if ck is not None:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            batcher.set_state(ck["batcher_rng"])
            torch.set_rng_state(ck["torch_rng"])
            start, elapsed = ck["iter"], ck["train_seconds"]
            log.info("%s: resuming from %s at iteration %d", stage, last, start)
        model.train()
        t0 = time.perf_counter() - elapsed
        running: dict[str, float] = {}
        history = self.losses.setdefault(stage, [])
        # no bar when logging to a file (the log lines carry progress), nor on ranks other than 0
        bar = tqdm(
            range(start, scfg.iters),
            desc=stage,
            initial=start,
            total=scfg.iters,
            dynamic_ncols=True,
            disable=None if self.dist.is_main else True,
        )

        def payload(it: int) -> dict:
            return {
                "stage": stage,
                "config": self.cfg.to_dict(),
                "model": model.state_dict(),
                "classes": [c.__dict__ for c in self.classes],
                "iter": it,
                "train_seconds": time.perf_counter() - t0,
                **extra,
            }

        for it in bar:
            images, labels = batcher.next()
            with autocast(self.device):
                losses = step_fn(images, labels)
            total = sum(losses.values())
            values = torch.stack([v.detach().float() for v in losses.values()])
            if self.dist.enabled:
                # each rank's losses are its share of the global batch's (see global_mean_cross_entropy),
                # so their mean over ranks is the global batch's loss; every rank then sees the same
                # values, and a non-finite loss stops all of them at the same iteration
                values = self.dist.all_reduce_sum(values) / self.dist.world_size
                finite = bool(torch.isfinite(values.sum()))
            else:
                finite = bool(torch.isfinite(total))
            if not finite:
                raise FloatingPointError(
                    f"{stage}: loss became {float(values.sum())} at iteration {it}; "
                    "lower the learning rate"
                )
            opt.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            step_losses = dict(zip(losses, values.tolist()))
            history.append(step_losses)
            for k, v in step_losses.items():
                running[k] = running.get(k, v) * 0.9 + v * 0.1
            if (it + 1) % scfg.log_every == 0 or it + 1 == scfg.iters:
                msg = " ".join(f"{k}={v:.4f}" for k, v in running.items())
                bar.set_postfix_str(msg)
                log.info(
                    "%s it %d/%d lr %.2e %s", stage, it + 1, scfg.iters, sched.get_last_lr()[0], msg
                )
            if (it + 1) % scfg.ckpt_every == 0 and it + 1 < scfg.iters and self.dist.is_main:
                # rank 0's state stands for all: the parameters, optimizer and batcher are the same on
                # every rank (DDP's averaged gradients, one seed), and a resume hands them to all
                p = payload(it + 1)
                p.update(
                    optimizer=opt.state_dict(),
                    scheduler=sched.state_dict(),
                    batcher_rng=batcher.state(),
                    torch_rng=torch.get_rng_state(),
                )
                _save(last, p)
        bar.close()
        model.eval()
        final = payload(scfg.iters)
        final["model"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        final["final_loss"] = running
        if self.dist.is_main:
            _save(self.paths.final(stage), final)
            last.unlink(missing_ok=True)
        log.info(
            "%s: done in %.1f min -> %s",
            stage,
            final["train_seconds"] / 60,
            self.paths.final(stage),
        )
        return final

    # ---------------------------------------------------------------- stages

    def stage1(self) -> dict:
        samples = self.train_samples()
        set_seed(self.cfg.seed)
        palette = max_distance_palette(len(self.classes))
        log.info(
            "maskige palette (min pairwise RGB distance %.1f): %s",
            palette.min_distance(),
            palette.colors.tolist(),
        )
        # Unlabeled pixels take the nearest labelled class: the posterior learns complete masks,
        # which is what the prior's filled targets and its predictions look like.
        filled = [
            fill_ignore_nearest(s.label)
            for s in tqdm(samples, desc="fill ignore", leave=False, disable=not self.dist.is_main)
        ]
        weights = class_weights(filled, len(self.classes), self.cfg.class_weight_power).to(
            self.device
        )
        model = VQVAE(self.cfg.vqvae)
        extra: dict = {"palette": palette.to_dict()}
        if self.decoder_from is not None:
            load_package_decoder(model, self.decoder_from, palette)
            extra["decoder_from"] = str(self.decoder_from)
            log.info(
                "stage1: decoder and codebook frozen from %s; training the encoder only",
                self.decoder_from,
            )
        batcher = self._batcher(None, filled, self.cfg.stage1, self.cfg.seed + 1)
        commitment = self.cfg.vqvae.commitment
        net = self._parallel(model)

        def step(_images, labels):
            labels = labels.to(self.device)
            if (labels == IGNORE_INDEX).any():  # only padding can be unlabeled here
                labels = labels.clone()
                labels[labels == IGNORE_INDEX] = 0
            x = labels_to_maskige_tensor(labels, palette)
            # every rank's crops have the same number of pixels, so these means need no reweighting
            recon, _, commit = net(x)
            w = weights[labels][:, None]
            mse = ((recon.float() - x) ** 2 * w).mean()
            return {"recon": mse, "commit": commitment * commit.float()}

        out = self._loop("stage1", model, batcher, step, extra)
        if self.dist.is_main:  # a report, not training: the codebook is the same on every rank
            usage = codebook_usage(model, filled[: min(200, len(filled))], palette, self.device)
            log.info(
                "codebook usage on %d train masks: %d of %d codes (%.1f %%), perplexity %.1f",
                usage["masks"],
                usage["used"],
                usage["size"],
                100 * usage["used"] / usage["size"],
                usage["perplexity"],
            )
            out["codebook_usage"] = usage
            _save(self.paths.final("stage1"), out)
        return out

    def stage2(self) -> dict:
        vq_ckpt = self._read_checkpoint(self.paths.final("stage1"))
        palette = Palette.from_dict(vq_ckpt["palette"])
        vqvae = build_vqvae(vq_ckpt).to(self.device)
        for p in vqvae.parameters():
            p.requires_grad_(False)
        samples = self.train_samples()
        set_seed(self.cfg.seed)
        model = Prior(self.cfg.prior, self.cfg.vqvae.codebook_size, len(self.classes))
        if self.cfg.stage2_init:
            init = self._read_checkpoint(Path(self.cfg.stage2_init))
            skip = tuple(self.cfg.stage2_init_skip)
            state = {k: v for k, v in init["model"].items() if not (skip and k.startswith(skip))}
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or any(not k.startswith(skip) for k in missing):
                raise ValueError(
                    f"{self.cfg.stage2_init}: does not fit this prior (missing {missing}, "
                    f"unexpected {unexpected})"
                )
            log.info(
                "stage2: starting from the weights of %s (not taken: %s)",
                self.cfg.stage2_init,
                sorted(missing) or "none",
            )
        teacher = Teacher(Path(self.cfg.distill.package)) if self.cfg.distill.package else None
        if teacher is not None:
            log.info(
                "stage2: distilling from %s (weight %.2f, temperature %.1f)",
                self.cfg.distill.package,
                self.cfg.distill.weight,
                self.cfg.distill.temperature,
            )
        batcher = self._batcher(
            [s.image for s in samples],
            [s.label for s in samples],
            self.cfg.stage2,
            self.cfg.seed + 2,
        )
        stride = self.cfg.vqvae.downsample
        temp = self.cfg.distill.temperature
        net = self._parallel(model)

        def step(images, labels):
            images, labels = images.to(self.device), labels.to(self.device)
            token_logits, aux = net(images)
            # the aux head's class logits, resized like an image (resize.py) to the crop's labels
            aux_full = resize_image_torch(aux.float(), tuple(labels.shape[-2:]), "stretch")
            aux_loss = global_mean_cross_entropy(aux_full, labels, IGNORE_INDEX, self.dist)
            with torch.no_grad():
                unlabeled = labels == IGNORE_INDEX
                filled = torch.where(unlabeled, aux_full.argmax(1), labels)
                targets = vqvae.encode(labels_to_maskige_tensor(filled, palette))
                # a cell with no labelled pixel has no ground truth to learn from
                labelled_share = F.avg_pool2d((~unlabeled).float()[:, None], stride)[:, 0]
                targets[labelled_share == 0] = -1
            tok_loss = global_mean_cross_entropy(token_logits.float(), targets, -1, self.dist)
            losses = {"token_ce": tok_loss, "aux_ce": self.cfg.aux_weight * aux_loss}
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher.logits(images).to(self.device)
                s_log = F.log_softmax(token_logits.float() / temp, dim=1)
                t_prob = F.softmax(t_logits / temp, dim=1)
                # a mean over all cells, the same number on every rank: no reweighting needed
                kl = (t_prob * (torch.log(t_prob.clamp_min(1e-8)) - s_log)).sum(1).mean()
                losses["distill_kl"] = self.cfg.distill.weight * temp * temp * kl
            return losses

        return self._loop(
            "stage2",
            model,
            batcher,
            step,
            {"palette": palette.to_dict(), "vqvae": vqvae.state_dict()},
        )

    def baseline(self) -> dict:
        samples = self.train_samples()
        set_seed(self.cfg.seed)
        model = PixelBaseline(self.cfg.prior, len(self.classes))
        batcher = self._batcher(
            [s.image for s in samples],
            [s.label for s in samples],
            self.cfg.baseline,
            self.cfg.seed + 3,
        )
        net = self._parallel(model)

        def step(images, labels):
            logits = net(images.to(self.device))
            return {
                "ce": global_mean_cross_entropy(
                    logits.float(), labels.to(self.device), IGNORE_INDEX, self.dist
                )
            }

        return self._loop("baseline", model, batcher, step, {})

    def run(self, stage: str) -> dict:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage}; expected one of {STAGES}")
        check_batches(self.cfg, [stage], self.dist)
        final = self.paths.final(stage)
        done = self._read_checkpoint(final, required=False) if self.resume else None
        if done is not None:
            log.info("%s: %s exists, nothing to resume (delete it to retrain)", stage, final)
            return done
        out = getattr(self, stage)()
        # no rank leaves a stage before rank 0's checkpoint of it is on disk
        self.dist.barrier()
        return out


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
            g.output.append(
                onnx.helper.make_tensor_value_info(logits, onnx.TensorProto.FLOAT, None)
            )
        self.input = g.input[0].name
        self.mean = np.array(manifest["input"]["mean"], np.float32).reshape(1, 3, 1, 1)
        self.std = np.array(manifest["input"]["std"], np.float32).reshape(1, 3, 1, 1)
        opts = ort.SessionOptions()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.detach().cpu().numpy().astype(np.float32) - self.mean) / self.std
        n, _, h, w = x.shape
        (th, tw), s = self.size, self.stride
        if h > th or w > tw or h % s or w % s:
            raise ValueError(
                f"distillation: crop {h}x{w} does not fit the teacher's {th}x{tw} input "
                f"in whole {s}-pixel cells; use a smaller stage2.crop"
            )
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
        raise FileNotFoundError(
            f"{package}: no model.json; --decoder-from takes a model package folder"
        )
    manifest = json.loads(manifest_path.read_text())
    if [list(c) for c in manifest["maskige"]["palette"]] != palette.colors.tolist():
        raise ValueError(
            f"{package}: its maskige palette {manifest['maskige']['palette']} differs from this "
            f"dataset's {palette.colors.tolist()}; the decoder cannot be reused"
        )
    graph = onnx.load(str(Path(package) / manifest["decoder"]["file"])).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    want = {f"decoder.{k}": v for k, v in model.decoder.state_dict().items()}
    want["embed"] = model.quantizer.embed
    missing = sorted(k for k in want if k not in weights)
    wrong = sorted(k for k in want if k in weights and weights[k].shape != want[k].shape)
    if missing or wrong:
        raise ValueError(
            f"{package}: decoder does not match vqvae config: missing {missing}, "
            f"wrong shapes {[(k, tuple(weights[k].shape), tuple(want[k].shape)) for k in wrong]}"
        )
    model.decoder.load_state_dict({k[len("decoder.") :]: weights[k] for k in want if k != "embed"})
    q = model.quantizer
    q.embed.copy_(weights["embed"])
    q.embed_sum.copy_(weights["embed"])
    q.frozen = True
    for p in model.decoder.parameters():
        p.requires_grad_(False)


@torch.no_grad()
def codebook_usage(
    model: VQVAE, labels: list[np.ndarray], palette: Palette, device: torch.device
) -> dict:
    counts = torch.zeros(model.cfg.codebook_size, dtype=torch.long)
    model.eval()
    for lab in labels:
        x = labels_to_maskige_tensor(torch.from_numpy(lab).long()[None].to(device), palette)
        idx = model.encode(x).cpu()
        counts += torch.bincount(idx.ravel(), minlength=model.cfg.codebook_size)
    p = counts.float() / counts.sum()
    nz = p[p > 0]
    return {
        "masks": len(labels),
        "used": int((counts > 0).sum()),
        "size": model.cfg.codebook_size,
        "perplexity": float(torch.exp(-(nz * nz.log()).sum())),
    }


__all__ = [
    "Trainer",
    "STAGES",
    "load_checkpoint",
    "build_vqvae",
    "build_prior",
    "build_baseline",
    "lr_factor",
    "codebook_usage",
    "global_mean_cross_entropy",
    "check_batches",
]
