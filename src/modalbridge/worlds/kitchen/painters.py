"""Shape painters: the outline of every object, hand, occluder and clutter blob of the kitchen world.

A shape maps local coordinates u (1, w) and v (h, 1), in units of the layer radius, to (mask, part): the
pixels it covers and the pixels drawn in its secondary colour, boolean arrays that broadcast to the crop
(h, w) — (n, h, w) when u (n, 1, w) and v (n, h, 1) stack one crop per frame. Extents (ex, ey) bound |u| and
|v|. :data:`SHAPES` maps a shape name to (painter, extents); :mod:`.compositor` evaluates them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _plate(u, v):
    r2 = u * u + v * v
    return r2 <= 1.0, (r2 >= 0.5) & (r2 <= 0.68)


def _spoon(u, v):
    head = ((u - 0.5) / 0.5) ** 2 + (v / 0.36) ** 2 <= 1.0
    handle = (u >= -1.2) & (u <= 0.05) & (np.abs(v) <= 0.11)
    return head | handle, handle & ~head


def _knife(u, v):
    blade = (u >= 0) & (u <= 1.3) & (v >= -0.17) & (v <= 0.17 - 0.3 * (u / 1.3) ** 2)
    handle = (u >= -0.75) & (u < 0) & (np.abs(v) <= 0.13)
    return blade | handle, handle


def _cupboard(u, v):
    body = (np.abs(u) <= 0.75) & (np.abs(v) <= 1.1)
    knob = (u - 0.42) ** 2 + v**2 <= 0.015
    frame = (np.abs(u) >= 0.62) | (np.abs(v) >= 0.97)
    return body, body & (frame | knob)


def _lid(u, v):
    body = (u / 1.1) ** 2 + ((v - 0.1) / 0.42) ** 2 <= 1.0
    knob = (np.abs(u) <= 0.2) & (v >= -0.7) & (v <= -0.25)
    return body | knob, knob


def _drawer(u, v):
    body = (np.abs(u) <= 1.2) & (np.abs(v) <= 0.55)
    handle = (np.abs(u) <= 0.45) & (np.abs(v) <= 0.09)
    return body, body & handle


def _onion(u, v):
    bulb = u * u + ((v - 0.15) / 0.9) ** 2 <= 0.72
    tip = (v >= -1.15) & (v <= -0.5) & (np.abs(u) <= 0.32 * (v + 1.15))
    return bulb | tip, bulb & (np.abs(np.sin(7.0 * u)) < 0.3)


def _potato(u, v):
    rho = np.sqrt((u / 1.1) ** 2 + (v / 0.75) ** 2)
    mask = rho <= 0.92 + 0.08 * np.sin(3.0 * np.arctan2(v, u) + 0.5)
    return mask, mask & (np.sin(9.0 * u) * np.sin(9.0 * v) > 0.7)


def _hand(u, v):
    palm = (u / 0.7) ** 2 + v**2 <= 1.0
    thumb = ((u - 0.62) / 0.3) ** 2 + ((v + 0.2) / 0.18) ** 2 <= 1.0
    return palm | thumb, palm & (v < -0.6)


def _square(u, v):
    body = (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    return body, (np.abs(u) <= 0.35) & (np.abs(v) <= 0.35)


def _bullseye(u, v):
    r2 = u * u + v * v
    return r2 <= 1.0, r2 <= 0.16


def _bar(u, v):
    body = (np.abs(u) <= 1.2) & (np.abs(v) <= 0.35)
    return body, body & (np.abs(u) >= 0.8)


def _triangle(u, v):
    body = (v <= 0.8) & (np.abs(u) <= (v + 0.9) * 0.6)
    return body, body & (v >= 0.45)


def _ring(u, v):
    r2 = u * u + v * v
    body = (r2 <= 1.0) & (r2 >= 0.25)
    return body, body & (u > 0)


def _diamond(u, v):
    d = np.abs(u) + np.abs(v)
    return d <= 1.0, d <= 0.4


def _cross(u, v):
    au, av_ = np.abs(u), np.abs(v)
    body = ((au <= 0.3) & (av_ <= 1.0)) | ((av_ <= 0.3) & (au <= 1.0))
    return body, (au <= 0.3) & (av_ <= 0.3)


def _oval(u, v):
    body = (u / 1.2) ** 2 + (v / 0.6) ** 2 <= 1.0
    return body, body & (v > 0)


def _slab(u, v):
    body = (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    return body, body & (np.abs(np.sin(4.0 * (u + v))) < 0.15)


#: shape name → (painter, extents (ex, ey) in units of the radius)
SHAPES: dict[str, tuple[Callable, tuple[float, float]]] = {
    "plate": (_plate, (1.0, 1.0)), "spoon": (_spoon, (1.2, 0.36)), "knife": (_knife, (1.3, 0.17)),
    "cupboard": (_cupboard, (0.75, 1.1)), "lid": (_lid, (1.1, 0.7)), "drawer": (_drawer, (1.2, 0.55)),
    "onion": (_onion, (0.85, 1.15)), "potato": (_potato, (1.1, 0.75)), "hand": (_hand, (0.92, 1.0)),
    "square": (_square, (0.8, 0.8)), "bullseye": (_bullseye, (1.0, 1.0)), "bar": (_bar, (1.2, 0.35)),
    "triangle": (_triangle, (1.02, 0.9)), "ring": (_ring, (1.0, 1.0)), "diamond": (_diamond, (1.0, 1.0)),
    "cross": (_cross, (1.0, 1.0)), "oval": (_oval, (1.2, 0.6)), "slab": (_slab, (1.0, 1.0)),
}
