"""Every bonded and van der Waals term against LAMMPS (fixed zero charges), term by term, and
forces (-grad of the energy through the engine) against LAMMPS forces."""

import numpy as np
import pytest
from reaxff_cases import atom_types, ffield_tables, setup_case

import reaxgrad.core as rc
from reaxgrad.forcefields.reaxff import (
    BONDED_TERMS,
    bonded_energy,
    bonded_energy_terms,
    build_lists,
)

# every case of tests/forcefields/structures.py: cho, rdx (H-bonds, gp38 = 2), lg, budzien,
# ZnOH (oxide), AuO (metal), acks2 water; molecules, clusters, triclinic cells < 10 A
ENERGY_CASES = [
    "h2o", "ch4", "ethanol", "hcn", "co", "nitromethane", "butane_gauche", "n_methylacetamide",
    "water_ring4", "water_ring4_rdx", "water_dimer_acks2", "formamide_dimer", "benzene_dimer_lg",
    "hydroxide", "hydronium", "water_box", "water_box_triclinic", "diamond_primitive",
    "graphite", "petn", "petn_lg", "zno_wurtzite", "gold_fcc", "gold_primitive",
]  # fmt: skip
# water_ring4*: the linear O-H...O hydrogen bonds are also weak O...H bonds, so torsions contain
# bond angles of 180 degrees within rounding. There E_tor ~ sin(theta) has a kink and omega is
# undefined; LAMMPS's forces then depend on the rounding noise in its sin(acos(cos)) (they differ
# from central differences of its own energy by 5e-4 kcal/mol/A), ours by up to 6e-3.
FORCE_CASES = [c for c in ENERGY_CASES if not c.startswith("water_ring4")]


def _close(value, ref, rel=1e-6, abs_=1e-5):
    return abs(value - ref) <= max(abs_, rel * abs(ref))


@pytest.mark.parametrize("name", ENERGY_CASES)
def test_terms_match_lammps(name, lammps_zero_charges):
    atoms, ffield, _, params, _, lists = setup_case(name)
    terms = bonded_energy_terms(atoms.positions, atoms.cell.array, params, lists)
    assert set(terms) == set(BONDED_TERMS)
    ref = lammps_zero_charges(atoms, ffield)
    bad = {k: (float(v), ref["energies"][k]) for k, v in terms.items()
           if not _close(float(v), ref["energies"][k], rel=1e-9, abs_=1e-8)}
    assert not bad, bad
    # with zero charges ep and eqeq vanish: the bonded terms are LAMMPS's whole energy
    assert ref["energies"]["ep"] == 0.0 and ref["energies"]["eqeq"] == 0.0
    total = float(bonded_energy(atoms.positions, atoms.cell.array, params, lists))
    assert _close(total, ref["energy"], rel=1e-9, abs_=1e-8)


@pytest.mark.parametrize("name", FORCE_CASES)
def test_forces_match_lammps(name, lammps_zero_charges):
    atoms, ffield, _, params, _, lists = setup_case(name)
    cell = atoms.cell.array
    forces = -np.asarray(rc.grad(lambda x: bonded_energy(x, cell, params, lists))(atoms.positions))
    ref = lammps_zero_charges(atoms, ffield)["forces"]
    scale = max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(forces, ref, rtol=0, atol=1e-7 * scale)


def test_stress_matches_lammps(lammps_zero_charges):
    """Strain derivative of the energy (through the cell and positions) against LAMMPS."""
    atoms, ffield, _, params, _, lists = setup_case("water_box_triclinic")
    cell, pos = atoms.cell.array, atoms.positions

    def strained(eps):
        deform = np.eye(3) + 0.5 * (eps + eps.T)
        return bonded_energy(pos @ deform, cell @ deform, params, lists)

    stress = np.asarray(rc.grad(strained)(np.zeros((3, 3)))) / atoms.get_volume()
    ref = lammps_zero_charges(atoms, ffield)["stress_tensor"]
    np.testing.assert_allclose(stress, ref, rtol=0, atol=1e-7 * np.abs(ref).max())


def _extra_molecule(name):
    from ase import Atoms
    from ase.build import molecule

    if name == "C2":
        return Atoms("C2", positions=[[0, 0, 0], [0.02, 0.01, 1.24]])
    return molecule(name)


@pytest.mark.parametrize("name", ["C2", "C2H2", "CO2", "HCOOH"])
def test_c2_correction_and_triple_bonds_match_lammps(name, lammps_zero_charges):
    """The C2 correction of elp (C=C with BO - Delta - 0.04 Delta^4 > 3) and the triple-bond
    stabilisation, which tests/forcefields/structures.py does not cover."""
    ff, params = ffield_tables("ffield.reax.cho")
    atoms = _extra_molecule(name)
    lists = build_lists(atoms.positions, None, False, atom_types(ff, atoms), params,
                        elements=ff.elements)
    terms = bonded_energy_terms(atoms.positions, None, params, lists)
    ref = lammps_zero_charges(atoms, "ffield.reax.cho")
    for k, v in terms.items():
        assert _close(float(v), ref["energies"][k], rel=1e-9, abs_=1e-8), k
    forces = -np.asarray(rc.grad(lambda x: bonded_energy(x, None, params, lists))(atoms.positions))
    np.testing.assert_allclose(forces, ref["forces"], rtol=0,
                               atol=1e-7 * max(1.0, np.abs(ref["forces"]).max()))
