"""Batched FIRE / LBFGS minimizers: same trajectories as ASE, no coupling between structures,
padding and per-structure budgets respected."""

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.lj import LennardJones
from ase.optimize import FIRE, LBFGS

from reaxgrad.md.minimize import fire, lbfgs

MINIMIZERS = {"fire": (fire, FIRE), "lbfgs": (lbfgs, LBFGS)}


def lj_energy_and_gradient(x, mask=None):
    """Lennard-Jones (epsilon = sigma = 1, no cutoff) of a batch (S, N, 3); padding atoms
    (mask False) do not interact but get a junk gradient a minimizer must ignore."""
    x = np.asarray(x, dtype=float)
    mask = np.ones(x.shape[:2], bool) if mask is None else mask
    d = x[:, :, None, :] - x[:, None, :, :]
    pair = mask[:, :, None] & mask[:, None, :] & ~np.eye(x.shape[1], dtype=bool)
    r2 = np.where(pair, np.sum(d * d, axis=-1), 1.0)
    inv6 = np.where(pair, r2**-3, 0.0)
    energy = 2.0 * np.sum(inv6 * inv6 - inv6, axis=(1, 2))
    de_dr2 = np.where(pair, -12.0 * inv6 * inv6 / r2 + 6.0 * inv6 / r2, 0.0)
    gradient = 4.0 * np.sum(de_dr2[..., None] * d, axis=2)
    return energy, np.where(mask[..., None], gradient, 1.0)


def cluster(n, seed):
    """n atoms from a jittered cubic grid (spacing 1.2, near the LJ minimum distance)."""
    grid = np.stack(np.meshgrid(*[np.arange(3.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    grid = grid[np.argsort(np.linalg.norm(grid - 1.0, axis=1), kind="stable")][:n] * 1.2
    return grid + np.random.default_rng(seed).uniform(-0.1, 0.1, grid.shape)


def padded_batch():
    clusters = [cluster(6, 3), cluster(11, 1), cluster(8, 2)]
    x = np.full((3, 11, 3), 7.0)
    mask = np.zeros((3, 11), bool)
    for i, c in enumerate(clusters):
        x[i, : len(c)], mask[i, : len(c)] = c, True
    return clusters, x, mask


class ForcesFrom(Calculator):
    """ASE calculator over the test's own LJ, so ASE sees bit-identical forces."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energy, gradient = lj_energy_and_gradient(self.atoms.positions[None])
        self.results = {"energy": energy[0], "forces": -gradient[0]}


def test_test_potential_is_ases_lennard_jones():
    x = cluster(11, 1)
    atoms = Atoms("Ar11", positions=x)
    atoms.calc = LennardJones(rc=1e3)
    energy, gradient = lj_energy_and_gradient(x[None])
    np.testing.assert_allclose(-gradient[0], atoms.get_forces(), atol=1e-12)
    np.testing.assert_allclose(energy[0], atoms.get_potential_energy(), atol=1e-6)


def ase_trajectory(ase_optimizer, x, fmax, steps):
    atoms = Atoms(f"Ar{len(x)}", positions=x)
    atoms.calc = ForcesFrom()
    opt = ase_optimizer(atoms, logfile=None)
    frames = []
    opt.attach(lambda: frames.append(atoms.positions.copy()))
    converged = opt.run(fmax=fmax, steps=steps)
    return np.array(frames), converged, opt.nsteps


@pytest.mark.parametrize("name", MINIMIZERS)
def test_trajectory_equals_ase(name):
    ours, theirs = MINIMIZERS[name]
    x0 = cluster(11, 1)
    frames, ase_converged, ase_steps = ase_trajectory(theirs, x0, fmax=1e-3, steps=300)
    assert ase_converged and ase_steps > 20
    # One batched call: copy k has a budget of k steps, so it stops on ASE's frame k.
    budgets = np.arange(ase_steps + 3)
    result = ours(lj_energy_and_gradient, np.repeat(x0[None], len(budgets), 0), None,
                  fmax=1e-3, max_steps=300, steps=budgets)
    expected = frames[np.minimum(budgets, ase_steps)]
    np.testing.assert_allclose(result.positions, expected, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(result.steps, np.minimum(budgets, ase_steps))
    np.testing.assert_array_equal(result.converged, budgets >= ase_steps)
    assert result.evaluations == ase_steps + 1


@pytest.mark.parametrize("name", MINIMIZERS)
def test_batch_equals_single_runs_and_ignores_padding(name):
    minimize = MINIMIZERS[name][0]
    clusters, x, mask = padded_batch()
    batch = minimize(lambda y: lj_energy_and_gradient(y, mask), x, mask, fmax=1e-4,
                     max_steps=500)
    assert batch.converged.all()
    assert batch.evaluations == batch.steps.max() + 1
    np.testing.assert_array_equal(batch.positions[~mask], x[~mask])
    np.testing.assert_array_equal(batch.gradient[~mask], 0.0)
    for i, c in enumerate(clusters):
        single = lambda y: tuple(a[0] for a in lj_energy_and_gradient(y[None]))
        alone = minimize(single, c, None,
                         fmax=1e-4, max_steps=500)  # (N, 3) single-structure form
        n = len(c)
        np.testing.assert_allclose(batch.positions[i, :n], alone.positions, rtol=0, atol=1e-8)
        assert batch.steps[i] == alone.steps and alone.converged
        np.testing.assert_allclose(batch.energy[i], alone.energy, rtol=1e-12)
        force = np.linalg.norm(batch.gradient[i, :n], axis=-1).max()
        assert force < 1e-4
        energy = lj_energy_and_gradient(batch.positions[i : i + 1, :n])[0]
        np.testing.assert_allclose(batch.energy[i], energy[0], rtol=1e-12)


@pytest.mark.parametrize("name", MINIMIZERS)
def test_step_budgets_and_flags(name):
    minimize = MINIMIZERS[name][0]
    _, x, mask = padded_batch()
    f = lambda y: lj_energy_and_gradient(y, mask)
    result = minimize(f, x, mask, fmax=1e-4, max_steps=500, steps=[0, 3, 500])
    np.testing.assert_array_equal(result.positions[0], x[0])
    assert list(result.steps[:2]) == [0, 3] and result.steps[2] < 500
    assert list(result.converged) == [False, False, True]
    np.testing.assert_allclose(result.energy[0], f(x)[0][0])
    # max_steps caps the budgets; an already converged structure takes no step.
    capped = minimize(f, x, mask, fmax=1e-4, max_steps=2, steps=[5, 5, 5])
    assert list(capped.steps) == [2, 2, 2] and capped.evaluations == 3
    done = minimize(f, result.positions, mask, fmax=1e-4, steps=[0, 10, 10])
    assert done.steps[2] == 0 and done.converged[2] and not done.converged[0]
