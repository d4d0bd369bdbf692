"""`reaxgrad vibrations STRUCTURE --ffield F`: harmonic normal modes from the exact ReaxFF
Hessian (optionally after relaxing the positions), as a table or a JSON file."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

PROG = "reaxgrad vibrations"


class _InputError(Exception):
    """A bad input: printed as `reaxgrad vibrations: error: <message>`, exit status 2."""


def _read(path: str, index: int):
    try:
        from reaxgrad.inputs import read_structure
    except ImportError:
        from reaxgrad.energy_cmd import read_structure
    if not Path(path).exists():
        raise _InputError(f"{path}: no such file")
    try:
        return read_structure(path, index)
    except SystemExit as exc:  # the reader's own one-line messages name the file
        message = str(exc.code)
        for prefix in ("reaxgrad energy: ", "error: "):
            message = message.removeprefix(prefix)
        raise _InputError(message) from None
    except ValueError as exc:
        message = str(exc).rstrip().rstrip(":")
        raise _InputError(message + (f" (structure --index {index})" if index else "")) \
            from None


def _check_atoms(atoms, path: str) -> None:
    if len(atoms) == 0:
        raise _InputError(f"{path}: the structure has no atoms")
    bad = np.flatnonzero(~np.isfinite(atoms.positions).all(axis=1))
    if len(bad):
        k = int(bad[0])
        raise _InputError(f"{path}: atom {k} ({atoms[k].symbol}) has non-finite coordinates "
                          f"{atoms.positions[k].tolist()}")
    if not np.isfinite(atoms.cell.array).all():
        raise _InputError(f"{path}: the cell has non-finite entries")


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


def _write_json(path: str, data: dict) -> None:
    """Write atomically: a temporary file beside the target, then os.replace."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would be unlike any other output
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run(args) -> int:
    from reaxgrad.md.calculator import ReaxFFCalculator
    from reaxgrad.md.vibrations import vibrations

    if args.fmax <= 0 or not np.isfinite(args.fmax):
        raise _InputError(f"--fmax must be a positive number, got {args.fmax}")
    if args.max_steps < 0:
        raise _InputError(f"--max-steps must be >= 0, got {args.max_steps}")
    if args.output is not None:
        out_dir = Path(args.output).parent
        if str(out_dir) and not out_dir.is_dir():
            raise _InputError(f"--output {args.output}: no such directory {out_dir}")
    atoms = _read(args.structure, args.index)
    _check_atoms(atoms, args.structure)
    method = None if args.charge_method == "none" else args.charge_method
    calc = ReaxFFCalculator(args.ffield, charge_method=method, convention=args.convention,
                            charge=args.charge)
    calc.model.types_of(atoms.get_chemical_symbols(), source=args.structure)
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
        _write_json(args.output, data)
        print(f"wrote {args.output}")
    return 0


def run_vibrations(args) -> int:
    try:
        return _run(args)
    except (_InputError, ValueError, OSError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the source wrote
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2


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
