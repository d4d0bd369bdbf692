"""The assembled ReaxFF model against LAMMPS (pair_style reaxff + fix qeq/reaxff or
fix acks2/reaxff), case by case: all 14 per-term energies, charges, forces and stress; and the
two force conventions against finite differences."""
import sys
from pathlib import Path

import numpy as np
import pytest

from reaxgrad.forcefields import lammps_oracle as lo
from reaxgrad.forcefields.reaxff.model import TERMS, ReaxFF, energy_terms

sys.path.insert(0, str(Path(__file__).parent))
import structures  # noqa: E402

# Linear O-H...O hydrogen bonds put a torsion's bond angle at 180 degrees to rounding, where
# the torsion energy has a kink: LAMMPS's force there differs from finite differences of its
# own energy by 5e-4, so forces are not comparable (energies, charges and stress are).
KINKED = {"water_ring4", "water_ring4_rdx"}


@pytest.fixture(scope="module")
def lammps(lammps_oracle):
    return lammps_oracle


def _evaluate(case, **kw):
    atoms = case.build()
    model = ReaxFF(lo.potential_path(case.ffield), charge_method=case.charge_method, **kw)
    q = atoms.info.get("charge", 0.0)
    res = model.evaluate(atoms.positions, atoms.cell.array, atoms.pbc,
                         atoms.get_chemical_symbols(), total_charge=q)
    return atoms, res


@pytest.mark.parametrize("case", structures.CASES, ids=lambda c: c.name)
def test_matches_lammps(case, lammps):
    atoms, res = _evaluate(case)
    ref = lammps.run_reaxff(atoms, lo.potential_path(case.ffield),
                            charge_method=case.charge_method, qeq_tolerance=1e-12)
    for term in TERMS:
        want = ref["energies"][term]
        assert abs(res.terms[term] - want) <= max(1e-6 * abs(want), 1e-5), term
    assert abs(res.energy - ref["energy"]) <= max(1e-6 * abs(ref["energy"]), 1e-5)
    np.testing.assert_allclose(res.charges, ref["charges"], atol=1e-6)
    if case.name not in KINKED:
        np.testing.assert_allclose(res.forces, ref["forces"], atol=1e-4)
    if atoms.pbc.all():
        np.testing.assert_allclose(res.stress, ref["stress_tensor"], atol=1e-6)
    else:
        assert res.stress is None


def _energy_at(model, atoms, positions, **kw):
    return model.evaluate(positions, atoms.cell.array, atoms.pbc, atoms.get_chemical_symbols(),
                          **kw).energy


@pytest.mark.parametrize("name", ["ethanol", "water_box_triclinic"])
def test_consistent_forces_are_the_total_derivative(name, lammps):
    """consistent: charges re-solved at every displaced geometry; forces = -dE/dx."""
    case = structures.CASES_BY_NAME[name]
    atoms = case.build()
    model = ReaxFF(lo.potential_path(case.ffield), convention="consistent")
    forces = model.evaluate(atoms.positions, atoms.cell.array, atoms.pbc,
                            atoms.get_chemical_symbols()).forces
    h = 1e-5
    for a, k in [(0, 0), (1, 2), (len(atoms) - 1, 1)]:
        step = np.zeros_like(atoms.positions)
        step[a, k] = h
        fd = (_energy_at(model, atoms, atoms.positions + step)
              - _energy_at(model, atoms, atoms.positions - step)) / (2 * h)
        assert abs(-fd - forces[a, k]) <= 1e-6 * max(1.0, abs(fd)), (a, k, fd, forces[a, k])


def test_lammps_forces_are_the_derivative_at_frozen_charges(lammps):
    case = structures.CASES_BY_NAME["ethanol"]
    atoms = case.build()
    path = lo.potential_path(case.ffield)
    res = ReaxFF(path).evaluate(atoms.positions, None, False, atoms.get_chemical_symbols())
    frozen = ReaxFF(path, charge_method=None)
    h = 1e-5
    for a, k in [(0, 1), (2, 0), (5, 2)]:
        step = np.zeros_like(atoms.positions)
        step[a, k] = h
        e = [_energy_at(frozen, atoms, atoms.positions + s * step, charges=res.charges)
             for s in (1, -1)]
        fd = (e[0] - e[1]) / (2 * h)
        assert abs(-fd - res.forces[a, k]) <= 1e-6 * max(1.0, abs(fd))
    # and the two conventions really differ (LAMMPS's QEq constant is not its Coulomb one)
    cons = ReaxFF(path, convention="consistent").evaluate(
        atoms.positions, None, False, atoms.get_chemical_symbols())
    assert np.abs(cons.forces - res.forces).max() > 1e-4


def test_frozen_charges_energy_equals_qeq_energy_at_those_charges(lammps):
    case = structures.CASES_BY_NAME["water_box"]
    atoms = case.build()
    path = lo.potential_path(case.ffield)
    args = (atoms.positions, atoms.cell.array, atoms.pbc, atoms.get_chemical_symbols())
    res = ReaxFF(path).evaluate(*args)
    frozen = ReaxFF(path, charge_method=None).evaluate(*args, charges=res.charges)
    assert abs(frozen.energy - res.energy) < 1e-9 * abs(res.energy)
    np.testing.assert_allclose(frozen.forces, res.forces, atol=1e-9)


def test_bad_input_is_named():
    from ase.build import molecule

    path = lo.potential_path("ffield.reax.cho")
    model = ReaxFF(path)
    nh3 = molecule("NH3")
    with pytest.raises(ValueError, match=r"element\(s\) N not in the force field"):
        model.evaluate(nh3.positions, None, False, nh3.get_chemical_symbols(), source="nh3.xyz")
    water = molecule("H2O")
    pos = water.positions.copy()
    pos[2] = pos[1] + 0.01
    with pytest.raises(ValueError, match=r"h2o.xyz: atoms 1 and 2 overlap"):
        model.evaluate(pos, None, False, water.get_chemical_symbols(), source="h2o.xyz")
    with pytest.raises(ValueError, match="charge_method"):
        ReaxFF(path, charge_method="magic")


@pytest.mark.parametrize("name", ["petn", "water_box_triclinic"])
def test_sparse_cg_solver_equals_the_dense_solve(name, lammps):
    """solver="cg" (the default above 1,000 atoms): same energies, charges, forces and stress
    as the dense solve, under jit, warm-started from the previous call."""
    case = structures.CASES_BY_NAME[name]
    atoms = case.build()
    path = lo.potential_path(case.ffield)
    args = (atoms.positions, atoms.cell.array, atoms.pbc, atoms.get_chemical_symbols())
    dense = ReaxFF(path, solver="direct").evaluate(*args)
    model = ReaxFF(path, solver="cg")
    assert model.solver_for(10**6) == "cg" and ReaxFF(path).solver_for(10**4) == "cg"
    assert ReaxFF(path).solver_for(50) == "direct"
    sparse = model.evaluate(*args)
    assert model._guess is not None
    again = model.evaluate(*args)  # warm start from the converged charges
    for res in (sparse, again):
        assert res.energy == pytest.approx(dense.energy, rel=1e-10)
        np.testing.assert_allclose(res.charges, dense.charges, atol=1e-8)
        np.testing.assert_allclose(res.forces, dense.forces, atol=1e-6)
        np.testing.assert_allclose(res.stress, dense.stress, atol=1e-9)


def test_qeq_tolerance_sets_how_far_cg_converges(lammps):
    """A loose CG tolerance gives charges near the dense ones but not equal; a tight one equal
    to ~1e-10; nonsense tolerances are refused by name."""
    case = structures.CASES_BY_NAME["petn"]
    atoms = case.build()
    path = lo.potential_path(case.ffield)
    args = (atoms.positions, atoms.cell.array, atoms.pbc, atoms.get_chemical_symbols())
    dense = ReaxFF(path, solver="direct").evaluate(*args)
    loose = ReaxFF(path, solver="cg", qeq_tolerance=1e-3).evaluate(*args)
    tight = ReaxFF(path, solver="cg", qeq_tolerance=1e-13).evaluate(*args)
    loose_error = np.max(np.abs(loose.charges - dense.charges))
    tight_error = np.max(np.abs(tight.charges - dense.charges))
    assert 1e-9 < loose_error < 1e-2
    assert tight_error < 1e-10 < loose_error
    for bad in (0.0, 1.0, -1e-6):
        with pytest.raises(ValueError, match="qeq_tolerance"):
            ReaxFF(path, qeq_tolerance=bad)


@pytest.mark.parametrize("convention", ["lammps", "consistent"])
def test_parameter_gradient_of_the_total_energy_includes_the_charges(convention, lammps):
    """d E_total / d(chi, eta, gamma, p_bo1) through the charge solve equals central finite
    differences with the charges re-solved (the LAMMPS energy is not stationary in q, so
    dropping dq/dtheta would be visibly wrong there)."""
    import reaxgrad.core as rg
    from reaxgrad.forcefields.reaxff.lists import build_lists

    case = structures.CASES_BY_NAME["ethanol"]
    atoms = case.build()
    model = ReaxFF(lo.potential_path(case.ffield), convention=convention)
    types = model.types_of(atoms.get_chemical_symbols())
    lists = build_lists(atoms.positions, None, False, types, model.params, {"skin": 0.0})

    def energy(theta):
        params = dict(model.params, **theta)
        terms, _, _ = energy_terms(atoms.positions, np.zeros((3, 3)), params, lists, 0.0,
                                   convention=convention)
        total = terms[TERMS[0]]
        for name in TERMS[1:]:
            total = total + terms[name]
        return total

    theta = {k: np.array(model.params[k], dtype=float) for k in ("chi", "eta", "gamma")}
    theta["p_bo1"] = np.array(model.params["p_bo1"], dtype=float)
    grads = rg.grad(energy)(theta)
    o, c = model.types_of(["O", "C"])
    for key, index, h in [("chi", (o,), 1e-5), ("eta", (o,), 1e-5), ("gamma", (o,), 1e-6),
                          ("p_bo1", (c, c), 1e-6)]:
        up, down = ({k: v.copy() for k, v in theta.items()} for _ in range(2))
        up[key][index] += h
        down[key][index] -= h
        fd = (float(energy(up)) - float(energy(down))) / (2 * h)
        assert abs(fd) > 1e-3, key  # a parameter that matters here
        assert float(grads[key][index]) == pytest.approx(fd, rel=1e-6, abs=1e-6), key


def test_md_warm_start_extrapolates_the_last_solutions():
    """Along a trajectory the CG guess is the polynomial through the last 4 s (3 t) solutions,
    as fix qeq/reaxff extrapolates: exact for a cubic (quadratic) history; fewer kept
    solutions give lower orders; single points start from the newest; a history of another
    size is ignored."""
    from reaxgrad.forcefields.reaxff.model import push_history, warm_start

    n = 5
    base = np.arange(n, dtype=float)
    history = None
    for step in range(6):
        k = float(step)
        history = push_history(history, {"s": base + 2 * k - k**2 + 0.5 * k**3,
                                         "t": -base + 3 * k + 0.25 * k * k})
        if step == 0:
            np.testing.assert_array_equal(warm_start(history, n, True)["s"], base)
        if step == 1:  # two known: linear
            np.testing.assert_allclose(warm_start(history, n, True)["s"], base + 3.0)
    assert history["s"].shape == (4, n) and history["t"].shape == (3, n)
    k = 6.0
    guess = warm_start(history, n, True)
    np.testing.assert_allclose(guess["s"], base + 2 * k - k**2 + 0.5 * k**3, rtol=1e-12)
    np.testing.assert_allclose(guess["t"], -base + 3 * k + 0.25 * k * k, rtol=1e-12)
    newest = warm_start(history, n, False)
    np.testing.assert_array_equal(newest["s"], history["s"][0])
    assert not warm_start(history, n + 1, True)["s"].any()
    # a checkpoint of the older form (one solution each) still serves
    old = {"s": base, "t": -base}
    np.testing.assert_array_equal(warm_start(old, n, True)["t"], -base)
