"""Distributed fitting benchmark (not a test): `reaxgrad fit` on the silica set of the JAX-ReaxFF
paper (../shared/data/jaxreaxff/silica: ffield_lit, params, geo, trainset.in), serially and on
a LocalCluster of 1 and 2 worker processes (`--workers N`), each in a cold process (serial twice:
the default kernel threads, and one thread like a worker); wall time,
CPU time of the run and everything it started (driver, nannies, workers), and whether every
run wrote the same ffield_best (they must: the reductions are done in a fixed order).

    python scripts/bench/fit_distributed.py [--steps 2] [--relax 0] [--workers 1 2]

Silica has 302 structures in 2 clusters (272 structures / 2,211 atoms, 30 / 961; the second
costs ~1.6x the first), 67 parameters; the fit's cost is the loss + gradient calls of the
L-BFGS-B iterations, so 2 workers can at best run the two clusters side by side.

Measured here with the fused backend (2-core machine shared with other sessions: load average
4-6 during every run, so wall times mostly measure the neighbours; CPU time is the better
guide). Every run wrote the same ffield_best and the same losses per iteration.

--steps 2, no relaxation (229 loss + gradient calls), commit 8bd381f:

    | run              | wall s | CPU s | load | wall vs serial |
    | serial           |   63.7 |  54.9 | 5.95 | 1.00x |
    | serial, 1 thread |   48.8 |  45.8 | 5.36 | 1.30x |
    | 1 worker         |   95.2 |  78.0 | 4.39 | 0.67x |
    | 2 workers        |  128.4 |  88.6 | 4.14 | 0.50x |

(an earlier run of the same, load 3.8-5.2: serial 172.8 s wall / 125.8 s CPU, 1 worker 86.0 /
76.9, 2 workers 72.1 / 75.4: wall ratios swing by 3x with the load; CPU is stable.)

--steps 1 --relax 200 (108 calls, three 200-step relaxations of 235 structures in 2 groups),
commit 9586246: serial 92.9 s wall / 70.4 s CPU, 1 worker 102.9 / 85.4, 2 workers 98.6 / 100.3.

What the CPU says: a worker computes what the serial run computes (0.23 s CPU per loss +
gradient either way, measured in process); the distributed run adds ~0.044 s of driver CPU
per call (4 Dask tasks: 2 clusters x 2 rounds, the scheduler of a LocalCluster runs in the
driver) and ~10 s of worker start-up (imports, problem, tracing). Silica's evaluation (0.2 s,
2 clusters) is too small to gain on 2 busy cores; distribution pays when a call's work per
worker is well above the ~10 ms per task of Dask's overhead.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "jaxreaxff" / "silica"


def run(out: Path, steps: int, relax: int, workers: int | None, threads=None) -> dict:
    cmd = [sys.executable, "-m", "reaxgrad.cli", "fit", "--init_FF", str(DATA / "ffield_lit"),
           "--params", str(DATA / "params"), "--geo", str(DATA / "geo"), "--train_file",
           str(DATA / "trainset.in"), "--num_trials", "1", "--num_steps", str(steps),
           "--init_FF_type", "fixed", "--out_folder", str(out), "--no-progress",
           "--no-sensitivity"]
    if relax:
        cmd += ["--num_e_minim_steps", str(relax), "--e_minim_LR", "1e-3"]
    if workers:
        cmd += ["--workers", str(workers)]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    env = dict(os.environ)
    if threads:  # the driver's kernel and BLAS threads (workers always have one)
        env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                              "REAXGRAD_NUM_THREADS")})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"wall": wall, "load": load,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "summary": summary, "ffield": (out / "ffield_best").read_text()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2, help="outer iterations (--num_steps)")
    ap.add_argument("--relax", type=int, default=0, help="--num_e_minim_steps")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"no data at {DATA}")
        return 1
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs["serial"] = run(Path(tmp) / "serial", args.steps, args.relax, None)
        runs["serial, 1 thread"] = run(Path(tmp) / "serial1", args.steps, args.relax, None, 1)
        for n in args.workers:
            label = f"{n} worker{'s' if n > 1 else ''}"
            runs[label] = run(Path(tmp) / label.replace(" ", "_"), args.steps, args.relax, n)
    base = runs["serial"]
    from reaxgrad.core.executors import resolve_backend

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    print(f"silica fit, {args.steps} outer iterations, relaxation {args.relax} steps, "
          f"{base['summary']['evaluations']} loss+gradient calls; jit backend "
          f"{resolve_backend(None)}, commit {commit}")
    print("| run | wall s | CPU s (all processes) | load avg at start | wall vs serial | "
          "loss+grad s | same ffield_best |")
    print("|---|---|---|---|---|---|---|")
    for label, r in runs.items():
        ph = r["summary"]["phases"]
        print(f"| {label} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['load']:.2f} | "
              f"{base['wall'] / r['wall']:.2f}x | {ph['loss_and_grad']:.1f} | "
              f"{r['ffield'] == base['ffield']} |")
    same = all(r["ffield"] == base["ffield"] for r in runs.values())
    losses = {label: r["summary"]["loss_per_iteration"] for label, r in runs.items()}
    print("true loss per iteration:", json.dumps(losses))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
