"""The objects placed along the street: buildings, hedges, trees, poles, vehicles, people, street
furniture and the far backdrop.

Each object draws its appearance from the world's generator when it is built (the order of those
draws is part of every seed's output, so it must not change) and draws itself into a frame at time
``t`` (frames; vehicles and people move).  Box-shaped objects are *opaque* (rendered near to far
before the ground); sprites are drawn far to near after it, so their soft edges blend over what is
behind them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

import numpy as np
from PIL import Image, ImageDraw

from .camera import NEAR_CLIP, Frame
from .colours import (
    any_colour,
    building_colour,
    constant_colour,
    grey,
    hair_colour,
    hsv,
    pole_colour,
    skin_colour,
    vegetation_colour,
    vehicle_colour,
)
from .labels import BUILDING, PERSON, POLE, UNLABELED, VEGETATION, VEHICLE
from .lighting import Light
from .raster import Shaded, box, clip_sprite_box, face_z, horizontal_bar, sprite, vertical_bar
from .shaders import Facade, FlatShader, VegetationShader, VehicleShader
from .textures import cell_hash, sample_texture

Rng = np.random.Generator
GroundPolygon = list[tuple[float, float]]  # (x, z) corners on the ground plane

LAMP_LIGHT = constant_colour(1.0, 0.88, 0.6)
SIGNAL_BOX = constant_colour(0.06, 0.06, 0.06)
SIGNAL_COLOURS = (
    constant_colour(1, 0.2, 0.1),
    constant_colour(1, 0.75, 0.1),
    constant_colour(0.2, 1, 0.4),
)  # red, amber, green
SIGN_RIM = constant_colour(0.95, 0.95, 0.93)


class SceneObject:
    opaque: ClassVar[bool] = True
    far_culled: ClassVar[bool] = True  # skipped beyond the scene depth (the backdrop never is)
    shadow_reach: ClassVar[float] = 130.0  # m ahead of the camera within which its shadow is drawn

    def z_range(self, t: float) -> tuple[float, float]:
        raise NotImplementedError

    def draw(self, frame: Frame, t: float) -> None:
        raise NotImplementedError

    def ground_shadow(self, light: Light, t: float) -> GroundPolygon | None:
        return None

    def shadow_strength(self, light: Light) -> float:
        return light.shadow


class Building(SceneObject):
    def __init__(
        self,
        rng: Rng,
        light: Light,
        side: int,
        front_x: float,
        depth: float,
        z_start: float,
        z_end: float,
        height: float,
        simple: bool = False,
    ):
        self.side, self.front_x, self.depth = side, front_x, depth
        self.z_start, self.z_end, self.height = z_start, z_end, height
        self.shader = Facade(rng, light, side, front_x, z_start, height, simple)

    def z_range(self, t):
        return self.z_start, self.z_end

    def draw(self, frame, t):
        x0, x1 = (
            (self.front_x - self.depth, self.front_x)
            if self.side < 0
            else (self.front_x, self.front_x + self.depth)
        )
        box(frame, x0, x1, 0.0, self.height, self.z_start, self.z_end, self.shader, BUILDING)

    def ground_shadow(self, light, t):
        dx, dz = light.shadow_offset(self.height)
        if dx * self.side > 0:  # shadow falls away from the street
            return None
        return [
            (self.front_x, self.z_start),
            (self.front_x, self.z_end),
            (self.front_x + dx, self.z_end + dz),
            (self.front_x + dx, self.z_start + dz),
        ]


class Hedge(SceneObject):
    def __init__(
        self,
        rng: Rng,
        light: Light,
        x0: float,
        x1: float,
        z_start: float,
        z_end: float,
        height: float,
        colour: np.ndarray | None = None,
    ):
        self.x0, self.x1, self.z_start, self.z_end, self.height = x0, x1, z_start, z_end, height
        self.shader = VegetationShader(
            rng, light, colour if colour is not None else vegetation_colour(rng), height
        )

    def z_range(self, t):
        return self.z_start, self.z_end

    def draw(self, frame, t):
        box(
            frame,
            self.x0,
            self.x1,
            0.0,
            self.height + 0.01,
            self.z_start,
            self.z_end,
            self.shader,
            VEGETATION,
        )


class Tree(SceneObject):
    """A trunk and a crown of overlapping discs with leaf textures and see-through gaps at its edge."""

    opaque = False

    def __init__(self, rng: Rng, light: Light, x: float, z: float, scale: float = 1.0):
        self.x, self.z = x, z
        self.trunk_height = rng.uniform(1.8, 4.0) * scale
        self.crown_radius = rng.uniform(1.3, 3.8) * scale
        self.trunk_width = rng.uniform(0.15, 0.45) * scale
        self.trunk_colour = hsv(
            rng.uniform(0.05, 0.12), rng.uniform(0.1, 0.5), rng.uniform(0.12, 0.4)
        )
        self.crown_colour = vegetation_colour(rng)
        n = int(rng.integers(7, 16))
        angle = rng.uniform(0, 2 * math.pi, n)
        radius = np.sqrt(rng.uniform(0, 1, n)) * 0.6
        # (dx, dy, r) in crown radii
        self.discs = np.stack(
            [
                np.cos(angle) * radius * rng.uniform(0.9, 1.4),
                np.sin(angle) * radius * rng.uniform(0.7, 1.2),
                rng.uniform(0.3, 0.6, n),
            ],
            1,
        )
        self.crown_y = self.trunk_height + self.crown_radius * rng.uniform(0.7, 1.0)
        self.texels_per_m = rng.uniform(50, 110)
        self.seed = rng.uniform(0, 500)
        self.lit = light.face(0, 0, -1)
        self.sun_x = float(light.sun[0]) if light.sunny else 0.0

    def z_range(self, t):
        return self.z - 0.5, self.z + 0.5

    def draw(self, frame, t):
        cam = frame.camera
        depth = self.z - cam.z
        if depth < NEAR_CLIP * 4:
            return
        vertical_bar(
            frame,
            self.x,
            self.z + 0.01,
            0.0,
            self.trunk_height + self.crown_radius * 0.3,
            self.trunk_width,
            self.trunk_colour,
            VEGETATION,
        )
        px_per_m = cam.focal_px / depth
        radius_px = self.crown_radius * px_per_m
        if radius_px < 0.8:
            return
        u_centre, v_centre = cam.project(self.x, self.crown_y, self.z)
        window = clip_sprite_box(
            frame,
            u_centre - 1.5 * radius_px,
            v_centre - 1.3 * radius_px,
            3 * radius_px + 2,
            2.6 * radius_px + 2,
        )
        if window is None:
            return
        left, top, w, h = window
        supersample = 2 if radius_px < 12 else 1
        mask = Image.new("L", (w * supersample, h * supersample), 0)
        pen = ImageDraw.Draw(mask)
        cx, cy = (u_centre - left) * supersample, (v_centre - top) * supersample
        for dx, dy, r in self.discs:
            px, py = cx + dx * radius_px * supersample, cy - dy * radius_px * supersample
            pr = r * radius_px * supersample * 1.25
            pen.ellipse([px - pr, py - pr, px + pr, py + pr], fill=255)
        alpha = np.asarray(mask, np.float32) * (1 / 255)
        if supersample > 1:
            alpha = alpha.reshape(h, supersample, w, supersample).mean((1, 3))
        # leaf texture on the crown plane
        column_x = (
            np.arange(w, dtype=np.float32) + left + 0.5 - cam.principal_u
        ) / cam.focal_px * depth + cam.x
        row_y = (
            cam.y
            - (np.arange(h, dtype=np.float32) + top + 0.5 - cam.horizon_v) / cam.focal_px * depth
        )
        rr, cc = np.nonzero((alpha > 0.02) & (frame.depth[top : top + h, left : left + w] > depth))
        if rr.size == 0:
            return
        x, y = column_x[cc], row_y[rr]
        k = self.texels_per_m
        clumps = sample_texture("gravel", x * k + self.seed, y * k, k * depth / cam.focal_px)
        leaves = sample_texture(
            "grass", x * k * 2.5, y * k * 2.5 + self.seed, 2.5 * k * depth / cam.focal_px
        )
        large = sample_texture("noise", x * 4 + self.seed, y * 4, depth / cam.focal_px * 4)
        up = np.clip((y - self.crown_y) / self.crown_radius, -1, 1)
        across = np.clip((x - self.x) / self.crown_radius, -1, 1)
        shade = (
            (1 + 0.28 * clumps + 0.12 * leaves + 0.22 * large)
            * (0.85 + 0.2 * up + 0.15 * across * self.sun_x)
            * self.lit
        )
        coverage = alpha[rr, cc]
        coverage = np.where(
            (large < -1.1) & (coverage < 0.99), coverage * 0.2, coverage
        )  # gaps at the edge
        alpha = np.zeros_like(alpha)
        alpha[rr, cc] = coverage
        colour = np.zeros((h, w, 3), np.float32)
        colour[rr, cc] = self.crown_colour[None, :] * np.maximum(shade, 0.05)[:, None]
        sprite(frame, left, top, alpha, colour, depth, VEGETATION)

    def ground_shadow(self, light, t):
        if not light.sunny:
            return None
        dx, dz = light.shadow_offset(self.crown_y)
        cx, cz = self.x + dx, self.z + dz
        r = self.crown_radius * 0.9
        return [
            (cx + r * math.cos(a), cz + r * 1.3 * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, 17)[:-1]
        ]

    def shadow_strength(self, light):
        return light.shadow * 0.75  # light comes through the crown


@dataclass(frozen=True)
class SignPlate:
    centre_y: float
    size: float
    shape: str  # circle, triangle, rect, diamond, octagon
    colour: np.ndarray
    back: bool  # seen from behind: one colour, no rim


SIGN_SHAPES = ("circle", "triangle", "rect", "diamond", "octagon")
# unit outlines (x right, y down) of the polygonal signs
SIGN_OUTLINES: Mapping[str, tuple[tuple[float, float], ...]] = MappingProxyType(
    {
        "triangle": ((0, -1), (0.95, 0.75), (-0.95, 0.75)),
        "rect": ((-1, -0.75), (1, -0.75), (1, 0.75), (-1, 0.75)),
        "diamond": ((0, -1), (1, 0), (0, 1), (-1, 0)),
    }
)


class Pole(SceneObject):
    """A street lamp, a sign post with one or two plates, or a traffic light (on an arm over the road
    at some crossings)."""

    opaque = False
    shadow_reach = 60.0

    def __init__(self, rng: Rng, light: Light, x: float, z: float, kind: str, side: int):
        self.x, self.z, self.kind, self.side = x, z, kind, side
        self.colour = pole_colour(rng)
        self.lit = light.face(0, 0, -1)
        self.glow = light.glow
        if kind == "lamp":
            self.height = rng.uniform(5.0, 10.0)
            self.width = rng.uniform(0.08, 0.2)
            self.arm = rng.uniform(0.4, 2.2) * (-side)  # over the road
            self.head_colour = grey(rng, rng.uniform(0.2, 0.9))
            self.double = rng.random() < 0.25
        elif kind == "sign":
            self.height = rng.uniform(2.3, 3.6)
            self.width = rng.uniform(0.06, 0.12)
            self.plates: list[SignPlate] = []
            y = self.height
            for _ in range(int(rng.integers(1, 3))):
                size = rng.uniform(0.45, 0.8)
                shape = SIGN_SHAPES[rng.integers(5)]
                # the whole list is built (its grey draws from the generator) before one is picked
                face_colour = [
                    hsv(0.0, 0.85, 0.8),
                    hsv(0.6, 0.8, 0.6),
                    grey(rng, 0.92),
                    hsv(0.14, 0.9, 0.9),
                    hsv(0.35, 0.7, 0.45),
                ][rng.integers(5)]
                back = rng.random() < 0.3
                self.plates.append(
                    SignPlate(
                        y - size / 2, size, shape, face_colour if not back else grey(rng, 0.6), back
                    )
                )
                y -= size + 0.1
        else:  # traffic light
            self.height = rng.uniform(2.8, 4.5)
            self.width = rng.uniform(0.1, 0.2)
            self.arm = rng.uniform(2.5, 6.0) * (-side) if rng.random() < 0.4 else 0.0
            self.signal = int(rng.integers(3))  # index into SIGNAL_COLOURS
        self.band_draw = rng.random()

    def z_range(self, t):
        return self.z - 0.2, self.z + 0.2

    def draw(self, frame, t):
        cam = frame.camera
        depth = self.z - cam.z
        if depth < NEAR_CLIP * 3:
            return
        colour = self.colour * self.lit
        vertical_bar(
            frame,
            self.x,
            self.z,
            0.0,
            self.height,
            self.width,
            colour,
            POLE,
            band=self.band_draw < frame.band_share * 0.5,
        )
        px_per_m = cam.focal_px / depth
        if self.kind == "lamp":
            self._draw_lamp(frame, colour)
        elif self.kind == "sign":
            for plate in self.plates:
                if plate.size * px_per_m < 1.5:  # too small to show its shape
                    half = plate.size / 2
                    horizontal_bar(
                        frame,
                        self.x - half,
                        self.x + half,
                        self.z - 0.03,
                        plate.centre_y - half,
                        plate.centre_y + half,
                        plate.colour * self.lit,
                        POLE,
                    )
                    continue
                self._draw_plate(frame, plate, depth, px_per_m)
        else:
            self._draw_traffic_light(frame, colour, px_per_m)

    def _draw_lamp(self, frame: Frame, colour: np.ndarray) -> None:
        for direction in (1, -1) if self.double else (1,):
            arm_end = self.x + direction * self.arm
            horizontal_bar(
                frame, self.x, arm_end, self.z - 0.02, self.height - 0.08, self.height, colour, POLE
            )
            outward = direction * (1.0 if self.arm >= 0 else -1.0)
            head = (
                self.head_colour * self.lit
                if self.glow <= 0  # a lamp that is on at dusk
                else LAMP_LIGHT * self.glow * 1.2
            )
            horizontal_bar(
                frame,
                arm_end - 0.3 * outward,
                arm_end + 0.25 * outward,
                self.z - 0.04,
                self.height - 0.22,
                self.height + 0.02,
                head,
                POLE,
            )

    def _draw_traffic_light(self, frame: Frame, colour: np.ndarray, px_per_m: float) -> None:
        box_width, box_height = 0.35, 0.95
        arm_end = self.x + self.arm
        if self.arm:
            horizontal_bar(
                frame, self.x, arm_end, self.z - 0.02, self.height - 0.1, self.height, colour, POLE
            )
        for box_x in (self.x, arm_end) if self.arm else (self.x,):
            horizontal_bar(
                frame,
                box_x - box_width / 2,
                box_x + box_width / 2,
                self.z - 0.05,
                self.height - box_height,
                self.height,
                SIGNAL_BOX,
                POLE,
            )
            if box_height * px_per_m > 6:  # big enough to show which light is on
                light_y = self.height - box_height * (0.2 + 0.3 * self.signal)
                horizontal_bar(
                    frame,
                    box_x - 0.08,
                    box_x + 0.08,
                    self.z - 0.07,
                    light_y - 0.08,
                    light_y + 0.08,
                    SIGNAL_COLOURS[self.signal],
                    POLE,
                )

    def _draw_plate(self, frame: Frame, plate: SignPlate, depth: float, px_per_m: float) -> None:
        cam = frame.camera
        u_centre, v_centre = cam.project(self.x, plate.centre_y, self.z)
        radius_px = plate.size * px_per_m / 2
        window = clip_sprite_box(
            frame,
            u_centre - radius_px - 1,
            v_centre - radius_px - 1,
            2 * radius_px + 3,
            2 * radius_px + 3,
        )
        if window is None:
            return
        left, top, w, h = window
        supersample = 3
        outline = Image.new("L", (w * supersample, h * supersample), 0)
        inner = Image.new("L", (w * supersample, h * supersample), 0)
        pen, inner_pen = ImageDraw.Draw(outline), ImageDraw.Draw(inner)
        ox, oy, r = (
            (u_centre - left) * supersample,
            (v_centre - top) * supersample,
            radius_px * supersample,
        )
        if plate.shape == "circle":
            pen.ellipse([ox - r, oy - r, ox + r, oy + r], fill=255)
            inner_pen.ellipse(
                [ox - r * 0.75, oy - r * 0.75, ox + r * 0.75, oy + r * 0.75], fill=255
            )
        else:
            if plate.shape == "octagon":
                corners = [
                    (math.cos(a) * 1.0, math.sin(a) * 1.0)
                    for a in np.arange(8) * math.pi / 4 + math.pi / 8
                ]
            else:
                corners = SIGN_OUTLINES[plate.shape]
            pen.polygon([(ox + x * r, oy + y * r) for x, y in corners], fill=255)
            inner_pen.polygon(
                [(ox + x * r * 0.75, oy + y * r * 0.75) for x, y in corners], fill=255
            )
        alpha = (
            np.asarray(outline, np.float32).reshape(h, supersample, w, supersample).mean((1, 3))
            / 255
        )
        inside = (
            np.asarray(inner, np.float32).reshape(h, supersample, w, supersample).mean((1, 3)) / 255
        )
        rim = SIGN_RIM if not plate.back else plate.colour
        colour = (
            rim[None, None, :] * (1 - inside[..., None])
            + plate.colour[None, None, :] * inside[..., None]
        ) * self.lit
        sprite(frame, left, top, alpha, colour, depth - 0.03, POLE)

    def ground_shadow(self, light, t):
        if not light.sunny:
            return None
        dx, dz = light.shadow_offset(self.height)
        w = 0.08
        return [
            (self.x - w, self.z),
            (self.x + w, self.z),
            (self.x + dx + w, self.z + dz),
            (self.x + dx - w, self.z + dz),
        ]


@dataclass(frozen=True)
class VehiclePlacement:
    """Where a vehicle's boxes are in one frame (it moves along z)."""

    x0: float
    x1: float
    z0: float
    z1: float
    wheel_centres: tuple[float, float]  # m from the near end
    door: float  # m from the near end
    cabin_x0: float = 0.0
    cabin_x1: float = 0.0
    cabin_z0: float = 0.0
    cabin_z1: float = 0.0


class Vehicle(SceneObject):
    """A car, van or bus: body and cabin boxes on tyres, driving at ``speed`` m per frame along z."""

    def __init__(
        self, rng: Rng, light: Light, x: float, z: float, speed: float, kind: str, facing: int
    ):
        self.x, self.z_at_start, self.speed, self.kind, self.facing = x, z, speed, kind, facing
        if kind == "car":
            length, width, height = (
                rng.uniform(3.7, 4.9),
                rng.uniform(1.6, 1.9),
                rng.uniform(1.35, 1.6),
            )
        elif kind == "van":
            length, width, height = (
                rng.uniform(4.8, 6.0),
                rng.uniform(1.85, 2.1),
                rng.uniform(1.9, 2.6),
            )
        else:
            length, width, height = (
                rng.uniform(8.0, 12.0),
                rng.uniform(2.4, 2.55),
                rng.uniform(2.9, 3.4),
            )
        self.length, self.width, self.height = length, width, height
        self.wheel_radius = rng.uniform(0.28, 0.36) if kind == "car" else rng.uniform(0.34, 0.5)
        self.paint = vehicle_colour(rng)
        self.glass = hsv(rng.uniform(0.5, 0.65), rng.uniform(0, 0.3), rng.uniform(0.05, 0.3))
        self.hub = grey(rng, rng.uniform(0.3, 0.8))
        self.dark_bumper = rng.random() < 0.5
        self.plate = grey(rng, 0.9) if rng.random() < 0.7 else hsv(0.15, 0.8, 0.9)
        # the near end is the rear if the vehicle drives away from the camera
        self.lamp = hsv(0.0, 0.85, rng.uniform(0.5, 0.9)) if facing > 0 else hsv(0.12, 0.15, 0.95)
        self.body_bottom = self.wheel_radius * 0.55
        if kind == "car":
            self.body_top = rng.uniform(0.85, 1.0)
        elif kind == "van":
            self.body_top = rng.uniform(1.0, 1.2)
        else:
            self.body_top = height
        self.cabin_bottom, self.cabin_top = self.body_top, height
        self.cabin_inset = rng.uniform(0.1, 0.2)
        self.cabin_ends: tuple[float, float] | None  # share of the length before / after the cabin
        if kind == "car":
            near, far = rng.uniform(0.18, 0.3), rng.uniform(0.22, 0.32)
            if facing < 0:
                near, far = far, near
            self.cabin_ends = (near, far)
        else:
            self.cabin_ends = (0.0, 0.0) if kind == "van" else None
        self.pillar = rng.uniform(0.4, 0.6)
        self.lit = {
            "x": 0.5 * (light.face(1, 0, 0) + light.face(-1, 0, 0)),
            "z": light.face(0, 0, -1),
            "y": light.face(0, 1, 0) * 1.05,
        }
        self.glow = light.glow
        self.band_draw = rng.random()

    def z_range(self, t):
        z = self.z_at_start + self.speed * t
        return z - self.length / 2, z + self.length / 2

    def placement(self, t: float) -> VehiclePlacement:
        z0, z1 = self.z_range(t)
        x0, x1 = self.x - self.width / 2, self.x + self.width / 2
        length, r = self.length, self.wheel_radius
        wheels = (0.75 + r, length - 0.75 - r) if self.kind != "bus" else (1.8, length - 2.5)
        placed = VehiclePlacement(x0, x1, z0, z1, wheels, length * 0.5)
        if self.cabin_ends is None:
            return placed
        near, far = self.cabin_ends
        cabin_x0, cabin_x1 = x0 + self.cabin_inset, x1 - self.cabin_inset
        if self.kind == "van":
            cabin_x0, cabin_x1 = x0 + 0.03, x1 - 0.03
        return VehiclePlacement(
            x0,
            x1,
            z0,
            z1,
            wheels,
            length * 0.5,
            cabin_x0,
            cabin_x1,
            z0 + near * length,
            z1 - far * length,
        )

    def draw(self, frame, t):
        at = self.placement(t)
        band = self.band_draw < frame.band_share
        r = self.wheel_radius
        tyre = VehicleShader(self, at, "tyre")
        for wheel_z in at.wheel_centres:
            box(
                frame,
                at.x0 + 0.04,
                at.x1 - 0.04,
                0.0,
                0.62 * r + 0.2,
                at.z0 + wheel_z - r,
                at.z0 + wheel_z + r,
                tyre,
                VEHICLE,
                band,
            )
        box(
            frame,
            at.x0,
            at.x1,
            self.body_bottom,
            self.body_top,
            at.z0,
            at.z1,
            VehicleShader(self, at, "body"),
            VEHICLE,
            band,
        )
        if self.cabin_ends is not None:
            box(
                frame,
                at.cabin_x0,
                at.cabin_x1,
                self.cabin_bottom,
                self.cabin_top,
                at.cabin_z0,
                at.cabin_z1,
                VehicleShader(self, at, "cabin"),
                VEHICLE,
                band,
            )

    def ground_shadow(self, light, t):
        z0, z1 = self.z_range(t)
        e = 0.25
        half = self.width / 2
        return [
            (self.x - half - e, z0 - e),
            (self.x + half + e, z0 - e),
            (self.x + half + e, z1 + e),
            (self.x - half - e, z1 + e),
        ]

    def shadow_strength(self, light):
        return max(light.shadow, 0.45)  # dark under the car even without sun


class Person(SceneObject):
    """A pedestrian drawn as a flat figure (front, back or side view), walking or standing."""

    opaque = False
    shadow_reach = 60.0

    def __init__(self, rng: Rng, light: Light, x: float, z: float, speed: float, view: str):
        self.x, self.z_at_start, self.speed, self.view = x, z, speed, view
        child = rng.random() < 0.1
        self.height = rng.uniform(1.0, 1.35) if child else rng.uniform(1.55, 1.95)
        self.build = rng.uniform(0.85, 1.25)  # width factor
        self.skin, self.hair = skin_colour(rng), hair_colour(rng)
        self.top, self.bottom = (
            any_colour(rng),
            (hsv(0.6, 0.5, 0.35) if rng.random() < 0.35 else any_colour(rng)),
        )
        self.shoe = grey(rng, rng.uniform(0.05, 0.6))
        self.coat = rng.random() < 0.25
        self.skirt = (not self.coat) and rng.random() < 0.12
        self.bag = rng.random() < 0.25
        self.bag_colour = any_colour(rng)
        self.hat = rng.random() < 0.12
        self.walking = abs(speed) > 0 or rng.random() < 0.3
        self.phase = rng.uniform(0, 2 * math.pi)
        self.lit = light.face(0, 0, -1)
        self.band_draw = rng.random() * 0.8

    def z_range(self, t):
        z = self.z_at_start + self.speed * t
        return z - 0.2, z + 0.2

    def draw(self, frame, t):
        cam = frame.camera
        z_world = self.z_at_start + self.speed * t
        depth = z_world - cam.z
        if depth < 1.0:
            return
        px_per_m = cam.focal_px / depth
        height_px = self.height * px_per_m
        if height_px < 3.0:
            return
        u_feet, v_feet = cam.project(self.x, 0.0, z_world)
        window = clip_sprite_box(
            frame,
            u_feet - 0.45 * height_px,
            v_feet - 1.04 * height_px,
            0.9 * height_px + 3,
            1.06 * height_px + 3,
        )
        if window is None:
            return
        left, top, w, h = window
        supersample = 4 if height_px < 40 else 2
        rgb = Image.new("RGB", (w * supersample, h * supersample), (0, 0, 0))
        mask = Image.new("L", (w * supersample, h * supersample), 0)
        paint, cover = ImageDraw.Draw(rgb), ImageDraw.Draw(mask)
        ox, oy, scale = (
            (u_feet - left) * supersample,
            (v_feet - top) * supersample,
            height_px * supersample,
        )

        def to_px(x: float, y: float) -> tuple[float, float]:
            # body coordinates in heights: x right of the centre line, y up from the feet
            return (ox + x * scale, oy - y * scale)

        def shaded(colour: np.ndarray) -> tuple[int, ...]:
            return tuple(int(v * 255) for v in np.clip(colour * self.lit, 0, 1))

        def polygon(corners, colour: np.ndarray) -> None:
            q = [to_px(x, y) for x, y in corners]
            paint.polygon(q, fill=shaded(colour))
            cover.polygon(q, fill=255)

        def ellipse(x: float, y: float, rx: float, ry: float, colour: np.ndarray) -> None:
            a, b = to_px(x - rx, y + ry), to_px(x + rx, y - ry)
            paint.ellipse([a, b], fill=shaded(colour))
            cover.ellipse([a, b], fill=255)

        bw = self.build
        phase = self.phase + (z_world * 2.2 if self.walking else 0.0)
        side = self.view == "side"
        swing = math.sin(phase) if self.walking else 0.0
        shoulder = (0.07 if side else 0.125) * bw  # half shoulder width
        hip = (0.06 if side else 0.095) * bw  # half hip width
        leg = 0.045 * bw
        # legs
        if side:
            stride = 0.16 * swing
            for sign, colour in ((-1, self.bottom * 0.8), (1, self.bottom)):
                foot_x = sign * stride
                polygon(
                    [
                        (-leg, 0.48),
                        (leg, 0.48),
                        (foot_x + leg * 0.8, 0.03),
                        (foot_x - leg * 0.8, 0.03),
                    ],
                    colour,
                )
                polygon(
                    [
                        (foot_x - leg, 0.0),
                        (foot_x + leg * 2.0, 0.0),
                        (foot_x + leg * 2.0, 0.035),
                        (foot_x - leg, 0.035),
                    ],
                    self.shoe,
                )
        else:
            for sign in (-1, 1):
                lift = 0.025 * max(0.0, sign * swing)
                xa, xb = sign * (hip - leg), sign * (hip - leg * 0.9) * 0.85
                polygon(
                    [
                        (xa - leg, 0.48),
                        (xa + leg, 0.48),
                        (xb + leg * 0.85, 0.03 + lift),
                        (xb - leg * 0.85, 0.03 + lift),
                    ],
                    self.bottom,
                )
                polygon(
                    [
                        (xb - leg, lift),
                        (xb + leg, lift),
                        (xb + leg, 0.035 + lift),
                        (xb - leg, 0.035 + lift),
                    ],
                    self.shoe,
                )
        if self.skirt:
            polygon(
                [(-hip * 0.9, 0.5), (hip * 0.9, 0.5), (hip * 1.6, 0.3), (-hip * 1.6, 0.3)],
                self.bottom,
            )
        # back arm (side view)
        arm = 0.032 * bw
        if side:
            hand_x = -0.12 * swing
            polygon(
                [(-arm, 0.8), (arm, 0.8), (hand_x + arm, 0.47), (hand_x - arm, 0.47)],
                self.top * 0.75,
            )
        # torso
        hem = 0.3 if self.coat else 0.46
        hem_half = hip * (1.25 if self.coat else 1.0)
        polygon(
            [(-shoulder, 0.815), (shoulder, 0.815), (hem_half, hem), (-hem_half, hem)], self.top
        )
        ellipse(-shoulder * 0.8, 0.79, shoulder * 0.3, 0.025, self.top)
        ellipse(shoulder * 0.8, 0.79, shoulder * 0.3, 0.025, self.top)
        if self.bag:
            if side:
                polygon(
                    [
                        (-shoulder - 0.07, 0.78),
                        (-shoulder + 0.01, 0.78),
                        (-shoulder + 0.01, 0.55),
                        (-shoulder - 0.07, 0.55),
                    ],
                    self.bag_colour,
                )
            else:
                polygon(
                    [
                        (shoulder, 0.58),
                        (shoulder + 0.07, 0.58),
                        (shoulder + 0.07, 0.45),
                        (shoulder, 0.45),
                    ],
                    self.bag_colour,
                )
        # front arms
        if side:
            hand_x = 0.12 * swing
            polygon(
                [(-arm, 0.8), (arm, 0.8), (hand_x + arm, 0.47), (hand_x - arm, 0.47)],
                self.top * 0.9,
            )
            ellipse(hand_x, 0.455, arm * 1.1, arm * 1.2, self.skin)
        else:
            for sign in (-1, 1):
                arm_x = sign * (shoulder + arm * 0.6)
                polygon(
                    [
                        (arm_x - arm, 0.8),
                        (arm_x + arm, 0.8),
                        (arm_x + sign * 0.02 + arm, 0.48),
                        (arm_x + sign * 0.02 - arm, 0.48),
                    ],
                    self.top * 0.9,
                )
                ellipse(arm_x + sign * 0.02, 0.465, arm * 1.1, arm * 1.2, self.skin)
        # neck + head + hair
        polygon([(-0.022, 0.86), (0.022, 0.86), (0.022, 0.8), (-0.022, 0.8)], self.skin)
        head_x = 0.01 if side else 0.0
        back = self.view == "back"
        ellipse(head_x, 0.925, 0.052, 0.066, self.hair if back else self.skin)
        ellipse(head_x - (0.01 if side else 0), 0.955, 0.054, 0.04, self.hair)
        if self.hat:
            ellipse(head_x, 0.975, 0.06, 0.03, self.bag_colour)
        alpha = np.asarray(mask, np.float32).reshape(h, supersample, w, supersample).mean(
            (1, 3)
        ) * (1 / 255)
        colour = np.asarray(rgb, np.float32).reshape(h, supersample, w, supersample, 3).mean(
            (1, 3)
        ) * (1 / 255)
        colour = (
            colour / np.maximum(alpha, 1e-3)[..., None]
        )  # un-premultiply the box-filtered colour
        sprite(
            frame, left, top, alpha, colour, depth, PERSON, band=self.band_draw < frame.band_share
        )

    def ground_shadow(self, light, t):
        z = self.z_at_start + self.speed * t
        if not light.sunny:
            r = 0.3
            return [
                (self.x - r, z - r),
                (self.x + r, z - r),
                (self.x + r, z + r),
                (self.x - r, z + r),
            ]
        dx, dz = light.shadow_offset(self.height)
        w = 0.18
        return [
            (self.x - w, z),
            (self.x + w, z),
            (self.x + dx + w, z + dz),
            (self.x + dx - w, z + dz),
        ]

    def shadow_strength(self, light):
        return light.shadow if light.sunny else 0.3  # a soft contact shadow under overcast skies


CLUTTER_KINDS = ("bin", "cabinet", "bench", "bollard", "box", "pillar", "planter")
CLUTTER_CHANCES = (0.25, 0.15, 0.15, 0.15, 0.12, 0.06, 0.12)
CLUTTER_SIZES: Mapping[str, tuple[float, float, float]] = MappingProxyType(
    {  # (width, height, depth) in m
        "bin": (0.6, 1.0, 0.6),
        "cabinet": (0.8, 1.3, 0.4),
        "bench": (1.8, 0.8, 0.6),
        "bollard": (0.15, 0.9, 0.15),
        "box": (1.0, 0.8, 0.8),
        "pillar": (1.0, 2.6, 1.0),
        "planter": (1.2, 0.9, 1.2),
    }
)


class Clutter(SceneObject):
    """Unlabelled street furniture: bins, cabinets, benches, bollards, boxes, ad pillars (label 255)."""

    def __init__(self, rng: Rng, light: Light, x: float, z: float):
        self.x, self.z = x, z
        kind = CLUTTER_KINDS[rng.choice(7, p=list(CLUTTER_CHANCES))]
        dims = CLUTTER_SIZES[kind]
        scale = rng.uniform(0.8, 1.2)
        self.width, self.height, self.depth = dims[0] * scale, dims[1] * scale, dims[2] * scale
        if kind == "bench":
            self.width, self.depth = self.depth, self.width  # benches run along the street
        self.kind = kind
        colour = any_colour(rng)
        poster = (
            int(rng.integers(1000)) if kind in ("pillar", "cabinet") and rng.random() < 0.6 else -1
        )
        self.shader = FlatShader(
            colour,
            light,
            ["fine", "moon", "gravel"][rng.integers(3)],
            rng.uniform(30, 120),
            rng.uniform(0.05, 0.3),
            poster,
            self.height,
        )

    def z_range(self, t):
        return self.z - self.depth / 2, self.z + self.depth / 2

    def draw(self, frame, t):
        box(
            frame,
            self.x - self.width / 2,
            self.x + self.width / 2,
            0.0,
            self.height,
            self.z - self.depth / 2,
            self.z + self.depth / 2,
            self.shader,
            UNLABELED,
        )

    def ground_shadow(self, light, t):
        e = 0.1
        hw, hd = self.width / 2, self.depth / 2
        return [
            (self.x - hw - e, self.z - hd - e),
            (self.x + hw + e, self.z - hd - e),
            (self.x + hw + e, self.z + hd + e),
            (self.x - hw - e, self.z + hd + e),
        ]

    def shadow_strength(self, light):
        return max(light.shadow, 0.45)


class Backdrop(SceneObject):
    """Far skyline ("city") or tree line ("trees") at a fixed world depth, with an irregular top; it is
    its own shader."""

    far_culled = False

    def __init__(self, rng: Rng, light: Light, z: float, kind: str):
        self.z, self.kind = z, kind
        self.label = BUILDING if kind == "city" else VEGETATION
        self.colour = building_colour(rng) * 0.9 if kind == "city" else vegetation_colour(rng)
        self.max_height = rng.uniform(10, 45) if kind == "city" else rng.uniform(8, 25)
        self.seed = rng.uniform(0, 1000)
        self.block_width = rng.uniform(8, 30)  # m per skyline block
        self.lit = light.face(0, 0, -1)

    def z_range(self, t):
        return self.z, self.z + 1

    def __call__(self, face, x, y, z_world, depth, focal_px) -> Shaded:
        if self.kind == "city":
            block = np.floor(x / self.block_width)
            top = self.max_height * (0.25 + 0.75 * cell_hash(block, 3.0, self.seed))
            n = sample_texture("fine", x * 20, y * 20, 20 * depth / focal_px)
        else:
            top = self.max_height * (
                0.5
                + 0.35 * sample_texture("noise", x * 2 + self.seed, self.seed, 1)
                + 0.1 * sample_texture("fine", x * 30, self.seed, 1)
            )
            n = sample_texture("grass", x * 40, y * 40, 40 * depth / focal_px)
        colour = self.colour[None, :] * ((1 + 0.15 * n) * self.lit)[:, None]
        return colour, y < top

    def draw(self, frame, t):
        face_z(frame, self.z, -2000, 2000, 0.0, self.max_height * 1.6, self, self.label)
