"""Relax atom positions, optionally together with the cell, with the minimizers of
:mod:`reaxgrad.md.minimize` (ASE's FIRE and L-BFGS).

Cell relaxation uses generalized coordinates, the idea behind ASE's ``FrechetCellFilter``:
the cell is ``cell = cell0 @ F.T`` for a deformation gradient ``F = expm(L)`` of the starting
cell ``cell0``, atoms sit at ``r = s @ F.T`` for reference-frame positions ``s``, and the
minimizer moves the (N + 3, 3) array ``[s; k L]`` (``k`` = number of atoms by default, so that
cell rows move about as far as atoms do). The function minimized is the enthalpy
``H = E(r, cell) + p V`` (``p`` an external hydrostatic pressure). Its gradient is exact:

* atoms: ``dH/ds = dE/dr @ F``;
* cell: a deformation ``F -> (1 + e) F`` changes ``E`` by ``sum(W * e)`` with ``W = dE/dstrain``
  the virial (symmetric) and ``V`` by ``V trace(e)``, so ``dH/dF = (W + p V 1) F^-T``, and
  ``dH/dL = Dexp(L)*[dH/dF] = Dexp(L.T)[dH/dF]`` (the adjoint of the Frechet derivative of
  ``expm`` at ``L`` is the Frechet derivative at ``L.T``), divided by ``k`` for ``k L``.

Working with ``L`` rather than ``F`` keeps the cell coordinates well scaled however far the
cell deforms, and at ``L = 0`` the cell gradient is ``(W + p V 1) / k``: a row of it is
below ``fmax`` when the stress (plus ``p``) is below ``fmax k / V``. The same minimizer and
convergence test then drive atoms and cell (largest row norm of the gradient < ``fmax``),
which is what ASE's optimizers do with ``FrechetCellFilter``.

Units are the caller's: ``evaluate(positions, cell) -> (energy, dE/dpositions, virial)`` and
``pressure`` in energy per volume of the same units (eV and eV/Å^3 for ASE's fmax).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import expm, expm_frechet

from .minimize import fire, lbfgs

__all__ = ["CellCoordinates", "RelaxResult", "relax"]

OPTIMIZERS = {"fire": fire, "lbfgs": lbfgs}


class CellCoordinates:
    """The map between (positions, cell) and generalized coordinates ``[s; k L]`` around a
    reference cell ``cell0`` (rows are lattice vectors), and the enthalpy gradient in them."""

    def __init__(self, cell0, n_atoms: int, *, pressure: float = 0.0,
                 cell_factor: float | None = None):
        self.cell0 = np.array(cell0, dtype=float)
        if self.cell0.shape != (3, 3) or abs(np.linalg.det(self.cell0)) < 1e-12:
            raise ValueError("cell relaxation needs a 3x3 cell of non-zero volume")
        self.n_atoms = int(n_atoms)
        self.pressure = float(pressure)
        self.factor = float(self.n_atoms if cell_factor is None else cell_factor)
        if not self.factor > 0:
            raise ValueError(f"cell_factor must be positive, got {self.factor}")

    def initial(self, positions) -> np.ndarray:
        """Generalized coordinates of ``positions`` in the reference cell (``F`` = 1)."""
        return np.vstack([np.asarray(positions, dtype=float), np.zeros((3, 3))])

    def deformation(self, x) -> np.ndarray:
        """The deformation gradient ``F = expm(L)`` of generalized coordinates ``x``."""
        return expm(np.asarray(x)[self.n_atoms:] / self.factor)

    def unpack(self, x):
        """(positions, cell) of generalized coordinates ``x``."""
        x = np.asarray(x, dtype=float)
        f = self.deformation(x)
        return x[:self.n_atoms] @ f.T, self.cell0 @ f.T

    def gradient(self, x, de_dpos, virial, volume: float) -> np.ndarray:
        """dH/dx from dE/dpositions and the virial dE/dstrain at the configuration ``x``."""
        x = np.asarray(x, dtype=float)
        log = x[self.n_atoms:] / self.factor
        f = expm(log)
        w = np.asarray(virial, dtype=float)
        w = 0.5 * (w + w.T) + self.pressure * volume * np.eye(3)
        dh_df = np.linalg.solve(f, w.T).T  # (W + pV 1) F^-T
        dh_dlog = expm_frechet(log.T, dh_df, compute_expm=False)
        return np.vstack([np.asarray(de_dpos, dtype=float) @ f, dh_dlog / self.factor])


@dataclass
class RelaxResult:
    """Outcome of :func:`relax`; energies and gradients at the final structure."""

    positions: np.ndarray  # (N, 3)
    cell: np.ndarray  # (3, 3)
    energy: float  # E, without the p V term
    enthalpy: float  # E + p V (equal to energy without cell relaxation or at p = 0)
    gradient: np.ndarray  # (N, 3) dE/dpositions
    virial: np.ndarray | None  # (3, 3) dE/dstrain
    fmax: float  # largest row norm of the minimized gradient (atoms, and cell rows)
    steps: int
    converged: bool
    evaluations: int


def relax(evaluate, positions, cell=None, *, relax_cell: bool = False, pressure: float = 0.0,
          optimizer: str = "fire", fmax: float = 0.05, max_steps: int = 1000,
          cell_factor: float | None = None, callback=None, **options) -> RelaxResult:
    """Minimize the energy over positions (and the cell, with ``relax_cell``).

    ``evaluate(positions, cell) -> (energy, dE/dpositions (N, 3), virial (3, 3) or None)``;
    the virial (dE/dstrain) is needed only with ``relax_cell``. ``pressure`` (energy per
    volume) adds ``p V`` to the minimized function. ``optimizer`` "fire" or "lbfgs" (ASE's,
    from :mod:`reaxgrad.md.minimize`; ``options`` are passed to it, e.g. ``max_move``).
    ``callback(positions, cell, energy, gradient, virial)`` is called after every evaluation
    (the first is the starting structure; the last one the returned structure).
    Convergence: largest row norm of the gradient < ``fmax``, cell rows included."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    minimize = OPTIMIZERS[optimizer]
    positions = np.array(positions, dtype=float)
    cell = np.zeros((3, 3)) if cell is None else np.array(cell, dtype=float)
    last = {}

    def record(pos, cel, energy, grad, virial):
        last.update(positions=np.array(pos, dtype=float), cell=np.array(cel, dtype=float),
                    energy=float(energy),
                    gradient=np.asarray(grad, dtype=float),
                    virial=None if virial is None else np.asarray(virial, dtype=float))
        if callback is not None:
            callback(pos, cel, energy, grad, virial)

    if relax_cell:
        coords = CellCoordinates(cell, len(positions), pressure=pressure,
                                 cell_factor=cell_factor)

        def value_and_grad(x):
            pos, cel = coords.unpack(x)
            energy, grad, virial = evaluate(pos, cel)
            if virial is None:
                raise ValueError("cell relaxation needs the virial from evaluate")
            volume = abs(np.linalg.det(cel))
            record(pos, cel, energy, grad, virial)
            last["enthalpy"] = float(energy) + pressure * volume
            return last["enthalpy"], coords.gradient(x, grad, virial, volume)

        x0 = coords.initial(positions)
    else:
        def value_and_grad(x):
            energy, grad, virial = evaluate(x, cell)
            record(x, cell, energy, grad, virial)
            last["enthalpy"] = float(energy)
            return float(energy), np.asarray(grad, dtype=float)

        x0 = positions
    result = minimize(value_and_grad, x0, fmax=fmax, max_steps=max_steps, **options)
    g = np.asarray(result.gradient)
    return RelaxResult(
        positions=last["positions"], cell=last["cell"], energy=last["energy"],
        enthalpy=last["enthalpy"], gradient=last["gradient"], virial=last["virial"],
        fmax=float(np.sqrt((g * g).sum(axis=-1)).max(initial=0.0)),
        steps=int(result.steps), converged=bool(result.converged),
        evaluations=int(result.evaluations),
    )
