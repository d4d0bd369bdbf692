"""Neighbour lists: every periodic image within a cutoff, found with a cell list (binning),
padded to capacity buckets so that jit caches hit as the list grows and shrinks.

A pair is `(i, j, shift)` with `|x_j + shift @ cell - x_i| <= cutoff`. Every image counts,
as LAMMPS ghost atoms give: in a cell shorter than twice the cutoff an atom meets several
images of the same neighbour, and itself (`i == j`, non-zero shift). Shifts refer to the
positions as passed in, so the displacement can be recomputed inside a differentiable
function with `md.space.pair_displacements(positions, cell, i, j, shifts)`.

Building is pure NumPy, outside traced functions. Vectorised over the atoms; the Python
loop runs over the few dozen bin offsets of the stencil only.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from .space import (
    as_cell,
    as_pbc,
    complete_cell,
    fractional,
    pair_displacements,
    plane_spacings,
    wrap_positions,
)

__all__ = ["NeighborList", "bucket_capacity", "half_pair_mask", "neighbor_list",
           "neighbor_pairs", "pad_to"]

_MAX_BINS_PER_ATOM = 8  # caps the bin count for sparse systems (bins then grow)


def _box_offsets(reach):
    """Integer vectors with |o_a| <= reach[a]."""
    return np.array(list(itertools.product(*(range(-r, r + 1) for r in reach))),
                    dtype=np.int64).reshape(-1, 3)


def _positive(offsets):
    """True where the first non-zero component is positive."""
    nz = offsets != 0
    lead = offsets[np.arange(len(offsets)), np.argmax(nz, axis=1)]
    return lead > 0


def _stencil(full_cell, width, cutoff):
    """Half stencil: bin offsets o > 0 (lexicographically) whose bins can hold a point within
    `cutoff` of a point in bin 0. Bins are parallelepipeds of fractional width `width`."""
    spacing = plane_spacings(full_cell)
    thickness = width * spacing
    reach = np.maximum(np.ceil(cutoff / thickness - 1e-12).astype(np.int64), 1)
    offsets = _box_offsets(reach)
    offsets = offsets[_positive(offsets)]
    gap = np.maximum(np.abs(offsets) - 1, 0) * width  # fractional gap per axis
    gram = full_cell @ full_cell.T
    if np.allclose(gram, np.diag(np.diag(gram)), rtol=0, atol=1e-12 * np.abs(gram).max()):
        lower = np.sqrt(((gap * spacing) ** 2).sum(axis=1))  # orthogonal axes: exact
    else:
        sigma_min = np.linalg.svd(full_cell, compute_uv=False).min()
        lower = np.maximum(sigma_min * np.linalg.norm(gap, axis=1), (gap * spacing).max(axis=1))
    return offsets[lower <= cutoff * (1 + 1e-12)]


def _ranges(starts, counts):
    """Concatenated index ranges [starts[k], starts[k] + counts[k])."""
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    return np.arange(total) - np.repeat(first - starts, counts)


class _Bins:
    """Atoms sorted into fractional-coordinate bins that tile the periodic cell exactly, so
    that a lattice translation maps bins onto bins (needed for an exact half stencil)."""

    def __init__(self, frac, full_cell, pbc, cutoff, bins_per_cutoff):
        n = len(frac)
        spacing = plane_spacings(full_cell)
        lo = np.where(pbc, 0.0, frac.min(axis=0))
        # free axes: at least one cutoff wide, so that a flat or linear molecule does not
        # get bins of near-zero width (and an enormous stencil)
        span = np.where(pbc, 1.0, np.maximum(frac.max(axis=0) - lo + 1e-9, cutoff / spacing))
        thickness = cutoff / bins_per_cutoff
        while True:
            n_bins = np.maximum(np.floor(span * spacing / thickness).astype(np.int64), 1)
            if n_bins.prod() <= _MAX_BINS_PER_ATOM * n + 1000:
                break
            thickness *= 1.26
        self.n_bins, self.pbc, self.width = n_bins, pbc, span / n_bins
        coords = np.floor((frac - lo) / self.width).astype(np.int64)
        coords = np.clip(coords, 0, n_bins - 1)
        bin_id = coords[:, 0] + n_bins[0] * (coords[:, 1] + n_bins[1] * coords[:, 2])
        self.order = np.argsort(bin_id, kind="stable")
        self.coords = coords[self.order]
        self.bin_id = bin_id[self.order]
        counts = np.bincount(bin_id, minlength=int(n_bins.prod()))
        self.start = np.cumsum(counts) - counts
        self.count = counts
        self._axis = {}

    def _along(self, axis, o):
        """Per sorted atom, for offset o along one axis: (bin index * stride, shift, valid)."""
        key = (axis, int(o))
        if key not in self._axis:
            n_a = self.n_bins[axis]
            nb = self.coords[:, axis] + o
            if self.pbc[axis]:
                shift = np.floor_divide(nb, n_a)
                nb, valid = nb - shift * n_a, np.ones(len(nb), bool)
            else:
                shift, valid = np.zeros_like(nb), (nb >= 0) & (nb < n_a)
            stride = int(np.prod(self.n_bins[:axis]))
            self._axis[key] = (np.where(valid, nb, 0) * stride, shift.astype(np.int32), valid)
        return self._axis[key]

    def neighbours(self, offset):
        """For every sorted atom: (start, count, (sx, sy, sz)) of the bin at `offset`."""
        (bx, sx, vx), (by, sy, vy), (bz, sz, vz) = (self._along(a, offset[a])
                                                    for a in range(3))
        nb_id = bx + by + bz
        valid = vx & vy & vz
        return self.start[nb_id], np.where(valid, self.count[nb_id], 0), (sx, sy, sz)


def _half_pairs(wrapped, full_cell, pbc, cutoff, bins_per_cutoff):
    """Each mirror pair once: (order, p, q, (sx, sy, sz)) with p, q indices into the
    bin-sorted atoms `order` and bin-wrap shifts s: x_q + s @ cell - x_p is within cutoff."""
    n = len(wrapped)
    bins = _Bins(fractional(wrapped, full_cell), full_cell, pbc, cutoff, bins_per_cutoff)
    xyz = wrapped[bins.order]
    x, y, z = (np.ascontiguousarray(xyz[:, a]) for a in range(3))
    cut2 = cutoff * cutoff
    rows = np.arange(n, dtype=np.int32)
    zero = np.zeros(n, np.int32)
    found = []
    for number, offset in enumerate([None] + list(_stencil(full_cell, bins.width, cutoff))):
        if offset is None:  # same bin, no shift: q after p in the sorted order
            starts = rows + 1
            counts = bins.start[bins.bin_id] + bins.count[bins.bin_id] - starts
            shift = (zero, zero, zero)
        else:
            starts, counts, shift = bins.neighbours(offset)
        total = int(counts.sum())
        if total == 0:
            continue
        t = np.stack(shift, axis=1) @ full_cell - xyz if number else -xyz
        p = np.repeat(rows, counts)
        first = np.cumsum(counts) - counts
        q = np.arange(total, dtype=np.int32) - np.repeat((first - starts).astype(np.int32),
                                                         counts)
        dx = x[q] + t[p, 0]
        dy = y[q] + t[p, 1]
        dz = z[q] + t[p, 2]
        close = np.flatnonzero(dx * dx + dy * dy + dz * dz <= cut2)
        p, q = p[close], q[close]
        found.append((p, q, shift[0][p], shift[1][p], shift[2][p]))
    if not found:
        empty = np.zeros(0, np.int32)
        return bins.order, empty, empty, (empty, empty, empty)
    p, q, sx, sy, sz = (np.concatenate(parts) for parts in zip(*found))
    return bins.order, p, q, (sx, sy, sz)


def _stable_order(keys, n):
    """Stable argsort of non-negative integer keys < n (radix passes on 16-bit digits)."""
    if n <= 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    high = (keys >> 16).astype(np.uint16)
    return order[np.argsort(high[order], kind="stable")]


def neighbor_pairs(positions, cell, pbc, cutoff, *, half=False, sort=False,
                   bins_per_cutoff=3):
    """Exact pair list: int32 arrays (i, j, shifts) of every image within `cutoff`
    (inclusive), with `|x_j + shifts @ cell - x_i| <= cutoff`.

    positions: (n, 3) Cartesian; cell: (3, 3), rows are lattice vectors (ignored on
    non-periodic axes; may be None or zero for free boundaries); pbc: bool or 3 bools.
    half: keep one of each mirror pair (i, j, S) / (j, i, -S): the one with i < j, or with
    i == j and the first non-zero component of S positive. sort: group by i (ascending);
    the order inside a group is deterministic but unspecified. Pairs within ~1e-12 Å of the
    cutoff may fall on either side of it (rounding).
    """
    positions = np.asarray(positions, dtype=float)
    pbc = as_pbc(pbc)
    cutoff = float(cutoff)
    n = len(positions)
    if n == 0 or cutoff <= 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, 3), np.int32)
    full = complete_cell(as_cell(cell), pbc)
    wrapped, wrap_images = wrap_positions(positions, full, pbc)
    order, p, q, s = _half_pairs(wrapped, full, pbc, cutoff, bins_per_cutoff)
    order = order.astype(np.int32)
    wrap_images = wrap_images.astype(np.int32)
    i, j = order[p], order[q]
    shifts = [s[a] - wrap_images[j, a] + wrap_images[i, a] for a in range(3)]
    if half:
        flip = ~half_pair_mask(i, j, np.stack(shifts, axis=1))
        i[flip], j[flip] = j[flip], i[flip]
        for a in range(3):
            shifts[a][flip] = -shifts[a][flip]
    else:
        i, j = np.concatenate([i, j]), np.concatenate([j, i])
        shifts = [np.concatenate([sa, -sa]) for sa in shifts]
    if sort:
        perm = _stable_order(i, n)
        i, j, shifts = i[perm], j[perm], [sa[perm] for sa in shifts]
    return i, j, np.stack(shifts, axis=1)


def half_pair_mask(i, j, shifts):
    """True for the representative of each mirror pair (i, j, S) ~ (j, i, -S)."""
    shifts = np.asarray(shifts)
    nz = shifts != 0
    first = np.argmax(nz, axis=1)
    lead = shifts[np.arange(len(shifts)), first]
    return (i < j) | ((i == j) & (lead > 0))


def bucket_capacity(n, *, growth=2.0, minimum=64):
    """Smallest capacity on the ladder `ceil(minimum * growth**k)` that holds n items.

    The ladder is fixed, so lists of similar length share a capacity (and jit cache entry).
    growth=2 gives minimum times powers of two; growth=1.25 wastes at most 25 %.
    """
    if growth <= 1.0:
        raise ValueError("growth must be > 1")
    cap = int(minimum)
    while cap < n:
        cap = max(cap + 1, math.ceil(cap * growth))
    return cap


def pad_to(capacity, i, j, shifts, *, fill_index=0):
    """Pad pair arrays to `capacity`; returns (i, j, shifts, mask).

    Padding entries have i = j = fill_index, zero shift and mask False. Consumers must mask
    them with safe values (their displacement is zero when fill_index is a real atom).
    """
    m = len(i)
    if m > capacity:
        raise ValueError(f"{m} pairs do not fit in capacity {capacity}")
    pi = np.full(capacity, fill_index, dtype=np.int32)
    pj = np.full(capacity, fill_index, dtype=np.int32)
    ps = np.zeros((capacity, 3), dtype=np.int32)
    mask = np.zeros(capacity, dtype=bool)
    pi[:m], pj[:m], ps[:m], mask[:m] = i, j, shifts, True
    return pi, pj, ps, mask


@dataclasses.dataclass(frozen=True, eq=False)
class NeighborList:
    """A padded Verlet list: pairs within `cutoff + skin`, valid until an atom moves more
    than skin/2 or the cell changes.

    i, j, shifts, mask have length `capacity`; the first `n_pairs` entries are real.
    Rebuild with `update`, which keeps the capacity while the list fits and is not much
    smaller (so the shapes, and jit caches, stay the same).
    """

    i: np.ndarray
    j: np.ndarray
    shifts: np.ndarray
    mask: np.ndarray
    n_pairs: int
    cutoff: float
    skin: float
    half: bool
    pbc: np.ndarray
    reference_positions: np.ndarray
    reference_cell: np.ndarray
    growth: float = 2.0
    minimum: int = 64
    fill_index: int = 0

    @property
    def capacity(self) -> int:
        return len(self.i)

    def needs_rebuild(self, positions, cell=None) -> bool:
        """True if some atom moved more than skin/2 or the cell changed since the build."""
        positions = np.asarray(positions, dtype=float)
        if positions.shape != self.reference_positions.shape:
            return True
        if cell is not None and not np.allclose(as_cell(cell), self.reference_cell,
                                                rtol=0.0, atol=1e-12):
            return True
        if len(positions) == 0:
            return False
        moved = np.einsum("nd,nd->n", positions - self.reference_positions,
                          positions - self.reference_positions)
        return bool(moved.max() > (0.5 * self.skin) ** 2)

    def update(self, positions, cell=None, *, force=False) -> NeighborList:
        """This list if still valid, else a rebuilt one (same capacity when possible)."""
        if not force and not self.needs_rebuild(positions, cell):
            return self
        cell = self.reference_cell if cell is None else cell
        return neighbor_list(positions, cell, self.pbc, self.cutoff, skin=self.skin,
                             half=self.half, growth=self.growth, minimum=self.minimum,
                             fill_index=self.fill_index, previous_capacity=self.capacity)

    def pairs(self):
        """The real (unpadded) pairs (i, j, shifts)."""
        m = self.n_pairs
        return self.i[:m], self.j[:m], self.shifts[:m]

    def displacements(self, positions, cell):
        """Padded displacement vectors `x_j + shift @ cell - x_i`; NumPy or traced arrays.

        Padding rows are zero vectors when fill_index is a real atom: mask them."""
        return pair_displacements(positions, cell, self.i, self.j, self.shifts)


def neighbor_list(positions, cell, pbc, cutoff, *, skin=0.0, half=False, capacity=None,
                  growth=2.0, minimum=64, fill_index=0, previous_capacity=None):
    """Build a padded NeighborList of all images within `cutoff + skin`.

    capacity: fixed capacity (error if too small); default: the bucket of `bucket_capacity`.
    previous_capacity: keep it if the pairs fit and fill more than 1/growth**2 of it, so a
    list that shrinks a little does not change shape.
    """
    positions = np.asarray(positions, dtype=float)
    cell = as_cell(cell)
    pbc = as_pbc(pbc)
    i, j, shifts = neighbor_pairs(positions, cell, pbc, cutoff + skin, half=half)
    m = len(i)
    if capacity is None:
        if previous_capacity is not None and m <= previous_capacity and (
                m * growth * growth > previous_capacity or previous_capacity <= minimum):
            capacity = previous_capacity
        else:
            capacity = bucket_capacity(m, growth=growth, minimum=minimum)
    pi, pj, ps, mask = pad_to(capacity, i, j, shifts, fill_index=fill_index)
    return NeighborList(i=pi, j=pj, shifts=ps, mask=mask, n_pairs=m, cutoff=float(cutoff),
                        skin=float(skin), half=bool(half), pbc=pbc,
                        reference_positions=positions.copy(), reference_cell=cell,
                        growth=growth, minimum=minimum, fill_index=fill_index)
