"""Summing energy contributions: one total for a structure, or one total per structure when the
interaction lists describe a batch of independent structures (``lists.atom_structure`` set,
as ``optimize.batch`` builds them for fitting).

Each term calls :func:`energy_sum` with the atom that owns every contribution (the centre of
an angle, the first atom of a pair, ...); the owner decides which structure it belongs to.
"""
from __future__ import annotations

import reaxgrad.core.numpy as jnp
from reaxgrad.core.ops import segment_sum


def structure_count(lists) -> int | None:
    """Number of structures of a batch, or None for a single structure."""
    slots = getattr(lists, "structure_slots", None)
    return None if slots is None else slots.shape[0]


def energy_sum(e, owner, lists):
    """Σ e (a scalar), or (S,) sums per structure for batched lists. ``owner``: the atom index
    of each contribution, shaped like e's first axis (None: e is per atom)."""
    count = structure_count(lists)
    if count is None:
        return jnp.sum(e)
    groups = jnp.asarray(lists.atom_structure)
    ids = groups if owner is None else groups[owner]
    e = jnp.asarray(e)
    if e.ndim > 1:
        ids = jnp.broadcast_to(jnp.reshape(ids, (-1,) + (1,) * (e.ndim - 1)), e.shape)
        ids, e = jnp.reshape(ids, (-1,)), jnp.reshape(e, (-1,))
    return segment_sum(e, ids, count)
