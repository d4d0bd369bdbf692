"""Tests for reaxgrad.datasets.geo_write: BGF blocks that read_geo reads back, ReaxFF cell frame."""
import numpy as np
import pytest
from ase import Atoms
from ase.geometry import cellpar_to_cell

from reaxgrad.datasets import read_geo, reaxff_cell
from reaxgrad.datasets.geo_write import reaxff_orientation, write_geo

CELLPAR = [5.1, 6.2, 7.3, 75.0, 85.0, 100.0]


def _triclinic(seed=0):
    rng = np.random.default_rng(seed)
    cell = cellpar_to_cell(CELLPAR)  # ASE's frame: a along x
    atoms = Atoms("SiO2Si", scaled_positions=rng.random((4, 3)), cell=cell, pbc=True)
    atoms.info["name"] = "tri"
    return atoms


def test_orientation_is_a_rotation_into_the_reaxff_frame():
    atoms = _triclinic()
    rotated, rotation = reaxff_orientation(atoms)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    np.testing.assert_allclose(rotated.cell.array, reaxff_cell(*CELLPAR), atol=1e-12)
    np.testing.assert_allclose(rotated.get_all_distances(mic=True),
                               atoms.get_all_distances(mic=True), atol=1e-12)
    np.testing.assert_allclose(rotated.get_scaled_positions(wrap=False),
                               atoms.get_scaled_positions(wrap=False), atol=1e-12)
    left = atoms.copy()
    left.set_cell(-atoms.cell.array, scale_atoms=True)  # left-handed: mirrored
    mirrored, rotation = reaxff_orientation(left)
    assert np.linalg.det(rotation) == pytest.approx(-1.0)
    np.testing.assert_allclose(mirrored.get_all_distances(mic=True),
                               left.get_all_distances(mic=True), atol=1e-12)


@pytest.mark.parametrize("decimals, tol", [(5, 1e-5), (8, 1e-8)])
def test_periodic_and_molecular_blocks_read_back(tmp_path, decimals, tol):
    crystal = _triclinic()
    crystal.info.update(charge=-1.0, relax_steps=0)
    molecule = Atoms("OH2", positions=[[0, 0, 0.12], [0, 0.76, -0.48], [0, -0.76, -0.48]])
    molecule.info.update(name="water", relax_steps=99999,
                         bond_restraints=[{"atoms": (0, 1), "target": 1.0, "force1": 2500.0,
                                           "force2": 1.0}])
    scan = molecule.copy()
    scan.info.update(name="water_scan", relax_steps=20)
    write_geo(tmp_path / "geo", [crystal, molecule, scan], decimals=decimals)
    back = read_geo(tmp_path / "geo")
    assert [a.info["name"] for a in back] == ["tri", "water", "water_scan"]
    assert [a.info["relax_steps"] for a in back] == [0, 99999, 20]
    assert back[0].info["charge"] == -1.0 and "charge" not in back[1].info
    assert back[0].pbc.all() and not back[1].pbc.any()
    np.testing.assert_allclose(back[0].cell.cellpar(), CELLPAR, atol=tol)
    np.testing.assert_allclose(back[0].get_all_distances(mic=True),
                               crystal.get_all_distances(mic=True), atol=4 * tol)
    np.testing.assert_allclose(back[1].positions, molecule.positions, atol=tol)
    assert back[0].get_chemical_symbols() == crystal.get_chemical_symbols()
    assert back[1].info["bond_restraints"] == molecule.info["bond_restraints"]


def test_public_geo_files_read_back_unchanged(tmp_path, jaxreaxff_data):
    for name in ("silica", "cobalt", "disulfide"):
        original = read_geo(jaxreaxff_data / name / "geo")
        write_geo(tmp_path / name, original)
        back = read_geo(tmp_path / name)
        assert len(back) == len(original)
        for a, b in zip(original, back):
            np.testing.assert_array_equal(a.positions, b.positions)
            np.testing.assert_array_equal(a.arrays["reax_types"], b.arrays["reax_types"])
            np.testing.assert_allclose(a.cell.array, b.cell.array, atol=1e-12)
            for key in ("name", "relax_steps", "charge", "molcharge", "bond_restraints",
                        "angle_restraints", "torsion_restraints", "crystx", "bgf_energy"):
                assert a.info.get(key) == b.info.get(key), (a.info["name"], key)


def test_bad_structures_are_refused(tmp_path):
    atoms = Atoms("H", positions=[[0, 0, 0]])
    with pytest.raises(ValueError, match="one word"):
        write_geo(tmp_path / "geo", [atoms])
    atoms.info["name"] = "h"
    with pytest.raises(ValueError, match="unique"):
        write_geo(tmp_path / "geo", [atoms, atoms])
    far = atoms.copy()
    far.positions[0, 0] = 12345.0
    with pytest.raises(ValueError, match="does not fit"):
        write_geo(tmp_path / "geo", [far])
    flat = Atoms("H", cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True)
    flat.info["name"] = "flat"
    with pytest.raises(ValueError, match="independent cell vectors"):
        write_geo(tmp_path / "geo", [flat])
    assert not (tmp_path / "geo").exists()
