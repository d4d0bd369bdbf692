"""Image displacements, distances and angles for the ReaxFF terms, safe to differentiate.

Displacements are recomputed from (positions, cell) and the integer image shifts kept in the
interaction lists (stored as float64 so that they can be traced under jit): derivatives with
respect to positions and cell follow. Square roots are guarded so that masked, padded or
degenerate (collinear) entries give finite values and zero, not NaN, derivatives. Valence
angles use acos of the clamped cosine, as LAMMPS does, with LAMMPS's derivative, which clamps
sin(theta) at 1e-5 (identical to the exact derivative elsewhere).
"""

from __future__ import annotations

import functools

import reaxgrad.core.numpy as jnp
from reaxgrad.core import custom_jvp

_SAFE_VECTOR = (1.0, 0.0, 0.0)


class Cartesian:
    """A cell marker: the shifts of the lists are already Cartesian vectors (batches of
    structures with different cells, ``optimize.batch``), so no product with a cell."""


CARTESIAN = Cartesian()


def image_vectors(shifts, cell):
    """``shifts @ cell``, or the shifts themselves for the CARTESIAN marker."""
    if isinstance(cell, Cartesian):
        return jnp.asarray(shifts)
    return jnp.matmul(shifts, cell)


def displacement(positions, cell, i, j, shifts):
    """``x_j + shifts @ cell - x_i`` (shifts: float (m, 3) image vectors)."""
    return positions[j] - positions[i] + image_vectors(shifts, cell)


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


def cos_angle(a, b):
    """cos of the angle between a and b, clamped to [-1, 1] as LAMMPS does."""
    return jnp.clip(dot(a, b) / (norm(a) * norm(b)), -1.0, 1.0)


@functools.partial(custom_jvp, nondiff_argnums=(0,))
def arccos_lammps(min_sine, c):
    """acos(c) whose derivative is ``-dc / max(sin, min_sine)``, as LAMMPS's forces clamp sin."""
    return jnp.arccos(c)


@arccos_lammps.defjvp
def _arccos_lammps_jvp(min_sine, primals, tangents):
    (c,), (dc,) = primals, tangents
    # the primal through the custom function again, so that higher derivatives (Hessians)
    # use this rule too and never arccos's own 1/sqrt(1 - c²), infinite at c = ±1 (padding)
    return arccos_lammps(min_sine, c), -dc / jnp.maximum(safe_sqrt(1.0 - c * c), min_sine)
