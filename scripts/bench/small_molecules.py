"""Small-molecule benchmark (not a test): energies + forces + QEq charges of every structure of
the disulfide training set (JAX-ReaxFF paper data, ``../shared/data/jaxreaxff/disulfide``),
reaxgrad evaluating them as one batch (concatenated lists, one jit call: what fitting and
`reaxgrad batch` rely on) vs LAMMPS evaluating them one by one (`pair_style reaxff` +
`fix qeq/reaxff`, `run 0` per structure, as a LAMMPS-based workflow does), same force field
(ffield_lit), LAMMPS's conventions, in the same run. Prints seconds per structure and the ratio,
and checks that both give the same energies.

    python scripts/bench/small_molecules.py [--repeats 5] [--backend fused] [--limit N]

Measured 2026-12-01 on this 2-core machine under load from other jobs (fused backend):
232 structures, 1,581 atoms: reaxgrad 0.151 ms/structure (+ 0.37 ms/structure to build the
lists once), LAMMPS 22.4 ms/structure (each `run 0` from a new instance, as a per-structure
workflow runs it; most of it is LAMMPS's set-up) -> 0.007x; energies agree to 3.6e-11 kcal/mol.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "jaxreaxff" / "disulfide"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backend", default=None, help="jit executor (interpreter, fused)")
    ap.add_argument("--limit", type=int, default=None, help="first N structures only")
    args = ap.parse_args()
    if args.backend:
        os.environ["REAXGRAD_JIT_BACKEND"] = args.backend

    import reaxgrad.core as rg
    from reaxgrad.core.executors import resolve_backend
    from reaxgrad.datasets.geo import read_geo
    from reaxgrad.forcefields import lammps_oracle as lo
    from reaxgrad.forcefields.ffield import read_ffield, to_params
    from reaxgrad.optimize.batch import build_batch
    from reaxgrad.optimize.data import structures_from_atoms
    from reaxgrad.optimize.predict import batch_energies_and_forces

    ff = read_ffield(DATA / "ffield_lit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atoms_list = list(read_geo(DATA / "geo"))
    atoms_list = atoms_list[:args.limit] if args.limit else atoms_list
    structures = structures_from_atoms(atoms_list, ff)
    params = to_params(ff)
    n_atoms = sum(s.n_atoms for s in structures)
    t0 = time.perf_counter()
    batch = build_batch(structures, range(len(structures)), params, elements=ff.elements)
    t_lists = time.perf_counter() - t0
    positions = np.concatenate([s.positions for s in structures])
    call = rg.jit(batch_energies_and_forces, static_argnums=(4,))
    t0 = time.perf_counter()
    energies, _, _ = call(positions, params, batch.lists, batch.charges, "lammps")
    t_first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        call(positions, params, batch.lists, batch.charges, "lammps")
        times.append(time.perf_counter() - t0)
    t_batch = min(times)
    energies = np.asarray(energies)

    t0 = time.perf_counter()
    reference = []
    for atoms in atoms_list:
        reference.append(lo.run_reaxff(atoms, DATA / "ffield_lit")["energy"])
    t_lammps = time.perf_counter() - t0
    worst = float(np.max(np.abs(energies - np.array(reference))))

    m = len(structures)
    print(f"disulfide set: {m} structures, {n_atoms} atoms; jit backend "
          f"{args.backend or resolve_backend(None)}; {os.cpu_count()} cores")
    print(f"  reaxgrad batch (one call)   {1e3 * t_batch / m:9.3f} ms/structure "
          f"(lists {1e3 * t_lists / m:.3f} ms/structure, built once; first call "
          f"{t_first:.1f} s)")
    print(f"  LAMMPS one by one (run 0)   {1e3 * t_lammps / m:9.3f} ms/structure")
    print(f"  ratio reaxgrad / LAMMPS      {t_batch / t_lammps:9.3f}x  "
          f"(with list building {(t_batch + t_lists) / t_lammps:.3f}x)")
    print(f"  largest energy difference   {worst:.2e} kcal/mol")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
