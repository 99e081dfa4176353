import pytest
import torch

from gss_convert.config import load_config
from gss_convert.flops import count_macs, inference_budget
from gss_convert.models import VQVAE, PixelBaseline, Prior
from gss_convert.models.vqvae import TokenDecoder


@pytest.fixture(scope="module")
def tiny():
    return load_config("tiny")


def test_vqvae_shapes(tiny):
    vq = VQVAE(tiny.vqvae)
    x = torch.rand(2, 3, 64, 128)
    recon, idx, commit = vq(x)
    assert recon.shape == x.shape and idx.shape == (2, 8, 16)
    assert recon.min() >= 0 and recon.max() <= 1
    assert idx.max() < tiny.vqvae.codebook_size and commit.ndim == 0
    vq.eval()  # training-mode forward moves the codebook (EMA); compare without updates
    _, idx, _ = vq(x)
    assert torch.equal(vq.encode(x), idx)


def test_token_decoder_matches_vqvae_decode(tiny):
    vq = VQVAE(tiny.vqvae).eval()
    tokens = torch.randint(0, tiny.vqvae.codebook_size, (1, 8, 16))
    assert torch.allclose(TokenDecoder(vq)(tokens), vq.decode(tokens))


def test_prior_and_baseline_shapes(tiny):
    prior = Prior(tiny.prior, tiny.vqvae.codebook_size, 8).eval()
    img = torch.rand(2, 3, 64, 128) * 255
    tokens, aux = prior(img)
    assert tokens.shape == (2, tiny.vqvae.codebook_size, 8, 16) and aux.shape == (2, 8, 8, 16)
    assert PixelBaseline(tiny.prior, 8)(img).shape == (2, 8, 64, 128)


def test_pretrained_backbone_loads_imagenet_weights():
    cfg = load_config("default")
    prior = Prior(cfg.prior, 16, 8)
    w = prior.backbone.features[0][0].weight
    assert w.shape == (32, 3, 3, 3) and w.abs().sum() > 1  # not a fresh init only by chance
    frozen = [p.requires_grad for p in prior.backbone.features[: cfg.prior.frozen_blocks].parameters()]
    assert frozen and not any(frozen)


def test_mac_counter_on_a_known_conv():
    conv = torch.nn.Conv2d(4, 6, 3, padding=1, groups=2)
    assert count_macs(conv, torch.zeros(1, 4, 10, 10)) == 6 * 10 * 10 * 2 * 9


def test_default_config_fits_the_edge_budget():
    cfg = load_config("default")
    rows = {r["part"]: r for r in inference_budget(cfg)}
    runtime = rows["prior"]["macs"] + rows["decoder"]["macs"]
    assert runtime <= 1.5e9, f"prior + decoder cost {runtime / 1e9:.3f} GMAC, over the 1.5 GMAC budget"


def test_wrong_weights_file_is_refused_with_its_path(tmp_path, monkeypatch):
    from gss_convert.weights import ENV_OVERRIDE, WeightsError, mobilenet_v2_path

    bogus = tmp_path / "mobilenet_v2-b0353104.pth"
    bogus.write_bytes(b"not the weights")
    monkeypatch.setenv(ENV_OVERRIDE, str(bogus))
    with pytest.raises(WeightsError) as err:
        mobilenet_v2_path()
    assert str(bogus) in str(err.value) and "sha256" in str(err.value)
