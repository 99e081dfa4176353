"""The street's layout: lanes, crossings, the bands of ground on each side and every object along
the street, drawn from the world's generator in one fixed order (the order is part of each seed's
output: changing it changes every scene).

Lateral positions on a side are built as magnitudes (distance from the centre line) and signed with
the side (-1 left, 1 right) when an object is placed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import SCENE_DEPTH
from .colours import grey, hsv, vegetation_colour
from .ground import GroundMaterial, LaneMarking, Street, Surface
from .labels import ROAD, SIDEWALK, VEGETATION
from .lighting import Light
from .objects import Backdrop, Building, Clutter, Hedge, Person, Pole, SceneObject, Tree, Vehicle

Rng = np.random.Generator
SIDES = (-1, 1)
VIEWS = ("front", "back", "side")


@dataclass(frozen=True)
class StreetExtent:
    """The stretch of street objects are placed on, for a camera moving over ``frames`` frames."""

    z_begin: float  # behind the camera at the first frame
    z_end: float  # the scene depth ahead of the camera at the last frame
    z_small_end: float  # people and clutter are too small to see beyond this

    @classmethod
    def for_frames(cls, speed: float, frames: int) -> StreetExtent:
        travelled = speed * (frames - 1)
        return cls(-15.0, travelled + SCENE_DEPTH, travelled + 110.0)


@dataclass(frozen=True)
class Lanes:
    count: int
    width: float
    half_width: float  # of the carriageway, without parking strips
    centres: tuple[float, ...]
    drive_side: int  # 1: right-hand traffic, -1: left-hand


@dataclass(frozen=True)
class Crossings:
    spans: tuple[tuple[float, float], ...]  # z spans

    def overlaps(self, z0: float, z1: float, pad: float = 0.0) -> bool:
        return any(z0 < b + pad and z1 > a - pad for a, b in self.spans)


@dataclass(frozen=True)
class SideProfile:
    """The bands of ground on one side of the street, from the kerb outwards."""

    side: int
    style: str  # urban, suburban, park, industrial
    has_walk: bool
    road_edge: float  # |x| of the kerb line
    walk_inner: float | None  # |x| where the sidewalk proper starts (None: no sidewalk)
    walk_outer: float  # |x| where the sidewalk (or the verge) ends
    front: float  # depth of the front garden / forecourt (m), 0: none
    building_line: float  # |x| where the buildings stand
    bands: tuple[tuple[float, int], ...]  # (|x| where the band starts, material index)


@dataclass(frozen=True)
class StreetScene:
    street: Street
    objects: list[SceneObject]
    camera_x: float


class StreetBuilder:
    """Builds one street: call :meth:`build` once."""

    def __init__(self, rng: Rng, light: Light, extent: StreetExtent, camera_speed: float):
        self.rng, self.light, self.extent, self.camera_speed = rng, light, extent, camera_speed
        self.materials: list[GroundMaterial] = []
        self.objects: list[SceneObject] = []

    def build(self) -> StreetScene:
        rng = self.rng
        lanes = self._draw_lanes()
        camera_x = self._draw_camera_lane(lanes)
        self.materials.append(GroundMaterial(rng, Surface.ROAD, ROAD))
        markings, marking_colour, marking_wear = self._draw_markings(lanes)
        sidewalk_sides = rng.choice(3, p=[0.7, 0.12, 0.18])  # both, only left, only right
        crossings = self._draw_crossings()
        zebras = [
            (a - rng.uniform(3.0, 5.0), a - 0.6) for a, b in crossings.spans if rng.random() < 0.6
        ]
        parking = {side: rng.random() < 0.5 for side in SIDES}  # parking strips widen the road
        road_edge = {
            side: lanes.half_width + (rng.uniform(2.0, 2.6) if parking[side] else 0.0)
            for side in SIDES
        }
        profiles = {}
        for side in SIDES:
            has_walk = (
                sidewalk_sides == 0
                or (sidewalk_sides == 1 and side < 0)
                or (sidewalk_sides == 2 and side > 0)
            )
            profile = self._lay_out_side(side, road_edge[side], has_walk)
            profiles[side] = profile
            self._place_side_objects(profile, parking[side], crossings)
        self._place_crossing_pedestrians(zebras, lanes)
        self._place_traffic(lanes, camera_x)
        self._place_backdrop()
        band_starts, band_materials = _ground_bands(profiles[-1], profiles[1], road_edge)
        street = Street(
            self.materials,
            band_starts,
            band_materials,
            list(crossings.spans),
            zebras,
            markings,
            marking_colour,
            marking_wear,
            road_edge,
        )
        return StreetScene(street, self.objects, camera_x)

    # ------------------------------------------------------------------ the carriageway

    def _draw_lanes(self) -> Lanes:
        rng = self.rng
        count = int(rng.choice([2, 2, 2, 3, 4, 4]))
        width = rng.uniform(2.8, 3.7)
        half_width = count * width / 2
        centres = tuple(-half_width + width * (i + 0.5) for i in range(count))
        drive_side = 1 if rng.random() < 0.7 else -1
        return Lanes(count, width, half_width, centres, drive_side)

    def _draw_camera_lane(self, lanes: Lanes) -> float:
        own = [c for c in lanes.centres if c * lanes.drive_side > 0] or list(lanes.centres)
        return float(self.rng.choice(own)) + self.rng.uniform(-0.4, 0.4)

    def _draw_markings(self, lanes: Lanes) -> tuple[list[LaneMarking], np.ndarray, float]:
        rng = self.rng
        markings = []
        white = grey(rng, rng.uniform(0.75, 0.95), 0.03)
        wear = rng.uniform(0.0, 0.5)
        if rng.random() < 0.88:
            centre_colour = (
                hsv(rng.uniform(0.1, 0.15), rng.uniform(0.6, 0.9), 0.85)
                if rng.random() < 0.25
                else white
            )
            width = rng.uniform(0.1, 0.16)
            dash, period = rng.uniform(2.0, 4.0), rng.uniform(6.0, 12.0)
            for i in range(1, lanes.count):
                x = -lanes.half_width + lanes.width * i
                centre = abs(x) < 1e-6
                solid = centre and rng.random() < 0.35
                markings.append(
                    LaneMarking(
                        x,
                        width,
                        solid,
                        dash,
                        period,
                        rng.uniform(0, period),
                        centre_colour if centre else white,
                    )
                )
            if rng.random() < 0.75:  # edge lines
                for side in SIDES:
                    markings.append(
                        LaneMarking(
                            side * (lanes.half_width - 0.3),
                            width,
                            rng.random() < 0.85,
                            dash,
                            period,
                            0.0,
                            white,
                        )
                    )
        return markings, white, wear

    def _draw_crossings(self) -> Crossings:
        rng = self.rng
        spans = []
        z = rng.uniform(12, 160)
        while z < self.extent.z_end:
            width = rng.uniform(7, 14)
            spans.append((z, z + width))
            z += width + rng.uniform(60, 220)
        return Crossings(tuple(spans))

    # ------------------------------------------------------------------ the sides

    def _add_band(
        self, bands: list[tuple[float, int]], width: float, surface: Surface, label: int
    ) -> None:
        bands.append((width, len(self.materials)))
        self.materials.append(GroundMaterial(self.rng, surface, label))

    def _lay_out_side(self, side: int, road_edge: float, has_walk: bool) -> SideProfile:
        rng = self.rng
        style = str(
            rng.choice(["urban", "suburban", "park", "industrial"], p=[0.45, 0.3, 0.1, 0.15])
        )
        widths: list[tuple[float, int]] = []  # (width, material index) from the kerb outwards
        if has_walk:
            self._add_band(widths, rng.uniform(0.15, 0.3), Surface.KERB, SIDEWALK)
            if rng.random() < 0.3:  # a grass verge between kerb and sidewalk
                self._add_band(widths, rng.uniform(0.6, 2.5), Surface.GRASS, VEGETATION)
            self._add_band(widths, rng.uniform(1.5, 5.0), Surface.WALK, SIDEWALK)
        else:
            self._add_band(widths, rng.uniform(1.0, 4.0), Surface.GRASS, VEGETATION)
        walk_inner = road_edge + sum(w for w, _ in widths[:-1]) if has_walk else None
        walk_outer = road_edge + sum(w for w, _ in widths)
        if style == "urban":
            front = rng.uniform(0, 1.0) if rng.random() < 0.4 else 0.0
            front_surface = Surface.PAVED
        elif style == "suburban":
            front, front_surface = (
                rng.uniform(2.0, 8.0),
                (Surface.GRASS if rng.random() < 0.7 else Surface.PAVED),
            )
        elif style == "industrial":
            front, front_surface = (
                rng.uniform(1.0, 8.0),
                (Surface.PAVED if rng.random() < 0.6 else Surface.GRASS),
            )
        else:
            front, front_surface = rng.uniform(5, 30), Surface.GRASS
        if front > 0:
            self._add_band(
                widths,
                front,
                front_surface,
                VEGETATION if front_surface == Surface.GRASS else SIDEWALK,
            )
        building_line = road_edge + sum(w for w, _ in widths)
        beyond = Surface.GRASS if rng.random() < 0.5 else Surface.PAVED
        self._add_band(widths, 1e5, beyond, VEGETATION if beyond == Surface.GRASS else SIDEWALK)
        bands = []
        x = road_edge
        for w, material in widths:
            bands.append((x, material))
            x += w
        return SideProfile(
            side,
            style,
            has_walk,
            road_edge,
            walk_inner,
            walk_outer,
            front,
            building_line,
            tuple(bands),
        )

    def _place_side_objects(self, side: SideProfile, parking: bool, crossings: Crossings) -> None:
        if side.style != "park":
            self._place_buildings(side, crossings)
        self._place_back_row(side)
        self._place_hedges(side, crossings)
        self._place_trees(side, crossings)
        self._place_poles(side, crossings)
        self._place_people(side)
        self._place_clutter(side, crossings)
        if parking:
            self._park_cars(side, crossings)

    def _place_buildings(self, side: SideProfile, crossings: Crossings) -> None:
        rng, light, sign = self.rng, self.light, side.side
        z = self.extent.z_begin - rng.uniform(0, 20)
        # all three styles' draws are made, whichever is used
        base_height = {
            "urban": rng.uniform(10, 28),
            "suburban": rng.uniform(5, 9),
            "industrial": rng.uniform(5, 12),
        }[side.style]
        while z < self.extent.z_end:
            if side.style == "urban":
                length, gap = (
                    rng.uniform(8, 30),
                    (rng.uniform(2, 8) if rng.random() < 0.12 else 0.0),
                )
            elif side.style == "suburban":
                length, gap = rng.uniform(7, 14), rng.uniform(3, 14)
            else:
                length, gap = rng.uniform(15, 60), rng.uniform(2, 25)
            z0, z1 = z, z + length
            z = z1 + gap
            if crossings.overlaps(z0, z1, 2.0):
                # cut the building back from the crossing
                for a, b in crossings.spans:
                    if z0 < b + 2 and z1 > a - 2:
                        if z0 < a - 2:
                            z1 = a - 2
                        else:
                            z0 = b + 2
                            z = max(z, z0 + 1)
                if z1 - z0 < 4:
                    continue
            height = max(3.5, base_height * rng.uniform(0.6, 1.5))
            setback = rng.uniform(0, 1.2) if rng.random() < 0.3 else 0.0
            depth = rng.uniform(10, 20)
            self.objects.append(
                Building(
                    rng, light, sign, sign * (side.building_line + setback), depth, z0, z1, height
                )
            )
            if (
                side.style == "suburban" and gap > 4 and rng.random() < 0.7
            ):  # a tree between the houses
                self.objects.append(
                    Tree(
                        rng,
                        light,
                        sign * (side.building_line + rng.uniform(1, 6)),
                        z1 + gap / 2,
                        1.2,
                    )
                )

    def _place_back_row(self, side: SideProfile) -> None:
        """Buildings and tree lines behind the street's own, seen through gaps and over low buildings."""
        rng, light, sign = self.rng, self.light, side.side
        x_back = side.building_line + rng.uniform(12, 35)
        z = self.extent.z_begin - 20
        while z < self.extent.z_end + 30:
            length = rng.uniform(15, 50)
            if rng.random() < (0.75 if side.style in ("urban", "industrial") else 0.35):
                height = rng.uniform(8, 40)
                self.objects.append(
                    Building(
                        rng, light, sign, sign * x_back, 20, z, z + length, height, simple=True
                    )
                )
            else:
                height = rng.uniform(6, 16)
                self.objects.append(
                    Hedge(
                        rng,
                        light,
                        *sorted((sign * x_back, sign * (x_back + 10))),
                        z,
                        z + length,
                        height,
                    )
                )
            z += length + (rng.uniform(2, 15) if rng.random() < 0.3 else 0)

    def _place_hedges(self, side: SideProfile, crossings: Crossings) -> None:
        """Hedges along the building line / front gardens (on urban streets only sometimes)."""
        rng, light, sign = self.rng, self.light, side.side
        if not (side.style in ("suburban", "park", "industrial") or rng.random() < 0.2):
            return
        x = side.walk_outer + (0.3 if side.has_walk else 0.0)
        z = self.extent.z_begin
        colour = vegetation_colour(rng)  # one kind of hedge per street side
        while z < self.extent.z_end:
            length = rng.uniform(5, 40)
            if rng.random() < 0.55 and not crossings.overlaps(z, z + length, 1.0):
                height = rng.uniform(0.6, 2.0)
                thickness = rng.uniform(0.5, 1.5)
                self.objects.append(
                    Hedge(
                        rng,
                        light,
                        *sorted((sign * x, sign * (x + thickness))),
                        z,
                        z + length,
                        height,
                        colour,
                    )
                )
            z += length + rng.uniform(1, 15)

    def _place_trees(self, side: SideProfile, crossings: Crossings) -> None:
        rng, light, sign = self.rng, self.light, side.side
        avenue_chance = {"urban": 0.35, "suburban": 0.55, "park": 0.9, "industrial": 0.3}[
            side.style
        ]
        if rng.random() < avenue_chance:  # a row of street trees
            x = (side.walk_inner + 0.9) if side.has_walk else side.road_edge + 1.0
            spacing = rng.uniform(6, 16)
            z = self.extent.z_begin + rng.uniform(0, spacing)
            while z < self.extent.z_end:
                if not crossings.overlaps(z, z, 2.0) and rng.random() < 0.85:
                    self.objects.append(Tree(rng, light, sign * (x + rng.uniform(-0.3, 0.3)), z))
                z += spacing * rng.uniform(0.8, 1.2)
        if side.style == "park":
            z = self.extent.z_begin
            while z < self.extent.z_end:
                if not crossings.overlaps(z, z, 3.0):
                    x = sign * (side.building_line - side.front * rng.uniform(0.1, 0.9))
                    self.objects.append(Tree(rng, light, x, z, rng.uniform(1, 1.6)))
                z += rng.uniform(3, 12)

    def _place_poles(self, side: SideProfile, crossings: Crossings) -> None:
        rng, light, sign = self.rng, self.light, side.side
        x = side.road_edge + rng.uniform(0.35, 0.7)
        if rng.random() < 0.8:  # street lamps at a regular spacing
            spacing = rng.uniform(18, 40)
            z = self.extent.z_begin + rng.uniform(0, spacing)
            while z < self.extent.z_end:
                if not crossings.overlaps(z, z, 1.0):
                    self.objects.append(Pole(rng, light, sign * x, z, "lamp", sign))
                z += spacing
        z = self.extent.z_begin + rng.uniform(0, 30)
        while z < self.extent.z_end:
            if not crossings.overlaps(z, z, 1.0):
                self.objects.append(
                    Pole(rng, light, sign * (x + rng.uniform(-0.1, 0.6)), z, "sign", sign)
                )
            z += rng.uniform(15, 60)
        for a, _ in crossings.spans:
            if rng.random() < 0.5:
                self.objects.append(Pole(rng, light, sign * x, a - 1.0, "light", sign))

    def _place_people(self, side: SideProfile) -> None:
        rng, light, sign = self.rng, self.light, side.side
        if side.has_walk:
            density = rng.uniform(0.04, 0.22)  # groups per metre of sidewalk
            z = self.extent.z_begin
            while z < self.extent.z_small_end:
                z += rng.exponential(1 / density)
                group = 1 if rng.random() < 0.7 else int(rng.integers(2, 4))
                for _ in range(group):
                    x = sign * rng.uniform(side.walk_inner + 0.4, side.walk_outer - 0.3)
                    z_person = z + rng.uniform(-0.8, 0.8)
                    walking = rng.random() < 0.7
                    speed = rng.choice([-1, 1]) * rng.uniform(0.04, 0.07) if walking else 0.0
                    view = ("back" if speed > 0 else "front") if walking else VIEWS[rng.integers(3)]
                    if rng.random() < 0.15:
                        view = "side"
                    self.objects.append(Person(rng, light, x, z_person, speed, view))
        elif side.style != "industrial" and rng.random() < 0.5:  # a few people on the verge
            for _ in range(int(rng.integers(1, 4))):
                x = sign * rng.uniform(side.road_edge + 0.3, side.walk_outer)
                z = rng.uniform(5, 80)
                self.objects.append(Person(rng, light, x, z, 0.0, VIEWS[rng.integers(3)]))

    def _place_clutter(self, side: SideProfile, crossings: Crossings) -> None:
        if not side.has_walk:
            return
        rng, light, sign = self.rng, self.light, side.side
        z = self.extent.z_begin + rng.exponential(20)
        while z < self.extent.z_small_end:
            x = sign * rng.uniform(side.walk_inner + 0.3, side.walk_outer - 0.3)
            if not crossings.overlaps(z, z, 1.0):
                self.objects.append(Clutter(rng, light, x, z))
            z += rng.exponential(rng.uniform(8, 25))

    def _park_cars(self, side: SideProfile, crossings: Crossings) -> None:
        rng, light, sign = self.rng, self.light, side.side
        z = self.extent.z_begin + rng.uniform(0, 10)
        while z < self.extent.z_end:
            kind = "car" if rng.random() < 0.82 else "van"
            vehicle = Vehicle(rng, light, 0.0, 0.0, 0.0, kind, 1 if rng.random() < 0.6 else -1)
            # at the kerb, placed once its size is known
            vehicle.x = sign * (side.road_edge - 0.25 - vehicle.width / 2 - rng.uniform(0, 0.25))
            vehicle.z_at_start = z + vehicle.length / 2
            if not crossings.overlaps(z, z + vehicle.length, 1.0) and rng.random() < 0.7:
                self.objects.append(vehicle)
            z += (
                vehicle.length
                + rng.uniform(0.6, 4.0)
                + (rng.uniform(5, 20) if rng.random() < 0.15 else 0)
            )

    # ------------------------------------------------------------------ across the street

    def _place_crossing_pedestrians(self, zebras: list[tuple[float, float]], lanes: Lanes) -> None:
        rng, light = self.rng, self.light
        for a, b in zebras:
            if rng.random() < 0.6:
                for _ in range(int(rng.integers(1, 4))):
                    x = rng.uniform(-lanes.half_width, lanes.half_width)
                    self.objects.append(Person(rng, light, x, rng.uniform(a, b), 0.0, "side"))

    def _place_traffic(self, lanes: Lanes, camera_x: float) -> None:
        rng, light, speed = self.rng, self.light, self.camera_speed
        for centre in lanes.centres:
            same_direction = centre * lanes.drive_side > 0 or lanes.count == 1
            ego_lane = abs(centre - camera_x) < lanes.width / 2
            z = rng.uniform(9, 45) if ego_lane else rng.uniform(-10, 40)
            while z < self.extent.z_end:
                kind = ["car", "van", "bus"][rng.choice(3, p=[0.75, 0.17, 0.08])]
                if kind == "bus" and z < 25:
                    kind = "car"
                if ego_lane:  # never slower than the camera: it must not drive through them
                    vehicle_speed = speed * rng.uniform(1.0, 1.3)
                else:
                    vehicle_speed = speed * rng.uniform(0.6, 1.2) * (1 if same_direction else -1)
                x = centre + rng.uniform(-0.3, 0.3)
                vehicle = Vehicle(
                    rng, light, x, z, vehicle_speed, kind, 1 if same_direction else -1
                )
                self.objects.append(vehicle)
                z += vehicle.length + rng.uniform(8, 70) * (1 if rng.random() < 0.7 else 3)

    def _place_backdrop(self) -> None:
        rng, light = self.rng, self.light
        kind = rng.random()
        z = self.extent.z_end + rng.uniform(30, 200)
        if kind < 0.45:
            self.objects.append(Backdrop(rng, light, z, "city"))
        if 0.3 < kind < 0.85:  # both where the ranges overlap: a tree line in front of the skyline
            self.objects.append(Backdrop(rng, light, z - 10, "trees"))


def _ground_bands(
    left: SideProfile, right: SideProfile, road_edge: dict[int, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Bands over the whole x axis as (starts, materials): the left side mirrored, the road, the right
    side.  The first band has no start (it reaches to -inf)."""
    edges = []
    left_starts = [x for x, _ in left.bands] + [1e6]
    for i in range(len(left.bands) - 1, -1, -1):
        edges.append((-left_starts[i + 1], left.bands[i][1]))
    edges.append((-road_edge[-1], 0))
    for x, material in right.bands:
        edges.append((x, material))
    starts = np.array([e[0] for e in edges[1:]], np.float32)
    materials = np.array([e[1] for e in edges], np.int32)
    return starts, materials
