"""forcefields.reaxff.charges: QEq/EEM and ACKS2 charges and energies against LAMMPS
(``fix qeq/reaxff``, ``fix acks2/reaxff``) and the oracle's NumPy solvers for charged systems;
the two derivative conventions against finite differences; parameter derivatives; jit, vmap."""

import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/forcefields: structures
sys.path.insert(0, str(Path(__file__).resolve().parent))

from structures import CASES_BY_NAME, water_box_triclinic, water_dimer  # noqa: E402
from test_coulomb import far_pairs, system  # noqa: E402

import reaxgrad.core as rc  # noqa: E402
import reaxgrad.core.numpy as jnp  # noqa: E402
from reaxgrad.forcefields import lammps_oracle as lo  # noqa: E402
from reaxgrad.forcefields.reaxff import charges, coulomb  # noqa: E402


def _setup(atoms, ffield, skin=0.0, padding=0):
    positions, cell, params, types = system(atoms, ffield)
    return positions, cell, params, types, far_pairs(atoms, params["gp"][12], skin=skin,
                                                      padding=padding)


def _total(d):
    return d["ep"] + d["eqeq"]


@pytest.fixture(scope="module")
def lammps(lammps_oracle):
    @cache
    def run(name, ffield=None, method=None):
        case = CASES_BY_NAME[name]
        atoms = case.build()
        ffield = ffield or case.ffield
        method = method or case.charge_method
        return atoms, ffield, method, lo.run_reaxff(atoms, ffield, method, qeq_tolerance=1e-12)

    return run


# (case, ffield override, method): neutral molecules and small periodic cells (triclinic,
# cells far shorter than the 10 Å cutoff), charged molecules (oracle: NumPy QEq + LAMMPS at
# those charges), ACKS2 (molecule and a periodic triclinic water box).
LAMMPS_CASES = [
    ("ethanol", None, None),
    ("water_box", None, None),
    ("water_box_triclinic", None, None),
    ("diamond_primitive", None, None),
    ("zno_wurtzite", None, None),
    ("hydroxide", None, None),
    ("hydronium", None, None),
    ("water_dimer_acks2", None, None),
    ("water_box_triclinic", "acks2_ff.water", "acks2"),
]


@pytest.mark.parametrize("name,ffield,method", LAMMPS_CASES,
                         ids=[f"{c[0]}-{c[2] or 'case'}" for c in LAMMPS_CASES])
def test_charges_and_energies_match_lammps(lammps, name, ffield, method):
    atoms, ffield, method, ref = lammps(name, ffield, method)
    positions, cell, params, types, pairs = _setup(atoms, ffield, skin=0.3, padding=5)
    qtot = atoms.info.get("charge", 0.0)
    out = charges.electrostatic_energy(positions, cell, params, types, pairs, qtot,
                                       method=method)
    q = np.asarray(out["q"])
    np.testing.assert_allclose(q, ref["charges"], rtol=0, atol=1e-8)
    assert q.sum() == pytest.approx(qtot, abs=1e-12)
    for term in ("ep", "eqeq"):
        assert float(out[term]) == pytest.approx(ref["energies"][term], rel=1e-8, abs=1e-8)


@pytest.mark.parametrize("name", ["hydroxide", "hydronium"])
def test_charged_qeq_matches_numpy_solver(name):
    atoms = CASES_BY_NAME[name].build()
    ffield = CASES_BY_NAME[name].ffield
    positions, cell, params, types, pairs = _setup(atoms, ffield)
    qtot = atoms.info["charge"]
    ref = lo.qeq_charges(atoms, ffield, qtot)
    for method in ("qeq", "eem"):
        q = charges.equilibrate(positions, cell, params, types, pairs, qtot, method=method)
        np.testing.assert_allclose(np.asarray(q), ref, rtol=0, atol=1e-12)


def test_acks2_total_charge_solves_the_equations():
    """ACKS2 with Σq = −1 (LAMMPS cannot): Hq + u + μ_q = −χ, q + Xu + μ_u = 0, Σu = 0."""
    atoms = water_dimer()
    positions, cell, params, types, pairs = _setup(atoms, "acks2_ff.water")
    sol = charges.equilibrate(positions, cell, params, types, pairs, -1.0, "acks2",
                              full_output=True)
    q, u = np.asarray(sol["q"]), np.asarray(sol["u"])
    h = np.asarray(charges.hardness_matrix(positions, cell, params, types, pairs))
    x = np.asarray(charges.softness_matrix(positions, cell, params, types, pairs))
    chi = params["chi"][types]
    r1 = h @ q + u + chi
    r2 = q + x @ u
    assert q.sum() == pytest.approx(-1.0, abs=1e-12)
    assert u.sum() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(r1 - r1.mean(), 0.0, atol=1e-10)
    np.testing.assert_allclose(r2 - r2.mean(), 0.0, atol=1e-10)


def test_lammps_convention_forces_and_stress_match_lammps(lammps):
    """LAMMPS's electrostatic forces / virial are F(q) − F(q = 0) at fixed charges (every
    other term is charge independent); ours are −∂(ep + eqeq)/∂x at the QEq charges."""
    atoms = water_box_triclinic()
    positions, cell, params, types, pairs = _setup(atoms, "ffield.reax.cho")
    q = np.asarray(charges.equilibrate(positions, cell, params, types, pairs))
    with_q = lo.run_reaxff(atoms, "ffield.reax.cho", None, charges=q)
    without = lo.run_reaxff(atoms, "ffield.reax.cho", None, charges=np.zeros(len(q)))

    def energy(x, strain):
        f = jnp.eye(3) + strain
        return _total(charges.electrostatic_energy(x @ f, cell @ f, params, types, pairs))

    gx, gs = rc.grad(energy, argnums=(0, 1))(positions, np.zeros((3, 3)))
    f_ref = with_q["forces"] - without["forces"]
    np.testing.assert_allclose(-np.asarray(gx), f_ref, rtol=0,
                               atol=1e-7 * np.abs(f_ref).max())
    virial_ref = with_q["virial"] - without["virial"]  # W = -dE/dstrain (symmetric part)
    gs = np.asarray(gs)
    np.testing.assert_allclose(-(gs + gs.T) / 2, virial_ref, rtol=0,
                               atol=1e-7 * np.abs(virial_ref).max())


GRADIENT_CASES = [("water_box_triclinic", "qeq"), ("hydronium", "qeq"),
                  ("water_dimer_acks2", "acks2")]


def _fd(fun, positions, entries, h=1e-5):
    out = []
    for a, k in entries:
        dx = np.zeros_like(positions)
        dx[a, k] = h
        out.append((float(fun(positions + dx)) - float(fun(positions - dx))) / (2 * h))
    return np.array(out)


@pytest.mark.parametrize("name,method", GRADIENT_CASES)
def test_position_gradients_in_both_conventions(name, method):
    """consistent: the gradient is the total derivative (charges re-solved at each displaced
    geometry) and equals the fixed-charge one (stationarity). lammps: the fixed-charge one."""
    case = CASES_BY_NAME[name]
    atoms = case.build()
    positions, cell, params, types, pairs = _setup(atoms, case.ffield, skin=0.4, padding=2)
    qtot = atoms.info.get("charge", 0.0)
    entries = [(0, 0), (1, 1), (2, 2), (len(atoms) - 1, 0)]
    for convention in ("consistent", "lammps"):
        def energy(x, convention=convention):
            return _total(charges.electrostatic_energy(x, cell, params, types, pairs, qtot,
                                                       method, convention))

        g = np.asarray(rc.grad(energy)(positions))
        g = np.array([g[a, k] for a, k in entries])
        sol = charges.equilibrate(positions, cell, params, types, pairs, qtot, method,
                                  convention, full_output=True)
        q0, u0 = np.asarray(sol["q"]), sol["u"]
        u0 = None if u0 is None else np.asarray(u0)

        def frozen(x, q0=q0, u0=u0):
            e = coulomb.coulomb_energy(x, cell, q0, params, types, pairs)
            e = e + coulomb.charge_self_energy(q0, params, types, u0)
            if u0 is not None:
                e = e + coulomb.acks2_pair_energy(x, cell, u0, params, types, pairs)
            return e

        scale = np.abs(g).max()
        fd_frozen = _fd(frozen, positions, entries)
        np.testing.assert_allclose(g, fd_frozen, rtol=0, atol=1e-7 * scale)
        fd_resolved = _fd(energy, positions, entries)
        if convention == "consistent":
            np.testing.assert_allclose(g, fd_resolved, rtol=0, atol=1e-7 * scale)
        else:  # LAMMPS forces are not the total derivative (§22): a visible difference
            assert np.abs(g - fd_resolved).max() > 1e-4 * scale


@pytest.mark.parametrize("method", ["qeq", "acks2"])
@pytest.mark.parametrize("convention", ["lammps", "consistent"])
def test_charge_parameter_derivatives(method, convention):
    """dq/dχ_O, dq/dη_O, dq/dγ_O (and dq/dbcut_O for ACKS2): reverse and forward mode through
    the solve against central differences."""
    atoms = water_dimer()
    ffield = "acks2_ff.water" if method == "acks2" else "ffield.reax.cho"
    positions, cell, params, types, pairs = _setup(atoms, ffield)
    o = int(types[atoms.get_chemical_symbols().index("O")])  # the oxygen type
    keys = ["chi", "eta", "gamma"] + (["bcut_acks2"] if method == "acks2" else [])
    theta = {k: np.array(params[k]) for k in keys}

    def q_of(t):
        return charges.equilibrate(positions, cell, dict(params, **t), types, pairs, 0.0,
                                   method, convention)

    rev = rc.jacrev(q_of)(theta)
    fwd = rc.jacfwd(q_of)(theta)
    h = 1e-6
    for k in keys:
        plus = {kk: v.copy() for kk, v in theta.items()}
        minus = {kk: v.copy() for kk, v in theta.items()}
        plus[k][o] += h
        minus[k][o] -= h
        fd = (np.asarray(q_of(plus)) - np.asarray(q_of(minus))) / (2 * h)
        scale = np.abs(fd).max()
        assert scale > 1e-3
        np.testing.assert_allclose(np.asarray(rev[k])[:, o], fd, rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(np.asarray(fwd[k])[:, o], np.asarray(rev[k])[:, o],
                                   rtol=0, atol=1e-12)


def test_force_parameter_derivative_lammps_convention():
    """Force fitting: d/dγ of a weighted sum of LAMMPS-convention forces (charges frozen in
    the position derivative, but still functions of γ)."""
    atoms = water_dimer()
    positions, cell, params, types, pairs = _setup(atoms, "ffield.reax.cho")
    w = np.random.default_rng(0).normal(size=positions.shape)

    def loss(gamma):
        p = dict(params, gamma=gamma)

        def energy(x):
            return _total(charges.electrostatic_energy(x, cell, p, types, pairs))

        return jnp.sum(rc.grad(energy)(positions) * w)

    gamma = np.array(params["gamma"])
    g = np.asarray(rc.grad(loss)(gamma))
    h = 1e-6
    for t in (1, 2):
        plus, minus = gamma.copy(), gamma.copy()
        plus[t] += h
        minus[t] -= h
        fd = (float(loss(plus)) - float(loss(minus))) / (2 * h)
        assert g[t] == pytest.approx(fd, rel=1e-6)


@pytest.mark.parametrize("method", ["qeq", "acks2"])
def test_jit_and_vmap(method):
    atoms = water_dimer()
    ffield = "acks2_ff.water" if method == "acks2" else "ffield.reax.cho"
    positions, cell, params, types, pairs = _setup(atoms, ffield)

    def energy(x, qtot):
        return _total(charges.electrostatic_energy(x, cell, params, types, pairs, qtot, method,
                                                   "consistent"))

    e, g = rc.value_and_grad(energy)(positions, 0.5)
    e_jit, g_jit = rc.jit(rc.value_and_grad(energy))(positions, 0.5)
    assert float(e_jit) == pytest.approx(float(e), rel=1e-13)
    np.testing.assert_allclose(np.asarray(g_jit), np.asarray(g), rtol=1e-12, atol=1e-12)
    batch = np.stack([positions + 0.03 * np.random.default_rng(s).normal(size=positions.shape)
                      for s in range(3)])
    totals = np.array([-1.0, 0.0, 1.0])
    vm = np.asarray(rc.jit(rc.vmap(rc.grad(energy)))(batch, totals))
    loop = np.stack([np.asarray(rc.grad(energy)(x, q)) for x, q in zip(batch, totals)])
    np.testing.assert_allclose(vm, loop, rtol=1e-12, atol=1e-11)


def test_conventions_differ_by_the_constant_only():
    """consistent charges = LAMMPS-convention charges computed with k = 332.06371/23.02."""
    atoms = water_dimer()
    positions, cell, params, types, pairs = _setup(atoms, "ffield.reax.cho")
    q_lmp = np.asarray(charges.equilibrate(positions, cell, params, types, pairs))
    q_con = np.asarray(charges.equilibrate(positions, cell, params, types, pairs,
                                           convention="consistent"))
    assert 1e-5 < np.abs(q_con - q_lmp).max() < 1e-2
    h = charges.hardness_matrix(positions, cell, params, types, pairs,
                                constant=coulomb.C_ELE / coulomb.K_POL)
    n = len(types)
    kkt = np.block([[np.asarray(h), np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    ref = np.linalg.solve(kkt, np.concatenate([-params["chi"][types], [0.0]]))[:n]
    np.testing.assert_allclose(q_con, ref, atol=1e-13)


def test_bad_arguments():
    atoms = water_dimer()
    positions, cell, params, types, pairs = _setup(atoms, "ffield.reax.cho")
    with pytest.raises(ValueError, match="method"):
        charges.equilibrate(positions, cell, params, types, pairs, method="qtpie")
    with pytest.raises(ValueError, match="convention"):
        charges.equilibrate(positions, cell, params, types, pairs, convention="exact")
    with pytest.raises(ValueError, match="solver"):
        charges.equilibrate(positions, cell, params, types, pairs, solver="bicgstab")
    with pytest.raises(NotImplementedError):
        charges.equilibrate(positions, cell, params, types, pairs, method="acks2", solver="cg")
    with pytest.raises(TypeError, match="forward-mode"):
        rc.jacfwd(lambda x: charges.equilibrate(x, cell, params, types, pairs, solver="cg",
                                                convention="consistent"))(positions)
    with pytest.raises(ValueError, match="taper"):
        charges.equilibrate(positions, cell, params, types, pairs, convention="consistent",
                            swb=9.0)


@pytest.mark.parametrize("name", ["water_box_triclinic", "hydronium"])
@pytest.mark.parametrize("convention", ["lammps", "consistent"])
def test_sparse_cg_solver_matches_direct(name, convention):
    """solver="cg": charges, warm start, position gradient and a parameter gradient (implicit
    custom_vjp) against the dense solve; LAMMPS-convention force fitting (grad of grad)."""
    case = CASES_BY_NAME[name]
    atoms = case.build()
    positions, cell, params, types, pairs = _setup(atoms, case.ffield, skin=0.3, padding=3)
    qtot = atoms.info.get("charge", 0.0)

    def run(solver, x=positions, p=params, **kw):
        return charges.electrostatic_energy(x, cell, p, types, pairs, qtot, "qeq", convention,
                                            solver=solver, **kw)

    q_direct = np.asarray(run("direct")["q"])
    sol = charges.equilibrate(positions, cell, params, types, pairs, qtot, "qeq", convention,
                              solver="cg", tol=1e-12, full_output=True)
    np.testing.assert_allclose(np.asarray(sol["q"]), q_direct, rtol=0, atol=1e-10)
    moved = positions + 0.01
    warm = charges.equilibrate(moved, cell, params, types, pairs, qtot, "qeq", convention,
                               solver="cg", tol=1e-12, guess=sol)
    cold = charges.equilibrate(moved, cell, params, types, pairs, qtot, "qeq", convention)
    np.testing.assert_allclose(np.asarray(warm), np.asarray(cold), rtol=0, atol=1e-10)
    jitted = rc.jit(lambda x, g: charges.equilibrate(x, cell, params, types, pairs, qtot, "qeq",
                                                     convention, solver="cg", tol=1e-12,
                                                     guess=g))
    np.testing.assert_allclose(np.asarray(jitted(moved, {"s": sol["s"], "t": sol["t"]})),
                               np.asarray(cold), rtol=0, atol=1e-10)

    g_direct = np.asarray(rc.grad(lambda x: _total(run("direct", x)))(positions))
    g_cg = np.asarray(rc.grad(lambda x: _total(run("cg", x, tol=1e-12)))(positions))
    np.testing.assert_allclose(g_cg, g_direct, rtol=0, atol=1e-8 * np.abs(g_direct).max())

    w = np.random.default_rng(1).normal(size=len(types))
    theta = {k: np.array(params[k]) for k in ("chi", "eta", "gamma")}

    def charge_loss(t, solver):
        return jnp.sum(run(solver, p=dict(params, **t), tol=1e-12)["q"] * w)

    gd = rc.grad(lambda t: charge_loss(t, "direct"))(theta)
    gc = rc.grad(lambda t: charge_loss(t, "cg"))(theta)
    for k in theta:
        np.testing.assert_allclose(np.asarray(gc[k]), np.asarray(gd[k]), rtol=0, atol=1e-8)
    if convention == "lammps":
        wf = np.random.default_rng(2).normal(size=positions.shape)

        def force_loss(gamma, solver):
            p = dict(params, gamma=gamma)
            forces = rc.grad(lambda x: _total(run(solver, x, p, tol=1e-12)))(positions)
            return jnp.sum(forces * wf)

        gamma = np.array(params["gamma"])
        fd = np.asarray(rc.grad(lambda g: force_loss(g, "direct"))(gamma))
        fc = np.asarray(rc.grad(lambda g: force_loss(g, "cg"))(gamma))
        np.testing.assert_allclose(fc, fd, rtol=0, atol=1e-7 * np.abs(fd).max())
