"""NVE energy drift benchmark (not a test): velocity Verlet on the PETN crystal (LAMMPS bench
data, ``ffield.reax.budzien``), QEq charges solved every step (dense, exact), convention
"consistent" (forces are the exact derivatives of the reported energy), interaction lists
reused with a Verlet skin.

Reports, in kcal/mol/atom: the drift (least-squares slope of the total energy E = PE + KE
against time, times the run length) and the largest |E(t) - E(0)|.

Where the energy goes. For velocity Verlet, exactly (LAMMPS real units, a = FTM2V F / m):

    E(k+1) - E(k) = J(k) + S(k+1) - S(k),   S = dt^2/8 FTM2V sum_i |F_i|^2 / m_i,
    J(k) = PE(k+1) - PE(k) + (F(k) + F(k+1))/2 . (x(k+1) - x(k)),

so E - S changes only by J, the potential's change minus the trapezoidal work of the forces
along the step. S is the integrator's bounded O(dt^2) fluctuation (it does not accumulate).
For a smooth potential whose forces are its gradient, J is the trapezoid rule's O(dx^3)
error; a discontinuity of the energy (ReaxFF's thresholds: bond orders below the cutoff that
drop bonds, angles and torsions whose bond-order products fall below thresholds, the
untapered H-bond cutoff) shows as one large J. Steps with |J| above ``--jump`` kcal/mol (and
``--jump-factor`` robust standard deviations of J) are counted as jumps, each attributed to
the energy term whose change departs most from its neighbours' trend. The goal stated by
the MD issue: |drift| <= 1e-4 kcal/mol/atom.

``--lammps`` runs LAMMPS (``fix nve`` + ``fix qeq/reaxff`` tolerance 1e-10, its own charge
convention) from the same positions and velocities and reports the same drift figures.

A CSV (step, time_fs, pe, ke, total [, J, S, the 14 terms with --terms], kcal/mol) is written
atomically every ``--save-every`` steps and at the end.

Measured (464 atoms, 300 K, 10^4 steps of 0.1 fs): drift 2.5e-4, max |E(t) - E(0)| 4.3e-3
kcal/mol/atom (LAMMPS from the same state: 1.7e-3 and 5.0e-3). S varies by only 6e-5: the
excursions are all J, i.e. the potential's discontinuities, the same in LAMMPS. Two kinds:
(1) 44 jumps of ~0.5 kcal/mol in ``ehb``: a donor X-H bond order crossing LAMMPS's 0.01
threshold switches on or off every H-bond that X-H has with acceptors within 7.5 Å at once
(seen: O...H at 1.90 Å, BO 0.00986 -> 0.01002, ~90 acceptors, -0.54 kcal/mol). They come
and go in pairs: their running sum reaches 2.2e-3 kcal/mol/atom, 1.3e-4 at the end.
(2) A steady stream of 0.002-0.05 kcal/mol steps in ``eco``: the 4-body conjugation's f12
factor does not vanish at the torsion thresholds (each BO > thb_cutoff and their product >
thb_cutoff), so quadruples enter and leave the torsion list with a finite energy, tens of
times per fs (93 % of the 0.1 fs steps have |J| > 1e-3 kcal/mol; one 0.025 fs step scanned
finely held four). Their random walk reaches 3.3e-3 kcal/mol/atom (-6e-5 at the end).
Velocity Verlet contributes only S: a smaller dt does not shrink the excursions (dt = 0.1,
0.05, 0.025 fs over the same 3 fs: max |E - E0| 3.9e-4 kcal/mol/atom each).

    python scripts/bench/nve_drift.py [--steps 10000] [--atoms-rep 2] [--dt 0.1]
        [--temperature 300] [--out /tmp/nve_drift.csv] [--lammps]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread unless asked otherwise: the 464-atom dense QEq solve takes ~4 ms either way,
# but OpenBLAS's spinning threads slow it 10-100x on a machine shared with other processes.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reaxff_vs_lammps import petn  # noqa: E402

from reaxgrad.forcefields import lammps_oracle as lo  # noqa: E402
from reaxgrad.forcefields.reaxff.model import TERMS, ReaxFF  # noqa: E402
from reaxgrad.md import dynamics as d  # noqa: E402
from reaxgrad.md.forces import TrajectoryForces  # noqa: E402
from reaxgrad.md.units import FTM2V  # noqa: E402

FS_PER_PS = 1000.0


def write_csv(path, columns, data):
    """Write rows of ``data`` under ``columns`` to ``path`` atomically (temporary + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    data = np.asarray(data, dtype=float)
    try:
        with os.fdopen(fd, "w") as f:
            np.savetxt(f, data, delimiter=",", header=",".join(columns), comments="",
                       fmt=["%d", "%.12g"] + ["%.15e"] * (data.shape[1] - 2))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def robust_sd(x):
    x = np.asarray(x)
    return 1.4826 * float(np.median(np.abs(x - np.median(x)))) if len(x) else 0.0


def term_culprit(terms, k):
    """The term whose change over step k (terms[k] -> terms[k+1]) departs most from the mean
    of its changes over the neighbouring steps, and that departure (kcal/mol)."""
    dterms = np.diff(terms, axis=0)
    lo_k, hi_k = max(k - 1, 0), min(k + 1, len(dterms) - 1)
    residual = dterms[k] - 0.5 * (dterms[lo_k] + dterms[hi_k])
    worst = int(np.argmax(np.abs(residual)))
    return TERMS[worst], float(residual[worst])


def analyse(label, n, times_fs, pe, ke, jumps_j=None, shadow=None, terms=None, *,
            jump_abs=1e-3, jump_factor=10.0, goal=1e-4):
    """Print the drift figures of one run (energies in kcal/mol, per atom in the output)."""
    total = np.asarray(pe) + np.asarray(ke)
    t_ps = np.asarray(times_fs) / FS_PER_PS
    slope, _ = np.polyfit(t_ps, total, 1)
    span = t_ps[-1] - t_ps[0]
    dev = total - total[0]
    print(f"\n{label}: {len(total) - 1} steps, {span:g} ps")
    print(f"  drift (fit slope x time)     {slope * span / n:+.3e} kcal/mol/atom "
          f"({slope / n:+.3e} per ps)")
    print(f"  max |E(t)-E(0)|              {np.abs(dev).max() / n:.3e} kcal/mol/atom")
    print(f"  E(end)-E(0)                  {dev[-1] / n:+.3e} kcal/mol/atom")
    print(f"  KE standard deviation        {np.std(ke) / n:.3e} kcal/mol/atom (PE<->KE exchange, "
          f"for scale)")
    verdict = "meets" if max(abs(slope * span), np.abs(dev).max()) / n <= goal else "misses"
    print(f"  goal |drift| <= {goal:g} kcal/mol/atom: {verdict} it")
    if jumps_j is None:
        if terms is not None:  # no forces: jumps from the step-to-step change of E
            de = np.diff(total)
            resid = de - np.convolve(np.pad(de, 1, mode="edge"), [0.5, 0, 0.5], "valid")
            big = np.nonzero(np.abs(resid) > max(jump_abs, jump_factor * robust_sd(resid)))[0]
            culprits = {}
            for k in big:
                term, _ = term_culprit(terms, k)
                culprits.setdefault(term, []).append(de[k])
            print(f"  steps whose dE departs from its neighbours' by > "
                  f"max({jump_abs:g} kcal/mol, {jump_factor:g} sd): {len(big)}, by term: "
                  + ", ".join(f"{t} {len(v)}" for t, v in
                              sorted(culprits.items(), key=lambda kv: -len(kv[1]))))
        return
    j = np.asarray(jumps_j)
    s = np.asarray(shadow)
    mod = total - s
    threshold = max(jump_abs, jump_factor * robust_sd(j))
    big = np.nonzero(np.abs(j) > threshold)[0]
    print(f"  E - S (S = dt^2/8 sum F^2/m): max |dev| {np.abs(mod - mod[0]).max() / n:.3e}, "
          f"end {(mod[-1] - mod[0]) / n:+.3e} kcal/mol/atom; S itself varies by "
          f"{(s.max() - s.min()) / n:.3e}")
    print(f"  sum of J (non-conservative energy change): {j.sum() / n:+.3e} kcal/mol/atom; "
          f"|J| per step: median {np.median(np.abs(j)):.2e}, robust sd {robust_sd(j):.2e} "
          f"kcal/mol")
    print(f"  jumps (|J| > {threshold:.2e} kcal/mol): {len(big)}, summing to "
          f"{j[big].sum() / n:+.3e} kcal/mol/atom (|J| summed: {np.abs(j[big]).sum() / n:.3e});"
          f" the other steps' J sum to {(j.sum() - j[big].sum()) / n:+.3e}")
    if terms is not None and len(big):
        by_term = {}
        for k in big:
            term, _ = term_culprit(terms, k)
            by_term.setdefault(term, []).append(j[k])
        for term, js in sorted(by_term.items(), key=lambda kv: -len(kv[1])):
            js = np.asarray(js)
            print(f"    {term:5s}: {len(js):5d} jumps, |J| median {np.median(np.abs(js)):.2e}, "
                  f"largest {np.abs(js).max():.2e}, sum {js.sum():+.3e} kcal/mol")


def run_lammps(atoms, ffield, velocities, dt, steps, tolerance=1e-10):
    """(times fs, pe, ke, terms (steps+1, 14)) of a LAMMPS NVE run from the same state."""
    lammps = lo.import_lammps()
    header = lo.read_ffield_header(ffield)
    symbols = atoms.get_chemical_symbols()
    n = len(symbols)
    frame = lo.to_lammps_frame(atoms)
    pair_style = (f"pair_style reaxff NULL checkqeq yes lgvdw "
                  f"{'yes' if header['lgvdw'] else 'no'} enobonds yes")
    lines, elements = lo._setup_lines(frame, symbols, header, ffield, pair_style)
    gp = header["general"]
    fd, log = tempfile.mkstemp(prefix="reaxgrad_drift_", suffix=".log")
    os.close(fd)
    lmp = lo._new_instance(lammps)
    try:
        lmp.commands_list(lines)
        lo._create_atoms(lmp, frame, symbols, elements, np.zeros(n))
        ids = lmp.numpy.extract_atom("id")[:n]
        lmp.numpy.extract_atom("v")[:n] = (np.asarray(velocities) @ frame.rotation)[ids - 1]
        terms = " ".join(f"c_reax[{k}]" for k in range(1, 15))
        lmp.commands_list([
            f"fix qeq all qeq/reaxff 1 {lo._num(gp[11])} {lo._num(gp[12])} "
            f"{lo._num(tolerance)} reaxff maxiter 1000",
            "fix nve all nve", f"timestep {lo._num(dt)}", "compute reax all pair reaxff",
            f"thermo_style custom step pe ke {terms}", "thermo_modify format float %.15g",
            "thermo 1", f"log {log}", f"run {int(steps)}", "log none"])
    finally:
        lmp.close()
    rows = []
    for line in Path(log).read_text().splitlines():
        parts = line.split()
        if len(parts) == 17 and parts[0].isdigit():
            rows.append([float(p) for p in parts])
    os.unlink(log)
    data = np.asarray(rows)
    return data[:, 0] * dt, data[:, 1], data[:, 2], data[:, 3:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--atoms-rep", type=int, default=2,
                    help="PETN unit cells per axis (58 atoms each; 2 -> 464 atoms)")
    ap.add_argument("--dt", type=float, default=0.1, help="time step (fs)")
    ap.add_argument("--temperature", type=float, default=300.0,
                    help="initial temperature (K), Maxwell-Boltzmann, zero momentum")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--skin", type=float, default=0.3, help="list skin (Å)")
    ap.add_argument("--ffield", default="ffield.reax.budzien")
    ap.add_argument("--out", default="/tmp/nve_drift.csv")
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--progress-every", type=int, default=200)
    ap.add_argument("--jump", type=float, default=1e-3, help="jump threshold on |J| (kcal/mol)")
    ap.add_argument("--jump-factor", type=float, default=10.0,
                    help="... and on |J| / robust standard deviation of J")
    ap.add_argument("--terms", action="store_true",
                    help="also write the 14 per-term energies to the CSV")
    ap.add_argument("--lammps", action="store_true",
                    help="also run LAMMPS NVE from the same state and compare")
    args = ap.parse_args()

    atoms = petn(args.atoms_rep)
    n = len(atoms)
    ffield = lo.potential_path(args.ffield)
    model = ReaxFF(ffield, convention="consistent")
    symbols = atoms.get_chemical_symbols()
    masses = np.asarray(model.params["mass"])[model.types_of(symbols)]
    v0 = d.maxwell_boltzmann(masses, args.temperature, np.random.default_rng(args.seed))
    forces = TrajectoryForces(model, symbols, atoms.pbc, skin=args.skin)
    md = d.nve(forces, args.dt)
    print(f"PETN {args.atoms_rep}^3: {n} atoms, {ffield.name}, convention consistent, "
          f"QEq solver {model.solver_for(n)}, dt {args.dt} fs, T0 {args.temperature} K, "
          f"{args.steps} steps ({args.steps * args.dt / FS_PER_PS:g} ps), skin {args.skin} Å; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)

    t0 = time.perf_counter()
    state = md.init(atoms.positions, v0, masses, atoms.cell.array, atoms.pbc)
    s_factor = args.dt**2 / 8.0 * FTM2V

    def shadow(state):
        f = state.forces.forces
        return s_factor * float(np.einsum("nd,nd,n->", f, f, 1.0 / state.masses))

    columns = ["step", "time_fs", "pe", "ke", "total", "J", "S"] + (
        list(TERMS) if args.terms else [])
    rows, terms = [], []

    def record(state, j):
        pe = float(state.forces.energy)
        ke = float(d.kinetic_energy(state.velocities, state.masses))
        rows.append((state.step, state.time, pe, ke, pe + ke, j, shadow(state)))
        terms.append([float(state.forces.terms[k]) for k in TERMS])

    def table():
        return np.column_stack([rows, terms]) if args.terms else rows

    record(state, 0.0)
    start = time.perf_counter()
    print(f"first evaluation (compiles) {start - t0:.1f} s; E0 = {rows[0][4]:.6f} kcal/mol",
          flush=True)
    for k in range(1, args.steps + 1):
        previous = state
        state = md.step(state)
        work = 0.5 * float(np.sum((previous.forces.forces + state.forces.forces)
                                  * (state.positions - previous.positions)))
        record(state, float(state.forces.energy) - float(previous.forces.energy) + work)
        if k % args.save_every == 0:
            write_csv(args.out, columns, table())
        if k % args.progress_every == 0 or k == args.steps:
            el = time.perf_counter() - start
            dev = (rows[-1][4] - rows[0][4]) / n
            temp = float(d.temperature(state.velocities, masses))
            print(f"step {k:6d}  {el:8.0f} s ({el / k:.3f} s/step, ETA "
                  f"{el / k * (args.steps - k):.0f} s)  T {temp:7.1f} K"
                  f"  (E-E0)/N {dev:+.3e}  rebuilds {forces.rebuilds}", flush=True)
    wall = time.perf_counter() - start
    write_csv(args.out, columns, table())
    data = np.asarray(rows)
    print(f"\n{args.steps} steps in {wall:.0f} s ({wall / args.steps:.3f} s/step), "
          f"{forces.rebuilds} list builds; T final {d.temperature(state.velocities, masses):.1f}"
          f" K; CSV: {args.out}")
    common = {"jump_abs": args.jump, "jump_factor": args.jump_factor}
    analyse("reaxgrad (convention consistent)", n, data[:, 1], data[:, 2], data[:, 3],
            data[:, 5][1:], data[:, 6], np.asarray(terms), **common)
    if args.lammps:
        t0 = time.perf_counter()
        t_l, pe_l, ke_l, terms_l = run_lammps(atoms, ffield, v0, args.dt, args.steps)
        print(f"\nLAMMPS run: {time.perf_counter() - t0:.0f} s; E0 {pe_l[0] + ke_l[0]:.6f} "
              f"kcal/mol (its charge convention)")
        analyse("LAMMPS fix nve + qeq/reaxff 1e-10", n, t_l, pe_l, ke_l, terms=terms_l,
                **common)


if __name__ == "__main__":
    main()
