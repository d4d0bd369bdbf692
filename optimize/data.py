"""From input files to a fitting problem: geo structures mapped onto force-field types, the
training (and validation) items read against them, structures restricted to those used."""
from __future__ import annotations

import numpy as np

from reaxgrad.datasets.geo import read_geo
from reaxgrad.datasets.trainset import read_trainset
from reaxgrad.errors import InputFileError
from reaxgrad.forcefields.ffield import ForceField

from .batch import Structure

HEAT_INCREMENT = 18  # 0-based value index of the heat increment in an ffield atom record
_RESTRAINT_WIDTH = {"bond": 2, "angle": 3, "torsion": 4}


def structures_from_atoms(atoms_list, ff: ForceField, source="geo") -> list[Structure]:
    """Structures with ffield types from the atom names (``arrays["reax_types"]`` as in the geo
    file, else chemical symbols), total charge from ``info["charge"]`` (neutral otherwise)."""
    index = {e.capitalize(): k for k, e in enumerate(ff.elements)}
    heat = np.array([rec.value(HEAT_INCREMENT) for rec in ff.section("atoms")])
    out = []
    for k, atoms in enumerate(atoms_list):
        name = str(atoms.info.get("name", f"structure_{k}"))
        names = (list(atoms.arrays["reax_types"]) if "reax_types" in atoms.arrays
                 else atoms.get_chemical_symbols())
        missing = sorted({str(n) for n in names if str(n).capitalize() not in index})
        if missing:
            raise InputFileError(source, 0, f"structure {name!r}: atom name(s) "
                                 f"{', '.join(missing)} not in the force field "
                                 f"({', '.join(ff.elements)})")
        types = np.array([index[str(n).capitalize()] for n in names], dtype=np.int64)
        pbc = bool(np.all(atoms.pbc))
        restraints = {kind: atoms.info.get(f"{kind}_restraints", [])
                      for kind in _RESTRAINT_WIDTH}
        out.append(Structure(
            name=name, symbols=[ff.elements[t] for t in types], types=types,
            positions=np.array(atoms.positions, dtype=np.float64),
            cell=np.array(atoms.cell.array, dtype=np.float64), pbc=pbc,
            charge=float(atoms.info.get("charge", 0.0)),
            relax_steps=int(atoms.info.get("relax_steps", 0)),
            restraints=restraints, heat_increment=float(heat[types].sum())))
    return out


def load_items(trainset_path, geo_atoms, strict=True):
    """TrainingSet of ``trainset_path`` validated against the geo structures (strict=False:
    items naming a structure the geo file lacks are dropped with a warning, as JAX-ReaxFF
    drops them silently)."""
    sizes = {str(a.info.get("name")): len(a) for a in geo_atoms}
    return read_trainset(trainset_path, structures=sizes, strict=strict)


def load_problem_inputs(ff: ForceField, geo_path, trainset_path, valid_trainset=None,
                        valid_geo=None, strict=True):
    """(structures, {"train": items[, "valid": items]}): the structures the items use (train
    first, then validation structures not already present, as JAX-ReaxFF combines them)."""
    geo = read_geo(geo_path, elements=list(ff.elements))
    item_sets = {"train": load_items(trainset_path, geo, strict).items}
    pool = {str(a.info["name"]): a for a in geo}
    if valid_trainset is not None:
        vgeo = read_geo(valid_geo or geo_path, elements=list(ff.elements))
        item_sets["valid"] = load_items(valid_trainset, vgeo, strict).items
        for a in vgeo:
            pool.setdefault(str(a.info["name"]), a)
    used = []
    for items in item_sets.values():
        for it in items:
            for name in it.structures:
                if name not in used:
                    used.append(name)
    order = [n for n in pool if n in set(used)]
    return structures_from_atoms([pool[n] for n in order], ff, str(geo_path)), item_sets
