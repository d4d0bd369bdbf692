"""`reaxgrad energy STRUCTURE --ffield F`: total and per-term ReaxFF energies, charges and
forces of one structure (any format ASE reads, or a BGF `geo` file), as a table or JSON."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

TERM_LABELS = {
    "ebond": "bond", "eatom": "over/under-coordination", "elp": "lone pair",
    "emol": "molecular", "ev": "valence angle", "epen": "penalty", "ecoa": "coalition",
    "ehb": "hydrogen bond", "et": "torsion", "eco": "4-body conjugation",
    "ew": "van der Waals", "ep": "Coulomb", "efi": "electric field", "eqeq": "charge self",
}


def read_structure(path: str, index: int = 0):
    """An ase.Atoms from a BGF geo file (by name or content) or any file ASE reads.

    A malformed file raises ValueError (an InputFileError naming the line for geo files)."""
    from ase.io import read

    p = Path(path)
    if not p.exists():
        raise SystemExit(f"reaxgrad energy: no such file: {path}")
    head = p.read_text(errors="replace")[:2000]
    if p.suffix.lower() in (".geo", ".bgf") or p.name == "geo" or "BIOGRF" in head \
            or "XTLGRF" in head:
        from reaxgrad.datasets import read_geo

        structures = read_geo(p)
        if not -len(structures) <= index < len(structures):
            raise SystemExit(f"reaxgrad energy: {path} has {len(structures)} structures, "
                             f"index {index} is out of range")
        return structures[index]
    try:
        return read(p, index=index)
    except Exception as exc:  # ASE raises many types for unreadable files
        raise ValueError(f"{path}: cannot read it as a structure: {exc}") from None


def run_energy(args) -> int:
    from reaxgrad.forcefields.reaxff.model import TERMS, ReaxFF

    try:
        atoms = read_structure(args.structure, args.index)
    except ValueError as exc:  # InputFileError included: "<file> line N: ..."
        message = " ".join(str(exc).split())  # one line, whatever the reader wrote
        print(f"reaxgrad energy: error: {message}", file=sys.stderr)
        return 2
    method = None if args.charge_method == "none" else args.charge_method
    try:
        model = ReaxFF(args.ffield, charge_method=method, convention=args.convention)
        # the total charge is never the sum of the initial charges (a geo file's charge
        # column is not the structure's charge): the option, else MOLCHARGE, else neutral
        total_charge = args.charge if args.charge is not None else float(
            atoms.info.get("charge", 0.0))
        res = model.evaluate(atoms.positions, atoms.cell.array, atoms.pbc,
                             atoms.get_chemical_symbols(), total_charge=total_charge,
                             charges=atoms.get_initial_charges(), source=args.structure)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"reaxgrad energy: {exc}") from None
    symbols = atoms.get_chemical_symbols()
    if args.json:
        out = {
            "structure": str(args.structure), "ffield": str(args.ffield),
            "units": {"energy": "kcal/mol", "forces": "kcal/mol/A", "charges": "e",
                      "stress": "kcal/mol/A^3"},
            "charge_method": args.charge_method, "convention": args.convention,
            "energy": res.energy, "energy_terms": res.terms,
            "symbols": symbols, "charges": np.asarray(res.charges).tolist(),
            "forces": np.asarray(res.forces).tolist(),
            "stress": None if res.stress is None else np.asarray(res.stress).tolist(),
        }
        print(json.dumps(out, indent=2))
        return 0
    from ase import units

    ev = units.kcal / units.mol
    print(f"{atoms.get_chemical_formula()} ({len(atoms)} atoms) with {args.ffield}, "
          f"charges: {args.charge_method} ({args.convention} convention)")
    print(f"total energy {res.energy:16.6f} kcal/mol {res.energy * ev:16.6f} eV")
    print("\nterm   energy (kcal/mol)   description")
    for k in TERMS:
        print(f"{k:6s} {res.terms[k]:18.6f}   {TERM_LABELS[k]}")
    print("\n  #  el    charge (e)        Fx          Fy          Fz   (kcal/mol/A)")
    for n, (s, q, f) in enumerate(zip(symbols, res.charges, res.forces)):
        print(f"{n:3d}  {s:2s} {q:12.6f} {f[0]:11.5f} {f[1]:11.5f} {f[2]:11.5f}")
    if res.stress is not None:
        print("\nstress (kcal/mol/A^3):")
        for row in res.stress:
            print("  " + " ".join(f"{v:12.6e}" for v in row))
    return 0


def add_parser(sub):
    p = sub.add_parser("energy", help="ReaxFF energy, per-term table, charges and forces")
    p.add_argument("structure", help="structure file (BGF geo, xyz, extxyz, cif, POSCAR, ...)")
    p.add_argument("--ffield", required=True, help="ReaxFF force-field file")
    p.add_argument("--index", type=int, default=0, help="structure index in the file")
    p.add_argument("--charge-method", default="qeq", choices=["qeq", "eem", "acks2", "none"])
    p.add_argument("--convention", default="lammps", choices=["lammps", "consistent"])
    p.add_argument("--charge", type=float, default=None, help="total charge (default: "
                   "the structure's own, e.g. a geo file's MOLCHARGE, else 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run_energy)
