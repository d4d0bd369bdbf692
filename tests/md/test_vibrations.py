"""Exact ReaxFF Hessians (reaxgrad.md.vibrations) against finite differences of the forces,
normal modes against ASE's Vibrations, and the unit conversions on an analytic spring."""
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

import reaxgrad
from reaxgrad.forcefields.reaxff.model import ReaxFF
from reaxgrad.md.minimize import lbfgs
from reaxgrad.md.vibrations import VibrationResult, hessian, normal_modes, vibrations

lo = pytest.importorskip("reaxgrad.forcefields.lammps_oracle")

sys.path.insert(0, str(Path(__file__).parents[1] / "forcefields"))
import structures  # noqa: E402


def _shipped(name):
    try:
        return lo.potential_path(name)
    except Exception as exc:  # noqa: BLE001 - no LAMMPS wheel, no shipped force fields
        pytest.skip(f"no shipped force field: {exc}")


def _relaxed(atoms, calc, fmax=1e-5):
    """Positions relaxed with reaxgrad's ASE-identical L-BFGS (cell kept)."""
    atoms = atoms.copy()
    atoms.calc = calc
    work = atoms.copy()
    work.calc = calc

    def value_and_grad(x):
        work.positions = x
        return work.get_potential_energy(), -work.get_forces()

    result = lbfgs(value_and_grad, atoms.positions, fmax=fmax, max_steps=3000)
    assert result.converged
    atoms.positions = result.positions
    return atoms


def _fd_hessian(atoms, step=5e-5):
    """-dF/dx by the 4-point central stencil (error O(step^4)); the step stays below 1e-4 Å
    from the geometry (ReaxFF's thresholds switch terms on and off in the forces)."""
    work = atoms.copy()
    work.calc = atoms.calc
    x0 = atoms.positions.reshape(-1).copy()
    n = len(x0)
    out = np.zeros((n, n))

    def forces(k, d):
        x = x0.copy()
        x[k] += d
        work.positions = x.reshape(-1, 3)
        return work.get_forces().reshape(-1)

    for k in range(n):
        out[:, k] = -(8 * (forces(k, step) - forces(k, -step))
                      - (forces(k, 2 * step) - forces(k, -2 * step))) / (12 * step)
    return out


@pytest.fixture(scope="module")
def relaxed():
    """Relaxed water, methanol, ethanol (a true minimum: from a rattled start) and ZnO."""
    cho = _shipped("ffield.reax.cho")
    znoh = _shipped("ffield.reax.ZnOH")
    ethanol = molecule("CH3CH2OH")
    ethanol.rattle(0.02, seed=3)
    return {
        "water": _relaxed(molecule("H2O"), reaxgrad.ReaxFFCalculator(cho)),
        "methanol": _relaxed(molecule("CH3OH"), reaxgrad.ReaxFFCalculator(cho)),
        "ethanol": _relaxed(ethanol, reaxgrad.ReaxFFCalculator(cho)),
        "zno": _relaxed(structures.rattle(structures.zno_wurtzite(), 0.03, 4),
                        reaxgrad.ReaxFFCalculator(znoh)),
    }


@pytest.mark.parametrize("name", ["water", "methanol", "ethanol", "zno"])
def test_hessian_at_minima_is_finite_symmetric_and_matches_finite_differences(relaxed, name):
    atoms = relaxed[name]
    h = hessian(atoms.calc, atoms)
    assert h.shape == (3 * len(atoms), 3 * len(atoms))
    assert np.isfinite(h).all()
    scale = np.abs(h).max()
    assert np.abs(h - h.T).max() < 1e-12 * scale
    fd = _fd_hessian(atoms)
    assert np.abs(h - fd).max() < 1e-8 * scale
    # translations cost nothing: every row sums to zero over the atoms, per direction
    rows = h.reshape(3 * len(atoms), len(atoms), 3).sum(axis=1)
    assert np.abs(rows).max() < 1e-9 * scale


def test_lammps_convention_is_the_jacobian_of_lammps_forces():
    """"lammps": -dF/dx of LAMMPS's fixed-charge forces with the charges following the
    geometry, for QEq (ethanol, hydroxide with charge -1) and ACKS2 (water dimer); it is
    neither the consistent Hessian nor the fixed-charge Hessian."""
    cho = _shipped("ffield.reax.cho")
    cases = [(structures.ethanol(), cho, "qeq"), (structures.hydroxide(), cho, "qeq"),
             (structures.water_dimer(), _shipped("acks2_ff.water"), "acks2")]
    for atoms, ffield, method in cases:
        atoms.calc = reaxgrad.ReaxFFCalculator(ffield, charge_method=method,
                                               convention="lammps")
        h = atoms.calc.get_hessian(atoms)
        scale = np.abs(h).max()
        assert np.abs(h - _fd_hessian(atoms)).max() < 1e-8 * scale
        consistent = hessian(reaxgrad.ReaxFFCalculator(ffield, charge_method=method), atoms)
        assert np.abs(h - consistent).max() > 1e-5 * scale
        # the charge response matters: the Hessian at the charges held fixed differs
        q = atoms.get_charges()
        fixed = atoms.copy()
        fixed.set_initial_charges(q)
        if method == "qeq":
            h_fixed = hessian(ReaxFF(ffield, charge_method=None), fixed, total_charge=0.0)
            assert np.abs(h - h_fixed).max() > 1e-4 * scale


def test_fixed_charges_and_a_model_as_source():
    """charge_method=None: the Hessian of the energy at the initial charges; a ReaxFF model
    can be the source (its own convention, here LAMMPS's: the same Jacobian as the
    calculator's in that convention)."""
    cho = _shipped("ffield.reax.cho")
    atoms = structures.ethanol()
    atoms.set_initial_charges(np.linspace(-0.3, 0.3, len(atoms)))
    atoms.calc = reaxgrad.ReaxFFCalculator(cho, charge_method=None)
    h = atoms.calc.get_hessian(atoms)
    assert np.abs(h - _fd_hessian(atoms)).max() < 1e-8 * np.abs(h).max()
    model = ReaxFF(cho)  # convention "lammps"
    from_model = hessian(model, atoms)
    from_calc = hessian(reaxgrad.ReaxFFCalculator(cho, convention="lammps"), atoms)
    np.testing.assert_allclose(from_model, from_calc, rtol=0, atol=1e-12 * np.abs(h).max())
    with pytest.raises(TypeError, match="ReaxFFCalculator or a ReaxFF model"):
        hessian("ffield.reax.cho", atoms)
    with pytest.raises(ValueError, match="element.*N not in the force field"):
        hessian(model, molecule("NH3"))


def _ase_frequencies(atoms, tmp_path, delta, nfree=4):
    from ase.vibrations import Vibrations

    vib = Vibrations(atoms, name=str(tmp_path / "vib"), delta=delta, nfree=nfree)
    vib.run()
    f = vib.get_frequencies()
    return np.where(np.abs(f.imag) > 0, -np.abs(f.imag), f.real)


@pytest.mark.parametrize("name", ["water", "methanol"])
def test_frequencies_match_ase_vibrations(relaxed, name, tmp_path):
    atoms = relaxed[name]
    result = vibrations(atoms.calc, atoms)
    assert isinstance(result, VibrationResult)
    reference = _ase_frequencies(atoms, tmp_path, delta=0.005)
    real = slice(6, None)
    assert np.abs(result.frequencies[real] - reference[real]).max() < 0.01  # cm^-1
    assert np.abs(result.frequencies[:6]).max() < 2.0  # translations and rotations
    assert result.frequencies[6] > 400.0
    # zero-point energy and the eigenvalues as ASE computes them from the same Hessian
    from ase.vibrations import VibrationsData

    data = VibrationsData.from_2d(atoms, result.hessian)
    ase_energies = data.get_energies()
    signed = np.where(np.abs(ase_energies.imag) > 0, -np.abs(ase_energies.imag),
                      ase_energies.real)
    np.testing.assert_allclose(result.energies[real], signed[real], rtol=1e-12, atol=0)
    # (the six near-zero modes are square roots of rounding noise, in ASE's sum too)
    assert result.zero_point_energy() == pytest.approx(data.get_zero_point_energy(), abs=1e-7)


def test_crystal_has_three_acoustic_zero_modes(relaxed):
    atoms = relaxed["zno"]
    result = vibrations(atoms.calc, atoms)
    assert np.abs(result.frequencies[:3]).max() < 0.01
    assert result.frequencies[3] > 5.0
    # acoustic modes are rigid translations: equal mass-weighted displacement per atom
    d = result.modes[:3] / np.sqrt(atoms.get_masses())[None, :, None]
    assert np.abs(d - d[:, :1, :]).max() < 1e-6


def test_normal_modes_of_a_harmonic_spring():
    """Diatomic along x, spring k: the stretch frequency is sqrt(k/μ)/(2πc); with k < 0 it
    is reported negative (imaginary); modes orthonormal; units from CODATA via SciPy."""
    from scipy import constants as c

    k, m1, m2 = 30.0, 1.008, 15.999
    h = np.zeros((6, 6))
    h[np.ix_([0, 3], [0, 3])] = k * np.array([[1.0, -1.0], [-1.0, 1.0]])
    mu = m1 * m2 / (m1 + m2)
    expected = np.sqrt(k * c.e / 1e-20 / (mu * c.atomic_mass)) / (2 * np.pi * c.c * 100)
    freqs, modes = normal_modes(h, [m1, m2])
    assert freqs[-1] == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(freqs[:-1], 0.0, atol=1e-6)
    stretch = modes[-1]
    assert abs(stretch[0, 0]) == pytest.approx(np.sqrt(m2 / (m1 + m2)), rel=1e-12)
    assert np.sign(stretch[0, 0]) != np.sign(stretch[1, 0])
    flat = modes.reshape(6, 6)
    np.testing.assert_allclose(flat @ flat.T, np.eye(6), atol=1e-12)
    freqs, _ = normal_modes(-h, [m1, m2])
    assert freqs[0] == pytest.approx(-expected, rel=1e-6)
    result = VibrationResult(hessian=-h, masses=np.array([m1, m2]), frequencies=freqs,
                             modes=modes, symbols=["H", "O"])
    assert result.zero_point_energy() == 0.0  # an imaginary mode has no zero-point energy
    assert f"{expected:.4f}i" in result.table()
    with pytest.raises(ValueError, match=r"shape \(6, 6\), expected \(9, 9\)"):
        normal_modes(h, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="masses must be positive"):
        normal_modes(h, [1.0, 0.0])


def test_empty_structure():
    atoms = Atoms()
    atoms.calc = reaxgrad.ReaxFFCalculator(_shipped("ffield.reax.cho"))
    result = vibrations(atoms.calc, atoms)
    assert result.frequencies.shape == (0,) and result.hessian.shape == (0, 0)
    assert result.zero_point_energy() == 0.0
