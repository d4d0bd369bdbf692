"""Neighbour search and ReaxFF list building (not a test): reaxgrad's compiled search against
vesin, matscipy and ASE, and build_lists compiled / NumPy / before the compiled path, all
measured in the same run. Prints milliseconds (best of --repeats) and ratios.

1. exactness: every peer's (i, j, shift) set against reaxgrad's on the test structures
   (small triclinic cells, mixed pbc, molecules without a cell) at 5 and 10 Å;
2. pair search at ReaxFF's nonbonded cutoff (10 Å, full list) on ethanol and PETN crystals;
3. ReaxFF lists for a single point (overlap check + build_lists, ffield.reax.budzien / cho),
   compiled, the NumPy path (no compiler), and the code before the compiled path, loaded from
   git (``--before``, default e333f20) when this is a git checkout;
4. whole single points (``ReaxFF.evaluate``: lists, energy, forces, QEq) with those lists.

    python scripts/bench/neighbors.py [--sizes 0 1 2 4 5] [--repeats 5] [--quick]

``--threads 1 2``: only the compiled search at those thread counts (REAXGRAD_NUM_THREADS;
the cell list runs blocks of rows on OpenMP threads from 1,024 atoms): the ReaxFF lists'
search (``find_pairs``) and a full list within 10 Å, and whether every count gives the same
arrays.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from reaxgrad.forcefields import lammps_oracle as lo
from reaxgrad.forcefields.reaxff import lists as reax_lists
from reaxgrad.forcefields.reaxff.model import ReaxFF, _check_overlaps
from reaxgrad.md import _nlist_c, neighbors

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "forcefields"))
import structures  # noqa: E402


def best_ms(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def petn(reps):
    import ase.io

    atoms = ase.io.read(lo.bench_dir() / "data.reax", format="lammps-data", atom_style="charge",
                        Z_of_type={1: 6, 2: 1, 3: 8, 4: 7}, units="real")
    atoms.pbc = True
    return atoms.repeat((reps, reps, reps))


def system(size):
    """size 0: ethanol (no cell, ffield.reax.cho); k: PETN repeated k x k x k (budzien)."""
    if size == 0:
        return "ethanol", structures.ethanol(), "ffield.reax.cho"
    return "PETN", petn(size), "ffield.reax.budzien"


def rows(i, j, s):
    out = np.column_stack([i, j, s]).astype(np.int64)
    return out[np.lexsort(out.T[::-1])]


# ---------------------------------------------------------------- peers

def peers():
    found = {}
    try:
        import vesin

        def run_vesin(atoms, cutoff, threads=0):
            nl = vesin.NeighborList(cutoff=cutoff, full_list=True, n_threads=threads)
            return nl.compute(atoms.positions, atoms.cell.array, atoms.pbc, "ijS")

        found["vesin"] = run_vesin
        found["vesin 1 thr"] = lambda a, c: run_vesin(a, c, 1)
    except ImportError:
        print("  (vesin not installed: pip install vesin)")
    try:
        from matscipy.neighbours import neighbour_list

        found["matscipy"] = lambda a, c: neighbour_list("ijS", a, c)
    except ImportError:
        print("  (matscipy not installed)")
    from ase.neighborlist import neighbor_list

    found["ase"] = lambda a, c: neighbor_list("ijS", a, c)
    return found


def ours(atoms, cutoff, method="auto"):
    return neighbors.neighbor_pairs(atoms.positions, atoms.cell.array, atoms.pbc, cutoff,
                                    method=method)


def exactness(peer_fns):
    print("\n1. exactness against reaxgrad (same (i, j, shift) set; 'x': differs, '!': error)")
    cases = ["ethanol", "water_box_triclinic", "diamond_primitive", "graphite",
             "zno_wurtzite", "gold_primitive"]
    slab = structures.graphite().repeat((2, 2, 1))
    slab.pbc = (True, True, False)
    builds = [(name, structures.CASES_BY_NAME[name].build()) for name in cases]
    builds.append(("graphite slab (pbc T,T,F)", slab))
    print(f"  {'structure':28s} {'cutoff':>6s} {'pairs':>7s}  " + "  ".join(
        f"{k:>11s}" for k in ["numpy", *peer_fns]))
    for name, atoms in builds:
        for cutoff in (5.0, 10.0):
            ref = rows(*ours(atoms, cutoff))
            marks = []
            for fn in [lambda a, c: ours(a, c, "numpy"), *peer_fns.values()]:
                try:
                    got = rows(*fn(atoms, cutoff))
                    marks.append("exact" if got.shape == ref.shape and (got == ref).all()
                                 else "x")
                except Exception as err:  # noqa: BLE001 (a peer refusing a cell is a result)
                    marks.append("! " + type(err).__name__[:9])
            print(f"  {name:28s} {cutoff:6.1f} {len(ref):7d}  " + "  ".join(
                f"{m:>11s}" for m in marks))


def search_timing(peer_fns, sizes, repeats, quick):
    print(f"\n2. pair search, full list within 10 A, ms (best of {repeats})")
    head = ["reaxgrad C", "C all-pairs", "C cells", "numpy", *peer_fns]
    print(f"  {'system':16s} {'pairs':>9s}  " + "  ".join(f"{h:>11s}" for h in head)
          + "   fastest peer / reaxgrad C")
    for size in sizes:
        name, atoms, _ = system(size)
        n = len(atoms)
        reps = repeats if n < 3000 else max(2, repeats // 2)
        i, _, _ = ours(atoms, 10.0)
        times = {"reaxgrad C": best_ms(lambda a=atoms: ours(a, 10.0), reps)}
        chosen = _nlist_c.last_mode
        times["C all-pairs"] = (best_ms(lambda a=atoms: ours(a, 10.0, "all_pairs"), reps)
                                if n <= 600 else None)
        times["C cells"] = best_ms(lambda a=atoms: ours(a, 10.0, "cells"), reps)
        times["numpy"] = best_ms(lambda a=atoms: ours(a, 10.0, "numpy"), max(1, reps // 2))
        for peer, fn in peer_fns.items():
            slow = peer in ("ase", "matscipy") and n > (600 if peer == "ase" else 4000)
            if (quick and peer == "ase" and n > 100) or slow:
                times[peer] = None
                continue
            try:
                times[peer] = best_ms(lambda a=atoms, f=fn: f(a, 10.0),
                                      1 if peer == "ase" else reps)
            except Exception:  # noqa: BLE001
                times[peer] = None
        peer_best = min((v for k, v in times.items() if k in peer_fns and v), default=None)
        ratio = f"{peer_best / times['reaxgrad C']:6.1f}x" if peer_best else "   -"
        print(f"  {name + ' ' + str(n):16s} {len(i):9d}  " + "  ".join(
            f"{v:11.3f}" if v is not None else f"{'-':>11s}" for v in times.values())
            + f"   {ratio}  (auto: {chosen})")


# ---------------------------------------------------------------- threads

def thread_timing(sizes, repeats, counts):
    """The compiled search at each thread count: ReaxFF's find_pairs (bond, hydrogen-bond,
    far and overlap lists in one pass) and a 10 A full list (cell list); ms, best of
    repeats, rounds interleaved so that a busy machine hurts every count alike."""
    print(f"\n2b. compiled search by threads (REAXGRAD_NUM_THREADS), ms (best of {repeats})")
    print(f"  {'system':16s} {'search':>11s}  " + "  ".join(f"{f'{t} thr':>9s}" for t in counts)
          + "   same arrays")
    saved = os.environ.get("REAXGRAD_NUM_THREADS")
    try:
        for size in sizes:
            name, atoms, ffield = system(size)
            model = ReaxFF(lo.potential_path(ffield))
            types = model.types_of(atoms.get_chemical_symbols())
            args = (atoms.positions, atoms.cell.array, atoms.pbc, types, model.params,
                    model.control)
            searches = {
                "find_pairs": lambda a=args: reax_lists.find_pairs(*a, overlap_distance=0.1),
                "10 A cells": lambda a=atoms: ours(a, 10.0, "cells"),
            }
            for label, fn in searches.items():
                best, first = {t: float("inf") for t in counts}, {}
                for _ in range(repeats):
                    for t in counts:
                        os.environ["REAXGRAD_NUM_THREADS"] = str(t)
                        if t not in first:
                            first[t] = fn()
                        t0 = time.perf_counter()
                        fn()
                        best[t] = min(best[t], time.perf_counter() - t0)
                same = all(_same(first[t], first[counts[0]]) for t in counts)
                print(f"  {name + ' ' + str(len(atoms)):16s} {label:>11s}  "
                      + "  ".join(f"{best[t] * 1e3:9.3f}" for t in counts)
                      + f"   {'yes' if same else 'NO'}", flush=True)
    finally:
        if saved is None:
            os.environ.pop("REAXGRAD_NUM_THREADS", None)
        else:
            os.environ["REAXGRAD_NUM_THREADS"] = saved


def _same(a, b):
    """Equal search results (nested tuples, lists, arrays, padded pair lists)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b))
    if isinstance(a, (tuple, list)):
        return (isinstance(b, (tuple, list)) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    if isinstance(a, neighbors.PaddedPairs):  # the pairs, not the buffers' padding
        return isinstance(b, neighbors.PaddedPairs) and _same(a.pairs(), b.pairs())
    if hasattr(a, "__dict__"):
        return type(a) is type(b) and _same(list(vars(a).values()), list(vars(b).values()))
    return a == b


# ---------------------------------------------------------------- ReaxFF lists

def load_before(commit):
    """The pre-compiled neighbor_pairs / build_lists from git, as modules (None if absent)."""
    try:
        texts = {path: subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{path}"],
                                      capture_output=True, text=True, check=True).stdout
                 for path in ("md/neighbors.py", "forcefields/reaxff/lists.py")}
    except (OSError, subprocess.CalledProcessError):
        return None
    folder = Path(tempfile.mkdtemp(prefix="reaxgrad-before-"))
    modules = {}
    for path, package in (("md/neighbors.py", "reaxgrad.md"),
                          ("forcefields/reaxff/lists.py", "reaxgrad.forcefields.reaxff")):
        name = f"{package}._before_{Path(path).stem}"
        file = folder / (Path(path).stem + ".py")
        file.write_text(texts[path])
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules[path] = module
    modules["forcefields/reaxff/lists.py"].neighbor_pairs = modules["md/neighbors.py"] \
        .neighbor_pairs
    return modules


def list_timing(sizes, repeats, commit):
    before = load_before(commit)
    print(f"\n3. ReaxFF lists for one single point (overlap check + build_lists; model "
          f"control, skin 0), ms (best of {repeats})")
    if before is None:
        print(f"  (no git history: the 'before' column ({commit}) is skipped)")
    print(f"  {'system':14s} {'bonds':>6s} {'angles':>7s} {'torsions':>8s} {'hbonds':>7s} "
          f"{'far':>8s}  {'before':>9s} {'numpy':>9s} {'compiled':>9s}   before/compiled"
          f"  (search, rest)")
    for size in sizes:
        list_row(size, repeats, before)


def list_row(size, repeats, before):
    name, atoms, ffield = system(size)
    model = ReaxFF(lo.potential_path(ffield))
    pos, cell, pbc = atoms.positions, atoms.cell.array, atoms.pbc
    types = model.types_of(atoms.get_chemical_symbols())
    args = (pos, cell, pbc, types, model.params, model.control)
    kw = dict(elements=model.ff.elements)
    n = len(atoms)
    reps = repeats * 20 if n < 100 else repeats

    def single_point(method="auto"):
        found = reax_lists.find_pairs(*args, overlap_distance=0.1, method=method)
        _check_overlaps(pos, cell, pbc, name, pairs=found.overlap)
        return reax_lists.build_lists(*args, pairs=found, method=method, **kw)

    t_fast = best_ms(single_point, reps)
    found = reax_lists.find_pairs(*args, overlap_distance=0.1)
    t_search = best_ms(lambda: reax_lists.find_pairs(*args, overlap_distance=0.1), reps)
    t_rest = best_ms(lambda: reax_lists.build_lists(*args, pairs=found, **kw), reps)
    t_numpy = best_ms(lambda: single_point("numpy"), max(2, reps // 2))
    t_before = None
    if before is not None:
        old_nb, old_lists = before["md/neighbors.py"], before["forcefields/reaxff/lists.py"]

        def old():
            old_nb.neighbor_pairs(pos, cell, pbc, 0.1, half=True)
            return old_lists.build_lists(*args, **kw)

        t_before = best_ms(old, max(2, reps // 2))
    counts = single_point().counts()
    ratio = f"{t_before / t_fast:8.1f}x" if t_before else "       -"
    print(f"  {name + ' ' + str(n):14s} {counts['bond']:6d} {counts['angle']:7d} "
          f"{counts['torsion']:8d} {counts['hbond']:7d} {counts['far']:8d}  "
          + (f"{t_before:9.3f}" if t_before else f"{'-':>9s}")
          + f" {t_numpy:9.3f} {t_fast:9.3f}   {ratio}        ({t_search:.3f}, "
          f"{t_rest:.3f})", flush=True)


def single_points(sizes, repeats, commit):
    before = load_before(commit)
    print(f"\n4. ReaxFF.evaluate (lists every call + jit energy/forces/QEq), ms (best of "
          f"{repeats * 4})")
    print(f"  {'system':14s} {'with lists before':>18s} {'with compiled lists':>20s}")
    for size in sizes:
        name, atoms, ffield = system(size)
        model = ReaxFF(lo.potential_path(ffield))
        args = (atoms.positions, atoms.cell.array, atoms.pbc, atoms.get_chemical_symbols())
        model.evaluate(*args)  # trace and compile
        after = best_ms(lambda m=model, a=args: m.evaluate(*a), repeats * 4)
        old = None
        if before is not None:
            old_model = ReaxFF(lo.potential_path(ffield))
            old_model.evaluate(*args)
            old = best_ms(lambda m=old_model, a=args: evaluate_before(m, before, *a),
                          repeats * 4)
        print(f"  {name + ' ' + str(len(atoms)):14s} "
              + (f"{old:18.3f}" if old else f"{'-':>18s}") + f" {after:20.3f}", flush=True)


def evaluate_before(model, before, positions, cell, pbc, symbols):
    """ReaxFF.evaluate as it was: its own overlap search, then the NumPy lists."""
    types = model.types_of(symbols)
    i, _, _ = before["md/neighbors.py"].neighbor_pairs(positions, cell, pbc, 0.1, half=True)
    assert len(i) == 0
    model._lists = before["forcefields/reaxff/lists.py"].build_lists(
        positions, cell, pbc, types, model.params, model.control, elements=model.ff.elements,
        previous=model._lists)
    return model.evaluate_lists(positions, cell, pbc, model._lists)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 1, 2, 4, 5],
                        help="0: ethanol; k: PETN k x k x k (58 k^3 atoms)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", default="e333f20",
                        help="git commit of the NumPy lists before the compiled path")
    parser.add_argument("--quick", action="store_true", help="skip the slow peers (ASE)")
    parser.add_argument("--threads", type=int, nargs="+",
                        help="only the compiled search at these thread counts, e.g. 1 2")
    args = parser.parse_args()
    print(f"compiled search available: {_nlist_c.available()}")
    if args.threads:
        thread_timing(args.sizes, args.repeats, args.threads)
        return
    peer_fns = peers()
    exactness(peer_fns)
    search_timing(peer_fns, args.sizes, args.repeats, args.quick)
    list_timing(args.sizes, args.repeats, args.before)
    single_points([k for k in args.sizes if k <= 1], args.repeats, args.before)


if __name__ == "__main__":
    main()
