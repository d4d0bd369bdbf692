"""Batches of structures (concatenated lists, per-structure sums, batched charge solve) give
exactly what the single-structure model gives, structure by structure; the JAX-ReaxFF
convention's forces are the total derivative of the energy through the charge solve."""
import numpy as np
import pytest

import reaxgrad.core as rg
from reaxgrad.forcefields.ffield import read_ffield
from reaxgrad.forcefields.reaxff.model import ReaxFF
from reaxgrad.optimize.batch import build_batch, canonical_order
from reaxgrad.optimize.clusters import cluster_structures
from reaxgrad.optimize.data import structures_from_atoms
from reaxgrad.optimize.parameters import ParameterMap
from reaxgrad.optimize.predict import batch_energies, batch_energies_and_forces


@pytest.fixture(scope="module")
def setup(cho_ffield, small_structures):
    ff = read_ffield(cho_ffield)
    structures = structures_from_atoms(small_structures, ff)
    pmap = ParameterMap(ff, [])
    members = canonical_order(structures, range(len(structures)))
    batch = build_batch(structures, members, pmap.base, elements=ff.elements)
    pos = np.concatenate([structures[k].positions for k in members])
    return ff, structures, pmap, members, batch, pos


@pytest.mark.parametrize("convention", ["lammps", "consistent"])
def test_batch_equals_single_structures(setup, convention):
    ff, structures, pmap, members, batch, pos = setup
    e, q, f = rg.jit(batch_energies_and_forces, static_argnums=(4,))(
        pos, pmap.base, batch.lists, batch.charges, convention)
    model = ReaxFF(ff, convention=convention)
    forces, charges = batch.split(np.asarray(f)), batch.split(np.asarray(q))
    for p, k in enumerate(members):
        s = structures[k]
        ref = model.evaluate(s.positions, s.cell, s.pbc, s.symbols, total_charge=s.charge)
        assert abs(ref.energy - float(e[p])) <= 1e-9 * max(1.0, abs(ref.energy)), s.name
        np.testing.assert_allclose(forces[p], ref.forces, atol=1e-8, err_msg=s.name)
        np.testing.assert_allclose(charges[p], ref.charges, atol=1e-10, err_msg=s.name)
        assert abs(float(np.sum(charges[p])) - s.charge) < 1e-10


def test_jaxreaxff_forces_are_the_total_derivative(setup):
    ff, structures, pmap, members, batch, pos = setup
    e, q, f = batch_energies_and_forces(pos, pmap.base, batch.lists, batch.charges,
                                        "jaxreaxff")
    energy = lambda x: batch_energies(x, pmap.base, batch.lists, batch.charges,  # noqa: E731
                                      "jaxreaxff")[0]
    rng = np.random.default_rng(1)
    for a in rng.choice(len(pos), size=6, replace=False):
        for c in range(3):
            h = 1e-5
            xp, xm = pos.copy(), pos.copy()
            xp[a, c] += h
            xm[a, c] -= h
            fd = -(np.sum(np.asarray(energy(xp))) - np.sum(np.asarray(energy(xm)))) / (2 * h)
            assert abs(fd - float(f[a, c])) < 2e-6 * max(1.0, abs(fd)), (a, c, fd, f[a, c])
    # and they differ from LAMMPS's fixed-charge forces (the charges respond)
    _, _, f_lammps = batch_energies_and_forces(pos, pmap.base, batch.lists, batch.charges,
                                               "lammps")
    assert np.abs(np.asarray(f) - np.asarray(f_lammps)).max() > 1e-4


def test_clusters_cover_every_structure_once():
    sizes = [2, 3, 3, 5, 8, 26, 60, 61, 100, 7, 7, 7]
    groups = cluster_structures(sizes, 3)
    assert 1 <= len(groups) <= 3
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(sizes)))
    for g in groups:  # contiguous in size
        assert max(sizes[k] for k in g) <= min(
            [sizes[k] for h in groups if h is not g for k in h if sizes[k] > max(
                sizes[j] for j in g)] or [10**9])
    assert len(cluster_structures(sizes, 1)) == 1
