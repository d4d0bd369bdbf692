"""Batching benchmark (not a test): vmap over per-structure padded lists vs concatenated lists
(what `optimize.batch` does), for energies + forces of many small molecules with one compiled
call. Uses the disulfide structures that share the most common atom count, so that vmap needs
no atom padding (its best case); both compute the same numbers (checked).

    python scripts/bench/batching.py [--repeats 10]
"""
from __future__ import annotations

import argparse
import collections
import time
import warnings
from pathlib import Path

import numpy as np

import reaxgrad.core as rg
from reaxgrad.core.tree import tree_map
from reaxgrad.forcefields.ffield import read_ffield
from reaxgrad.forcefields.reaxff.lists import build_lists
from reaxgrad.forcefields.reaxff.model import TERMS, energy_terms
from reaxgrad.optimize.batch import FIT_CONTROL, build_batch
from reaxgrad.optimize.data import load_problem_inputs
from reaxgrad.optimize.parameters import ParameterMap
from reaxgrad.optimize.predict import batch_energies_and_forces

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "jaxreaxff" / "disulfide"


def single_energy(pos, params, lists):
    terms, _, _ = energy_terms(pos, np.zeros((3, 3)), params, lists, 0.0)
    total = terms[TERMS[0]]
    for name in TERMS[1:]:
        total = total + terms[name]
    return total


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    ff = read_ffield(DATA / "ffield_lit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pmap = ParameterMap(ff, str(DATA / "params"))
        structures, _ = load_problem_inputs(ff, DATA / "geo", DATA / "trainset.in")
    n, _ = collections.Counter(s.n_atoms for s in structures).most_common(1)[0]
    chosen = [s for s in structures if s.n_atoms == n and not s.pbc]
    params = pmap.base
    control = {**FIT_CONTROL, "skin": 0.0}  # the same candidate tests for both
    # vmap: every structure's lists padded to the largest capacity of each list
    lists = None
    for _ in range(2):
        lists = [build_lists(s.positions, None, False, s.types, params, control,
                             elements=ff.elements, previous=lists[-1] if lists else None)
                 for s in chosen]
    stacked = tree_map(lambda *xs: np.stack(xs), *lists)
    positions = np.stack([s.positions for s in chosen])
    vmapped = rg.jit(rg.vmap(rg.value_and_grad(single_energy), in_axes=(0, None, 0)))
    t_vmap = timed(lambda: vmapped(positions, params, stacked), args.repeats)
    # concatenation
    batch = build_batch(chosen, range(len(chosen)), params, elements=ff.elements,
                        control=control)
    flat = np.concatenate([s.positions for s in chosen])
    concat = rg.jit(batch_energies_and_forces, static_argnums=(4,))
    t_cat = timed(lambda: concat(flat, params, batch.lists, batch.charges, "lammps"),
                  args.repeats)
    e_v, g_v = vmapped(positions, params, stacked)
    e_c, _, f_c = concat(flat, params, batch.lists, batch.charges, "lammps")
    assert np.allclose(np.asarray(e_v), np.asarray(e_c), rtol=1e-10, atol=1e-8)
    assert np.allclose(-np.asarray(g_v).reshape(-1, 3), np.asarray(f_c), atol=1e-7)
    entries_v = sum(len(getattr(stacked, k + "_mask").ravel())
                    for k in ("bond", "angle", "torsion", "hbond", "far"))
    entries_c = sum(batch.capacities().values())
    print(f"{len(chosen)} structures of {n} atoms, energies + forces per call:")
    print(f"| batching | seconds | list entries (padded) |\n|---|---|---|\n"
          f"| vmap over padded per-structure lists | {t_vmap:.4f} | {entries_v} |\n"
          f"| concatenated lists (optimize.batch) | {t_cat:.4f} | {entries_c} |\n"
          f"vmap / concatenation: {t_vmap / t_cat:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
