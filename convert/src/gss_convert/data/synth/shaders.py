"""Surface shaders: called by the rasterisers with 1-D arrays of a surface's visible pixels.

Each shader follows :class:`raster.Shader`: ``(face, x, y, z_world, depth, focal_px) -> (colours,
keep)``.  ``depth / focal_px`` is a pixel's size in metres, which picks each texture's mip level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .colours import any_colour, building_colour, constant_colour, grey, hsv
from .lighting import Light
from .raster import Shaded
from .textures import cell_hash, poster_colour, sample_texture

if TYPE_CHECKING:
    from .objects import Vehicle, VehiclePlacement

Rng = np.random.Generator

LIT_WINDOW = constant_colour(0.9, 0.8, 0.55)
WINDOW_GLOW = constant_colour(1.0, 0.82, 0.5)
SHOP_BAY = 6.0  # m of facade per shop window


class Facade:
    """A building's walls: a photo texture, windows in a grid or ribbons, shop fronts with posters,
    doors, a cornice, and windows that glow at dusk."""

    def __init__(
        self,
        rng: Rng,
        light: Light,
        side: int,
        front_x: float,
        z_start: float,
        height: float,
        simple: bool = False,
    ):
        self.side, self.front_x, self.z_start, self.height = side, front_x, z_start, height
        self.base = building_colour(rng)
        self.texture = ["brick", "moon", "gravel", "fine", "noise"][
            rng.choice(5, p=[0.3, 0.25, 0.15, 0.2, 0.1])
        ]
        if self.texture == "brick":
            self.texels_per_m, self.amplitude = rng.uniform(90, 140), rng.uniform(0.12, 0.3)
            if rng.random() < 0.6:
                self.base = hsv(
                    rng.uniform(-0.02, 0.08), rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
                )
        else:
            self.texels_per_m, self.amplitude = rng.uniform(30, 160), rng.uniform(0.05, 0.22)
        self.floor_height = rng.uniform(2.8, 3.8)
        self.ground_floor_height = self.floor_height * rng.uniform(1.0, 1.4)
        self.bay_width = rng.uniform(1.8, 4.0)
        self.window_width = self.bay_width * rng.uniform(0.3, 0.7)
        self.window_height = self.floor_height * rng.uniform(0.35, 0.65)
        self.sill = (self.floor_height - self.window_height) * rng.uniform(0.3, 0.65)
        self.style = (
            ["grid", "grid", "grid", "ribbon", "none"][rng.integers(5)] if not simple else "grid"
        )
        self.window_colour = hsv(
            rng.uniform(0.45, 0.7), rng.uniform(0, 0.4), rng.uniform(0.06, 0.35)
        )
        self.window_variation = rng.uniform(0.1, 0.5)
        self.frame = (
            self.base * rng.uniform(0.6, 1.4)
            if rng.random() < 0.7
            else grey(rng, rng.uniform(0.6, 0.95))
        )
        self.frame_width = rng.uniform(0.05, 0.15)
        self.shop = rng.random() < 0.45
        self.posters = rng.random() < 0.5
        self.door_spacing = rng.uniform(6, 20)
        self.door_offset = rng.uniform(0, self.door_spacing - 2)
        self.door_width = rng.uniform(0.9, 1.8)
        self.door_colour = any_colour(rng) * 0.6 if rng.random() < 0.6 else self.window_colour * 0.8
        self.cornice = rng.uniform(0.2, 0.8) if rng.random() < 0.6 else 0.0
        self.cornice_colour = self.base * rng.uniform(0.6, 1.3)
        self.end_windows = rng.random() < 0.4
        self.seed = rng.uniform(0, 100)
        street_normal_x = 1.0 if side < 0 else -1.0
        self.lit_x = light.face(street_normal_x, 0, 0)
        self.lit_z = light.face(0, 0, -1)
        self.lit_y = light.face(0, 1, 0)
        self.lit_window_threshold, self.glow = light.lit_window_threshold, light.glow

    def __call__(self, face, x, y, z_world, depth, focal_px) -> Shaded:
        # (along, up): facade coordinates in metres; the side walls are seen at a grazing angle
        if face == "x":
            along, lit, obliquity = z_world - self.z_start, self.lit_x, 2.5
        elif face == "z":
            along, lit, obliquity = np.abs(x - self.front_x), self.lit_z, 1.0
        else:
            return np.broadcast_to(self.base * self.lit_y * 0.8, (x.size, 3)).copy(), None
        up = y
        k = self.texels_per_m
        footprint = k * depth / focal_px * obliquity
        n = sample_texture(self.texture, along * k, up * k, footprint)
        n_large = sample_texture("noise", along * 6 + self.seed * 50, up * 6, depth / focal_px * 6)
        shade = 1 + self.amplitude * n + 0.06 * n_large
        colour = self.base[None, :] * shade[:, None]
        glow = None  # lit windows that shine (dusk): set after the light is applied
        if self.style != "none" and (face == "x" or self.end_windows):
            bay = np.floor(along / self.bay_width)
            in_bay = along - bay * self.bay_width - (self.bay_width - self.window_width) / 2
            above_ground_floor = up - self.ground_floor_height
            floor = np.floor(above_ground_floor / self.floor_height)
            in_floor = above_ground_floor - floor * self.floor_height - self.sill
            upper = (above_ground_floor > 0) & (up < self.height - self.cornice - 0.4)
            fw = self.frame_width
            if self.style == "ribbon":
                window = upper & (in_floor > 0) & (in_floor < self.window_height)
                frame = upper & (in_floor > -fw) & (in_floor < self.window_height + fw) & ~window
            else:
                window = (
                    upper
                    & (in_bay > 0)
                    & (in_bay < self.window_width)
                    & (in_floor > 0)
                    & (in_floor < self.window_height)
                )
                frame = (
                    upper
                    & (in_bay > -fw)
                    & (in_bay < self.window_width + fw)
                    & (in_floor > -fw)
                    & (in_floor < self.window_height + fw)
                    & ~window
                )
            shop = None
            if self.shop:
                shop_bay = np.floor(along / SHOP_BAY)
                shop = (
                    (up > 0.4)
                    & (up < self.ground_floor_height - 0.5)
                    & ((along - shop_bay * SHOP_BAY) > 0.5)
                )
                window = window | shop
            if window.any():
                per_window = cell_hash(bay[window], floor[window], self.seed)
                reflection = (
                    np.clip(in_floor[window] / self.window_height, 0, 1)
                    if self.style != "none"
                    else 0.5
                )
                variation = 1 + self.window_variation * (per_window[:, None] * 2 - 1)
                window_colours = (
                    self.window_colour[None, :] * variation * (0.7 + 0.6 * reflection)[:, None]
                )
                lit_windows = per_window > self.lit_window_threshold
                window_colours[lit_windows] = LIT_WINDOW
                colour[window] = window_colours
                if self.glow > 0:
                    glow = np.zeros(x.size, np.bool_)
                    glow[np.flatnonzero(window)[lit_windows]] = True
            if shop is not None and self.posters and shop.any():
                # posters / displays behind some shop windows (skimage colour photos)
                per_shop = cell_hash(shop_bay[shop], 7.0, self.seed)
                with_poster = per_shop < 0.5
                if with_poster.any():
                    u = ((along[shop] - shop_bay[shop] * SHOP_BAY - 0.5) / 5.5)[with_poster]
                    v = (1 - (up[shop] - 0.4) / max(self.ground_floor_height - 0.9, 0.1))[
                        with_poster
                    ]
                    poster = poster_colour(int(per_shop[with_poster][0] * 1000), u, v)
                    idx = np.flatnonzero(shop)[with_poster]
                    colour[idx] = 0.65 * poster + 0.35 * colour[idx]
            if frame.any():
                colour[frame] = self.frame * (1 + 0.1 * n[frame, None])
            if face == "x" and not self.shop:  # doors on the ground floor
                in_spacing = (
                    along
                    - np.floor(along / self.door_spacing) * self.door_spacing
                    - self.door_offset
                )
                door = (in_spacing > 0) & (in_spacing < self.door_width) & (up < 2.2)
                if door.any():
                    colour[door] = (
                        self.door_colour
                        * (1 + 0.15 * n[door, None])
                        * (0.8 + 0.2 * (up[door, None] > 1.9))
                    )
        if self.cornice > 0:
            cornice = up > self.height - self.cornice
            colour[cornice] = self.cornice_colour * (1 + 0.1 * n[cornice, None])
            if glow is not None:
                glow &= ~cornice
        # dirt near the ground
        colour *= (lit * (0.85 + 0.15 * np.clip(up * 1.25, 0, 1)))[:, None]
        if glow is not None and glow.any():  # emitted light: not dimmed by the dusk illumination
            colour[glow] = WINDOW_GLOW * self.glow * (0.75 + 0.25 * n[glow, None])
        return colour, None


class FlatShader:
    """Uniformly coloured, textured box (clutter, tyres, lamp heads, cabinets), optionally with a
    poster band between 30 % and 90 % of its height."""

    def __init__(
        self,
        colour: np.ndarray,
        light: Light,
        texture: str = "fine",
        texels_per_m: float = 60.0,
        amplitude: float = 0.12,
        poster: int = -1,
        height: float = 1.0,
    ):
        self.colour, self.texture, self.texels_per_m, self.amplitude = (
            colour,
            texture,
            texels_per_m,
            amplitude,
        )
        self.poster, self.height = poster, height
        self.lit = {
            "x": light.face(1, 0, 0) * 0.5 + light.face(-1, 0, 0) * 0.5,
            "z": light.face(0, 0, -1),
            "y": light.face(0, 1, 0),
        }

    def __call__(self, face, x, y, z_world, depth, focal_px) -> Shaded:
        s = z_world if face == "x" else x
        t = y if face != "y" else z_world
        k = self.texels_per_m
        n = sample_texture(self.texture, s * k, t * k, k * depth / focal_px)
        colour = self.colour[None, :] * (1 + self.amplitude * n)[:, None]
        if self.poster >= 0 and face != "y":
            band = (t > 0.3 * self.height) & (t < 0.9 * self.height)
            if band.any():
                colour[band] = poster_colour(
                    self.poster,
                    np.mod(s[band], 1.0),
                    (0.9 * self.height - t[band]) / (0.6 * self.height),
                )
        return colour * self.lit[face], None


class VegetationShader:
    """Hedges and tree lines: grass texture and an irregular top (pixels above it are cut away)."""

    def __init__(self, rng: Rng, light: Light, colour: np.ndarray, height: float):
        self.colour, self.height = colour, height
        self.texels_per_m = rng.uniform(40, 90)
        self.roughness = rng.uniform(0.1, 0.35) * min(height, 3.0)
        self.seed = rng.uniform(0, 300)
        self.lit = {
            "x": 0.5 * (light.face(1, 0, 0) + light.face(-1, 0, 0)),
            "z": light.face(0, 0, -1),
            "y": light.face(0, 1, 0),
        }

    def __call__(self, face, x, y, z_world, depth, focal_px) -> Shaded:
        s = z_world if face == "x" else x
        t = y if face != "y" else z_world
        k = self.texels_per_m
        footprint = k * depth / focal_px * (2.5 if face == "x" else 1)
        n = sample_texture("grass", s * k, t * k, footprint)
        n_large = sample_texture(
            "noise", s * 8 + self.seed, t * 8 + self.seed, depth / focal_px * 8
        )
        colour = self.colour[None, :] * ((1 + 0.35 * n + 0.15 * n_large) * self.lit[face])[:, None]
        if face == "y":
            return colour, None
        top = self.height - self.roughness * (
            0.5 + 0.5 * sample_texture("noise", s * 25 + self.seed, self.seed * 3, 1)
        )
        return colour, y < top


class VehicleShader:
    """One part ("body", "cabin" or "tyre") of a vehicle at one placement: bumpers, lamps, plate,
    wheel arches and windows drawn onto its box faces."""

    def __init__(self, vehicle: Vehicle, placement: VehiclePlacement, part: str):
        self.vehicle, self.placement, self.part = vehicle, placement, part

    def __call__(self, face, x, y, z_world, depth, focal_px) -> Shaded:
        v, at = self.vehicle, self.placement
        paint = v.paint
        colour = np.empty((x.size, 3), np.float32)
        colour[:] = paint
        n = sample_texture(
            "fine", (z_world if face == "x" else x) * 80, y * 80, 80 * depth / focal_px
        )
        if self.part == "tyre":
            colour[:] = 0.06 + 0.02 * n[:, None]
            return colour, None
        if face == "y":
            roof_gain = 1.15 if self.part == "body" else 1.1
            colour *= roof_gain
            if v.kind == "bus" or v.kind == "van":
                colour *= 0.95
            return colour * (v.lit["y"] * (1 + 0.04 * n))[:, None], None
        if self.part == "body":
            y0, y1 = v.body_bottom, v.body_top
            up = (y - y0) / (y1 - y0)
            lamps = None
            if face == "z":
                across = (x - at.x0) / (at.x1 - at.x0)
                bumper = up < 0.22
                colour[bumper] = paint * 0.55 if v.dark_bumper else paint * 0.85
                lamps = (up > 0.55) & (up < 0.85) & ((across < 0.16) | (across > 0.84))
                colour[lamps] = v.lamp
                x_middle = (at.x0 + at.x1) / 2
                plate = (np.abs(x - x_middle) < 0.26) & (y > y0 + 0.12) & (y < y0 + 0.25)
                colour[plate] = v.plate
                if v.kind == "bus":
                    window = (up > 0.55) & (across > 0.08) & (across < 0.92)
                    colour[window] = v.glass * (0.8 + 0.4 * up[window, None])
            else:
                along = z_world - at.z0
                for wheel_z in at.wheel_centres:
                    d2 = (along - wheel_z) ** 2 + (y - v.wheel_radius) ** 2
                    arch = d2 < (v.wheel_radius * 1.12) ** 2
                    colour[arch] = 0.05
                    hub = d2 < (v.wheel_radius * 0.5) ** 2
                    colour[hub] = v.hub
                door = np.abs(along - at.door) < 0.025
                colour[door & (up > 0.15)] *= 0.6
                colour[up < 0.12] *= 0.7
                if v.kind == "bus":
                    window = (up > 0.55) & (up < 0.92) & ((along % 1.6) > 0.15)
                    colour[window] = v.glass * (0.8 + 0.4 * up[window, None])
            colour *= (v.lit[face] * (1 + 0.04 * n) * (0.9 + 0.2 * np.clip(up, 0, 1)))[:, None]
            if v.glow > 0 and lamps is not None:  # head and tail lights are on at dusk
                colour[lamps] = v.lamp * (0.5 + v.glow)
            return colour, None
        # cabin: windows
        y0, y1 = v.cabin_bottom, v.cabin_top
        up = (y - y0) / (y1 - y0)
        if face == "z":
            across = (x - at.cabin_x0) / (at.cabin_x1 - at.cabin_x0)
            window = (across > 0.07) & (across < 0.93) & (up > 0.08) & (up < 0.88)
        else:
            along = (z_world - at.cabin_z0) / (at.cabin_z1 - at.cabin_z0)
            window = (
                (up > 0.1)
                & (up < 0.85)
                & (along > 0.05)
                & (along < 0.95)
                & (np.abs(along - v.pillar) > 0.04)
            )
        glass = v.glass[None, :] * (0.7 + 0.6 * up[window, None]) * (1 + 0.05 * n[window, None])
        colour *= (v.lit[face] * (1 + 0.04 * n))[:, None]
        colour[window] = glass
        return colour, None
