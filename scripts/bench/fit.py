"""Fitting benchmark (not a test) on the public JAX-ReaxFF training sets (../shared/data):

1. `reaxgrad evaluate` in a cold process at the input geometries, per set (and with the
   200-step in-loop relaxation of JAX-ReaxFF's README when --relax is given);
2. loss + gradient per call at fixed geometry (steady state, in process), per set;
3. the README fit (`--num_trials 1 --num_steps 20 --num_e_minim_steps 200 --e_minim_LR 1e-3
   --init_FF_type fixed` from ffield_lit) with --fit SET, optionally capped by --max-time.

With --jaxreaxff PATH (the `jaxreaxff` command of a JAX-ReaxFF install), the same evaluate
commands run through it in the same run and the ratios are printed; without it the peer's
figures from the issue (measured on the same kind of 2-core machine) are shown for reference.

    python scripts/bench/fit.py [--sets disulfide silica cobalt] [--relax] [--fit disulfide]
                                [--max-time 300] [--jaxreaxff /path/to/jaxreaxff]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "jaxreaxff"
# JAX-ReaxFF 0.2 + jax 0.4.30 on this 2-core machine (wall seconds of its cold runs, measured
# here with /usr/bin/time; cobalt with relaxation and the per-call and fit figures: the
# fitting issue's measurements on the same kind of machine)
PEER = {"evaluate": {"disulfide": 155.6, "silica": 155.2, "cobalt": 101.7},
        "evaluate_relax": {"disulfide": 224.0, "silica": 362.2, "cobalt": 527.0},
        "loss_and_grad": {"disulfide": 0.109, "silica": 1.49, "cobalt": 6.0},
        "fit": {"disulfide": (1102.0, 9255.0), "silica": (1380.0, 5277.0)}}


def flags(name, relax=False):
    d = DATA / name
    out = ["--init_FF", str(d / "ffield_lit"), "--params", str(d / "params"), "--geo",
           str(d / "geo"), "--train_file", str(d / "trainset.in")]
    if relax:
        out += ["--num_e_minim_steps", "200", "--e_minim_LR", "1e-3"]
    return out


def timed(cmd) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t, proc.stdout


def evaluate(name, relax, jaxreaxff):
    with tempfile.TemporaryDirectory() as tmp:
        ours, _ = timed([sys.executable, "-m", "reaxgrad.cli", "evaluate", *flags(name, relax),
                         "--num_trials", "0", "--out_folder", tmp, "--no-progress"])
        summary = json.loads((Path(tmp) / "summary.json").read_text())
        peer = None
        if jaxreaxff:
            peer, _ = timed([jaxreaxff, *flags(name, relax), "--num_trials", "0",
                             "--out_folder", tmp + "/peer"])
    return ours, summary, peer


def loss_and_grad(name, repeats=10):
    from reaxgrad.forcefields.ffield import read_ffield
    from reaxgrad.optimize.data import load_problem_inputs
    from reaxgrad.optimize.parameters import ParameterMap
    from reaxgrad.optimize.problem import FitProblem

    d = DATA / name
    ff = read_ffield(d / "ffield_lit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pmap = ParameterMap(ff, str(d / "params"))
        structures, sets = load_problem_inputs(ff, d / "geo", d / "trainset.in", strict=False)
    problem = FitProblem(pmap, structures, sets)
    t = time.perf_counter()
    problem.loss_and_grad(pmap.initial)
    first = time.perf_counter() - t
    times = []
    rng = np.random.default_rng(0)
    for _ in range(repeats):
        theta = pmap.initial * (1 + 1e-4 * rng.uniform(-1, 1, len(pmap)))
        t = time.perf_counter()
        problem.loss_and_grad(theta)
        times.append(time.perf_counter() - t)
    return first, float(np.median(times)), problem


def fit(name, max_time):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "reaxgrad.cli", "fit", *flags(name, True),
               "--num_trials", "1", "--num_steps", "20", "--init_FF_type", "fixed",
               "--out_folder", tmp, "--no-progress", "--no-sensitivity"]
        if max_time:
            cmd += ["--max_time", str(max_time)]
        wall, _ = timed(cmd)
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    return wall, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["disulfide", "silica", "cobalt"])
    ap.add_argument("--relax", action="store_true", help="also evaluate with relaxation")
    ap.add_argument("--fit", nargs="*", default=[], help="sets to run the README fit on")
    ap.add_argument("--max-time", type=float, default=None)
    ap.add_argument("--jaxreaxff", default=None, help="the jaxreaxff command (peer)")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"no data at {DATA}")
        return 1
    peer_label = "JAX-ReaxFF (this run)" if args.jaxreaxff else "JAX-ReaxFF (reference)"
    print(f"| evaluate (cold process) | reaxgrad s | {peer_label} s | ratio | lists s | "
          f"relax s | loss |")
    print("|---|---|---|---|---|---|---|")
    for relax in ([False, True] if args.relax else [False]):
        for name in args.sets:
            ours, summary, peer = evaluate(name, relax, args.jaxreaxff)
            peer = peer or PEER["evaluate_relax" if relax else "evaluate"][name]
            ph = summary["phases"]
            label = f"{name}{' + 200-step relaxation' if relax else ''}"
            print(f"| {label} | {ours:.1f} | {peer:.1f} | {peer / ours:.1f}x faster | "
                  f"{ph['lists']:.2f} | {ph['relax']:.2f} | {summary['loss']:.2f} |")
    print("\n| loss + gradient | first call (trace) s | per call s | JAX-ReaxFF s | ratio | "
          "structures | batches |")
    print("|---|---|---|---|---|---|---|")
    for name in args.sets:
        first, per_call, problem = loss_and_grad(name)
        peer = PEER["loss_and_grad"][name]
        print(f"| {name} | {first:.2f} | {per_call:.3f} | {peer} | {peer / per_call:.1f}x "
              f"faster | {len(problem.structures)} | {len(problem.batches)} |")
    for name in args.fit:
        wall, summary = fit(name, args.max_time)
        peer_wall, peer_loss = PEER["fit"].get(name, (float("nan"), float("nan")))
        losses = summary["loss_per_iteration"]
        print(f"\nREADME fit on {name}: {wall:.0f} s, loss {losses[0]:.0f} -> "
              f"{min(losses):.0f} (best), {len(losses)} outer iterations, "
              f"{summary['evaluations']} loss+grad calls; JAX-ReaxFF: {peer_wall:.0f} s, "
              f"-> {peer_loss:.0f}")
        print("  phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in
                                          summary["phases"].items()))
        print("  true loss per outer iteration (seconds since start: loss): " + ", ".join(
            f"{h['elapsed']:.0f}: {h['true_loss']:.0f}" for h in summary["history"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
