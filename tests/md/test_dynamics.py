"""Integrators: conservation, thermostat/barostat targets (on a cheap Lennard-Jones fluid, long
enough for statistics), ReaxFF NVE with the consistent convention, ASE's VelocityVerlet with
the calculator, and replica batches equal to one-by-one runs."""
import numpy as np
import pytest
from ase import units
from ase.build import molecule

from reaxgrad.forcefields.reaxff.model import ReaxFF
from reaxgrad.md import dynamics as d
from reaxgrad.md.forces import ReplicaForces, TrajectoryForces
from reaxgrad.md.units import BOLTZ, KCAL_MOL, NKTV2P, momenta_to_ase, velocities_from_ase

lo = pytest.importorskip("reaxgrad.forcefields.lammps_oracle")


@pytest.fixture(scope="module")
def cho():
    try:
        return lo.potential_path("ffield.reax.cho")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no shipped force field: {exc}")


# ---------------------------------------------------------------- a cheap periodic LJ fluid

EPS, SIGMA, CUT = 0.238, 3.4, 8.0  # argon, kcal/mol and Å


def lj_forces(positions, cell):
    """All-pairs minimum-image LJ (near-cubic cell, cutoff below half its width, shifted
    energy): Forces with the exact virial."""
    d_ = positions[None, :, :] - positions[:, None, :]
    frac = d_ @ np.linalg.inv(cell)
    d_ = (frac - np.round(frac)) @ cell
    r2 = np.einsum("ijk,ijk->ij", d_, d_)
    np.fill_diagonal(r2, np.inf)
    inside = r2 < CUT * CUT
    s6 = np.where(inside, (SIGMA * SIGMA / r2) ** 3, 0.0)
    shift = 4 * EPS * ((SIGMA / CUT) ** 12 - (SIGMA / CUT) ** 6)
    energy = 0.5 * np.sum(np.where(inside, 4 * EPS * (s6 * s6 - s6) - shift, 0.0))
    du_dr_over_r = np.where(inside, -24 * EPS * (2 * s6 * s6 - s6) / r2, 0.0)  # (dU/dr)/r
    forces = np.einsum("ij,ijk->ik", du_dr_over_r, d_)  # -dE/dx_i = sum_j (dU/dr)/r d_ij
    virial = 0.5 * np.einsum("ij,ija,ijb->ab", du_dr_over_r, d_, d_)
    n = len(positions)
    return d.Forces(np.float64(energy), forces, virial, np.zeros(n), {})


def lj_fluid(n_side=4, density=0.021, seed=0):
    n = n_side**3
    length = (n / density) ** (1 / 3)
    grid = (np.indices((n_side,) * 3).reshape(3, -1).T + 0.5) * length / n_side
    rng = np.random.default_rng(seed)
    x = grid + rng.normal(scale=0.05, size=grid.shape)
    return x, np.eye(3) * length, np.full(n, 39.948)


def test_virial_of_the_test_potential_is_de_dstrain():
    x, cell, _ = lj_fluid()
    f = lj_forces(x, cell)
    eps = np.array([[1e-6, 2e-7, 0], [2e-7, -1e-6, 3e-7], [0, 3e-7, 5e-7]])
    e_plus = lj_forces(x @ (np.eye(3) + eps), cell @ (np.eye(3) + eps)).energy
    e_minus = lj_forces(x @ (np.eye(3) - eps), cell @ (np.eye(3) - eps)).energy
    assert (e_plus - e_minus) / 2 == pytest.approx(np.sum(f.virial * eps), rel=1e-6)


def _run(integrator, steps, sample_from, x, v, m, cell):
    state = integrator.init(x, v, m, cell, True)
    temps, press, cons = [], [], []
    for k in range(steps):
        state = integrator.step(state)
        if k >= sample_from:
            temps.append(d.temperature(state.velocities, state.masses))
            press.append(d.pressure(state))
    return state, np.array(temps), np.array(press), cons


@pytest.mark.parametrize("ensemble", ["langevin", "nose-hoover", "berendsen"])
def test_thermostats_reach_the_target_temperature(ensemble):
    x, cell, m = lj_fluid()
    v = d.maxwell_boltzmann(m, 40.0, np.random.default_rng(1))  # start far from 150 K
    target, dt = 150.0, 5.0
    make = {"langevin": lambda: d.langevin(lj_forces, dt, target, damping=200.0, seed=3),
            "nose-hoover": lambda: d.nose_hoover(lj_forces, dt, target, damping=200.0),
            "berendsen": lambda: d.berendsen(lj_forces, dt, target, damping=200.0)}[ensemble]
    _, temps, _, _ = _run(make(), 3000, 1000, x, v, m, cell)
    # 64 atoms: canonical relative fluctuation of T is sqrt(2/dof) ~ 0.18; the samples are
    # correlated over ~damping, so the mean over 2000 steps is known to a few percent
    assert temps.mean() == pytest.approx(target, rel=0.06)
    if ensemble != "berendsen":  # canonical fluctuations (Berendsen suppresses them)
        assert temps.std() / temps.mean() == pytest.approx(np.sqrt(2 / 189), rel=0.35)


def test_nose_hoover_conserves_its_extended_energy():
    x, cell, m = lj_fluid()
    v = d.maxwell_boltzmann(m, 100.0, np.random.default_rng(2))
    md = d.nose_hoover(lj_forces, 2.0, 150.0, damping=100.0)
    state = md.init(x, v, m, cell, True)

    def conserved(s):
        return (s.forces.energy + d.kinetic_energy(s.velocities, s.masses)
                + d.nose_hoover_energy(s, 150.0, 100.0))

    h0 = conserved(state)
    energies = []
    for _ in range(1000):
        state = md.step(state)
        energies.append(d.kinetic_energy(state.velocities, state.masses) + state.forces.energy)
    assert np.ptp(energies) > 1.0  # the thermostat did exchange energy with the system
    assert abs(conserved(state) - h0) < 2e-3 * np.ptp(energies)


def test_berendsen_npt_reaches_the_target_pressure():
    x, cell, m = lj_fluid(density=0.018)
    v = d.maxwell_boltzmann(m, 150.0, np.random.default_rng(4))
    target = 500.0  # atm
    md = d.berendsen_npt(lj_forces, 5.0, 150.0, target, damping=200.0, pressure_damping=500.0,
                         bulk_modulus=2000.0)
    state, temps, press, _ = _run(md, 3000, 1500, x, v, m, cell)
    assert press.mean() == pytest.approx(target, abs=60.0)
    assert temps.mean() == pytest.approx(150.0, rel=0.05)
    # the cell stayed cubic (isotropic scaling) and changed volume
    c = state.cell
    assert np.allclose(c, np.diag(np.diag(c))) and np.allclose(np.diag(c), c[0, 0])
    assert abs(d.volume(c) / d.volume(cell) - 1) > 0.02


def test_anisotropic_barostat_uses_the_pressure_tensor():
    x, cell, m = lj_fluid(density=0.018)
    state = d.MDState(x, np.zeros_like(x), m, cell, np.ones(3, bool), lj_forces(x, cell))
    p = d.pressure_tensor(state)
    ideal = -state.forces.virial / d.volume(cell) * NKTV2P
    np.testing.assert_allclose(p, ideal, rtol=1e-12)
    md = d.berendsen_npt(lj_forces, 5.0, 150.0, 0.0, anisotropic=True, bulk_modulus=1e3)
    s = md.init(x, np.zeros_like(x), m, cell, True)
    s = md.step(s)
    strain = np.linalg.solve(cell, s.cell) - np.eye(3)
    # mu - 1 = -dt/(3 tau_P) (P0 - P)/B with the symmetrised pressure tensor of the start
    np.testing.assert_allclose(strain, 5.0 / 3000.0 * (p + p.T) / 2 / 1e3, rtol=1e-10,
                               atol=1e-15)


def test_maxwell_boltzmann_exact_temperature_and_zero_momentum():
    m = np.array([1.008, 12.011, 15.999, 1.008, 14.007])
    v = d.maxwell_boltzmann(m, 300.0, np.random.default_rng(0), shape=(3,))
    assert v.shape == (3, 5, 3)
    np.testing.assert_allclose(d.temperature(v, m), 300.0, rtol=1e-12)
    np.testing.assert_allclose(np.einsum("rnd,n->rd", v, m), 0.0, atol=1e-12)
    ke = d.kinetic_energy(v, m)
    np.testing.assert_allclose(ke, 0.5 * (3 * 5 - 3) * BOLTZ * 300.0, rtol=1e-12)


def test_ase_units_round_trip():
    m = np.array([1.008, 15.999])
    v = np.array([[0.01, -0.02, 0.003], [0.0, 0.001, -0.004]])
    np.testing.assert_allclose(velocities_from_ase(momenta_to_ase(v, m), m), v, rtol=1e-14)
    # 1 Å/fs in ASE units is 1/units.fs
    assert momenta_to_ase(np.ones((1, 3)), np.ones(1))[0, 0] == pytest.approx(1 / units.fs)


# ---------------------------------------------------------------- ReaxFF


def test_reaxff_nve_conserves_energy_to_second_order_with_the_consistent_convention(cho):
    """Water (no ReaxFF threshold crossed along this run, so the energy is smooth): the
    velocity-Verlet energy error is small and falls as dt^2, which fails if the forces are not
    the exact gradient (the "lammps" convention's fixed-charge forces drift instead)."""
    atoms = molecule("H2O")
    m = atoms.get_masses()
    v = d.maxwell_boltzmann(m, 300.0, np.random.default_rng(7))

    def error(dt, convention="consistent"):
        forces = TrajectoryForces(ReaxFF(cho, convention=convention),
                                  atoms.get_chemical_symbols(), False)
        md = d.nve(forces, dt)
        state = md.init(atoms.positions, v, m, np.zeros((3, 3)), False)
        e0 = state.forces.energy + d.kinetic_energy(state.velocities, m)
        worst = 0.0
        for _ in range(int(round(20.0 / dt))):
            state = md.step(state)
            worst = max(worst, abs(state.forces.energy
                                   + d.kinetic_energy(state.velocities, m) - e0))
        return worst

    coarse, fine = error(0.2), error(0.1)
    assert coarse < 2e-3  # kcal/mol over 20 fs
    assert coarse / fine == pytest.approx(4.0, rel=0.05)
    assert error(0.1, "lammps") > 3 * fine


def test_ase_velocity_verlet_with_the_calculator_agrees(cho):
    from ase.md.verlet import VelocityVerlet

    import reaxgrad

    atoms = molecule("CH3CH2OH")
    m = atoms.get_masses()
    v = d.maxwell_boltzmann(m, 300.0, np.random.default_rng(8))
    atoms.set_momenta(momenta_to_ase(v, m))
    atoms.calc = reaxgrad.ReaxFFCalculator(cho, convention="consistent")
    VelocityVerlet(atoms, timestep=0.25 * units.fs).run(100)
    model = ReaxFF(cho, convention="consistent")
    forces = TrajectoryForces(model, atoms.get_chemical_symbols(), False)
    md = d.nve(forces, 0.25)
    state = md.init(molecule("CH3CH2OH").positions, v, m, np.zeros((3, 3)), False)
    for _ in range(100):
        state = md.step(state)
    np.testing.assert_allclose(state.positions, atoms.positions, atol=1e-9)
    np.testing.assert_allclose(state.velocities, velocities_from_ase(atoms.get_momenta(), m),
                               atol=1e-10)
    assert float(state.forces.energy) * KCAL_MOL == pytest.approx(
        atoms.get_potential_energy(), abs=1e-9)


def test_replicas_advance_together_as_one_by_one(cho):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "forcefields"))
    import structures

    atoms = structures.water_box()
    symbols, m = atoms.get_chemical_symbols(), atoms.get_masses()
    r = 3
    v = d.maxwell_boltzmann(m, [200.0, 300.0, 400.0], np.random.default_rng(9), shape=(r,))
    x = np.stack([atoms.positions] * r)
    cells = np.stack([atoms.cell.array] * r)
    model = ReaxFF(cho, convention="consistent")
    batch = d.nve(ReplicaForces(model, symbols, True, r), 0.25)
    state = batch.init(x, v, m, cells, True)
    for _ in range(60):
        state = batch.step(state)
    assert state.positions.shape == (r, len(atoms), 3)
    np.testing.assert_allclose(d.temperature(v, m), [200.0, 300.0, 400.0], rtol=1e-12)
    for k in range(r):
        single = d.nve(TrajectoryForces(ReaxFF(cho, convention="consistent"), symbols, True),
                       0.25)
        s = single.init(atoms.positions, v[k], m, atoms.cell.array, True)
        for _ in range(60):
            s = single.step(s)
        np.testing.assert_allclose(state.positions[k], s.positions, atol=1e-10)
        assert float(state.forces.energy[k]) == pytest.approx(float(s.forces.energy), abs=1e-8)


def test_md_charge_solver_extrapolates_its_warm_start(cho, monkeypatch):
    """NVE of a water box with the iterative charge solver: the trajectory is the dense
    solve's (same charges to the CG tolerance), the solver keeps its last solutions, and the
    extrapolated starts need fewer CG iterations than restarting from the last solution."""
    from reaxgrad.forcefields.reaxff import _qeq_c

    rng = np.random.default_rng(3)
    grid = (np.indices((3, 3, 3)).reshape(3, -1).T + 0.5) * 3.1
    positions, symbols = [], []
    for site in grid:
        o = site + rng.normal(scale=0.05, size=3)
        positions += [o, o + [0.96, 0.0, 0.0], o + [-0.24, 0.93, 0.0]]
        symbols += ["O", "H", "H"]
    positions, cell = np.array(positions), np.eye(3) * 9.3
    masses = np.array([15.999 if s == "O" else 1.008 for s in symbols])
    v = d.maxwell_boltzmann(masses, 300.0, np.random.default_rng(4))
    iterations = []
    original = _qeq_c.solve

    def counting(i, j, h, diag, b, guess, tol):
        x = original(i, j, h, diag, b, guess, tol)
        iterations.append(_qeq_c.last_iterations)
        return x

    def run(solver, extrapolate=True):
        monkeypatch.setattr(TrajectoryForces, "extrapolate", extrapolate)
        forces = TrajectoryForces(ReaxFF(cho, solver=solver, qeq_tolerance=1e-7), symbols,
                                  True)
        md = d.nve(forces, 0.25)
        state = md.init(positions, v, masses, cell, True)
        for _ in range(12):
            state = md.step(state)
        return state, forces.model

    monkeypatch.setattr(_qeq_c, "solve", counting)
    dense, _ = run("direct")
    iterations.clear()
    cg, model = run("cg")
    extrapolated = sum(iterations[6:])
    assert model._guess["s"].shape == (4, len(symbols))
    np.testing.assert_allclose(cg.positions, dense.positions, atol=1e-7)
    np.testing.assert_allclose(cg.forces.charges, dense.forces.charges, atol=1e-6)
    iterations.clear()
    run("cg", extrapolate=False)
    assert extrapolated < 0.8 * sum(iterations[6:])


def test_a_list_that_outgrew_its_capacity_gets_room_for_as_much_growth_again(cho):
    """Along a trajectory a list that overflowed is padded to hold count * count / old
    capacity entries (rounded up the ladder), so a steadily growing list costs one new trace
    rather than one per rung; lists that did not grow keep their capacity; the padded
    lists give the same energy and forces."""
    from reaxgrad.md.forces import _capacities, _with_headroom
    from reaxgrad.md.neighbors import bucket_capacity

    atoms = molecule("CH3CH2OH")
    model = ReaxFF(cho)
    lists = model.lists(atoms.positions, np.zeros((3, 3)), False,
                        model.types_of(atoms.get_chemical_symbols()))
    caps = _capacities(lists)
    count = int(np.count_nonzero(lists.far_mask))
    before = dict(caps, far_i=16)  # the far list held at most 16 before this build
    padded = _with_headroom(lists, before)
    after = _capacities(padded)
    assert after["far_i"] == bucket_capacity(-(-count * count // 16)) > caps["far_i"]
    assert {k: v for k, v in after.items() if k != "far_i"} == {
        k: v for k, v in caps.items() if k != "far_i"}
    assert _with_headroom(lists, caps) is lists
    a = model.evaluate_lists(atoms.positions, np.zeros((3, 3)), False, lists)
    b = model.evaluate_lists(atoms.positions, np.zeros((3, 3)), False, padded)
    assert b.energy == pytest.approx(a.energy, rel=1e-12)
    np.testing.assert_allclose(b.forces, a.forces, atol=1e-10)
