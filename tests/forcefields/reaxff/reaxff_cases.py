"""Shared set-up for the ReaxFF term tests: structures from ``tests/forcefields/structures.py``
with their force fields, parameter tables, atom types and interaction lists."""

import functools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from structures import CASES_BY_NAME  # noqa: E402

from reaxgrad.forcefields.ffield import read_ffield, to_params  # noqa: E402
from reaxgrad.forcefields.reaxff import build_lists  # noqa: E402


@functools.cache
def ffield_tables(name):
    """(ForceField, params) of a shipped force field (cached)."""
    from reaxgrad.forcefields.lammps_oracle import potential_path

    ff = read_ffield(potential_path(name))
    return ff, to_params(ff)


def atom_types(ff, atoms):
    """Indices of the atoms' elements in the force field (case-insensitive)."""
    names = [e.upper() for e in ff.elements]
    return np.array([names.index(s.upper()) for s in atoms.get_chemical_symbols()])


def setup_case(name, control=None):
    """(atoms, ffield file name, ForceField, params, types, lists) for a case of CASES."""
    case = CASES_BY_NAME[name]
    atoms = case.build()
    ff, params = ffield_tables(case.ffield)
    types = atom_types(ff, atoms)
    lists = build_lists(atoms.positions, atoms.cell.array, atoms.pbc, types, params, control,
                        elements=ff.elements)
    return atoms, case.ffield, ff, params, types, lists
