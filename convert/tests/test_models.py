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
    """Every backbone tensor is the weights file's, and they are ImageNet's: completed with the file's
    last conv and classifier, the prior's own backbone recognises scikit-image's cat and espresso
    photos (a fresh init gives the same flat guess for both)."""
    import skimage.data
    import torchvision

    from gss_convert.resize import resize_image
    from gss_convert.weights import mobilenet_v2_path

    cfg = load_config("default")
    prior = Prior(cfg.prior, 16, 8).eval()
    state = torch.load(mobilenet_v2_path(), map_location="cpu", weights_only=True)
    for name, tensor in prior.backbone.features.state_dict().items():
        assert torch.equal(tensor, state[f"features.{name}"]), name
    imagenet = torchvision.models.mobilenet_v2(weights=None)
    imagenet.load_state_dict(state)
    imagenet.eval()
    features = torch.nn.Sequential(*prior.backbone.features, imagenet.features[18])
    # ImageNet classes: 281-285 domestic cats; 967 espresso, 968 cup, 504 coffee mug
    for photo, classes in (
        (skimage.data.chelsea(), {281, 282, 283, 284, 285}),
        (skimage.data.coffee(), {967, 968, 504}),
    ):
        x = torch.from_numpy(resize_image(photo, (224, 224), "crop")).permute(2, 0, 1)[None]
        with torch.no_grad():
            pooled = torch.nn.functional.adaptive_avg_pool2d(
                features(prior.normalize(x)), 1
            ).flatten(1)
            probs = imagenet.classifier(pooled).softmax(1)[0]
        assert int(probs.argmax()) in classes and float(probs.max()) > 0.5, (
            sorted(classes),
            int(probs.argmax()),
        )
    frozen = [
        p.requires_grad for p in prior.backbone.features[: cfg.prior.frozen_blocks].parameters()
    ]
    assert frozen and not any(frozen)


def test_mac_counter_on_a_known_conv():
    conv = torch.nn.Conv2d(4, 6, 3, padding=1, groups=2)
    assert count_macs(conv, torch.zeros(1, 4, 10, 10)) == 6 * 10 * 10 * 2 * 9


def test_mac_counter_counts_what_module_hooks_miss():
    """Transposed and functional convolutions and matrix products (attention) count too."""

    class Mixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.up = torch.nn.ConvTranspose2d(4, 2, 2, stride=2)
            self.w = torch.nn.Parameter(torch.zeros(3, 2, 1, 1))  # a conv without a Conv2d module

        def forward(self, x):
            y = torch.nn.functional.conv2d(self.up(x), self.w)  # [1, 3, 10, 10]
            q = y.flatten(2)  # [1, 3, 100]
            return q @ q.transpose(1, 2)

    model = Mixed().train()
    macs = count_macs(model, torch.zeros(1, 4, 5, 5))
    assert macs == 4 * 5 * 5 * 2 * 4 + 3 * 10 * 10 * 2 + 3 * 100 * 3
    assert model.training  # the caller's mode is left as it was
    with torch.device("meta"):  # modules built without weights are counted without arithmetic
        meta = Mixed()
    assert count_macs(meta, torch.zeros(1, 4, 5, 5, device="meta")) == macs


def test_default_config_fits_the_edge_budget():
    cfg = load_config("default")
    rows = {r["part"]: r for r in inference_budget(cfg)}
    runtime = rows["prior"]["macs"] + rows["decoder"]["macs"]
    assert runtime <= 1.5e9, (
        f"prior + decoder cost {runtime / 1e9:.3f} GMAC, over the 1.5 GMAC budget"
    )


def test_wrong_weights_file_is_refused_with_its_path(tmp_path, monkeypatch):
    from gss_convert.weights import ENV_OVERRIDE, WeightsError, mobilenet_v2_path

    bogus = tmp_path / "mobilenet_v2-b0353104.pth"
    bogus.write_bytes(b"not the weights")
    monkeypatch.setenv(ENV_OVERRIDE, str(bogus))
    with pytest.raises(WeightsError) as err:
        mobilenet_v2_path()
    assert str(bogus) in str(err.value) and "sha256" in str(err.value)


def _dense_cfg(tiny, upsample="d2s"):
    import dataclasses

    return dataclasses.replace(
        tiny.prior,
        backbone="dense",
        pretrained=False,
        frozen_blocks=0,
        dense_channels=(8, 16, 24, 32),
        dense_blocks=(1, 1, 1, 1),
        upsample=upsample,
    )


@pytest.mark.parametrize("upsample", ["d2s", "bilinear", "nearest"])
def test_dense_prior_folds_its_branches_into_the_same_function(tiny, upsample):
    from gss_convert.models.prior import RepConv, reparameterize

    torch.manual_seed(0)
    prior = Prior(_dense_cfg(tiny, upsample), tiny.vqvae.codebook_size, 8)
    # train a little so the BN statistics and scales are not the identity
    prior.train()
    for _ in range(3):
        prior(torch.rand(2, 3, 64, 128) * 255)
    for m in prior.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    prior.eval()
    img = torch.rand(1, 3, 64, 128) * 255
    with torch.no_grad():
        want = prior(img, with_aux=False)
        fused = reparameterize(prior)
        got = fused(img, with_aux=False)
    assert not any(isinstance(m, RepConv) for m in fused.modules())
    assert not any(m.groups > 1 for m in fused.modules() if isinstance(m, torch.nn.Conv2d)), (
        "no depthwise convs"
    )
    assert got.shape == (1, tiny.vqvae.codebook_size, 8, 16)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)


def test_dense_backbone_refuses_pretrained_and_bad_shapes(tiny):
    import dataclasses

    with pytest.raises(ValueError, match="pretrained"):
        Prior(dataclasses.replace(_dense_cfg(tiny), pretrained=True), 32, 8)
    with pytest.raises(ValueError, match="4 entries"):
        Prior(dataclasses.replace(_dense_cfg(tiny), dense_channels=(8, 16, 32)), 32, 8)
    with pytest.raises(ValueError, match="backbone"):
        Prior(dataclasses.replace(_dense_cfg(tiny), backbone="resnet"), 32, 8)


def test_decoder_up_kernels_keep_the_maskige_shape(tiny):
    import dataclasses

    cfg = dataclasses.replace(tiny.vqvae, dec_up_kernels=[3, 1, 1])
    vq = VQVAE(cfg).eval()
    convs = [m for m in vq.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs[-3:]] == [3, 1, 1]
    tokens = torch.randint(0, cfg.codebook_size, (1, 8, 16))
    assert vq.decode(tokens).shape == (1, 3, 64, 128)
    with pytest.raises(ValueError, match="dec_up_kernels"):
        VQVAE(dataclasses.replace(tiny.vqvae, dec_up_kernels=[5]))
