"""Training items as index arrays over a fit's predictions, their predictions and errors.

Predictions follow JAX-ReaxFF: ENERGY = Σ ±E_s/n (kcal/mol), CHARGE = q, FORCE = −dE/dx,
DISTANCE (Å) / ANGLE / TORSION (degrees) measured on the (relaxed) positions, angle and torsion
errors on the periodic difference; error = ((target − prediction) / weight)². Beyond
JAX-ReaxFF, which ignores them: HEATFO = E_s + Σ heat increments of the atoms, RMSG = RMS of
the forces of a structure, CELL = a cell parameter of the structure (cells are not relaxed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.geometry import cell_to_cellpar

import reaxgrad.core.numpy as jnp
from reaxgrad.core.ops import segment_sum
from reaxgrad.datasets.trainset import CELL_PARAMETERS, TrainItem

from .predict import _angle, _length, _periodic_difference, _torsion

# what JAX-ReaxFF scores; the others are reported and scored with --items all
JAXREAXFF_CATEGORIES = ("ENERGY", "CHARGE", "FORCE", "DISTANCE", "ANGLE", "TORSION")
CATEGORIES_ALL = JAXREAXFF_CATEGORIES + ("HEATFO", "RMSG", "CELL")
# categories whose predictions depend on the parameters at fixed geometry
PARAMETER_CATEGORIES = ("ENERGY", "CHARGE", "FORCE", "HEATFO", "RMSG")
GEOMETRY_CATEGORIES = ("DISTANCE", "ANGLE", "TORSION")
# JAX-ReaxFF's report order
REPORT_ORDER = ("ENERGY", "CHARGE", "FORCE", "DISTANCE", "ANGLE", "TORSION", "RMSG", "CELL",
                "HEATFO")


@dataclass
class Layout:
    """Where each structure's energy and atoms sit in the concatenated outputs of the batches:
    E_all[structure_slot[k]], atoms atom_start[k] ... atom_start[k] + n_k − 1."""

    structure_slot: np.ndarray
    atom_start: np.ndarray
    n_atoms: np.ndarray
    atom_structure: np.ndarray  # (N_all,) slot of the structure of each concatenated atom


@dataclass
class ItemTable:
    """The items of one category as arrays (rows in trainset order of that category)."""

    category: str
    items: list
    target: np.ndarray  # (I,) or (I, 3) for FORCE
    weight: np.ndarray  # (I,)
    index: dict  # arrays, see build_tables


def build_tables(items: list[TrainItem], names: dict, layout: Layout, structures) -> dict:
    """{category: ItemTable} with indices into the layout; ``names``: structure name -> index."""
    out = {}
    for cat in REPORT_ORDER:
        chosen = [it for it in items if it.category == cat]
        if not chosen:
            continue
        weight = np.array([it.weight for it in chosen], dtype=np.float64)
        if cat == "FORCE":
            target = np.array([it.targets for it in chosen], dtype=np.float64)
        else:
            target = np.array([it.targets[0] for it in chosen], dtype=np.float64)
        first = np.array([names[it.structures[0]] for it in chosen], dtype=np.int64)
        index = {"structure": first, "slot": layout.structure_slot[first]}
        if cat in ("ENERGY",):
            width = max(len(it.structures) for it in chosen)
            slots = np.zeros((len(chosen), width), dtype=np.int64)
            factors = np.zeros((len(chosen), width))
            for r, it in enumerate(chosen):
                k = [names[s] for s in it.structures]
                slots[r, :len(k)] = layout.structure_slot[k]
                factors[r, :len(k)] = it.factors
            index.update(slots=slots, factors=factors)
        if cat in ("CHARGE", "FORCE", "DISTANCE", "ANGLE", "TORSION"):
            width = {"CHARGE": 1, "FORCE": 1, "DISTANCE": 2, "ANGLE": 3, "TORSION": 4}[cat]
            atoms = np.array([it.atoms[:width] for it in chosen], dtype=np.int64)
            index["atoms"] = atoms + layout.atom_start[first][:, None]
        if cat == "HEATFO":
            index["offset"] = np.array([structures[k].heat_increment for k in first])
        if cat == "CELL":
            index["parameter"] = np.array([CELL_PARAMETERS.index(it.cell_parameter)
                                           for it in chosen])
            index["cellpar"] = np.array([cell_to_cellpar(structures[k].cell) for k in first])
        out[cat] = ItemTable(cat, chosen, target, weight, index)
    return out


def parameter_predictions(tables: dict, energy, charges, forces, layout: Layout) -> dict:
    """Predictions of the categories that depend on the parameters (traced or eager)."""
    out = {}
    for cat, t in tables.items():
        ix = t.index
        if cat == "ENERGY":
            out[cat] = jnp.sum(energy[ix["slots"]] * ix["factors"], axis=1)
        elif cat == "CHARGE":
            out[cat] = charges[ix["atoms"][:, 0]]
        elif cat == "FORCE":
            out[cat] = forces[ix["atoms"][:, 0]]
        elif cat == "HEATFO":
            out[cat] = energy[ix["slot"]] + ix["offset"]
        elif cat == "RMSG":
            squares = segment_sum(jnp.sum(forces * forces, axis=1), layout.atom_structure,
                                  len(layout.structure_slot))
            n = 3.0 * layout.n_atoms[np.argsort(layout.structure_slot)]
            out[cat] = jnp.sqrt(squares / n)[ix["slot"]]
    return out


def geometry_predictions(tables: dict, positions) -> dict:
    """Predictions measured on positions (N_all, 3): DISTANCE, ANGLE, TORSION; and CELL."""
    out = {}
    for cat, t in tables.items():
        if cat in GEOMETRY_CATEGORIES:
            p = [positions[a] for a in t.index["atoms"].T]
            fn = {"DISTANCE": lambda a, b: _length(a - b), "ANGLE": _angle,
                  "TORSION": _torsion}[cat]
            out[cat] = fn(*p)
        elif cat == "CELL":
            out[cat] = t.index["cellpar"][np.arange(len(t.items)), t.index["parameter"]]
    return out


def errors(tables: dict, predictions: dict) -> dict:
    """{category: per-item weighted squared errors} ((I,) or (I, 3) for FORCE)."""
    out = {}
    for cat, pred in predictions.items():
        t = tables[cat]
        if cat in ("ANGLE", "TORSION"):
            diff = _periodic_difference(pred, t.target)
        else:
            diff = t.target - pred
        w = t.weight[:, None] if cat == "FORCE" else t.weight
        out[cat] = (diff / w) ** 2
    return out
