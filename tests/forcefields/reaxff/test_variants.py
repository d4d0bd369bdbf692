"""Force-field variants the shipped files do not exercise, against LAMMPS (zero charges):
van der Waals mode 2 (inner wall, no shielding) and mode 3 without lg, a non-zero lower taper
radius (gp12), a bond type without bond-order corrections (ovc = v13cor = 0), and a slab with
mixed boundary conditions."""

import numpy as np
import pytest
from reaxff_cases import atom_types
from structures import CASES_BY_NAME

import reaxgrad.core as rc
from reaxgrad.forcefields.ffield import read_ffield, to_params, write_ffield
from reaxgrad.forcefields.reaxff import bonded_energy, bonded_energy_terms, build_lists

GAMMA_W, RCORE2, ECORE2, ACORE2 = 9, 29, 30, 31  # atom record value indices
OVC, V13COR = 14, 5  # bond record value indices


def _edited_cho(tmp_path, *, shielding, swa=0.0):
    from reaxgrad.forcefields.lammps_oracle import potential_path

    ff = read_ffield(potential_path("ffield.reax.cho")).copy()
    for rec in ff.atoms:
        if not shielding:
            rec.set_value(GAMMA_W, 0.4)
        rec.set_value(RCORE2, 1.4)
        rec.set_value(ECORE2, 0.12)
        rec.set_value(ACORE2, 9.0)
    ff.general[11].set_value(0, swa)
    for rec in ff.bonds:
        if sorted(rec.types) == [1, 2]:  # C-H
            rec.set_value(OVC, 0.0)
            rec.set_value(V13COR, 0.0)
    path = tmp_path / f"ffield.cho.edited.{int(shielding)}"
    write_ffield(ff, path)
    return str(path), read_ffield(path)


@pytest.mark.parametrize("shielding,swa,mode", [(False, 0.0, 2), (True, 1.5, 3)])
@pytest.mark.parametrize("name", ["ethanol", "water_box_triclinic"])
def test_vdw_modes_taper_and_uncorrected_bonds(tmp_path, lammps_zero_charges, shielding, swa,
                                               mode, name):
    path, ff = _edited_cho(tmp_path, shielding=shielding, swa=swa)
    params = to_params(ff)
    assert int(params["vdw_type"]) == mode
    atoms = CASES_BY_NAME[name].build()
    types = atom_types(ff, atoms)
    lists = build_lists(atoms.positions, atoms.cell.array, atoms.pbc, types, params,
                        elements=ff.elements)
    terms = bonded_energy_terms(atoms.positions, atoms.cell.array, params, lists)
    ref = lammps_zero_charges(atoms, path)
    for k, v in terms.items():
        r = ref["energies"][k]
        assert abs(float(v) - r) <= max(1e-8, 1e-9 * abs(r)), (k, float(v), r)
    cell = atoms.cell.array
    forces = -np.asarray(rc.grad(lambda x: bonded_energy(x, cell, params, lists))(atoms.positions))
    np.testing.assert_allclose(forces, ref["forces"], rtol=0,
                               atol=1e-7 * max(1.0, np.abs(ref["forces"]).max()))


def test_slab_with_mixed_boundaries(lammps_zero_charges):
    """Au(111) slab with O and H adsorbed: periodic in x and y only (AuO force field)."""
    from ase.build import add_adsorbate, fcc111
    from reaxff_cases import ffield_tables

    slab = fcc111("Au", (2, 2, 2), vacuum=6.0)
    add_adsorbate(slab, "O", 1.2, "fcc")
    add_adsorbate(slab, "H", 2.1, "fcc")
    slab.rattle(0.03, seed=1)
    ff, params = ffield_tables("ffield.reax.AuO")
    cell = slab.cell.array
    lists = build_lists(slab.positions, cell, slab.pbc, atom_types(ff, slab), params,
                        elements=ff.elements)
    terms = bonded_energy_terms(slab.positions, cell, params, lists)
    ref = lammps_zero_charges(slab, "ffield.reax.AuO")
    for k, v in terms.items():
        r = ref["energies"][k]
        assert abs(float(v) - r) <= max(1e-8, 1e-9 * abs(r)), (k, float(v), r)
    forces = -np.asarray(rc.grad(lambda x: bonded_energy(x, cell, params, lists))(slab.positions))
    np.testing.assert_allclose(forces, ref["forces"], rtol=0,
                               atol=1e-7 * max(1.0, np.abs(ref["forces"]).max()))
