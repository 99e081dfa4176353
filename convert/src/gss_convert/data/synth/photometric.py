"""From scene radiance to the 8-bit image: haze and fog by depth, the camera's response (saturation,
exposure, colour cast, vignette, gamma), blur, sensor noise and JPEG artefacts."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageFilter

from .camera import Frame
from .colours import grey, hsv
from .domains import Domain
from .sky import Sky

Rng = np.random.Generator


@dataclass(frozen=True)
class Fog:
    """The fog shift: the haze law at tens of metres, and it covers the sky as well."""

    colour: np.ndarray
    distance: float  # m, e-folding distance
    sky_share: float  # how much of the fog colour the sky takes

    @classmethod
    def draw(cls, rng: Rng, distance: float, dusk: bool, domain: Domain) -> Fog:
        if dusk:
            colour = hsv(rng.uniform(0.55, 0.68), rng.uniform(0.1, 0.3), rng.uniform(0.18, 0.32))
        else:
            colour = grey(rng, rng.uniform(0.62, 0.88), 0.05)
        return cls(colour, distance, rng.uniform(*domain.fog_sky))


@dataclass(frozen=True)
class CameraResponse:
    gain: float
    colour_cast: np.ndarray  # per-channel gain, float32
    gamma: float
    saturation: float
    vertical_gradient: float  # exposure change from the top to the bottom of the image
    vignette: float
    blur: float  # Gaussian sigma in pixels; 0: none
    noise: float  # sensor noise std in grey levels
    chroma_noise: float  # colour noise, as a share of ``noise``
    jpeg_quality: int  # 0: no JPEG round trip

    @classmethod
    def draw(cls, rng: Rng) -> CameraResponse:
        gain = rng.uniform(0.75, 1.3)
        colour_cast = (1 + rng.uniform(-0.12, 0.12, 3)).astype(np.float32)
        gamma = rng.uniform(0.8, 1.25)
        saturation = rng.uniform(0.6, 1.3)
        vertical_gradient = rng.uniform(-0.25, 0.25)
        vignette = rng.uniform(0, 0.35)
        blur_kind = rng.random()
        blur = (
            0.0
            if blur_kind < 0.3
            else (rng.uniform(0.35, 0.8) if blur_kind < 0.85 else rng.uniform(0.9, 1.8))
        )
        noise = rng.uniform(0.5, 6.0)
        chroma_noise = rng.uniform(0, 0.5)
        jpeg_quality = int(rng.integers(30, 96)) if rng.random() < 0.6 else 0
        return cls(
            gain,
            colour_cast,
            gamma,
            saturation,
            vertical_gradient,
            vignette,
            blur,
            noise,
            chroma_noise,
            jpeg_quality,
        )

    def at_dusk(self, rng: Rng, domain: Domain) -> CameraResponse:
        noise = rng.uniform(*domain.dusk_noise)  # low light: a noisier sensor
        # blue evening light or warm sodium lamps, beyond street8's +-12 % colour cast
        if rng.random() < 0.6:
            tint = (rng.uniform(0.75, 0.88), rng.uniform(0.88, 0.97), rng.uniform(1.1, 1.25))
        else:
            tint = (rng.uniform(1.15, 1.3), rng.uniform(0.95, 1.02), rng.uniform(0.68, 0.8))
        return replace(
            self, noise=noise, colour_cast=(self.colour_cast * np.array(tint)).astype(np.float32)
        )


def develop(
    frame: Frame, sky: Sky, fog: Fog | None, response: CameraResponse, noise_rng: Rng
) -> np.ndarray:
    """The frame's radiance (modified in place) -> uint8 H×W×3 RGB."""
    cam = frame.camera
    image = frame.image
    depth = frame.depth
    # aerial perspective: far surfaces fade towards the haze colour (not the sky itself)
    haze = 1 - np.exp(np.minimum(depth, 1e5) * np.float32(-1.0 / sky.haze_distance))
    haze[depth == np.inf] = 0
    image += (sky.haze_colour[None, None, :] - image) * haze[..., None]
    if fog is not None:
        # fog: the same law, tens of metres instead of hundreds, and it also covers the sky
        fogged = 1 - np.exp(np.minimum(depth, 1e5) * np.float32(-1.0 / fog.distance))
        fogged[depth == np.inf] = fog.sky_share
        image += (fog.colour[None, None, :] - image) * fogged[..., None]
    # saturation, exposure, colour cast, vertical gradient and vignette, gamma (via a LUT)
    mean = ((image[..., 0] + image[..., 1] + image[..., 2]) * np.float32(1 / 3))[..., None]
    image -= mean
    image *= np.float32(response.saturation)
    image += mean
    height, width = cam.height_px, cam.width_px
    v = (np.arange(height, dtype=np.float32) + 0.5) / height - 0.5
    u = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
    exposure = (response.gain * (1 + response.vertical_gradient * v))[:, None] * (
        1 - 2 * response.vignette * (u[None, :] ** 2 + v[:, None] ** 2)
    )
    # 10-bit intermediate values keep the gamma LUT from banding dark gradients
    image *= (exposure[..., None] * (response.colour_cast * 1023.0)[None, None, :]).astype(
        np.float32
    )
    np.clip(image, 0, 1023, out=image)
    lut = np.clip((np.arange(1024) / 1023.0) ** response.gamma * 255.0 + 0.5, 0, 255).astype(
        np.uint8
    )
    out = lut[image.astype(np.int32)]
    if response.blur > 0:
        out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(response.blur)))
    noisy = out.astype(np.float32)
    noisy += noise_rng.standard_normal((height, width, 1), dtype=np.float32) * np.float32(
        response.noise
    )
    if response.chroma_noise > 0:  # colour noise is blotchy (demosaicing): half resolution
        h2, w2 = height // 2, width // 2
        chroma = noise_rng.standard_normal((h2, 1, w2, 1, 3), dtype=np.float32) * np.float32(
            response.noise * response.chroma_noise
        )
        if height % 2 == 0 and width % 2 == 0:
            noisy.reshape(h2, 2, w2, 2, 3)[...] += chroma  # a view: noisy is contiguous
        else:
            noisy[: 2 * h2, : 2 * w2] += np.repeat(np.repeat(chroma[:, 0, :, 0], 2, 0), 2, 1)
    noisy += 0.5
    np.clip(noisy, 0, 255, out=noisy)
    out = noisy.astype(np.uint8)
    if response.jpeg_quality:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=response.jpeg_quality)
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return np.ascontiguousarray(out)
