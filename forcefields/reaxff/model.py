"""A ReaxFF force field ready to evaluate structures: interaction lists built in NumPy, then one
jit-compiled function (per list-capacity bucket) giving the per-term energies, charges,
forces and stress. Units: kcal/mol, Å, e (LAMMPS `real`).

Charge conventions (see docs/reaxff_equations.md §22 and charges.py):
- "lammps" (default): LAMMPS's constants; forces and stress are derivatives at the converged
  charges held fixed, equal to what LAMMPS reports.
- "consistent": the charges minimise the reported energy, so forces are the exact total
  derivative (MD conserves energy).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp

from ..ffield import ForceField, read_ffield, to_params
from .charges import electrostatic_energy
from .coulomb import charge_self_energy, coulomb_energy
from .energy import bonded_energy_terms
from .lists import ReaxLists, build_lists, find_pairs

TERMS = ("ebond", "eatom", "elp", "emol", "ev", "epen", "ecoa", "ehb", "et", "eco", "ew", "ep",
         "efi", "eqeq")
CHARGE_METHODS = ("qeq", "eem", "acks2", None)


def energy_terms(positions, cell, params, lists, total_charge=0.0, *, charge_method="qeq",
                 convention="lammps", charges=None, solver="direct", guess=None, tol=1e-10):
    """(dict of the 14 LAMMPS terms, charges, solver state). charge_method=None uses the given
    `charges`; solver "cg" (QEq/EEM) is warm-started from `guess`, converged to the relative
    residual `tol`, and returns the next guess."""
    terms = bonded_energy_terms(positions, cell, params, lists)
    state = None
    if charge_method is None:
        q = jnp.asarray(charges)
        ep = coulomb_energy(positions, cell, q, params, lists.types, lists)
        eqeq = charge_self_energy(q, params, lists.types)
    else:
        el = electrostatic_energy(positions, cell, params, lists.types, lists, total_charge,
                                  method=charge_method, convention=convention, solver=solver,
                                  guess=guess, tol=tol)
        q, ep, eqeq = el["q"], el["ep"], el["eqeq"]
        if "s" in el:
            state = {"s": el["s"], "t": el["t"]}
    terms.update(ep=ep, efi=jnp.zeros(()), eqeq=eqeq)
    return terms, q, state


def _evaluate(positions, cell, params, lists, total_charge, charges, guess, charge_method,
              convention, solver, tol=1e-10):
    """Energies, charges, solver state, dE/dpositions and dE/dstrain at zero strain."""

    def total(pos, strain):
        deform = jnp.eye(3) + 0.5 * (strain + strain.T)
        terms, q, state = energy_terms(pos @ deform, cell @ deform, params, lists,
                                       total_charge, charge_method=charge_method,
                                       convention=convention, charges=charges, solver=solver,
                                       guess=guess, tol=tol)
        e = terms["ebond"]
        for name in TERMS[1:]:
            e = e + terms[name]
        return e, (terms, q, state)

    (energy, (terms, q, state)), (de_dpos, de_dstrain) = rg.value_and_grad(
        total, argnums=(0, 1), has_aux=True)(positions, jnp.zeros((3, 3)))
    return energy, terms, q, state, de_dpos, de_dstrain


_evaluate_jit = rg.jit(_evaluate, static_argnums=(7, 8, 9, 10))

OVERLAP_DISTANCE = 0.1  # Å: closer atoms are refused
# CG warm starts along a trajectory: the next s (t) is extrapolated from its last 4 (3)
# solutions by the polynomial through them, as fix qeq/reaxff does; fewer when fewer are known
SOLVER_HISTORY = {"s": 4, "t": 3}
_EXTRAPOLATION = {1: (1.0,), 2: (2.0, -1.0), 3: (3.0, -3.0, 1.0), 4: (4.0, -6.0, 4.0, -1.0)}


def warm_start(history: dict | None, n: int, extrapolate: bool) -> dict:
    """The CG starting guesses {s, t} (n,) from the kept solutions (newest first): the newest
    ones, or (``extrapolate``, successive MD steps) their polynomial extrapolation."""
    if not history or np.shape(history["s"])[-1] != n:
        return {"s": np.zeros(n), "t": np.zeros(n)}
    guess = {}
    for key, depth in SOLVER_HISTORY.items():
        past = np.atleast_2d(history[key])
        k = min(len(past), depth) if extrapolate else 1
        value = _EXTRAPOLATION[k][0] * past[0]
        for c, x in zip(_EXTRAPOLATION[k][1:], past[1:k]):
            value = value + c * x
        guess[key] = value
    return guess


def push_history(history: dict | None, state: dict) -> dict:
    """``history`` with the solutions of ``state`` in front (at most SOLVER_HISTORY kept)."""
    out = {}
    for key, depth in SOLVER_HISTORY.items():
        new = np.asarray(state[key])[None]
        past = None if not history else np.atleast_2d(history[key])
        if past is not None and past.shape[-1] == new.shape[-1]:
            new = np.concatenate([new, past[:depth - 1]])
        out[key] = new
    return out
DENSE_LIMIT = 1000  # atoms: above, "auto" solves QEq/EEM by warm-started sparse CG


@dataclass
class Result:
    energy: float
    terms: dict
    charges: np.ndarray
    forces: np.ndarray
    virial: np.ndarray  # dE/dstrain (kcal/mol), symmetric
    stress: np.ndarray | None  # dE/dstrain / volume (kcal/mol/Å^3), periodic cells only


class ReaxFF:
    """A force field plus settings; `evaluate` computes one structure."""

    def __init__(self, ffield, charge_method="qeq", convention="lammps", control=None,
                 solver="auto", qeq_tolerance=1e-10):
        if charge_method not in CHARGE_METHODS:
            raise ValueError(f"charge_method must be one of {CHARGE_METHODS}, got "
                             f"{charge_method!r}")
        if convention not in ("lammps", "consistent"):
            raise ValueError(f"convention must be 'lammps' or 'consistent', got {convention!r}")
        self.ff = ffield if isinstance(ffield, ForceField) else read_ffield(ffield)
        self.params = to_params(self.ff)
        self.charge_method = "qeq" if charge_method == "eem" else charge_method
        self.convention = convention
        if solver not in ("auto", "direct", "cg"):
            raise ValueError(f"solver must be 'auto', 'direct' or 'cg', got {solver!r}")
        if solver == "cg" and self.charge_method == "acks2":
            raise ValueError("solver='cg' solves QEq/EEM only; ACKS2 uses the direct solve")
        self.solver = solver
        if not 0.0 < float(qeq_tolerance) < 1.0:
            raise ValueError(f"qeq_tolerance must be in (0, 1), got {qeq_tolerance!r}")
        self.qeq_tolerance = float(qeq_tolerance)  # CG's relative residual (fix qeq/reaxff tol)
        # lists are rebuilt for every evaluation, so they need no skin: candidates are then
        # only the entries LAMMPS's thresholds can select at this geometry (faster)
        self.control = {"skin": 0.0, **(control or {})}
        self._lists: ReaxLists | None = None
        # CG warm start: the latest solutions {s, t} ((k, n), newest first)
        self._guess: dict | None = None

    @property
    def elements(self) -> list[str]:
        return list(self.ff.elements)

    def types_of(self, symbols, source="structure") -> np.ndarray:
        index = {e.capitalize(): k for k, e in enumerate(self.ff.elements)}
        missing = sorted({s for s in symbols if s.capitalize() not in index})
        if missing:
            raise ValueError(
                f"{source}: element(s) {', '.join(missing)} not in the force field "
                f"{self.ff.path or ''} (it has {', '.join(self.ff.elements)})"
            )
        return np.array([index[s.capitalize()] for s in symbols], dtype=np.int64)

    def solver_for(self, n_atoms: int) -> str:
        """The charge solver used for a structure of n_atoms atoms."""
        if self.solver != "auto":
            return self.solver
        if self.charge_method in ("qeq",) and n_atoms > DENSE_LIMIT:
            return "cg"
        return "direct"

    def lists(self, positions, cell, pbc, types, pairs=None) -> ReaxLists:
        lists = build_lists(positions, cell, pbc, types, self.params, self.control,
                            elements=self.ff.elements, previous=self._lists, pairs=pairs)
        self._lists = lists
        return lists

    def evaluate(self, positions, cell, pbc, symbols, total_charge=0.0, charges=None,
                 source="structure") -> Result:
        positions = np.asarray(positions, dtype=np.float64)
        pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
        cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
        types = self.types_of(symbols, source)
        # one neighbour search serves the overlap check and the lists
        pairs = find_pairs(positions, cell, pbc, types, self.params, self.control,
                           overlap_distance=OVERLAP_DISTANCE, previous=self._lists)
        _check_overlaps(positions, cell, pbc, source, pairs=pairs.overlap)
        lists = self.lists(positions, cell, pbc, types, pairs)
        return self.evaluate_lists(positions, cell, pbc, lists, total_charge, charges)

    def evaluate_lists(self, positions, cell, pbc, lists, total_charge=0.0,
                       charges=None, extrapolate=False) -> Result:
        """Evaluate with interaction lists built earlier (valid candidates for `positions`:
        built here, or at nearby positions with a skin, as MD does). extrapolate: the calls
        are successive MD steps, so the iterative charge solver starts from the extrapolation
        of its last solutions (else from the last one)."""
        n = len(positions)
        q_in = None if self.charge_method is not None else np.asarray(
            np.zeros(n) if charges is None else charges, dtype=np.float64)
        solver = self.solver_for(n)
        guess = warm_start(self._guess, n, extrapolate) if solver == "cg" else None
        energy, terms, q, state, de_dpos, de_dstrain = _evaluate_jit(
            positions, cell, self.params, lists, np.float64(total_charge), q_in, guess,
            self.charge_method, self.convention, solver, self.qeq_tolerance)
        if state is not None:
            self._guess = push_history(self._guess, state)
        virial = np.asarray(de_dstrain)
        volume = abs(np.linalg.det(cell)) if np.all(pbc) else 0.0
        return Result(
            energy=float(energy),
            terms={k: float(terms[k]) for k in TERMS},
            charges=np.asarray(q),
            forces=-np.asarray(de_dpos),
            virial=virial,
            stress=virial / volume if volume > 0 else None,
        )


def _check_overlaps(positions, cell, pbc, source, min_distance=OVERLAP_DISTANCE, pairs=None):
    """Refuse atoms on top of each other (the potential is singular there). pairs: the half
    list within min_distance when a search already found it (``find_pairs``)."""
    if pairs is None:
        from reaxgrad.md.neighbors import neighbor_pairs

        pairs = neighbor_pairs(positions, cell, pbc, min_distance, half=True)
    i, j, s = pairs
    if len(i):
        d = positions[j[0]] + s[0] @ cell - positions[i[0]]
        raise ValueError(
            f"{source}: atoms {int(i[0])} and {int(j[0])} overlap (distance "
            f"{np.linalg.norm(d):.3g} Å < {min_distance} Å)"
        )
