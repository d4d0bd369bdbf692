"""Derivatives of the ReaxFF energy through the engine: positions against central finite
differences, jit against eager, and gradients with respect to force-field parameters."""

import numpy as np
import pytest
from reaxff_cases import setup_case

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp
from reaxgrad.forcefields.ffield_tables import derive
from reaxgrad.forcefields.reaxff import bonded_energy, bonded_energy_terms

# a triclinic cell shorter than 10 A with H-bonds, a tiny triclinic crystal, a molecule with
# torsions and H-bonds (rdx), lg dispersion, an oxide
GRADIENT_CASES = ["water_box_triclinic", "diamond_primitive", "n_methylacetamide",
                  "benzene_dimer_lg", "zno_wurtzite"]


def _central_difference(f, x, index, h):
    xp, xm = x.copy(), x.copy()
    xp[index] += h
    xm[index] -= h
    return (float(f(xp)) - float(f(xm))) / (2 * h)


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_position_gradient_matches_finite_differences(name):
    atoms, _, _, params, _, lists = setup_case(name)
    cell, pos = atoms.cell.array, atoms.positions
    f = lambda x: bonded_energy(x, cell, params, lists)  # noqa: E731
    g = np.asarray(rc.grad(f)(pos))
    rng = np.random.default_rng(0)
    for flat in rng.choice(pos.size, size=min(6, pos.size), replace=False):
        index = np.unravel_index(flat, pos.shape)
        fd = _central_difference(f, pos, index, 1e-5)
        assert abs(fd - g[index]) <= 1e-6 * max(1.0, abs(g[index])), (index, fd, g[index])


def test_cell_gradient_matches_finite_differences():
    atoms, _, _, params, _, lists = setup_case("diamond_primitive")
    cell, pos = atoms.cell.array, atoms.positions
    frac = np.linalg.solve(cell.T, pos.T).T
    f = lambda c: bonded_energy(frac @ c, c, params, lists)  # noqa: E731
    g = np.asarray(rc.grad(f)(cell))
    for index in [(0, 0), (1, 2), (2, 1)]:
        fd = _central_difference(f, cell, index, 1e-5)
        assert abs(fd - g[index]) <= 1e-6 * max(1.0, abs(g[index])), (index, fd, g[index])


def test_jit_matches_eager_and_reuses_the_trace():
    atoms, _, _, params, _, lists = setup_case("water_box_triclinic")
    cell, pos = atoms.cell.array, atoms.positions
    jitted = rc.jit(bonded_energy_terms)
    eager = bonded_energy_terms(pos, cell, params, lists)
    compiled = jitted(pos, cell, params, lists)
    for k in eager:
        assert abs(float(compiled[k]) - float(eager[k])) <= 1e-10 * max(1.0, abs(float(eager[k])))
    moved = pos + 1e-3 * np.random.default_rng(1).normal(size=pos.shape)
    again = jitted(moved, cell, params, lists)
    assert jitted.trace_count == 1
    direct = bonded_energy_terms(moved, cell, params, lists)
    for k in eager:
        assert abs(float(again[k]) - float(direct[k])) <= 1e-10 * max(1.0, abs(float(direct[k])))
    grad_jit = rc.jit(rc.grad(bonded_energy))(pos, cell, params, lists)
    grad_eager = rc.grad(bonded_energy)(pos, cell, params, lists)
    np.testing.assert_allclose(np.asarray(grad_jit), np.asarray(grad_eager), rtol=1e-10,
                               atol=1e-9)


# (case, parameter table, index or None for the entry with the largest derivative): bond orders,
# bond energy, 1-3 correction, angles, torsions, H-bonds, vdW, general parameters, lg
PARAMETER_CASES = [
    ("n_methylacetamide", "p_bo1", None),
    ("n_methylacetamide", "De_s", None),
    ("n_methylacetamide", "b_o_131", None),
    ("n_methylacetamide", "theta_00", None),
    ("n_methylacetamide", "V2", None),
    ("formamide_dimer", "p_hb1", None),
    ("water_box_triclinic", "epsilon", None),
    ("water_box_triclinic", "gp", (28,)),
    ("water_box_triclinic", "valency", None),
    ("benzene_dimer_lg", "lgcij", None),
]


@pytest.mark.parametrize("name,table,index", PARAMETER_CASES)
def test_parameter_gradient_matches_finite_differences(name, table, index):
    atoms, _, ff, params, _, lists = setup_case(name)
    cell, pos = atoms.cell.array, atoms.positions
    derived = {"b_o_131", "epsilon", "lgcij"}  # atom parameters that enter through pair_* tables

    def energy(value):
        p = dict(params)
        p[table] = value
        if table in derived:
            p.update(derive(p, jnp))
        return bonded_energy(pos, cell, p, lists)

    base = np.array(params[table], dtype=float)
    grad = np.asarray(rc.grad(energy)(base))
    if index is None:  # the entry with the largest derivative
        index = np.unravel_index(np.argmax(np.abs(grad)), grad.shape)
    g = grad[index]
    h = 1e-6 * max(1.0, abs(base[index]))
    fd = _central_difference(energy, base, index, h)
    assert g != 0.0
    assert abs(fd - g) <= 1e-5 * max(1.0, abs(g)), (fd, g)


def test_hessian_vector_product_matches_finite_differences_of_forces():
    atoms, _, _, params, _, lists = setup_case("ethanol")
    cell, pos = atoms.cell.array, atoms.positions
    grad = rc.grad(lambda x: bonded_energy(x, cell, params, lists))
    v = np.random.default_rng(0).normal(size=pos.shape)
    hv = np.asarray(rc.jvp(grad, (pos,), (v,))[1])
    h = 1e-5
    fd = (np.asarray(grad(pos + h * v)) - np.asarray(grad(pos - h * v))) / (2 * h)
    np.testing.assert_allclose(hv, fd, rtol=0, atol=1e-6 * np.abs(fd).max())


@pytest.mark.parametrize("name", ["H2O", "CH3OH", "CH3CH2OH"])
def test_hessian_is_finite_and_matches_finite_differences_of_forces(name, potentials):
    """Second derivatives through the valence angle (LAMMPS's clamped arccos derivative) stay
    finite: padded angle entries sit at cos = 1, where arccos's own rule is infinite."""
    from ase.build import molecule

    from reaxgrad.forcefields.ffield import read_ffield, to_params
    from reaxgrad.forcefields.reaxff.lists import build_lists

    ff = read_ffield(potentials / "ffield.reax.cho")
    params = to_params(ff)
    atoms = molecule(name)
    index = {e.capitalize(): k for k, e in enumerate(ff.elements)}
    types = np.array([index[s] for s in atoms.get_chemical_symbols()])
    lists = build_lists(atoms.positions, None, False, types, params, {"skin": 0.3},
                        elements=ff.elements)
    f = lambda x: bonded_energy(x, np.zeros((3, 3)), params, lists)  # noqa: E731
    hessian = np.asarray(rc.hessian(f)(atoms.positions)).reshape(3 * len(atoms), -1)
    assert np.all(np.isfinite(hessian))
    grad = rc.grad(f)
    pos = atoms.positions
    for flat in (0, 4, 3 * len(atoms) - 1):
        index = np.unravel_index(flat, pos.shape)
        h = 1e-5
        up, down = pos.copy(), pos.copy()
        up[index] += h
        down[index] -= h
        fd = (np.asarray(grad(up)) - np.asarray(grad(down))).ravel() / (2 * h)
        np.testing.assert_allclose(hessian[flat], fd, rtol=1e-5, atol=1e-5)
