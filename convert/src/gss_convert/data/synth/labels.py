"""The label ids the renderer writes: street8's classes (see ``data/classes.py``) and the ignore id."""

from __future__ import annotations

from ..classes import IGNORE_INDEX

# the order of STREET8 in data/classes.py
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, PERSON, VEHICLE, POLE = range(8)
UNLABELED = IGNORE_INDEX
