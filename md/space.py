"""Periodic and free boundaries: fractional coordinates, wrapping, minimum images, and the
image displacement `x_j + shift @ cell - x_i` that potentials recompute inside traced code.

Cell convention (ASE): the rows of `cell` are the lattice vectors a, b, c, and Cartesian
positions are `fractional @ cell`. `pbc` is a length-3 sequence of booleans. Every function
except `pair_displacements` works on NumPy arrays, outside traced functions.
"""
from __future__ import annotations

import itertools

import numpy as np

__all__ = [
    "as_cell", "as_pbc", "cartesian", "complete_cell", "fractional", "free_displacement",
    "minimum_image", "pair_displacements", "plane_spacings", "wrap_positions",
]


def as_pbc(pbc) -> np.ndarray:
    """pbc as a bool array of shape (3,); a single bool applies to every axis."""
    flags = np.broadcast_to(np.asarray(pbc if pbc is not None else False, dtype=bool), (3,))
    return flags.copy()


def as_cell(cell) -> np.ndarray:
    """cell as a float (3, 3) array (None -> zeros; a length-3 vector -> orthorhombic)."""
    if cell is None:
        return np.zeros((3, 3))
    cell = np.asarray(cell, dtype=float)
    if cell.shape == (3,):
        return np.diag(cell)
    if cell.shape != (3, 3):
        raise ValueError(f"cell must have shape (3, 3) or (3,), got {cell.shape}")
    return cell.copy()


def complete_cell(cell, pbc) -> np.ndarray:
    """A full-rank cell equal to `cell` on the periodic axes.

    Non-periodic axes keep their vector when it is independent of the others. Otherwise
    (zero or degenerate vector, e.g. ASE's zero cell for a molecule) it is replaced by a unit
    vector orthogonal to the vectors already accepted. Raises if the periodic vectors are
    linearly dependent.
    """
    cell, pbc = as_cell(cell), as_pbc(pbc)
    out = cell.copy()
    periodic = [a for a in range(3) if pbc[a]]
    if periodic and np.linalg.matrix_rank(cell[periodic], tol=1e-10) < len(periodic):
        raise ValueError("the periodic lattice vectors are linearly dependent")
    accepted = list(periodic)
    for a in (a for a in range(3) if not pbc[a]):
        trial = cell[accepted + [a]]
        if np.linalg.norm(cell[a]) > 1e-10 and np.linalg.matrix_rank(trial, tol=1e-10) == len(
                accepted) + 1:
            accepted.append(a)
            continue
        basis = out[accepted]
        for e in np.eye(3):  # Gram-Schmidt against the accepted vectors
            v = e.copy()
            if len(basis):
                q, _ = np.linalg.qr(basis.T)
                v = v - q @ (q.T @ v)
            if np.linalg.norm(v) > 1e-6:
                out[a] = v / np.linalg.norm(v)
                break
        accepted.append(a)
    return out


def fractional(positions, cell) -> np.ndarray:
    """Fractional coordinates `positions @ inv(cell)` (cell must be full rank)."""
    return np.linalg.solve(as_cell(cell).T, np.asarray(positions, dtype=float).T).T


def cartesian(frac, cell) -> np.ndarray:
    return np.asarray(frac, dtype=float) @ as_cell(cell)


def plane_spacings(cell) -> np.ndarray:
    """Distances between opposite faces of the cell: h_a = V / |b x c| and cyclic."""
    cell = as_cell(cell)
    volume = abs(np.linalg.det(cell))
    areas = np.array([np.linalg.norm(np.cross(cell[(a + 1) % 3], cell[(a + 2) % 3]))
                      for a in range(3)])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(areas > 0, volume / areas, np.inf)


def wrap_positions(positions, cell, pbc) -> tuple[np.ndarray, np.ndarray]:
    """Wrap into the cell along periodic axes.

    Returns (wrapped, images): integer images with `positions == wrapped + images @ cell`
    (up to rounding); images are zero along non-periodic axes.
    """
    pbc = as_pbc(pbc)
    positions = np.asarray(positions, dtype=float)
    if not pbc.any():
        return positions.copy(), np.zeros(positions.shape, dtype=np.int64)
    full = complete_cell(cell, pbc)
    frac = fractional(positions, full)
    images = np.where(pbc, np.floor(frac), 0.0).astype(np.int64)
    return positions - images @ full, images


def free_displacement(ri, rj):
    """Displacement from ri to rj with free boundaries."""
    return rj - ri


def minimum_image(dr, cell, pbc) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-image version of displacement vectors `dr` (shape (..., 3)).

    Returns (dr_min, shifts) with `dr_min = dr + shifts @ cell`. The fractional wrap is
    followed by a search over the 27 neighbouring images, which gives the true minimum image
    in any cell that is not extremely skewed (Minkowski-reduce such cells first). Note that
    with a cutoff larger than half the smallest plane spacing a single image is not enough:
    use the neighbour list, which lists every image.
    """
    pbc = as_pbc(pbc)
    dr = np.asarray(dr, dtype=float)
    if not pbc.any():
        return dr.copy(), np.zeros(dr.shape, dtype=np.int64)
    full = complete_cell(cell, pbc)
    flat = dr.reshape(-1, 3)
    base = np.where(pbc, -np.round(fractional(flat, full)), 0.0)
    trials = np.array([t for t in itertools.product((-1, 0, 1), repeat=3)
                       if all(pbc[a] or t[a] == 0 for a in range(3))], dtype=float)
    cand = base[:, None, :] + trials[None, :, :]
    vec = flat[:, None, :] + cand @ full
    best = np.argmin(np.einsum("nkd,nkd->nk", vec, vec), axis=1)
    rows = np.arange(len(flat))
    shifts = cand[rows, best].astype(np.int64)
    return vec[rows, best].reshape(dr.shape), shifts.reshape(dr.shape)


def pair_displacements(positions, cell, i, j, shifts):
    """`positions[j] + shifts @ cell - positions[i]` for index arrays i, j and integer shifts.

    Written with indexing, matmul and subtraction only, so it works on NumPy arrays and on
    reaxgrad.core tracers alike: call it inside a differentiated function to get derivatives
    with respect to positions and cell (stress). `shifts` must be a concrete array.
    """
    return positions[j] + np.asarray(shifts, dtype=np.float64) @ cell - positions[i]
