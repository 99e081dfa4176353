"""Colour draws: per class, ranges wide enough that colour alone never gives the class away."""

from __future__ import annotations

import colorsys

import numpy as np

Rng = np.random.Generator


def hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    """RGB float32 in [0, 1]; the hue wraps, saturation and value are clamped."""
    return np.array(
        colorsys.hsv_to_rgb(hue % 1.0, min(max(saturation, 0), 1), min(max(value, 0), 1)),
        np.float32,
    )


def constant_colour(red: float, green: float, blue: float) -> np.ndarray:
    """A read-only float32 RGB colour, for module-level constants that no caller can change."""
    colour = np.array([red, green, blue], np.float32)
    colour.flags.writeable = False
    return colour


def grey(rng: Rng, value: float, tint: float = 0.06) -> np.ndarray:
    """A grey of brightness ``value`` with a faint tint of random hue (saturation up to ``tint``)."""
    return hsv(rng.random(), rng.uniform(0, tint), value)


def building_colour(rng: Rng) -> np.ndarray:
    k = rng.random()
    if k < 0.32:
        return grey(rng, rng.uniform(0.3, 0.85))
    if k < 0.52:
        return hsv(
            rng.uniform(0.06, 0.14), rng.uniform(0.12, 0.4), rng.uniform(0.55, 0.9)
        )  # beige / cream
    if k < 0.70:
        return hsv(
            rng.uniform(-0.02, 0.07), rng.uniform(0.35, 0.7), rng.uniform(0.3, 0.65)
        )  # brick red / brown
    if k < 0.88:
        return hsv(
            rng.random(), rng.uniform(0.1, 0.4), rng.uniform(0.55, 0.92)
        )  # pastel, any hue (incl. green)
    return hsv(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.15, 0.35))  # dark


def road_colour(rng: Rng) -> np.ndarray:
    k = rng.random()
    if k < 0.6:
        return grey(rng, rng.uniform(0.18, 0.45), 0.08)
    if k < 0.8:
        return grey(rng, rng.uniform(0.45, 0.68), 0.06)  # concrete / faded asphalt, like grey walls
    return hsv(
        rng.uniform(0.0, 0.12), rng.uniform(0.1, 0.35), rng.uniform(0.25, 0.55)
    )  # brownish / reddish


def sidewalk_colour(rng: Rng) -> np.ndarray:
    k = rng.random()
    if k < 0.5:
        return grey(rng, rng.uniform(0.35, 0.75), 0.08)
    if k < 0.8:
        return hsv(
            rng.uniform(-0.03, 0.1), rng.uniform(0.2, 0.5), rng.uniform(0.35, 0.7)
        )  # red / brown paving
    return hsv(rng.random(), rng.uniform(0.05, 0.25), rng.uniform(0.3, 0.7))


def vegetation_colour(rng: Rng) -> np.ndarray:
    k = rng.random()
    if k < 0.62:
        return hsv(rng.uniform(0.2, 0.36), rng.uniform(0.3, 0.75), rng.uniform(0.2, 0.6))  # green
    if k < 0.78:
        return hsv(
            rng.uniform(0.04, 0.16), rng.uniform(0.35, 0.75), rng.uniform(0.3, 0.65)
        )  # autumn / dry
    if k < 0.9:
        return hsv(
            rng.uniform(0.15, 0.45), rng.uniform(0.08, 0.3), rng.uniform(0.25, 0.55)
        )  # grey-green
    return hsv(rng.uniform(0.2, 0.4), rng.uniform(0.2, 0.6), rng.uniform(0.08, 0.22))  # very dark


def vehicle_colour(rng: Rng) -> np.ndarray:
    k = rng.random()
    if k < 0.2:
        return grey(rng, rng.uniform(0.75, 0.95), 0.04)  # white
    if k < 0.4:
        return grey(rng, rng.uniform(0.05, 0.2), 0.05)  # black
    if k < 0.62:
        return grey(rng, rng.uniform(0.3, 0.7), 0.06)  # grey / silver
    if k < 0.75:
        return hsv(rng.uniform(0.2, 0.45), rng.uniform(0.3, 0.8), rng.uniform(0.2, 0.6))  # greens
    return hsv(rng.random(), rng.uniform(0.3, 0.9), rng.uniform(0.25, 0.9))


def any_colour(rng: Rng) -> np.ndarray:
    return hsv(rng.random(), rng.uniform(0, 0.9), rng.uniform(0.08, 0.95))


def pole_colour(rng: Rng) -> np.ndarray:
    k = rng.random()
    if k < 0.45:
        return grey(rng, rng.uniform(0.3, 0.75), 0.05)
    if k < 0.65:
        return grey(rng, rng.uniform(0.05, 0.2), 0.05)
    if k < 0.8:
        return hsv(
            rng.uniform(0.25, 0.45), rng.uniform(0.3, 0.6), rng.uniform(0.15, 0.4)
        )  # dark green
    if k < 0.9:
        return hsv(
            rng.uniform(0.03, 0.1), rng.uniform(0.4, 0.7), rng.uniform(0.25, 0.5)
        )  # rust / brown
    return grey(rng, rng.uniform(0.8, 0.95), 0.05)


def skin_colour(rng: Rng) -> np.ndarray:
    return hsv(rng.uniform(0.03, 0.09), rng.uniform(0.25, 0.6), rng.uniform(0.3, 0.95))


def hair_colour(rng: Rng) -> np.ndarray:
    if rng.random() < 0.15:
        return grey(rng, rng.uniform(0.5, 0.85))
    return hsv(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.7), rng.uniform(0.05, 0.6))
