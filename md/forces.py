"""ReaxFF energies and forces along a trajectory: interaction lists reused across steps.

Lists are built with a Verlet skin (candidates for every geometry reachable while pair
vectors change by less than the skin) and rebuilt only when that may no longer hold. Under a
cell change (NPT) the check is made in the affinely deformed frame: with F the deformation
from the build cell to the current one, a pair vector within the list cutoff ``r_c`` changes
by at most ``r_c * |F - I|_2 + 2 * max_i |x_i - x_i^0 F|``, which must stay below the skin.
Capacities follow the bucket ladder, so the compiled function is reused as lists change.

``TrajectoryForces`` serves one structure; ``ReplicaForces`` serves R copies of a structure
(same atoms, different positions) in one vmapped, compiled call. Units: kcal/mol, Å.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import reaxgrad.core as rg
from reaxgrad.core import tree_map
from reaxgrad.forcefields.reaxff.lists import ReaxLists, build_lists
from reaxgrad.forcefields.reaxff.model import TERMS, ReaxFF, Result, _check_overlaps, _evaluate
from reaxgrad.md.neighbors import bucket_capacity

from .dynamics import Forces

__all__ = ["TrajectoryForces", "ReplicaForces", "DEFAULT_SKIN", "pad_lists"]

# Å: larger skins rebuild less often but widen the candidate lists (PETN, 7,250 atoms: 0.3 Å
# keeps 4x the torsions of the exact lists; 0.1 Å rebuilds every ~5 MD steps and is faster)
DEFAULT_SKIN = 0.1


def _list_reach(model: ReaxFF) -> float:
    """The largest pair distance any list holds before the skin (Å)."""
    gp = np.asarray(model.params["gp"])
    control = {"nbrhood_cutoff": 5.0, "hbond_cutoff": 7.5, **model.control}
    return max(float(gp[12]), float(control["nbrhood_cutoff"]),
               float(control["hbond_cutoff"]))


def lists_still_valid(reference_positions, reference_cell, positions, cell, pbc, skin,
                      reach) -> bool:
    """Whether lists built at (reference_positions, reference_cell) still hold every candidate
    at (positions, cell): the bound of the module docstring below the skin."""
    if positions.shape != reference_positions.shape:
        return False
    strain = 0.0
    mapped = reference_positions
    if np.any(pbc):
        if not np.array_equal(cell, reference_cell):
            deform = np.linalg.solve(reference_cell, cell)  # cell = reference_cell @ F
            strain = float(np.linalg.norm(deform - np.eye(3), 2))
            mapped = reference_positions @ deform
    elif not np.array_equal(cell, reference_cell):
        return False
    if len(positions) == 0:
        return True
    moved = positions - mapped
    largest = float(np.sqrt(np.einsum("nd,nd->n", moved, moved).max()))
    return 2.0 * largest + (reach + skin) * strain < skin


@dataclass
class ListState:
    """What a resumed run needs to rebuild exactly the same lists: where they were built."""

    positions: np.ndarray
    cell: np.ndarray
    capacities: dict


def _capacities(lists: ReaxLists) -> dict:
    return {name: len(getattr(lists, name)) for name in
            ("bond_i", "angle_b1", "torsion_ij", "hbond_bond", "far_i")}


_PADDED_GROUPS = {
    "bond_i": ("bond_i", "bond_j", "bond_shift", "bond_mask", "bond_half"),
    "angle_b1": ("angle_b1", "angle_b2", "angle_mask"),
    "torsion_ij": ("torsion_ij", "torsion_jk", "torsion_kl", "torsion_mask"),
    "hbond_bond": ("hbond_bond", "hbond_k", "hbond_shift", "hbond_mask"),
    "far_i": ("far_i", "far_j", "far_shift", "far_mask"),
}


def pad_lists(lists: ReaxLists, capacities: dict) -> ReaxLists:
    """The same lists padded (zeros, mask False) to at least ``capacities``."""
    changes = {}
    for key, names in _PADDED_GROUPS.items():
        extra = capacities.get(key, 0) - len(getattr(lists, key))
        if extra <= 0:
            continue
        for name in names:
            a = getattr(lists, name)
            changes[name] = np.concatenate([a, np.zeros((extra,) + a.shape[1:], a.dtype)])
    if not changes:
        return lists
    from dataclasses import replace

    return replace(lists, **changes)


_MASKS = {"bond_i": "bond_mask", "angle_b1": "angle_mask", "torsion_ij": "torsion_mask",
          "hbond_bond": "hbond_mask", "far_i": "far_mask"}


def _with_headroom(lists: ReaxLists, before: dict) -> ReaxLists:
    """A list that outgrew its capacity along a trajectory (e.g. hydrogen-bond candidates as
    a crystal warms up) gets room for as much growth again: count * (count / old capacity),
    up the ladder. Every new capacity costs a new trace of the compiled function (~0.3 s),
    and a growing list would otherwise climb the ladder a rung at a time; a list that
    barely overflowed takes the next rung only."""
    grown = {}
    for key, cap in _capacities(lists).items():
        if cap > before[key]:
            count = int(np.count_nonzero(getattr(lists, _MASKS[key])))
            grown[key] = bucket_capacity(-(-count * count // before[key]))
    return pad_lists(lists, grown) if grown else lists


class _Capacities:
    """Stand-in `previous` lists for build_lists: only the lengths matter there."""

    def __init__(self, capacities):
        for key, n in capacities.items():
            setattr(self, key, np.empty(n))


class TrajectoryForces:
    """Energies, forces, virial and charges of one structure at successive geometries.

    ``model``: a ReaxFF; ``symbols``, ``pbc``: fixed along the run; ``skin`` (Å): list skin.
    Call with (positions, cell) -> ``Result`` (kcal/mol, kcal/mol/Å). ``rebuilds`` counts
    list builds. ``list_state`` / ``restore`` let a checkpoint reproduce the lists exactly.
    Successive calls are taken as MD steps: the iterative charge solver starts from the
    extrapolation of its last solutions (``extrapolate``).
    """

    extrapolate = True

    def __init__(self, model: ReaxFF, symbols, pbc, *, total_charge=0.0, charges=None,
                 skin=DEFAULT_SKIN, source="structure"):
        if skin < 0:
            raise ValueError(f"skin must be >= 0, got {skin}")
        self.model = model
        self.types = model.types_of(symbols, source)
        self.pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
        self.total_charge = float(total_charge)
        self.charges = charges
        self.skin = float(skin)
        self.source = source
        self.control = {**model.control, "skin": self.skin}
        self.reach = _list_reach(model)
        self.lists: ReaxLists | None = None
        self.reference: ListState | None = None
        self.rebuilds = 0

    def _build(self, positions, cell, capacities=None):
        previous = self.lists if capacities is None else _Capacities(capacities)
        lists = build_lists(positions, cell, self.pbc, self.types, self.model.params,
                            self.control, elements=self.model.ff.elements, previous=previous)
        if capacities is None and self.lists is not None:
            lists = _with_headroom(lists, _capacities(self.lists))
        self.lists = lists
        self.reference = ListState(positions.copy(), cell.copy(), _capacities(self.lists))
        self.rebuilds += 1

    def update_lists(self, positions, cell) -> bool:
        """Rebuild the lists if needed; True when rebuilt."""
        if self.reference is not None and lists_still_valid(
                self.reference.positions, self.reference.cell, positions, cell, self.pbc,
                self.skin, self.reach):
            return False
        _check_overlaps(positions, cell, self.pbc, self.source)
        self._build(positions, cell)
        return True

    def result(self, positions, cell=None) -> Result:
        """The model's full Result (per-term energies, stress) at this geometry."""
        positions = np.asarray(positions, dtype=np.float64)
        cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
        if not np.all(np.isfinite(positions)):
            raise FloatingPointError(f"{self.source}: non-finite positions (the run blew up; "
                                     "try a smaller time step)")
        self.update_lists(positions, cell)
        return self.model.evaluate_lists(positions, cell, self.pbc, self.lists,
                                         self.total_charge, self.charges,
                                         extrapolate=self.extrapolate)

    def __call__(self, positions, cell=None) -> Forces:
        r = self.result(positions, cell)
        return Forces(np.float64(r.energy), r.forces, r.virial, r.charges, r.terms)

    def list_state(self) -> ListState | None:
        return self.reference

    def restore(self, state: ListState | None) -> None:
        """Rebuild the lists a checkpointed run had (same build geometry and capacities)."""
        if state is None:
            self.lists = self.reference = None
            return
        self._build(np.asarray(state.positions), np.asarray(state.cell), state.capacities)
        self.rebuilds -= 1


def _evaluate_replicas(positions, cell, params, lists, total_charge, charges, charge_method,
                       convention):
    return _evaluate(positions, cell, params, lists, total_charge, charges, None, charge_method,
                     convention, "direct")


class ReplicaForces:
    """R copies of one structure evaluated together: lists stacked to common capacities,
    one jit(vmap(...)) call for all. Call with positions (R, N, 3), cell (R, 3, 3) ->
    ``Forces`` with a leading replica axis (kcal/mol, Å)."""

    def __init__(self, model: ReaxFF, symbols, pbc, n_replicas, *, total_charge=0.0,
                 skin=DEFAULT_SKIN, source="structure"):
        if model.charge_method == "acks2":
            raise ValueError("replica batches support QEq/EEM or fixed charges, not ACKS2")
        self.single = [TrajectoryForces(model, symbols, pbc, total_charge=total_charge,
                                        skin=skin, source=source) for _ in range(n_replicas)]
        self.model = model
        self.total_charge = float(total_charge)
        self._stacked = None
        self._fn = rg.jit(rg.vmap(_evaluate_replicas,
                                  in_axes=(0, 0, None, 0, None, None, None, None)),
                          static_argnums=(6, 7))

    @property
    def rebuilds(self) -> int:
        return sum(f.rebuilds for f in self.single)

    def __call__(self, positions, cell):
        positions = np.asarray(positions, dtype=np.float64)
        cell = np.asarray(cell, dtype=np.float64)
        changed = [f.update_lists(x, c) for f, x, c in zip(self.single, positions, cell)]
        if any(changed) or self._stacked is None:
            caps = {}
            for f in self.single:
                for key, n in _capacities(f.lists).items():
                    caps[key] = max(caps.get(key, 0), n)
            padded = [pad_lists(f.lists, caps) for f in self.single]
            self._stacked = tree_map(lambda *a: np.stack(a), *padded)
        q_in = None
        if self.model.charge_method is None:
            q_in = np.zeros(positions.shape[1])
        energy, terms, q, _, de_dpos, de_dstrain = self._fn(
            positions, cell, self.model.params, self._stacked, np.float64(self.total_charge),
            q_in, self.model.charge_method, self.model.convention)
        return Forces(np.asarray(energy), -np.asarray(de_dpos), np.asarray(de_dstrain),
                      np.asarray(q), {k: np.asarray(terms[k]) for k in TERMS})
