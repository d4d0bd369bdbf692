"""Neighbour lists: every periodic image within a cutoff, found with a cell list (binning),
padded to capacity buckets so that jit caches hit as the list grows and shrinks.

A pair is `(i, j, shift)` with `|x_j + shift @ cell - x_i| <= cutoff`. Every image counts,
as LAMMPS ghost atoms give: in a cell shorter than twice the cutoff an atom meets several
images of the same neighbour, and itself (`i == j`, non-zero shift). Shifts refer to the
positions as passed in, so the displacement can be recomputed inside a differentiable
function with `md.space.pair_displacements(positions, cell, i, j, shifts)`.

Building runs outside traced functions, in compiled C (``md._nlist_c``, built once with the
system compiler and cached on disk) when a compiler works, else in NumPy (vectorised over the
atoms; the Python loop runs over the few dozen bin offsets of the stencil only). Both give the
same pairs in the same canonical order: (i, j, shift) ascending, so that lists, and the sums
over them, repeat bit for bit whichever path built them. ``pair_lists`` finds several lists
(cutoffs per pair of atom types, full or half) in one search at the largest cutoff.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from . import _nlist_c
from .space import (
    as_cell,
    as_pbc,
    complete_cell,
    fractional,
    pair_displacements,
    plane_spacings,
    wrap_positions,
)

__all__ = ["NeighborList", "PaddedPairs", "bucket_capacity", "half_pair_mask", "neighbor_list",
           "neighbor_pairs", "pad_to", "pair_lists"]

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
    """Each mirror pair once: (order, p, q, (sx, sy, sz), r2) with p, q indices into the
    bin-sorted atoms `order` and bin-wrap shifts s: x_q + s @ cell - x_p is within cutoff;
    r2 its squared length."""
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
        r2 = dx * dx + dy * dy + dz * dz
        close = np.flatnonzero(r2 <= cut2)
        p, q = p[close], q[close]
        found.append((p, q, shift[0][p], shift[1][p], shift[2][p], r2[close]))
    if not found:
        empty = np.zeros(0, np.int32)
        return bins.order, empty, empty, (empty, empty, empty), np.zeros(0)
    p, q, sx, sy, sz, r2 = (np.concatenate(parts) for parts in zip(*found))
    return bins.order, p, q, (sx, sy, sz), r2


def _search_cell(cell, pbc):
    """A full-rank cell for the search: the cell itself when every axis is periodic, the unit
    cell when none is (shifts are zero), else ``complete_cell``."""
    if not pbc.any():
        return np.eye(3)
    cell = as_cell(cell)
    if pbc.all():
        (a, b, c), (d, e, f), (g, h, k) = cell.tolist()
        det = a * (e * k - f * h) - b * (d * k - f * g) + c * (d * h - e * g)
        scale = math.sqrt((a * a + b * b + c * c) * (d * d + e * e + f * f)
                          * (g * g + h * h + k * k))
        if abs(det) > 1e-9 * scale:
            return cell
    return complete_cell(cell, pbc)  # raises for dependent periodic vectors


def _cutoff_tables(cutoffs, n_types):
    """(k, T, T) squared cutoffs, -1 where a list takes no pair."""
    if isinstance(cutoffs, np.ndarray) and cutoffs.ndim == 3:
        tables = cutoffs.astype(float)
    else:
        tables = np.empty((len(cutoffs), n_types, n_types))
        for k, c in enumerate(cutoffs):
            tables[k] = c  # a number or a (T, T) table
    return np.where(tables > 0, tables * tables, -1.0)


def _numpy_lists(positions, full, pbc, cut2, halves, types, bins_per_cutoff):
    """The NumPy path of ``pair_lists``: one half search at the largest cutoff; per list, the
    pairs within its largest cutoff, tested by types (both orientations for full lists, the
    representative for half lists), in canonical order."""
    top2 = cut2.max()
    wrapped, wrap_images = wrap_positions(positions, full, pbc)
    order, p, q, s, r2 = _half_pairs(wrapped, full, pbc, math.sqrt(top2), bins_per_cutoff)
    order = order.astype(np.int32)
    wrap_images = wrap_images.astype(np.int32)
    i, j = order[p], order[q]
    shifts = np.stack([s[a] - wrap_images[j, a] + wrap_images[i, a] for a in range(3)], axis=1)
    n_types = cut2.shape[1]
    out = []
    for k in range(len(cut2)):
        table = cut2[k]
        reach2 = table.max()
        ik, jk, sk, rk = i, j, shifts, r2
        if reach2 < top2:  # a shorter list: its candidates first
            near = np.flatnonzero(r2 <= reach2)
            ik, jk, sk, rk = i[near], j[near], shifts[near], r2[near]
        if np.all(table == reach2):  # one cutoff for all types: every candidate
            fwd = bwd = slice(None)
        else:
            ti, tj = types[ik].astype(np.int64), types[jk].astype(np.int64)
            flat = table.ravel()
            fwd = rk <= flat[ti * n_types + tj]
            bwd = rk <= flat[tj * n_types + ti]
        if halves[k]:  # the representative of each mirror pair, (i, j, S) or (j, i, -S)
            flip = ~half_pair_mask(ik, jk, sk)
            keep = np.where(flip, bwd, fwd) if isinstance(fwd, np.ndarray) else slice(None)
            flip = flip[keep]
            ik, jk, sk = ik[keep], jk[keep], sk[keep]
            ik, jk = np.where(flip, jk, ik), np.where(flip, ik, jk)
            sk = np.where(flip[:, None], -sk, sk)
        else:  # both orientations, each tested with its own types
            ik, jk, sk = (np.concatenate([ik[fwd], jk[bwd]]), np.concatenate([jk[fwd], ik[bwd]]),
                          np.concatenate([sk[fwd], -sk[bwd]]))
        perm = _canonical_order(ik, jk, sk, len(positions))
        out.append((ik[perm], jk[perm], sk[perm]))
    return out


def _canonical_order(i, j, shifts, n):
    """The permutation that orders pairs by (i, j, shift): one sort of a combined integer key
    (distinct per pair), or a lexicographic sort when the key would not fit in 63 bits."""
    if len(i) == 0:
        return np.zeros(0, np.int64)
    low = shifts.min(axis=0).astype(np.int64)
    span = shifts.max(axis=0).astype(np.int64) - low + 1
    if float(n) * n * float(np.prod(span)) >= 2.0**62:
        return np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], j, i))
    code = ((shifts[:, 0] - low[0]) * span[1] + (shifts[:, 1] - low[1])) * span[2] + (
        shifts[:, 2] - low[2])
    key = (i.astype(np.int64) * n + j) * int(np.prod(span)) + code
    return np.argsort(key)


@dataclasses.dataclass(frozen=True, eq=False)
class PaddedPairs:
    """A pair list as int64 (i, j) and float64 shifts in zero-filled buffers, of which the
    first ``n`` rows are pairs (``pair_lists(..., wide=...)``)."""

    i: np.ndarray
    j: np.ndarray
    shifts: np.ndarray
    n: int

    def pairs(self):
        return self.i[:self.n], self.j[:self.n], self.shifts[:self.n]

    def padded(self, capacity):
        """(i, j, shifts, mask) with ``capacity`` rows: the buffers themselves when they are
        long enough, else zero-padded copies."""
        if capacity < self.n:
            raise ValueError(f"{self.n} pairs do not fit in capacity {capacity}")
        mask = np.zeros(capacity, dtype=bool)
        mask[:self.n] = True
        if capacity <= len(self.i):
            return self.i[:capacity], self.j[:capacity], self.shifts[:capacity], mask
        i, j = np.zeros(capacity, np.int64), np.zeros(capacity, np.int64)
        shifts = np.zeros((capacity, 3))
        i[:self.n], j[:self.n], shifts[:self.n] = self.pairs()
        return i, j, shifts, mask


def pair_lists(positions, cell, pbc, cutoffs, *, half=False, types=None, bins_per_cutoff=3,
               method="auto", wide=None, min_capacity=None):
    """Several exact pair lists from one neighbour search (at the largest cutoff).

    cutoffs: a sequence of k cutoffs (inclusive), each a number or a (T, T) table indexed by
    (types[i], types[j]), or a (k, T, T) array; entries <= 0 take no pair. half: a bool or k
    bools (half list: the representative of each mirror pair, as ``half_pair_mask``).
    types: (n,) ints in [0, T) (needed for tables). method: "auto" (compiled C when
    available, else NumPy), "numpy", or the compiled algorithms "all_pairs" / "cells".
    wide: k bools: list k as a ``PaddedPairs`` whose buffers hold at least
    ``bucket_capacity(n)`` and ``min_capacity[k]`` rows (padding then costs no copy).

    Returns k tuples (i, j, shifts) of int32 arrays (or ``PaddedPairs``) with
    ``|x_j + shifts @ cell - x_i| <= cutoff``, every periodic image, each ordered by
    (i, j, shift) ascending.
    """
    positions = np.asarray(positions, dtype=float)
    pbc = as_pbc(pbc)
    n = len(positions)
    k_lists = len(cutoffs)
    halves = [bool(half)] * k_lists if np.ndim(half) == 0 else [bool(h) for h in half]
    wide = [False] * k_lists if wide is None else [bool(w) for w in wide]
    min_capacity = [0] * k_lists if min_capacity is None else [int(c) for c in min_capacity]
    if len(halves) != k_lists or len(wide) != k_lists or len(min_capacity) != k_lists:
        raise ValueError("half, wide and min_capacity need one entry per cutoff")
    if isinstance(cutoffs, np.ndarray) and cutoffs.ndim == 3:
        n_types = cutoffs.shape[1]
    else:
        n_types = max((np.shape(c)[0] for c in cutoffs if np.ndim(c) == 2), default=1)
    if types is None:
        types = np.zeros(n, np.int32)
    else:
        types = np.asarray(types)
        if len(types) and (types.min() < 0 or types.max() >= n_types):
            raise ValueError(f"types must lie in [0, {n_types})")
    cut2 = _cutoff_tables(cutoffs, n_types)
    found = None
    if n and len(cut2) and cut2.max() > 0:
        if not np.isfinite(positions).all():
            raise ValueError("neighbour search: non-finite positions")
        full = _search_cell(cell, pbc)
        if method != "numpy":
            capacity = [lambda m, k=k: max(bucket_capacity(m), min_capacity[k])
                        for k in range(k_lists)]
            found = _nlist_c.pairs(positions, full, pbc, cut2, halves, types,
                                   bins_per_cutoff=float(bins_per_cutoff),
                                   mode="auto" if method == "auto" else method, wide=wide,
                                   capacity=capacity)
            if found is None and method != "auto":
                raise RuntimeError(f"compiled neighbour search ({method}) unavailable")
        if found is None:
            found = _numpy_lists(positions, full, pbc, cut2, halves, types, bins_per_cutoff)
    else:
        empty = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, 3), np.int32))
        found = [empty] * k_lists
    out = []
    for k, lst in enumerate(found):
        if not wide[k]:
            out.append(lst)
        elif len(lst) == 4:  # compiled: buffers already padded
            out.append(PaddedPairs(*lst))
        else:
            m = len(lst[0])
            cap = max(bucket_capacity(m), min_capacity[k])
            i, j = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
            shifts = np.zeros((cap, 3))
            i[:m], j[:m], shifts[:m] = lst
            out.append(PaddedPairs(i, j, shifts, m))
    return out


def neighbor_pairs(positions, cell, pbc, cutoff, *, half=False, sort=False,
                   bins_per_cutoff=3, method="auto"):
    """Exact pair list: int32 arrays (i, j, shifts) of every image within `cutoff`
    (inclusive), with `|x_j + shifts @ cell - x_i| <= cutoff`.

    positions: (n, 3) Cartesian; cell: (3, 3), rows are lattice vectors (ignored on
    non-periodic axes; may be None or zero for free boundaries); pbc: bool or 3 bools.
    half: keep one of each mirror pair (i, j, S) / (j, i, -S): the one with i < j, or with
    i == j and the first non-zero component of S positive. The order is always (i, j, shift)
    ascending (`sort` is accepted for compatibility). Pairs within ~1e-12 Å of the cutoff may
    fall on either side of it (rounding).
    """
    del sort  # always sorted
    return pair_lists(positions, cell, pbc, [float(cutoff)], half=half,
                      bins_per_cutoff=bins_per_cutoff, method=method)[0]


def half_pair_mask(i, j, shifts):
    """True for the representative of each mirror pair (i, j, S) ~ (j, i, -S)."""
    shifts = np.asarray(shifts)
    nz = shifts != 0
    first = np.argmax(nz, axis=1)
    lead = shifts[np.arange(len(shifts)), first]
    return (i < j) | ((i == j) & (lead > 0))


def bucket_capacity(n, *, growth=1.25, minimum=64):
    """Smallest capacity on the ladder `ceil(minimum * growth**k)` that holds n items.

    The ladder is fixed, so lists of similar length share a capacity (and jit cache entry).
    growth=2 gives minimum times powers of two (up to 50 % of the work on padding); the
    default 1.25 wastes at most 20 %. Kernel sources do not depend on row counts, so a new
    rung costs a trace, not a compile.
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
    growth: float = 1.25
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
                  growth=1.25, minimum=64, fill_index=0, previous_capacity=None):
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
