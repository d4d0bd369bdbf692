"""`reaxgrad minimize INPUT --ffield F --output OUT`: relax a structure's atoms (and, with
``--relax-cell``, its cell under an external pressure) with ASE's FIRE or L-BFGS.

The optimizers are ASE's LBFGS (default) and FIRE, step for step (reaxgrad.md.minimize).
Units are ASE's: ``--fmax`` in eV/Å (largest atomic force, as ``ase.optimize``), energies in
eV (also printed in kcal/mol), ``--pressure`` in GPa. The output (format from its extension;
extxyz keeps everything) holds the final structure with its energy, forces, stress (periodic
cells) and charges as calculator results, so ``ase.io.read(OUT).get_potential_energy()``
works. Outputs are written to temporary files and renamed at the end.

Exit status: 0 converged; 1 not converged within ``--steps`` (the last structure is still
written, a warning goes to stderr: ASE's ``Optimizer.run`` likewise returns False and leaves
the atoms where they are, and the structure is the natural restart point); 2 bad input
(nothing written); 130 interrupted (nothing written).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from .inputs import (
    TrajectoryWriter,
    check_elements,
    load_model,
    output_format,
    read_structure,
    run_command,
    total_charge,
    write_structure_atomic,
)

DEFAULTS = {"fmax": 0.05, "optimizer": "lbfgs", "steps": 1000, "pressure": 0.0,
            "convention": "consistent", "charge_method": "qeq"}


def _kcal_mol():
    from ase import units

    return units.kcal / units.mol  # eV per kcal/mol


def _voigt(tensor):
    t = np.asarray(tensor)
    return np.array([t[0, 0], t[1, 1], t[2, 2], t[1, 2], t[0, 2], t[0, 1]])


def _snapshot(template, positions, cell, result, ev):
    """A copy of ``template`` at (positions, cell) carrying ``result`` (kcal/mol units) as
    SinglePointCalculator results in eV, eV/Å and eV/Å^3."""
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = template.copy()
    atoms.set_cell(cell, scale_atoms=False)
    atoms.positions = positions
    values = {"energy": result.energy * ev, "free_energy": result.energy * ev,
              "forces": np.asarray(result.forces) * ev,
              "charges": np.asarray(result.charges, dtype=float)}
    if result.stress is not None:
        values["stress"] = _voigt(result.stress) * ev
    atoms.calc = SinglePointCalculator(atoms, **values)
    return atoms


def check_options(args) -> None:
    """Refuse unusable --fmax, --steps or --pressure values."""
    if not args.fmax > 0:
        raise ValueError(f"--fmax must be positive, got {args.fmax}")
    if args.steps < 0:
        raise ValueError(f"--steps must be >= 0, got {args.steps}")
    if not np.isfinite(args.pressure):
        raise ValueError(f"--pressure must be a finite number, got {args.pressure}")
    if args.pressure and not args.relax_cell:
        raise ValueError("--pressure only acts with --relax-cell")


def check_cell(atoms, args, source) -> None:
    """--relax-cell needs a fully periodic structure."""
    if args.relax_cell and not atoms.pbc.all():
        raise ValueError(f"{source}: --relax-cell needs a cell periodic in all three "
                         f"directions (pbc is {atoms.pbc.tolist()})")


def relax_atoms(atoms, model, args, *, source, observe=None):
    """Relax ``atoms`` with ``args``' optimizer options (``fmax steps optimizer relax_cell
    pressure charge``): (final structure with its results in eV units, the optimizer's
    result, the model's result at the end in kcal/mol). ``observe(positions, cell, energy,
    gradient, virial, result)`` sees every evaluated structure. Shared with `reaxgrad batch
    minimize`."""
    from ase import units

    from reaxgrad.md.relax import relax

    check_cell(atoms, args, source)
    charge = total_charge(atoms, args.charge)
    symbols = atoms.get_chemical_symbols()
    pbc = atoms.pbc.copy()
    q0 = atoms.get_initial_charges()
    ev = _kcal_mol()
    state = {"calls": 0}

    def evaluate(positions, cell):
        res = model.evaluate(positions, cell, pbc, symbols, total_charge=charge, charges=q0,
                             source=source)
        if not np.isfinite(res.energy):
            raise ValueError(f"{source}: the energy became {res.energy} during the "
                             f"minimization (step {state['calls']})")
        state["result"] = res
        return res.energy * ev, -res.forces * ev, res.virial * ev

    def seen(positions, cell, energy, gradient, virial):
        state["calls"] += 1
        if observe is not None:
            observe(positions, cell, energy, gradient, virial, state["result"])

    result = relax(evaluate, atoms.positions, atoms.cell.array, relax_cell=args.relax_cell,
                   pressure=args.pressure * units.GPa, optimizer=args.optimizer,
                   fmax=args.fmax, max_steps=args.steps, callback=seen)
    final = _snapshot(atoms, result.positions, result.cell, state["result"], ev)
    final.info.update(minimize_converged=bool(result.converged),
                      minimize_steps=int(result.steps))
    return final, result, state["result"]


def minimize(args) -> int:
    check_options(args)
    output_format(args.output, option="--output")  # refuse unusable names before the work
    if args.trajectory:
        output_format(args.trajectory, option="--trajectory", multiple=True)
    atoms = read_structure(args.input, args.index)
    check_cell(atoms, args, args.input)
    model = load_model(args.ffield, charge_method=args.charge_method,
                       convention=args.convention)
    check_elements(model, atoms, args.input)
    ev = _kcal_mol()
    traj = TrajectoryWriter(args.trajectory) if args.trajectory else None
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=args.steps, desc="minimize", unit="step", file=sys.stderr,
                   dynamic_ncols=True)
    calls = [0]

    def observe(positions, cell, energy, gradient, virial, res):
        calls[0] += 1
        if traj is not None:
            traj.write(_snapshot(atoms, positions, cell, res, ev))
        if bar is not None:
            if calls[0] > 1:
                bar.update(1)
            f = np.sqrt((np.asarray(gradient) ** 2).sum(axis=1)).max()
            bar.set_postfix_str(f"E={energy:.6f} eV fmax={f:.4g} eV/Å", refresh=False)

    started = time.perf_counter()
    try:
        final, result, last = relax_atoms(atoms, model, args, source=args.input,
                                          observe=observe)
        write_structure_atomic(args.output, final)
        if traj is not None:
            traj.close()
    except BaseException:
        if traj is not None:
            traj.discard()
        raise
    finally:
        if bar is not None:
            bar.close()
    _summary(args, final, result, last, ev, time.perf_counter() - started)
    if not result.converged:
        print(f"reaxgrad minimize: warning: not converged after {result.steps} steps "
              f"(largest force {result.fmax:.4g} eV/Å > --fmax {args.fmax}); the last "
              f"structure is in {args.output}", file=sys.stderr)
        return 1
    return 0


def _summary(args, final, result, res, ev, seconds) -> None:
    from ase import units

    forces = np.asarray(res.forces) * ev
    fmax_atoms = float(np.sqrt((forces**2).sum(axis=1)).max())
    status = "converged" if result.converged else "NOT converged"
    lines = [
        f"{final.get_chemical_formula()} ({len(final)} atoms), {args.optimizer}, "
        f"{args.convention} convention, charges: {args.charge_method}",
        f"{status} after {result.steps} steps ({result.evaluations} evaluations, "
        f"{seconds:.1f} s; --fmax {args.fmax} eV/Å)",
        f"energy      {res.energy * ev:18.8f} eV  {res.energy:18.8f} kcal/mol",
        f"fmax        {fmax_atoms:18.8f} eV/Å (largest atomic force)",
    ]
    if args.relax_cell:
        stress = np.asarray(res.stress) * ev / units.GPa
        deviation = stress + args.pressure * np.eye(3)
        lines += [
            f"enthalpy    {result.enthalpy:18.8f} eV  (E + pV at {args.pressure} GPa)",
            f"volume      {final.get_volume():18.8f} Å^3",
            f"stress      {np.abs(deviation).max():18.8f} GPa (largest |stress + pressure|)",
            "cell (Å)    " + "  ".join(f"{v:.6f}" for v in final.cell.cellpar()),
        ]
    lines.append(f"output      {args.output}" + (f", trajectory {args.trajectory}"
                                                   if args.trajectory else ""))
    print("\n".join(lines))


def run_minimize(args) -> int:
    return run_command("minimize", minimize, args)


def add_parser(sub):
    p = sub.add_parser(
        "minimize", help="relax a structure (positions, optionally the cell) with FIRE or L-BFGS",
        description="Relax atom positions (and the cell with --relax-cell) to a local minimum "
        "of the ReaxFF energy. Units as in ASE: eV, eV/Å, GPa. Exit status 0 converged, "
        "1 not converged (output still written), 2 bad input.")
    p.add_argument("input", help="structure file (extxyz, xyz, cif, POSCAR, BGF geo, ...)")
    p.add_argument("--ffield", required=True, help="ReaxFF force-field file")
    p.add_argument("--output", "-o", required=True,
                   help="relaxed structure (format from the extension; .extxyz keeps the "
                   "energy, forces, stress and charges)")
    p.add_argument("--index", type=int, default=0, help="structure index in INPUT (default 0)")
    add_options(p)
    p.add_argument("--trajectory", default=None,
                   help="write every evaluated structure here (.extxyz or .traj)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_minimize)


def add_options(p):
    """The options of a relaxation (also those of `reaxgrad batch minimize`)."""
    p.add_argument("--convention", default=DEFAULTS["convention"],
                   choices=["consistent", "lammps"],
                   help="charge convention: 'consistent' (forces are the exact gradient of the "
                   "energy; default) or 'lammps' (LAMMPS's forces)")
    p.add_argument("--charge-method", default=DEFAULTS["charge_method"],
                   choices=["qeq", "eem", "acks2", "none"],
                   help="charge equilibration (default qeq; none keeps the input charges)")
    p.add_argument("--charge", type=float, default=None,
                   help="total charge (default: the structure's own, else 0)")
    p.add_argument("--fmax", type=float, default=DEFAULTS["fmax"],
                   help="converged when every atomic force (and, with --relax-cell, every "
                   "cell row of the generalized force) is below this, eV/Å (default 0.05)")
    p.add_argument("--optimizer", default=DEFAULTS["optimizer"], choices=["fire", "lbfgs"],
                   help="L-BFGS (default: 1.3-3.6x fewer steps than FIRE on molecules, "
                   "liquids and cell relaxations at the default fmax) or FIRE (never steps "
                   "uphill, for rough starts); both exactly as ASE's")
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"],
                   help="largest number of optimizer steps (default 1000)")
    p.add_argument("--relax-cell", action="store_true",
                   help="relax the cell too (generalized coordinates as ASE's "
                   "FrechetCellFilter); needs a fully periodic structure")
    p.add_argument("--pressure", type=float, default=DEFAULTS["pressure"],
                   help="external hydrostatic pressure with --relax-cell, GPa (default 0)")
