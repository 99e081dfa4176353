"""The GPU configs for the real datasets load, hold together and build their models (no training)."""

from __future__ import annotations

import pytest
import torch

from gss_convert.augment import RandomBatcher
from gss_convert.config import config_from_dict, load_config
from gss_convert.data.datasets import ADE_NUM_CLASSES, CITYSCAPES_CLASSES
from gss_convert.distributed import DistEnv
from gss_convert.maskige import max_distance_palette
from gss_convert.models import VQVAE, PixelBaseline, Prior
from gss_convert.train import STAGES, check_batches

# the classes come from the dataset loader; the configs must fit that many
DATASET_CLASSES = {"cityscapes": len(CITYSCAPES_CLASSES), "ade20k": ADE_NUM_CLASSES}
GPU_COUNTS = (1, 2, 4, 8)  # the global batch must split over the usual machines
BACKBONE_STRIDE = 32  # MobileNetV2's coarsest tap: the exported input must be a multiple


@pytest.mark.parametrize("name", sorted(DATASET_CLASSES))
def test_dataset_config_loads_and_builds(name):
    cfg = load_config(name)
    assert config_from_dict(cfg.to_dict()) == cfg  # what checkpoints store reads back the same
    assert cfg.prior.output_stride == cfg.vqvae.downsample
    assert all(side % BACKBONE_STRIDE == 0 for side in cfg.input_size), cfg.input_size
    assert cfg.prior.pretrained and cfg.prior.backbone == "mobilenet_v2"
    for world in GPU_COUNTS:
        check_batches(cfg, STAGES, DistEnv(0, world))
    for stage in STAGES:
        s = getattr(cfg, stage)
        assert s.iters > s.warmup_iters and s.ckpt_every <= s.iters
        RandomBatcher(None, [], s, 0)  # checks the crop against the token stride
    # the models build for the dataset's class count and give the token grid the decoder expects
    # (ImageNet weights left out here: the architecture is the same)
    cfg.prior.pretrained = False
    classes = DATASET_CLASSES[name]
    x = torch.zeros(1, 3, 64, 128)
    grid = (64 // cfg.vqvae.downsample, 128 // cfg.vqvae.downsample)
    with torch.no_grad():
        tokens, aux = Prior(cfg.prior, cfg.vqvae.codebook_size, classes).eval()(x)
        assert tokens.shape == (1, cfg.vqvae.codebook_size, *grid) and aux.shape == (
            1,
            classes,
            *grid,
        )
        assert PixelBaseline(cfg.prior, classes).eval()(x).shape == (1, classes, 64, 128)
        recon, idx, _ = VQVAE(cfg.vqvae).eval()(x)
        assert recon.shape == x.shape and idx.shape == (1, *grid)


def test_ade20k_gets_a_palette_for_its_150_classes():
    p = max_distance_palette(ADE_NUM_CLASSES)
    colors = {tuple(c) for c in p.colors.tolist()}
    assert len(colors) == ADE_NUM_CLASSES and tuple(p.ignore_color) not in colors
    assert p.min_distance() >= 51  # one step of the 6-level grid that 150 colours need
