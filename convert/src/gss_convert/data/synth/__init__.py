"""street8: a procedural street-scene generator (images + dense labels) for training and testing.

Every frame is rendered from a small 3-D world laid out along a straight street (x lateral, y up,
z forward) and a pinhole camera at a height above the ground looking down +z.  Surfaces are rendered
analytically per pixel (ground plane, axis-aligned boxes for buildings, hedges, vehicles and clutter)
or as depth-tested sprites (people, tree crowns, poles, sign plates), all through one z-buffer, so
perspective scaling and occlusion are correct by construction and the label of a pixel is the class
of the surface visible there.  Moving the camera along z gives coherent video sequences.

Textures come from photos that scikit-image ships inside its wheel (gravel, grass, brick, moon,
...), loaded without network access, mip-mapped once per process.

A *domain* (:class:`Domain`, presets in :data:`DOMAINS`) says how far a frame departs from the
street8 look the models are trained on: ``street8`` is the training distribution itself, ``shift``
draws per image a mix of fog, dusk, out-of-range camera heights / pitch / field of view and held-out
textures and colours, for evaluation off the training domain.

Modules, by concern:

- ``world``: :class:`World` (one seed's scene, built in named steps) and the render entry points
- ``layout``: the street's lanes, crossings, ground bands and the placement of every object
- ``objects``: buildings, hedges, trees, poles, vehicles, people, clutter, the backdrop
- ``camera``, ``raster``: the pinhole camera, frame buffers and primitive rasterisers
- ``shaders``, ``textures``, ``colours``, ``lighting``: surface appearance
- ``ground``, ``sky``, ``photometric``: the ground plane, the sky, the camera response
- ``domains``, ``restyle``: the shifted domains
- ``writer``: :func:`generate_dataset`, the data set on disk
"""

from .domains import DOMAINS, TEXTURE_GROUPS, Domain, ShiftDraw, draw_shift, get_domain
from .textures import available_textures
from .world import World, render_scene, render_sequence
from .writer import derive_seed, generate_dataset

__all__ = [
    "render_scene",
    "render_sequence",
    "generate_dataset",
    "available_textures",
    "Domain",
    "DOMAINS",
    "get_domain",
    "World",
    "ShiftDraw",
    "TEXTURE_GROUPS",
    "draw_shift",
    "derive_seed",
]
