"""reaxgrad.md.relax: the generalized (positions + log-deformation) coordinates of cell
relaxation, their exact enthalpy gradient, and the relaxation itself, step for step equal to
ASE's FrechetCellFilter driven by ASE's FIRE."""
import numpy as np
import pytest
from ase import units
from ase.build import bulk

from reaxgrad.md.relax import CellCoordinates, relax

# ----------------------------------------------------------------------------- a smooth model


def _morse(pbc=True, d0=0.3429, alpha=1.3588, r0=2.866, cutoff=6.0):
    """A Morse pair potential (Girifalco-Weizer copper), shifted so that energy and force go
    to zero at ``cutoff``, over all periodic images: evaluate(positions, cell) -> (E, dE/dr,
    virial)."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    def phi(r):
        e = np.exp(-alpha * (r - r0))
        return d0 * (e * e - 2 * e), -2 * alpha * d0 * (e * e - e)

    e_c, de_c = phi(cutoff)

    def evaluate(positions, cell):
        atoms = Atoms(f"Cu{len(positions)}", positions=positions, cell=cell, pbc=pbc)
        i, j, d, vec = neighbor_list("ijdD", atoms, cutoff)
        e, de = phi(d)
        energy = 0.5 * float(np.sum(e - e_c - (d - cutoff) * de_c))
        g = 0.5 * ((de - de_c) / d)[:, None] * vec  # dE/dvec for each ordered pair
        grad = np.zeros_like(positions)
        np.add.at(grad, j, g)
        np.add.at(grad, i, -g)
        return energy, grad, g.T @ vec

    return evaluate


@pytest.fixture
def crystal():
    atoms = bulk("Cu", "fcc", a=3.70, cubic=True)  # 4 atoms, expanded, sheared, rattled
    atoms.set_cell(atoms.cell.array @ np.array([[1.0, 0.03, 0.0], [0.0, 0.97, 0.02],
                                                [0.01, 0.0, 1.04]]), scale_atoms=True)
    atoms.rattle(0.05, seed=3)
    return atoms


def test_virial_of_the_test_model_is_dE_dstrain(crystal):
    evaluate = _morse()
    pos, cell = crystal.positions, crystal.cell.array
    _, _, w = evaluate(pos, cell)
    h = 1e-6
    for a, b in [(0, 0), (1, 2), (2, 1), (0, 2)]:
        e = np.zeros((3, 3))
        e[a, b] = h
        plus = evaluate(pos @ (np.eye(3) + e).T, cell @ (np.eye(3) + e).T)[0]
        minus = evaluate(pos @ (np.eye(3) - e).T, cell @ (np.eye(3) - e).T)[0]
        assert (plus - minus) / (2 * h) == pytest.approx(w[a, b], rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("pressure", [0.0, 0.05])
def test_generalized_gradient_is_exact(crystal, pressure):
    evaluate = _morse()
    coords = CellCoordinates(crystal.cell.array, len(crystal), pressure=pressure)
    x = coords.initial(crystal.positions)
    rng = np.random.default_rng(0)
    x[len(crystal):] = 0.05 * len(crystal) * rng.normal(size=(3, 3))  # a deformed, rotated cell
    x[:len(crystal)] += 0.02 * rng.normal(size=(len(crystal), 3))

    def enthalpy(x):
        pos, cell = coords.unpack(x)
        return evaluate(pos, cell)[0] + pressure * abs(np.linalg.det(cell))

    pos, cell = coords.unpack(x)
    _, grad, virial = evaluate(pos, cell)
    g = coords.gradient(x, grad, virial, abs(np.linalg.det(cell)))
    h = 1e-5
    numeric = np.zeros_like(x)
    for a in range(x.shape[0]):
        for b in range(3):
            step = np.zeros_like(x)
            step[a, b] = h
            numeric[a, b] = (enthalpy(x + step) - enthalpy(x - step)) / (2 * h)
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8 * np.abs(numeric).max())
    # the map is the one of ASE's FrechetCellFilter: cell = cell0 F^T, r = s F^T, F = expm(L)
    f = coords.deformation(x)
    np.testing.assert_allclose(cell, crystal.cell.array @ f.T, atol=1e-12)
    np.testing.assert_allclose(pos, x[:len(crystal)] @ f.T, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["fire", "lbfgs"])
def test_cell_relaxation_reaches_zero_stress_and_the_pressure(crystal, optimizer):
    evaluate = _morse()
    n = len(crystal)
    e0 = evaluate(crystal.positions, crystal.cell.array)[0]
    fmax = 5e-4
    free = relax(evaluate, crystal.positions, crystal.cell.array, relax_cell=True,
                 optimizer=optimizer, fmax=fmax, max_steps=3000)
    assert free.converged and free.energy < e0
    volume = abs(np.linalg.det(free.cell))
    # cell rows of the gradient are ~ (W + pV)/N at convergence: stress below fmax N / V
    assert np.abs(free.virial / volume).max() < 2 * fmax * n / volume
    assert np.sqrt((free.gradient**2).sum(axis=1)).max() < fmax
    p = 0.02  # eV/Å^3, 3.2 GPa
    squeezed = relax(evaluate, crystal.positions, crystal.cell.array, relax_cell=True,
                     pressure=p, optimizer=optimizer, fmax=fmax, max_steps=3000)
    v = abs(np.linalg.det(squeezed.cell))
    assert squeezed.converged and v < volume
    assert squeezed.enthalpy == pytest.approx(squeezed.energy + p * v, rel=1e-12)
    np.testing.assert_allclose(squeezed.virial / v, -p * np.eye(3), atol=2 * fmax * n / v)


def test_positions_only_keeps_the_cell_and_reports_every_evaluation(crystal):
    evaluate = _morse()
    seen = []
    result = relax(evaluate, crystal.positions, crystal.cell.array, optimizer="lbfgs",
                   fmax=1e-3, max_steps=500, callback=lambda *a: seen.append(a))
    assert result.converged and len(seen) == result.evaluations == result.steps + 1
    np.testing.assert_array_equal(seen[0][0], crystal.positions)
    np.testing.assert_array_equal(seen[-1][0], result.positions)
    np.testing.assert_array_equal(result.cell, crystal.cell.array)
    assert result.energy == seen[-1][2] == result.enthalpy
    with pytest.raises(ValueError, match="optimizer must be one of"):
        relax(evaluate, crystal.positions, crystal.cell.array, optimizer="bfgs")


# ----------------------------------------------------------------------------- ReaxFF vs ASE


def test_reaxff_cell_relaxation_equals_ase_frechet_cell_filter_with_fire():
    """Same crystal, same FIRE, same generalized coordinates: ASE's FrechetCellFilter around
    reaxgrad.ReaxFFCalculator(convention="consistent") takes the same steps to the same cell."""
    lo = pytest.importorskip("reaxgrad.forcefields.lammps_oracle")
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    import reaxgrad
    from reaxgrad.forcefields.reaxff.model import ReaxFF

    cho = str(lo.potential_path("ffield.reax.cho"))
    atoms = bulk("C", "diamond", a=3.65)  # 2-atom triclinic cell, 2% too large for ReaxFF
    atoms.rattle(0.05, seed=1)
    ev = units.kcal / units.mol
    model = ReaxFF(cho, convention="consistent")
    symbols = atoms.get_chemical_symbols()

    def evaluate(positions, cell):
        res = model.evaluate(positions, cell, True, symbols)
        return res.energy * ev, -res.forces * ev, res.virial * ev

    fmax = 0.05  # ASE's default
    e0 = evaluate(atoms.positions, atoms.cell.array)[0]
    ours = relax(evaluate, atoms.positions, atoms.cell.array, relax_cell=True, optimizer="fire",
                 fmax=fmax, max_steps=500)
    theirs = atoms.copy()
    theirs.calc = reaxgrad.ReaxFFCalculator(cho, convention="consistent")
    opt = FIRE(FrechetCellFilter(theirs), logfile=None)
    assert opt.run(fmax=fmax, steps=500)
    assert ours.converged and ours.steps == opt.nsteps > 10
    np.testing.assert_allclose(ours.cell, theirs.cell.array, atol=1e-8)
    np.testing.assert_allclose(ours.positions, theirs.positions, atol=1e-8)
    assert ours.energy == pytest.approx(theirs.get_potential_energy(), abs=1e-9)
    assert ours.energy < e0
    volume = abs(np.linalg.det(ours.cell))
    assert np.abs(ours.virial / volume).max() < 2 * fmax * len(atoms) / volume
    assert volume < atoms.get_volume()  # the expanded crystal shrinks
