"""`reaxgrad vibrations STRUCTURE --ffield F`: harmonic normal modes from the exact ReaxFF
Hessian (optionally after relaxing the positions), as a table or a JSON file."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

PROG = "reaxgrad vibrations"


def _relax(atoms, fmax: float, max_steps: int):
    """L-BFGS (ASE's, reaxgrad.md.minimize.lbfgs) on the positions; the cell is kept."""
    from reaxgrad.md.minimize import lbfgs

    work = atoms.copy()
    work.calc = atoms.calc

    def value_and_grad(x):
        work.positions = x
        return work.get_potential_energy(), -work.get_forces()

    result = lbfgs(value_and_grad, atoms.positions, fmax=fmax, max_steps=max_steps)
    atoms.positions = result.positions
    return result


def _run(args) -> int:
    from reaxgrad.inputs import InputError, check_elements, load_model, read_structure
    from reaxgrad.md.calculator import ReaxFFCalculator
    from reaxgrad.md.vibrations import vibrations

    if args.fmax <= 0 or not np.isfinite(args.fmax):
        raise InputError(f"must be a positive number, got {args.fmax}", field="--fmax")
    if args.max_steps < 0:
        raise InputError(f"must be >= 0, got {args.max_steps}", field="--max-steps")
    if args.output is not None:
        out_dir = Path(args.output).parent
        if str(out_dir) and not out_dir.is_dir():
            raise InputError(f"no such directory {out_dir}", path=args.output,
                             field="--output")
    atoms = read_structure(args.structure, args.index)
    model = load_model(args.ffield, charge_method=args.charge_method,
                       convention=args.convention)
    check_elements(model, atoms, args.structure)
    method = None if args.charge_method == "none" else args.charge_method
    calc = ReaxFFCalculator(model.ff, charge_method=method, convention=args.convention,
                            charge=args.charge)
    atoms.calc = calc
    relaxed = None
    if args.relax:
        result = _relax(atoms, args.fmax, args.max_steps)
        relaxed = {"steps": int(result.steps), "converged": bool(result.converged)}
        if not result.converged:
            print(f"{PROG}: warning: relaxation stopped after {int(result.steps)} steps "
                  f"above --fmax {args.fmax} eV/A", file=sys.stderr)
    forces = atoms.get_forces()
    max_force = float(np.sqrt((forces**2).sum(axis=1)).max())
    vib = vibrations(calc, atoms)
    n_imag = int(np.sum(vib.frequencies < -1.0))  # not the rounding noise of zero modes
    print(f"{atoms.get_chemical_formula()} ({len(atoms)} atoms) with {args.ffield}, charges: "
          f"{args.charge_method} ({args.convention} convention), total charge "
          f"{calc.total_charge(atoms):g}")
    if relaxed is not None:
        print(f"relaxed in {relaxed['steps']} L-BFGS steps "
              f"({'converged' if relaxed['converged'] else 'NOT converged'})")
    print(f"energy {atoms.get_potential_energy():.6f} eV, max |force| {max_force:.3e} eV/A"
          + ("" if max_force < 1e-3 else "  (not a stationary point: use --relax)"))
    print(vib.table())
    if n_imag:
        print(f"{n_imag} imaginary mode(s) beyond 1 cm^-1 (marked i)")
    if args.output is not None:
        data = vib.to_dict()
        data.update(
            structure=str(args.structure), index=args.index, ffield=str(args.ffield),
            charge_method=args.charge_method, total_charge=calc.total_charge(atoms),
            relaxation=relaxed, max_force=max_force,
            energy=atoms.get_potential_energy(),
            positions=atoms.positions.tolist(), cell=atoms.cell.array.tolist(),
            pbc=[bool(p) for p in atoms.pbc],
        )
        data["units"].update(positions="A", cell="A", max_force="eV/A", energy="eV",
                             total_charge="e")
        from reaxgrad.inputs import atomic_output

        with atomic_output(args.output) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.write("\n")
        print(f"wrote {args.output}")
    return 0


def run_vibrations(args) -> int:
    from reaxgrad.inputs import run_command

    return run_command("vibrations", _run, args)


def add_parser(sub):
    p = sub.add_parser("vibrations", help="normal modes from the exact ReaxFF Hessian")
    p.add_argument("structure", help="structure file (BGF geo, xyz, extxyz, cif, POSCAR, ...)")
    p.add_argument("--ffield", required=True, help="ReaxFF force-field file")
    p.add_argument("--index", type=int, default=0, help="structure index in the file")
    p.add_argument("--convention", default="consistent", choices=["consistent", "lammps"],
                   help="charge convention (default consistent: the Hessian of the reported "
                   "energy; lammps: the Jacobian of LAMMPS's forces)")
    p.add_argument("--charge-method", default="qeq", choices=["qeq", "eem", "acks2", "none"],
                   help="charge equilibration (none: the file's initial charges)")
    p.add_argument("--charge", type=float, default=None, help="total charge (default: "
                   "the structure's own, e.g. a geo file's MOLCHARGE, else 0)")
    p.add_argument("--relax", action="store_true",
                   help="relax the positions first (L-BFGS; the cell is kept)")
    p.add_argument("--fmax", type=float, default=1e-4,
                   help="relaxation threshold on the largest force, eV/A (default 1e-4)")
    p.add_argument("--max-steps", type=int, default=2000,
                   help="relaxation step limit (default 2000)")
    p.add_argument("--output", default=None,
                   help="write frequencies, modes and the Hessian (eV/A^2) to this JSON file")
    p.set_defaults(func=run_vibrations)
