"""Integration: every structure of the public JAX-ReaxFF training sets evaluates with its
force field (finite energies, forces and charges; charges sum to the total charge)."""
import numpy as np
import pytest

from reaxgrad.datasets import read_geo
from reaxgrad.forcefields.reaxff.model import ReaxFF


@pytest.mark.parametrize("name", ["silica", "disulfide"])
def test_every_structure_evaluates(name, jaxreaxff_data):
    base = jaxreaxff_data / name
    structures = read_geo(base / "geo")
    model = ReaxFF(base / "ffield_lit")
    for atoms in structures:
        total = atoms.info.get("charge", 0.0)
        res = model.evaluate(atoms.positions, atoms.cell.array, atoms.pbc,
                             atoms.get_chemical_symbols(), total_charge=total,
                             source=atoms.info.get("name"))
        assert np.isfinite(res.energy), atoms.info.get("name")
        assert np.isfinite(res.forces).all(), atoms.info.get("name")
        assert abs(res.charges.sum() - total) < 1e-8
    assert len(structures) > 100
