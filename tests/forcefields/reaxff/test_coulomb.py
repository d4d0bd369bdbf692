"""forcefields.reaxff.coulomb: ep and eqeq at given charges against LAMMPS (``checkqeq no``),
self-image counting in cells shorter than the cutoff, padding / skin, derivatives, jit."""

import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/forcefields: structures

from structures import CASES_BY_NAME  # noqa: E402

import reaxgrad.core as rc  # noqa: E402
import reaxgrad.core.numpy as jnp  # noqa: E402
from reaxgrad.forcefields import lammps_oracle as lo  # noqa: E402
from reaxgrad.forcefields.ffield import read_ffield, to_params  # noqa: E402
from reaxgrad.forcefields.reaxff import coulomb  # noqa: E402
from reaxgrad.md.neighbors import neighbor_pairs, pad_to  # noqa: E402


@cache
def _params(ffield):
    ff = read_ffield(lo.potential_path(ffield))
    return ff.elements, to_params(ff)


def far_pairs(atoms, cutoff, *, skin=0.0, padding=0):
    """Half far list (i, j, shifts, mask). Free molecules: all i < j pairs (md.neighbors fails
    on molecules without extent along an axis, see the report of this module)."""
    if atoms.pbc.any():
        i, j, s = neighbor_pairs(atoms.positions, atoms.cell.array, atoms.pbc, cutoff + skin,
                                 half=True)
    else:
        i, j = np.triu_indices(len(atoms), 1)
        s = np.zeros((len(i), 3), dtype=np.int64)
    return pad_to(len(i) + padding, i, j, s)


def system(atoms, ffield):
    """(positions, cell, params, types) for reaxgrad."""
    elements, params = _params(ffield)
    types = np.array([elements.index(s) for s in atoms.get_chemical_symbols()])
    cell = atoms.cell.array if atoms.pbc.any() else None
    return atoms.positions.copy(), cell, params, types


def _random_charges(n, seed):
    q = np.random.default_rng(seed).uniform(-0.6, 0.6, n)
    return q - q.mean() if n > 1 else q


FIXED_CASES = ["ethanol", "water_box_triclinic", "diamond_primitive", "zno_wurtzite",
               "gold_primitive", "hcn"]


@cache
def _lammps_fixed(name):
    case = CASES_BY_NAME[name]
    atoms = case.build()
    q = _random_charges(len(atoms), 1)
    res = lo.run_reaxff(atoms, case.ffield, None, charges=q)
    return atoms, q, res


@pytest.fixture(scope="module")
def lammps(lammps_oracle):
    return _lammps_fixed


@pytest.mark.parametrize("name", FIXED_CASES)
def test_ep_eqeq_at_fixed_charges_match_lammps(lammps, name):
    """Random charges, LAMMPS `checkqeq no`: ep and eqeq per term. gold_primitive is one atom
    in a 2.9 Å cell: its ep is made of self-images only."""
    atoms, q, res = lammps(name)
    positions, cell, params, types = system(atoms, CASES_BY_NAME[name].ffield)
    pairs = far_pairs(atoms, params["gp"][12])
    ep = float(coulomb.coulomb_energy(positions, cell, q, params, types, pairs))
    eqeq = float(coulomb.charge_self_energy(q, params, types))
    ref = res["energies"]
    assert ep == pytest.approx(ref["ep"], rel=1e-10, abs=1e-10)
    assert eqeq == pytest.approx(ref["eqeq"], rel=1e-10, abs=1e-10)


def test_padding_and_skin_do_not_change_ep():
    atoms = CASES_BY_NAME["water_box_triclinic"].build()
    positions, cell, params, types = system(atoms, "ffield.reax.cho")
    q = _random_charges(len(atoms), 2)
    exact = coulomb.coulomb_energy(positions, cell, q, params, types,
                                   far_pairs(atoms, params["gp"][12]))
    padded = coulomb.coulomb_energy(positions, cell, q, params, types,
                                    far_pairs(atoms, params["gp"][12], skin=1.0, padding=37))
    assert float(padded) == pytest.approx(float(exact), rel=1e-13)


def test_coulomb_gradients_match_finite_differences_and_jit():
    """Positions and cell (strain) derivatives at fixed charges; jit == eager."""
    atoms = CASES_BY_NAME["water_box_triclinic"].build()
    positions, cell, params, types = system(atoms, "ffield.reax.cho")
    pairs = far_pairs(atoms, params["gp"][12], skin=0.5, padding=3)
    q = _random_charges(len(atoms), 3)

    def energy(x, strain):
        f = jnp.eye(3) + strain
        return coulomb.coulomb_energy(x @ f, cell @ f, q, params, types, pairs)

    zero = np.zeros((3, 3))
    gx, gs = rc.grad(energy, argnums=(0, 1))(positions, zero)
    gx_jit, gs_jit = rc.jit(rc.grad(energy, argnums=(0, 1)))(positions, zero)
    np.testing.assert_allclose(np.asarray(gx_jit), np.asarray(gx), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(gs_jit), np.asarray(gs), rtol=1e-12, atol=1e-12)
    h = 1e-5
    for a, k in [(0, 0), (1, 2), (5, 1)]:
        dx = np.zeros_like(positions)
        dx[a, k] = h
        fd = (float(energy(positions + dx, zero)) - float(energy(positions - dx, zero))) / (2 * h)
        assert float(np.asarray(gx)[a, k]) == pytest.approx(fd, rel=1e-7, abs=1e-7)
    for a, b in [(0, 0), (1, 0), (2, 1)]:
        e = np.zeros((3, 3))
        e[a, b] = h
        fd = (float(energy(positions, e)) - float(energy(positions, -e))) / (2 * h)
        assert float(np.asarray(gs)[a, b]) == pytest.approx(fd, rel=1e-7, abs=1e-7)


def test_charge_self_energy_uses_file_eta():
    _, params = _params("ffield.reax.cho")
    q = np.array([0.3, -0.2])
    types = np.array([0, 2])
    chi, eta_file = params["chi"][types], params["eta"][types] / 2.0
    expected = 23.02 * np.sum(chi * q + eta_file * q * q)
    assert float(coulomb.charge_self_energy(q, params, types)) == pytest.approx(expected)
