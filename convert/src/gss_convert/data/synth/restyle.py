"""The texture shift: held-out colours and textures for buildings, roads, sidewalks and vegetation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .colours import hsv
from .ground import GroundMaterial, Surface
from .objects import Backdrop, Building, Hedge, SceneObject, Tree

Rng = np.random.Generator


def restyle(
    objects: Sequence[SceneObject],
    materials: Sequence[GroundMaterial],
    groups: Iterable[str],
    rng: Rng,
) -> None:
    """Per restyled group, hue / saturation ranges that street8 never draws for that class and the
    procedural textures (cells, stripes) it never uses.  Changes the objects and materials in place;
    their geometry and labels stay, so the labels are street8's."""
    groups = set(groups)

    def building() -> np.ndarray:  # vivid (street8: pastel s <= 0.4, or brick hues)
        return hsv(rng.uniform(0.15, 0.92), rng.uniform(0.55, 0.9), rng.uniform(0.45, 0.9))

    def vegetation() -> np.ndarray:  # purple to crimson foliage (street8: hues 0.04-0.45)
        return hsv(rng.uniform(0.7, 0.98), rng.uniform(0.35, 0.7), rng.uniform(0.2, 0.55))

    for o in objects:
        if "building" in groups and isinstance(o, Building):
            facade = o.shader
            facade.base = building()
            facade.texture = (
                "cells" if rng.random() < 0.5 else "stripes"
            )  # stone blocks / siding boards
            facade.texels_per_m = rng.uniform(55, 105)  # blocks of 0.3-0.6 m, boards of 0.15-0.3 m
            facade.amplitude = rng.uniform(
                0.25, 0.4
            )  # strong enough that joints show at street distances
            facade.frame = facade.base * rng.uniform(0.45, 0.75)
            facade.cornice_colour = facade.base * rng.uniform(0.6, 1.3)
        elif isinstance(o, Backdrop):
            if o.kind == "city" and "building" in groups:
                o.colour = building() * 0.9
            elif o.kind == "trees" and "vegetation" in groups:
                o.colour = vegetation()
        elif "vegetation" in groups and isinstance(o, Hedge):
            o.shader.colour = vegetation()
        elif "vegetation" in groups and isinstance(o, Tree):
            o.crown_colour = vegetation()
    for m in materials:
        if m.surface == Surface.ROAD and "road" in groups:
            # coloured asphalt (street8: grey, or brownish with s <= 0.35), cobbles half the time
            m.colour = hsv(rng.uniform(0.2, 0.95), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.5))
            if rng.random() < 0.5:
                m.texture, m.texels_per_m, m.amplitude = (
                    "cells",
                    rng.uniform(150, 260),
                    rng.uniform(0.2, 0.35),
                )
        elif m.surface in (Surface.WALK, Surface.PAVED) and "sidewalk" in groups:
            # blue to pink paving (street8: grey, red / brown, or any hue with s <= 0.25); not green,
            # which would make it a texture question only against the grass beside it
            m.colour = hsv(rng.uniform(0.45, 0.92), rng.uniform(0.3, 0.6), rng.uniform(0.35, 0.7))
            if rng.random() < 0.5:
                m.texture, m.texels_per_m = "cells", rng.uniform(65, 110)  # flagstones of 0.3-0.5 m
            else:
                m.texture, m.texels_per_m = "stripes", rng.uniform(80, 130)  # decking boards
            m.amplitude, m.tile = rng.uniform(0.2, 0.35), 0  # the textures draw their own joints
        elif m.surface == Surface.GRASS and "vegetation" in groups:
            m.colour = vegetation()
