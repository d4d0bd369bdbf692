"""Neighbour-list benchmark (not a test): reaxgrad.md.neighbors vs ASE's neighbor_list,
timed in the same run on random periodic systems. Prints seconds, pair counts and ratios.

    python scripts/bench/neighbors.py [--quick] [--atoms 10000] [--cutoff 10]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

from reaxgrad.md.neighbors import neighbor_list, neighbor_pairs


def best_time(fn, repeats=3):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=10000)
    parser.add_argument("--cutoff", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="skip the (slow) ASE peer")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, rc = args.atoms, args.cutoff
    print(f"{n} atoms, cutoff {rc} A")
    for density in (0.05, 0.1):
        side = (n / density) ** (1 / 3)
        cells = {"orthorhombic": np.diag([side] * 3),
                 "triclinic": side * np.array([[1.0, 0, 0], [0.3, 0.95, 0], [0.2, -0.25, 0.9]])}
        for name, cell in cells.items():
            pos = rng.random((n, 3)) @ cell
            t_full, (i, _, _) = best_time(lambda c=cell, p=pos: neighbor_pairs(p, c, True, rc))
            t_half, _ = best_time(lambda c=cell, p=pos: neighbor_pairs(p, c, True, rc, half=True))
            t_sort, _ = best_time(lambda c=cell, p=pos: neighbor_pairs(p, c, True, rc, sort=True))
            t_pad, nl = best_time(lambda c=cell, p=pos: neighbor_list(p, c, True, rc))
            line = (f"  density {density:4.2f} {name:12s} pairs {len(i):9d}  full {t_full:6.3f}s"
                    f"  half {t_half:6.3f}s  sorted {t_sort:6.3f}s  padded {t_pad:6.3f}s"
                    f" (capacity {nl.capacity})")
            if not args.quick:
                atoms = Atoms(f"H{n}", positions=pos, cell=cell, pbc=True)
                t_ase, ai = best_time(lambda a=atoms: ase_neighbor_list("i", a, rc), repeats=1)
                assert len(ai) == len(i)
                line += f"  ase {t_ase:6.2f}s  ratio ase/full {t_ase / t_full:5.1f}x"
            print(line)


if __name__ == "__main__":
    main()
