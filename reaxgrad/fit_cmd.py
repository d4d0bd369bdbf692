"""`reaxgrad evaluate` and `reaxgrad fit`: JAX-ReaxFF's driver flags verbatim (so its command
lines run by changing the program name) plus kebab-case synonyms; outputs in --out_folder.
With --workers / --scheduler-* / --cluster (``reaxgrad.cluster``) the clusters of structures,
the in-loop relaxation and the implicit geometry run on Dask workers
(``optimize.distributed``), with the same results as a serial run."""
from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .cluster import add_cluster_options, open_client

# (JAX-ReaxFF flag, synonyms, argparse keywords)
_FLAGS = [
    ("--init_FF", ["--init-ff", "--ffield"], dict(default="ffield", help="initial force field")),
    ("--params", [], dict(default="params", help="params file: what to fit, with bounds")),
    ("--geo", [], dict(default="geo", help="geometry file (BGF blocks)")),
    ("--train_file", ["--train-file", "--trainset"],
     dict(default="trainset.in", help="training set")),
    ("--use_valid", ["--use-valid"], dict(default=False, type=lambda s: _boolean(s),
                                           help="use the validation set (True/False)")),
    ("--valid_file", ["--valid-file"], dict(default="validset.in", help="validation set")),
    ("--valid_geo_file", ["--valid-geo-file"], dict(default="valid_geo",
                                                    help="geo file of the validation set")),
    ("--opt_method", ["--opt-method"], dict(default="L-BFGS-B", choices=["L-BFGS-B", "SLSQP"])),
    ("--num_trials", ["--num-trials"], dict(type=int, default=1,
                                            help="trials; <= 0: evaluate init_FF only")),
    ("--num_steps", ["--num-steps"], dict(type=int, default=5, help="outer iterations")),
    ("--init_FF_type", ["--init-ff-type"], dict(default="fixed",
                                                choices=["random", "educated", "fixed"])),
    ("--random_sample_count", ["--random-sample-count"], dict(type=int, default=0)),
    ("--num_e_minim_steps", ["--num-e-minim-steps"],
     dict(type=int, default=0, help="relaxation steps before every true loss")),
    ("--e_minim_LR", ["--e-minim-lr"], dict(type=float, default=5e-4)),
    ("--end_RMSG", ["--end-rmsg"], dict(type=float, default=1.0)),
    ("--out_folder", ["--out-folder", "--out"], dict(default="outputs")),
    ("--save_opt", ["--save-opt"], dict(default="best", choices=["all", "best"])),
    ("--bonded_cutoff", ["--bonded-cutoff"], dict(type=float, default=5.0)),
    ("--cutoff2", [], dict(type=float, default=0.001, help="BO cutoff of angles, torsions")),
    ("--max_num_clusters", ["--max-num-clusters"], dict(type=int, default=10)),
    ("--perc_noise_when_stuck", ["--perc-noise-when-stuck"], dict(type=float, default=0.04)),
    ("--seed", [], dict(type=int, default=0)),
    ("--max_time", ["--max-time"], dict(type=float, default=None, help="seconds")),
]


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _boolean(text: str) -> bool:
    low = str(text).strip().lower()
    if low in ("1", "true", "yes", "y", "t"):
        return True
    if low in ("0", "false", "no", "n", "f", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def add_parsers(sub) -> None:
    for name, text in (("evaluate", "score a force field on a training set"),
                       ("fit", "fit force-field parameters to a training set")):
        p = sub.add_parser(name, help=text, description=text + " (JAX-ReaxFF's flags)")
        for flag, synonyms, kw in _FLAGS:
            p.add_argument(flag, *synonyms, dest=flag[2:], **kw)
        p.add_argument("--minimizer", choices=["sd", "fire", "lbfgs"], default="sd",
                       help="in-loop relaxation: JAX-ReaxFF's steepest descent, FIRE, L-BFGS")
        p.add_argument("--geometry-gradients", choices=["fixed", "implicit"], default="implicit",
                       help="geometry items' gradients: implicit through the relaxed minimum "
                            "(default: fits better) or held fixed (JAX-ReaxFF)")
        p.add_argument("--convention", choices=["jaxreaxff", "lammps", "consistent"],
                       default="jaxreaxff", help="charges and forces (default: JAX-ReaxFF's)")
        p.add_argument("--items", choices=["jaxreaxff", "all"], default="jaxreaxff",
                       help="categories in the loss: JAX-ReaxFF's, or also CELL, RMSG, HEATFO")
        p.add_argument("--restart", action="store_true",
                       help="resume from --out_folder/checkpoint.json")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--strict", action="store_true",
                       help="refuse what JAX-ReaxFF tolerates with a warning: items naming a "
                            "structure absent from the geo file, params bounds min > max")
        if name == "fit":
            p.add_argument("--no-sensitivity", action="store_true",
                           help="skip the loss Hessian and sensitivity.json at the end")
            p.add_argument("--demo", action="store_true",
                           help="fit a small problem made on the spot (under a minute)")
        add_cluster_options(p)
        p.set_defaults(func=run_command, command_name=name)


def run_command(args) -> int:
    try:
        if getattr(args, "demo", False):
            from .fit_demo import prepare_demo

            prepare_demo(args)
        return _run(args)
    except CommandError as err:
        print(f"reaxgrad {args.command_name}: error: {err}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as err:  # input files: InputFileError is a ValueError
        print(f"reaxgrad {args.command_name}: error: {err}", file=sys.stderr)
        return 2


def _setup(args):
    from reaxgrad.forcefields.ffield import read_ffield
    from reaxgrad.forcefields.params_file import read_params
    from reaxgrad.optimize.data import load_problem_inputs
    from reaxgrad.optimize.items import CATEGORIES_ALL, JAXREAXFF_CATEGORIES
    from reaxgrad.optimize.parameters import ParameterMap
    from reaxgrad.optimize.problem import FitProblem
    from reaxgrad.optimize.relax import Relaxer

    for flag in ("init_FF", "params", "geo", "train_file"):
        if not Path(getattr(args, flag)).is_file():
            raise CommandError(f"--{flag} {getattr(args, flag)}: no such file")
    if args.use_valid:
        for flag in ("valid_file", "valid_geo_file"):
            if not Path(getattr(args, flag)).is_file():
                raise CommandError(f"--{flag} {getattr(args, flag)}: no such file")
    t = time.perf_counter()
    ff = read_ffield(args.init_FF)
    valid = (args.valid_file, args.valid_geo_file) if args.use_valid else (None, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pmap = ParameterMap(ff, read_params(args.params, strict=args.strict))
        structures, item_sets = load_problem_inputs(ff, args.geo, args.train_file, *valid,
                                                    strict=args.strict)
    notes = [str(w.message) for w in caught]
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    if len(pmap) == 0 and args.command_name == "fit":
        raise CommandError(f"{args.params}: no parameters to fit")
    read_seconds = time.perf_counter() - t
    control = {"nbrhood_cutoff": args.bonded_cutoff, "thb_cutoff": args.cutoff2}
    scored = JAXREAXFF_CATEGORIES if args.items == "jaxreaxff" else CATEGORIES_ALL
    problem = FitProblem(pmap, structures, item_sets, convention=args.convention,
                         scored=scored, max_clusters=args.max_num_clusters, control=control)
    relaxer = Relaxer(problem, max_clusters=args.max_num_clusters)
    return pmap, problem, relaxer, notes, read_seconds


def _settings(args):
    from reaxgrad.optimize.driver import Settings

    if not 0.0 <= args.perc_noise_when_stuck <= 0.1:
        raise CommandError(f"--perc_noise_when_stuck {args.perc_noise_when_stuck}: allowed "
                           "range is [0.0, 0.1] (as JAX-ReaxFF)")
    if args.max_num_clusters < 1:
        raise CommandError(f"--max_num_clusters {args.max_num_clusters}: must be >= 1")

    return Settings(num_trials=max(args.num_trials, 0), num_steps=args.num_steps,
                    opt_method=args.opt_method, init_type=args.init_FF_type,
                    random_sample_count=args.random_sample_count,
                    num_e_minim_steps=args.num_e_minim_steps, e_minim_lr=args.e_minim_LR,
                    end_rmsg=args.end_RMSG, minimizer=args.minimizer,
                    geometry_gradients=args.geometry_gradients,
                    perc_noise_when_stuck=args.perc_noise_when_stuck, seed=args.seed,
                    max_time=args.max_time)


def _fingerprint(args) -> str:
    """What a checkpoint must agree with to be resumed."""
    keys = ["params", "geo", "train_file", "use_valid", "valid_file", "valid_geo_file",
            "opt_method", "num_trials", "num_steps", "init_FF_type", "random_sample_count",
            "num_e_minim_steps", "e_minim_LR", "end_RMSG", "seed", "minimizer",
            "convention", "items", "cutoff2", "bonded_cutoff", "perc_noise_when_stuck",
            "geometry_gradients"]
    h = hashlib.sha256()
    for k in keys:
        h.update(f"{k}={getattr(args, k)};".encode())
    for k in ("init_FF", "params", "geo", "train_file"):
        h.update(Path(getattr(args, k)).read_bytes())
    return h.hexdigest()


def _run(args) -> int:
    started = time.perf_counter()
    settings = _settings(args)
    setup = _setup(args)
    with open_client(args) as client:
        if client is None:
            return _run_with(args, settings, setup, started)
        from reaxgrad.optimize.distributed import DaskExecutor

        problem = setup[1]
        with DaskExecutor(client, problem) as executor:
            problem.executor = executor
            try:
                return _run_with(args, settings, setup, started)
            finally:
                problem.executor = problem.local_executor()


def _run_with(args, settings, setup, started) -> int:
    from reaxgrad.optimize.driver import Fit, State, state_from_dict, state_to_dict
    from reaxgrad.optimize.report import write_json

    out = Path(args.out_folder)
    pmap, problem, relaxer, notes, read_seconds = setup
    phases = {"read": read_seconds, "lists": 0.0, "relax": 0.0, "true_loss": 0.0,
              "optimizer": 0.0}
    fitting = args.command_name == "fit" and args.num_trials > 0
    if not fitting:
        fit = Fit(problem, relaxer, settings)
        fit.relax(pmap.initial)
        evaluation = problem.evaluate(pmap.initial)
        phases.update(fit.seconds)
        _finish(args, out, problem, pmap.initial, evaluation, history=[], state=None,
                phases=phases, notes=notes, started=started)
        return 0

    checkpoint_path = out / "checkpoint.json"
    fingerprint = _fingerprint(args)
    state = None
    if args.restart and checkpoint_path.exists():
        saved = json.loads(checkpoint_path.read_text())
        if saved.get("fingerprint") != fingerprint:
            raise CommandError(f"{checkpoint_path} was written for other inputs or flags; "
                               "remove it or run without --restart")
        state = state_from_dict(saved["state"])
        print(f"resuming from {checkpoint_path}: trial {state.trial + 1}, "
              f"iteration {state.iteration}", file=sys.stderr)

    def checkpoint(st: State):
        write_json(checkpoint_path, {"fingerprint": fingerprint, "state": state_to_dict(st)})

    bar = None if args.no_progress else _progress_bar(settings)

    def progress(st: State, message=""):
        last = st.history[-1]
        line = (f"trial {last['trial']} iteration {last['iteration']}: loss "
                f"{last['true_loss']:.6g}")
        if "surrogate" in last:
            line += f" -> {last['surrogate']:.6g} after {last['nfev']} evaluations"
        if last.get("noise"):
            line += " (stuck: noise added)"
        line += f", best {last['best']:.6g}"
        if bar is None:
            print(line, file=sys.stderr)
            return
        bar.write(line)
        bar.update(1)
        bar.set_postfix(trial=last["trial"], loss=f"{last['true_loss']:.6g}",
                        best=f"{last['best']:.6g}")

    fit = Fit(problem, relaxer, settings, checkpoint=checkpoint, progress=progress,
              state=state)
    if bar is not None and state is not None:
        bar.update(len(state.history))
    interrupted = False
    previous = signal.getsignal(signal.SIGINT)
    try:
        fit.run()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    st = fit.state
    best = st.best_params if st.best_loss <= st.global_min else st.global_min_params
    best = np.array(best if best is not None else pmap.initial)
    fit.relax(best)
    evaluation = problem.evaluate(best)
    phases.update(fit.seconds)
    _finish(args, out, problem, best, evaluation, history=st.history, state=st,
            phases=phases, notes=notes, started=started)
    if getattr(args, "demo", False):
        from .fit_demo import print_recovery

        print_recovery(args, pmap, best)
    if interrupted:
        print(f"interrupted: the best force field so far is in {out / 'ffield_best'}",
              file=sys.stderr)
        return 130
    return 0


def _worker_count(problem) -> int:
    """Dask workers the run used (0: serial)."""
    workers = getattr(problem.executor, "workers", None)
    return len(workers()) if workers else 0


def _progress_bar(settings):
    from tqdm import tqdm

    total = max(settings.num_trials, 1) * (settings.num_steps + 1)
    return tqdm(total=total, desc="fit", unit="iter", file=sys.stderr, dynamic_ncols=True)


def _finish(args, out: Path, problem, theta, evaluation, *, history, state, phases, notes,
            started) -> None:
    from reaxgrad.forcefields.ffield import format_ffield
    from reaxgrad.optimize.report import (
        loss_plot,
        parity_plots,
        write_atomic,
        write_json,
        write_reports,
    )

    out.mkdir(parents=True, exist_ok=True)
    fitting = state is not None
    if fitting:
        write_atomic(out / "ffield_best", format_ffield(problem.pmap.forcefield(theta)))
        if args.save_opt == "all":
            for trial in state.trials:
                ff = problem.pmap.forcefield(np.array(trial["params"]))
                write_atomic(out / f"ffield_trial{trial['trial']}", format_ffield(ff))
        loss_plot(out, history)
        if not getattr(args, "no_sensitivity", False):
            from reaxgrad.optimize.sensitivity import sensitivity_plot, sensitivity_report

            t = time.perf_counter()
            report = sensitivity_report(problem, theta)
            write_json(out / "sensitivity.json", report)
            sensitivity_plot(out / "sensitivity.png", report)
            phases["sensitivity"] = time.perf_counter() - t
    for name, ev in evaluation.items():
        prefix = "" if name == "train" else f"{name}_"
        write_reports(out, problem.tables[name], ev, prefix=prefix)
        parity_plots(out, problem.tables[name], ev, prefix=prefix)
    timings = problem.timings
    summary = {
        "command": args.command_name,
        "loss": evaluation["train"].loss,
        "categories": evaluation["train"].categories,
        "validation_loss": evaluation["valid"].loss if "valid" in evaluation else None,
        "loss_per_iteration": [h["true_loss"] for h in history],
        "history": history,
        "evaluations": timings.evaluations,
        "wall_time": time.perf_counter() - started,
        "phases": {**phases, "lists": timings.lists, "loss_and_grad": timings.loss},
        "compiles": problem.compile_counts(),
        "batches": [{"structures": info["structures"], "entries": info["counts"],
                     "capacity": info["capacities"], "padding": info["padding"]}
                    for info in problem.cluster_info if info is not None],
        "workers": _worker_count(problem),
        "recomputed_vjps": timings.recomputed,
        "structures": len(problem.structures),
        "parameters": len(problem.pmap),
        "warnings": notes,
    }
    write_json(out / "summary.json", summary)
    ev = evaluation["train"]
    cats = ", ".join(f"{k} {v:.6g}" for k, v in ev.categories.items())
    print(f"loss {ev.loss:.6f} ({cats})")
    if "valid" in evaluation:
        print(f"validation loss {evaluation['valid'].loss:.6f}")
    print(f"outputs in {out}")
