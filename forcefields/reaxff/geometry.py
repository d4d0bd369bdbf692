"""Image displacements, distances and angles for the ReaxFF terms, safe to differentiate.

Displacements are recomputed from (positions, cell) and the integer image shifts kept in the
interaction lists (stored as float64 so that they can be traced under jit): derivatives with
respect to positions and cell follow. Square roots and angles are guarded so that masked or
degenerate (collinear, padded) entries give finite values and zero derivatives, matching LAMMPS,
which evaluates the plain formulas and clamps sin(theta) only in its force expressions.
"""

from __future__ import annotations

import reaxgrad.core.numpy as jnp

_SAFE_VECTOR = (1.0, 0.0, 0.0)


def displacement(positions, cell, i, j, shifts):
    """``x_j + shifts @ cell - x_i`` (shifts: float (m, 3) image vectors)."""
    return positions[j] - positions[i] + jnp.matmul(shifts, cell)


def safe_vectors(d, mask):
    """``d`` where ``mask``, a fixed unit vector elsewhere (padding has d = 0)."""
    return jnp.where(mask[:, None], d, jnp.asarray(_SAFE_VECTOR))


def dot(a, b):
    return jnp.sum(a * b, axis=-1)


def safe_sqrt(x):
    """sqrt(x) for x >= 0 with derivative 0 (not inf) at x == 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def norm(d):
    return safe_sqrt(dot(d, d))


def sin_cos(a, b):
    """(|a x b|, a . b): sin and cos of the angle between a and b times |a||b|."""
    c = jnp.cross(a, b)
    return safe_sqrt(dot(c, c)), dot(a, b)


def angle(a, b):
    """Angle between vectors a and b (radians), atan2 form: finite derivatives when collinear."""
    s, c = sin_cos(a, b)
    return jnp.arctan2(s, c)
