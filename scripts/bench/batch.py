"""Throughput of `reaxgrad batch energy` / `minimize` with 1 and 2 workers vs a serial loop.

N small molecules (CH4 ... ethanol, 3-9 atoms, rattled by 0.05 Å with a seed per structure)
in one extxyz file, the shipped ``ffield.reax.cho``. Three ways, measured in the same run:

* ``serial``: this process, a Python loop calling the workers' task function
  (``reaxgrad.batch_cmd.run_task``: same checks, same cached model); no Dask, no database;
* ``batch wN``: the command ``reaxgrad batch TASK ... --workers N`` end to end (cluster start,
  per-worker tracing, the driver writing one SQLite row per structure, a chunk's rows in one
  transaction), with its automatic chunking (``--chunk`` here passes a fixed size), and its
  steady rate from the rows' creation times (first to last row: without the start-up).

Reported: wall seconds, structures/s, the serial/batch ratio, and CPU seconds (this process
for the serial loop; the batch command with its workers, from getrusage of the children),
with the load average, since the machine may be shared: on a loaded machine compare CPU
seconds per structure rather than wall-clock ratios.

Measured with the automatic chunking (several structures per Dask task), this 2-core VM
shared with other sessions (load average 2.4-4.3 during the runs: compare the CPU seconds,
the wall-clock ratios move with the others' load; N=1000, md N=100 with 100 steps of
0.25 fs), fused C kernels (the default executor):

    task      run          wall s  struct/s  vs serial  CPU s  steady struct/s  failed
    energy    serial         5.58     179.2       1.00   5.41                        0
    energy    batch w1      12.89      77.6       0.43  12.72            108.7       0
    energy    batch w2      25.01      40.0       0.22  28.25             53.7       0
    minimize  serial        31.52      31.7       1.00  30.73                        1
    minimize  batch w1      45.04      22.2       0.70  49.14             25.1       1
    minimize  batch w2      37.32      26.8       0.84  69.16             31.7       1
    md        serial        13.48       7.4       1.00  13.42                        0
    md        batch w1      22.51       4.4       0.60  22.07              5.7       0
    md        batch w2      34.48       2.9       0.39  37.85              3.7       0

One task per structure (before chunking; load average 3.4-8 then, so the serial loop itself
was slower: energy 18.0 s wall / 5.5 s CPU, minimize 47.0 / 30.8, md 15.3 / 11.3):

    energy    batch w1      18.30      54.6       0.99  18.91             71.1       0
    energy    batch w2      20.61      48.5       0.87  25.09             64.3       0
    minimize  batch w1      58.13      17.2       0.81  44.69             19.2       1
    minimize  batch w2      73.94      13.5       0.64  63.49             15.8       1
    md        batch w1      28.30       3.5       0.54  19.30              4.5       0
    md        batch w2      32.00       3.1       0.48  28.82              4.4       0

Chunking took the energy batch on one worker from 18.9 to 12.7 s of CPU (the Dask cost per
structure is now per chunk of up to 64); what remains is fixed start-up (cluster and worker
processes, ~2 s of imports each, 4-5 s of CPU tracing ReaxFF for ~10 list-size classes per
worker) and ASE's write of each row (~1-2 ms of the driver's CPU), against only 1.3 s of
single points in all. Relaxations (~18 ms each) and MD runs (0.1 s) are not helped by it: a
task cost ~5 ms against their 18-130 ms, and their CPU seconds stay within the run-to-run
spread of this loaded machine. (The one failure: a rattled formaldehyde whose relaxation
drives an H into the C.)

Usage: python scripts/bench/batch.py [--n 1000] [--tasks energy minimize md] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDS = ["CH4", "H2O", "CH3OH", "C2H6", "CH3CH2OH", "H2CO", "C2H4", "HCOOH"]


def structures(n: int, path: Path):
    from ase.build import molecule
    from ase.io import read, write

    out = []
    for i in range(n):
        a = molecule(KINDS[i % len(KINDS)])
        a.rattle(0.05, seed=i)
        out.append(a)
    write(path, out)
    return read(path, ":")  # what the batch reads (extxyz rounds the positions)


MD_OPTIONS = ["--timestep", "0.25", "--steps", "100", "--temperature", "300", "--seed", "1"]


def task_options(task: str) -> dict:
    from reaxgrad import energy_cmd, md_cmd, minimize_cmd

    p = argparse.ArgumentParser()
    {"energy": energy_cmd.add_options, "minimize": minimize_cmd.add_options,
     "md": md_cmd.add_options}[task](p)
    if task == "md":
        p.add_argument("--interval", type=int, default=None)
    return vars(p.parse_args(MD_OPTIONS if task == "md" else []))


def serial(task: str, ffield: str, inp: Path, atoms_list) -> dict:
    """The workers' task function called in a loop here (same checks, same cached model,
    failures returned alike), without Dask and without a database."""
    from reaxgrad.batch_cmd import Job, run_task
    from reaxgrad.cluster import ffield_digest
    from reaxgrad.forcefields.ffield import read_ffield

    wall, cpu = time.perf_counter(), time.process_time()
    options, ff, digest = task_options(task), read_ffield(ffield), ffield_digest(ffield)
    failed = 0
    for i, atoms in enumerate(atoms_list):
        out = run_task(Job(task, options, digest, str(inp), i), ff, atoms)
        failed += out["status"] == "failed"
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "failed": failed}


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def batch(task: str, ffield: str, inp: Path, workers: int, db: Path,
          chunk: int | None = None) -> dict:
    from ase.db import connect

    cmd = [sys.executable, "-m", "reaxgrad.cli", "batch", task, str(inp), "--ffield", ffield,
           "--db", str(db), "--workers", str(workers), "--no-progress",
           *(MD_OPTIONS if task == "md" else []),
           *(["--chunk", str(chunk)] if chunk else [])]
    cpu0, wall = children_cpu(), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    if out.returncode not in (0, 1):  # 1: some structures failed, recorded as such
        raise SystemExit(f"batch failed ({out.returncode}):\n{out.stderr[-3000:]}")
    rows = list(connect(db).select(include_data=False))
    ctimes = sorted(r.ctime for r in rows)
    year = 365.25 * 86400  # ASE's ctime unit
    span = (ctimes[-1] - ctimes[0]) * year
    return {"wall": wall, "cpu": children_cpu() - cpu0,
            "steady": (len(ctimes) - 1) / span if span > 0 else float("nan"),
            "failed": sum(r.status == "failed" for r in rows)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="structures (default 1000)")
    ap.add_argument("--tasks", nargs="+", default=["energy", "minimize"],
                    choices=["energy", "minimize", "md"],
                    help="md: 100 steps of 0.25 fs from 300 K per structure")
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--chunk", type=int, default=None,
                    help="the batch's --chunk (default: its automatic chunking)")
    args = ap.parse_args(argv)
    from reaxgrad.forcefields.lammps_oracle import potential_path

    ffield = str(potential_path("ffield.reax.cho"))
    from reaxgrad.core.executors import resolve_backend

    print(f"load average at start: {os.getloadavg()}; cores: {os.cpu_count()}; jit executor: "
          f"{resolve_backend(None)} (REAXGRAD_JIT_BACKEND chooses); batch --chunk "
          f"{args.chunk or 'automatic'}")
    print(f"{'task':9s} {'run':10s} {'wall s':>8s} {'struct/s':>9s} {'vs serial':>9s} "
          f"{'CPU s':>8s} {'steady struct/s':>16s} {'failed':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.extxyz"
        atoms_list = structures(args.n, inp)
        for task in args.tasks:
            ref = serial(task, ffield, inp, atoms_list)
            print(f"{task:9s} {'serial':10s} {ref['wall']:8.2f} {args.n / ref['wall']:9.1f} "
                  f"{1.0:9.2f} {ref['cpu']:8.2f} {'':>16s} {ref['failed']:7d}", flush=True)
            for w in args.workers:
                r = batch(task, ffield, inp, w, Path(tmp) / f"{task}-w{w}.db", args.chunk)
                print(f"{task:9s} {f'batch w{w}':10s} {r['wall']:8.2f} "
                      f"{args.n / r['wall']:9.1f} {ref['wall'] / r['wall']:9.2f} "
                      f"{r['cpu']:8.2f} {r['steady']:16.1f} {r['failed']:7d}", flush=True)
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
