"""One street world and its frames: everything drawn from one seed, then rendered per frame.

A world is built in steps, each drawing from the seed's generator in a fixed order (light, camera,
the street and its objects, sky, camera response, extras); a shifted domain's changes come from
their own generator and are applied right after the street8 draws they replace.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .camera import NEAR_CLIP, SCENE_DEPTH, Camera, Frame
from .colours import vehicle_colour
from .domains import Domain, draw_shift, get_domain
from .ground import render_ground
from .labels import UNLABELED
from .layout import StreetBuilder, StreetExtent
from .lighting import Light
from .photometric import CameraResponse, Fog, develop
from .restyle import restyle
from .sky import Sky

Rng = np.random.Generator


@dataclass(frozen=True)
class Lens:
    """The camera's intrinsics and height, fixed for the whole world."""

    focal_px: float
    horizon_v: float
    principal_u: float
    height: float  # above the ground (m)


@dataclass(frozen=True)
class Hood:
    """The ego vehicle's bonnet at the bottom of some frames, reflecting the scene; unlabeled."""

    share: float  # of the image height at the centre; 0: none
    colour: np.ndarray

    @classmethod
    def draw(cls, rng: Rng) -> Hood:
        share = rng.uniform(0.04, 0.1) if rng.random() < 0.15 else 0.0
        return cls(share, vehicle_colour(rng) * 0.6)  # the colour is drawn either way

    def apply(self, frame: Frame, unlabeled: int) -> None:
        height, width = frame.camera.height_px, frame.camera.width_px
        u = (np.arange(width, dtype=np.float32) + 0.5) / width * 2 - 1
        top = height * (1 - self.share * (1 - 0.5 * u * u))  # curved: lowest at the sides
        rows = np.arange(height, dtype=np.float32)[:, None] + 0.5
        covered = rows > top[None, :]
        if covered.any():
            rr, cc = np.nonzero(covered)
            mirror = np.clip((2 * top[cc] - rr).astype(np.int32), 0, height - 1)
            frame.image[rr, cc] = self.colour * 0.7 + 0.3 * frame.image[mirror, cc]
            frame.labels[covered] = unlabeled


def check_size(size) -> tuple[int, int]:
    height, width = int(size[0]), int(size[1])
    if height < 8 or width < 8:
        raise ValueError(f"size must be at least 8x8, got {size}")
    return height, width


class World:
    """A street scene for a camera driving forward ``n_frames`` frames; :meth:`render` draws frame i."""

    def __init__(
        self,
        seed: int,
        size: tuple[int, int],
        n_frames: int,
        domain: str | Domain | None = None,
        speed: float | None = None,
    ):
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.height, self.width = int(size[0]), int(size[1])
        self.n_frames = n_frames
        self.domain = get_domain(domain)
        self.light = Light.draw(rng)
        # the domain's shifts come from their own generator and overwrite street8's draws right after
        # them (before anything caches them: shaders keep light.face(), materials their colours)
        self.shift, shift_rng = draw_shift(self.domain, seed)
        if shift_rng is not None:
            self.light.apply_shift(self.shift, self.domain, shift_rng)
        self.lens = self._draw_lens(rng)
        self.speed = rng.uniform(0.35, 1.1)  # m per frame
        if speed is not None:
            # drawn first all the same, so every later draw of this seed's world stays as it was
            self.speed = float(speed)
        scene = StreetBuilder(
            rng, self.light, StreetExtent.for_frames(self.speed, n_frames), self.speed
        ).build()
        self.street, self.objects, self.camera_x = scene.street, scene.objects, scene.camera_x
        self.sky = Sky.draw(rng)
        self.response = CameraResponse.draw(rng)
        self.fog: Fog | None = None
        if shift_rng is not None:
            self._shift_look(shift_rng)
        self.hood = Hood.draw(rng)
        # share of people / vehicles / poles that get a one-pixel unlabelled band around them
        self.band_share = rng.uniform(0.3, 1.0)
        if self.shift.textures:
            restyle(self.objects, self.street.materials, self.shift.textures, shift_rng)

    def _draw_lens(self, rng: Rng) -> Lens:
        hfov = math.radians(rng.uniform(50, 75))
        focal_px = (self.width / 2) / math.tan(hfov / 2)
        horizon_v = self.height * rng.uniform(0.35, 0.55)
        principal_u = self.width * (0.5 + rng.uniform(-0.12, 0.12))
        camera_height = rng.uniform(1.2, 2.3)
        shift = self.shift
        if shift.camera_height is not None:
            camera_height = shift.camera_height
            if shift.horizon is not None:
                horizon_v = self.height * shift.horizon
            if shift.hfov is not None:
                focal_px = (self.width / 2) / math.tan(math.radians(shift.hfov) / 2)
        return Lens(focal_px, horizon_v, principal_u, camera_height)

    def _shift_look(self, shift_rng: Rng) -> None:
        if self.shift.dusk:
            self.sky = self.sky.at_dusk(shift_rng)
            self.response = self.response.at_dusk(shift_rng, self.domain)
        if self.shift.fog_distance > 0:
            self.fog = Fog.draw(shift_rng, self.shift.fog_distance, self.shift.dusk, self.domain)

    def camera(self, i: int) -> Camera:
        lens = self.lens
        return Camera(
            self.height,
            self.width,
            lens.focal_px,
            lens.principal_u,
            lens.horizon_v,
            self.camera_x,
            lens.height,
            self.speed * i,
        )

    def render(self, i: int, return_depth: bool = False) -> tuple[np.ndarray, ...]:
        """(image, label) of frame ``i``; with ``return_depth`` also the z-buffer (metres, inf = sky)."""
        cam = self.camera(i)
        frame = Frame(cam, self.band_share)
        t = float(i)
        opaque, sprites = [], []
        for o in self.objects:
            z0, z1 = o.z_range(t)
            if z1 - cam.z < NEAR_CLIP or z0 - cam.z > SCENE_DEPTH * 1.5 and o.far_culled:
                continue
            (opaque if o.opaque else sprites).append((max(z0 - cam.z, 0.0), o))
        # opaque boxes near to far: the z-test rejects hidden pixels before they are shaded;
        # then anti-aliased sprites far to near, so their edges blend over what is behind them
        opaque.sort(key=lambda p: p[0])
        sprites.sort(key=lambda p: -p[0])
        for _, o in opaque:
            o.draw(frame, t)
        self.sky.render(frame)
        render_ground(frame, self.street, self.light, self.objects, t)
        for _, o in sprites:
            o.draw(frame, t)
        if self.band_share > 0:
            _add_ignore_band(frame)
        if self.hood.share > 0:
            self.hood.apply(frame, UNLABELED)
        noise_rng = np.random.default_rng([self.seed & 0xFFFFFFFF, i, 77])
        image = develop(frame, self.sky, self.fog, self.response, noise_rng)
        if return_depth:
            return image, frame.labels, frame.depth
        return image, frame.labels


def _add_ignore_band(frame: Frame) -> None:
    """A one-pixel unlabeled band just outside the marked objects (their edges are ambiguous)."""
    marked = frame.band_mask
    grown = marked.copy()
    grown[1:] |= marked[:-1]
    grown[:-1] |= marked[1:]
    grown[:, 1:] |= marked[:, :-1]
    grown[:, :-1] |= marked[:, 1:]
    frame.labels[grown & ~marked] = UNLABELED


def render_scene(
    seed: int, size: tuple[int, int] = (256, 512), domain: str | Domain = "street8"
) -> tuple[np.ndarray, np.ndarray]:
    """One random street frame: (image uint8 HxWx3 RGB, label uint8 HxW with values in 0..7 or 255).
    Deterministic per (seed, domain); a shifted domain shows the same scene as street8 for that seed."""
    height, width = check_size(size)
    return World(int(seed), (height, width), 1, domain).render(0)


def render_sequence(
    seed: int, n: int, size: tuple[int, int] = (256, 512), domain: str | Domain = "street8"
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """n consecutive frames of a camera moving forward through ONE scene (same layout, objects approach
    and pass).  With a shifted domain the whole sequence gets the same shifts."""
    height, width = check_size(size)
    world = World(int(seed), (height, width), int(n), domain)
    for i in range(int(n)):
        yield world.render(i)
