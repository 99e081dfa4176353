"""Domains: how far a frame departs from the street8 look the models are trained on.

A :class:`Domain` gives the chance of each shift and its ranges; :func:`draw_shift` decides per world
(image or sequence) which shifts it gets.  Every shift is drawn from its own random stream, after the
street8 draws, so a shifted frame shows the same scene as the street8 frame of the same seed, and
the street8 output is unchanged by the existence of domains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType

import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class Domain:
    """A look for the generator.  Each ``p_*`` is the chance that one image gets that shift; the ranges
    lie outside what street8 draws (its ranges are given in the comments), so a model trained on street8
    never saw them.  The scene itself (layout, objects, their classes) is the street8 scene of the same
    seed; fog, dusk and the restyle change only the image, the camera changes the view (labels are
    rendered with it, so they stay exact)."""

    name: str
    p_fog: float = 0.0
    p_dusk: float = 0.0
    p_camera: float = 0.0
    p_texture: float = 0.0
    # fog: e-folding distance of a depth-dependent blend towards a fog colour (street8 only has an
    # aerial haze with 120-900 m); the sky (no depth) takes this share of the fog colour
    fog_distance: Range = (15.0, 60.0)
    fog_sky: Range = (0.85, 1.0)
    # dusk: sun elevation in degrees (street8: 18-60), ambient and diffuse light (street8: 0.45-0.95
    # and 0.05-0.8), share of lit windows (street8: 7 %), glow of windows and lamps (street8: none)
    dusk_sun_elevation: Range = (2.0, 12.0)
    dusk_ambient: Range = (0.2, 0.35)
    dusk_diffuse: Range = (0.15, 0.35)
    dusk_lit_windows: Range = (0.25, 0.55)
    dusk_glow: Range = (1.0, 1.6)
    dusk_noise: Range = (5.0, 10.0)  # sensor noise std in grey levels (street8: 0.5-6)
    # camera: height in metres (street8: 1.2-2.3, low or high with even odds), horizon row as a share
    # of the image height (street8: 0.35-0.55; the renderer's pitch, a shift of the principal point),
    # horizontal field of view in degrees (street8: 50-75)
    camera_height_low: Range = (0.45, 0.9)
    camera_height_high: Range = (3.0, 4.5)
    p_horizon: float = 0.7
    # at 256x512 the horizon rows mean a pitch of about 6-15 degrees down / 3-10 up (street8: 7 down to 2 up)
    horizon_high: Range = (0.15, 0.28)
    horizon_low: Range = (0.62, 0.72)
    p_wide: float = 0.3
    wide_hfov: Range = (80.0, 95.0)
    # textures / colours: each of the four groups is restyled with this chance (at least one is)
    p_texture_group: float = 0.6

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if k.startswith("p_") and not 0.0 <= v <= 1.0:
                raise ValueError(f"domain {self.name!r}: {k} = {v} is not a probability")
            if isinstance(v, tuple) and not v[0] <= v[1]:
                raise ValueError(f"domain {self.name!r}: {k} = {v} is not a (low, high) range")

    @property
    def is_street8(self) -> bool:
        """True when no shift can be drawn: the output is street8's, bit for bit."""
        return max(self.p_fog, self.p_dusk, self.p_camera, self.p_texture) <= 0.0


DOMAINS: Mapping[str, Domain] = MappingProxyType(
    {
        "street8": Domain("street8"),
        # the cross-domain test set: a random mix, so it holds each case alone and in combinations
        "shift": Domain("shift", p_fog=0.4, p_dusk=0.4, p_camera=0.4, p_texture=0.45),
        # one shift each, every image: to tell which change costs a model how much
        "fog": Domain("fog", p_fog=1.0),
        "dusk": Domain("dusk", p_dusk=1.0),
        "camera": Domain("camera", p_camera=1.0),
        "texture": Domain("texture", p_texture=1.0),
    }
)


def get_domain(domain: str | Domain | None) -> Domain:
    """A preset by name (None: street8), or the given Domain itself."""
    if domain is None:
        return DOMAINS["street8"]
    if isinstance(domain, Domain):
        return domain
    try:
        return DOMAINS[domain]
    except KeyError:
        raise ValueError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}") from None


TEXTURE_GROUPS = ("building", "road", "sidewalk", "vegetation")


@dataclass
class ShiftDraw:
    """The shifts one world (image or sequence) got; written per image into ``domain.json``."""

    fog_distance: float = 0.0  # 0: no fog
    dusk: bool = False
    camera_height: float | None = None  # None: street8's draw kept
    horizon: float | None = None
    hfov: float | None = None
    textures: tuple[str, ...] = ()  # restyled groups, a subset of TEXTURE_GROUPS

    @property
    def cases(self) -> list[str]:
        out = []
        if self.fog_distance > 0:
            out.append("fog")
        if self.dusk:
            out.append("dusk")
        if self.camera_height is not None:
            out.append("camera")
        if self.textures:
            out.append("texture")
        return out

    def record(self) -> dict:
        d = {"cases": self.cases}
        d.update(
            {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()
                if v not in (None, 0.0, False, ())
            }
        )
        return d


def shift_rng(seed: int, part: int) -> np.random.Generator:
    # its own stream per part, so street8's draws (the world's generator) are never consumed or reordered
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5817F7, part])


def draw_shift(domain: Domain, seed: int) -> tuple[ShiftDraw, np.random.Generator | None]:
    """Which shifts this world gets, and the generator for their details (None for street8)."""
    if domain.is_street8:
        return ShiftDraw(), None
    rng = shift_rng(seed, 0)
    chances = np.array([domain.p_fog, domain.p_dusk, domain.p_camera, domain.p_texture])
    on = rng.random(4) < chances
    if not on.any():  # every image of a shifted domain is off the training domain in some way
        on[rng.choice(4, p=chances / chances.sum())] = True
    d = ShiftDraw()
    if on[0]:
        d.fog_distance = float(rng.uniform(*domain.fog_distance))
    d.dusk = bool(on[1])
    if on[2]:
        d.camera_height = float(
            rng.uniform(
                *(domain.camera_height_low if rng.random() < 0.5 else domain.camera_height_high)
            )
        )
        if rng.random() < domain.p_horizon:
            d.horizon = float(
                rng.uniform(*(domain.horizon_high if rng.random() < 0.5 else domain.horizon_low))
            )
        if rng.random() < domain.p_wide:
            d.hfov = float(rng.uniform(*domain.wide_hfov))
    if on[3]:
        pick = rng.random(len(TEXTURE_GROUPS)) < domain.p_texture_group
        if not pick.any():
            pick[rng.integers(len(TEXTURE_GROUPS))] = True
        d.textures = tuple(n for n, k in zip(TEXTURE_GROUPS, pick) if k)
    return d, shift_rng(seed, 1)
