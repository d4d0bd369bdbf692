"""From ``geo`` + ``trainset.in`` back to per-structure DFT-style data (extxyz, ASE database).

:func:`attach_targets` turns the training items that have a per-structure form into
energies, forces and charges on a ``SinglePointCalculator`` (eV, eV/Å, e), with the
per-structure ``info`` keys that :func:`reaxgrad.datasets.dft.read_dft` reads, so that
``read_dft`` gives the same items back:

* ENERGY ``+ s/1``: an absolute energy of ``s`` (``info["energy_reference"] = "absolute"``);
* ENERGY ``+ s/1 - r/1``: ``E_s - E_r`` (``"structure:r"``).  Energies propagate along such
  items from the absolute ones; a group of structures linked only by differences gets its
  first reference at 0 eV, i.e. an energy zero of its own;
* FORCE items giving every atom of a structure: its forces (``force_weight`` in ``info``, or
  per atom in ``arrays`` when the weights differ); CHARGE items giving every atom: its charges.

Each structure holds one energy reference, so a second energy item of a structure, items with
other divisors or more terms, and every other category are returned as *unused*; structures
without an energy item get ``energy_reference = "none"``.  :func:`write_dft` writes extxyz or an
ASE database (scalar ``info`` entries as key-value pairs or data), atomically.
"""
from __future__ import annotations

import os
import tempfile
from collections import defaultdict, deque
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from .dft import EV_TO_KCAL
from .trainset import TrainItem

_TOLERANCE = 1e-9  # kcal/mol, relative: an ENERGY item the energies reproduce


def attach_targets(structures, items) -> tuple[list[Atoms], list[TrainItem]]:
    """Copies of ``structures`` with the per-structure targets of ``items`` attached, and the
    items that have no per-structure form."""
    items = list(getattr(items, "items", items))
    by_name = {str(a.info["name"]): a for a in structures}
    energy, refs, unused = _energies(items, by_name)
    forces, charges = _per_atom(items, by_name, "FORCE", unused), \
        _per_atom(items, by_name, "CHARGE", unused)
    out = []
    for atoms in structures:
        name = str(atoms.info["name"])
        copy = atoms.copy()
        copy.info["energy_reference"] = refs.get(name, ("none", None))[0]
        if name in refs:
            copy.info["energy_weight"] = refs[name][1]
        results = {"energy": energy[name] / EV_TO_KCAL if name in energy else None}
        for key, table, scale in (("forces", forces, EV_TO_KCAL), ("charges", charges, 1.0)):
            if name in table:
                values, weights = table[name]
                results[key] = values / scale
                _store_weight(copy, "force_weight" if key == "forces" else "charge_weight",
                              weights)
        copy.calc = SinglePointCalculator(copy, **results)
        out.append(copy)
    unused_ids = {id(item) for item in unused}
    return out, [item for item in items if id(item) in unused_ids
                 or item.category not in ("ENERGY", "FORCE", "CHARGE")]


def _energies(items, by_name):
    """Energies (kcal/mol) that reproduce the ENERGY items with one or two unit terms."""
    absolute, edges, unused = {}, [], []
    for item in items:
        if item.category != "ENERGY":
            continue
        terms = dict(zip(item.factors, item.structures))
        if not set(item.structures) <= by_name.keys():
            unused.append(item)
        elif item.factors == (1.0,) and item.structures[0] not in absolute:
            absolute[item.structures[0]] = item
        elif sorted(item.factors) == [-1.0, 1.0] and len(set(item.structures)) == 2:
            edges.append((terms[1.0], terms[-1.0], item))
        else:
            unused.append(item)
    energy = {name: item.targets[0] for name, item in absolute.items()}
    neighbours = defaultdict(list)
    for s, r, item in edges:
        neighbours[s].append((r, -item.targets[0]))
        neighbours[r].append((s, item.targets[0]))
    roots = list(absolute) + [r for _, r, _ in edges]
    for root in roots:
        if root in energy and root not in absolute:
            continue
        energy.setdefault(root, 0.0)
        queue = deque([root])
        while queue:
            node = queue.popleft()
            for other, delta in neighbours[node]:
                if other not in energy:
                    energy[other] = energy[node] + delta
                    queue.append(other)
    refs = {name: ("absolute", item.weight) for name, item in absolute.items()}
    for s, r, item in edges:
        target = item.targets[0]
        exact = abs(energy[s] - energy[r] - target) <= _TOLERANCE * max(1.0, abs(target))
        if exact and s not in refs:
            refs[s] = (f"structure:{r}", item.weight)
        else:
            unused.append(item)
    return energy, refs, unused


def _per_atom(items, by_name, category: str, unused: list):
    """{name: (values, weights)} for structures whose items give every atom once."""
    rows = defaultdict(list)
    for item in items:
        if item.category == category:
            rows[item.structures[0]].append(item)
    table = {}
    for name, group in rows.items():
        atoms = by_name.get(name)
        indices = sorted(item.atoms[0] for item in group)
        if atoms is None or indices != list(range(len(atoms))):
            unused.extend(group)
            continue
        group = sorted(group, key=lambda item: item.atoms[0])
        values = np.array([item.targets for item in group], dtype=np.float64)
        table[name] = (values if category == "FORCE" else values[:, 0],
                       np.array([item.weight for item in group]))
    return table


def _store_weight(atoms: Atoms, key: str, weights: np.ndarray) -> None:
    if np.all(weights == weights[0]):
        atoms.info[key] = float(weights[0])
    else:
        atoms.new_array(key, weights)


def write_dft(path, structures, format: str = "extxyz") -> None:
    """Write structures with their calculator results as ``extxyz`` or ``db``, atomically."""
    if format not in ("extxyz", "db"):
        raise ValueError(f"unknown output format {format!r} (extxyz or db)")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".{format}")
    os.close(fd)
    try:
        if format == "extxyz":
            from ase.io import write

            write(tmp, [_scalar_info(a) for a in structures], format="extxyz")
        else:
            os.unlink(tmp)
            _write_db(tmp, structures)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _scalar_info(atoms: Atoms) -> Atoms:
    """A copy keeping the info entries extxyz and ase.db can store: numbers, strings, bools
    (a one-string list, such as one REMARK, as its string)."""
    copy = atoms.copy()
    copy.calc = atoms.calc
    copy.info = {}
    for key, value in atoms.info.items():
        if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], str):
            value = value[0]
        if isinstance(value, (str, bool, int, float, np.integer, np.floating, np.bool_)):
            copy.info[key] = value
    return copy


def _write_db(path, structures) -> None:
    from ase.db import connect
    from ase.db.core import check

    with connect(path, type="db") as db:
        for atoms in structures:
            pairs, data = {}, {}
            for key, value in _scalar_info(atoms).info.items():
                try:
                    check({key: value})
                    pairs[key] = value
                except ValueError:
                    data[key] = value
            for key, value in atoms.arrays.items():
                if key not in ("numbers", "positions", "initial_charges", "initial_magmoms",
                               "momenta", "tags", "masses"):
                    data[key] = value.tolist() if value.dtype.kind in "US" else value
            db.write(atoms, key_value_pairs=pairs, data=data)


__all__ = ["attach_targets", "write_dft"]
