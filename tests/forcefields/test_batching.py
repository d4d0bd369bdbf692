"""Batches of structures with equal list capacities evaluate under vmap (the basis of
clustered batches in fitting): vmap and jit(vmap(grad)) equal a loop over the structures."""
import sys
from pathlib import Path

import numpy as np
import pytest

import reaxgrad.core as rg
from reaxgrad.core.tree import tree_map
from reaxgrad.forcefields.reaxff.lists import build_lists
from reaxgrad.forcefields.reaxff.model import TERMS, ReaxFF, energy_terms

sys.path.insert(0, str(Path(__file__).parent))
import structures  # noqa: E402


def test_vmap_over_structures_matches_a_loop(lammps_oracle):
    model = ReaxFF(lammps_oracle.potential_path("ffield.reax.cho"))
    first = structures.CASES_BY_NAME["ethanol"].build()
    frames = [first] + [first.copy() for _ in range(2)]
    for k, atoms in enumerate(frames[1:]):
        atoms.rattle(0.05, seed=k)
    types = model.types_of(first.get_chemical_symbols())
    control = {"skin": 0.0}
    from reaxgrad.md.forces import _capacities, pad_lists

    lists = [build_lists(a.positions, None, False, types, model.params, control)
             for a in frames]
    largest = {k: max(_capacities(lst)[k] for lst in lists) for k in _capacities(lists[0])}
    lists = [pad_lists(lst, largest) for lst in lists]  # every list at the largest capacity
    batch = tree_map(lambda *xs: np.stack(xs), *lists)
    positions = np.stack([a.positions for a in frames])

    def energy(pos, lst):
        terms, _, _ = energy_terms(pos, np.zeros((3, 3)), model.params, lst, 0.0)
        total = terms[TERMS[0]]
        for name in TERMS[1:]:
            total = total + terms[name]
        return total

    loop_e = [float(energy(a.positions, lst)) for a, lst in zip(frames, lists)]
    loop_g = [np.asarray(rg.grad(energy)(a.positions, lst)) for a, lst in zip(frames, lists)]
    np.testing.assert_allclose(rg.vmap(energy)(positions, batch), loop_e, rtol=1e-12)
    grads = rg.jit(rg.vmap(rg.grad(energy)))(positions, batch)
    np.testing.assert_allclose(grads, np.stack(loop_g), rtol=1e-10, atol=1e-10)
    assert len(set(np.round(loop_e, 6))) == 3  # the frames really differ
    with pytest.raises(ValueError, match="inconsistent sizes"):
        rg.vmap(energy)(positions[:2], batch)
